//! The local stack's HTTP interface: axum over one fallback handler, so that paths reach the
//! shared validation raw, never percent-decoded or normalized by a router. Each route's work is
//! in its own module; this one dispatches, checks the admin token and runs the server.

use crate::backfill::Backfills;
use crate::cache::Cache;
use crate::limit::RateLimit;
use crate::metrics::Metrics;
use crate::stack::LocalStack;
use crate::{LocalError, LocalStackArgs};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use pixelfront_shared::delivery::http::{self as mapping, HttpResponse};
use std::net::SocketAddr;
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
    /// Per-IP rate limit of image requests.
    pub limit: RateLimit,
    /// Background renders still running (graceful shutdown waits for them).
    pub renders: AtomicUsize,
    /// The latest backfill and the totals since start-up.
    pub backfills: Backfills,
    /// Set once the server stops accepting connections: background work schedules no more.
    pub stopping: AtomicBool,
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

/// Constant-time comparison of the `Authorization: Bearer` token with the admin token.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized() -> Response {
    let mut resp = text(401, "admin token required");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

async fn route(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();
    let started = Instant::now();
    let admin = || authorized(&parts.headers, &app.stack.admin_token);
    let resp = match (&method, path.as_str()) {
        (_, p) if p.starts_with("/img/") => app.image(&parts, peer.ip()).await,
        (&Method::PUT, p) if p.starts_with("/originals/") => {
            if !admin() {
                return unauthorized();
            }
            app.upload(body, &p["/originals/".len()..]).await
        }
        (&Method::GET, p) if p.starts_with("/manifest/") => {
            app.manifest(&p["/manifest/".len()..]).await
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
        _ => text(404, "not found"),
    };
    tracing::debug!(%method, path, status = resp.status().as_u16(), us = started.elapsed().as_micros() as u64, "request");
    resp
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

/// Serves until a shutdown signal, then waits (up to a minute) for background renders.
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
    let app = Arc::new(App {
        stack: stack.clone(),
        cache: Cache::new(args.cache_mb.saturating_mul(1 << 20)),
        metrics: Metrics::default(),
        limit: RateLimit::new(args.rate_limit),
        renders: AtomicUsize::new(0),
        backfills: Backfills::default(),
        stopping: AtomicBool::new(false),
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
        eprintln!("pixelfront dev: serving; Ctrl-C to stop");
    }
    let router = axum::Router::new().fallback(route).with_state(app.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| LocalError::Io(format!("server: {e}")))?;
    app.stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.renders.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("pixelfront dev: stopped");
    Ok(())
}
