//! The runtime's integration tests, as one binary (it links the runtime
//! once instead of once per file): the store conformance suite over the
//! memory store, SQLite files and fresh PostgreSQL databases, group commit,
//! timers, the outbox with real SMTP and webhook receivers, versions. Run
//! one suite with `cargo test -p leadflow-runtime --test it <module>::`.

#[path = "../common/mod.rs"]
mod common;

mod citus;
mod conformance;
mod daemon_smtp;
mod daemon_webhook;
mod events_migration;
mod group_commit;
mod outbox;
mod pg_store;
mod record_query;
mod refusal_restores;
mod report_schedule;
mod search;
mod sqlite_store;
mod timer_batch;
mod versions;
mod work_queue;
