//! [`WorkQueue`] on the memory store (issue 13): the SQL stores' pull and
//! give-back (`store/sql/query/queue.rs`) over the records in memory, so
//! scenario files and a daemon on `memory:` serve `[queues]` alike. Not to
//! be confused with `mem/queue.rs`, the timers' due queue.
//!
//! A pull runs under the store's lock, so it is one claim, as on the SQL
//! stores: the record the puller already holds in the queue (`again`),
//! else the first record of the queue's order that matches its selection
//! and nobody holds, now leased to the puller. The selection is the
//! [`Pull`]'s `select` (workflow, states or the open ones, the caller's
//! visibility: [`Visibility`] evaluated as the SQL pieces read it) and the
//! queue's own `filter` and `max_attempts`: the filter is the workflow's
//! Rhai run by the engine (`leadflow_engine::lists::in_queue`, `actor.id`
//! the puller), as the scenario harness evaluates views, rather than its
//! SQL translation in `select.filters` (the same filter, which the pull
//! builder `queue::pull_of` translated first, so a filter the SQL stores
//! cannot run is refused on every store).
//!
//! A lease holds while it has not expired and the record is still at the
//! revision it was taken at: any transition releases it. One lease per
//! record, whatever the queue.
//!
//! Values compare by their declared type as the SQL stores' typed
//! expressions do: strings by code point, numbers as numbers, dates and
//! instants in time; a value of another type reads as missing. Order: with
//! a `due:` key, the records whose value has passed first (earliest
//! first); ascending or descending keys with missing values last; then the
//! id.

use super::{MemBackend, MemRecord};
use crate::apply;
use crate::backend::{Error, RecordId};
use crate::sql::query::queue::{Claim, OrderBy, Pull, WorkQueue};
use crate::sql::query::{Column, Key, Kind, Visibility};
use chrono::{DateTime, NaiveDate, Utc};
use leadflow_engine::{Actor, Record, Workflow};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// One record held by a puller.
#[derive(Debug, Clone)]
struct Lease {
    workflow: String,
    queue: String,
    actor: String,
    /// The record's revision when it was pulled.
    revision: i64,
    expires_at: DateTime<Utc>,
}

/// The memory store's leases, by record.
#[derive(Debug, Default)]
pub(super) struct Leases(HashMap<RecordId, Lease>);

impl Lease {
    /// Whether the lease still holds the record (at `revision`) at `now`.
    fn holds(&self, revision: i64, now: DateTime<Utc>) -> bool {
        self.expires_at > now && self.revision == revision
    }
}

/// A value read by its declared type.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Val {
    Text(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Val {
    fn cmp(&self, other: &Val) -> Ordering {
        self.partial_cmp(other).unwrap_or(Ordering::Equal)
    }
}

/// A field's stored value as `kind` (`None`: missing, or of another type).
fn typed(kind: Kind, v: &serde_json::Value) -> Option<Val> {
    use serde_json::Value as J;
    match (kind, v) {
        (Kind::Text, J::String(s)) => Some(Val::Text(s.clone())),
        (Kind::Num, J::Number(n)) => n.as_f64().map(Val::Num),
        (Kind::Num, J::String(s)) => s.trim().parse::<f64>().ok().map(Val::Num),
        (Kind::Bool, J::Bool(b)) => Some(Val::Bool(*b)),
        (Kind::Date, J::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Val::Date),
        (Kind::DateTime, J::String(s)) => {
            leadflow_engine::value::parse_instant(s).map(Val::Instant)
        }
        _ => None,
    }
}

/// A record as a pull reads it: its id, columns and fields as stored.
struct Row<'a> {
    id: RecordId,
    r: &'a MemRecord,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Row<'_> {
    fn state(&self) -> &str {
        self.r.wf.state_name(self.r.rec.state)
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(|v| v.as_str())
    }

    fn value(&self, key: &Key) -> Option<Val> {
        match key {
            Key::Column(c) => match c {
                Column::Id => Some(Val::Num(self.id as f64)),
                Column::Revision => Some(Val::Num(self.r.revision as f64)),
                Column::Workflow => Some(Val::Text(self.r.wf.id.clone())),
                Column::State => Some(Val::Text(self.state().to_string())),
                Column::Assignee => self.r.rec.assignee.clone().map(Val::Text),
                Column::Created => Some(Val::Instant(self.r.rec.created_at)),
                Column::Entered => Some(Val::Instant(self.r.rec.entered_at)),
                Column::Updated => Some(Val::Instant(self.r.updated_at)),
            },
            Key::Field { name, kind } => self.fields.get(name).and_then(|v| typed(*kind, v)),
        }
    }

    /// Whether the caller sees the record: the SQL stores' visibility
    /// condition (`Sql::visibility`), read in memory.
    fn visible(&self, v: &Visibility) -> bool {
        let wf = self.r.wf.id.as_str();
        let assignee = self.r.rec.assignee.as_deref();
        if assignee == Some(v.actor.as_str()) {
            return true;
        }
        let in_zones = |field: &str, zones: &[String]| {
            self.text(field)
                .is_some_and(|z| zones.iter().any(|c| c == z))
        };
        if !v.zones.is_empty()
            && v.pools.iter().any(|p| {
                p.workflow == wf
                    && in_zones(&p.zone_field, &v.zones)
                    && (p.followed
                        || (assignee.is_none() && p.states.iter().any(|s| s == self.state())))
            })
        {
            return true;
        }
        if v.all.iter().any(|w| w == wf) {
            return true;
        }
        if !v.reports.is_empty()
            && v.managed.iter().any(|w| w == wf)
            && assignee.is_some_and(|a| v.reports.iter().any(|r| r == a))
        {
            return true;
        }
        !v.area_zones.is_empty()
            && v.areas
                .iter()
                .any(|(w, f)| w == wf && in_zones(f, &v.area_zones))
    }
}

/// `now` as a value of `key`'s kind (a date compares with today's date).
fn now_as(key: &Key, now: DateTime<Utc>) -> Val {
    match key.kind() {
        Kind::Date => Val::Date(now.date_naive()),
        _ => Val::Instant(now),
    }
}

/// Whether a `due:` key's value has passed.
fn due(v: &Option<Val>, now: &Val) -> bool {
    v.as_ref()
        .is_some_and(|v| v.partial_cmp(now).is_some_and(|o| o != Ordering::Greater))
}

/// The order of two records by one key of a queue's order.
fn by_key(o: &OrderBy, a: &Option<Val>, b: &Option<Val>, now: DateTime<Utc>) -> Ordering {
    match o {
        OrderBy::Due(k) => {
            let n = now_as(k, now);
            match (due(a, &n), due(b, &n)) {
                (true, true) => a
                    .as_ref()
                    .zip(b.as_ref())
                    .map_or(Ordering::Equal, |(x, y)| x.cmp(y)),
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => Ordering::Equal,
            }
        }
        OrderBy::By(_, desc) => match (a, b) {
            (Some(x), Some(y)) if *desc => y.cmp(x),
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
    }
}

fn order_key(o: &OrderBy) -> &Key {
    match o {
        OrderBy::Due(k) | OrderBy::By(k, _) => k,
    }
}

/// Whether the record passes the queue's own filter and `max_attempts`,
/// read from the current version `cur` (the version the pull was built
/// from), for the puller `actor`.
fn passes(cur: &Workflow, row: &Row<'_>, p: &Pull, actor: &Actor) -> bool {
    let Some(q) = cur.queues.iter().find(|q| q.name == p.queue) else {
        return false;
    };
    if let Some(m) = &q.max_attempts {
        let n = row.fields.get(&m.field).and_then(|v| typed(Kind::Num, v));
        if matches!(n, Some(Val::Num(n)) if n >= m.max as f64) {
            return false;
        }
    }
    if q.filter.is_none() {
        return true;
    }
    // The filter's script belongs to `cur`: a record of another version is
    // read as `cur` declares it.
    let converted;
    let rec: &Record = if row.r.wf.hash == cur.hash {
        &row.r.rec
    } else {
        match Record::from_json(
            cur,
            row.state(),
            &row.fields,
            row.r.rec.assignee.clone(),
            row.r.rec.created_at,
            row.r.rec.entered_at,
        ) {
            Some(r) => {
                converted = r;
                &converted
            }
            None => return false,
        }
    };
    // A filter that fails on a record does not serve it (as a SQL
    // condition that reads nothing).
    leadflow_engine::lists::in_queue(cur, &p.queue, rec, actor, p.now).unwrap_or(false)
}

impl WorkQueue for MemBackend {
    async fn next(&self, p: &Pull) -> Result<Option<Claim>, Error> {
        let cur: Arc<Workflow> = self.versions.current(&p.workflow)?;
        let mut st = self.state.lock().await;
        // A repeated pull: the record the puller still holds here.
        let held = st
            .leases
            .0
            .iter()
            .filter(|(id, l)| {
                l.workflow == p.workflow
                    && l.queue == p.queue
                    && l.actor == p.actor
                    && st.record(**id).is_some_and(|r| l.holds(r.revision, p.now))
            })
            .max_by(|(ia, a), (ib, b)| a.expires_at.cmp(&b.expires_at).then(ib.cmp(ia)));
        if let Some((id, l)) = held {
            return Ok(Some(Claim {
                record: *id,
                expires_at: l.expires_at,
                again: true,
            }));
        }
        let actor = st
            .actors
            .iter()
            .find(|a| a.id == p.actor)
            .cloned()
            .unwrap_or_else(|| Actor {
                id: p.actor.clone(),
                ..Actor::default()
            });
        let s = &p.select;
        let mut best: Option<(Row<'_>, Vec<Option<Val>>)> = None;
        for (i, r) in st.records.iter().enumerate() {
            let id = i as RecordId + 1;
            if s.workflow.as_ref().is_some_and(|w| *w != r.wf.id)
                || (s.open_only && apply::is_final(&r.wf, &r.rec))
            {
                continue;
            }
            let state = r.wf.state_name(r.rec.state);
            if !s.states.is_empty() && !s.states.iter().any(|x| x == state) {
                continue;
            }
            if st
                .leases
                .0
                .get(&id)
                .is_some_and(|l| l.holds(r.revision, p.now))
            {
                continue;
            }
            let row = Row {
                id,
                r,
                fields: r.rec.fields_json(&r.wf),
            };
            if s.visible_to.as_ref().is_some_and(|v| !row.visible(v))
                || !passes(&cur, &row, p, &actor)
            {
                continue;
            }
            let keys: Vec<Option<Val>> = p.order.iter().map(|o| row.value(order_key(o))).collect();
            let better = match &best {
                None => true,
                Some((b, bk)) => {
                    let ord = p
                        .order
                        .iter()
                        .zip(keys.iter().zip(bk))
                        .map(|(o, (x, y))| by_key(o, x, y, p.now))
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                        .then(id.cmp(&b.id));
                    ord == Ordering::Less
                }
            };
            if better {
                best = Some((row, keys));
            }
        }
        let Some((row, _)) = best else {
            return Ok(None);
        };
        let (id, revision) = (row.id, row.r.revision);
        st.leases.0.insert(
            id,
            Lease {
                workflow: p.workflow.clone(),
                queue: p.queue.clone(),
                actor: p.actor.clone(),
                revision,
                expires_at: p.lease_until,
            },
        );
        Ok(Some(Claim {
            record: id,
            expires_at: p.lease_until,
            again: false,
        }))
    }

    async fn give_back(
        &self,
        workflow: &str,
        queue: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordId>, Error> {
        let mut st = self.state.lock().await;
        let mine: Vec<RecordId> = st
            .leases
            .0
            .iter()
            .filter(|(_, l)| l.workflow == workflow && l.queue == queue && l.actor == actor)
            .map(|(id, _)| *id)
            .collect();
        let mut given = None;
        for id in mine {
            let Some(l) = st.leases.0.remove(&id) else {
                continue;
            };
            if st.record(id).is_some_and(|r| l.holds(r.revision, now)) {
                given = Some(given.map_or(id, |g: RecordId| g.min(id)));
            }
        }
        Ok(given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, CreateRequest, FireRequest};
    use crate::sql::query::queue::pull_of;
    use crate::sql::query::PoolRule;
    use leadflow_engine::Value;

    const WF: &str = r#"
[workflow]
id = "w"
record = "lead"
initial = "open"
roles = ["op"]
[fields.zone]
type = "string"
[fields.tries]
type = "int"
[fields.due_at]
type = "datetime"
[fields.prio]
type = "int"
[states.open]
[states.done]
final = true
[transitions.touch]
from = ["open"]
by = ["op"]
input = ["prio"]
[transitions.close]
from = ["open"]
to = "done"
by = ["op"]
[queues.q]
filter = "lead.zone != \"x\""
order = ["due:due_at", "-prio"]
max_attempts = { field = "tries", max = 3 }
lease = "5m"
"#;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn op(id: &str) -> Actor {
        Actor {
            id: id.into(),
            role: "op".into(),
            ..Actor::default()
        }
    }

    fn store() -> MemBackend {
        let loaded = leadflow_engine::load(&leadflow_engine::Project {
            workflows: vec![leadflow_engine::SourceFile::new("workflows/w.toml", WF)],
            ..Default::default()
        });
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        MemBackend::new(Arc::new(loaded.set))
    }

    async fn create(b: &MemBackend, fields: &[(&str, Value)], now: DateTime<Utc>) -> RecordId {
        b.create(CreateRequest {
            workflow: "w",
            input: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            actor: &op("admin"),
            now,
            idempotency_key: None,
        })
        .await
        .unwrap()
        .id
    }

    async fn fire(b: &MemBackend, id: RecordId, transition: &str, now: DateTime<Utc>) {
        b.fire(FireRequest {
            record: id,
            transition,
            input: Vec::new(),
            actor: &op("admin"),
            now,
            expected_revision: None,
            idempotency_key: None,
            visible: None,
            bulk: false,
        })
        .await
        .unwrap();
    }

    fn pull(b: &MemBackend, actor: &str, vis: Option<Visibility>, now: DateTime<Utc>) -> Pull {
        let wf = b.versions().current("w").unwrap();
        pull_of("", b.versions(), &wf, &wf.queues[0], actor, vis, now)
            .unwrap()
            .0
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[tokio::test]
    async fn due_first_then_the_order_then_the_id_and_never_past_max_attempts() {
        let b = store();
        let now = t("2024-03-04T10:00:00Z");
        let zone = ("zone", s("RM"));
        let plain = create(&b, std::slice::from_ref(&zone), now).await;
        let high = create(&b, &[zone.clone(), ("prio", Value::Int(9))], now).await;
        let low = create(&b, &[zone.clone(), ("prio", Value::Int(1))], now).await;
        let due_late = create(
            &b,
            &[zone.clone(), ("due_at", s("2024-03-04T09:30:00Z"))],
            now,
        )
        .await;
        let due_early = create(
            &b,
            &[zone.clone(), ("due_at", s("2024-03-04T08:00:00Z"))],
            now,
        )
        .await;
        let future = create(
            &b,
            &[
                zone.clone(),
                ("prio", Value::Int(5)),
                ("due_at", s("2024-03-05T08:00:00Z")),
            ],
            now,
        )
        .await;
        let _spent = create(
            &b,
            &[
                zone.clone(),
                ("prio", Value::Int(99)),
                ("tries", Value::Int(3)),
            ],
            now,
        )
        .await;
        let _filtered = create(&b, &[("zone", s("x")), ("prio", Value::Int(99))], now).await;
        let closed = create(&b, &[zone.clone(), ("prio", Value::Int(99))], now).await;
        fire(&b, closed, "close", now).await;
        let mut got = Vec::new();
        for i in 0..7 {
            match b
                .next(&pull(&b, &format!("a{i}"), None, now))
                .await
                .unwrap()
            {
                Some(c) => {
                    assert!(!c.again);
                    got.push(c.record);
                }
                None => break,
            }
        }
        // Due (earliest first), then -prio (the future one is not due: 5),
        // missing last, by id; the spent, filtered and final ones never.
        assert_eq!(got, vec![due_early, due_late, high, future, low, plain]);
    }

    #[tokio::test]
    async fn a_lease_holds_until_a_transition_its_end_or_give_back() {
        let b = store();
        let now = t("2024-03-04T10:00:00Z");
        let first = create(&b, &[("zone", s("RM"))], now).await;
        let second = create(&b, &[("zone", s("RM"))], now).await;
        let c = b.next(&pull(&b, "a", None, now)).await.unwrap().unwrap();
        assert_eq!(
            (c.record, c.again, c.expires_at),
            (first, false, t("2024-03-04T10:05:00Z"))
        );
        // Asked again: the same record and lease.
        let later = t("2024-03-04T10:01:00Z");
        let again = b.next(&pull(&b, "a", None, later)).await.unwrap().unwrap();
        assert_eq!(
            (again.record, again.again, again.expires_at),
            (first, true, c.expires_at)
        );
        // Another puller gets the other one, a third nothing.
        let cb = b.next(&pull(&b, "b", None, later)).await.unwrap().unwrap();
        assert_eq!(cb.record, second);
        assert_eq!(b.next(&pull(&b, "c", None, later)).await.unwrap(), None);
        // A transition releases `first`.
        fire(&b, first, "touch", later).await;
        let cc = b.next(&pull(&b, "c", None, later)).await.unwrap().unwrap();
        assert_eq!((cc.record, cc.again), (first, false));
        // `a` held nothing any more: giving back gives nothing, and its
        // next pull is a new one (nothing free).
        assert_eq!(b.give_back("w", "q", "a", later).await.unwrap(), None);
        assert_eq!(b.next(&pull(&b, "a", None, later)).await.unwrap(), None);
        // Giving back frees the record for the next puller.
        assert_eq!(
            b.give_back("w", "q", "b", later).await.unwrap(),
            Some(second)
        );
        assert_eq!(b.give_back("w", "q", "b", later).await.unwrap(), None);
        let ca = b.next(&pull(&b, "a", None, later)).await.unwrap().unwrap();
        assert_eq!(ca.record, second);
        // Past its end, a lease holds nothing: `c`'s lease on `first` ends
        // at 10:06, and `d` gets it then (not before).
        let before = t("2024-03-04T10:05:59Z");
        assert_eq!(b.next(&pull(&b, "d", None, before)).await.unwrap(), None);
        let end = t("2024-03-04T10:06:00Z");
        let cd = b.next(&pull(&b, "d", None, end)).await.unwrap().unwrap();
        assert_eq!(cd.record, first);
        // `c` gives back nothing: its lease had ended.
        assert_eq!(b.give_back("w", "q", "c", end).await.unwrap(), None);
        // Another queue's give-back does not touch this one's leases.
        assert_eq!(b.give_back("w", "other", "d", end).await.unwrap(), None);
        let cd2 = b.next(&pull(&b, "d", None, end)).await.unwrap().unwrap();
        assert_eq!((cd2.record, cd2.again), (first, true));
    }

    fn nobody(actor: &str) -> Visibility {
        Visibility {
            actor: actor.into(),
            zones: Vec::new(),
            pools: Vec::new(),
            all: Vec::new(),
            managed: Vec::new(),
            reports: Vec::new(),
            areas: Vec::new(),
            area_zones: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_record_the_caller_may_not_see_is_never_served() {
        let b = store();
        let now = t("2024-03-04T10:00:00Z");
        let rm = create(&b, &[("zone", s("RM")), ("prio", Value::Int(1))], now).await;
        let na = create(&b, &[("zone", s("NA")), ("prio", Value::Int(9))], now).await;
        // Sees nothing of its own, no pools, no organisation.
        assert_eq!(
            b.next(&pull(&b, "a", Some(nobody("a")), now))
                .await
                .unwrap(),
            None
        );
        // The pool of zone RM (unassigned, open): only `rm`, though `na`
        // comes first in the order.
        let pooled = Visibility {
            zones: vec!["RM".into()],
            pools: vec![PoolRule {
                workflow: "w".into(),
                states: vec!["open".into()],
                zone_field: "zone".into(),
                followed: false,
            }],
            ..nobody("a")
        };
        let c = b
            .next(&pull(&b, "a", Some(pooled.clone()), now))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.record, rm);
        let other = Visibility {
            actor: "b".into(),
            ..pooled
        };
        assert_eq!(
            b.next(&pull(&b, "b", Some(other), now)).await.unwrap(),
            None
        );
        // An area of its zones: NA.
        let area = Visibility {
            areas: vec![("w".into(), "zone".into())],
            area_zones: vec!["NA".into()],
            ..nobody("c")
        };
        assert_eq!(
            b.next(&pull(&b, "c", Some(area), now))
                .await
                .unwrap()
                .unwrap()
                .record,
            na
        );
        // Every record of the workflow (`visible_to` its role): nothing
        // free is left.
        let all = Visibility {
            all: vec!["w".into()],
            ..nobody("d")
        };
        assert_eq!(b.next(&pull(&b, "d", Some(all), now)).await.unwrap(), None);
    }

    #[test]
    fn values_read_by_their_type_and_missing_ones_sort_last() {
        use serde_json::json;
        assert_eq!(typed(Kind::Num, &json!(2)), Some(Val::Num(2.0)));
        assert_eq!(typed(Kind::Num, &json!("x")), None);
        assert_eq!(typed(Kind::Text, &json!(2)), None);
        assert_eq!(
            typed(Kind::DateTime, &json!("2024-03-04T10:00:00+01:00")),
            Some(Val::Instant(t("2024-03-04T09:00:00Z")))
        );
        assert_eq!(
            typed(Kind::Date, &json!("2024-03-04")),
            NaiveDate::from_ymd_opt(2024, 3, 4).map(Val::Date)
        );
        let k = Key::Field {
            name: "p".into(),
            kind: Kind::Num,
        };
        let now = t("2024-03-04T10:00:00Z");
        let (one, two) = (Some(Val::Num(1.0)), Some(Val::Num(2.0)));
        for desc in [false, true] {
            let o = OrderBy::By(k.clone(), desc);
            assert_eq!(by_key(&o, &one, &None, now), Ordering::Less);
            assert_eq!(by_key(&o, &None, &two, now), Ordering::Greater);
        }
        assert_eq!(
            by_key(&OrderBy::By(k.clone(), true), &one, &two, now),
            Ordering::Greater
        );
        // A due date: today is due.
        let d = Key::Field {
            name: "d".into(),
            kind: Kind::Date,
        };
        let today = Some(Val::Date(now.date_naive()));
        let tomorrow = Some(Val::Date(now.date_naive().succ_opt().unwrap()));
        assert_eq!(
            by_key(&OrderBy::Due(d), &today, &tomorrow, now),
            Ordering::Less
        );
    }
}
