//! `WorkQueue`: pull the next record of a work queue and hold it for a
//! lease (issue 13, `[queues]` in docs/workflow-format.md).
//!
//! A pull is one claim, atomic in the store: the first record of the
//! queue's order that matches its selection ([`Query`]: states, filter,
//! `max_attempts`, the caller's visibility) and that nobody holds is
//! written into `queue_leases` for the puller. A lease holds while it has
//! not expired and the record is still at the revision it was taken at:
//! any transition fired on the record releases it, with no hook in the
//! executor. One lease row per record, whatever the queue: two pullers
//! never hold the same record.
//!
//! PostgreSQL takes the candidate `FOR UPDATE SKIP LOCKED` (concurrent
//! pullers skip each other's candidates instead of waiting) and inserts the
//! lease in the same statement; the lease's primary key refuses a second
//! holder that read an older snapshot, and the pull then tries again.
//! SQLite has one writer: the read and the insert run in one transaction
//! on it.
//!
//! The order is one or two index-friendly statements: with a `due:` first
//! key, the due records (`<field> <= now`, by that field) are tried first,
//! then the others, each arm `LIMIT 1`.

use super::{value_expr, Cond, Dialect, Filter, Key, Kind, Lit, Op, Query, Sql};
use crate::backend::{Error, RecordId};
use chrono::{DateTime, Utc};
use leadflow_engine::queue::{OrderKey, Queue as EngineQueue};
use leadflow_engine::Workflow;

/// One key of a queue's order, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderBy {
    /// Records whose instant (or date) has passed first, earliest first.
    Due(Key),
    /// Ascending or descending (`true`), missing values last.
    By(Key, bool),
}

/// A pull: who pulls what, when, and until when the record is theirs.
#[derive(Clone, Debug)]
pub struct Pull {
    pub workflow: String,
    pub queue: String,
    pub actor: String,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// The selection (`sort`, `desc`, `limit`, `after` are not read).
    pub select: Query,
    pub order: Vec<OrderBy>,
}

/// A record held by a puller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub record: RecordId,
    pub expires_at: DateTime<Utc>,
    /// The puller already held it (a repeated pull gives the same record).
    pub again: bool,
}

/// The capability: pull, and give back. Implemented by the SQL stores, the
/// memory store (`store/mem/work_queue.rs`) and `AnyBackend`.
#[allow(async_fn_in_trait)]
pub trait WorkQueue {
    /// The record the actor holds in this queue, else the best free one,
    /// now held; `None`: nothing to serve.
    async fn next(&self, p: &Pull) -> Result<Option<Claim>, Error>;
    /// Give back what the actor holds in the queue; the record given back,
    /// if any.
    async fn give_back(
        &self,
        workflow: &str,
        queue: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordId>, Error>;
}

/// The typed key of an order name (a field or a column).
pub fn order_key(wf: &Workflow, name: &str) -> Option<Key> {
    match wf.field(name) {
        Some(f) => Some(Key::Field {
            name: name.to_string(),
            kind: Kind::of(wf.fields[f].ty),
        }),
        None => super::Column::parse(name).map(Key::Column),
    }
}

/// The pull of queue `q` of `wf` for `actor` at `now`, seeing what
/// `visible_to` lets it see (`None`: everything), and the field names its
/// selection and order read (for the caller's `pii` check). The HTTP API
/// and the scenario harness build every pull here, whatever the store.
/// `Err`: the filter is not one the SQL stores can run (W082).
pub fn pull_of(
    tenant: &str,
    versions: &crate::apply::Versions,
    wf: &Workflow,
    q: &EngineQueue,
    actor: &str,
    visible_to: Option<super::Visibility>,
    now: DateTime<Utc>,
) -> Result<(Pull, Vec<String>), String> {
    let mut filters = Vec::new();
    let mut names = Vec::new();
    if let Some(src) = &q.filter_source {
        let f = super::view::translate(wf, src, now, actor)?;
        names.extend(super::view::fields_of(&f));
        filters.push(f);
    }
    if let Some(m) = &q.max_attempts {
        let k = Key::Field {
            name: m.field.clone(),
            kind: Kind::Num,
        };
        // A record never called has no count yet: served.
        filters.push(Filter::Any(vec![
            Filter::Cond(Cond {
                key: k.clone(),
                op: Op::Empty,
            }),
            Filter::Cond(Cond {
                key: k,
                op: Op::Lt(Lit::Num(m.max.to_string(), m.max as f64)),
            }),
        ]));
    }
    let mut order = Vec::new();
    for o in &q.order {
        // The loader refused unknown names (E038).
        let Some(k) = order_key(wf, o.name()) else {
            continue;
        };
        order.push(match o {
            OrderKey::Due(_) => OrderBy::Due(k),
            OrderKey::By { desc, .. } => OrderBy::By(k, *desc),
        });
        names.push(o.name().to_string());
    }
    let states: Vec<String> = q
        .states
        .iter()
        .map(|s| wf.state_name(*s).to_string())
        .collect();
    let select = Query {
        tenant: tenant.to_string(),
        workflow: Some(wf.id.clone()),
        // No states: the open ones.
        open_only: states.is_empty() || super::only_open(versions, Some(&wf.id), &states),
        states,
        filters,
        search: None,
        visible_to,
        sort: Key::Column(super::Column::Id),
        desc: false,
        limit: 1,
        after: None,
    };
    let pull = Pull {
        workflow: wf.id.clone(),
        queue: q.name.clone(),
        actor: actor.to_string(),
        now,
        lease_until: now + q.lease,
        select,
        order,
    };
    Ok((pull, names))
}

/// How many times a pull retries after losing a record to another puller.
pub const RETRIES: usize = 8;

impl Sql {
    /// An instant bound as a record column's value (`created_at`, the
    /// lease's `expires_at`).
    fn instant(&mut self, t: DateTime<Utc>) -> String {
        self.lit(&Key::Column(super::Column::Created), &Lit::Instant(t))
    }

    /// `now` as a value of `key` (a date field compares with today's date).
    fn now_as(&mut self, key: &Key, now: DateTime<Utc>) -> String {
        match key.kind() {
            Kind::Date => self.lit(key, &Lit::Date(now.date_naive())),
            _ => self.lit(key, &Lit::Instant(now)),
        }
    }
}

/// The arms of a pull, in the order they are tried: each the candidate
/// `SELECT id, revision` (at most one row, unlocked).
pub fn arms(d: Dialect, tenant: &str, p: &Pull) -> Vec<Sql> {
    let (first_due, rest) = match p.order.split_first() {
        Some((OrderBy::Due(k), rest)) => (Some(k), rest),
        _ => (None, &p.order[..]),
    };
    let arm = |due: Option<bool>| {
        let mut s = Sql::new(d);
        let mut wh = s.base(&p.select);
        let mut order = Vec::new();
        if let (Some(k), Some(due)) = (first_due, due) {
            let v = value_expr(d, k);
            let now = s.now_as(k, p.now);
            match due {
                true => {
                    wh.push(format!("{v} <= {now}"));
                    order.push(format!("{v} ASC"));
                }
                false => wh.push(format!("({v} IS NULL OR {v} > {now})")),
            }
        }
        for o in rest {
            order.extend(s.order_by(o, p.now));
        }
        order.push("id ASC".into());
        let now = s.instant(p.now);
        let t = s.arg(super::Arg::Text(tenant.to_string()));
        wh.push(format!(
            "NOT EXISTS (SELECT 1 FROM queue_leases l WHERE l.tenant_id = {t} AND l.record_id = records.id \
             AND l.revision = records.revision AND l.expires_at > {now})"
        ));
        s.text = format!(
            "SELECT id, revision FROM records WHERE {} ORDER BY {} LIMIT 1",
            wh.join(" AND "),
            order.join(", ")
        );
        if d == Dialect::Pg {
            s.text.push_str(" FOR UPDATE SKIP LOCKED");
        }
        s
    };
    match first_due {
        Some(_) => vec![arm(Some(true)), arm(Some(false))],
        None => vec![arm(None)],
    }
}

impl Sql {
    /// The `ORDER BY` terms of one key after the first.
    fn order_by(&mut self, o: &OrderBy, now: DateTime<Utc>) -> Vec<String> {
        match o {
            OrderBy::By(k, desc) => {
                let v = super::sort_expr(self.d, k);
                let dir = if *desc { "DESC" } else { "ASC" };
                vec![format!("{v} {dir} NULLS LAST")]
            }
            OrderBy::Due(k) => {
                let v = value_expr(self.d, k);
                let n = self.now_as(k, now);
                vec![
                    format!("CASE WHEN {v} <= {n} THEN 0 ELSE 1 END ASC"),
                    format!("CASE WHEN {v} <= {n} THEN {v} END ASC NULLS LAST"),
                ]
            }
        }
    }
}

/// The statement writing (or taking over an expired or released) lease:
/// args `tenant, record, workflow, queue, actor, revision, expires_at, now`;
/// returns `expires_at` when the lease is the puller's.
pub fn claim_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Pg => {
            "INSERT INTO queue_leases (tenant_id, record_id, workflow, queue, actor, revision, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, record_id) DO UPDATE SET workflow = EXCLUDED.workflow,
               queue = EXCLUDED.queue, actor = EXCLUDED.actor, revision = EXCLUDED.revision,
               expires_at = EXCLUDED.expires_at
             WHERE queue_leases.expires_at <= $8 OR queue_leases.revision <> EXCLUDED.revision
             RETURNING expires_at"
        }
        Dialect::Sqlite => {
            "INSERT INTO queue_leases (tenant_id, record_id, workflow, queue, actor, revision, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, record_id) DO UPDATE SET workflow = excluded.workflow,
               queue = excluded.queue, actor = excluded.actor, revision = excluded.revision,
               expires_at = excluded.expires_at
             WHERE queue_leases.expires_at <= ?8 OR queue_leases.revision <> excluded.revision
             RETURNING expires_at"
        }
    }
}

/// The lease the actor holds in the queue, if it still holds: args
/// `tenant, workflow, queue, actor, now`; returns `record_id, expires_at`.
pub fn held_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Pg => {
            "SELECT l.record_id, l.expires_at FROM queue_leases l
             JOIN records r ON r.tenant_id = l.tenant_id AND r.id = l.record_id AND r.revision = l.revision
             WHERE l.tenant_id = $1 AND l.workflow = $2 AND l.queue = $3 AND l.actor = $4 AND l.expires_at > $5
             ORDER BY l.expires_at DESC LIMIT 1"
        }
        Dialect::Sqlite => {
            "SELECT l.record_id, l.expires_at FROM queue_leases l
             JOIN records r ON r.tenant_id = l.tenant_id AND r.id = l.record_id AND r.revision = l.revision
             WHERE l.tenant_id = ?1 AND l.workflow = ?2 AND l.queue = ?3 AND l.actor = ?4 AND l.expires_at > ?5
             ORDER BY l.expires_at DESC LIMIT 1"
        }
    }
}

/// Give back the actor's leases in the queue: args `tenant, workflow,
/// queue, actor, now`; returns the records given back that were held.
pub fn release_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Pg => {
            "DELETE FROM queue_leases l USING records r
             WHERE r.tenant_id = l.tenant_id AND r.id = l.record_id
               AND l.tenant_id = $1 AND l.workflow = $2 AND l.queue = $3 AND l.actor = $4
             RETURNING l.record_id, (l.expires_at > $5 AND l.revision = r.revision)"
        }
        Dialect::Sqlite => {
            "DELETE FROM queue_leases
             WHERE tenant_id = ?1 AND workflow = ?2 AND queue = ?3 AND actor = ?4
             RETURNING record_id, (expires_at > ?5 AND revision =
               (SELECT revision FROM records r WHERE r.tenant_id = queue_leases.tenant_id AND r.id = queue_leases.record_id))"
        }
    }
}

impl WorkQueue for crate::any::AnyBackend {
    async fn next(&self, p: &Pull) -> Result<Option<Claim>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.next(p).await,
            crate::any::AnyBackend::Sqlite(b) => b.next(p).await,
            crate::any::AnyBackend::Mem(b) => b.next(p).await,
        }
    }
    async fn give_back(
        &self,
        workflow: &str,
        queue: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordId>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.give_back(workflow, queue, actor, now).await,
            crate::any::AnyBackend::Sqlite(b) => b.give_back(workflow, queue, actor, now).await,
            crate::any::AnyBackend::Mem(b) => b.give_back(workflow, queue, actor, now).await,
        }
    }
}
