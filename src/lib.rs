//! The `leadflow` binary's library: command-line glue over the engine and
//! the runtime. See `src/README.md` for a map.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod project;
pub mod render;
