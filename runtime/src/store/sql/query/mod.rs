//! `RecordQuery`: typed, indexed record queries (issue 17 section 1), the
//! one place that turns a list query into SQL. The query is built once,
//! dialect-neutral ([`Query`] -> [`Sql`]); only value expressions,
//! placeholders and casts differ by dialect (`pg.rs` and `sqlite.rs` run it).
//!
//! Typing: a field is compared and sorted by the value of its declared type
//! (a [`Kind`]), never by its JSON encoding: numbers as numbers (PostgreSQL
//! `numeric`, SQLite `REAL`), instants as instants, dates as dates, strings
//! by code point (`COLLATE "C"` on PostgreSQL, SQLite's `BINARY`: the same
//! order on both stores, and a `prefix:` filter reads an index range). A
//! value of another type (a field retyped between versions) reads as
//! missing.
//!
//! Order and keyset: missing values first ascending, last descending, ties
//! by id. The query is two index-ordered arms (missing values, present
//! values) of at most `limit + 1` rows each, merged: each arm walks an
//! index in order from the cursor, so page 1,000 costs what page 1 does.
//!
//! Indexes: every field declared `indexed = true` in a published version
//! gets one expression index `(tenant_id, <typed value>, id)`; see
//! [`IndexSpec`].

mod backfill;
pub mod pg;
pub mod queue;
mod queue_pg;
mod queue_sqlite;
pub mod sqlite;
pub mod view;

use crate::backend::{Error, StoredRecord};
use chrono::{DateTime, NaiveDate, Utc};
use leadflow_engine::FieldType;

/// The SQL dialect a statement is rendered for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dialect {
    Pg,
    Sqlite,
}

/// How a field's value compares and sorts.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    /// string, text, enum, actor, link: code point order.
    Text,
    /// int and decimal.
    Num,
    Bool,
    Date,
    DateTime,
    /// Lists: `empty`/`not_empty` only.
    List,
}

impl Kind {
    pub fn of(ty: FieldType) -> Kind {
        match ty {
            FieldType::String
            | FieldType::Text
            | FieldType::Enum
            | FieldType::Actor
            | FieldType::Link => Kind::Text,
            FieldType::Int | FieldType::Decimal => Kind::Num,
            FieldType::Bool => Kind::Bool,
            FieldType::Date => Kind::Date,
            FieldType::Datetime => Kind::DateTime,
            FieldType::List => Kind::List,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "string",
            Kind::Num => "number",
            Kind::Bool => "bool",
            Kind::Date => "date",
            Kind::DateTime => "datetime",
            Kind::List => "list",
        }
    }

    /// The operators a value of this kind supports.
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["eq", "ne", "in", "prefix", "contains", "empty", "not_empty"],
            Kind::Num | Kind::Date | Kind::DateTime => &[
                "eq",
                "ne",
                "in",
                "lt",
                "lte",
                "gt",
                "gte",
                "empty",
                "not_empty",
            ],
            Kind::Bool => &["eq", "ne", "in", "empty", "not_empty"],
            Kind::List => &["empty", "not_empty"],
        }
    }

    /// Whether an expression index on this kind serves filters and sorts.
    pub fn indexable(self) -> bool {
        self != Kind::List
    }
}

/// A record column a query may filter or sort on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Column {
    Id,
    Workflow,
    State,
    Assignee,
    Revision,
    Created,
    Entered,
    Updated,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Id,
        Column::Workflow,
        Column::State,
        Column::Assignee,
        Column::Revision,
        Column::Created,
        Column::Entered,
        Column::Updated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Workflow => "workflow",
            Column::State => "state",
            Column::Assignee => "assignee",
            Column::Revision => "revision",
            Column::Created => "created_at",
            Column::Entered => "entered_at",
            Column::Updated => "updated_at",
        }
    }

    pub fn parse(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The kind its values compare as (`Num` for the integer columns).
    pub fn kind(self) -> Kind {
        match self {
            Column::Id | Column::Revision => Kind::Num,
            Column::Workflow | Column::State | Column::Assignee => Kind::Text,
            Column::Created | Column::Entered | Column::Updated => Kind::DateTime,
        }
    }

    fn nullable(self) -> bool {
        self == Column::Assignee
    }
}

/// What a condition or sort reads.
#[derive(Clone, PartialEq, Debug)]
pub enum Key {
    Column(Column),
    Field { name: String, kind: Kind },
}

impl Key {
    pub fn kind(&self) -> Kind {
        match self {
            Key::Column(c) => c.kind(),
            Key::Field { kind, .. } => *kind,
        }
    }
    fn nullable(&self) -> bool {
        match self {
            Key::Column(c) => c.nullable(),
            Key::Field { .. } => true,
        }
    }
}

/// A typed literal.
#[derive(Clone, PartialEq, Debug)]
pub enum Lit {
    Text(String),
    /// The number as written (canonical decimal) and as a float.
    Num(String, f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Lit {
    /// `s` read as a value of `kind`; the error says what was expected.
    pub fn parse(kind: Kind, s: &str) -> Result<Lit, String> {
        match kind {
            Kind::Text => Ok(Lit::Text(s.to_string())),
            Kind::Num => {
                let d: rust_decimal::Decimal = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a number (write 12 or 12.5)"))?;
                let f: f64 = s.trim().parse().unwrap_or_default();
                Ok(Lit::Num(d.normalize().to_string(), f))
            }
            Kind::Bool => match s {
                "true" => Ok(Lit::Bool(true)),
                "false" => Ok(Lit::Bool(false)),
                _ => Err(format!("`{s}` is not a boolean (true or false)")),
            },
            Kind::Date => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Lit::Date)
                .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)")),
            Kind::DateTime => {
                if let Some(t) = leadflow_engine::value::parse_instant(s) {
                    return Ok(Lit::Instant(t));
                }
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| Lit::Instant(t.and_utc()))
                    .ok_or_else(|| {
                        format!(
                            "`{s}` is not an instant (RFC 3339, or YYYY-MM-DD for midnight UTC)"
                        )
                    })
            }
            Kind::List => Err("a list has no values to compare".to_string()),
        }
    }
}

/// A comparison.
#[derive(Clone, PartialEq, Debug)]
pub enum Op {
    /// Equal to one of (one value: equality).
    In(Vec<Lit>),
    /// Not equal (a missing value is not equal to anything).
    Ne(Lit),
    Lt(Lit),
    Lte(Lit),
    Gt(Lit),
    Gte(Lit),
    /// Starts with (strings).
    Prefix(String),
    /// Contains, case-insensitively (strings).
    Contains(String),
    /// Missing, null, `""` or `[]`.
    Empty,
    NotEmpty,
}

/// One condition on one key.
#[derive(Clone, PartialEq, Debug)]
pub struct Cond {
    pub key: Key,
    pub op: Op,
}

/// A boolean combination of conditions (views' filters use `||`).
#[derive(Clone, PartialEq, Debug)]
pub enum Filter {
    Cond(Cond),
    All(Vec<Filter>),
    Any(Vec<Filter>),
}

/// A pool an actor sees records of (see `config::PoolConfig`).
#[derive(Clone, Debug)]
pub struct PoolRule {
    pub workflow: String,
    pub states: Vec<String>,
    pub zone_field: String,
    /// The actor follows every record of the workflow in its zones.
    pub followed: bool,
}

/// What an actor-bound caller may see: its own records, and the pools of
/// its zones. `None` in [`Query::visible_to`]: everything (an admin).
#[derive(Clone, Debug)]
pub struct Visibility {
    pub actor: String,
    pub zones: Vec<String>,
    pub pools: Vec<PoolRule>,
    /// Workflows whose every record it sees (`visible_to` its role).
    pub all: Vec<String>,
    /// Workflows whose records assigned to `reports` it sees.
    pub managed: Vec<String>,
    /// Everyone it manages.
    pub reports: Vec<String>,
    /// (workflow, area field): records whose area is one of `area_zones`.
    pub areas: Vec<(String, String)>,
    pub area_zones: Vec<String>,
}

impl Visibility {
    /// What `actor` may see: its own records, the `pools` of its zones, and
    /// what the organisation of the workflows `wfs` (their current
    /// versions) gives it through `directory`. The HTTP API's callers and
    /// the scenario harness's pullers alike.
    pub fn of<'a>(
        wfs: impl IntoIterator<Item = &'a leadflow_engine::Workflow>,
        directory: &[leadflow_engine::Actor],
        actor: &leadflow_engine::Actor,
        pools: &[crate::config::PoolConfig],
    ) -> Visibility {
        let reach = crate::org::Reach::of(wfs, directory, actor);
        Visibility {
            all: reach.all,
            managed: reach.managed,
            reports: reach.reports,
            areas: reach.areas,
            area_zones: reach.zones,
            actor: actor.id.clone(),
            zones: actor.zones.clone(),
            pools: pools
                .iter()
                .map(|p| PoolRule {
                    workflow: p.workflow.clone(),
                    states: p.states.clone(),
                    zone_field: p.zone_field.clone(),
                    followed: p.followed_by(actor),
                })
                .collect(),
        }
    }
}

/// Whether every one of `states` is a non-final state wherever a loaded
/// version in scope declares it (then the open-record indexes serve).
pub fn only_open(
    versions: &crate::apply::Versions,
    workflow: Option<&str>,
    states: &[String],
) -> bool {
    !states.is_empty()
        && versions
            .all()
            .iter()
            .filter(|wf| workflow.is_none_or(|w| w == wf.id))
            .all(|wf| {
                states
                    .iter()
                    .all(|s| wf.state(s).is_none_or(|id| !wf.states[id].is_final))
            })
}

/// A full-text search (`q=`): records whose searched fields (`search` in
/// the workflow, see [`SearchField`]) have, for every word, a word starting
/// with it ("ross mar" finds "Rossi Mario"), case and accents aside.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// Letters and digits only (anything else separates words).
    pub words: Vec<String>,
    /// Also the words of `pii` fields: only for callers who may see every
    /// record's personal data (admin keys), so that a match never tells an
    /// actor what a hidden value holds.
    pub pii: bool,
}

impl Search {
    /// At most this many words.
    pub const MAX_WORDS: usize = 16;

    /// The words of `text` (`None` when it has none, or too many).
    pub fn parse(text: &str, pii: bool) -> Result<Option<Search>, String> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect();
        if words.len() > Search::MAX_WORDS {
            return Err(format!(
                "at most {} words (letters and digits; anything else separates them)",
                Search::MAX_WORDS
            ));
        }
        Ok((!words.is_empty()).then_some(Search { words, pii }))
    }

    /// The FTS5 query: every word as a prefix, in the `pub` column only
    /// unless `pii`.
    fn fts5(&self) -> String {
        let terms: Vec<String> = self.words.iter().map(|w| format!("\"{w}\"*")).collect();
        let cols = if self.pii { "{pub pii}" } else { "{pub}" };
        format!("{cols} : ({})", terms.join(" AND "))
    }
}

/// A field full-text search reads, as the current version of its workflow
/// declares it (`search`, `pii`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SearchField {
    pub workflow: String,
    pub field: String,
    pub pii: bool,
}

/// The fields the workflows of `wfs` search.
pub fn wanted_search<'a>(
    wfs: impl IntoIterator<Item = &'a leadflow_engine::Workflow>,
) -> Vec<SearchField> {
    let mut out: Vec<SearchField> = wfs
        .into_iter()
        .flat_map(|wf| {
            wf.fields.iter().filter(|f| f.search).map(|f| SearchField {
                workflow: wf.id.clone(),
                field: f.name.clone(),
                pii: f.pii,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The workflows whose searched fields differ between `have` and `want`
/// (their records' words are computed again).
pub fn search_changed(have: &[SearchField], want: &[SearchField]) -> Vec<String> {
    let of = |v: &[SearchField], w: &str| -> Vec<(String, bool)> {
        let mut f: Vec<(String, bool)> = v
            .iter()
            .filter(|s| s.workflow == w)
            .map(|s| (s.field.clone(), s.pii))
            .collect();
        f.sort();
        f
    };
    let mut wfs: Vec<String> = have
        .iter()
        .chain(want)
        .map(|s| s.workflow.clone())
        .collect();
    wfs.sort();
    wfs.dedup();
    wfs.retain(|w| of(have, w) != of(want, w));
    wfs
}

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// 0 or 1: the arm (missing values, present values; in page order).
    pub seg: u8,
    /// The sort key as the store returned it (null in the missing arm).
    pub key: serde_json::Value,
    pub id: i64,
}

/// A list query.
#[derive(Clone, Debug)]
pub struct Query {
    pub tenant: String,
    pub workflow: Option<String>,
    /// Any of these states (empty: any).
    pub states: Vec<String>,
    /// Only records in a non-final state (lets the open-record partial
    /// indexes serve the query).
    pub open_only: bool,
    /// All must hold.
    pub filters: Vec<Filter>,
    /// Full-text search (`q=`).
    pub search: Option<Search>,
    pub visible_to: Option<Visibility>,
    pub sort: Key,
    pub desc: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// A record of a page and where it ends the page.
pub struct Hit {
    pub record: StoredRecord,
    pub cursor: Cursor,
}

/// A count: exact, or the planner's estimate when an exact count would
/// read more than the bound.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Count {
    pub value: i64,
    /// True: `value` is an estimate (or a lower bound on SQLite).
    pub estimated: bool,
}

/// The indexable kind whose [`Kind::name`] is `name` (`Text` otherwise).
fn kind_named(name: &str) -> Kind {
    [
        Kind::Text,
        Kind::Num,
        Kind::Bool,
        Kind::Date,
        Kind::DateTime,
    ]
    .into_iter()
    .find(|k| k.name() == name)
    .unwrap_or(Kind::Text)
}

/// Part of every index name's hash, changed when the indexed expressions
/// change (`2`: the PostgreSQL values read by the leakproof `leadflow_*_of`
/// functions): the stores then build the new indexes at the next start or
/// publish and drop the old ones, which no tenant wants any more.
const INDEX_GENERATION: &str = "2\u{0}";

/// An expression index the store keeps for an `indexed` field, or for the
/// order of a work queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexSpec {
    /// `lf_q_` and a hash of the field name and kind (of the columns, for
    /// a queue's): the same in every tenant (the records table is shared).
    pub name: String,
    /// The field; for a queue's index `queue:` and its columns.
    pub field: String,
    kind_name: &'static str,
    /// A queue's index: after `tenant_id, workflow`, these keys (field or
    /// column name, kind name or `column`, descending, read as a due
    /// instant), then `id`. Empty for a field's index.
    order: Vec<(String, &'static str, bool, bool)>,
    /// A queue's index led by `assignee` (after `tenant_id, workflow`): the
    /// pulls of an operator who sees only its own records read its records
    /// alone, in order.
    by_assignee: bool,
}

impl IndexSpec {
    pub fn new(field: &str, kind: Kind) -> IndexSpec {
        use sha2::Digest;
        // `INDEX_GENERATION`: the names change when the expressions do.
        let h = sha2::Sha256::digest(
            format!("{INDEX_GENERATION}{}\u{0}{field}", kind.name()).as_bytes(),
        );
        IndexSpec {
            name: format!("lf_q_{}", &hex::encode(h)[..16]),
            field: field.to_string(),
            kind_name: kind.name(),
            order: Vec::new(),
            by_assignee: false,
        }
    }

    /// The index a queue's pull reads in order: `(tenant_id, workflow,
    /// [assignee,] keys.., id)`, each key `(key, descending, due)` written as
    /// the pull's `ORDER BY` writes it ([`queue::arms`]).
    fn queue(keys: &[(Key, bool, bool)], by_assignee: bool) -> IndexSpec {
        use sha2::Digest;
        let order: Vec<(String, &'static str, bool, bool)> = keys
            .iter()
            .map(|(k, desc, due)| match k {
                Key::Column(c) => (c.name().to_string(), "column", *desc, *due),
                Key::Field { name, kind } => (name.clone(), kind.name(), *desc, *due),
            })
            .collect();
        let text: Vec<String> = order
            .iter()
            .map(|(n, k, desc, due)| {
                format!(
                    "{}{}{n}:{k}",
                    if *due { "due:" } else { "" },
                    if *desc { "-" } else { "" }
                )
            })
            .collect();
        let lead = if by_assignee { "assignee|" } else { "" };
        let field = format!("queue:{lead}{}", text.join(","));
        let h = sha2::Sha256::digest(format!("{INDEX_GENERATION}{field}").as_bytes());
        IndexSpec {
            name: format!("lf_q_{}", &hex::encode(h)[..16]),
            field,
            kind_name: Kind::Text.name(),
            order,
            by_assignee,
        }
    }
    pub fn kind(&self) -> Kind {
        kind_named(self.kind_name)
    }
    /// The `CREATE INDEX` statement (`CONCURRENTLY` on PostgreSQL).
    pub fn create_sql(&self, d: Dialect) -> String {
        let cols = if self.order.is_empty() {
            let key = Key::Field {
                name: self.field.clone(),
                kind: self.kind(),
            };
            format!("tenant_id, {}, id", value_expr(d, &key))
        } else {
            let mut cols = vec!["tenant_id".to_string(), "workflow".to_string()];
            if self.by_assignee {
                cols.push("assignee".into());
            }
            for (name, kind, desc, due) in &self.order {
                let key = match *kind {
                    "column" => match Column::parse(name) {
                        Some(c) => Key::Column(c),
                        None => continue,
                    },
                    k => Key::Field {
                        name: name.clone(),
                        kind: kind_named(k),
                    },
                };
                cols.push(match (due, desc) {
                    (true, _) => value_expr(d, &key),
                    (false, true) => format!("{} DESC NULLS LAST", sort_expr(d, &key)),
                    (false, false) => sort_expr(d, &key),
                });
            }
            cols.push("id".into());
            cols.join(", ")
        };
        match d {
            Dialect::Pg => format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON records ({cols})",
                self.name
            ),
            Dialect::Sqlite => format!(
                "CREATE INDEX IF NOT EXISTS {} ON records ({cols})",
                self.name
            ),
        }
    }
}

/// The indexes a workflow's work queues read their order from (the two
/// arms of [`queue::arms`]): with a `due:` first key, one on that instant
/// and the keys after it (the due records, earliest first, ties in the
/// queue's order) and one on the keys after it (the others); else one on
/// all its keys. A later `due:` key sorts by an
/// expression of the instant of the pull, which no index holds: the index
/// stops before it. Each comes twice: as is, for the pullers who see more
/// than their own records (a supervisor, an admin), and led by `assignee`,
/// for the operators who see only theirs (`assignee = <caller>` is the
/// whole visibility): their pull then reads none of the others' records.
pub fn queue_indexes(wf: &leadflow_engine::Workflow) -> Vec<IndexSpec> {
    use leadflow_engine::queue::OrderKey;
    let mut out = Vec::new();
    for q in &wf.queues {
        let keys: Vec<(Key, bool, bool)> = q
            .order
            .iter()
            .filter_map(|o| {
                let k = queue::order_key(wf, o.name())?;
                Some(match o {
                    OrderKey::Due(_) => (k, false, true),
                    OrderKey::By { desc, .. } => (k, *desc, false),
                })
            })
            .collect();
        let (first_due, rest) = match keys.split_first() {
            Some((first, rest)) if first.2 => (Some(first), rest),
            _ => (None, &keys[..]),
        };
        let upto = rest.iter().position(|k| k.2).unwrap_or(rest.len());
        let rest = &rest[..upto];
        let mut both = |keys: &[(Key, bool, bool)]| {
            out.extend([false, true].map(|by_assignee| IndexSpec::queue(keys, by_assignee)));
        };
        if let Some(first) = first_due {
            // The due arm orders by the instant, then by the keys after it.
            let due: Vec<(Key, bool, bool)> = std::iter::once(first).chain(rest).cloned().collect();
            both(&due);
        }
        if !rest.is_empty() {
            both(rest);
        }
    }
    out
}

/// The indexes the fields declared `indexed = true` in `wfs` need.
pub fn wanted_indexes<'a>(
    wfs: impl IntoIterator<Item = &'a leadflow_engine::Workflow>,
) -> Vec<IndexSpec> {
    let wfs: Vec<&leadflow_engine::Workflow> = wfs.into_iter().collect();
    let mut out: Vec<IndexSpec> = wfs
        .iter()
        .flat_map(|wf| wf.fields.iter())
        .filter(|f| f.indexed && Kind::of(f.ty).indexable())
        .map(|f| IndexSpec::new(&f.name, Kind::of(f.ty)))
        .collect();
    out.extend(wfs.iter().flat_map(|wf| queue_indexes(wf)));
    out.sort();
    out.dedup();
    out
}

/// The capability: list and count records by a [`Query`], keep the field
/// indexes. Implemented by the SQL stores and `AnyBackend`.
#[allow(async_fn_in_trait)]
pub trait RecordQuery {
    /// One page: at most `limit + 1` records (one more tells a page follows).
    async fn query(&self, q: &Query) -> Result<Vec<Hit>, Error>;
    /// How many records match (the cursor and limit are ignored); exact up
    /// to `bound` rows read, else estimated.
    async fn count(&self, q: &Query, bound: i64) -> Result<Count, Error>;
    /// Create the indexes of `wanted` this tenant lacks, drop the field
    /// indexes no tenant wants any more. Returns the names created.
    async fn sync_indexes(&self, wanted: &[IndexSpec]) -> Result<Vec<String>, Error>;
    /// Make `wanted` the fields this tenant searches, and mark the records
    /// of every workflow whose fields changed for [`backfill_search`] (their
    /// words are computed again in the background; searches leave them out
    /// meanwhile). Quick: no record is rewritten here. Returns the
    /// workflows whose fields changed.
    async fn sync_search(&self, wanted: &[SearchField]) -> Result<Vec<String>, Error>;
    /// Compute the words of one batch of at most `batch` ids of the oldest
    /// pending backfill, in one transaction with its progress (a restart
    /// resumes there). `None`: nothing pending.
    async fn backfill_search_batch(&self, batch: i64) -> Result<Option<Backfill>, Error>;
    /// Build the search index if a workflow searches fields and the index
    /// is missing or invalid (PostgreSQL's GIN index; SQLite's FTS5 table
    /// always exists).
    async fn ensure_search_index(&self) -> Result<(), Error>;
}

/// One batch of a search backfill done: `workflow`'s records up to id
/// `done` (of `upto`) have their words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfill {
    pub workflow: String,
    pub done: i64,
    pub upto: i64,
}

/// Ids per backfill batch: one short write transaction each.
pub const BACKFILL_BATCH: i64 = 5_000;

/// Run the pending search backfills of `b`'s tenant to the end, then build
/// the search index if it is missing. Returns the batches done. The daemon
/// runs this in a supervised background task (`search_backfill`); a
/// one-shot caller (tests, tools) may call it directly.
pub async fn backfill_search(b: &impl RecordQuery) -> Result<u64, Error> {
    let mut batches = 0u64;
    while let Some(done) = b.backfill_search_batch(BACKFILL_BATCH).await? {
        batches += 1;
        if done.done >= done.upto {
            tracing::info!(workflow = %done.workflow, "full-text search words computed again");
        }
    }
    b.ensure_search_index().await?;
    Ok(batches)
}

/// A bound argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
}

/// A statement and its arguments.
#[derive(Debug)]
pub struct Sql {
    pub d: Dialect,
    pub text: String,
    pub args: Vec<Arg>,
}

/// A SQL string literal (field names are inlined so that the expressions
/// match the indexes' exactly).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The typed value expression of `key` (identical in queries and indexes).
pub fn value_expr(d: Dialect, key: &Key) -> String {
    match (d, key) {
        // Columns compare in their own collation (equality is the same in
        // any), so the column indexes serve; [`sort_expr`] orders them.
        (_, Key::Column(c)) => c.name().to_string(),
        // One leakproof call on the whole document (migration 0023): under
        // row-level security only a leakproof condition can be an index
        // condition, and `fields -> 'x'` is not one.
        (Dialect::Pg, Key::Field { name, kind }) => {
            let n = quote(name);
            match kind {
                Kind::Text => format!("(leadflow_text_of(fields, {n}) COLLATE \"C\")"),
                Kind::Num => format!("leadflow_num_of(fields, {n})"),
                Kind::Bool => format!("leadflow_bool_of(fields, {n})"),
                Kind::Date => format!("leadflow_date_of(fields, {n})"),
                Kind::DateTime => format!("leadflow_ts_of(fields, {n})"),
                Kind::List => format!("(fields -> {n})"),
            }
        }
        (Dialect::Sqlite, Key::Field { name, kind }) => {
            let p = quote(&format!("$.\"{}\"", name.replace('"', "")));
            let t = format!("json_type(fields, {p})");
            let v = format!("(fields ->> {p})");
            match kind {
                Kind::Text | Kind::Date => format!("(CASE WHEN {t} = 'text' THEN {v} END)"),
                Kind::Num => format!(
                    "(CASE WHEN {t} IN ('integer', 'real', 'text') THEN CAST({v} AS REAL) END)"
                ),
                Kind::Bool => format!("(CASE {t} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"),
                // Milliseconds since the epoch: exact as a cursor value.
                Kind::DateTime => format!(
                    "(CASE WHEN {t} = 'text' THEN CAST(round((julianday({v}) - 2440587.5) * 86400000.0) AS INTEGER) END)"
                ),
                Kind::List => format!("(fields -> {p})"),
            }
        }
    }
}

/// The expression `key` sorts by, and a prefix range reads: strings by
/// code point in both dialects.
pub fn sort_expr(d: Dialect, key: &Key) -> String {
    match (d, key) {
        (Dialect::Pg, Key::Column(c)) if c.kind() == Kind::Text => {
            format!("({} COLLATE \"C\")", c.name())
        }
        _ => value_expr(d, key),
    }
}

impl Sql {
    pub fn new(d: Dialect) -> Sql {
        Sql {
            d,
            text: String::new(),
            args: Vec::new(),
        }
    }

    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        match self.d {
            Dialect::Pg => format!("${}", self.args.len()),
            Dialect::Sqlite => format!("?{}", self.args.len()),
        }
    }

    fn text(&mut self, s: &str) -> String {
        match self.d {
            Dialect::Pg => format!("({} COLLATE \"C\")", self.arg(Arg::Text(s.into()))),
            Dialect::Sqlite => self.arg(Arg::Text(s.into())),
        }
    }

    fn texts(&mut self, items: &[String]) -> String {
        let ph: Vec<String> = items
            .iter()
            .map(|s| self.arg(Arg::Text(s.clone())))
            .collect();
        format!("({})", ph.join(", "))
    }

    /// A literal compared with `key`, bound and cast as the key's value.
    fn lit(&mut self, key: &Key, l: &Lit) -> String {
        let is_column = matches!(key, Key::Column(_));
        match (self.d, l) {
            (Dialect::Pg, Lit::Text(s)) if is_column => self.arg(Arg::Text(s.clone())),
            (Dialect::Pg, Lit::Text(s)) => self.text(s),
            (Dialect::Pg, Lit::Num(s, _)) => {
                let p = self.arg(Arg::Text(s.clone()));
                match key {
                    Key::Column(_) => format!("{p}::bigint"),
                    Key::Field { .. } => format!("{p}::numeric"),
                }
            }
            (Dialect::Pg, Lit::Bool(b)) => {
                format!("{}::boolean", self.arg(Arg::Text(b.to_string())))
            }
            (Dialect::Pg, Lit::Date(d)) => format!(
                "{}::date",
                self.arg(Arg::Text(d.format("%Y-%m-%d").to_string()))
            ),
            (Dialect::Pg, Lit::Instant(t)) => format!(
                "{}::timestamptz",
                self.arg(Arg::Text(
                    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ))
            ),
            (Dialect::Sqlite, Lit::Text(s)) => self.arg(Arg::Text(s.clone())),
            (Dialect::Sqlite, Lit::Num(s, f)) => match (key, s.parse::<i64>()) {
                (Key::Column(_), Ok(i)) => self.arg(Arg::Int(i)),
                _ => self.arg(Arg::Float(*f)),
            },
            (Dialect::Sqlite, Lit::Bool(b)) => self.arg(Arg::Int(i64::from(*b))),
            (Dialect::Sqlite, Lit::Date(d)) => {
                self.arg(Arg::Text(d.format("%Y-%m-%d").to_string()))
            }
            (Dialect::Sqlite, Lit::Instant(t)) => match is_column {
                true => self.arg(Arg::Int(t.timestamp_micros())),
                false => self.arg(Arg::Int(t.timestamp_millis())),
            },
        }
    }

    /// A cursor's key value bound back as `key`'s value.
    fn cursor_key(&mut self, key: &Key, v: &serde_json::Value) -> String {
        use serde_json::Value as J;
        match self.d {
            Dialect::Pg => {
                let s = match v {
                    J::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let p = self.arg(Arg::Text(s));
                match (key, key.kind()) {
                    (_, Kind::Text) => format!("({p} COLLATE \"C\")"),
                    (Key::Column(_), Kind::Num) => format!("{p}::bigint"),
                    (_, Kind::Num) => format!("{p}::numeric"),
                    (_, Kind::Bool) => format!("{p}::boolean"),
                    (_, Kind::Date) => format!("{p}::date"),
                    (_, Kind::DateTime) => format!("{p}::timestamptz"),
                    (_, Kind::List) => format!("{p}::jsonb"),
                }
            }
            Dialect::Sqlite => {
                let a = match v {
                    J::Number(n) => match n.as_i64() {
                        Some(i) => Arg::Int(i),
                        None => Arg::Float(n.as_f64().unwrap_or_default()),
                    },
                    J::String(s) => Arg::Text(s.clone()),
                    J::Bool(b) => Arg::Int(i64::from(*b)),
                    other => Arg::Text(other.to_string()),
                };
                self.arg(a)
            }
        }
    }

    fn escape_like(s: &str) -> String {
        s.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    }

    fn cond(&mut self, c: &Cond) -> String {
        let k = value_expr(self.d, &c.key);
        let cmp = |s: &mut Sql, op: &str, l: &Lit| {
            let p = s.lit(&c.key, l);
            format!("{k} {op} {p}")
        };
        match &c.op {
            Op::In(ls) if ls.len() == 1 => cmp(self, "=", &ls[0]),
            Op::In(ls) => {
                let ps: Vec<String> = ls.iter().map(|l| self.lit(&c.key, l)).collect();
                format!("{k} IN ({})", ps.join(", "))
            }
            Op::Ne(l) => {
                let p = self.lit(&c.key, l);
                format!("({k} IS NULL OR {k} <> {p})")
            }
            Op::Lt(l) => cmp(self, "<", l),
            Op::Lte(l) => cmp(self, "<=", l),
            Op::Gt(l) => cmp(self, ">", l),
            Op::Gte(l) => cmp(self, ">=", l),
            Op::Prefix(p) => {
                // A code point range: exact under code point order, and
                // read from the index.
                let k = sort_expr(self.d, &c.key);
                let lo = self.text(p);
                match successor(p) {
                    Some(up) => {
                        let hi = self.text(&up);
                        format!("({k} >= {lo} AND {k} < {hi})")
                    }
                    None => format!("{k} >= {lo}"),
                }
            }
            Op::Contains(s) => {
                let pat = format!("%{}%", Sql::escape_like(s));
                let p = self.arg(Arg::Text(pat));
                match self.d {
                    Dialect::Pg => format!("{k} ILIKE {p}"),
                    Dialect::Sqlite => format!("{k} LIKE {p} ESCAPE '\\'"),
                }
            }
            Op::Empty => self.empty(&c.key, &k),
            Op::NotEmpty => format!("NOT {}", self.empty(&c.key, &k)),
        }
    }

    fn empty(&mut self, key: &Key, k: &str) -> String {
        match (self.d, key.kind()) {
            (_, Kind::Text) => format!("({k} IS NULL OR {k} = '')"),
            (Dialect::Pg, Kind::List) => {
                format!("({k} IS NULL OR {k} = 'null'::jsonb OR {k} = '[]'::jsonb)")
            }
            (Dialect::Sqlite, Kind::List) => format!("({k} IS NULL OR {k} IN ('null', '[]'))"),
            _ => format!("({k} IS NULL)"),
        }
    }

    fn filter(&mut self, f: &Filter) -> String {
        match f {
            Filter::Cond(c) => self.cond(c),
            Filter::All(fs) if fs.is_empty() => "TRUE".into(),
            Filter::Any(fs) if fs.is_empty() => "FALSE".into(),
            Filter::All(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f)).collect();
                format!("({})", parts.join(" AND "))
            }
            Filter::Any(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f)).collect();
                format!("({})", parts.join(" OR "))
            }
        }
    }

    /// The full-text condition: the GIN-indexed `search_doc` on PostgreSQL
    /// (words of `pii` fields have weight A, the others D), the FTS5 table
    /// on SQLite.
    fn search(&mut self, tenant: &str, s: &Search) -> String {
        match self.d {
            Dialect::Pg => {
                let suffix = if s.pii { ":*" } else { ":*D" };
                let parts: Vec<String> = s
                    .words
                    .iter()
                    .map(|w| {
                        let p = self.arg(Arg::Text(w.clone()));
                        format!(
                            "to_tsquery('simple', quote_literal(leadflow_fold({p})) || '{suffix}')"
                        )
                    })
                    .collect();
                let t = self.arg(Arg::Text(tenant.to_string()));
                format!(
                    "search_doc @@ ({}) AND {}",
                    parts.join(" && "),
                    backfilled(&t)
                )
            }
            Dialect::Sqlite => {
                let m = self.arg(Arg::Text(s.fts5()));
                let t = self.arg(Arg::Text(tenant.to_string()));
                format!(
                    "id IN (SELECT d.id FROM record_search JOIN search_docs AS d ON d.docid = record_search.rowid \
                     WHERE record_search MATCH {m} AND d.tenant_id = {t}) AND {}",
                    backfilled(&t)
                )
            }
        }
    }

    fn visibility(&mut self, v: &Visibility) -> String {
        let mut vis = vec![format!(
            "assignee = {}",
            self.arg(Arg::Text(v.actor.clone()))
        )];
        if !v.zones.is_empty() {
            for pool in &v.pools {
                let w = self.arg(Arg::Text(pool.workflow.clone()));
                // Zones match JSON strings only (a number 5 is not the zone
                // "5"), as `Tenant::visible` decides.
                let z = value_expr(
                    self.d,
                    &Key::Field {
                        name: pool.zone_field.clone(),
                        kind: Kind::Text,
                    },
                );
                let zones: Vec<String> = v.zones.iter().map(|s| self.text(s)).collect();
                let zones = zones.join(", ");
                if pool.followed {
                    vis.push(format!("(workflow = {w} AND {z} IN ({zones}))"));
                } else {
                    let st = self.texts(&pool.states);
                    vis.push(format!(
                        "(assignee IS NULL AND workflow = {w} AND state IN {st} AND {z} IN ({zones}))"
                    ));
                }
            }
        }
        // The organisation: `visible_to`, managed people, areas.
        if !v.all.is_empty() {
            vis.push(format!("workflow IN {}", self.texts(&v.all)));
        }
        if !v.managed.is_empty() && !v.reports.is_empty() {
            let w = self.texts(&v.managed);
            let who = self.texts(&v.reports);
            vis.push(format!("(workflow IN {w} AND assignee IN {who})"));
        }
        if !v.area_zones.is_empty() {
            for (wf, field) in &v.areas {
                let w = self.arg(Arg::Text(wf.clone()));
                let z = value_expr(
                    self.d,
                    &Key::Field {
                        name: field.clone(),
                        kind: Kind::Text,
                    },
                );
                let zones: Vec<String> = v.area_zones.iter().map(|s| self.text(s)).collect();
                vis.push(format!(
                    "(workflow = {w} AND {z} IN ({}))",
                    zones.join(", ")
                ));
            }
        }
        format!("({})", vis.join(" OR "))
    }

    /// The conditions every arm shares (no cursor).
    fn base(&mut self, q: &Query) -> Vec<String> {
        let mut wh = vec![format!(
            "tenant_id = {}",
            self.arg(Arg::Text(q.tenant.clone()))
        )];
        if let Some(w) = &q.workflow {
            wh.push(format!("workflow = {}", self.arg(Arg::Text(w.clone()))));
        }
        if !q.states.is_empty() {
            wh.push(format!("state IN {}", self.texts(&q.states)));
        }
        if q.open_only {
            wh.push(match self.d {
                Dialect::Pg => "NOT is_final".into(),
                Dialect::Sqlite => "is_final = 0".into(),
            });
        }
        for f in &q.filters {
            wh.push(self.filter(f));
        }
        if let Some(search) = &q.search {
            wh.push(self.search(&q.tenant, search));
        }
        if let Some(v) = &q.visible_to {
            wh.push(self.visibility(v));
        }
        wh
    }
}

/// The smallest string greater than every string starting with `p` (in
/// code point order), or `None` when there is none.
fn successor(p: &str) -> Option<String> {
    let mut cs: Vec<char> = p.chars().collect();
    while let Some(c) = cs.pop() {
        let mut n = c as u32 + 1;
        while n <= char::MAX as u32 {
            if let Some(next) = char::from_u32(n) {
                cs.push(next);
                return Some(cs.into_iter().collect());
            }
            n += 1;
        }
    }
    None
}

pub const SELECT_COLUMNS: &str =
    "id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at";

/// The page statement: one or two index-ordered arms (missing values,
/// present values; in page order), each from the cursor, merged.
pub fn select(d: Dialect, q: &Query) -> Sql {
    let mut s = Sql::new(d);
    let k = sort_expr(d, &q.sort);
    let base = s.base(q);
    let (dir, cmp) = if q.desc { ("DESC", "<") } else { ("ASC", ">") };
    let n = q.limit + 1;
    let key_out = match d {
        Dialect::Pg => format!("({k})::text"),
        Dialect::Sqlite => k.clone(),
    };
    // Arms in page order: ascending, missing values come first.
    let missing_first = !q.desc;
    let nullable = q.sort.nullable();
    let mut arms = Vec::new();
    for seg in 0u8..2 {
        let missing = (seg == 0) == missing_first;
        if missing && !nullable {
            continue;
        }
        let from = q.after.as_ref().map(|c| c.seg).unwrap_or(0);
        if seg < from {
            continue;
        }
        let mut wh = base.clone();
        wh.push(match missing {
            true => format!("{k} IS NULL"),
            false => format!("{k} IS NOT NULL"),
        });
        if let Some(c) = q.after.as_ref().filter(|c| c.seg == seg) {
            let idp = s.arg(Arg::Int(c.id));
            if missing {
                wh.push(format!("id {cmp} {idp}"));
            } else {
                let vp = s.cursor_key(&q.sort, &c.key);
                wh.push(format!("({k}, id) {cmp} ({vp}, {idp})"));
            }
        }
        let order = match missing {
            true => format!("id {dir}"),
            false => format!("{k} {dir}, id {dir}"),
        };
        let out = match missing {
            true => "NULL".to_string(),
            false => key_out.clone(),
        };
        arms.push(format!(
            "SELECT * FROM (SELECT {SELECT_COLUMNS}, {seg} AS seg, {out} AS k FROM records WHERE {} ORDER BY {order} LIMIT {n}) AS a{seg}",
            wh.join(" AND ")
        ));
    }
    // The merge sorts at most 2 * (limit + 1) rows; within an arm the order
    // is the arm's (its rows' `k` in SQL order), so keep it by position.
    let union = arms.join(" UNION ALL ");
    let key_order = match d {
        // `k` is text on PostgreSQL: re-sort by the typed key.
        Dialect::Pg => {
            let kk = match q.sort.kind() {
                Kind::Text => "k COLLATE \"C\"".to_string(),
                Kind::Num => "k::numeric".to_string(),
                Kind::Bool => "k::boolean".to_string(),
                Kind::Date => "k::date".to_string(),
                Kind::DateTime => "k::timestamptz".to_string(),
                Kind::List => "k".to_string(),
            };
            format!("{kk} {dir}")
        }
        Dialect::Sqlite => format!("k {dir}"),
    };
    s.text = format!("SELECT * FROM ({union}) AS u ORDER BY seg, {key_order}, id {dir} LIMIT {n}");
    s
}

/// `SELECT count(*)` over the query's records, at most `cap + 1` read when
/// `cap` is given.
pub fn count(d: Dialect, q: &Query, cap: Option<i64>) -> Sql {
    let mut s = Sql::new(d);
    let wh = s.base(q).join(" AND ");
    s.text = match cap {
        Some(c) => format!(
            "SELECT count(*) FROM (SELECT 1 FROM records WHERE {wh} LIMIT {}) AS c",
            c + 1
        ),
        None => format!("SELECT count(*) FROM records WHERE {wh}"),
    };
    s
}

fn unsupported() -> Error {
    Error::Storage(crate::error::StoreError::new(
        crate::error::StoreErrorKind::Setup,
        "record queries need a SQL store (sqlite: or postgres://)".to_string(),
    ))
}

/// Not among the records a search backfill has still to do: their words
/// are the previous version's (a field that became `pii` would still be
/// searchable by anyone), so a search leaves them out until they are done.
fn backfilled(tenant: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM search_backfill AS sb WHERE sb.tenant_id = {tenant} \
         AND sb.workflow = records.workflow AND records.id > sb.next_id AND records.id <= sb.upto)"
    )
}

impl RecordQuery for crate::any::AnyBackend {
    async fn query(&self, q: &Query) -> Result<Vec<Hit>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.query(q).await,
            crate::any::AnyBackend::Sqlite(b) => b.query(q).await,
            crate::any::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }
    async fn count(&self, q: &Query, bound: i64) -> Result<Count, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.count(q, bound).await,
            crate::any::AnyBackend::Sqlite(b) => b.count(q, bound).await,
            crate::any::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }
    async fn sync_indexes(&self, wanted: &[IndexSpec]) -> Result<Vec<String>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.sync_indexes(wanted).await,
            crate::any::AnyBackend::Sqlite(b) => b.sync_indexes(wanted).await,
            crate::any::AnyBackend::Mem(_) => Ok(Vec::new()),
        }
    }
    async fn sync_search(&self, wanted: &[SearchField]) -> Result<Vec<String>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.sync_search(wanted).await,
            crate::any::AnyBackend::Sqlite(b) => b.sync_search(wanted).await,
            crate::any::AnyBackend::Mem(_) => Ok(Vec::new()),
        }
    }
    async fn backfill_search_batch(&self, batch: i64) -> Result<Option<Backfill>, Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.backfill_search_batch(batch).await,
            crate::any::AnyBackend::Sqlite(b) => b.backfill_search_batch(batch).await,
            crate::any::AnyBackend::Mem(_) => Ok(None),
        }
    }
    async fn ensure_search_index(&self) -> Result<(), Error> {
        match self {
            crate::any::AnyBackend::Pg(b) => b.ensure_search_index().await,
            crate::any::AnyBackend::Sqlite(b) => b.ensure_search_index().await,
            crate::any::AnyBackend::Mem(_) => Ok(()),
        }
    }
}

/// After a publish: the indexes of the `indexed` fields of `set`, and the
/// fields full-text search reads. A store
/// that cannot build them (a PostgreSQL login that owns no table) keeps
/// working, slower, and says so in the log.
pub async fn publish_indexes(b: &crate::any::AnyBackend, set: &leadflow_engine::WorkflowSet) {
    let wanted = wanted_indexes(set.workflows.values().map(|w| &**w));
    match b.sync_indexes(&wanted).await {
        Ok(created) if !created.is_empty() => {
            tracing::info!(indexes = ?created, "field indexes created")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "field indexes could not be created or dropped: lists filtered or sorted by `indexed` \
             fields scan instead (on PostgreSQL the daemon's login must own the schema; see docs/api.md)"
        ),
    }
    let search = wanted_search(set.workflows.values().map(|w| &**w));
    match b.sync_search(&search).await {
        Ok(changed) if !changed.is_empty() => tracing::info!(
            workflows = ?changed,
            "searched fields changed: their records' words are computed again in the background"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "the searched fields could not be updated: `q=` searches the fields of the previous \
             publish (on PostgreSQL the search index needs a login that owns the schema; see docs/api.md)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_a_prefix() {
        assert_eq!(successor("+39347").as_deref(), Some("+39348"));
        assert_eq!(successor("az").as_deref(), Some("a{"));
        assert_eq!(successor(""), None);
        let max = char::MAX.to_string();
        assert_eq!(successor(&format!("a{max}")).as_deref(), Some("b"));
    }

    #[test]
    fn literals_parse_by_kind_and_name_what_they_expect() {
        assert_eq!(
            Lit::parse(Kind::Num, "12.50").unwrap(),
            Lit::Num("12.5".into(), 12.5)
        );
        assert!(Lit::parse(Kind::Num, "twelve")
            .unwrap_err()
            .contains("not a number"));
        assert!(Lit::parse(Kind::Date, "2026-13-01").is_err());
        assert_eq!(
            Lit::parse(Kind::DateTime, "2026-12-01").unwrap(),
            Lit::Instant("2026-12-01T00:00:00Z".parse().unwrap())
        );
        assert!(Lit::parse(Kind::Bool, "yes").is_err());
        assert!(Lit::parse(Kind::List, "x").is_err());
    }

    #[test]
    fn a_queue_gets_the_indexes_of_its_two_arms() {
        let wf = r#"
[workflow]
id = "q"
initial = "new"
[fields.callback_at]
type = "datetime"
[fields.attempts]
type = "int"
[states.new]
[states.done]
final = true
[transitions.close]
from = ["new"]
to = "done"
by = ["op"]
[queues.calls]
order = ["due:callback_at", "attempts", "-created_at"]
"#;
        let loaded = leadflow_engine::load(&leadflow_engine::Project {
            workflows: vec![leadflow_engine::SourceFile::new("workflows/q.toml", wf)],
            ..Default::default()
        });
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let w = loaded.set.workflows.get("q").unwrap();
        let ix = queue_indexes(w);
        assert_eq!(ix.len(), 4, "{ix:?}");
        let sql: Vec<String> = ix.iter().map(|i| i.create_sql(Dialect::Pg)).collect();
        assert!(
            sql[0].ends_with("(tenant_id, workflow, leadflow_ts_of(fields, 'callback_at'), leadflow_num_of(fields, 'attempts'), created_at DESC NULLS LAST, id)"),
            "{}",
            sql[0]
        );
        assert!(
            sql[1].ends_with(
                "(tenant_id, workflow, assignee, leadflow_ts_of(fields, 'callback_at'), leadflow_num_of(fields, 'attempts'), created_at DESC NULLS LAST, id)"
            ),
            "{}",
            sql[1]
        );
        assert!(
            sql[2].ends_with(
                "(tenant_id, workflow, leadflow_num_of(fields, 'attempts'), created_at DESC NULLS LAST, id)"
            ),
            "{}",
            sql[2]
        );
        assert!(
            sql[3].ends_with(
                "(tenant_id, workflow, assignee, leadflow_num_of(fields, 'attempts'), created_at DESC NULLS LAST, id)"
            ),
            "{}",
            sql[3]
        );
        assert!(ix.iter().all(|i| i.name.starts_with("lf_q_")));
        let names: std::collections::BTreeSet<&str> = ix.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names.len(), 4, "one name per index");
        assert!(wanted_indexes([&**w]).contains(&ix[3]));
    }

    #[test]
    fn field_names_are_inlined_quoted_and_index_names_are_stable() {
        let k = Key::Field {
            name: "o'neil".into(),
            kind: Kind::Num,
        };
        assert_eq!(
            value_expr(Dialect::Pg, &k),
            "leadflow_num_of(fields, 'o''neil')"
        );
        let a = IndexSpec::new("zone", Kind::Text);
        assert_eq!(a, IndexSpec::new("zone", Kind::Text));
        assert_ne!(a.name, IndexSpec::new("zone", Kind::Num).name);
        assert!(a.create_sql(Dialect::Pg).contains("CONCURRENTLY"));
    }
}
