//! Serving connections within the `[server]` limits of `leadflow.toml`.
//!
//! `axum::serve` has no header timeout and no bound on connections, so the
//! daemon drives hyper itself: a header read timeout (hyper's own, which
//! needs a timer to work, and which also cuts idle keep-alive connections),
//! a semaphore of `max_connections` (at the limit the longest-idle
//! connection makes room, see `conns.rs`; when none is idle a client gets
//! a small `503` problem document with `Retry-After` and is closed), and a graceful shutdown
//! that waits at most `shutdown_grace` before closing what is still open.
//! The layers here bound request bodies in size and time and turn a panic
//! in a handler into a 500 problem document.

use super::error::{ApiError, REQUEST_ID, REQUEST_PATH};
use crate::config::ServerConfig;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Accept and serve connections until `shutdown` resolves; then stop
/// accepting, let the requests in flight finish for at most
/// `limits.shutdown_grace`, and close the connections still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(super::conns::Registry::default());
    // Overload answers hold a socket for a moment too: bound them, and
    // beyond that close the connection at once.
    let refusals = Arc::new(Semaphore::new(limits.max_connections.clamp(1, 256)));
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            // At the limit: an idle connection makes room, if there is one.
            Err(_) if registry.evict_idle(super::conns::MIN_IDLE) => {
                metrics::counter!("leadflow_http_evictions_total").increment(1);
                None
            }
            Err(_) => {
                metrics::counter!("leadflow_http_overload_total").increment(1);
                if let Ok(p) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(refuse(stream, p));
                }
                continue;
            }
        };
        let (permits, refusals, registry) = (permits.clone(), refusals.clone(), registry.clone());
        let (router, http, watcher) = (router.clone(), http.clone(), graceful.watcher());
        conns.spawn(async move {
            let permit = match permit {
                Some(p) => p,
                // The evicted connection's permit comes free when its task ends.
                None => match tokio::time::timeout(EVICTION_WAIT, permits.acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        if let Ok(p) = refusals.try_acquire_owned() {
                            refuse(stream, p).await;
                        }
                        return;
                    }
                },
            };
            let me = registry.register();
            let state = me.conn.clone();
            let svc = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (state, router) = (state.clone(), router.clone());
                async move {
                    state.start();
                    let r = tower::ServiceExt::oneshot(router, req.map(Body::new)).await;
                    state.finish();
                    r
                }
            });
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), svc));
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection closed");
                },
                _ = me.conn.evicted() => tracing::debug!("idle connection closed to make room"),
            }
            drop(me);
            drop(permit);
        });
    }
    drop(listener);
    let open = conns.len();
    if open > 0 {
        tracing::info!(open, "waiting for the open connections to finish");
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace()) => {
            tracing::warn!(open = conns.len(), grace_s = limits.shutdown_grace, "shutdown grace over: closing the connections still open");
        }
    }
    conns.shutdown().await;
    Ok(())
}

/// How long a newcomer waits for the permit of the connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// Errors of `accept` that concern one connection are skipped; the others
/// (out of file descriptors) pause accepting a little, so that the
/// connections being served can finish and free theirs.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The 503 `E_OVERLOADED` problem document for a request (`instance` is
/// its path when the request line is readable; `request_id` is new, and
/// also sent as `x-request-id`).
pub fn overloaded(head: &[u8]) -> super::error::Problem {
    let mut p = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "E_OVERLOADED",
        "too many open connections; retry later",
    )
    .problem();
    p.instance = request_path(head);
    p
}

/// The path of a request head's request line (`GET /v1/records?x HTTP/1.1`
/// -> `/v1/records`), if it is one.
fn request_path(head: &[u8]) -> Option<String> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let target = std::str::from_utf8(line).ok()?.split(' ').nth(1)?;
    let path = target.split(['?', '#']).next()?;
    (path.starts_with('/') && path.len() <= 2048 && path.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| path.to_string())
}

/// Answer 503 on a connection over `max_connections` and close it. The
/// request's head is read first (a client reading an answer to a request
/// it has not sent takes it for garbage), then what else the client sends
/// is read and dropped until it closes (two seconds in all at most), so
/// that closing does not reset the connection before the client read the
/// answer.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let problem = overloaded(&head);
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\ncontent-length: {}\r\nretry-after: {}\r\nx-request-id: {}\r\nconnection: close\r\n\r\n{body}",
            super::error::PROBLEM_JSON,
            body.len(),
            super::error::RETRY_AFTER_SECS,
            problem.request_id,
        );
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Body limits, the same for every endpoint: a body over
/// `max_body_bytes` is 413 `E_TOO_LARGE`, one not received within
/// `body_timeout` is 408 `E_TIMEOUT`. The handlers get the body read.
pub async fn bound_body(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    limits: Arc<ServerConfig>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    // A body on the API is read only for a caller with a valid key, so a
    // stranger cannot make the daemon hold bodies (up to `max_body_bytes`
    // per connection) before being refused; the 401 goes out at once.
    if parts.uri.path().starts_with("/v1/") && has_body(&parts.headers) {
        if let Err(e) = super::auth::key_of(&s, &parts.headers) {
            return e.into_response();
        }
    }
    // An import streams its body to a spool file itself (`imports.rs`,
    // within `max_import_bytes`): never collected here.
    if parts.method == axum::http::Method::POST && parts.uri.path() == "/v1/imports" {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let max = limits.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = tokio::time::timeout(limits.body_timeout(), collect(body, max, declared)).await;
    match read {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "E_TIMEOUT",
            format!(
                "the request body was not received within {} s",
                limits.body_timeout
            ),
        )
        .into_response(),
        Ok(Collected::TooLarge) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_TOO_LARGE",
            format!("the request body is over the limit of {max} bytes"),
        )
        .into_response(),
        Ok(Collected::Broken) => {
            ApiError::bad_request("the request body could not be read").into_response()
        }
        Ok(Collected::Body(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// The request announces a body (a length above zero, or chunks).
fn has_body(h: &axum::http::HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

enum Collected {
    Body(Bytes),
    TooLarge,
    Broken,
}

/// Read a body up to `max` bytes. Past it, up to 16 times `max` more is
/// read and dropped, so that a client still sending gets the 413 rather
/// than a reset connection.
async fn collect(mut body: Body, max: usize, declared: Option<u64>) -> Collected {
    let drain = max.saturating_mul(16);
    let mut buf = Vec::new();
    let mut seen = 0usize;
    let mut over = declared.is_some_and(|n| n > max as u64);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return if over {
                Collected::TooLarge
            } else {
                Collected::Broken
            };
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > max {
            over = true;
            buf = Vec::new();
        }
        if over {
            if seen > drain {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if over {
        Collected::TooLarge
    } else {
        Collected::Body(Bytes::from(buf))
    }
}

/// Makes the request id and path known to what answers inside the
/// request (every problem document names them).
pub async fn scope_request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let path = req.uri().path().to_string();
    REQUEST_ID
        .scope(id, REQUEST_PATH.scope(path, next.run(req)))
        .await
}

/// A handler panicked: log it (in the request's span, with its id), count
/// it, answer 500 `E_INTERNAL`. The daemon goes on serving.
pub fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = crate::background::panic_message(&*err);
    tracing::error!(panic = %what, "handler panicked");
    metrics::counter!("leadflow_http_panics_total").increment(1);
    ApiError::internal().into_response()
}
