//! Scenario replay: the engine of `leadflow test`.
//!
//! A scenario file (format: `docs/scenarios.md`) tells a story about records
//! on a virtual clock: create, fire, advance time, expect. This module parses
//! it ([`parse`]), resolves its names against the loaded workflows
//! ([`Scenario::resolve`]), and replays it against any [`Backend`]
//! ([`run`]): a fresh backend per scenario, time passed in as a value.
//!
//! | file | what |
//! | --- | --- |
//! | `model.rs` | the parsed scenario: steps, actions, expectations |
//! | `parse/` | TOML -> model, with `file:line:col` errors (S001..): `parse`, `ScenarioError`, actors and name checks (`mod.rs`); the file as serde reads it (`raw.rs`); one `[[step]]` (`step.rs`); one `expect` table (`expectation.rs`); tests (`tests.rs`) |
//! | `files.rs` | finding scenario files and their project, reading it |
//! | `run.rs` | the step runner, generic over [`Backend`] |
//! | `expect/` | checking one expectation against the backend: `check`, `resolve`, state, fields, links (`mod.rs`); typed value comparison (`values.rs`); outbox and messages (`outbox.rs`); who sees the record and its PII (`org.rs`); timers, history, events (`history.rs`); views, KPIs, reports, report runs (`lists.rs`); tests (`tests.rs`) |
//! | `report.rs` | results, human and JSON output |
//! | `suite.rs` | running many scenarios (in parallel) on the memory store |
//! | `generate.rs` | a large generated ASLM scenario for benchmarks |
//!
//! [`Backend`]: crate::backend::Backend

mod expect;
pub mod files;
pub mod generate;
mod model;
mod parse;
mod report;
mod run;
pub mod suite;

pub use model::*;
pub use parse::{parse, ScenarioError};
pub use report::{Failure, ScenarioResult, Summary};
pub use run::{run, Replay};
