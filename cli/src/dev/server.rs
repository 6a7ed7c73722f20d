//! The local stack's HTTP interface (axum over one fallback handler, so that paths reach the
//! shared validation raw, never percent-decoded or normalized by a router).

use super::cache::{Cache, Served};
use super::limit::RateLimit;
use super::metrics::{self, Backfilled, Metrics, Outcome, RenderKind};
use super::{Dev, DevArgs};
use crate::Failure;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pixelfront_shared::delivery::{etag_of, if_none_match, DeliveryError, Incoming, Source};
use pixelfront_shared::normalize::{valid_key, valid_tenant};
use pixelfront_shared::pipeline::{now_rfc3339, Action, BackfillOutcome, Job};
use pixelfront_shared::store::{AssetId, ManifestStore, SourceRef, Status};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The "bucket" name local sources carry (the pipeline refuses any other).
pub const LOCAL_BUCKET: &str = "local";

/// `X-Cache: Hit` or `Miss` on image responses.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Per-process state of the server.
pub struct App {
    dev: Arc<Dev>,
    /// Delivered images; concurrent misses for one derived key wait for one delivery.
    cache: Cache,
    metrics: Metrics,
    limit: RateLimit,
    /// Background renders still running (graceful shutdown waits for them).
    renders: AtomicUsize,
    /// The latest backfill (`POST /backfill`, `GET /backfill`).
    backfill: Mutex<BackfillState>,
    /// Set once the server stops accepting connections: a backfill schedules no more versions.
    stopping: AtomicBool,
}

/// Versions a backfill works on at once (each render already uses every core).
const BACKFILL_CONCURRENCY: usize = 2;

/// At most this many failures are listed in `GET /backfill` (all are counted).
const BACKFILL_ERRORS_LISTED: usize = 20;

/// The progress of the latest backfill, as `GET /backfill` answers it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackfillState {
    /// Run number since start-up (0: none yet).
    run: u64,
    /// `true` until every version was checked.
    running: bool,
    /// `ready` versions when the run started.
    total: usize,
    /// Versions checked so far (`rendered + current + skipped + failed`).
    done: usize,
    /// Rendered again with the current catalogue.
    rendered: usize,
    /// Already current: nothing written.
    current: usize,
    /// No longer `ready` when reached (taken down, erased, …): left alone.
    skipped: usize,
    /// Failed to render (the version keeps its record).
    failed: usize,
    /// `true` when the server stopped before every version was checked.
    interrupted: bool,
    /// RFC 3339 UTC start.
    started_at: Option<String>,
    /// RFC 3339 UTC end.
    finished_at: Option<String>,
    /// The first failures: `{tenant, key, version, error_type, error}`.
    errors: Vec<serde_json::Value>,
}

fn text(status: StatusCode, cache_control: &'static str, body: impl Into<String>) -> Response {
    let mut resp = (status, body.into()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    resp
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut resp = (status, format!("{value:#}\n")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn delivery_error(e: &DeliveryError) -> Response {
    if e.status() >= 500 {
        tracing::error!(status = e.status(), error = %e, "request failed");
    }
    text(status_of(e.status()), e.cache_control(), e.reason())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Constant-time comparison of the `Authorization: Bearer` token.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
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

fn unauthorized() -> Response {
    let mut resp = text(StatusCode::UNAUTHORIZED, "no-store", "admin token required");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

impl App {
    /// `GET /img/…`: the edge's checks, the cache, coalesced delivery.
    async fn image(&self, req: &Parts, ip: std::net::IpAddr) -> Response {
        if !self.limit.allow(ip) {
            self.metrics.request(Outcome::Reject, 0);
            return text(StatusCode::TOO_MANY_REQUESTS, "no-store", "rate limited");
        }
        let header_str = |name: HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
        let incoming = Incoming {
            path: req.uri.path(),
            query: req.uri.query().unwrap_or(""),
            forwarded: None,
            accept: header_str(header::ACCEPT),
            referer: header_str(header::REFERER),
        };
        let t = &self.dev.transformer;
        let n = match t.admit(&incoming, now_secs()).await {
            Ok(n) => n,
            Err(e) => {
                self.metrics.request(Outcome::Reject, 0);
                return delivery_error(&e);
            }
        };
        let key = n.derived_key();
        let deliver = async {
            let d = t.deliver(&n).await?;
            if let Source::Rendered { .. } = d.source {
                self.metrics.render(RenderKind::OnDemand, d.render_ms);
            }
            Ok::<_, DeliveryError>(Served::from(d))
        };
        let (delivered, outcome) = match self.cache.get_or_deliver(&key, deliver).await {
            Ok(found) => found,
            Err(e) => {
                self.metrics.request(Outcome::Reject, 0);
                return delivery_error(&e);
            }
        };
        let not_modified =
            header_str(header::IF_NONE_MATCH).is_some_and(|h| if_none_match(h, &delivered.etag));
        let head = req.method == Method::HEAD;
        let body = if not_modified || head {
            Body::empty()
        } else {
            Body::from(delivered.body.clone())
        };
        let sent = if not_modified || head {
            0
        } else {
            delivered.body.len()
        };
        self.metrics.request(outcome, sent);
        let mut resp = Response::new(body);
        if not_modified {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(delivered.content_type),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(delivered.cache_control),
        );
        if let Some(v) = &delivered.etag_header {
            h.insert(header::ETAG, v.clone());
        }
        if head && !not_modified {
            h.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(delivered.body.len()),
            );
        }
        let x_cache = if outcome == Outcome::Hit {
            "Hit"
        } else {
            "Miss"
        };
        h.insert(X_CACHE, HeaderValue::from_static(x_cache));
        resp
    }

    /// `PUT /originals/{tenant}/{key}`: store the next version, assign it, render in the
    /// background; 202 with the version.
    async fn upload(self: &Arc<Self>, req: Parts, body: Body, rest: &str) -> Response {
        if !authorized(&req.headers, &self.dev.admin_token) {
            return unauthorized();
        }
        let Some((tenant, key)) = rest.split_once('/') else {
            return text(
                StatusCode::BAD_REQUEST,
                "no-store",
                "expected /originals/{tenant}/{key}",
            );
        };
        if !valid_tenant(tenant) {
            return text(StatusCode::BAD_REQUEST, "no-store", "bad tenant");
        }
        if !valid_key(key) {
            return text(StatusCode::BAD_REQUEST, "no-store", "bad key");
        }
        let limit = self.dev.pipeline.config.limits.max_input_bytes;
        let body = match to_bytes(body, limit as usize).await {
            Ok(b) => b,
            Err(_) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "no-store",
                    format!("original larger than {limit} bytes"),
                )
            }
        };
        let job = match self.accept_original(tenant, key, &body).await {
            Ok(job) => job,
            Err(resp) => return resp,
        };
        self.metrics.upload();
        let reply = serde_json::json!({
            "tenant": tenant,
            "key": key,
            "version": job.version,
            "status": job.status.as_str(),
            "manifest": format!("/manifest/{tenant}/{key}"),
        });
        if job.action == Action::Render {
            self.spawn_render(job);
        }
        json(StatusCode::ACCEPTED, &reply)
    }

    /// Stores `body` as the next version of `{tenant}/{key}` (creating the tenant with the
    /// defaults on its first upload) and assigns its manifest version.
    async fn accept_original(&self, tenant: &str, key: &str, body: &[u8]) -> Result<Job, Response> {
        if let Err(e) = self.dev.tenants.ensure(tenant) {
            tracing::error!(error = %e, "tenants file");
            return Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-store",
                "tenants file unavailable",
            ));
        }
        let object_key = format!("{tenant}/{key}");
        let version_id = match self.dev.originals.put_version(&object_key, body) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "storing an original");
                return Err(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no-store",
                    "storage unavailable",
                ));
            }
        };
        let source = SourceRef {
            bucket: LOCAL_BUCKET.to_string(),
            key: object_key,
            version_id: Some(version_id),
            etag: Some(etag_of(body).trim_matches('"').to_string()),
            size: body.len() as u64,
        };
        self.dev.pipeline.assign(source).await.map_err(|e| {
            tracing::error!(error = %e, "assigning a version");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-store",
                "manifest unavailable",
            )
        })
    }

    /// `--ingest <folder>`: uploads every image of the folder as tenant `demo`, renders them,
    /// and prints a table of the manifests with URLs to open.
    async fn ingest(self: &Arc<Self>, dir: &std::path::Path, base: &str) -> Result<(), String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "jpg" | "jpeg" | "png" | "gif" | "webp" | "avif"
                    )
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!(
                "{}: no .jpg, .jpeg, .png, .gif, .webp or .avif files",
                dir.display()
            ));
        }
        eprintln!(
            "pixelfront dev: ingesting {} images from {} as tenant demo",
            files.len(),
            dir.display()
        );
        println!(
            "{:<40} {:>3} {:<8} {:>8} {:>9}  url",
            "key", "v", "status", "variants", "ms"
        );
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._~-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let body = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let job = self
                .accept_original("demo", &key, &body)
                .await
                .map_err(|r| format!("{name}: HTTP {}", r.status()))?;
            self.metrics.upload();
            let started = Instant::now();
            let (status, variants) = match self.dev.pipeline.render(&job).await {
                Ok(report) => {
                    for v in &report.variants {
                        self.metrics
                            .render(RenderKind::Standard, v.variant.render_ms);
                    }
                    (report.status.as_str().to_string(), report.variants.len())
                }
                Err(e) => {
                    let _ = self
                        .dev
                        .pipeline
                        .fail(&job, e.error_type(), &e.to_string())
                        .await;
                    (format!("failed: {}", e.error_type()), 0)
                }
            };
            let url = format!("{base}/img/demo/v{}/{key}?w=640&fmt=webp", job.version);
            println!(
                "{:<40} {:>3} {:<8} {:>8} {:>9}  {url}",
                key,
                job.version,
                status,
                variants,
                started.elapsed().as_millis()
            );
        }
        println!("manifests: {base}/manifest/demo/<key>   metrics: {base}/metrics");
        Ok(())
    }

    /// Renders the standard variants of `job` on a background task; failures are recorded.
    pub fn spawn_render(self: &Arc<Self>, job: Job) {
        let app = self.clone();
        app.renders.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let pipeline = &app.dev.pipeline;
            match pipeline.render(&job).await {
                Ok(report) => {
                    for v in &report.variants {
                        app.metrics
                            .render(RenderKind::Standard, v.variant.render_ms);
                    }
                    tracing::info!(asset = %job.asset, version = job.version, ms = report.total_ms, "ready");
                }
                Err(e) => {
                    tracing::warn!(asset = %job.asset, version = job.version, error = %e, "render failed");
                    if let Err(e2) = pipeline.fail(&job, e.error_type(), &e.to_string()).await {
                        tracing::error!(error = %e2, "recording a failure");
                    }
                }
            }
            // Taken down while rendering: what the render wrote goes too.
            if let Ok(Some(rec)) = app.dev.manifest.get(&job.asset, job.version).await {
                if matches!(rec.status, Status::TakenDown | Status::Erased) {
                    let prefix = job.asset.version_prefix(job.version);
                    let _ = app.dev.transformer.derived.remove_prefix(&prefix);
                    app.cache.purge_prefix(&format!("{prefix}/")).await;
                }
            }
            app.renders.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// `POST /takedown/…` and `POST /erase/…` (admin; JSON body with a `reason`): every
    /// version's original and derivatives removed, the manifest marked `status`, the cache
    /// purged, and an audit record written. A repeated `request_id` changes nothing and
    /// answers the first record.
    async fn remove(
        self: &Arc<Self>,
        req: Parts,
        body: Body,
        rest: &str,
        status: Status,
    ) -> Response {
        if !authorized(&req.headers, &self.dev.admin_token) {
            return unauthorized();
        }
        let action = if status == Status::Erased {
            "erase"
        } else {
            "takedown"
        };
        let asset = match asset_of(rest, action) {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        let (tenant, key) = (asset.tenant.as_str(), asset.key.as_str());
        let Ok(body) = to_bytes(body, 64 * 1024).await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "no-store", "body over 64 KB");
        };
        let parsed: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "no-store",
                    "body must be JSON with a reason",
                )
            }
        };
        let field = |name: &str| {
            parsed
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(reason) = field("reason") else {
            return text(StatusCode::BAD_REQUEST, "no-store", "reason required");
        };
        let requester = field("requester").unwrap_or("admin").to_string();
        let request_id = field("request_id")
            .map(str::to_string)
            .unwrap_or_else(super::new_token);
        let m = &self.dev.manifest;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "{action}");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-store",
                "storage unavailable",
            )
        };
        match m.audit(&request_id) {
            Ok(Some(existing)) => return json(StatusCode::OK, &existing),
            Ok(None) => {}
            Err(e) => return unavailable(&e),
        }
        let started = now_rfc3339();
        // The manifest first: from here on nothing of the asset is served or rendered.
        let versions = match m.remove_asset(&asset, status, &started) {
            Ok(v) if v.is_empty() => return text(StatusCode::NOT_FOUND, "no-store", "not found"),
            Ok(v) => v,
            Err(e) => return unavailable(&e),
        };
        let originals = match self.dev.originals.remove_versions(&asset.id()) {
            Ok(v) => v,
            Err(e) => return unavailable(&e),
        };
        let mut derivatives = Vec::new();
        let mut purged = 0;
        for v in &versions {
            let prefix = asset.version_prefix(v.version);
            match self.dev.transformer.derived.remove_prefix(&prefix) {
                Ok(keys) => derivatives.extend(keys),
                Err(e) => return unavailable(&e),
            }
            purged += self.cache.purge_prefix(&format!("{prefix}/")).await;
        }
        let record = serde_json::json!({
            "request_id": request_id,
            "action": action,
            "tenant": tenant,
            "key": key,
            "reason": reason,
            "requester": requester,
            "status": status.as_str(),
            "started_at": started,
            "finished_at": now_rfc3339(),
            "versions": versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            "deleted_original_versions": originals,
            "deleted_derivatives": derivatives,
            "cache_entries_purged": purged,
        });
        match m.put_audit(&request_id, &asset, &record) {
            Ok(stored) => {
                tracing::info!(asset = %asset, action, request_id, "removed");
                json(StatusCode::OK, &stored)
            }
            Err(e) => unavailable(&e),
        }
    }

    /// `GET /manifest/{tenant}/{key}`: the latest version as JSON.
    async fn manifest(&self, rest: &str) -> Response {
        let asset = match asset_of(rest, "manifest") {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        let m = &self.dev.manifest;
        let rec = match m.latest(&asset).await {
            Ok(Some(n)) => m.get(&asset, n).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let rec = match rec {
            Ok(Some(rec)) => rec,
            Ok(None) => return text(StatusCode::NOT_FOUND, "no-store", "not found"),
            Err(e) => {
                tracing::error!(error = %e, "manifest read");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no-store",
                    "manifest unavailable",
                );
            }
        };
        let mut v = serde_json::json!({
            "tenant": rec.asset.tenant,
            "key": rec.asset.key,
            "version": rec.version,
            "status": rec.status.as_str(),
            "variants": rec.variants.iter().map(|v| serde_json::json!({
                "name": v.name,
                "derivative": v.derivative,
                "width": v.width,
                "height": v.height,
                "bytes": v.bytes,
                "url": format!("/img/{}/v{}/{}?{}", rec.asset.tenant, rec.version, rec.asset.key, variant_query(&v.derivative)),
            })).collect::<Vec<_>>(),
            "original": rec.original,
            "created_at": rec.created_at,
            "updated_at": rec.updated_at,
        });
        if let Some(e) = &rec.error {
            v["error"] = serde_json::json!(e);
            v["error_type"] = serde_json::json!(rec.error_type);
        }
        json(StatusCode::OK, &v)
    }
}

impl App {
    /// `GET /audit/{tenant}/{key}` (admin): every takedown and erasure record of the asset,
    /// oldest first, as a JSON array; `404` when there is none.
    fn audit_of(&self, req: &Parts, rest: &str) -> Response {
        if !authorized(&req.headers, &self.dev.admin_token) {
            return unauthorized();
        }
        let asset = match asset_of(rest, "audit") {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        match self.dev.manifest.audits_of(&asset) {
            Ok(records) if records.is_empty() => {
                text(StatusCode::NOT_FOUND, "no-store", "no audit record")
            }
            Ok(records) => json(StatusCode::OK, &serde_json::Value::Array(records)),
            Err(e) => {
                tracing::error!(error = %e, "audit read");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no-store",
                    "storage unavailable",
                )
            }
        }
    }

    /// `POST /backfill` (admin): checks every `ready` version against the current catalogue
    /// in the background, [`BACKFILL_CONCURRENCY`] at a time, rendering again those whose
    /// recorded variants differ ([`pixelfront_shared::pipeline::Pipeline::backfill`]). Answers `202`
    /// with `{"run", "total"}`, or `409` with the progress while a backfill runs.
    fn start_backfill(self: &Arc<Self>, req: &Parts) -> Response {
        if !authorized(&req.headers, &self.dev.admin_token) {
            return unauthorized();
        }
        let versions = match self.dev.manifest.with_status(Status::Ready) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "backfill: listing ready versions");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no-store",
                    "manifest unavailable",
                );
            }
        };
        let run = {
            let mut state = self.backfill.lock().unwrap_or_else(|e| e.into_inner());
            if state.running {
                let mut body = serde_json::json!(*state);
                body["error"] = serde_json::json!("a backfill is running");
                return json(StatusCode::CONFLICT, &body);
            }
            *state = BackfillState {
                run: state.run + 1,
                running: true,
                total: versions.len(),
                started_at: Some(now_rfc3339()),
                ..BackfillState::default()
            };
            state.run
        };
        tracing::info!(run, total = versions.len(), "backfill started");
        let total = versions.len();
        let queue = Arc::new(Mutex::new(
            versions
                .into_iter()
                .map(|r| (r.asset, r.version))
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let app = self.clone();
        tokio::spawn(async move {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..BACKFILL_CONCURRENCY {
                let (app, queue) = (app.clone(), queue.clone());
                workers.spawn(async move {
                    while !app.stopping.load(Ordering::SeqCst) {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some((asset, version)) = next else { break };
                        app.renders.fetch_add(1, Ordering::SeqCst);
                        app.backfill_one(&asset, version).await;
                        app.renders.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
            while let Some(joined) = workers.join_next().await {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "backfill worker");
                }
            }
            let mut state = app.backfill.lock().unwrap_or_else(|e| e.into_inner());
            state.running = false;
            state.interrupted = state.done < state.total;
            state.finished_at = Some(now_rfc3339());
            tracing::info!(
                run,
                rendered = state.rendered,
                current = state.current,
                skipped = state.skipped,
                failed = state.failed,
                "backfill finished"
            );
        });
        json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "run": run, "total": total }),
        )
    }

    /// Backfills one version and counts the outcome; a rendered version's cached responses
    /// are dropped, and what a render wrote for a version taken down meanwhile is removed.
    async fn backfill_one(&self, asset: &AssetId, version: u32) {
        let result = self.dev.pipeline.backfill(asset, version).await;
        let prefix = asset.version_prefix(version);
        if matches!(
            result,
            Ok(ref r) if r.outcome == BackfillOutcome::Rendered
        ) {
            self.cache.purge_prefix(&format!("{prefix}/")).await;
        }
        if let Ok(Some(rec)) = self.dev.manifest.get(asset, version).await {
            if matches!(rec.status, Status::TakenDown | Status::Erased) {
                let _ = self.dev.transformer.derived.remove_prefix(&prefix);
                self.cache.purge_prefix(&format!("{prefix}/")).await;
            }
        }
        let mut state = self.backfill.lock().unwrap_or_else(|e| e.into_inner());
        state.done += 1;
        let tally = match result {
            Ok(r) => match r.outcome {
                BackfillOutcome::Rendered => {
                    state.rendered += 1;
                    Backfilled::Rendered
                }
                BackfillOutcome::Current => {
                    state.current += 1;
                    Backfilled::Current
                }
                BackfillOutcome::Skipped => {
                    state.skipped += 1;
                    Backfilled::Skipped
                }
            },
            Err(e) => {
                tracing::warn!(%asset, version, error = %e, "backfill failed");
                state.failed += 1;
                if state.errors.len() < BACKFILL_ERRORS_LISTED {
                    state.errors.push(serde_json::json!({
                        "tenant": asset.tenant,
                        "key": asset.key,
                        "version": version,
                        "error_type": e.error_type(),
                        "error": e.to_string(),
                    }));
                }
                Backfilled::Failed
            }
        };
        self.metrics.backfill(tally);
    }

    /// `GET /backfill` (admin): the progress of the latest backfill.
    fn backfill_status(&self, req: &Parts) -> Response {
        if !authorized(&req.headers, &self.dev.admin_token) {
            return unauthorized();
        }
        let state = self
            .backfill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json(StatusCode::OK, &serde_json::json!(state))
    }
}

/// `{tenant}/{key}` of an admin or manifest path, validated; else the 400 naming `route`.
fn asset_of(rest: &str, route: &str) -> Result<AssetId, Box<Response>> {
    match rest.split_once('/') {
        Some((tenant, key)) if valid_tenant(tenant) && valid_key(key) => Ok(AssetId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        }),
        _ => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "no-store",
            format!("expected /{route}/{{tenant}}/{{key}}"),
        ))),
    }
}

/// The canonical query of a derivative name (`w320-q80.webp` → `fmt=webp&q=80&w=320`).
fn variant_query(derivative: &str) -> String {
    let (stem, fmt) = derivative.rsplit_once('.').unwrap_or((derivative, ""));
    let mut parts = vec![format!("fmt={fmt}")];
    let mut named: Vec<(char, &str)> = stem
        .split('-')
        .filter_map(|p| p.chars().next().map(|c| (c, &p[1..])))
        .filter(|(c, _)| matches!(c, 'w' | 'h' | 'q'))
        .collect();
    named.sort_by_key(|(c, _)| match c {
        'h' => 0,
        'q' => 1,
        _ => 2,
    });
    parts.extend(named.into_iter().map(|(c, v)| format!("{c}={v}")));
    parts.join("&")
}

async fn route(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let uri = parts.uri.clone();
    let path = uri.path();
    let method = parts.method.clone();
    let started = Instant::now();
    let resp = match (&method, path) {
        (&Method::GET | &Method::HEAD, p) if p.starts_with("/img/") => {
            app.image(&parts, peer.ip()).await
        }
        (&Method::PUT, p) if p.starts_with("/originals/") => {
            app.upload(parts, body, &p["/originals/".len()..]).await
        }
        (&Method::GET, p) if p.starts_with("/manifest/") => {
            app.manifest(&p["/manifest/".len()..]).await
        }
        (&Method::POST, p) if p.starts_with("/takedown/") => {
            app.remove(parts, body, &p["/takedown/".len()..], Status::TakenDown)
                .await
        }
        (&Method::POST, p) if p.starts_with("/erase/") => {
            app.remove(parts, body, &p["/erase/".len()..], Status::Erased)
                .await
        }
        (&Method::GET, p) if p.starts_with("/audit/") => {
            app.audit_of(&parts, &p["/audit/".len()..])
        }
        (&Method::POST, "/backfill") => app.start_backfill(&parts),
        (&Method::GET, "/backfill") => app.backfill_status(&parts),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "no-store", "ok\n"),
        (&Method::GET, "/metrics") => {
            let body = app.metrics.render_text(app.cache.bytes().await);
            let mut resp = text(StatusCode::OK, "no-store", body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "no-store", "not found"),
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
pub async fn serve(dev: Arc<Dev>, args: DevArgs, generated_token: bool) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|e| Failure::io(format!("listening on {}: {e}", args.addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::io(format!("listening on {}: {e}", args.addr)))?;
    let app = Arc::new(App {
        dev: dev.clone(),
        cache: Cache::new(args.cache_mb.saturating_mul(1 << 20)),
        metrics: Metrics::default(),
        limit: RateLimit::new(args.rate_limit),
        renders: AtomicUsize::new(0),
        backfill: Mutex::new(BackfillState::default()),
        stopping: AtomicBool::new(false),
    });
    // Versions a killed process left `rendering` are rendered again.
    let unfinished = dev.unfinished().map_err(Failure::io)?;
    for source in unfinished {
        match dev.pipeline.assign(source).await {
            Ok(job) if job.action == Action::Render => {
                tracing::info!(asset = %job.asset, version = job.version, "resuming an interrupted render");
                app.spawn_render(job);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot resume a render"),
        }
    }
    eprintln!(
        "pixelfront dev: listening on http://{local} (data in {})",
        args.data.display()
    );
    if generated_token {
        eprintln!(
            "pixelfront dev: admin token (set PIXELFRONT_ADMIN_TOKEN to choose one): {}",
            dev.admin_token
        );
    }
    if let Some(dir) = &args.ingest {
        app.ingest(dir, &format!("http://{local}"))
            .await
            .map_err(Failure::rejected)?;
        eprintln!("pixelfront dev: serving; Ctrl-C to stop");
    }
    let router = axum::Router::new().fallback(route).with_state(app.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| Failure::io(format!("server: {e}")))?;
    app.stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.renders.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("pixelfront dev: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_queries_are_canonical() {
        for (d, q) in [
            ("w320-q80.webp", "fmt=webp&q=80&w=320"),
            ("w160-h160-q75.webp", "fmt=webp&h=160&q=75&w=160"),
            ("w640.png", "fmt=png&w=640"),
            ("orig.png", "fmt=png"),
        ] {
            assert_eq!(variant_query(d), q);
        }
    }
}
