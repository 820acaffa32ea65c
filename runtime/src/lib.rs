//! leadflow runtime (store, workers, daemon). See src/README.md.
#![forbid(unsafe_code)]
