//! leadflow runtime: storage backends, timer worker, outbox, HTTP daemon.
//! Everything that touches the world lives here; the engine stays pure.
#![forbid(unsafe_code)]

pub mod backend;
