//! The console's tenant routes (docs/console.md), admin token only, on the local stack alone
//! (on AWS operators edit tenants with `pixelfront tenant --aws` under IAM):
//!
//! - `GET /api/v1/tenants`: every tenant with its policy (signing key ids, never secrets) and
//!   its API key ids;
//! - `POST /api/v1/tenants` `{"tenant"}`: a new tenant with the default policy;
//! - `PATCH /api/v1/tenants/{tenant}` with one of `{"sign": bool}`, `{"add_referer": host}`,
//!   `{"remove_referer": host}`, `{"add_key": kid}` (the generated secret is in the answer,
//!   once), `{"retire_key": kid}`;
//! - `POST /api/v1/tenants/{tenant}/api-keys` (the key is in the answer, once) and
//!   `DELETE /api/v1/tenants/{tenant}/api-keys/{kid}`.
//!
//! Each edit is the shared [`Edit`] applied under the tenants file's lock, as
//! `pixelfront tenant` applies it.

use crate::api_keys::{self, KeyMap};
use crate::routes::{json, App};
use crate::tenants::EditFailure;
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use pixelfront_shared::normalize::valid_tenant;
use pixelfront_shared::sign::TenantPolicy;
use pixelfront_shared::store::sqlite::blocking;
use pixelfront_shared::tenants::{new_signing_secret, Edit, DEFAULT_KEY};
use serde::Deserialize;
use serde_json::{json as j, Value};

/// Longest body of a tenant route, bytes.
const MAX_BODY: usize = 4096;

/// Whether `path` is one of this module's routes.
pub fn is_tenant_route(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/tenants") else {
        return false;
    };
    match rest.strip_prefix('/') {
        None => rest.is_empty(),
        Some(rest) => match rest.split_once('/') {
            None => true,
            Some((_, tail)) => tail == "api-keys" || tail.starts_with("api-keys/"),
        },
    }
}

/// One change of a `PATCH`: exactly one field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    sign: Option<bool>,
    add_referer: Option<String>,
    remove_referer: Option<String>,
    add_key: Option<String>,
    retire_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    tenant: String,
}

fn error(status: u16, reason: impl Into<String>) -> Response {
    json(status, &j!({ "error": reason.into() }))
}

/// 401 (no admin token) with `WWW-Authenticate: Bearer`.
pub fn admin_required() -> Response {
    let mut resp = error(401, "admin token required");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// A refused tenant call: its status and public reason.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

fn failed(e: EditFailure) -> Refusal {
    match e {
        EditFailure::Rejected(m) => Refusal::new(400, m),
        EditFailure::Io(m) => {
            tracing::error!(error = %m, "tenants file");
            Refusal::new(503, "tenants unavailable")
        }
    }
}

/// A tenant's view: its policy without secrets, and its API key ids.
fn view(tenant: &str, p: &TenantPolicy, keys: &KeyMap) -> Value {
    let api_keys: Vec<Value> = keys
        .values()
        .filter(|r| r.tenant == tenant)
        .map(|r| j!({ "kid": r.kid, "created_at": r.created_at }))
        .collect();
    j!({
        "tenant": tenant,
        "sign": p.sign,
        "keys": p.keys.keys().collect::<Vec<_>>(),
        "referers": p.referers,
        "on_demand": p.on_demand,
        "api_keys": api_keys,
    })
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    if body.len() > MAX_BODY {
        return Err(Refusal::new(413, format!("body over {MAX_BODY} bytes")));
    }
    serde_json::from_slice(body).map_err(|e| Refusal::new(400, format!("bad body: {e}")))
}

impl App {
    fn api_keys(&self) -> Result<KeyMap, Refusal> {
        api_keys::read_file(&self.stack.data.join(api_keys::FILE)).map_err(|e| {
            tracing::error!(error = %e, "API keys file");
            Refusal::new(503, "API keys unavailable")
        })
    }

    /// Answers a tenant route (the caller holds the admin token): the body (at most
    /// [`MAX_BODY`] bytes, within the body timeout), then the route.
    pub async fn tenant_call(&self, method: &Method, path: &str, body: Body) -> Response {
        let limit = MAX_BODY + 1;
        let bytes = match tokio::time::timeout(self.body_timeout, to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => return error(413, format!("body over {MAX_BODY} bytes")),
            Err(_) => return error(408, "request body not received in time"),
        };
        self.tenant_route(method, path, &bytes).await
    }

    async fn tenant_route(&self, method: &Method, path: &str, body: &Bytes) -> Response {
        let rest = path
            .strip_prefix("/api/v1/tenants")
            .unwrap_or_default()
            .trim_start_matches('/');
        let (tenant, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !tenant.is_empty() && !valid_tenant(tenant) {
            return error(400, "tenant must match [a-z0-9][a-z0-9-]{0,62}");
        }
        let result = match (method, tenant, tail) {
            (&Method::GET, "", _) => self.list_tenants().await,
            (&Method::POST, "", _) => self.add_tenant(body).await,
            (&Method::PATCH, t, "") => self.patch_tenant(t, body).await,
            (&Method::POST, t, "api-keys") => self.add_api_key(t).await,
            (&Method::DELETE, t, kid) if kid.starts_with("api-keys/") => {
                self.remove_api_key(t, &kid["api-keys/".len()..]).await
            }
            _ => Err(Refusal::new(405, "method not allowed")),
        };
        result.unwrap_or_else(|r| error(r.status, r.reason))
    }

    async fn list_tenants(&self) -> Result<Response, Refusal> {
        let tenants = self.stack.tenants.clone();
        let map = blocking(move || tenants.map()).map_err(|e| {
            tracing::error!(error = %e, "tenants file");
            Refusal::new(503, "tenants unavailable")
        })?;
        let keys = self.api_keys()?;
        let mut names: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|t| *t != DEFAULT_KEY)
            .collect();
        names.extend(keys.values().map(|r| r.tenant.as_str()));
        names.sort_unstable();
        names.dedup();
        let default = map.get(DEFAULT_KEY).cloned().unwrap_or_default();
        let list: Vec<Value> = names
            .iter()
            .map(|t| view(t, map.get(*t).unwrap_or(&default), &keys))
            .collect();
        Ok(json(200, &j!({ "tenants": list })))
    }

    async fn edit(&self, tenant: &str, edit: Edit) -> Result<TenantPolicy, Refusal> {
        let tenants = self.stack.tenants.clone();
        let key = tenant.to_string();
        let after = blocking(move || tenants.edit(&key, &edit)).map_err(failed)?;
        Ok(after.unwrap_or_default())
    }

    async fn add_tenant(&self, body: &[u8]) -> Result<Response, Refusal> {
        let NewTenant { tenant } = parse(body)?;
        if !valid_tenant(&tenant) {
            return Err(Refusal::new(
                400,
                "tenant must match [a-z0-9][a-z0-9-]{0,62}",
            ));
        }
        let p = self.edit(&tenant, Edit::Add).await?;
        Ok(json(201, &view(&tenant, &p, &self.api_keys()?)))
    }

    async fn patch_tenant(&self, tenant: &str, body: &[u8]) -> Result<Response, Refusal> {
        let patch: Patch = parse(body)?;
        let mut secret = None;
        let mut edits = Vec::new();
        if let Some(on) = patch.sign {
            edits.push(Edit::Sign(on));
        }
        if let Some(h) = patch.add_referer {
            edits.push(Edit::RefererAdd(h));
        }
        if let Some(h) = patch.remove_referer {
            edits.push(Edit::RefererRemove(h));
        }
        if let Some(kid) = patch.add_key {
            let s = new_signing_secret().map_err(|e| {
                tracing::error!(error = %e, "random source");
                Refusal::new(503, "random source unavailable")
            })?;
            secret = Some(s.clone());
            edits.push(Edit::KeyAdd(kid, s));
        }
        if let Some(kid) = patch.retire_key {
            edits.push(Edit::KeyRemove(kid));
        }
        let [edit] = <[Edit; 1]>::try_from(edits).map_err(|_| {
            Refusal::new(
                400,
                "give exactly one of sign, add_referer, remove_referer, add_key, retire_key",
            )
        })?;
        let p = self.edit(tenant, edit).await?;
        let mut v = view(tenant, &p, &self.api_keys()?);
        if let (Some(s), Some(obj)) = (secret, v.as_object_mut()) {
            obj.insert("secret".into(), Value::String(s));
        }
        Ok(json(200, &v))
    }

    async fn add_api_key(&self, tenant: &str) -> Result<Response, Refusal> {
        let data = self.stack.data.clone();
        let t = tenant.to_string();
        let (key, kid) = blocking(move || api_keys::add(&data, &t)).map_err(|e| {
            tracing::error!(error = %e, "API keys file");
            Refusal::new(503, "API keys unavailable")
        })?;
        Ok(json(201, &j!({ "tenant": tenant, "kid": kid, "key": key })))
    }

    async fn remove_api_key(&self, tenant: &str, kid: &str) -> Result<Response, Refusal> {
        let owned = self
            .api_keys()?
            .get(kid)
            .is_some_and(|r| r.tenant == tenant);
        if !owned {
            return Err(Refusal::new(
                404,
                format!("{tenant} has no API key {kid:?}"),
            ));
        }
        let data = self.stack.data.clone();
        let (t, k) = (tenant.to_string(), kid.to_string());
        blocking(move || api_keys::remove(&data, &t, &k)).map_err(|e| {
            tracing::error!(error = %e, "API keys file");
            Refusal::new(503, "API keys unavailable")
        })?;
        Ok(json(200, &j!({ "tenant": tenant, "removed": kid })))
    }
}

#[cfg(test)]
mod tests {
    use super::is_tenant_route;

    #[test]
    fn tenant_routes_are_told_from_the_tenant_api() {
        for yes in [
            "/api/v1/tenants",
            "/api/v1/tenants/acme",
            "/api/v1/tenants/acme/api-keys",
            "/api/v1/tenants/acme/api-keys/0123",
        ] {
            assert!(is_tenant_route(yes), "{yes}");
        }
        for no in [
            "/api/v1/tenantsx",
            "/api/v1/tenants/acme/assets",
            "/api/v1/tenants/acme/uploads",
            "/api/v1/tenants/acme/takedowns/x",
            "/api/v1/whoami",
        ] {
            assert!(!is_tenant_route(no), "{no}");
        }
    }
}
