//! leadflow engine: load, check and evaluate lead lifecycles.
//!
//! Pure: no IO, no clock reads, no async. Callers read files and pass their
//! text in ([`Project`]), pass time in as a value ([`Ctx::now`]), and commit
//! the [`Outcome`]s that [`fire`] returns.
//!
//! ```
//! use leadflow_engine::{load, Project, SourceFile, Ctx, Actor, Value};
//! let project = Project {
//!     workflows: vec![SourceFile::new("workflows/demo.toml", r#"
//!         [workflow]
//!         id = "demo"
//!         initial = "open"
//!         [fields.note]
//!         type = "text"
//!         [states.open]
//!         [states.done]
//!         final = true
//!         [transitions.close]
//!         from = ["open"]
//!         to = "done"
//!         by = ["agent"]
//!         input = ["note"]
//!         require = ["note"]
//!     "#)],
//!     ..Project::default()
//! };
//! let loaded = load(&project);
//! assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
//! let wf = loaded.set.get("demo").unwrap();
//! let now = "2022-11-14T09:00:00Z".parse().unwrap();
//! let agent = Actor { id: "a1".into(), role: "agent".into(), ..Actor::default() };
//! let ctx = Ctx { now, actor: &agent, directory: &[] };
//! let created = leadflow_engine::create(wf, &[], ctx).unwrap();
//! let refused = leadflow_engine::fire(wf, &created.record, "close", &[], ctx).unwrap_err();
//! assert_eq!(refused.code.as_str(), "E_REQUIRED");
//! let done = leadflow_engine::fire(wf, &created.record, "close", &[("note".into(), Value::Str("ok".into()))], ctx).unwrap();
//! assert_eq!(done.to_state, "done");
//! ```
#![forbid(unsafe_code)]

pub mod calendar;
pub mod check;
pub mod diag;
pub mod duration;
pub mod eval;
pub mod graph;
pub mod lists;
pub mod load;
pub mod measure;
pub mod model;
mod native;
pub mod org;
pub mod queue;
pub mod raw;
pub mod schedule;
pub mod script;
mod types;
pub mod value;
pub mod why;

pub use calendar::Calendar;
pub use diag::{Diagnostic, Severity, SourceFile};
pub use eval::{
    create, fire, fire_owned, fire_timer, fire_timer_owned, reassign_owned, Actor, Code, Ctx,
    Outcome, Period, Record, Refusal, Refused,
};
pub use load::{load, Loaded, Project, WorkflowSet};
pub use model::Workflow;
pub use value::{FieldType, Value};
pub use why::{why_not, WhyNot};

/// The JSON Schema of the workflow file format (for editor completion).
pub fn workflow_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawFile)).unwrap_or_default()
}
