//! How a sleeping timer worker learns that a timer was armed earlier than
//! its next wake-up. Each worker sleeps on a [`Wake`] (one per tenant and
//! store in this process); what calls [`Wake::wake`] or [`Wake::armed`]
//! depends on the store:
//!
//! - SQLite: the arming transaction itself, in process ([`Wake::armed`]):
//!   the worker is woken only if the timer is due before it would wake
//!   anyway. (Writers in other processes are found by the periodic poll.)
//! - PostgreSQL: one `LISTEN leadflow_timers` connection per database URL
//!   and process ([`pg_subscribe`]), shared by every tenant; a NOTIFY's
//!   payload names the tenant, and only that tenant's workers wake.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A worker's wake-up: cheap to clone, shared by the worker and whatever
/// wakes it.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    notify: Notify,
    woken: AtomicU64,
    /// Earliest due instant armed since the worker last looked (µs).
    armed: AtomicI64,
    /// When the sleeping worker wakes anyway (µs); `i64::MIN` while awake.
    sleeping_until: AtomicI64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            notify: Notify::new(),
            woken: AtomicU64::new(0),
            armed: AtomicI64::new(i64::MAX),
            sleeping_until: AtomicI64::new(i64::MIN),
        }
    }
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl Wake {
    pub fn new() -> Wake {
        Wake::default()
    }

    /// A timer due at `due` was armed (its transaction may still be open:
    /// the worker then finds it once it committed). Wakes a sleeping worker
    /// only if that is earlier than it would wake; an awake worker finds
    /// the instant when it next computes its sleep.
    pub fn armed(&self, due: DateTime<Utc>) {
        let due = us(due);
        self.0.armed.fetch_min(due, Ordering::SeqCst);
        if due < self.0.sleeping_until.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wake the worker now (a NOTIFY, a retried parked item). A worker that
    /// is not sleeping looks at the queue once more when it next would.
    pub fn wake(&self) {
        self.0.woken.fetch_add(1, Ordering::Relaxed);
        self.0.notify.notify_one();
    }

    /// How many times the worker was woken since start.
    pub fn woken(&self) -> u64 {
        self.0.woken.load(Ordering::Relaxed)
    }

    /// The worker, before it reads the queue's next due instant: the
    /// earliest instant armed since it last looked (maybe not committed
    /// yet, so not in that read).
    pub(crate) fn take_armed(&self) -> Option<DateTime<Utc>> {
        match self.0.armed.swap(i64::MAX, Ordering::SeqCst) {
            i64::MAX => None,
            t => DateTime::from_timestamp_micros(t),
        }
    }

    /// The worker goes to sleep until `until`; returns when it must wake
    /// (earlier if a timer was armed since [`Wake::take_armed`]: storing
    /// the instant before reading `armed`, while `armed` stores before
    /// reading the instant, means one of the two sides always sees the
    /// other).
    pub(crate) fn sleep_until(&self, until: DateTime<Utc>) -> DateTime<Utc> {
        self.0.sleeping_until.store(us(until), Ordering::SeqCst);
        match self.0.armed.load(Ordering::SeqCst) {
            t if t < us(until) => DateTime::from_timestamp_micros(t).unwrap_or(until),
            _ => until,
        }
    }

    pub(crate) async fn notified(&self) {
        self.0.notify.notified().await
    }

    pub(crate) fn awake(&self) {
        self.0.sleeping_until.store(i64::MIN, Ordering::SeqCst);
    }
}

/// What a worker gets from its store: its [`Wake`], and whatever keeps the
/// source of wake-ups alive while the worker runs (PostgreSQL: the shared
/// LISTEN connection of the tenant's database).
pub struct Wakeups {
    pub wake: Wake,
    _source: Option<Arc<dyn Any + Send + Sync>>,
}

impl Wakeups {
    /// Wake-ups from inside this process only.
    pub fn local(wake: Wake) -> Wakeups {
        Wakeups {
            wake,
            _source: None,
        }
    }
}

/// One LISTEN connection and the tenants it wakes. Dropped (its task
/// aborted, its connection closed) with the last worker on its database.
struct Hub {
    tenants: Arc<Mutex<HashMap<String, Wake>>>,
    task: JoinHandle<()>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Hubs = Mutex<HashMap<String, Weak<Hub>>>;

fn hubs() -> &'static Hubs {
    static HUBS: std::sync::OnceLock<Hubs> = std::sync::OnceLock::new();
    HUBS.get_or_init(Default::default)
}

/// The wake-ups of `tenant`'s workers on the PostgreSQL database at `url`:
/// the first subscriber for a URL starts its LISTEN connection (on the
/// current tokio runtime), later ones share it.
pub fn pg_subscribe(url: &str, channel: &'static str, tenant: &str) -> Wakeups {
    let mut all = hubs().lock().unwrap_or_else(|e| e.into_inner());
    let hub = match all.get(url).and_then(Weak::upgrade) {
        Some(h) => h,
        None => {
            let tenants = Arc::new(Mutex::new(HashMap::new()));
            let task = tokio::spawn(listen(url.to_string(), channel, tenants.clone()));
            let h = Arc::new(Hub { tenants, task });
            all.retain(|_, w| w.strong_count() > 0);
            all.insert(url.to_string(), Arc::downgrade(&h));
            h
        }
    };
    let wake = hub
        .tenants
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(tenant.to_string())
        .or_default()
        .clone();
    Wakeups {
        wake,
        _source: Some(hub),
    }
}

/// How many LISTEN connections this process holds (one per database URL
/// with running workers).
pub fn pg_listeners() -> usize {
    hubs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|w| w.strong_count() > 0)
        .count()
}

fn wake_all(tenants: &Mutex<HashMap<String, Wake>>) {
    for w in tenants.lock().unwrap_or_else(|e| e.into_inner()).values() {
        w.wake();
    }
}

/// Listen until aborted; reconnect after a failure. After every
/// (re)connection every tenant wakes once: notifications sent meanwhile
/// were lost.
async fn listen(url: String, channel: &'static str, tenants: Arc<Mutex<HashMap<String, Wake>>>) {
    let retry = std::time::Duration::from_secs(1);
    loop {
        let mut l = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("timer wake-ups: no LISTEN connection, workers poll meanwhile: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        if let Err(e) = l.listen(channel).await {
            tracing::warn!("timer wake-ups: LISTEN failed, workers poll meanwhile: {e}");
            tokio::time::sleep(retry).await;
            continue;
        }
        wake_all(&tenants);
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => {
                    let w = tenants
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(n.payload())
                        .cloned();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
                // The connection was lost and re-established.
                Ok(None) => wake_all(&tenants),
                Err(e) => {
                    tracing::warn!("timer wake-ups: LISTEN connection failed, reconnecting: {e}");
                    tokio::time::sleep(retry).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn an_arming_wakes_a_sleeper_only_if_earlier_than_its_wake_up() {
        let w = Wake::new();
        assert_eq!(w.sleep_until(at(30)), at(30));
        w.armed(at(40));
        assert_eq!(
            w.woken(),
            0,
            "due after the wake-up: the worker finds it then"
        );
        w.armed(at(2));
        assert_eq!(w.woken(), 1);
    }

    #[test]
    fn an_arming_while_awake_shortens_the_next_sleep() {
        let w = Wake::new();
        w.armed(at(5));
        assert_eq!(w.woken(), 0, "awake: no wake-up needed");
        // Armed before the worker looked: it takes the instant.
        assert_eq!(w.take_armed(), Some(at(5)));
        // Armed after it looked, before it sleeps: the sleep is shortened.
        w.armed(at(7));
        assert_eq!(w.sleep_until(at(30)), at(7));
        w.awake();
        assert_eq!(w.take_armed(), Some(at(7)));
        assert_eq!(w.take_armed(), None);
    }
}
