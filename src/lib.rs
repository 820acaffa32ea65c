//! The `leadflow` binary's library: command-line glue over the engine and
//! the runtime. See `src/README.md` for a map.
#![forbid(unsafe_code)]

pub mod cli;
#[macro_use]
pub mod out;
pub mod cmd;
pub mod codes;
pub mod color;
pub mod fmt;
pub mod lsp;
pub mod project;
pub mod render;
