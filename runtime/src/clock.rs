//! Time as an input. The runtime never reads the system clock directly: the
//! daemon uses [`SystemClock`], tests and replays a [`ManualClock`].

use chrono::{DateTime, Utc};
use std::future::Future;
use tokio::sync::watch;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= t`.
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// Reading a [`Clock`] through a trait object: what the HTTP daemon's state
/// holds, so handlers take "now" from the daemon's clock (a test can give
/// it a [`ManualClock`]) and never from the system directly.
pub trait ReadClock: Send + Sync {
    fn read(&self) -> DateTime<Utc>;
}

impl<C: Clock> ReadClock for C {
    fn read(&self) -> DateTime<Utc> {
        self.now()
    }
}

/// Wall-clock time, in microseconds (what the stores keep, so a value
/// set to `now` reads back as it was written).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let left = (t - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(left).await;
    }
}

/// Time that moves only when told: sleepers wake when it passes their instant.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: watch::Sender::new(start),
        }
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }

    pub fn advance(&self, d: chrono::Duration) {
        self.now.send_modify(|t| *t += d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as the clock, which outlives its sleepers.
        let _ = rx.wait_for(|now| *now >= t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced() {
        let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let c = std::sync::Arc::new(ManualClock::new(start));
        let c2 = c.clone();
        let sleeper =
            tokio::spawn(async move { c2.sleep_until(start + chrono::Duration::hours(1)).await });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.advance(chrono::Duration::hours(2));
        sleeper.await.unwrap();
        assert_eq!(c.now(), start + chrono::Duration::hours(2));
    }

    #[tokio::test]
    async fn system_clock_sleeps_until_an_instant() {
        let c = SystemClock;
        let t = c.now() + chrono::Duration::milliseconds(20);
        c.sleep_until(t).await;
        assert!(c.now() >= t);
    }
}
