//! [`Api`]: one tenant API request in, one HTTP answer out, on either stack. The adapters read
//! the method, path, query, `Authorization` and body (at most [`super::MAX_BODY_BYTES`]) and
//! write back what [`Api::handle`] answers; the `latest` alias of the image routes is
//! [`Api::latest`].

use super::assets::{asset_view, cursor_of, key_of_cursor, latest_ready, UrlStyle};
use super::keys::{kid_of, matches, ApiKeyStore};
use super::uploads::{UploadRequest, UploadScope, UploadSigner};
use super::{ApiError, Caller, MAX_PAGE, MAX_WAIT_SECS};
use crate::delivery::http::{self as mapping, HttpResponse};
use crate::normalize::{valid_key, valid_tenant};
use crate::pipeline::rfc3339;
use crate::removal::{
    valid_request_id, AuditRecord, AuditStore, RemovalError, RemovalInput, Summary,
};
use crate::sign::{ct_eq, random_token, sign_uri, TenantPolicy};
use crate::store::{AssetId, ManifestStore, PolicyStore, Status, VersionRecord};
use http::header::{self, HeaderValue};
use http::Method;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// How often a waiting lookup reads the manifest again.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// `Cache-Control` of a `latest` redirect (and of its 404): a minute.
pub const LATEST_CACHE_CONTROL: &str = "public, max-age=60";

/// Settings of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Prefix of variant URLs (`https://d123.cloudfront.net`; empty: relative).
    pub delivery_base_url: String,
    /// Prefix of `status_url`s (the API's own address; empty: relative).
    pub api_base_url: String,
    /// How long an upload URL works, seconds (default 900).
    pub upload_ttl_secs: u64,
    /// How long a signing tenant's variant URLs work, seconds (default 86,400).
    pub url_ttl_secs: u64,
    /// Largest upload, bytes (the pipeline's input limit).
    pub max_upload_bytes: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            delivery_base_url: String::new(),
            api_base_url: String::new(),
            upload_ttl_secs: 900,
            url_ttl_secs: 86_400,
            max_upload_bytes: crate::Policy::get().limits.max_input_bytes,
        }
    }
}

/// Where a takedown request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakedownStatus {
    /// Request id.
    pub request_id: String,
    /// The tenant whose assets it names.
    pub tenant: String,
    /// `in_progress`, `finished` or `failed`.
    pub status: String,
    /// The request summary once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The audit record of each asset of the request.
    pub records: Vec<AuditRecord>,
}

/// Runs takedown and erasure requests: in-process on the local stack, the takedown workflow on
/// AWS.
pub trait Takedowns: Send + Sync {
    /// Starts (or, in-process, runs) the request; refuses it as the workflow would
    /// ([`RemovalError::InvalidRequest`], [`RemovalError::NotFound`],
    /// [`RemovalError::Conflict`] for a reused id).
    fn start(
        &self,
        request_id: &str,
        input: &RemovalInput,
    ) -> impl Future<Output = Result<(), RemovalError>> + Send;

    /// Where request `request_id` stands; `None` when it is unknown.
    fn status(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<TakedownStatus>, RemovalError>> + Send;
}

/// The status of a finished request from the audit store, with each asset's record of it;
/// `None` while it has not finished.
pub async fn finished_status<A: AuditStore>(
    audit: &A,
    request_id: &str,
) -> Result<Option<TakedownStatus>, RemovalError> {
    let Some(summary) = audit.finished(request_id).await? else {
        return Ok(None);
    };
    let mut records = Vec::new();
    let mut tenant = String::new();
    for id in &summary.assets {
        let Some((t, key)) = id.split_once('/') else {
            continue;
        };
        tenant = t.to_string();
        let asset = AssetId {
            tenant: t.to_string(),
            key: key.to_string(),
        };
        records.extend(
            audit
                .records(&asset)
                .await?
                .into_iter()
                .filter(|r| r.request_id == request_id),
        );
    }
    Ok(Some(TakedownStatus {
        request_id: request_id.to_string(),
        tenant,
        status: "finished".into(),
        summary: Some(summary),
        records,
    }))
}

/// One API request as the adapters read it.
#[derive(Debug, Clone, Copy)]
pub struct ApiCall<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as received (`/api/v1/tenants/…`), not percent-decoded.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body (the adapter refuses one over [`super::MAX_BODY_BYTES`] with 413).
    pub body: &'a [u8],
}

/// The body of `POST …/takedowns`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TakedownRequest {
    key: Option<String>,
    prefix: Option<String>,
    action: Option<String>,
    reason: Option<String>,
    requester: Option<String>,
    request_id: Option<String>,
}

/// The routes of the API.
enum Route<'a> {
    Uploads,
    Asset(&'a str),
    Assets,
    Takedowns,
    Takedown(&'a str),
}

/// The tenant API over its ports.
pub struct Api<M, P, K, U, T> {
    /// Versions and their status.
    pub manifest: M,
    /// Tenant policies (signing variant URLs, the `latest` alias's checks).
    pub policies: P,
    /// API keys.
    pub keys: K,
    /// Upload URLs.
    pub uploads: U,
    /// Takedown and erasure requests.
    pub takedowns: T,
    /// Settings.
    pub config: ApiConfig,
    /// The admin token (any tenant, any reason); `None`: tenant keys only.
    pub admin_token: Option<String>,
}

fn removal_error(e: RemovalError) -> ApiError {
    match e {
        RemovalError::InvalidRequest(m) => ApiError::BadRequest(m),
        RemovalError::NotFound(m) => ApiError::NotFound(format!("no asset matches: {m}")),
        RemovalError::Conflict(_) => {
            ApiError::Conflict("request_id already names another request".into())
        }
        other => ApiError::unavailable("takedown", &other),
    }
}

/// The query's parameters; 400 for one repeated or not in `allowed`.
fn params(query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&name.as_ref()) {
            return Err(ApiError::BadRequest(format!("unknown parameter {name:?}")));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::BadRequest(format!("parameter {name:?} repeated")));
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn number<T>(
    params: &[(String, String)],
    name: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(raw) = param(params, name) else {
        return Ok(None);
    };
    match raw.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be a whole number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

fn json_body<'b, T: Deserialize<'b>>(body: &'b [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be a JSON object of the documented fields: {e}"
        ))
    })
}

impl<M, P, K, U, T> Api<M, P, K, U, T>
where
    M: ManifestStore,
    P: PolicyStore,
    K: ApiKeyStore,
    U: UploadSigner,
    T: Takedowns,
{
    /// Answers `call` at `now` (Unix seconds).
    pub async fn handle(&self, call: &ApiCall<'_>, now: u64) -> HttpResponse {
        match self.answer(call, now).await {
            Ok(resp) => resp,
            Err(e) => e.response(),
        }
    }

    /// Who `authorization` names: an API key (by its id and hash) or the admin token.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let Some(token) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(ApiError::Unauthorized(
                "Authorization: Bearer <API key> required".into(),
            ));
        };
        if let Some(kid) = kid_of(token) {
            let record = self
                .keys
                .api_key(kid)
                .await
                .map_err(|e| ApiError::unavailable("API keys", &e))?;
            return match record {
                Some(r) if matches(&r, token) => Ok(Caller::Tenant {
                    tenant: r.tenant,
                    kid: r.kid,
                }),
                _ => Err(ApiError::Unauthorized("unknown API key".into())),
            };
        }
        match &self.admin_token {
            Some(admin) if ct_eq(token.as_bytes(), admin.as_bytes()) => Ok(Caller::Admin),
            _ => Err(ApiError::Unauthorized("unknown API key".into())),
        }
    }

    async fn answer(&self, call: &ApiCall<'_>, now: u64) -> Result<HttpResponse, ApiError> {
        let not_found = || ApiError::NotFound("no such route".into());
        if call.path == "/api/v1/whoami" {
            return self.whoami(call).await;
        }
        let rest = call
            .path
            .strip_prefix("/api/v1/tenants/")
            .ok_or_else(not_found)?;
        let (tenant, rest) = rest.split_once('/').ok_or_else(not_found)?;
        let route = match rest.split_once('/') {
            None if rest == "uploads" => Route::Uploads,
            None if rest == "assets" => Route::Assets,
            None if rest == "takedowns" => Route::Takedowns,
            Some(("assets", key)) => Route::Asset(key),
            Some(("takedowns", id)) => Route::Takedown(id),
            _ => return Err(not_found()),
        };
        let wanted = match route {
            Route::Uploads | Route::Takedowns => Method::POST,
            _ => Method::GET,
        };
        if *call.method != wanted {
            return Err(ApiError::MethodNotAllowed(if wanted == Method::POST {
                "POST"
            } else {
                "GET"
            }));
        }
        let caller = self.caller(call.authorization).await?;
        if !valid_tenant(tenant) {
            return Err(ApiError::BadRequest(
                "tenant must match [a-z0-9][a-z0-9-]{0,62}".into(),
            ));
        }
        caller.authorize(tenant)?;
        match route {
            Route::Uploads => self.upload(tenant, call, now).await,
            Route::Asset(key) => self.asset(tenant, key, call.query, now).await,
            Route::Assets => self.list(tenant, call.query).await,
            Route::Takedowns => self.request_takedown(tenant, &caller, call.body).await,
            Route::Takedown(id) => self.takedown_status(tenant, id).await,
        }
    }

    /// `GET /api/v1/whoami`: who the key is, `{"caller": "admin"}` or `{"caller": "tenant",
    /// "tenant", "kid"}` (a console signs in with it).
    async fn whoami(&self, call: &ApiCall<'_>) -> Result<HttpResponse, ApiError> {
        if *call.method != Method::GET {
            return Err(ApiError::MethodNotAllowed("GET"));
        }
        let view = match self.caller(call.authorization).await? {
            Caller::Admin => serde_json::json!({ "caller": "admin" }),
            Caller::Tenant { tenant, kid } => {
                serde_json::json!({ "caller": "tenant", "tenant": tenant, "kid": kid })
            }
        };
        Ok(mapping::json(200, &view))
    }

    /// `POST …/uploads`: 201 with a URL for one `PUT`.
    async fn upload(
        &self,
        tenant: &str,
        call: &ApiCall<'_>,
        now: u64,
    ) -> Result<HttpResponse, ApiError> {
        params(call.query, &[])?;
        let req: UploadRequest = json_body(call.body)?;
        req.check(self.config.max_upload_bytes)?;
        let expires_at = now.saturating_add(self.config.upload_ttl_secs);
        let object_key = format!("{tenant}/{}", req.key);
        let target = self
            .uploads
            .presign(&UploadScope {
                object_key: &object_key,
                content_type: &req.content_type,
                content_length: req.content_length,
                expires_at,
            })
            .await
            .map_err(|e| ApiError::unavailable("upload signer", &e))?;
        Ok(mapping::json(
            201,
            &serde_json::json!({
                "key": req.key,
                "upload": target,
                "expires_at": rfc3339(expires_at),
            }),
        ))
    }

    async fn policy(&self, tenant: &str) -> Result<TenantPolicy, ApiError> {
        self.policies
            .policy(tenant)
            .await
            .map_err(|e| ApiError::unavailable("tenant policies", &e))
    }

    /// The record `version` (else the latest) of `asset`; 404 when there is none.
    async fn record(
        &self,
        asset: &AssetId,
        version: Option<u32>,
    ) -> Result<VersionRecord, ApiError> {
        let unavailable = |e: crate::store::ManifestError| ApiError::unavailable("manifest", &e);
        let n = match version {
            Some(n) => n,
            None => self
                .manifest
                .latest(asset)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| ApiError::NotFound("no such asset".into()))?,
        };
        self.manifest
            .get(asset, n)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ApiError::NotFound("no such asset or version".into()))
    }

    /// `GET …/assets/{key}[?version=N][&wait=S]`.
    async fn asset(
        &self,
        tenant: &str,
        key: &str,
        query: &str,
        now: u64,
    ) -> Result<HttpResponse, ApiError> {
        let params = params(query, &["version", "wait"])?;
        let version = number(&params, "version", 1..=u32::MAX)?;
        let wait = number(&params, "wait", 0..=MAX_WAIT_SECS)?.unwrap_or(0);
        if !valid_key(key) {
            return Err(ApiError::BadRequest(
                "key must be /-separated segments of [A-Za-z0-9._~-]".into(),
            ));
        }
        let asset = AssetId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let mut rec = self.record(&asset, version).await?;
        while rec.status == Status::Rendering && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(WAIT_POLL.min(deadline - tokio::time::Instant::now())).await;
            // A newer upload may have become the latest meanwhile: follow the one first read.
            rec = self.record(&asset, Some(rec.version)).await?;
        }
        let policy = self.policy(tenant).await?;
        let style = UrlStyle {
            base_url: &self.config.delivery_base_url,
            policy: Some(&policy),
            expires_at: now.saturating_add(self.config.url_ttl_secs),
        };
        Ok(mapping::json(200, &asset_view(&rec, &style)))
    }

    /// `GET …/assets?prefix=&limit=&cursor=`.
    async fn list(&self, tenant: &str, query: &str) -> Result<HttpResponse, ApiError> {
        let params = params(query, &["prefix", "limit", "cursor"])?;
        let limit = number(&params, "limit", 1..=MAX_PAGE)?.unwrap_or(100);
        let prefix = param(&params, "prefix").unwrap_or("");
        if prefix.len() > 1024
            || !prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._~-/".contains(&c))
        {
            return Err(ApiError::BadRequest(
                "prefix must be characters of [A-Za-z0-9._~/-]".into(),
            ));
        }
        let after = match param(&params, "cursor") {
            None => None,
            Some(c) => {
                Some(key_of_cursor(c).ok_or_else(|| ApiError::BadRequest("bad cursor".into()))?)
            }
        };
        let page = self
            .manifest
            .list_assets(tenant, prefix, after.as_deref(), limit)
            .await
            .map_err(|e| ApiError::unavailable("manifest", &e))?;
        Ok(mapping::json(
            200,
            &serde_json::json!({
                "assets": page.assets,
                "next_cursor": page.last_key.as_deref().map(cursor_of),
            }),
        ))
    }

    /// `POST …/takedowns`: 202 once the request is accepted (run, on the local stack).
    async fn request_takedown(
        &self,
        tenant: &str,
        caller: &Caller,
        body: &[u8],
    ) -> Result<HttpResponse, ApiError> {
        let req: TakedownRequest = json_body(body)?;
        let (reason, requester) = match caller {
            Caller::Admin => (req.reason, req.requester),
            Caller::Tenant { kid, .. } => {
                if req.reason.as_deref().is_some_and(|r| r != "tenant") {
                    return Err(ApiError::Forbidden(
                        "a tenant API key may only give reason \"tenant\"; dmca and gdpr need the admin token".into(),
                    ));
                }
                (
                    Some("tenant".to_string()),
                    Some(req.requester.unwrap_or_else(|| format!("api-key:{kid}"))),
                )
            }
        };
        let request_id = match req.request_id {
            Some(id) if valid_request_id(&id) => id,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "request_id must be 1-80 characters of [A-Za-z0-9_-]".into(),
                ))
            }
            None => random_token().map_err(|e| ApiError::unavailable("random source", &e))?,
        };
        let input = RemovalInput {
            tenant: Some(tenant.to_string()),
            key: req.key,
            keys: None,
            prefix: req.prefix,
            reason,
            requester,
            action: req.action,
        };
        self.takedowns
            .start(&request_id, &input)
            .await
            .map_err(removal_error)?;
        Ok(mapping::json(
            202,
            &serde_json::json!({
                "request_id": request_id,
                "status_url": format!("{}/api/v1/tenants/{tenant}/takedowns/{request_id}", self.config.api_base_url),
            }),
        ))
    }

    /// `GET …/takedowns/{request_id}`: 404 for an unknown request or another tenant's.
    async fn takedown_status(&self, tenant: &str, id: &str) -> Result<HttpResponse, ApiError> {
        let unknown = || ApiError::NotFound("no such takedown request".into());
        if !valid_request_id(id) {
            return Err(unknown());
        }
        let status = self
            .takedowns
            .status(id)
            .await
            .map_err(removal_error)?
            .filter(|s| s.tenant == tenant)
            .ok_or_else(unknown)?;
        Ok(mapping::json(200, &serde_json::json!(status)))
    }

    /// `GET /img/{tenant}/latest/{key}?{query}`: 302 to the same request on the newest ready
    /// version ([`latest_ready`]), cacheable for a minute; 404 (as cacheable) when there is none
    /// (unknown, taken down, erased). The tenant's checks apply first (signature, Referer): a
    /// signing tenant's redirect is signed again for the versioned path, with the request's key
    /// id and expiry.
    pub async fn latest(
        &self,
        path: &str,
        query: &str,
        referer: Option<&str>,
        now: u64,
    ) -> HttpResponse {
        let text = |status: u16, cc: &str, reason: &str| mapping::text(status, cc, reason);
        let Some((tenant, key)) = path
            .strip_prefix("/img/")
            .and_then(|p| p.split_once("/latest/"))
            .filter(|(t, k)| valid_tenant(t) && valid_key(k))
        else {
            return text(400, "no-store", "bad tenant or key");
        };
        let policy = match self.policies.policy(tenant).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "tenant policies");
                return text(503, "no-store", "tenant policies unavailable");
            }
        };
        if let Err(refused) = crate::sign::check(path, query, referer, now, &policy) {
            return text(403, "no-store", &refused.to_string());
        }
        let asset = AssetId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        };
        let version = match latest_ready(&self.manifest, &asset).await {
            Ok(Some(v)) => v,
            Ok(None) => return text(404, LATEST_CACHE_CONTROL, "not found"),
            Err(e) => {
                tracing::error!(error = %e, "manifest");
                return text(503, "no-store", "manifest unavailable");
            }
        };
        let target = format!("/img/{tenant}/v{version}/{key}");
        let location = if policy.sign {
            let field = |name: &str| {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            };
            let signed = match (field("kid"), field("exp").and_then(|e| e.parse().ok())) {
                (Some(kid), Some(exp)) => policy
                    .keys
                    .get(kid)
                    .and_then(|secret| sign_uri(&target, query, kid, secret, exp).ok()),
                _ => None,
            };
            match signed {
                Some(uri) => uri,
                None => return text(403, "no-store", "bad signature parameters"),
            }
        } else if query.is_empty() {
            target
        } else {
            format!("{target}?{query}")
        };
        let mut resp = text(302, LATEST_CACHE_CONTROL, "");
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(header::LOCATION, v);
                resp
            }
            Err(_) => text(400, "no-store", "bad query"),
        }
    }
}
