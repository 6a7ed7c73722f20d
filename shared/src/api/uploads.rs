//! Upload grants (docs/tenant-api.md#uploads): `POST …/uploads` checks what the tenant wants to
//! upload and answers a URL that accepts one `PUT` of exactly that object key and content type,
//! of at most the declared length, until it expires. The URL comes from an [`UploadSigner`]: an
//! S3 presigned `PUT` on AWS (content type and length signed), [`LocalUploadSigner`]'s HMAC on
//! the local stack, whose `PUT /uploads/{tenant}/{key}` route checks it with
//! [`LocalUploadSigner::verify`].

use super::ApiError;
use crate::normalize::valid_key;
use crate::sign::{base64url, ct_eq, hmac_sha256};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// The content types an upload may declare: the formats the pipeline decodes.
pub const UPLOAD_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The body of `POST /api/v1/tenants/{tenant}/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The asset key (without the tenant).
    pub key: String,
    /// One of [`UPLOAD_TYPES`].
    pub content_type: String,
    /// The largest body the URL accepts, bytes (1 ..= the pipeline's input limit).
    pub content_length: u64,
}

impl UploadRequest {
    /// Checks the request against the key grammar, [`UPLOAD_TYPES`] and `max_bytes`.
    pub fn check(&self, max_bytes: u64) -> Result<(), ApiError> {
        if !valid_key(&self.key) {
            return Err(ApiError::BadRequest(
                "key must be /-separated segments of [A-Za-z0-9._~-]".into(),
            ));
        }
        if !UPLOAD_TYPES.contains(&self.content_type.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "content_type must be one of {}",
                UPLOAD_TYPES.join(", ")
            )));
        }
        if self.content_length == 0 {
            return Err(ApiError::BadRequest(
                "content_length must be at least 1".into(),
            ));
        }
        if self.content_length > max_bytes {
            return Err(ApiError::TooLarge(format!(
                "content_length is over the limit of {max_bytes} bytes"
            )));
        }
        Ok(())
    }
}

/// How to send the upload: `{"method": "PUT", "url", "headers"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadTarget {
    /// Always `PUT`.
    pub method: &'static str,
    /// Where to send it (absolute).
    pub url: String,
    /// Headers the `PUT` must carry, exactly (`Content-Type`).
    pub headers: BTreeMap<String, String>,
}

/// What may be uploaded, as the signer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadScope<'a> {
    /// `{tenant}/{key}`: the original's object key.
    pub object_key: &'a str,
    /// The declared content type.
    pub content_type: &'a str,
    /// The declared length, bytes.
    pub content_length: u64,
    /// When the URL stops working, Unix seconds.
    pub expires_at: u64,
}

/// Makes upload URLs.
pub trait UploadSigner: Send + Sync {
    /// A URL that accepts one `PUT` of `scope`'s object until `scope.expires_at`.
    fn presign(
        &self,
        scope: &UploadScope<'_>,
    ) -> impl Future<Output = Result<UploadTarget, StoreError>> + Send;
}

impl<T: UploadSigner> UploadSigner for Arc<T> {
    fn presign(
        &self,
        scope: &UploadScope<'_>,
    ) -> impl Future<Output = Result<UploadTarget, StoreError>> + Send {
        (**self).presign(scope)
    }
}

/// The local stack's upload URLs: `{base}/uploads/{tenant}/{key}?ct=…&len=…&exp=…&sig=…`,
/// `sig` the HMAC-SHA256 of the method, object key, type, length and expiry under a secret of
/// the data directory.
#[derive(Clone)]
pub struct LocalUploadSigner {
    secret: Vec<u8>,
    base_url: String,
}

impl std::fmt::Debug for LocalUploadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUploadSigner")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// What a verified local upload URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPermit {
    /// Tenant id.
    pub tenant: String,
    /// Asset key.
    pub key: String,
    /// The largest body accepted, bytes.
    pub max_bytes: u64,
}

fn upload_signature(secret: &[u8], scope: &UploadScope<'_>) -> String {
    let msg = format!(
        "PUT\n{}\n{}\n{}\n{}",
        scope.object_key, scope.content_type, scope.content_length, scope.expires_at
    );
    base64url(&hmac_sha256(secret, msg.as_bytes()))
}

impl LocalUploadSigner {
    /// Signs with `secret` (at least 32 bytes) URLs under `base_url` (e.g.
    /// `http://127.0.0.1:8080`, no trailing `/`).
    pub fn new(secret: Vec<u8>, base_url: impl Into<String>) -> Self {
        LocalUploadSigner {
            secret,
            base_url: base_url.into().trim_end_matches('/').to_string(),
        }
    }

    /// Checks a `PUT /uploads/{object_key}?{query}` carrying `content_type`, at `now` (Unix
    /// seconds): 403 for a URL altered, expired or sent with another content type.
    pub fn verify(
        &self,
        object_key: &str,
        query: &str,
        content_type: Option<&str>,
        now: u64,
    ) -> Result<UploadPermit, ApiError> {
        let denied = |why: &str| Err(ApiError::Forbidden(why.to_string()));
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if fields.insert(name, value).is_some() {
                return denied("bad upload URL");
            }
        }
        let (Some(ct), Some(len), Some(exp), Some(sig)) = (
            fields.get("ct"),
            fields.get("len").and_then(|v| v.parse::<u64>().ok()),
            fields.get("exp").and_then(|v| v.parse::<u64>().ok()),
            fields.get("sig"),
        ) else {
            return denied("bad upload URL");
        };
        if fields.len() != 4 {
            return denied("bad upload URL");
        }
        let scope = UploadScope {
            object_key,
            content_type: ct,
            content_length: len,
            expires_at: exp,
        };
        if !ct_eq(
            upload_signature(&self.secret, &scope).as_bytes(),
            sig.as_bytes(),
        ) {
            return denied("bad upload signature");
        }
        if now >= exp {
            return denied("upload URL expired");
        }
        if content_type != Some(*ct) {
            return denied("Content-Type differs from the declared content_type");
        }
        let Some((tenant, key)) = object_key.split_once('/') else {
            return denied("bad upload URL");
        };
        Ok(UploadPermit {
            tenant: tenant.to_string(),
            key: key.to_string(),
            max_bytes: len,
        })
    }
}

impl UploadSigner for LocalUploadSigner {
    async fn presign(&self, scope: &UploadScope<'_>) -> Result<UploadTarget, StoreError> {
        let sig = upload_signature(&self.secret, scope);
        Ok(UploadTarget {
            method: "PUT",
            url: format!(
                "{}/uploads/{}?ct={}&len={}&exp={}&sig={sig}",
                self.base_url,
                scope.object_key,
                scope.content_type,
                scope.content_length,
                scope.expires_at
            ),
            headers: BTreeMap::from([("Content-Type".to_string(), scope.content_type.to_string())]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LocalUploadSigner {
        LocalUploadSigner::new(vec![7; 32], "http://127.0.0.1:9/")
    }

    fn granted() -> (String, String) {
        let scope = UploadScope {
            object_key: "acme/photos/a.jpg",
            content_type: "image/jpeg",
            content_length: 1000,
            expires_at: 2_000,
        };
        let target = futures_util::FutureExt::now_or_never(signer().presign(&scope))
            .unwrap()
            .unwrap();
        let (path, query) = target.url.split_once('?').unwrap();
        let key = path.strip_prefix("http://127.0.0.1:9/uploads/").unwrap();
        (key.to_string(), query.to_string())
    }

    #[test]
    fn a_granted_url_verifies_for_its_key_type_and_time_only() {
        let (key, query) = granted();
        let s = signer();
        let permit = s.verify(&key, &query, Some("image/jpeg"), 1_999).unwrap();
        assert_eq!(
            permit,
            UploadPermit {
                tenant: "acme".into(),
                key: "photos/a.jpg".into(),
                max_bytes: 1000
            }
        );
        let refused = |k: &str, q: &str, ct: Option<&str>, now: u64| {
            matches!(s.verify(k, q, ct, now), Err(ApiError::Forbidden(_)))
        };
        assert!(refused(&key, &query, Some("image/jpeg"), 2_000), "expired");
        assert!(refused(&key, &query, Some("image/png"), 1), "other type");
        assert!(refused(&key, &query, None, 1), "no type");
        assert!(
            refused("acme/photos/b.jpg", &query, Some("image/jpeg"), 1),
            "other key"
        );
        assert!(
            refused("evil/photos/a.jpg", &query, Some("image/jpeg"), 1),
            "other tenant"
        );
        let longer = query.replace("len=1000", "len=100000");
        assert!(
            refused(&key, &longer, Some("image/jpeg"), 1),
            "length altered"
        );
        let later = query.replace("exp=2000", "exp=9000");
        assert!(
            refused(&key, &later, Some("image/jpeg"), 1),
            "expiry altered"
        );
        assert!(
            refused(&key, &format!("{query}&x=1"), Some("image/jpeg"), 1),
            "extra field"
        );
        let other = LocalUploadSigner::new(vec![8; 32], "http://127.0.0.1:9");
        assert!(matches!(
            other.verify(&key, &query, Some("image/jpeg"), 1),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn requests_are_checked_before_a_url_is_made() {
        let ok = UploadRequest {
            key: "photos/a.jpg".into(),
            content_type: "image/jpeg".into(),
            content_length: 10,
        };
        assert!(ok.check(10).is_ok());
        for (req, status) in [
            (
                UploadRequest {
                    key: "../x".into(),
                    ..ok.clone()
                },
                400,
            ),
            (
                UploadRequest {
                    content_type: "text/html".into(),
                    ..ok.clone()
                },
                400,
            ),
            (
                UploadRequest {
                    content_length: 0,
                    ..ok.clone()
                },
                400,
            ),
            (
                UploadRequest {
                    content_length: 11,
                    ..ok.clone()
                },
                413,
            ),
        ] {
            assert_eq!(req.check(10).unwrap_err().status(), status, "{req:?}");
        }
    }
}
