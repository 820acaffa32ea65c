//! leadflow runtime: storage backends, timer worker, outbox, HTTP daemon.
//! Everything that touches the world lives here; the engine stays pure.
//!
//! See `src/README.md` for a map of the files.
#![forbid(unsafe_code)]

pub mod apply;
pub mod audit;
pub mod background;
pub mod bulk;
pub mod clock;
pub mod config;
pub mod directory;
pub mod error;
pub mod group;
pub mod http;
pub mod kpi;
pub mod links;
pub mod migrate;
pub mod notify;
pub mod org;
pub mod outbox;
pub mod privacy;
pub mod project_limits;
pub mod scenario;
pub mod search_backfill;
pub mod snapshot;
pub mod store;
pub mod template_check;
pub mod templates;
pub mod view_check;
pub mod wake;
pub mod webhook;
pub mod worker;

// Old paths of the modules that moved under `store/` (issue 18, store step 1).
pub use store::api as backend;
pub use store::{any, mem, pg, pg_roles, sql, sqlite};

pub use any::{open, AnyBackend};
pub use backend::Backend;
pub use error::{StoreError, StoreErrorKind};
pub use mem::MemBackend;
pub use pg::PgBackend;
pub use sqlite::SqliteBackend;
