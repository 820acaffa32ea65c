//! The open connections, as the accept loop sees them: whether a request is
//! being served on each and since when it has been idle. At the connection
//! limit the longest-idle one makes room for the newcomer: a client that
//! has not finished sending its headers for half a second (a slowloris) or a
//! keep-alive connection between requests. A connection serving a request
//! (a slow body included: `body_timeout` bounds that) is never chosen. So a
//! flood of partial headers cannot starve real requests; it only ever
//! pushes out other idle connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a connection must have been idle before it may be evicted: a
/// real client sends its request head in one go, well within this.
pub const MIN_IDLE: Duration = Duration::from_millis(500);

/// One connection's state, shared by its service (which counts requests)
/// and the registry (which may evict it).
pub struct Conn {
    in_flight: AtomicU32,
    /// Milliseconds since the registry's epoch.
    idle_since: AtomicU64,
    evict: Notify,
    epoch: Instant,
}

impl Conn {
    /// A request arrived (its headers are complete).
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// Its response is ready.
    pub fn finish(&self) {
        self.idle_since.store(ms(self.epoch), Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Resolves when the registry chose this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

fn ms(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The open connections.
pub struct Registry {
    epoch: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        }
    }
}

/// Removes its connection from the registry when dropped.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // A panic while holding this lock leaves a map that is still valid.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection, idle since now.
    pub fn register(self: &Arc<Self>) -> Registered {
        let conn = Arc::new(Conn {
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(ms(self.epoch)),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, conn.clone());
        Registered {
            registry: self.clone(),
            id,
            conn,
        }
    }

    /// Evict the connection idle the longest, if one has been idle for
    /// `min_idle` and serves no request. It leaves the registry at once (so
    /// it is not chosen twice); its permit comes free when its task ends.
    pub fn evict_idle(&self, min_idle: Duration) -> bool {
        let now = ms(self.epoch);
        let min = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut conns = self.lock();
        let oldest = conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0)
            .map(|(id, c)| (*id, c.idle_since.load(Ordering::SeqCst)))
            .filter(|(_, since)| now.saturating_sub(*since) >= min)
            .min_by_key(|(_, since)| *since);
        match oldest.and_then(|(id, _)| conns.remove(&id)) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_idle_connection_without_a_request_is_evicted() {
        let r = Arc::new(Registry::default());
        let old = r.register();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let busy = r.register();
        busy.conn.start();
        let young = r.register();
        // Nothing idle long enough yet.
        assert!(!r.evict_idle(Duration::from_secs(60)));
        assert!(r.evict_idle(Duration::from_millis(20)));
        // `old` was chosen: its eviction is pending.
        tokio::time::timeout(Duration::from_secs(1), old.conn.evicted())
            .await
            .expect("the oldest idle connection is told to go");
        // A connection serving a request is never chosen; `young` is not
        // idle long enough.
        assert!(!r.evict_idle(Duration::from_millis(20)));
        busy.conn.finish();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(r.evict_idle(Duration::from_millis(20)));
        assert!(r.evict_idle(Duration::from_millis(20)));
        assert!(!r.evict_idle(Duration::ZERO), "all evicted");
        drop(young);
    }
}
