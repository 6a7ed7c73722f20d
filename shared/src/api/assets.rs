//! What the tenant API says about assets (docs/tenant-api.md#assets): a version as JSON with
//! a ready-to-use URL per variant (signed when the tenant signs), the listing cursor, and the
//! version the `latest` alias stands for. The local stack's `GET /manifest/…` answers the same
//! view.

use crate::normalize::Canonical;
use crate::sign::{sign_uri, TenantPolicy};
use crate::store::{AssetId, ManifestError, ManifestStore, Status, VersionRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How far back the `latest` alias looks for a `ready` version past newer ones still
/// rendering or failed.
pub const LATEST_LOOKBACK: u32 = 20;

/// How variant URLs are written.
#[derive(Debug, Clone, Copy)]
pub struct UrlStyle<'a> {
    /// Prefix of every URL (`https://img.example.com`; empty: relative URLs).
    pub base_url: &'a str,
    /// The tenant's policy: URLs are signed when it signs.
    pub policy: Option<&'a TenantPolicy>,
    /// Expiry of signed URLs, Unix seconds.
    pub expires_at: u64,
}

/// The key a signing tenant's URLs are signed with: its first key id (bytewise). During a
/// rotation add the new key with an id that sorts first, or remove the old one; both verify
/// until then.
pub fn signing_key(policy: &TenantPolicy) -> Option<(&str, &str)> {
    policy
        .sign
        .then(|| policy.keys.iter().next())
        .flatten()
        .map(|(k, s)| (k.as_str(), s.as_str()))
}

/// `path?query` as a URL in `style`: signed when the tenant signs (a signing tenant without a
/// key gets the unsigned URL, which its edge refuses: the operator's error, not the caller's).
pub fn url_for(path: &str, query: &str, style: &UrlStyle<'_>) -> String {
    let signed = style
        .policy
        .and_then(signing_key)
        .and_then(|(kid, secret)| sign_uri(path, query, kid, secret, style.expires_at).ok());
    let uri = signed.unwrap_or_else(|| {
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    });
    format!("{}{uri}", style.base_url)
}

/// A version as JSON: `tenant`, `key`, `version`, `status`, `created_at`, `updated_at`,
/// `original`, `variants` (each with its `url`), and `error`/`error_type` when it failed.
pub fn asset_view(rec: &VersionRecord, style: &UrlStyle<'_>) -> serde_json::Value {
    let path = format!(
        "/img/{}/v{}/{}",
        rec.asset.tenant, rec.version, rec.asset.key
    );
    let variants: Vec<serde_json::Value> = rec
        .variants
        .iter()
        .map(|v| {
            let query = Canonical::from_derivative_name(&v.derivative)
                .map(|c| c.query())
                .unwrap_or_default();
            serde_json::json!({
                "name": v.name,
                "derivative": v.derivative,
                "width": v.width,
                "height": v.height,
                "bytes": v.bytes,
                "url": url_for(&path, &query, style),
            })
        })
        .collect();
    let mut view = serde_json::json!({
        "tenant": rec.asset.tenant,
        "key": rec.asset.key,
        "version": rec.version,
        "status": rec.status.as_str(),
        "variants": variants,
        "original": rec.original,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
    });
    if let Some(e) = &rec.error {
        let error_type = rec.error_type.as_deref().unwrap_or("");
        view["error"] = serde_json::json!(public_error(error_type, e));
        view["error_type"] = serde_json::json!(rec.error_type);
    }
    view
}

/// The text of a recorded failure as a client may read it: the image's own faults as they
/// are; a store's or the manifest's (which name server paths) as a short reason only, the
/// detail being in the server's log.
pub fn public_error(error_type: &str, error: &str) -> String {
    match error_type {
        "StoreUnavailable"
        | "StoreDenied"
        | "SourceGone"
        | "ManifestUnavailable"
        | "ManifestInvalid"
        | "VersionConflict" => {
            format!("internal error ({error_type}): see the server log")
        }
        _ => error.to_string(),
    }
}

/// The listing cursor of the page after `last_key`: opaque to clients (unpadded base64url).
pub fn cursor_of(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

/// The key a cursor continues after; `None` for a cursor this API never made.
pub fn key_of_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

/// The version `GET /img/{tenant}/latest/{key}` stands for: the newest `ready` one, looking
/// past at most [`LATEST_LOOKBACK`] newer versions still rendering or failed. `None` for an
/// unknown asset, one taken down or erased, or one with no ready version.
pub async fn latest_ready<M: ManifestStore>(
    manifest: &M,
    asset: &AssetId,
) -> Result<Option<u32>, ManifestError> {
    let Some(newest) = manifest.latest(asset).await? else {
        return Ok(None);
    };
    let oldest = newest.saturating_sub(LATEST_LOOKBACK).max(1);
    for version in (oldest..=newest).rev() {
        match manifest.get(asset, version).await?.map(|r| r.status) {
            Some(Status::Ready) => return Ok(Some(version)),
            Some(Status::TakenDown | Status::Erased) => return Ok(None),
            Some(Status::Rendering | Status::Failed) | None => {}
        }
    }
    Ok(None)
}
