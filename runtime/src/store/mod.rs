//! Storage: the `Backend`/`Tx` seam (`api`), its implementations (PostgreSQL,
//! SQLite, in-memory) and the `AnyBackend` dispatcher.
//!
//! The old top-level paths (`crate::pg`, `crate::backend`, ...) are
//! re-exported from `lib.rs` so callers keep compiling while the store step
//! of issue 18 proceeds.

pub mod any;
pub mod api;
pub mod citus;
pub mod mem;
pub mod pg;
pub mod pg_roles;
pub mod sql;
pub mod sqlite;
