//! `leadflow import`: lines of a CSV or NDJSON file become records, each
//! through the same executor as `POST /v1/records` (see
//! `store/sql/import`), in batches that share a transaction.
//!
//! A reader thread reads and parses the input (cells to typed values,
//! dedup keys) while this task checks duplicates and writes batches, so
//! parsing and the database overlap; a bounded channel between them keeps
//! memory flat whatever the file's size.

use super::dedup::{self, Index, Norm, Seen};
use super::report::{Reject, Report};
use super::source::{Format, Line, Raw, Source};
use super::values;
use crate::backend::Error;
use crate::store::sql::import::{Batch, Done, Import, Op, OpKind};
use leadflow_engine::{Actor, Value, Workflow};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What to do with a line whose key matches a record or an earlier line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    /// Leave it out (counted as skipped).
    #[default]
    Skip,
    /// Fire the update transition on the record it duplicates.
    Update,
    /// Refuse it (`E_IMPORT_DUPLICATE` in the report).
    Error,
}

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// `column=field` pairs; other columns map to the field of their name.
    pub map: Vec<(String, String)>,
    /// Fields whose normalised values identify a record.
    pub dedup: Vec<String>,
    pub on_duplicate: OnDuplicate,
    /// The transition `--on-duplicate update` fires (its `input` fields
    /// are the ones updated).
    pub update_transition: Option<String>,
    /// The import key lines are marked under (`None`: no resumption).
    pub key: Option<String>,
    /// Lines per transaction.
    pub batch: usize,
    /// Country prefix of phones written without one.
    pub country: String,
    /// Who the records are created by (history, `by` of on_enter effects).
    pub actor: Actor,
}

impl Options {
    pub fn new(format: Format) -> Options {
        Options {
            format,
            map: Vec::new(),
            dedup: Vec::new(),
            on_duplicate: OnDuplicate::Skip,
            update_transition: None,
            key: None,
            batch: 500,
            country: "39".into(),
            actor: Actor {
                id: "import".into(),
                role: "system".into(),
                ..Actor::default()
            },
        }
    }
}

/// Counts so far (and at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub imported: u64,
    pub updated: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// Lines a previous run with the same key committed (skipped now).
    pub already: u64,
    /// Lines read.
    pub lines: u64,
    /// Bytes of input read.
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {}, updated {}, skipped {}, rejected {}",
            self.imported, self.updated, self.skipped, self.rejected
        )
    }
}

/// Why an import stopped before its end (the lines committed stay; a
/// re-run with the same key resumes).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The options do not fit the workflow (`E_IMPORT_MAP`, `E_IMPORT_DEDUP`,
    /// `E_IMPORT_UPDATE`).
    #[error("{code}: {message}")]
    Options { code: &'static str, message: String },
    /// The input cannot be read (`E_IMPORT_READ`).
    #[error("E_IMPORT_READ: {0}")]
    Read(String),
    #[error("E_IMPORT_REPORT: writing the reject report: {0}")]
    Report(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] Error),
}

impl ImportError {
    /// Its stable code (docs/import.md): `E_IMPORT_MAP`, `E_IMPORT_READ`, ...;
    /// a store error has the store's.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Options { code, .. } => code,
            ImportError::Read(_) => "E_IMPORT_READ",
            ImportError::Report(_) => "E_IMPORT_REPORT",
            ImportError::Store(e) => e.code(),
        }
    }
}

fn opt_err(code: &'static str, message: String) -> ImportError {
    ImportError::Options { code, message }
}

/// Column -> field, resolved once per column.
struct Mapper {
    wf: Arc<Workflow>,
    explicit: HashMap<String, String>,
    cache: Vec<Option<Option<usize>>>,
}

impl Mapper {
    fn field(&mut self, col: usize, name: &str) -> (Option<usize>, bool) {
        if self.cache.len() <= col {
            self.cache.resize(col + 1, None);
        }
        if let Some(f) = self.cache[col] {
            return (f, false);
        }
        let target = self.explicit.get(name).map(String::as_str).unwrap_or(name);
        let f = self.wf.field(target).or_else(|| {
            self.wf
                .fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(target))
        });
        self.cache[col] = Some(f);
        (f, true)
    }
}

/// A line, read and parsed.
struct Prepared {
    number: u64,
    input: Result<Vec<(String, Value)>, Reject>,
    keys: Vec<(usize, String)>,
    raw: Raw,
}

enum Item {
    Line(Box<Prepared>),
    /// A column that maps to no field (first time seen).
    Ignored(String),
    Columns(Vec<String>),
    Fatal(String),
}

/// Everything the reader thread needs.
struct Reader {
    format: Format,
    mapper: Mapper,
    dedup: Vec<(usize, Norm)>,
    country: String,
}

impl Reader {
    fn prepare(&mut self, columns: &[String], line: Line, out: &mut Vec<Item>) -> Prepared {
        let wf = self.mapper.wf.clone();
        let mut input = Vec::with_capacity(line.cells.len());
        let mut keys = Vec::new();
        let mut bad = None;
        for (col, text) in &line.cells {
            let name = columns.get(*col).map(String::as_str).unwrap_or("");
            if name.starts_with('_') {
                continue;
            }
            let (field, first) = self.mapper.field(*col, name);
            let Some(fid) = field else {
                if first {
                    out.push(Item::Ignored(name.to_string()));
                }
                continue;
            };
            let f = &wf.fields[fid];
            if let Some((k, (_, norm))) =
                self.dedup.iter().enumerate().find(|(_, (d, _))| *d == fid)
            {
                if let Some(v) = dedup::normalise(*norm, text, &self.country) {
                    keys.push((k, v));
                }
            }
            if bad.is_some() {
                continue;
            }
            match values::parse(f, text) {
                Ok(Value::Null) => {}
                Ok(v) => input.push((f.name.clone(), v)),
                Err(e) => {
                    bad = Some(Reject {
                        line: line.number,
                        column: name.to_string(),
                        code: e.code.to_string(),
                        message: e.message,
                    })
                }
            }
        }
        Prepared {
            number: line.number,
            input: bad.map_or(Ok(input), Err),
            keys,
            raw: line.raw,
        }
    }

    fn run<R: Read>(mut self, input: R, tx: tokio::sync::mpsc::Sender<Vec<Item>>) {
        let mut src = match Source::open(self.format, input) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.blocking_send(vec![Item::Fatal(e.0)]);
                return;
            }
        };
        let mut sent_columns = 0;
        let mut chunk = Vec::with_capacity(256);
        loop {
            let next = src.next_line();
            if src.columns().len() > sent_columns {
                sent_columns = src.columns().len();
                chunk.push(Item::Columns(src.columns().to_vec()));
            }
            match next {
                None => break,
                Some(Err(e)) => {
                    chunk.push(Item::Fatal(e.0));
                    break;
                }
                Some(Ok(Err(u))) => chunk.push(Item::Line(Box::new(Prepared {
                    number: u.number,
                    input: Err(Reject {
                        line: u.number,
                        column: String::new(),
                        code: "E_IMPORT_MALFORMED".into(),
                        message: u.message,
                    }),
                    keys: Vec::new(),
                    raw: u.raw,
                }))),
                Some(Ok(Ok(line))) => {
                    let cols = src.columns().to_vec();
                    let p = self.prepare(&cols, line, &mut chunk);
                    chunk.push(Item::Line(Box::new(p)));
                }
            }
            if chunk.len() >= 256 && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(chunk);
    }
}

/// A line waiting in the current batch.
struct Pending {
    number: u64,
    keys: Vec<(usize, String)>,
    raw: Raw,
}

/// The import in progress.
struct Run<'a, S, W: Write> {
    store: &'a S,
    wf: &'a Workflow,
    opts: &'a Options,
    clock: Now<'a>,
    report: Report<W>,
    columns: Vec<String>,
    /// Field name -> the column it came from (to name a refused field).
    column_of: HashMap<String, String>,
    index: Index,
    ops: Vec<Op>,
    pending: Vec<Pending>,
    sum: Summary,
}

impl<S: Import, W: Write> Run<'_, S, W> {
    fn reject(&mut self, r: Reject, raw: &Raw) -> Result<(), ImportError> {
        self.sum.rejected += 1;
        self.report.write(&self.columns, &r, raw)?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ImportError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.ops);
        let pending = std::mem::take(&mut self.pending);
        let results = self
            .store
            .import_batch(Batch {
                key: self.opts.key.as_deref(),
                workflow: &self.wf.id,
                actor: &self.opts.actor,
                now: (self.clock)(),
                ops: &ops,
                dry_run: false,
                visible: None,
            })
            .await?;
        for (p, r) in pending.into_iter().zip(results) {
            match r {
                Ok(Done::Created(id)) => {
                    self.sum.imported += 1;
                    self.index.resolve(&p.keys, p.number as i64, id);
                }
                Ok(Done::Fired(_)) => self.sum.updated += 1,
                Err(e) => {
                    self.index.forget(&p.keys, p.number as i64);
                    let field = match &e {
                        Error::Refused(r) => r.field.clone(),
                        _ => None,
                    };
                    let column = field
                        .map(|f| self.column_of.get(&f).cloned().unwrap_or(f))
                        .unwrap_or_default();
                    let rej = Reject {
                        line: p.number,
                        column,
                        code: e.code().to_string(),
                        message: e.to_string(),
                    };
                    self.reject(rej, &p.raw)?;
                }
            }
        }
        Ok(())
    }

    async fn line(&mut self, p: Prepared, done: &HashSet<i64>) -> Result<(), ImportError> {
        self.sum.lines += 1;
        if done.contains(&(p.number as i64)) {
            self.sum.already += 1;
            return Ok(());
        }
        let input = match p.input {
            Ok(i) => i,
            Err(r) => return self.reject(r, &p.raw),
        };
        let mut seen = self.index.find(&p.keys);
        if let (Some(Seen::Line(_)), OnDuplicate::Update) = (seen, self.opts.on_duplicate) {
            // The line it repeats is in this batch: commit it to know its record.
            self.flush().await?;
            seen = self.index.find(&p.keys);
        }
        let kind = match (seen, self.opts.on_duplicate) {
            (None, _) => {
                self.index.add(&p.keys, Seen::Line(p.number as i64));
                OpKind::Create { input }
            }
            (Some(_), OnDuplicate::Skip) => {
                self.sum.skipped += 1;
                return Ok(());
            }
            (Some(s), OnDuplicate::Error) => {
                let what = match s {
                    Seen::Record(id) => format!("record {id}"),
                    Seen::Line(l) => format!("line {l}"),
                };
                let r = Reject {
                    line: p.number,
                    column: String::new(),
                    code: "E_IMPORT_DUPLICATE".into(),
                    message: format!(
                        "a duplicate of {what} (same {})",
                        self.opts.dedup.join(" or ")
                    ),
                };
                return self.reject(r, &p.raw);
            }
            (Some(Seen::Record(id)), OnDuplicate::Update) => {
                let t = self.opts.update_transition.clone().unwrap_or_default();
                let allowed = self
                    .wf
                    .transition(&t)
                    .map(|i| &self.wf.transitions[i].input);
                let input = input
                    .into_iter()
                    .filter(|(k, _)| {
                        allowed.is_some_and(|a| a.iter().any(|f| self.wf.fields[*f].name == *k))
                    })
                    .collect();
                OpKind::Fire {
                    record: id,
                    transition: t,
                    input,
                }
            }
            (Some(Seen::Line(_)), OnDuplicate::Update) => {
                return Err(
                    Error::storage("an import line was neither committed nor refused").into(),
                )
            }
        };
        self.ops.push(Op {
            line: p.number as i64,
            kind,
        });
        self.pending.push(Pending {
            number: p.number,
            keys: p.keys,
            raw: p.raw,
        });
        if self.ops.len() >= self.opts.batch.max(1) {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Check `opts` against `wf` before any input is read (`POST /v1/imports`
/// answers 400 at once): the `E_IMPORT_MAP`, `E_IMPORT_DEDUP` and
/// `E_IMPORT_UPDATE` refusals of [`import`].
pub fn check(wf: &Workflow, opts: &Options) -> Result<(), ImportError> {
    check_options(wf, opts).map(drop)
}

/// Check the options against the workflow before reading anything.
fn check_options(wf: &Workflow, opts: &Options) -> Result<Vec<(usize, Norm)>, ImportError> {
    for (col, field) in &opts.map {
        if wf.field(field).is_none() {
            return Err(opt_err(
                "E_IMPORT_MAP",
                format!(
                    "--map {col}={field}: workflow `{}` has no field `{field}`",
                    wf.id
                ),
            ));
        }
    }
    let dedup = opts
        .dedup
        .iter()
        .map(|d| {
            wf.field(d).map(|f| (f, Norm::for_field(d))).ok_or_else(|| {
                opt_err(
                    "E_IMPORT_DEDUP",
                    format!("--dedup {d}: workflow `{}` has no field `{d}`", wf.id),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if opts.on_duplicate == OnDuplicate::Update {
        let Some(t) = &opts.update_transition else {
            return Err(opt_err(
                "E_IMPORT_UPDATE",
                "--on-duplicate update needs --update-with <transition> (the workflow's edit transition, whose input fields are updated)".into(),
            ));
        };
        if wf.transition(t).is_none() {
            return Err(opt_err(
                "E_IMPORT_UPDATE",
                format!(
                    "--update-with {t}: workflow `{}` has no transition `{t}`",
                    wf.id
                ),
            ));
        }
    }
    if opts.on_duplicate != OnDuplicate::Skip && dedup.is_empty() {
        return Err(opt_err(
            "E_IMPORT_DEDUP",
            "--on-duplicate needs --dedup <fields>".into(),
        ));
    }
    Ok(dedup)
}

/// The clock: the instant a batch's records are created at.
pub type Now<'a> = &'a (dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync);

/// Progress as the import goes: called every 1,000 lines and at the end.
pub type Progress<'a> = &'a mut (dyn FnMut(&Summary) + Send);

/// Import `input` into `store` as records of `wf`, refused lines to
/// `report`. Lines already committed under `opts.key` are skipped.
#[allow(clippy::too_many_arguments)]
pub async fn import<S: Import, R: Read + Send + 'static, W: Write>(
    store: &S,
    wf: Arc<Workflow>,
    opts: &Options,
    input: R,
    report: W,
    clock: Now<'_>,
    progress: Progress<'_>,
) -> Result<(Summary, Vec<String>), ImportError> {
    let dedup = check_options(&wf, opts)?;
    // Updates fire a transition, which checks its `by` roles: the default
    // import actor takes the first role the update transition allows.
    let mut with_role;
    let opts = match (&opts.update_transition, opts.actor.role.as_str()) {
        (Some(t), "system") if opts.on_duplicate == OnDuplicate::Update => {
            with_role = opts.clone();
            if let Some(r) = wf.transition(t).and_then(|i| wf.transitions[i].by.first()) {
                with_role.actor.role = r.clone();
            }
            &with_role
        }
        _ => opts,
    };
    let done = match &opts.key {
        Some(k) => store.import_done(k).await?,
        None => HashSet::new(),
    };
    let mut index = Index::default();
    if !dedup.is_empty() {
        let names: Vec<String> = dedup
            .iter()
            .map(|(f, _)| wf.fields[*f].name.clone())
            .collect();
        let country = opts.country.clone();
        let norms: Vec<Norm> = dedup.iter().map(|(_, n)| *n).collect();
        store
            .import_scan(&wf.id, &names, &mut |id, vals| {
                let keys: Vec<(usize, String)> = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| {
                        v.as_deref()
                            .and_then(|v| dedup::normalise(norms[k], v, &country))
                            .map(|v| (k, v))
                    })
                    .collect();
                index.add(&keys, Seen::Record(id));
            })
            .await?;
    }
    let explicit: HashMap<String, String> = opts.map.iter().cloned().collect();
    let (counted, bytes) = super::source::Counting::new(input);
    let reader = Reader {
        format: opts.format,
        mapper: Mapper {
            wf: wf.clone(),
            explicit,
            cache: Vec::new(),
        },
        dedup,
        country: opts.country.clone(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(16);
    let thread = std::thread::spawn(move || reader.run(counted, tx));
    let mut run = Run {
        store,
        wf: &wf,
        opts,
        clock,
        report: Report::new(opts.format, report),
        columns: Vec::new(),
        column_of: HashMap::new(),
        index,
        ops: Vec::new(),
        pending: Vec::new(),
        sum: Summary::default(),
    };
    let mut ignored = Vec::new();
    let mut fatal = None;
    'read: while let Some(chunk) = rx.recv().await {
        for item in chunk {
            match item {
                Item::Columns(c) => {
                    for name in &c {
                        let target = opts
                            .map
                            .iter()
                            .find(|(col, _)| col == name)
                            .map_or(name.as_str(), |(_, f)| f.as_str());
                        run.column_of
                            .entry(target.to_string())
                            .or_insert_with(|| name.clone());
                    }
                    run.columns = c;
                }
                Item::Ignored(c) => ignored.push(c),
                Item::Fatal(e) => {
                    fatal = Some(e);
                    break 'read;
                }
                Item::Line(p) => {
                    let before = run.sum.lines / 1000;
                    run.line(*p, &done).await?;
                    if run.sum.lines / 1000 != before {
                        run.sum.bytes = bytes.load(Ordering::Relaxed);
                        progress(&run.sum);
                    }
                }
            }
        }
    }
    drop(rx);
    let _ = thread.join();
    run.flush().await?;
    run.sum.bytes = bytes.load(Ordering::Relaxed);
    progress(&run.sum);
    run.report.finish()?;
    if let Some(e) = fatal {
        return Err(ImportError::Read(e));
    }
    Ok((run.sum, ignored))
}
