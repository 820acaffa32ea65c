//! leadflow runtime: storage backends, timer worker, outbox, HTTP daemon.
//! Everything that touches the world lives here; the engine stays pure.
//!
//! See `src/README.md` for a map of the files.
#![forbid(unsafe_code)]

pub mod apply;
pub mod backend;
pub mod mem;
pub mod scenario;

pub use backend::Backend;
pub use mem::MemBackend;
