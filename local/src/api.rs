//! The tenant API on the local stack (docs/tenant-api.md): `/api/v1/tenants/…` answered by the
//! shared [`Api`] over the local stores, the signed upload URLs it hands out
//! (`PUT /uploads/{tenant}/{key}?…`, checked by [`LocalUploadSigner::verify`], then stored and
//! rendered as any upload), and the `latest` alias of the image routes. Takedown requests run
//! in-process through the takedown workflow's steps ([`LocalTakedowns`]), so a request is
//! finished when its `202` is answered.

use crate::api_keys::ApiKeys;
use crate::cache::Cache;
use crate::cdn::LocalCdn;
use crate::routes::{to_axum, App};
use crate::stack::LocalStack;
use crate::tenants::Tenants;
use axum::body::{to_bytes, Body};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use pixelfront_shared::api::service::{
    finished_status, Api, ApiCall, ApiConfig, TakedownStatus, Takedowns,
};
use pixelfront_shared::api::uploads::LocalUploadSigner;
use pixelfront_shared::api::{ApiError, MAX_BODY_BYTES};
use pixelfront_shared::pipeline::{now_rfc3339, Action};
use pixelfront_shared::removal::task::Removal;
use pixelfront_shared::removal::{RemovalError, RemovalInput, Summary};
use pixelfront_shared::sign::random_token;
use pixelfront_shared::store::fs::FsObjects;
use pixelfront_shared::store::sqlite::SqliteManifest;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The tenant API over the local stores.
pub type LocalApi =
    Api<Arc<SqliteManifest>, Arc<Tenants>, ApiKeys, LocalUploadSigner, LocalTakedowns>;

/// Name of the upload-signing secret in the data directory (mode 0600).
const UPLOAD_SECRET_FILE: &str = "upload-secret.json";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The data directory's upload-signing secret (256 random bits as 64 hex digits), made on
/// first use: URLs stay valid across restarts.
fn upload_secret(data: &Path) -> Result<Vec<u8>, String> {
    let path = data.join(UPLOAD_SECRET_FILE);
    let stored: Option<String> = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not an upload secret: {e}", path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if let Some(secret) = stored.filter(|s| s.len() >= 64) {
        return Ok(secret.into_bytes());
    }
    let token = || random_token().map_err(|e| format!("random source: {e}"));
    let secret = format!("{}{}", token()?, token()?);
    crate::tenants::write_json(&path, &secret)?;
    Ok(secret.into_bytes())
}

/// The removal steps of the takedown workflow over the local stores, the cache as the CDN.
pub struct LocalTakedowns {
    stack: Arc<LocalStack>,
    cache: Cache,
}

impl LocalTakedowns {
    /// Runs request `request_id` to its end: the summary (a repeat answers the first one).
    pub async fn run(
        &self,
        request_id: &str,
        input: &RemovalInput,
    ) -> Result<Summary, RemovalError> {
        let s = &self.stack;
        let removal = Removal {
            manifest: s.manifest.clone(),
            audit: s.manifest.clone(),
            originals: s.originals.clone(),
            replica: None::<Arc<FsObjects>>,
            derived: s.derived.clone(),
            cdn: LocalCdn { cache: &self.cache },
        };
        let summary = removal.run(request_id, input, now_rfc3339).await?;
        tracing::info!(request_id, assets = summary.assets.len(), "removed");
        Ok(summary)
    }
}

impl Takedowns for LocalTakedowns {
    async fn start(&self, request_id: &str, input: &RemovalInput) -> Result<(), RemovalError> {
        self.run(request_id, input).await.map(|_| ())
    }

    async fn status(&self, request_id: &str) -> Result<Option<TakedownStatus>, RemovalError> {
        finished_status(&self.stack.manifest, request_id).await
    }
}

/// The tenant API of `stack`: variant and status URLs under `base_url` (the stack's own
/// address, or `--public-url`), upload URLs valid for `--upload-ttl`.
pub fn local_api(
    stack: &Arc<LocalStack>,
    cache: &Cache,
    args: &crate::LocalStackArgs,
    base_url: &str,
) -> Result<LocalApi, String> {
    let data = args.data.as_path();
    let config = ApiConfig {
        upload_ttl_secs: args.upload_ttl.max(1),
        delivery_base_url: base_url.to_string(),
        api_base_url: base_url.to_string(),
        max_upload_bytes: stack.pipeline.config.limits.max_input_bytes,
        ..ApiConfig::default()
    };
    Ok(Api {
        manifest: stack.manifest.clone(),
        policies: stack.tenants.clone(),
        keys: ApiKeys::new(data),
        uploads: LocalUploadSigner::new(upload_secret(data)?, base_url),
        takedowns: LocalTakedowns {
            stack: stack.clone(),
            cache: cache.clone(),
        },
        config,
        admin_token: Some(stack.admin_token.clone()),
    })
}

/// A JSON error answer.
fn refused(e: ApiError) -> Response {
    to_axum(e.response())
}

impl App {
    /// `/api/v1/tenants/…`: the body (at most [`MAX_BODY_BYTES`]), then the shared API.
    pub async fn api_call(&self, parts: &Parts, body: Body) -> Response {
        let bytes =
            match tokio::time::timeout(self.body_timeout, to_bytes(body, MAX_BODY_BYTES)).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => {
                    return refused(ApiError::TooLarge(format!(
                        "body over {MAX_BODY_BYTES} bytes"
                    )))
                }
                Err(_) => {
                    return refused(ApiError::BadRequest(
                        "request body not received in time".into(),
                    ))
                }
            };
        let call = ApiCall {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            body: &bytes,
        };
        to_axum(self.api.handle(&call, now_secs()).await)
    }

    /// `GET`/`HEAD /img/{tenant}/latest/{key}?{query}`: the shared alias, rate-limited as
    /// every image request.
    pub async fn latest(&self, parts: &Parts, ip: std::net::IpAddr) -> Response {
        if !self.limit.allow(ip) {
            return crate::routes::text(429, "rate limited");
        }
        let referer = parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok());
        let path = parts.uri.path();
        let query = parts.uri.query().unwrap_or("");
        to_axum(self.api.latest(path, query, referer, now_secs()).await)
    }

    /// `PUT /uploads/{tenant}/{key}?ct=…&len=…&exp=…&sig=…`: a signed upload URL's one `PUT`,
    /// of at most the declared length with the declared `Content-Type`; 200 with the version.
    pub async fn signed_upload(self: &Arc<Self>, parts: &Parts, body: Body) -> Response {
        let object_key = parts.uri.path().trim_start_matches("/uploads/");
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let permit = match self.api.uploads.verify(
            object_key,
            parts.uri.query().unwrap_or(""),
            content_type,
            now_secs(),
        ) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        let limit = usize::try_from(permit.max_bytes).unwrap_or(usize::MAX);
        let body = match tokio::time::timeout(self.body_timeout, to_bytes(body, limit)).await {
            Ok(Ok(bytes)) if bytes.is_empty() => {
                return refused(ApiError::BadRequest("empty body".into()))
            }
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return refused(ApiError::TooLarge(format!(
                    "body over the declared {} bytes",
                    permit.max_bytes
                )))
            }
            Err(_) => {
                return refused(ApiError::BadRequest(
                    "request body not received in time".into(),
                ))
            }
        };
        let job = match self
            .accept_original(&permit.tenant, &permit.key, &body)
            .await
        {
            Ok(job) => job,
            Err(r) => return r.response(),
        };
        self.metrics.upload();
        let reply = serde_json::json!({
            "tenant": permit.tenant,
            "key": permit.key,
            "version": job.version,
            "status": job.status.as_str(),
        });
        if job.action == Action::Render {
            self.spawn_render(job);
        }
        to_axum(pixelfront_shared::delivery::http::json(200, &reply))
    }
}
