//! The local stack's HTTP interface: one handler for every path, so that paths reach the
//! shared validation raw, never percent-decoded or normalized by a router (the connections are
//! [`crate::server`]'s). Each route's work is in its own module; this one applies the rate
//! limit, checks the admin token (throttling wrong ones), dispatches, and runs the server.

use crate::backfill::Backfills;
use crate::cache::Cache;
use crate::limit::{AdminGuard, RateLimit};
use crate::metrics::Metrics;
use crate::server::ConnLimits;
use crate::stack::LocalStack;
use crate::{LocalError, LocalStackArgs};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use pixelfront_shared::delivery::http::{self as mapping, HttpResponse};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-process state of the server.
pub struct App {
    /// Stores and shared services.
    pub stack: Arc<LocalStack>,
    /// Delivered images, coalescing concurrent misses.
    pub cache: Cache,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// Per-client rate limit of every request.
    pub limit: RateLimit,
    /// Wrong admin tokens per client.
    pub admin_guard: AdminGuard,
    /// Time to receive a request body ([`App::read_body`]).
    pub body_timeout: Duration,
    /// Background renders still running (graceful shutdown waits for them).
    pub renders: AtomicUsize,
    /// The latest backfill and the totals since start-up.
    pub backfills: Backfills,
    /// Set once the server stops accepting connections: background work schedules no more.
    pub stopping: AtomicBool,
    /// The tenant API over the same stores.
    pub api: crate::api::LocalApi,
    /// The web console's files.
    pub console: crate::console::Console,
}

/// An axum response from the shared mapping's.
pub fn to_axum(resp: HttpResponse) -> Response {
    resp.map(Body::from)
}

/// A plain-text answer that is never cached.
pub fn text(status: u16, body: impl Into<String>) -> Response {
    to_axum(mapping::text(status, "no-store", body))
}

/// A JSON answer (never cached).
pub fn json(status: u16, value: &serde_json::Value) -> Response {
    to_axum(mapping::json(status, value))
}

/// 503 for a store that failed; the detail goes to the log only.
pub fn unavailable(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what}");
    text(503, format!("{what} unavailable"))
}

/// What a request's `Authorization` header says about the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization: Bearer` header.
    Absent,
    /// The admin token.
    Admin,
    /// Another token (a guess: counted by [`AdminGuard`]).
    Wrong,
}

/// Constant-time comparison of the `Authorization: Bearer` token with the admin token (the
/// time depends on the given token's length only).
/// A tenant API key (`pfk_…`) is no guess at the admin token: [`Credential::Absent`] here, the
/// tenant API checks it.
pub fn credential(headers: &HeaderMap, token: &str) -> Credential {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !pixelfront_shared::api::keys::looks_like_key(t))
    else {
        return Credential::Absent;
    };
    let same = pixelfront_shared::sign::ct_eq(given.as_bytes(), token.as_bytes());
    if same {
        Credential::Admin
    } else {
        Credential::Wrong
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1).
pub fn too_many(reason: &str, retry_after: Duration) -> Response {
    let mut resp = text(429, reason);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// [`too_many`] for a request to `path`: the tenant API's routes (`/api/`, `/uploads/`) answer
/// their errors as JSON, `{"error": reason}`.
fn too_many_for(path: &str, reason: &str, retry_after: Duration) -> Response {
    let mut resp = too_many(reason, retry_after);
    if path.starts_with("/api/") || path.starts_with("/uploads/") {
        let mut json = json(429, &serde_json::json!({ "error": reason }));
        if let Some(v) = resp.headers_mut().remove(header::RETRY_AFTER) {
            json.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp = json;
    }
    resp
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized() -> Response {
    let mut resp = text(401, "admin token required");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

impl App {
    /// The request's credential; a wrong token counts against the client (`Err`: how long the
    /// client stays locked out, answered 429 for any token before the token is even compared,
    /// so a 429 says nothing of a guess).
    fn admin_credential(&self, headers: &HeaderMap, ip: IpAddr) -> Result<Credential, Duration> {
        let c = credential(headers, &self.stack.admin_token);
        if c == Credential::Absent {
            return Ok(c);
        }
        let now = std::time::Instant::now();
        if let Some(wait) = self.admin_guard.locked(ip, now) {
            return Err(wait);
        }
        match c {
            Credential::Wrong => {
                tracing::warn!(%ip, "wrong admin token");
                self.admin_guard.failed(ip, now);
            }
            Credential::Admin => self.admin_guard.succeeded(ip),
            Credential::Absent => {}
        }
        Ok(c)
    }

    /// The body, at most `limit` bytes, received within the body timeout: else `413`, or
    /// `408` for a client too slow (or gone).
    pub async fn read_body(&self, body: Body, limit: usize) -> Result<Bytes, Response> {
        match tokio::time::timeout(self.body_timeout, to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(_)) => Err(text(413, format!("body over {limit} bytes"))),
            Err(_) => Err(text(408, "request body not received in time")),
        }
    }
}

/// Answers one request from `peer`: the rate limit (every route; `/img` counts in
/// [`App::image`]), the admin token, then the route.
pub async fn route(app: Arc<App>, peer: SocketAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();
    let started = Instant::now();
    let ip = peer.ip();
    let is_image = path.starts_with("/img/");
    // Image requests carry no admin token (an `Authorization` header there is not a guess).
    let is_admin = !is_image
        && match app.admin_credential(&parts.headers, ip) {
            Ok(c) => c == Credential::Admin,
            Err(wait) => return too_many_for(&path, "too many wrong admin tokens", wait),
        };
    // The operator's own calls (uploads, polling a manifest or a backfill) are not counted.
    if !is_admin && !is_image {
        if let Err(wait) = app.limit.check(ip) {
            return too_many_for(&path, "rate limited", wait);
        }
    }
    let admin = || is_admin;
    let resp = match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, p) if p.starts_with("/img/") && is_latest(p) => {
            app.latest(&parts, ip).await
        }
        (_, p) if p.starts_with("/img/") => app.image(&parts, ip).await,
        (_, p) if crate::tenant_admin::is_tenant_route(p) => {
            if !admin() {
                return crate::tenant_admin::admin_required();
            }
            app.tenant_call(&method, p, body).await
        }
        (_, p) if p.starts_with("/api/") => app.api_call(&parts, body).await,
        (&Method::PUT, p) if p.starts_with("/uploads/") => app.signed_upload(&parts, body).await,
        (&Method::PUT, p) if p.starts_with("/originals/") => {
            if !admin() {
                return unauthorized();
            }
            app.upload(body, &p["/originals/".len()..]).await
        }
        (&Method::GET, p) if p.starts_with("/manifest/") => {
            app.manifest(&p["/manifest/".len()..], is_admin).await
        }
        (&Method::POST, p) if p == "/takedown" || p.starts_with("/takedown/") => {
            if !admin() {
                return unauthorized();
            }
            app.remove(body, p.strip_prefix("/takedown/"), "takedown")
                .await
        }
        (&Method::POST, p) if p == "/erase" || p.starts_with("/erase/") => {
            if !admin() {
                return unauthorized();
            }
            app.remove(body, p.strip_prefix("/erase/"), "erase").await
        }
        (&Method::GET, p) if p.starts_with("/audit/") => {
            if !admin() {
                return unauthorized();
            }
            app.audit_of(&p["/audit/".len()..]).await
        }
        (&Method::POST, "/backfill") => {
            if !admin() {
                return unauthorized();
            }
            app.start_backfill()
        }
        (&Method::GET, "/backfill") => {
            if !admin() {
                return unauthorized();
            }
            app.backfill_status()
        }
        (&Method::GET, "/healthz") => text(200, "ok\n"),
        (&Method::GET, "/metrics") => {
            let body = app.metrics.render_text(app.cache.bytes().await);
            let mut resp = text(200, body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            resp
        }
        (m, p) => match app.console.answer(m, p) {
            Some(resp) => resp,
            None => text(404, "not found"),
        },
    };
    tracing::debug!(%method, path, status = resp.status().as_u16(), us = started.elapsed().as_micros() as u64, "request");
    resp
}

/// Whether an image path is the `latest` alias, `/img/{tenant}/latest/{key}`.
fn is_latest(path: &str) -> bool {
    path.strip_prefix("/img/")
        .and_then(|p| p.split_once('/'))
        .is_some_and(|(_, rest)| rest.starts_with("latest/"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: no new connections, finishing requests and renders");
}

/// Serves until a shutdown signal, then drains connections and waits for background renders
/// until the shutdown deadline (a render cut short stays `rendering` and resumes at the next
/// start).
pub async fn serve(
    stack: Arc<LocalStack>,
    args: LocalStackArgs,
    generated_token: bool,
) -> Result<(), LocalError> {
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|e| LocalError::Io(format!("listening on {}: {e}", args.addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| LocalError::Io(format!("listening on {}: {e}", args.addr)))?;
    let cache = Cache::new(args.cache_mb.saturating_mul(1 << 20));
    let base_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let api = crate::api::local_api(&stack, &cache, &args, base_url.trim_end_matches('/'))
        .map_err(LocalError::Io)?;
    let app = Arc::new(App {
        stack: stack.clone(),
        api,
        cache,
        metrics: Metrics::default(),
        limit: RateLimit::new(args.rate_limit),
        admin_guard: AdminGuard::default(),
        body_timeout: Duration::from_secs(args.body_timeout),
        renders: AtomicUsize::new(0),
        backfills: Backfills::default(),
        stopping: AtomicBool::new(false),
        console: crate::console::Console {
            dir: args.console_dir.clone(),
        },
    });
    app.resume_unfinished().await?;
    eprintln!(
        "pixelfront dev: local stack listening on http://{local} (data in {})",
        args.data.display()
    );
    if generated_token {
        eprintln!(
            "pixelfront dev: admin token (set PIXELFRONT_ADMIN_TOKEN to choose one): {}",
            stack.admin_token
        );
    }
    if let Some(dir) = &args.ingest {
        app.ingest(dir, &format!("http://{local}")).await?;
    }
    // A generated token rides in the fragment, which the browser never sends to a server; a
    // token the operator chose is theirs to type.
    let fragment = if generated_token {
        format!("#token={}", stack.admin_token)
    } else {
        String::new()
    };
    eprintln!("pixelfront dev: console: http://{local}/console/{fragment}");
    if args.ingest.is_some() {
        eprintln!("pixelfront dev: serving; Ctrl-C to stop");
    }
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        write_timeout: Duration::from_secs(args.write_timeout.max(1)),
        max_connections: args.max_connections,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    let deadline = crate::server::run(listener, app.clone(), limits, shutdown_signal()).await;
    app.stopping.store(true, Ordering::SeqCst);
    while app.renders.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unfinished = app.renders.load(Ordering::SeqCst);
    if unfinished > 0 {
        tracing::warn!(
            renders = unfinished,
            "shutdown deadline: renders left unfinished resume at the next start"
        );
    }
    eprintln!("pixelfront dev: stopped");
    Ok(())
}
