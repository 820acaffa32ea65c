//! Bulk work (issue 17, sections 3 and 4): import and export of records,
//! streaming, and the cell parsing, dedup keys and reject report they use.
//! The store side is the `Import` capability (`store/sql/import/`).

pub mod dedup;
pub mod export;
pub mod import;
pub mod ops;
pub mod report;
pub mod source;
pub mod values;

pub use import::{import, ImportError, OnDuplicate, Options, Summary};
pub use source::Format;
