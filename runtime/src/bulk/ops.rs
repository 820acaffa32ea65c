//! Bulk operations (issue 17, section 4): fire one transition over a list
//! of records or every record a filter selects (SOC-8 "in calup", closing a
//! list, moving an absent operator's leads through the workflow's own
//! reassignment transition, or moving them with `Action::Reassign`), in batches that share a transaction, each
//! record all-or-nothing, as `leadflow bulk` and `POST /v1/bulk`.
//!
//! A dry run runs exactly the same batches and rolls each back instead of
//! committing it, so what it reports per record (would fire, or refused
//! with its code) is what the real run does on the same data.

use super::export::Filter;
use crate::apply::Versions;
use crate::backend::{Error, RecordId, StoredRecord, Visible};
use crate::store::sql::import::{Batch, Done, Import, Op, OpKind};
use leadflow_engine::{Actor, Value, Workflow};

/// What a bulk operation does to each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fire this transition (with the request's input).
    Transition(String),
    /// Move the record to this actor (`apply::reassign`): history and
    /// actor loads follow; state, fields and timers stay.
    Reassign(String),
}

/// What to fire and where.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub action: Action,
    pub input: Vec<(String, Value)>,
    /// Records by id (`None`: every open record `filter` selects).
    pub ids: Option<Vec<RecordId>>,
    pub filter: Filter,
    pub dry_run: bool,
    /// Records per transaction.
    pub batch: usize,
}

/// One record's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BulkItem {
    pub id: RecordId,
    /// `fired`, `would_fire` (dry run) or `refused`.
    pub outcome: &'static str,
    /// The refusal's code (`E_NOT_ENABLED`, `E_GUARD`, `E_REQUIRED`,
    /// `E_NOT_FOUND`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a bulk operation did (or would do), record by record.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BulkReport {
    pub dry_run: bool,
    /// Records fired (or that would fire).
    pub fired: u64,
    pub refused: u64,
    pub records: Vec<BulkItem>,
}

/// The ids of the open records of `wf` that `filter` selects and
/// `visible` lets through, in id order.
pub async fn select<S: Import>(
    store: &S,
    versions: &Versions,
    wf: &Workflow,
    filter: &Filter,
    visible: Option<&Visible>,
) -> Result<Vec<RecordId>, Error> {
    let mut f = filter.clone();
    f.open_only = true;
    let mut ids = Vec::new();
    store
        .export_scan(&wf.id, &mut |r: StoredRecord| {
            let version = versions.version(&r.workflow, &r.version).ok();
            if f.matches(version.as_deref(), &r) && visible.is_none_or(|v| (v.0)(&r)) {
                ids.push(r.id);
            }
            Ok(())
        })
        .await?;
    Ok(ids)
}

/// Run `req` on `wf` as `actor`; `visible` (an actor-bound caller's rule)
/// makes the records it fails "not found".
#[allow(clippy::too_many_arguments)]
pub async fn run<S: Import>(
    store: &S,
    versions: &Versions,
    wf: &Workflow,
    req: &BulkRequest,
    actor: &Actor,
    visible: Option<Visible>,
    now: super::import::Now<'_>,
) -> Result<BulkReport, Error> {
    run_with(store, versions, wf, req, actor, visible, now, &mut |_| {}).await
}

/// [`run`], calling `progress` with the report so far after each batch.
#[allow(clippy::too_many_arguments)]
pub async fn run_with<S: Import>(
    store: &S,
    versions: &Versions,
    wf: &Workflow,
    req: &BulkRequest,
    actor: &Actor,
    visible: Option<Visible>,
    now: super::import::Now<'_>,
    progress: &mut (dyn FnMut(&BulkReport) + Send),
) -> Result<BulkReport, Error> {
    // Explicit ids are checked like the filter's: of this workflow, and
    // visible to the caller.
    let wf_id = wf.id.clone();
    let caller = visible.clone();
    let visible = Some(Visible(std::sync::Arc::new(move |r: &StoredRecord| {
        r.workflow == wf_id && caller.as_ref().is_none_or(|v| (v.0)(r))
    })));
    let ids = match &req.ids {
        Some(ids) => ids.clone(),
        None => select(store, versions, wf, &req.filter, visible.as_ref()).await?,
    };
    let mut report = BulkReport {
        dry_run: req.dry_run,
        ..BulkReport::default()
    };
    for chunk in ids.chunks(req.batch.max(1)) {
        let ops: Vec<Op> = chunk
            .iter()
            .map(|id| Op {
                line: *id,
                kind: match &req.action {
                    Action::Transition(t) => OpKind::Fire {
                        record: *id,
                        transition: t.clone(),
                        input: req.input.clone(),
                    },
                    Action::Reassign(to) => OpKind::Reassign {
                        record: *id,
                        to: to.clone(),
                    },
                },
            })
            .collect();
        let results = store
            .import_batch(Batch {
                key: None,
                workflow: &wf.id,
                actor,
                now: now(),
                ops: &ops,
                dry_run: req.dry_run,
                visible: visible.clone(),
            })
            .await?;
        for (id, r) in chunk.iter().zip(results) {
            report.records.push(match r {
                Ok(Done::Fired(_) | Done::Created(_)) => {
                    report.fired += 1;
                    BulkItem {
                        id: *id,
                        outcome: if req.dry_run { "would_fire" } else { "fired" },
                        code: None,
                        message: None,
                    }
                }
                Err(e) => {
                    report.refused += 1;
                    BulkItem {
                        id: *id,
                        outcome: "refused",
                        code: Some(e.code().to_string()),
                        message: Some(e.to_string()),
                    }
                }
            });
        }
        progress(&report);
    }
    Ok(report)
}
