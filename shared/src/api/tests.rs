//! The tenant API over memory stores: credentials, tenant scoping, every route and error.

use super::keys::{generate, ApiKeyRecord, ApiKeyStore};
use super::service::{Api, ApiCall, ApiConfig, TakedownStatus, Takedowns};
use super::uploads::LocalUploadSigner;
use crate::removal::{RemovalError, RemovalInput};
use crate::sign::TenantPolicy;
use crate::store::memory::{MemoryManifest, MemoryPolicies};
use crate::store::{
    AssetId, ManifestStore, OriginalInfo, SourceRef, Status, StoreError, VariantRecord,
};
use http::Method;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Keys(Mutex<HashMap<String, ApiKeyRecord>>);

impl ApiKeyStore for Keys {
    async fn api_key(&self, kid: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.0.lock().unwrap().get(kid).cloned())
    }
}

/// Records what was asked; refuses a request id used for another request.
#[derive(Default)]
struct Requests(Mutex<HashMap<String, RemovalInput>>);

impl Takedowns for Requests {
    async fn start(&self, request_id: &str, input: &RemovalInput) -> Result<(), RemovalError> {
        crate::removal::validate(input)?;
        let mut map = self.0.lock().unwrap();
        match map.get(request_id) {
            Some(old) if old != input => Err(RemovalError::Conflict(request_id.into())),
            _ => {
                map.insert(request_id.into(), input.clone());
                Ok(())
            }
        }
    }

    async fn status(&self, request_id: &str) -> Result<Option<TakedownStatus>, RemovalError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(request_id)
            .map(|i| TakedownStatus {
                request_id: request_id.into(),
                tenant: i.tenant.clone().unwrap_or_default(),
                status: "in_progress".into(),
                summary: None,
                records: vec![],
            }))
    }
}

type TestApi = Api<MemoryManifest, MemoryPolicies, Keys, LocalUploadSigner, Requests>;

const NOW: u64 = 1_800_000_000;

fn api() -> (TestApi, String, String) {
    let keys = Keys::default();
    let acme = generate("acme", "2026-12-07T00:00:00Z").unwrap();
    let other = generate("other", "2026-12-07T00:00:00Z").unwrap();
    for k in [&acme, &other] {
        keys.0
            .lock()
            .unwrap()
            .insert(k.record.kid.clone(), k.record.clone());
    }
    let api = Api {
        manifest: MemoryManifest::new(),
        policies: MemoryPolicies::new(),
        keys,
        uploads: LocalUploadSigner::new(vec![1; 32], "http://127.0.0.1:9"),
        takedowns: Requests::default(),
        config: ApiConfig {
            delivery_base_url: "https://img.example".into(),
            ..ApiConfig::default()
        },
        admin_token: Some("admin-secret".into()),
    };
    (api, acme.key, other.key)
}

async fn call(
    api: &TestApi,
    method: Method,
    path_query: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let auth = key.map(|k| format!("Bearer {k}"));
    let resp = api
        .handle(
            &ApiCall {
                method: &method,
                path,
                query,
                authorization: auth.as_deref(),
                body: body.as_bytes(),
            },
            NOW,
        )
        .await;
    let json = serde_json::from_slice(resp.body()).unwrap_or(serde_json::Value::Null);
    (resp.status().as_u16(), json)
}

/// Assigns the next version of `tenant/key` (status `rendering`).
async fn assign(api: &TestApi, tenant: &str, key: &str) -> (AssetId, u32) {
    let asset = AssetId {
        tenant: tenant.into(),
        key: key.into(),
    };
    let n = api.manifest.latest(&asset).await.unwrap().unwrap_or(0) + 1;
    let source = SourceRef {
        bucket: "b".into(),
        key: asset.id(),
        version_id: Some(format!("v{n}")),
        etag: None,
        size: 10,
    };
    let a = api.manifest.assign(&asset, &source, "t0").await.unwrap();
    (asset, a.record.version)
}

/// Assigns the next version of `tenant/key` and makes it `ready` with one variant.
async fn ready(api: &TestApi, tenant: &str, key: &str) -> u32 {
    let (asset, version) = assign(api, tenant, key).await;
    let variant = VariantRecord {
        name: "md-webp".into(),
        derivative: "w640-q75.webp".into(),
        width: 640,
        height: 480,
        bytes: 1000,
        render_ms: 5,
    };
    let original = OriginalInfo {
        width: 1000,
        height: 750,
        format: "jpeg".into(),
    };
    api.manifest
        .mark_ready(&asset, version, &original, &[variant], "t1")
        .await
        .unwrap();
    version
}

/// Makes `acme` sign its URLs with key `k1` = `s3cret`.
fn sign_acme(api: &TestApi) {
    let keys = std::collections::BTreeMap::from([("k1".to_string(), "s3cret".to_string())]);
    api.policies.set(
        "acme",
        TenantPolicy {
            sign: true,
            keys,
            ..TenantPolicy::default()
        },
    );
}

#[tokio::test]
async fn credentials_are_required_and_scoped_to_their_tenant() {
    let (api, acme, other) = api();
    let path = "/api/v1/tenants/acme/assets";
    let (s, body) = call(&api, Method::GET, path, None, "").await;
    assert_eq!((s, body["error"].is_string()), (401, true));
    assert_eq!(call(&api, Method::GET, path, Some("nope"), "").await.0, 401);
    // Another last character (a key ending in `x` would otherwise be forged into itself).
    let last = if acme.ends_with('x') { 'B' } else { 'x' };
    let forged = format!("{}{last}", &acme[..acme.len() - 1]);
    assert_eq!(
        call(&api, Method::GET, path, Some(&forged), "").await.0,
        401
    );
    assert_eq!(call(&api, Method::GET, path, Some(&other), "").await.0, 403);
    assert_eq!(call(&api, Method::GET, path, Some(&acme), "").await.0, 200);
    assert_eq!(
        call(&api, Method::GET, path, Some("admin-secret"), "")
            .await
            .0,
        200
    );
    assert_eq!(call(&api, Method::POST, path, Some(&acme), "").await.0, 405);
    assert_eq!(
        call(
            &api,
            Method::GET,
            "/api/v1/tenants/acme/nope",
            Some(&acme),
            ""
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &api,
            Method::GET,
            "/api/v1/tenants/Bad!/assets",
            Some("admin-secret"),
            ""
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn an_upload_grant_names_its_key_type_and_expiry() {
    let (api, acme, _) = api();
    let path = "/api/v1/tenants/acme/uploads";
    let body = r#"{"key":"photos/a.jpg","content_type":"image/jpeg","content_length":1234}"#;
    let (s, grant) = call(&api, Method::POST, path, Some(&acme), body).await;
    assert_eq!(s, 201, "{grant}");
    assert_eq!(grant["key"], "photos/a.jpg");
    assert_eq!(grant["upload"]["method"], "PUT");
    assert_eq!(grant["upload"]["headers"]["Content-Type"], "image/jpeg");
    let url = grant["upload"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:9/uploads/acme/photos/a.jpg?"),
        "{url}"
    );
    assert_eq!(grant["expires_at"], crate::pipeline::rfc3339(NOW + 900));
    for (bad, status) in [
        ("not json", 400),
        (r#"{"key":"a.jpg","content_type":"image/jpeg"}"#, 400),
        (
            r#"{"key":"a.jpg","content_type":"image/jpeg","content_length":1,"x":1}"#,
            400,
        ),
        (
            r#"{"key":"../a","content_type":"image/jpeg","content_length":1}"#,
            400,
        ),
        (
            r#"{"key":"a.svg","content_type":"image/svg+xml","content_length":1}"#,
            400,
        ),
        (
            r#"{"key":"a.jpg","content_type":"image/jpeg","content_length":99999999999}"#,
            413,
        ),
    ] {
        assert_eq!(
            call(&api, Method::POST, path, Some(&acme), bad).await.0,
            status,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn lookups_answer_versions_with_urls_signed_when_the_tenant_signs() {
    let (api, acme, _) = api();
    let base = "/api/v1/tenants/acme/assets";
    assert_eq!(
        call(&api, Method::GET, &format!("{base}/a.jpg"), Some(&acme), "")
            .await
            .0,
        404
    );
    ready(&api, "acme", "a.jpg").await;
    ready(&api, "acme", "a.jpg").await;
    let (s, v) = call(&api, Method::GET, &format!("{base}/a.jpg"), Some(&acme), "").await;
    assert_eq!(
        (s, v["version"].as_u64(), v["status"].as_str()),
        (200, Some(2), Some("ready"))
    );
    assert_eq!(
        v["variants"][0]["url"],
        "https://img.example/img/acme/v2/a.jpg?fmt=webp&q=75&w=640"
    );
    let (_, v1) = call(
        &api,
        Method::GET,
        &format!("{base}/a.jpg?version=1"),
        Some(&acme),
        "",
    )
    .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(
        call(
            &api,
            Method::GET,
            &format!("{base}/a.jpg?version=9"),
            Some(&acme),
            ""
        )
        .await
        .0,
        404
    );
    for bad in [
        "version=0",
        "version=x",
        "wait=21",
        "wait=1&wait=2",
        "colour=red",
    ] {
        let (s, _) = call(
            &api,
            Method::GET,
            &format!("{base}/a.jpg?{bad}"),
            Some(&acme),
            "",
        )
        .await;
        assert_eq!(s, 400, "{bad}");
    }
    sign_acme(&api);
    let (_, v) = call(&api, Method::GET, &format!("{base}/a.jpg"), Some(&acme), "").await;
    let url = v["variants"][0]["url"].as_str().unwrap();
    let exp = NOW + 86_400;
    assert!(url.contains(&format!("&exp={exp}&kid=k1&sig=")), "{url}");
    let uri = url.strip_prefix("https://img.example").unwrap();
    let (path, query) = uri.split_once('?').unwrap();
    let policy = crate::store::PolicyStore::policy(&api.policies, "acme")
        .await
        .unwrap();
    assert!(crate::sign::check(path, query, None, NOW, &policy).is_ok());
}

#[tokio::test(start_paused = true)]
async fn wait_holds_the_answer_until_the_version_settles() {
    let (api, acme, _) = api();
    let (asset, _) = assign(&api, "acme", "b.jpg").await;
    let path = "/api/v1/tenants/acme/assets/b.jpg?wait=5";
    let started = tokio::time::Instant::now();
    let (s, v) = call(&api, Method::GET, path, Some(&acme), "").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("rendering")));
    assert!(started.elapsed() >= std::time::Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    let (waited, ()) = tokio::join!(call(&api, Method::GET, path, Some(&acme), ""), async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        api.manifest
            .mark_failed(&asset, 1, "ImageCorrupt", "not an image", "t1")
            .await
            .unwrap();
    });
    assert_eq!(waited.1["status"], "failed");
    assert_eq!(waited.1["error"], "not an image");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn listings_page_in_key_order_within_the_tenant() {
    let (api, acme, _) = api();
    for key in ["a/1.jpg", "a/2.jpg", "a/3.jpg", "b/1.jpg"] {
        ready(&api, "acme", key).await;
    }
    ready(&api, "other", "a/0.jpg").await;
    ready(&api, "acme", "a/2.jpg").await;
    let base = "/api/v1/tenants/acme/assets?prefix=a/&limit=2";
    let (s, p1) = call(&api, Method::GET, base, Some(&acme), "").await;
    assert_eq!(s, 200);
    assert_eq!(
        p1["assets"],
        serde_json::json!([
            {"key": "a/1.jpg", "version": 1, "status": "ready"},
            {"key": "a/2.jpg", "version": 2, "status": "ready"},
        ])
    );
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = call(
        &api,
        Method::GET,
        &format!("{base}&cursor={cursor}"),
        Some(&acme),
        "",
    )
    .await;
    assert_eq!(
        p2["assets"],
        serde_json::json!([{"key": "a/3.jpg", "version": 1, "status": "ready"}])
    );
    assert!(p2["next_cursor"].is_null());
    for bad in ["limit=0", "limit=1001", "cursor=%%%", "prefix=a%20b"] {
        let path = format!("/api/v1/tenants/acme/assets?{bad}");
        assert_eq!(
            call(&api, Method::GET, &path, Some(&acme), "").await.0,
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn tenant_keys_request_takedowns_of_their_own_assets_for_reason_tenant_only() {
    let (api, acme, other) = api();
    let path = "/api/v1/tenants/acme/takedowns";
    let body = r#"{"key":"a.jpg","action":"takedown","request_id":"r-1"}"#;
    let (s, r) = call(&api, Method::POST, path, Some(&acme), body).await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(r["status_url"], "/api/v1/tenants/acme/takedowns/r-1");
    let started = api.takedowns.0.lock().unwrap().get("r-1").cloned().unwrap();
    assert_eq!(started.reason.as_deref(), Some("tenant"));
    assert!(started.requester.unwrap().starts_with("api-key:"));
    assert_eq!(
        call(&api, Method::POST, path, Some(&acme), body).await.0,
        202,
        "a repeat"
    );
    let other_key = r#"{"key":"b.jpg","request_id":"r-1"}"#;
    assert_eq!(
        call(&api, Method::POST, path, Some(&acme), other_key)
            .await
            .0,
        409
    );
    let dmca = r#"{"key":"a.jpg","reason":"dmca","requester":"x"}"#;
    assert_eq!(
        call(&api, Method::POST, path, Some(&acme), dmca).await.0,
        403
    );
    assert_eq!(
        call(&api, Method::POST, path, Some("admin-secret"), dmca)
            .await
            .0,
        202
    );
    assert_eq!(
        call(
            &api,
            Method::POST,
            path,
            Some(&acme),
            r#"{"request_id":"x y"}"#
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(&api, Method::POST, path, Some(&acme), r#"{}"#).await.0,
        400
    );
    let status = "/api/v1/tenants/acme/takedowns/r-1";
    assert_eq!(
        call(&api, Method::GET, status, Some(&acme), "").await.0,
        200
    );
    assert_eq!(
        call(&api, Method::GET, status, Some(&other), "").await.0,
        403
    );
    let theirs = "/api/v1/tenants/other/takedowns/r-1";
    assert_eq!(
        call(&api, Method::GET, theirs, Some(&other), "").await.0,
        404
    );
}

#[tokio::test]
async fn latest_redirects_to_the_newest_ready_version() {
    let (api, _, _) = api();
    let latest = |path: &'static str, query: &'static str| api.latest(path, query, None, NOW);
    assert_eq!(
        latest("/img/acme/latest/a.jpg", "w=640").await.status(),
        404
    );
    ready(&api, "acme", "a.jpg").await;
    ready(&api, "acme", "a.jpg").await;
    let (asset, _) = assign(&api, "acme", "a.jpg").await;
    let resp = latest("/img/acme/latest/a.jpg", "w=640").await;
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/img/acme/v2/a.jpg?w=640");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=60");
    assert_eq!(latest("/img/acme/latest/../x", "").await.status(), 400);
    sign_acme(&api);
    assert_eq!(
        latest("/img/acme/latest/a.jpg", "w=640").await.status(),
        403
    );
    let signed =
        crate::sign::sign_uri("/img/acme/latest/a.jpg", "w=640", "k1", "s3cret", NOW + 60).unwrap();
    let query: &'static str = Box::leak(
        signed
            .split_once('?')
            .unwrap()
            .1
            .to_string()
            .into_boxed_str(),
    );
    let resp = latest("/img/acme/latest/a.jpg", query).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap();
    let (path, q) = location.split_once('?').unwrap();
    assert_eq!(path, "/img/acme/v2/a.jpg");
    let policy = crate::store::PolicyStore::policy(&api.policies, "acme")
        .await
        .unwrap();
    assert!(
        crate::sign::check(path, q, None, NOW, &policy).is_ok(),
        "{location}"
    );
    api.manifest
        .mark_removed(&asset, Status::TakenDown, "t")
        .await
        .unwrap();
    assert_eq!(latest("/img/acme/latest/a.jpg", query).await.status(), 404);
}

#[tokio::test]
async fn whoami_names_the_caller() {
    let (api, acme, _) = api();
    let path = "/api/v1/whoami";
    let (s, body) = call(&api, Method::GET, path, Some(&acme), "").await;
    assert_eq!((s, body["caller"].as_str()), (200, Some("tenant")));
    assert_eq!(body["tenant"], "acme");
    assert!(body["kid"].as_str().is_some_and(|k| acme.contains(k)));
    let (s, body) = call(&api, Method::GET, path, Some("admin-secret"), "").await;
    assert_eq!((s, body), (200, serde_json::json!({ "caller": "admin" })));
    assert_eq!(call(&api, Method::GET, path, None, "").await.0, 401);
    assert_eq!(call(&api, Method::GET, path, Some("nope"), "").await.0, 401);
    assert_eq!(call(&api, Method::POST, path, Some(&acme), "").await.0, 405);
}
