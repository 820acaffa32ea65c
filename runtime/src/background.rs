//! Supervised background tasks (timer workers, outbox dispatchers). A task
//! runs under [`supervise`]: a panic is caught, logged with the task and its
//! tenant, counted in `leadflow_task_panics_total{task}`, and the task is
//! started again after a backoff. Each task has a [`Health`] that `/readyz`
//! reads: a task that died, or panics again and again (a restart loop),
//! makes the daemon not ready.
//!
//! Group-commit writers (`group.rs`) are not restarted: they catch a panic
//! around each batch themselves, fail only that batch's requests and keep
//! running.

use futures_util::FutureExt;
use serde::Serialize;
use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a task is restarted after a panic.
#[derive(Debug, Clone)]
pub struct Restart {
    /// Wait before the first restart; doubled per panic in a row.
    pub min: Duration,
    pub max: Duration,
    /// This many panics within `window` is a restart loop (not ready).
    pub loop_panics: usize,
    pub window: Duration,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            min: Duration::from_millis(500),
            max: Duration::from_secs(30),
            loop_panics: 3,
            window: Duration::from_secs(60),
        }
    }
}

/// The liveness of one background task, shared with `/readyz`.
#[derive(Debug)]
pub struct Health {
    task: &'static str,
    tenant: String,
    window: Duration,
    loop_panics: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    phase: Phase,
    panics: u64,
    recent: VecDeque<Instant>,
    last_panic: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Running,
    /// Waiting for its restart after a panic.
    Restarting,
    /// Ended on request.
    Stopped,
    /// Ended without being asked to (its supervisor was dropped or aborted).
    Dead,
}

/// What `/readyz` shows of a task (tenant names only to admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TaskStatus {
    pub task: &'static str,
    pub tenant: String,
    /// `running`, `restarting`, `restart_loop`, `stopped` or `dead`.
    pub state: &'static str,
    /// Panics since start.
    pub panics: u64,
    pub last_panic: Option<String>,
}

impl TaskStatus {
    /// Whether the daemon can count on this task.
    pub fn ok(&self) -> bool {
        matches!(self.state, "running" | "restarting" | "stopped")
    }
}

impl Health {
    pub fn new(task: &'static str, tenant: &str, policy: &Restart) -> Arc<Health> {
        Arc::new(Health {
            task,
            tenant: tenant.to_string(),
            window: policy.window,
            loop_panics: policy.loop_panics.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    /// Count a panic of the task itself (`task` is its kind): restarts
    /// that follow each other quickly are a restart loop.
    pub fn panicked(&self, task: &'static str, msg: &str) {
        self.item_panicked(task, msg);
        let mut s = self.lock();
        s.recent.push_back(Instant::now());
        if s.recent.len() > self.loop_panics {
            s.recent.pop_front();
        }
    }

    /// Count a caught panic of one item the task handles (`task`, e.g.
    /// `timer_item`): the task itself runs on, so this is no restart.
    pub fn item_panicked(&self, task: &'static str, msg: &str) {
        metrics::counter!("leadflow_task_panics_total", "task" => task).increment(1);
        let mut s = self.lock();
        s.panics += 1;
        s.last_panic = Some(msg.to_string());
    }

    /// The task ended on request (a task run without [`supervise`]).
    pub fn stopped(&self) {
        self.set(Phase::Stopped);
    }

    /// Panics since start.
    pub fn panics(&self) -> u64 {
        self.lock().panics
    }

    pub fn status(&self) -> TaskStatus {
        let s = self.lock();
        let looping = s.recent.len() >= self.loop_panics
            && s.recent
                .front()
                .is_some_and(|first| first.elapsed() <= self.window);
        TaskStatus {
            task: self.task,
            tenant: self.tenant.clone(),
            state: match s.phase {
                Phase::Dead => "dead",
                Phase::Stopped => "stopped",
                _ if looping => "restart_loop",
                Phase::Restarting => "restarting",
                Phase::Running => "running",
            },
            panics: s.panics,
            last_panic: s.last_panic.clone(),
        }
    }
}

/// Every supervised task of a daemon.
#[derive(Debug, Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<Arc<Health>>>>);

impl Tasks {
    pub fn add(&self, h: Arc<Health>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(h);
    }

    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|h| h.status())
            .collect()
    }
}

/// The text of a caught panic.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Marks the task dead if its supervisor ends without a clean stop (the
/// future was dropped, or its tokio task aborted).
struct Guard(Arc<Health>);

impl Drop for Guard {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        if s.phase != Phase::Stopped {
            s.phase = Phase::Dead;
        }
    }
}

/// Run the task `start(restarts)` until it returns (it does on `stop`),
/// starting it again after each panic with a growing delay (reset when
/// the task ran for a whole `policy.window` before panicking).
pub async fn supervise<F, Fut>(
    health: Arc<Health>,
    policy: Restart,
    mut stop: watch::Receiver<bool>,
    mut start: F,
) where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let guard = Guard(health.clone());
    let mut restarts = 0u32;
    let mut delay = policy.min;
    loop {
        health.set(Phase::Running);
        let began = Instant::now();
        match AssertUnwindSafe(start(restarts)).catch_unwind().await {
            Ok(()) => {
                health.set(Phase::Stopped);
                drop(guard);
                return;
            }
            Err(p) => {
                let msg = panic_message(&*p);
                health.panicked(health.task, &msg);
                if began.elapsed() >= policy.window {
                    delay = policy.min;
                }
                tracing::error!(task = health.task, tenant = %health.tenant, restart_in = ?delay,
                    "background task panicked, restarting: {msg}");
                if *stop.borrow() {
                    health.set(Phase::Stopped);
                    drop(guard);
                    return;
                }
                health.set(Phase::Restarting);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                delay = (delay * 2).min(policy.max);
                restarts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted_counted_and_stops_cleanly() {
        let policy = Restart {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
            loop_panics: 3,
            window: Duration::from_secs(60),
        };
        let h = Health::new("test_task", "acme", &policy);
        let (stop, rx) = watch::channel(false);
        let runs = Arc::new(Mutex::new(Vec::new()));
        let seen = runs.clone();
        let wait = rx.clone();
        let task = tokio::spawn(supervise(h.clone(), policy, rx, move |n| {
            seen.lock().unwrap().push(n);
            let mut stop_rx = wait.clone();
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                let _ = stop_rx.wait_for(|s| *s).await;
            }
        }));
        while runs.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let s = h.status();
        assert_eq!((s.panics, s.last_panic.as_deref()), (2, Some("boom 1")));
        assert_eq!(s.state, "running");
        stop.send_replace(true);
        task.await.unwrap();
        assert_eq!(*runs.lock().unwrap(), [0, 1, 2]);
        assert_eq!(h.status().state, "stopped");
    }

    #[tokio::test]
    async fn three_quick_panics_are_a_restart_loop_and_an_aborted_task_is_dead() {
        let policy = Restart {
            min: Duration::from_secs(60),
            ..Restart::default()
        };
        let h = Health::new("test_task", "acme", &policy);
        for _ in 0..3 {
            h.panicked("test_task", "again");
        }
        assert_eq!(h.status().state, "restart_loop");
        assert!(!h.status().ok());

        let h = Health::new("test_task", "acme", &policy);
        let (_stop, rx) = watch::channel(false);
        let task = tokio::spawn(supervise(h.clone(), policy, rx, |_| {
            std::future::pending::<()>()
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(h.status().state, "running");
        task.abort();
        let _ = task.await;
        assert_eq!(h.status().state, "dead");
        assert!(!h.status().ok());
    }
}
