//! `POST /v1/imports`, `GET /v1/imports/{id}`, `GET
//! /v1/imports/{id}/rejected`: `leadflow import` over HTTP (issue 17,
//! section 3), the same import (`bulk::import`) run as a background job.
//!
//! The body (CSV with a header row, `text/csv`; or NDJSON,
//! `application/x-ndjson`) streams to a spool file as it arrives, never
//! into memory, within `[server] max_import_bytes` and with
//! `body_timeout` bounding each pause of the client; its SHA-256 is the
//! default import key, as for the CLI. Then the job is recorded and started
//! and the answer is 202 with its id; the spool file is unlinked as soon
//! as the import has it open. Admin keys only: an import creates records
//! as the `import` actor, in every zone and for every assignee.

use super::auth::require_admin;
use super::error::{ApiError, Path, Query};
use super::jobs::{accepted, stale, visible_job, Beat, JobView};
use super::state::{AppState, Caller, Tenant};
use crate::bulk::import::{import, ImportError, OnDuplicate, Options, Summary};
use crate::bulk::Format;
use crate::sql::jobs::{JobEnd, Jobs, NewJob};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use utoipa::IntoParams;

/// The parameters of `POST /v1/imports` (those of `leadflow import`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The workflow whose records the lines become.
    #[param(example = "cc_lead")]
    pub workflow: String,
    /// Dedup key fields, comma-separated (phones compared by their digits
    /// with the country prefix, other keys trimmed and lower-case).
    #[param(example = "phone,email")]
    pub dedup: Option<String>,
    /// `skip` (default), `update` (with `update_with`) or `error`.
    #[param(example = "skip")]
    pub on_duplicate: Option<String>,
    /// The transition `on_duplicate=update` fires on the record a line repeats.
    #[param(example = "edit_inline")]
    pub update_with: Option<String>,
    /// `column=field` pairs, comma-separated.
    #[param(example = "Telefono=phone,Provincia=province")]
    pub map: Option<String>,
    /// The import key (default: `sha256:` and the body's SHA-256). Lines
    /// committed under it are skipped when it is posted again.
    #[param(example = "leads-2026-12")]
    pub key: Option<String>,
    /// Country prefix of phones written without one (default 39).
    #[param(example = "39")]
    pub country: Option<String>,
}

/// The longest import key.
const MAX_KEY: usize = 255;

fn options(t: &Tenant, q: &ImportParams, format: Format) -> Result<Options, ApiError> {
    let wf = t
        .backend
        .versions()
        .current(&q.workflow)
        .map_err(ApiError::from)?;
    let mut opts = Options::new(format);
    let list = |v: &Option<String>| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for pair in list(&q.map) {
        let (col, field) = pair.split_once('=').ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "E_IMPORT_MAP",
                format!("map: `{pair}` is not column=field"),
            )
        })?;
        opts.map
            .push((col.trim().to_string(), field.trim().to_string()));
    }
    opts.dedup = list(&q.dedup);
    opts.on_duplicate = match q.on_duplicate.as_deref() {
        None | Some("skip") => OnDuplicate::Skip,
        Some("update") => OnDuplicate::Update,
        Some("error") => OnDuplicate::Error,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "on_duplicate: `{other}` is not skip, update or error"
            )))
        }
    };
    opts.update_transition = q.update_with.clone();
    if let Some(c) = &q.country {
        if c.is_empty() || c.len() > 4 || !c.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request("country: 1 to 4 digits, e.g. 39"));
        }
        opts.country = c.clone();
    }
    if let Some(k) = &q.key {
        if k.is_empty() || k.len() > MAX_KEY || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::bad_request(format!(
                "key: 1 to {MAX_KEY} visible ASCII characters"
            )));
        }
    }
    crate::bulk::import::check(&wf, &opts).map_err(|e| match e {
        ImportError::Options { code, message } => ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            message
                .replace("--map ", "map: ")
                .replace("--dedup ", "dedup: "),
        ),
        other => ApiError::bad_request(other.to_string()),
    })?;
    Ok(opts)
}

/// The format of a body by its `Content-Type`.
fn format_of(h: &HeaderMap) -> Result<Format, ApiError> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "E_MEDIA_TYPE",
            "send the lines as text/csv (with a header row) or application/x-ndjson",
        )),
    }
}

/// A spooled body: the file (unlinked: gone once closed), its SHA-256, its size.
struct Spooled {
    file: std::fs::File,
    sha256: String,
    bytes: u64,
}

/// Removes the spool file on every path (its open handle keeps it readable).
struct Unlink(std::path::PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stream `body` to a new file in the system's temporary directory.
async fn spool(body: Body, max: u64, idle: std::time::Duration) -> Result<Spooled, ApiError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "import: cannot spool the body");
        ApiError::internal()
    };
    let nonce = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let path = std::env::temp_dir().join(format!(
        "leadflow-import-{}-{}-{nonce}.spool",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let std_file = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let _unlink = Unlink(path.clone());
    let mut file = tokio::io::BufWriter::with_capacity(
        1 << 20,
        tokio::fs::File::from_std(std_file.try_clone().map_err(io)?),
    );
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "E_TIMEOUT",
                    format!(
                        "the import body stalled: nothing received for {} s",
                        idle.as_secs_f64()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(ApiError::bad_request("the request body could not be read"))
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data): Result<Bytes, _> = frame.into_data() else {
            continue;
        };
        bytes += data.len() as u64;
        if bytes > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "E_TOO_LARGE",
                format!(
                    "the import body is over the limit of {max} bytes ([server] max_import_bytes)"
                ),
            ));
        }
        hash.update(&data);
        file.write_all(&data).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    let mut std_file = file.into_inner().into_std().await;
    std::io::Seek::rewind(&mut std_file).map_err(io)?;
    Ok(Spooled {
        file: std_file,
        sha256: format!("sha256:{}", hex::encode(hash.finalize())),
        bytes,
    })
}

/// Start an import.
///
/// The body streams to a spool file (never into memory), then the import
/// runs in the background and the answer is 202 with the job. Each line is
/// a real create (`leadflow import`, docs/import.md): refused lines go to
/// the reject report (`GET /v1/imports/{id}/rejected`), lines committed
/// under the import key are skipped when the same key is posted again.
/// Admin keys only.
#[utoipa::path(post, path = "/v1/imports", tag = "imports", operation_id = "imports_create",
    params(ImportParams),
    request_body(content((String = "text/csv"), (String = "application/x-ndjson")),
        description = "CSV with a header row, or one JSON object a line"),
    responses((status = 202, body = JobView, description = "the import job, running; `Location` is its path"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST (an unknown parameter, a bad `on_duplicate`, `country` or `key`), E_IMPORT_MAP (a `map` field the workflow lacks), E_IMPORT_DEDUP (a `dedup` field the workflow lacks; `on_duplicate` without `dedup`), E_IMPORT_UPDATE (`on_duplicate=update` without a transition of the workflow in `update_with`)"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: not an admin key"),
              (status = 404, body = super::error::ErrorBody, description = "E_UNKNOWN_WORKFLOW"),
              (status = 408, body = super::error::ErrorBody, description = "E_TIMEOUT: the body stalled for `body_timeout`"),
              (status = 409, body = super::error::ErrorBody, description = "E_IMPORT_RUNNING: a job with this import key is running"),
              (status = 413, body = super::error::ErrorBody, description = "E_TOO_LARGE: over `max_import_bytes`"),
              (status = 415, body = super::error::ErrorBody, description = "E_MEDIA_TYPE: neither text/csv nor application/x-ndjson")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<ImportParams>,
    body: Body,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let t = s.tenant(&caller).clone();
    let format = format_of(&headers)?;
    let mut opts = options(&t, &q, format)?;
    t.backend.jobs_interrupt_stale(s.now() - stale()).await?;
    if let Some(k) = &q.key {
        running(&t, k).await?;
    }
    let sp = spool(body, s.limits.max_import_bytes, s.limits.body_timeout()).await?;
    let key = q.key.clone().unwrap_or_else(|| sp.sha256.clone());
    opts.key = Some(key.clone());
    let params = serde_json::json!({
        "workflow": q.workflow,
        "format": match format { Format::Csv => "csv", Format::Ndjson => "ndjson" },
        "dedup": opts.dedup,
        "on_duplicate": q.on_duplicate.as_deref().unwrap_or("skip"),
        "update_with": q.update_with,
        "map": q.map,
        "country": opts.country,
        "bytes": sp.bytes,
    });
    let progress = serde_json::to_value(Summary::default()).unwrap_or_default();
    let id = t
        .backend
        .job_create(NewJob {
            kind: "import",
            workflow: &q.workflow,
            import_key: Some(&key),
            created_by: &caller.key,
            params: &params,
            progress: &progress,
            now: s.now(),
        })
        .await?;
    let Some(id) = id else {
        running(&t, &key).await?;
        return Err(import_running(None));
    };
    let wf = t.backend.versions().current(&q.workflow)?;
    let job = run(t.clone(), id, wf, opts, sp.file, s.jobs.stopping());
    s.jobs.spawn(t.clone(), id, job);
    let row = t
        .backend
        .job_get(id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(accepted(row))
}

fn import_running(id: Option<i64>) -> ApiError {
    let which = id
        .map(|i| format!(" (job {i}, /v1/imports/{i})"))
        .unwrap_or_default();
    ApiError::new(
        StatusCode::CONFLICT,
        "E_IMPORT_RUNNING",
        format!("an import with this key is running{which}: wait for it to end, then post again to resume"),
    )
}

/// 409 if a job runs under `key`.
async fn running(t: &Tenant, key: &str) -> Result<(), ApiError> {
    match t.backend.job_running(key).await? {
        Some(id) => Err(import_running(Some(id))),
        None => Ok(()),
    }
}

/// The reject report as it is written, shared with the job's task.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    /// The text written since the last call, up to a whole character.
    fn take(&self) -> String {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let upto = match std::str::from_utf8(&buf) {
            Ok(_) => buf.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Not UTF-8 at all (the report copies what it read): as is.
            Err(_) => buf.len(),
        };
        let rest = buf.split_off(upto);
        let text = String::from_utf8_lossy(&buf).into_owned();
        *buf = rest;
        text
    }
}

/// Save the counts and the report's new text (chunk `seq`, then the next).
async fn persist(t: &Tenant, id: i64, sum: &Summary, rejects: &Shared, seq: &AtomicI64) {
    let text = rejects.take();
    if !text.is_empty() {
        let n = seq.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = t.backend.job_reject_chunk(id, n, &text).await {
            tracing::error!(tenant = %t.id, job = id, error = %e, "import: reject report chunk not written");
        }
    }
    let p = serde_json::to_value(sum).unwrap_or_default();
    if let Err(e) = t.backend.job_progress(id, &p, chrono::Utc::now()).await {
        tracing::warn!(tenant = %t.id, job = id, error = %e, "import: progress not written");
    }
}

/// The import job: runs the import, saves counts and rejects every
/// second (from a [`Beat`]), records how it ended.
async fn run(
    t: Arc<Tenant>,
    id: i64,
    wf: Arc<leadflow_engine::Workflow>,
    opts: Options,
    file: std::fs::File,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let rejects = Shared::default();
    let (ptx, prx) = tokio::sync::watch::channel(Summary::default());
    let clock = chrono::Utc::now;
    let mut progress = move |s: &Summary| {
        ptx.send_replace(*s);
    };
    let seq = Arc::new(AtomicI64::new(0));
    let beat = {
        let (t, rejects, prx, seq) = (t.clone(), rejects.clone(), prx.clone(), seq.clone());
        Beat::start(move || {
            let (t, rejects, seq) = (t.clone(), rejects.clone(), seq.clone());
            let sum = *prx.borrow();
            async move { persist(&t, id, &sum, &rejects, &seq).await }
        })
    };
    let backend = t.backend.clone();
    let mut fut = Box::pin(import(
        &backend,
        wf,
        &opts,
        std::io::BufReader::with_capacity(1 << 16, file),
        rejects.clone(),
        &clock,
        &mut progress,
    ));
    // (The guard `wait_for` answers is not Send: dropped in here.)
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let outcome = tokio::select! {
        r = &mut fut => Some(r),
        _ = stopped => None,
    };
    // Dropped: a batch still open rolls back; the report's buffer flushes.
    drop(fut);
    beat.stop().await;
    let last = *prx.borrow();
    let (state, sum, report, error) = match outcome {
        Some(Ok((sum, ignored))) => (
            "done",
            sum,
            Some(serde_json::json!({"summary": sum.to_string(), "ignored_columns": ignored})),
            None,
        ),
        Some(Err(e)) => {
            let (code, message) = match &e {
                ImportError::Options { code, message } => (*code, message.clone()),
                ImportError::Read(m) => (e.code(), m.clone()),
                ImportError::Report(_) => (
                    "E_INTERNAL",
                    "the reject report could not be written".into(),
                ),
                ImportError::Store(err) => {
                    tracing::error!(tenant = %t.id, job = id, error = %err, "import stopped");
                    ("E_UNAVAILABLE", "a database error stopped the import; the lines committed so far stay: post it again with the same key to resume".into())
                }
            };
            (
                "failed",
                last,
                None,
                Some(serde_json::json!({"code": code, "message": message})),
            )
        }
        None => ("interrupted", last, None, None),
    };
    persist(&t, id, &sum, &rejects, &seq).await;
    let progress = serde_json::to_value(sum).unwrap_or_default();
    let end = JobEnd {
        state,
        progress: &progress,
        report: report.as_ref(),
        error: error.as_ref(),
        now: chrono::Utc::now(),
    };
    if let Err(e) = t.backend.job_finish(id, end).await {
        tracing::error!(tenant = %t.id, job = id, error = %e, "import: final state not written");
    }
}

/// An import job: its state, counts and, when done, its report.
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", operation_id = "imports_get",
    params(("id" = i64, Path, description = "the job id", example = 1)),
    responses((status = 200, body = JobView, description = "the job"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: not an admin key"),
              (status = 404, body = super::error::ErrorBody, description = "E_JOB_NOT_FOUND")),
    security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<JobView>, ApiError> {
    require_admin(&caller)?;
    let t = s.tenant(&caller);
    let j = visible_job(&s, t, &caller, "import", id).await?;
    Ok(axum::Json(JobView::of(j)))
}

/// The lines an import refused, as the CLI's reject report.
///
/// CSV input: `_line,_column,_code,_message`, then the line as it was read
/// under the input's header (fix the values and post the report itself
/// again); NDJSON input: one object a line with those keys. Empty when no
/// line was refused. Streams what has been written so far while the job
/// runs.
#[utoipa::path(get, path = "/v1/imports/{id}/rejected", tag = "imports", operation_id = "imports_rejected",
    params(("id" = i64, Path, description = "the job id", example = 1)),
    responses((status = 200, description = "the reject report: CSV, or NDJSON for an NDJSON import",
               content((String = "text/csv"), (String = "application/x-ndjson"))),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: not an admin key"),
              (status = 404, body = super::error::ErrorBody, description = "E_JOB_NOT_FOUND")),
    security(("bearer" = [])))]
pub async fn rejected(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let t = s.tenant(&caller).clone();
    let j = visible_job(&s, &t, &caller, "import", id).await?;
    let ct = match j.params.get("format").and_then(|f| f.as_str()) {
        Some("ndjson") => "application/x-ndjson",
        _ => "text/csv; charset=utf-8",
    };
    let stream = futures_util::stream::unfold(0i64, move |seq| {
        let t = t.clone();
        async move {
            match t.backend.job_rejects(id, seq).await {
                Ok(Some(text)) => Some((Ok::<_, std::io::Error>(Bytes::from(text)), seq + 1)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), i64::MAX)),
            }
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(ct),
    );
    Ok(resp)
}
