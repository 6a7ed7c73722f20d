//! Admin and manifest routes: `GET /manifest/{tenant}/{key}` (public, but the admin token's
//! for a tenant that signs its URLs), `POST /takedown` and
//! `POST /erase` (the takedown workflow's steps over the local stores: the same validation,
//! deletions, audit records and request summary as on AWS, with the in-process cache as the
//! CDN), and `GET /audit/{tenant}/{key}` (the shared audit records).

use crate::routes::{json, text, unauthorized, unavailable, App};
use axum::body::Body;
use axum::response::Response;
use pixelfront_shared::api::assets::{asset_view, UrlStyle};
use pixelfront_shared::normalize::{valid_key, valid_tenant};
use pixelfront_shared::removal::{AuditStore, RemovalError, RemovalInput};
use pixelfront_shared::store::{AssetId, ManifestStore, PolicyStore, VersionRecord};

/// Largest takedown or erasure request body, bytes (the AWS workflow's input budget is 64 KiB
/// of keys; the rest of a request is a few fields).
const MAX_REQUEST_BYTES: usize = 128 * 1024;

/// `{tenant}/{key}` of an admin or manifest path, validated; else the 400 naming `route`.
fn asset_of(rest: &str, route: &str) -> Result<AssetId, Box<Response>> {
    match rest.split_once('/') {
        Some((tenant, key)) if valid_tenant(tenant) && valid_key(key) => Ok(AssetId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        }),
        _ => Err(Box::new(text(
            400,
            format!("expected /{route}/{{tenant}}/{{key}}"),
        ))),
    }
}

/// The manifest record as JSON, each variant with the (relative, unsigned) URL that asks for
/// it: the tenant API's view.
pub fn manifest_view(rec: &VersionRecord) -> serde_json::Value {
    asset_view(
        rec,
        &UrlStyle {
            base_url: "",
            policy: None,
            expires_at: 0,
        },
    )
}

/// The HTTP status of a removal error: 400 for a malformed request, 404 when nothing matches,
/// 409 for a request id that already names another request (other assets or another action),
/// 503 for a store that failed (its detail logged, not answered).
fn removal_error(e: &RemovalError) -> Response {
    match e {
        RemovalError::InvalidRequest(_) => text(400, e.to_string()),
        RemovalError::NotFound(_) => text(404, e.to_string()),
        RemovalError::Conflict(_) => text(409, e.to_string()),
        _ => unavailable("storage", e),
    }
}

impl App {
    /// `GET /manifest/{tenant}/{key}`: the latest version as JSON. The manifest of a tenant
    /// whose URLs must be signed lists URLs and versions its signatures protect: `401` without
    /// the admin token (`is_admin`), asked before the asset is looked up.
    pub async fn manifest(&self, rest: &str, is_admin: bool) -> Response {
        let asset = match asset_of(rest, "manifest") {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        if !is_admin {
            match self.stack.tenants.policy(&asset.tenant).await {
                Ok(policy) if policy.sign => return unauthorized(),
                Ok(_) => {}
                Err(e) => return unavailable("tenants file", &e),
            }
        }
        let m = &self.stack.manifest;
        let rec = match m.latest(&asset).await {
            Ok(Some(n)) => m.get(&asset, n).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match rec {
            Ok(Some(rec)) => json(200, &manifest_view(&rec)),
            Ok(None) => text(404, "not found"),
            Err(e) => unavailable("manifest", &e),
        }
    }

    /// `POST /takedown` or `POST /erase` (`action`), admin: the body is the takedown
    /// workflow's input plus a `request_id` (`{request_id, tenant, key | keys | prefix, reason,
    /// requester}`); `path_asset`, from `/takedown/{tenant}/{key}`, names the one asset
    /// instead. Runs every step in-process and answers the request summary; a repeated
    /// request id changes nothing and answers the first summary, unless it named other assets
    /// or the other action (`409`).
    pub async fn remove(&self, body: Body, path_asset: Option<&str>, action: &str) -> Response {
        let body = match self.read_body(body, MAX_REQUEST_BYTES).await {
            Ok(body) => body,
            Err(resp) => return resp,
        };
        let mut fields: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_slice(&body) {
                Ok(map) => map,
                Err(_) => return text(400, "body must be a JSON object"),
            };
        let request_id = match fields.remove("request_id") {
            None => match pixelfront_shared::sign::random_token() {
                Ok(id) => id,
                Err(e) => return unavailable("random source", &e),
            },
            Some(serde_json::Value::String(id)) => id,
            Some(_) => return text(400, "request_id must be a string"),
        };
        if let Some(rest) = path_asset {
            let asset = match asset_of(rest, action) {
                Ok(a) => a,
                Err(resp) => return *resp,
            };
            fields.insert("tenant".into(), asset.tenant.into());
            fields.insert("key".into(), asset.key.into());
        }
        fields.insert("action".into(), action.into());
        let input: RemovalInput = match serde_json::from_value(fields.into()) {
            Ok(input) => input,
            Err(e) => return text(400, format!("invalid request: {e}")),
        };
        match self.api.takedowns.run(&request_id, &input).await {
            Ok(summary) => json(200, &serde_json::json!(summary)),
            Err(e) => removal_error(&e),
        }
    }

    /// `GET /audit/{tenant}/{key}` (admin): every takedown and erasure record of the asset,
    /// oldest first, as a JSON array; `404` when there is none.
    pub async fn audit_of(&self, rest: &str) -> Response {
        let asset = match asset_of(rest, "audit") {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        match self.stack.manifest.records(&asset).await {
            Ok(records) if records.is_empty() => text(404, "no audit record"),
            Ok(records) => json(200, &serde_json::json!(records)),
            Err(e) => unavailable("audit", &e),
        }
    }
}
