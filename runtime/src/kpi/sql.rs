//! The aggregate query of a declared KPI or report, for PostgreSQL and
//! SQLite (docs/kpis.md shows what each seed's KPI becomes).
//!
//! One statement per KPI: an inner SELECT over the workflow's records
//! computes per record its group keys, anchor, start and stop instants (in
//! milliseconds since the epoch, rounded to the nearest) and its hit and
//! funnel-step flags (event lookups are correlated subqueries on the
//! events' primary key); the outer SELECT keeps the range, joins the
//! period buckets (computed in Rust in the calendar's zone, so DST and
//! quarters are exact on both dialects) and counts per group.

use super::{Agg, Fact, GroupKey, Query, QueryError, Range};
use crate::backend::Error;
use crate::pg::PgBackend;
use crate::sql::db;
use crate::sqlite::SqliteBackend;
use crate::store::sql::query;
use chrono::{DateTime, SecondsFormat, Utc};
use leadflow_engine::measure::{Interval, Measure, Moment, PeriodKind, Spec, Where};
use leadflow_engine::{FieldType, Workflow};
use std::collections::BTreeMap;

/// A SQL store a query runs on.
pub enum SqlStore<'a> {
    Pg(&'a PgBackend),
    Sqlite(&'a SqliteBackend),
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Pg,
    Sqlite,
}

enum Arg {
    Text(String),
    Int(i64),
}

/// Query text under construction with its arguments.
struct Sql {
    d: Dialect,
    args: Vec<Arg>,
    /// The tenant's placeholder once bound: subqueries on `events` repeat
    /// it, so that on Citus each of them reaches the tenant's shard alone
    /// (a correlation `e.tenant_id = r.tenant_id` does not tell it).
    tenant: Option<String>,
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        match self.d {
            Dialect::Pg => format!("${}", self.args.len()),
            Dialect::Sqlite => format!("?{}", self.args.len()),
        }
    }

    /// What a subquery compares `e.tenant_id` with.
    fn tenant_key(&self) -> String {
        self.tenant
            .clone()
            .unwrap_or_else(|| "r.tenant_id".to_string())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_string()))
    }

    fn int(&mut self, i: i64) -> String {
        self.arg(Arg::Int(i))
    }

    fn list(&mut self, items: &[String]) -> String {
        let ph: Vec<String> = items.iter().map(|s| self.text(s)).collect();
        format!("({})", ph.join(", "))
    }

    /// A field's stored value as text (NULL when empty): what
    /// `measure::json_text` gives in memory.
    fn field_text(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => format!("(r.fields ->> {})", self.text(name)),
            Dialect::Sqlite => {
                let p = self.text(&format!("$.\"{}\"", name.replace('"', "")));
                format!(
                    "CAST(CASE json_type(r.fields, {p}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE r.fields ->> {p} END AS TEXT)"
                )
            }
        }
    }

    /// A datetime field in milliseconds.
    fn field_ms(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => format!(
                "round(date_part('epoch', (r.fields ->> {})::timestamptz) * 1000)::bigint",
                self.text(name)
            ),
            Dialect::Sqlite => {
                let p = self.text(&format!("$.\"{}\"", name.replace('"', "")));
                format!("CAST(round(unixepoch(r.fields ->> {p}, 'subsec') * 1000) AS INTEGER)")
            }
        }
    }

    /// A stored instant column in milliseconds.
    fn col_ms(&self, col: &str) -> String {
        match self.d {
            // `date_part` is double precision: `extract` gives numeric, whose
            // arithmetic made the per-record conversions most of an SLA's
            // time on a million leads (docs/benchmarks.md).
            Dialect::Pg => format!("round(date_part('epoch', {col}) * 1000)::bigint"),
            Dialect::Sqlite => format!("(({col} + 500) / 1000)"),
        }
    }

    fn number(&mut self, field: &str, n: &rust_decimal::Decimal) -> (String, String) {
        match self.d {
            Dialect::Pg => (
                format!("(r.fields ->> {})::numeric", self.text(field)),
                format!("CAST({} AS numeric)", self.text(&n.to_string())),
            ),
            Dialect::Sqlite => {
                let p = self.text(&format!("$.\"{}\"", field.replace('"', "")));
                (
                    format!("CAST(r.fields ->> {p} AS REAL)"),
                    format!("CAST({} AS REAL)", self.text(&n.to_string())),
                )
            }
        }
    }

    /// A record's instant for `m`, in milliseconds (NULL when it has none).
    fn moment(&mut self, m: &Moment) -> String {
        match m {
            Moment::Created => self.col_ms("r.created_at"),
            Moment::Field(f) => self.field_ms(f),
            Moment::Transition(t) => {
                let tenant = self.tenant_key();
                let t = self.text(t);
                let at = self.col_ms("min(e.at)");
                format!("(SELECT {at} FROM events e WHERE e.tenant_id = {tenant} AND e.record_id = r.id AND e.transition = {t})")
            }
            Moment::Entered(s) => {
                let tenant = self.tenant_key();
                let s = self.text(s);
                let at = self.col_ms("min(e.at)");
                let entered = self.entered();
                format!("(SELECT {at} FROM events e WHERE e.tenant_id = {tenant} AND e.record_id = r.id AND e.to_state = {s} AND {entered})")
            }
        }
    }

    fn reached(&mut self, states: &[String]) -> String {
        let tenant = self.tenant_key();
        let l1 = self.list(states);
        let l2 = self.list(states);
        let entered = self.entered();
        format!("(r.state IN {l1} OR EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = {tenant} AND e.record_id = r.id AND e.to_state IN {l2} AND {entered}))")
    }

    /// The events that enter their `to_state` (a create, or a move from
    /// another state): the first event into a state is always one, so
    /// "reached" and "entered at" read only these, which the partial
    /// index `events_entered` holds (a record's many self-transitions,
    /// contact attempts and edits, are not in it).
    fn entered(&self) -> &'static str {
        match self.d {
            Dialect::Pg => "e.from_state IS DISTINCT FROM e.to_state",
            Dialect::Sqlite => "e.from_state IS NOT e.to_state",
        }
    }

    /// A condition on the inner SELECT that an index can serve, implied by
    /// the outer range on the anchor (the outer range stays the exact
    /// test; this one is widened by a millisecond on each side because the
    /// outer one compares rounded milliseconds):
    /// - a datetime field declared `indexed = true`: the typed expression
    ///   the record queries index (`store::sql::query`);
    /// - `transition:<t>`: records with such an event in the range
    ///   (`events_transition`);
    /// - `entered:<state>`: records with an entering event in the range
    ///   (`events_entered`);
    /// - `created`: the column.
    fn anchor_range(&mut self, wf: &Workflow, anchor: &Moment, range: &Range) -> Option<String> {
        if range.from.is_none() && range.to.is_none() {
            return None;
        }
        let from = range.from.map(|t| t - chrono::Duration::milliseconds(1));
        let to = range.to.map(|t| t + chrono::Duration::milliseconds(1));
        let span = |s: &mut Self, expr: &str| -> String {
            let mut c = Vec::new();
            if let Some(t) = from {
                c.push(format!("{expr} >= {}", s.instant(t)));
            }
            if let Some(t) = to {
                c.push(format!("{expr} < {}", s.instant(t)));
            }
            c.join(" AND ")
        };
        match anchor {
            Moment::Field(name) => {
                let f = &wf.fields[wf.field(name)?];
                if !f.indexed || f.ty != FieldType::Datetime {
                    return None;
                }
                let d = match self.d {
                    Dialect::Pg => query::Dialect::Pg,
                    Dialect::Sqlite => query::Dialect::Sqlite,
                };
                let key = query::Key::Field {
                    name: name.clone(),
                    kind: query::Kind::DateTime,
                };
                // Unqualified `fields`: the inner SELECT reads `records r`
                // only, and both databases match the index expression after
                // resolving it. SQLite's expression is in milliseconds.
                let expr = query::value_expr(d, &key);
                let mut c = Vec::new();
                if let Some(t) = from {
                    c.push(format!("{expr} >= {}", self.typed_instant(t)));
                }
                if let Some(t) = to {
                    c.push(format!("{expr} < {}", self.typed_instant(t)));
                }
                Some(c.join(" AND "))
            }
            Moment::Transition(t) => {
                let tenant = self.tenant_key();
                let t = self.text(t);
                let w = self.text(&wf.id);
                let at = span(self, "e.at");
                Some(format!("r.id IN (SELECT e.record_id FROM events e WHERE e.tenant_id = {tenant} AND e.workflow = {w} AND e.transition = {t} AND {at})"))
            }
            Moment::Entered(st) => {
                let tenant = self.tenant_key();
                let st = self.text(st);
                let entered = self.entered();
                let at = span(self, "e.at");
                Some(format!("r.id IN (SELECT e.record_id FROM events e WHERE e.tenant_id = {tenant} AND e.to_state = {st} AND {entered} AND {at})"))
            }
            Moment::Created => Some(span(self, "r.created_at")),
        }
    }

    /// An instant as the stored columns compare it.
    fn instant(&mut self, t: DateTime<Utc>) -> String {
        match self.d {
            Dialect::Pg => {
                let v = self.text(&t.to_rfc3339_opts(SecondsFormat::Micros, true));
                format!("CAST({v} AS timestamptz)")
            }
            // SQLite stores instants as microseconds since the epoch.
            Dialect::Sqlite => self.int(t.timestamp_micros()),
        }
    }

    /// An instant as the typed field expression of the record queries
    /// compares it (PostgreSQL timestamptz, SQLite milliseconds).
    fn typed_instant(&mut self, t: DateTime<Utc>) -> String {
        match self.d {
            Dialect::Pg => self.instant(t),
            Dialect::Sqlite => self.int(super::millis(t)),
        }
    }

    /// Every condition of `w`, as one boolean expression.
    fn cond(&mut self, w: &Where) -> String {
        let mut c = vec!["1 = 1".to_string()];
        if !w.states.is_empty() {
            c.push(format!("r.state IN {}", self.list(&w.states)));
        }
        if !w.reached.is_empty() {
            c.push(self.reached(&w.reached));
        }
        for f in &w.set {
            c.push(format!("{} IS NOT NULL", self.field_text(f)));
        }
        for f in &w.unset {
            c.push(format!("{} IS NULL", self.field_text(f)));
        }
        for (f, vs) in &w.equals {
            if vs.is_empty() {
                c.push("1 = 0".into());
            } else {
                let t = self.field_text(f);
                c.push(format!("{t} IN {}", self.list(vs)));
            }
        }
        for (f, n) in &w.above {
            let (a, b) = self.number(f, n);
            c.push(format!("{a} > {b}"));
        }
        for (f, n) in &w.below {
            let (a, b) = self.number(f, n);
            c.push(format!("{a} < {b}"));
        }
        format!("({})", c.join(" AND "))
    }

    /// The period buckets as a table `p(label, lo, hi)`.
    fn buckets(&mut self, b: &[Interval]) -> String {
        let ms = |t| super::millis(t);
        match self.d {
            Dialect::Pg => {
                let rows: Vec<serde_json::Value> = b
                    .iter()
                    .map(
                        |i| serde_json::json!({"label": i.label, "lo": ms(i.from), "hi": ms(i.to)}),
                    )
                    .collect();
                let j = self.text(&serde_json::Value::from(rows).to_string());
                format!("(SELECT * FROM jsonb_to_recordset({j}::jsonb) AS u(label text, lo bigint, hi bigint))")
            }
            Dialect::Sqlite => {
                let rows: Vec<serde_json::Value> = b
                    .iter()
                    .map(|i| serde_json::json!([i.label, ms(i.from), ms(i.to)]))
                    .collect();
                let j = self.text(&serde_json::Value::from(rows).to_string());
                format!("(SELECT value ->> '$[0]' AS label, value ->> '$[1]' AS lo, value ->> '$[2]' AS hi FROM json_each({j}))")
            }
        }
    }

    fn bigint(&self) -> &'static str {
        match self.d {
            Dialect::Pg => "BIGINT",
            Dialect::Sqlite => "INTEGER",
        }
    }
}

/// The inner SELECT (one row per record of the population) and the outer
/// FROM/WHERE with the range and the buckets; `keys` are the outer
/// expressions of the group keys.
fn base(
    s: &mut Sql,
    tenant: &str,
    q: &Query<'_>,
    spec: &Spec,
    anchor: &Moment,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
) -> (String, Vec<String>) {
    let tenant = s.text(tenant);
    s.tenant = Some(tenant.clone());
    let workflow = s.text(&q.wf.id);
    let mut cols = Vec::new();
    let mut keys = Vec::new();
    for (i, g) in q.group_by.iter().enumerate() {
        let expr = match g {
            GroupKey::Assignee => "coalesce(r.assignee, '')".to_string(),
            GroupKey::State => "r.state".to_string(),
            GroupKey::Field(f) => format!("coalesce({}, '')", s.field_text(f)),
            GroupKey::Period(_) => {
                keys.push("p.label".to_string());
                continue;
            }
        };
        cols.push(format!("{expr} AS k{i}"));
        keys.push(format!("x.k{i}"));
    }
    cols.push(format!("{} AS anchor", s.moment(anchor)));
    let (t0, t1) = match &spec.measure {
        Measure::Sla { start, stop, .. } => (s.moment(start), s.moment(stop)),
        _ => ("NULL".to_string(), "NULL".to_string()),
    };
    let big = s.bigint();
    cols.push(format!("CAST({t0} AS {big}) AS t0"));
    cols.push(format!("CAST({t1} AS {big}) AS t1"));
    let hit = match &spec.measure {
        Measure::Ratio(h) => s.cond(h),
        _ => "1 = 0".to_string(),
    };
    cols.push(format!("CASE WHEN {hit} THEN 1 ELSE 0 END AS hit"));
    // Funnel steps: which steps each record reached, from one aggregate
    // over the entering events of the steps' states, joined once (per-
    // record `EXISTS` probes in the select list cannot become a join:
    // three probes per lead made a year's funnel over a million leads take
    // 16 s, docs/benchmarks.md).
    let mut funnel_join = String::new();
    if let Measure::Funnel(steps) = &spec.measure {
        if !steps.is_empty() {
            let states = s.list(steps);
            let entered = s.entered();
            let mut flags = Vec::new();
            for (i, st) in steps.iter().enumerate() {
                let p = s.text(st);
                flags.push(format!(
                    "max(CASE WHEN e.to_state = {p} THEN 1 ELSE 0 END) AS f{i}"
                ));
                let p = s.text(st);
                cols.push(format!(
                    "CASE WHEN r.state = {p} OR f.f{i} = 1 THEN 1 ELSE 0 END AS s{i}"
                ));
            }
            funnel_join = format!(
                " LEFT JOIN (SELECT e.record_id, {} FROM events e WHERE e.tenant_id = {tenant} AND e.to_state IN {states} AND {entered} GROUP BY e.record_id) f ON f.record_id = r.id",
                flags.join(", ")
            );
        }
    }
    let mut of = s.cond(&spec.of);
    if let Some(c) = s.anchor_range(q.wf, anchor, range) {
        of = format!("{of} AND {c}");
    }
    let mut outer = Vec::new();
    if let Some(f) = range.from {
        outer.push(format!("x.anchor >= {}", s.int(super::millis(f))));
    }
    if let Some(t) = range.to {
        outer.push(format!("x.anchor < {}", s.int(super::millis(t))));
    }
    if matches!(spec.measure, Measure::Sla { .. }) {
        outer.push("x.t0 IS NOT NULL".into());
    }
    let join = match periods {
        Some((_, b)) => format!(
            " JOIN {} p ON x.anchor >= p.lo AND x.anchor < p.hi",
            s.buckets(b)
        ),
        None => String::new(),
    };
    let wh = if outer.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", outer.join(" AND "))
    };
    let from = format!(
        "(SELECT {} FROM records r{funnel_join} WHERE r.tenant_id = {tenant} AND r.workflow = {workflow} AND {of}) x{join}{wh}",
        cols.join(", ")
    );
    (from, keys)
}

fn key_cols(keys: &[String]) -> String {
    keys.iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS g{i}, "))
        .collect()
}

/// The aggregate statement: per group population, hits, timed count and
/// milliseconds, and funnel steps.
fn aggregate_sql(
    d: Dialect,
    tenant: &str,
    q: &Query<'_>,
    spec: &Spec,
    anchor: &Moment,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
) -> (String, Vec<Arg>, usize) {
    let mut s = Sql {
        d,
        args: Vec::new(),
        tenant: None,
    };
    let (from, keys) = base(&mut s, tenant, q, spec, anchor, range, periods);
    let big = s.bigint();
    let hit = match &spec.measure {
        Measure::Ratio(_) => "x.hit".to_string(),
        Measure::Count => "0".to_string(),
        Measure::Funnel(steps) => match steps.len() {
            0 => "0".to_string(),
            n => format!("x.s{}", n - 1),
        },
        Measure::Sla { .. } => match spec.within_ms() {
            Some(ms) => format!(
                "CASE WHEN x.t1 IS NOT NULL AND x.t1 - x.t0 <= {} THEN 1 ELSE 0 END",
                s.int(ms)
            ),
            None => "CASE WHEN x.t1 IS NOT NULL THEN 1 ELSE 0 END".to_string(),
        },
    };
    let steps = match &spec.measure {
        Measure::Funnel(st) => st.len(),
        _ => 0,
    };
    let step_cols: String = (0..steps)
        .map(|i| format!(", CAST(coalesce(sum(x.s{i}), 0) AS {big}) AS s{i}"))
        .collect();
    let group = if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", keys.join(", "))
    };
    let text = format!(
        "SELECT {}CAST(count(*) AS {big}) AS population, CAST(coalesce(sum({hit}), 0) AS {big}) AS hits,
                CAST(coalesce(sum(CASE WHEN x.t0 IS NOT NULL AND x.t1 IS NOT NULL THEN 1 ELSE 0 END), 0) AS {big}) AS timed,
                CAST(coalesce(sum(CASE WHEN x.t0 IS NOT NULL AND x.t1 IS NOT NULL THEN x.t1 - x.t0 ELSE 0 END), 0) AS {big}) AS timed_ms{step_cols}
         FROM {from}{group}",
        key_cols(&keys)
    );
    (text, s.args, keys.len())
}

/// The per-record statement (working-time SLAs): group keys, t0, t1.
fn facts_sql(
    d: Dialect,
    tenant: &str,
    q: &Query<'_>,
    spec: &Spec,
    anchor: &Moment,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
) -> (String, Vec<Arg>, usize) {
    let mut s = Sql {
        d,
        args: Vec::new(),
        tenant: None,
    };
    let (from, keys) = base(&mut s, tenant, q, spec, anchor, range, periods);
    let text = format!(
        "SELECT {}x.t0 AS t0, x.t1 AS t1 FROM {from}",
        key_cols(&keys)
    );
    (text, s.args, keys.len())
}

impl SqlStore<'_> {
    fn tenant(&self) -> &str {
        match self {
            SqlStore::Pg(p) => p.tenant(),
            SqlStore::Sqlite(s) => s.tenant(),
        }
    }

    async fn rows(&self, built: (String, Vec<Arg>, usize)) -> Result<Vec<Vec<Cell>>, Error> {
        use sqlx::{Column, Row};
        let (text, args, _) = built;
        let read = |names: Vec<String>, get: &dyn Fn(usize) -> Result<Cell, sqlx::Error>| {
            (0..names.len())
                .map(get)
                .collect::<Result<Vec<Cell>, sqlx::Error>>()
        };
        match self {
            SqlStore::Pg(pg) => {
                let mut qy = sqlx::query(&text);
                for a in args {
                    qy = match a {
                        Arg::Text(v) => qy.bind(v),
                        Arg::Int(i) => qy.bind(i),
                    };
                }
                let mut tx = pg.tx().await?;
                let rows = qy.fetch_all(&mut *tx).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let names: Vec<String> =
                            r.columns().iter().map(|c| c.name().to_string()).collect();
                        read(names, &|i| {
                            if r.columns()[i].name().starts_with('g') {
                                r.try_get::<Option<String>, _>(i)
                                    .map(|v| Cell::Text(v.unwrap_or_default()))
                            } else {
                                r.try_get::<Option<i64>, _>(i).map(Cell::Int)
                            }
                        })
                        .map_err(db)
                    })
                    .collect()
            }
            SqlStore::Sqlite(lite) => {
                let mut qy = sqlx::query(&text);
                for a in args {
                    qy = match a {
                        Arg::Text(v) => qy.bind(v),
                        Arg::Int(i) => qy.bind(i),
                    };
                }
                let mut conn = lite.read_pool().acquire().await.map_err(db)?;
                let rows = qy.fetch_all(&mut *conn).await.map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let names: Vec<String> =
                            r.columns().iter().map(|c| c.name().to_string()).collect();
                        read(names, &|i| {
                            if r.columns()[i].name().starts_with('g') {
                                r.try_get::<Option<String>, _>(i)
                                    .map(|v| Cell::Text(v.unwrap_or_default()))
                            } else {
                                r.try_get::<Option<i64>, _>(i).map(Cell::Int)
                            }
                        })
                        .map_err(db)
                    })
                    .collect()
            }
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            SqlStore::Pg(_) => Dialect::Pg,
            SqlStore::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Counts per group, aggregated by the database.
    pub(crate) async fn aggregate(
        &self,
        q: &Query<'_>,
        spec: &Spec,
        anchor: &Moment,
        range: &Range,
        periods: Option<&(PeriodKind, Vec<Interval>)>,
    ) -> Result<BTreeMap<Vec<String>, Agg>, QueryError> {
        let built = aggregate_sql(
            self.dialect(),
            self.tenant(),
            q,
            spec,
            anchor,
            range,
            periods,
        );
        let n = built.2;
        let mut out = BTreeMap::new();
        for row in self.rows(built).await? {
            let (group, rest) = row.split_at(n.min(row.len()));
            let group: Vec<String> = group.iter().map(Cell::text).collect();
            let ints: Vec<i64> = rest.iter().map(Cell::int).collect();
            let [population, hits, timed, timed_ms, steps @ ..] = ints.as_slice() else {
                return Err(QueryError::Store(Error::storage("kpi query: short row")));
            };
            if *population == 0 {
                // An aggregate without GROUP BY over no row.
                continue;
            }
            out.insert(
                group,
                Agg {
                    population: *population,
                    hits: *hits,
                    timed: *timed,
                    timed_ms: *timed_ms,
                    steps: steps.to_vec(),
                },
            );
        }
        Ok(out)
    }

    /// One fact per record of the population (working-time SLAs).
    pub(crate) async fn facts(
        &self,
        q: &Query<'_>,
        spec: &Spec,
        anchor: &Moment,
        range: &Range,
        periods: Option<&(PeriodKind, Vec<Interval>)>,
    ) -> Result<Vec<Fact>, QueryError> {
        let built = facts_sql(
            self.dialect(),
            self.tenant(),
            q,
            spec,
            anchor,
            range,
            periods,
        );
        let n = built.2;
        let mut out = Vec::new();
        for row in self.rows(built).await? {
            let (group, rest) = row.split_at(n.min(row.len()));
            let t = |i: usize| rest.get(i).and_then(Cell::opt_int);
            out.push(Fact {
                group: group.iter().map(Cell::text).collect(),
                t0: t(0),
                t1: t(1),
                hit: false,
                steps: Vec::new(),
            });
        }
        Ok(out)
    }
}

enum Cell {
    Text(String),
    Int(Option<i64>),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.map(|i| i.to_string()).unwrap_or_default(),
        }
    }
    fn int(&self) -> i64 {
        self.opt_int().unwrap_or(0)
    }
    fn opt_int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => *i,
            Cell::Text(s) => s.parse().ok(),
        }
    }
}

/// The statement a declared KPI becomes, with its arguments listed after
/// it (docs/kpis.md; `leadflow kpi --show-sql`). `None` for a Rhai KPI.
pub fn show(
    postgres: bool,
    q: &Query<'_>,
    kpi: &leadflow_engine::model::Kpi,
) -> Result<Option<String>, QueryError> {
    let Some(spec) = &kpi.spec else {
        return Ok(None);
    };
    let range = super::kpi_range(kpi, q);
    let periods = super::period_buckets(q, &range)?;
    let d = if postgres {
        Dialect::Pg
    } else {
        Dialect::Sqlite
    };
    let (text, args, _) = if spec.needs_calendar() {
        facts_sql(
            d,
            "<tenant>",
            q,
            spec,
            &kpi.anchor,
            &range,
            periods.as_ref(),
        )
    } else {
        aggregate_sql(
            d,
            "<tenant>",
            q,
            spec,
            &kpi.anchor,
            &range,
            periods.as_ref(),
        )
    };
    let mut out = text;
    for (i, a) in args.iter().enumerate() {
        let v = match a {
            Arg::Text(s) => format!("'{s}'"),
            Arg::Int(n) => n.to_string(),
        };
        let p = if postgres {
            format!("${}", i + 1)
        } else {
            format!("?{}", i + 1)
        };
        out.push_str(&format!("\n-- {p} = {v}"));
    }
    Ok(Some(out))
}
