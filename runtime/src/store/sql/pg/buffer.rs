//! PostgreSQL's write buffer: the writes of a transaction (record updates,
//! events, history, timer cancels and armings, outbox rows) kept until the
//! next read that must see them or the commit, then sent as one statement
//! of data-modifying CTEs over `UNNEST` arrays: fewer round trips per
//! transition, one for a whole timer batch.

use crate::apply::NewEvent;
use crate::backend::{Error, HistoryEntry, RecordId};
use crate::sql::db;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A record's row image after a transition.
pub(crate) struct Update {
    pub id: RecordId,
    pub version: String,
    pub state: String,
    pub is_final: bool,
    pub fields: serde_json::Value,
    pub assignee: Option<String>,
    pub revision: i64,
    pub entered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A timer armed (or re-armed) by a transition.
pub(crate) struct Arming {
    pub record: RecordId,
    pub timer: String,
    pub due: DateTime<Utc>,
    pub revision: i64,
    pub payload: Option<serde_json::Value>,
}

/// An outbox row queued by a transition.
pub(crate) struct Message {
    pub record: RecordId,
    pub template: String,
    pub recipients: serde_json::Value,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An event with its field rows.
struct Step {
    record: RecordId,
    revision: i64,
    event: NewEvent,
    rows: Vec<HistoryEntry>,
}

#[derive(Default)]
pub(crate) struct Buffer {
    updates: Vec<Update>,
    steps: Vec<Step>,
    cancels: Vec<(RecordId, String)>,
    arms: Vec<Arming>,
    outbox: Vec<Message>,
}

/// Which parts of the flush statement are present (an empty part is left
/// out, so the server plans and runs nothing for it). One record's update
/// is a plain primary key update, whatever the planner knows about the
/// table; several go through `UNNEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Parts {
    update_one: bool,
    update_many: bool,
    history: bool,
    events: bool,
    cancels: bool,
    arms: bool,
    outbox: bool,
}

impl Parts {
    /// How many different statements there are.
    const COUNT: usize = 1 << 7;

    fn bits(self) -> [bool; 7] {
        [
            self.update_one,
            self.update_many,
            self.history,
            self.events,
            self.cancels,
            self.arms,
            self.outbox,
        ]
    }

    fn index(self) -> usize {
        self.bits()
            .iter()
            .enumerate()
            .map(|(i, b)| usize::from(*b) << i)
            .sum()
    }

    fn from_index(i: usize) -> Parts {
        let b = |k: usize| i & (1 << k) != 0;
        Parts {
            update_one: b(0),
            update_many: b(1),
            history: b(2),
            events: b(3),
            cancels: b(4),
            arms: b(5),
            outbox: b(6),
        }
    }
}

impl Buffer {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
            && self.steps.is_empty()
            && self.cancels.is_empty()
            && self.arms.is_empty()
            && self.outbox.is_empty()
    }

    /// Whether `(id, timer)` is armed in the buffer.
    pub fn arms(&self, id: RecordId, timer: &str) -> bool {
        self.arms.iter().any(|a| a.record == id && a.timer == timer)
    }

    /// Whether `(id, timer)` is cancelled in the buffer.
    pub fn cancels(&self, id: RecordId, timer: &str) -> bool {
        self.cancels.iter().any(|(r, t)| *r == id && t == timer)
    }

    /// A record updated twice before a flush keeps its last row image.
    pub fn update(&mut self, u: Update) {
        match self.updates.iter_mut().find(|x| x.id == u.id) {
            Some(x) => *x = u,
            None => self.updates.push(u),
        }
    }

    pub fn event(
        &mut self,
        record: RecordId,
        revision: i64,
        event: NewEvent,
        rows: Vec<HistoryEntry>,
    ) {
        self.steps.push(Step {
            record,
            revision,
            event,
            rows,
        });
    }

    pub fn cancel(&mut self, record: RecordId, timer: &str) {
        self.cancels.push((record, timer.to_string()));
    }

    pub fn arm(&mut self, a: Arming) {
        self.arms.push(a);
    }

    /// Sent with the other buffered writes, in the order queued.
    pub fn message(&mut self, m: Message) {
        self.outbox.push(m);
    }

    fn parts(&self) -> Parts {
        Parts {
            update_one: self.updates.len() == 1,
            update_many: self.updates.len() > 1,
            history: self.steps.iter().any(|s| !s.rows.is_empty()),
            events: !self.steps.is_empty(),
            cancels: !self.cancels.is_empty(),
            arms: !self.arms.is_empty(),
            outbox: !self.outbox.is_empty(),
        }
    }

    /// Send the buffered writes in one statement and empty the buffer. The
    /// engine never cancels and arms the same timer in one outcome, and the
    /// caller flushes first when a timer row would be touched twice.
    /// On Citus (`citus`) the statement is built for the batch's row counts
    /// (see [`source`]); elsewhere it is one of a few fixed texts.
    pub async fn flush(
        &mut self,
        c: &mut PgConnection,
        tenant: &str,
        citus: bool,
    ) -> Result<(), Error> {
        if self.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(self);
        let parts = b.parts();
        let text;
        let sql = if citus {
            text = build_flush_sql(
                parts,
                Some(Rows {
                    history: b.steps.iter().map(|s| s.rows.len()).sum(),
                    events: b.steps.len(),
                    arms: b.arms.len(),
                    outbox: b.outbox.len(),
                }),
            );
            text.as_str()
        } else {
            flush_sql(parts)
        };
        let mut q = sqlx::query(sql).bind(tenant);
        if parts.update_one {
            if let Some(u) = b.updates.into_iter().next() {
                q = q
                    .bind(u.id)
                    .bind(u.version)
                    .bind(u.state)
                    .bind(u.is_final)
                    .bind(u.fields)
                    .bind(u.assignee)
                    .bind(u.revision)
                    .bind(u.entered_at)
                    .bind(u.updated_at);
            }
        } else if parts.update_many {
            let mut c = UpdateColumns::default();
            for u in b.updates {
                c.push(u);
            }
            q = q
                .bind(c.id)
                .bind(c.version)
                .bind(c.state)
                .bind(c.is_final)
                .bind(c.fields)
                .bind(c.assignee)
                .bind(c.revision)
                .bind(c.entered_at)
                .bind(c.updated_at);
        }
        let (h, e) = step_columns(b.steps);
        if parts.history {
            q = q
                .bind(h.record)
                .bind(h.revision)
                .bind(h.ord)
                .bind(h.at)
                .bind(h.actor)
                .bind(h.transition)
                .bind(h.field)
                .bind(h.old)
                .bind(h.new);
        }
        if parts.events {
            q = q
                .bind(e.record)
                .bind(e.revision)
                .bind(e.workflow)
                .bind(e.at)
                .bind(e.kind)
                .bind(e.actor)
                .bind(e.transition)
                .bind(e.from)
                .bind(e.to)
                .bind(e.assignee)
                .bind(e.input);
        }
        if parts.cancels {
            let (records, timers): (Vec<i64>, Vec<String>) = b.cancels.into_iter().unzip();
            q = q.bind(records).bind(timers);
        }
        if parts.arms {
            let mut a = ArmColumns::default();
            for x in b.arms {
                a.push(x);
            }
            q = q
                .bind(a.record)
                .bind(a.timer)
                .bind(a.due)
                .bind(a.revision)
                .bind(a.payload);
        }
        if parts.outbox {
            let mut o = MessageColumns::default();
            for m in b.outbox {
                o.push(m);
            }
            q = q
                .bind(o.record)
                .bind(o.template)
                .bind(o.recipients)
                .bind(o.payload)
                .bind(o.created_at);
        }
        q.execute(c).await.map_err(db)?;
        Ok(())
    }
}

/// `UNNEST` wants one array per column.
#[derive(Default)]
struct UpdateColumns {
    id: Vec<i64>,
    version: Vec<String>,
    state: Vec<String>,
    is_final: Vec<bool>,
    fields: Vec<serde_json::Value>,
    assignee: Vec<Option<String>>,
    revision: Vec<i64>,
    entered_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
}

impl UpdateColumns {
    fn push(&mut self, u: Update) {
        self.id.push(u.id);
        self.version.push(u.version);
        self.state.push(u.state);
        self.is_final.push(u.is_final);
        self.fields.push(u.fields);
        self.assignee.push(u.assignee);
        self.revision.push(u.revision);
        self.entered_at.push(u.entered_at);
        self.updated_at.push(u.updated_at);
    }
}

#[derive(Default)]
struct HistoryColumns {
    record: Vec<i64>,
    revision: Vec<i64>,
    ord: Vec<i32>,
    at: Vec<DateTime<Utc>>,
    actor: Vec<String>,
    transition: Vec<String>,
    field: Vec<String>,
    old: Vec<serde_json::Value>,
    new: Vec<serde_json::Value>,
}

#[derive(Default)]
struct EventColumns {
    record: Vec<i64>,
    revision: Vec<i64>,
    workflow: Vec<String>,
    at: Vec<DateTime<Utc>>,
    kind: Vec<&'static str>,
    actor: Vec<String>,
    transition: Vec<Option<String>>,
    from: Vec<Option<String>>,
    to: Vec<String>,
    assignee: Vec<Option<String>>,
    input: Vec<Option<serde_json::Value>>,
}

fn step_columns(steps: Vec<Step>) -> (HistoryColumns, EventColumns) {
    let (mut h, mut e) = (HistoryColumns::default(), EventColumns::default());
    for s in steps {
        for (ord, r) in s.rows.into_iter().enumerate() {
            h.record.push(s.record);
            h.revision.push(s.revision);
            h.ord.push(i32::try_from(ord).unwrap_or(i32::MAX));
            h.at.push(r.at);
            h.actor.push(r.actor);
            h.transition.push(r.transition);
            h.field.push(r.field);
            h.old.push(r.old);
            h.new.push(r.new);
        }
        let ev = s.event;
        e.record.push(s.record);
        e.revision.push(s.revision);
        e.workflow.push(ev.workflow);
        e.at.push(ev.at);
        e.kind.push(ev.kind.as_str());
        e.actor.push(ev.actor);
        e.transition.push(ev.transition);
        e.from.push(ev.from);
        e.to.push(ev.to);
        e.assignee.push(ev.assignee);
        e.input.push(ev.input);
    }
    (h, e)
}

#[derive(Default)]
struct ArmColumns {
    record: Vec<i64>,
    timer: Vec<String>,
    due: Vec<DateTime<Utc>>,
    revision: Vec<i64>,
    payload: Vec<Option<serde_json::Value>>,
}

impl ArmColumns {
    fn push(&mut self, a: Arming) {
        self.record.push(a.record);
        self.timer.push(a.timer);
        self.due.push(a.due);
        self.revision.push(a.revision);
        self.payload.push(a.payload);
    }
}

#[derive(Default)]
struct MessageColumns {
    record: Vec<i64>,
    template: Vec<String>,
    recipients: Vec<serde_json::Value>,
    payload: Vec<serde_json::Value>,
    created_at: Vec<DateTime<Utc>>,
}

impl MessageColumns {
    fn push(&mut self, m: Message) {
        self.record.push(m.record);
        self.template.push(m.template);
        self.recipients.push(m.recipients);
        self.payload.push(m.payload);
        self.created_at.push(m.created_at);
    }
}

/// The flush statement for a set of parts, built once per set. Parameters:
/// $1 the tenant, then each present part's arrays in order.
fn flush_sql(parts: Parts) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    &SQL.get_or_init(|| {
        (0..Parts::COUNT)
            .map(|i| build_flush_sql(Parts::from_index(i), None))
            .collect()
    })[parts.index()]
}

/// Rows of each inserting part, for the Citus form of the flush.
#[derive(Debug, Clone, Copy)]
struct Rows {
    history: usize,
    events: usize,
    arms: usize,
    outbox: usize,
}

/// The rows an `INSERT` takes: `select` (columns over `x.<name>`) from
/// `UNNEST` of the arrays `params`, in order (`ordered`: keep the arrays'
/// order, for ids drawn from a sequence). On Citus (`rows` given) a
/// `VALUES` list of the arrays' elements instead: Citus runs `INSERT ...
/// SELECT` from a function by pulling the rows to the coordinator and
/// copying them to the shard, which row-level security refuses (`COPY FROM
/// not supported with row-level security`), while a multi-row `VALUES`
/// insert of one tenant is a router statement on the tenant's shard.
fn source(
    rows: Option<usize>,
    select: &str,
    params: &[String],
    types: &[&str],
    names: &[&str],
    ordered: bool,
) -> String {
    let arrays: Vec<String> = params
        .iter()
        .zip(types)
        .map(|(p, t)| format!("{p}::{t}[]"))
        .collect();
    let Some(n) = rows else {
        return if ordered {
            format!(
                "SELECT {select} FROM UNNEST({}) WITH ORDINALITY AS x({}, n) ORDER BY x.n",
                arrays.join(", "),
                names.join(", ")
            )
        } else {
            format!(
                "SELECT {select} FROM UNNEST({}) AS x({})",
                arrays.join(", "),
                names.join(", ")
            )
        };
    };
    let values: Vec<String> = (1..=n)
        .map(|i| {
            let cols: Vec<String> = select
                .split(", ")
                .map(|c| match c.strip_prefix("x.") {
                    Some(name) => match names.iter().position(|n| *n == name) {
                        Some(k) => format!("({})[{i}]", arrays[k]),
                        None => c.to_string(),
                    },
                    None => c.to_string(),
                })
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect();
    format!("VALUES {}", values.join(", "))
}

/// Each join on UNNEST arrays also says `id = ANY(array)`: the index scan
/// then visits only the listed rows whatever the planner thinks of the join
/// (without statistics, or with one big tenant, it hashes the whole table).
/// `rows`: the Citus form (see [`source`]).
fn build_flush_sql(parts: Parts, rows: Option<Rows>) -> String {
    let mut n = 1;
    let mut p = |k: usize| {
        let s: Vec<String> = (n + 1..=n + k).map(|i| format!("${i}")).collect();
        n += k;
        s
    };
    let mut ctes = Vec::new();
    if parts.update_one {
        let a = p(9);
        ctes.push(format!(
            "u AS (UPDATE records SET version = {}, state = {}, is_final = {}, fields = {}, assignee = {}, revision = {},
                entered_at = {}, updated_at = {}
             WHERE tenant_id = $1 AND id = {})",
            a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[0]
        ));
    }
    if parts.update_many {
        let a = p(9);
        ctes.push(format!(
            "u AS (UPDATE records r SET version = x.version, state = x.state, is_final = x.is_final, fields = x.fields,
                assignee = x.assignee, revision = x.revision, entered_at = x.entered_at, updated_at = x.updated_at
             FROM UNNEST({}::bigint[], {}::text[], {}::text[], {}::bool[], {}::jsonb[], {}::text[], {}::bigint[], {}::timestamptz[], {}::timestamptz[])
                  AS x(id, version, state, is_final, fields, assignee, revision, entered_at, updated_at)
             WHERE r.tenant_id = $1 AND r.id = ANY({}) AND r.id = x.id)",
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[0]
        ));
    }
    if parts.history {
        let a = p(9);
        ctes.push(format!(
            "h AS (INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new) {})",
            source(
                rows.map(|r| r.history),
                "$1, x.record_id, x.revision, x.ord, x.at, x.actor, x.transition, x.field, x.old, x.new",
                &a,
                &["bigint", "bigint", "int", "timestamptz", "text", "text", "text", "jsonb", "jsonb"],
                &["record_id", "revision", "ord", "at", "actor", "transition", "field", "old", "new"],
                false,
            )
        ));
    }
    if parts.events {
        let a = p(11);
        ctes.push(format!(
            "e AS (INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input) {})",
            source(
                rows.map(|r| r.events),
                "$1, x.record_id, x.revision, x.workflow, x.at, x.kind, x.actor, x.transition, x.from_state, x.to_state, x.assignee, x.input",
                &a,
                &["bigint", "bigint", "text", "timestamptz", "text", "text", "text", "text", "text", "text", "jsonb"],
                &["record_id", "revision", "workflow", "at", "kind", "actor", "transition", "from_state", "to_state", "assignee", "input"],
                false,
            )
        ));
    }
    if parts.cancels {
        let a = p(2);
        ctes.push(format!(
            "c AS (DELETE FROM timers t USING UNNEST({}::bigint[], {}::text[]) AS d(record_id, timer)
             WHERE t.tenant_id = $1 AND t.record_id = ANY({}) AND t.record_id = d.record_id AND t.timer = d.timer)",
            a[0], a[1], a[0]
        ));
    }
    if parts.arms {
        let a = p(5);
        ctes.push(format!(
            "a AS (INSERT INTO timers (tenant_id, record_id, timer, due, seq, armed_revision, payload) {}
             ON CONFLICT (tenant_id, record_id, timer) DO UPDATE SET due = excluded.due, seq = excluded.seq,
                armed_revision = excluded.armed_revision, payload = excluded.payload, claim_owner = NULL, lease_until = NULL, fired_at = NULL,
                attempts = 0, last_error = NULL, next_attempt_at = NULL, parked_at = NULL)",
            source(
                rows.map(|r| r.arms),
                "$1, x.record_id, x.timer, x.due, nextval('timer_seq'), x.revision, x.payload",
                &a,
                &["bigint", "text", "timestamptz", "bigint", "jsonb"],
                &["record_id", "timer", "due", "revision", "payload"],
                false,
            )
        ));
    }
    if parts.outbox {
        let a = p(5);
        ctes.push(format!(
            "o AS (INSERT INTO outbox (tenant_id, id, record_id, template, recipients, payload, created_at, next_attempt) {})",
            source(
                rows.map(|r| r.outbox),
                "$1, nextval('outbox_ids'), x.record_id, x.template, x.recipients, x.payload, x.created_at, x.created_at",
                &a,
                &["bigint", "text", "jsonb", "jsonb", "timestamptz"],
                &["record_id", "template", "recipients", "payload", "created_at"],
                true,
            )
        ));
    }
    format!("WITH {} SELECT 1", ctes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_index_round_trips() {
        for i in 0..Parts::COUNT {
            assert_eq!(Parts::from_index(i).index(), i);
        }
    }

    #[test]
    fn flush_statement_numbers_parameters_in_part_order() {
        let sql = build_flush_sql(
            Parts {
                update_one: true,
                cancels: true,
                ..Parts::default()
            },
            None,
        );
        // The tenant, nine update columns, then the two cancel arrays.
        assert!(sql.contains("WHERE tenant_id = $1 AND id = $2)"), "{sql}");
        assert!(sql.contains("UNNEST($11::bigint[], $12::text[])"), "{sql}");
        assert!(!sql.contains("$13"), "{sql}");
        assert!(!sql.contains("INSERT INTO outbox"), "{sql}");
    }
}
