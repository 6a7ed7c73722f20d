//! Tenant API keys (docs/tenant-api.md#keys): `pfk_{kid}_{secret}`, where `kid` is 16 hex
//! digits that name the key and `secret` 32 random bytes in unpadded base64url. A key is shown
//! once, when it is made; the stores keep only its SHA-256 ([`ApiKeyRecord::hash`]), looked up
//! by `kid`. The key carries 256 random bits, so one unsalted hash is enough: no dictionary
//! holds it.

use crate::sign::{base64url, ct_eq, RandomError};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;

/// What every API key starts with.
pub const KEY_PREFIX: &str = "pfk_";

/// Length of a key id, hex digits.
pub const KID_CHARS: usize = 16;

/// Length of a key's secret part, base64url characters (32 bytes).
pub const SECRET_CHARS: usize = 43;

/// A stored API key: which tenant it acts for, and the hash of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Key id (16 hex digits), the lookup key.
    pub kid: String,
    /// The tenant the key acts for.
    pub tenant: String,
    /// SHA-256 of the whole key text, lower-case hex.
    pub hash: String,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
}

/// A key just made: the record to store and the key text to show once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// What the store keeps.
    pub record: ApiKeyRecord,
    /// The key itself (`pfk_…`): printed once, never stored.
    pub key: String,
}

/// SHA-256 of `key`, lower-case hex.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Makes a key for `tenant` from the OS's random source, created at `now` (RFC 3339).
pub fn generate(tenant: &str, now: &str) -> Result<NewApiKey, RandomError> {
    let mut kid = [0u8; KID_CHARS / 2];
    getrandom::fill(&mut kid)?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let kid = hex::encode(kid);
    let key = format!("{KEY_PREFIX}{kid}_{}", base64url(&secret));
    Ok(NewApiKey {
        record: ApiKeyRecord {
            kid,
            tenant: tenant.to_string(),
            hash: hash(&key),
            created_at: now.to_string(),
        },
        key,
    })
}

/// Whether `token` has the shape of an API key (so it is no guess at the admin token).
pub fn looks_like_key(token: &str) -> bool {
    kid_of(token).is_some()
}

/// The key id of `token` when it has an API key's exact shape.
pub fn kid_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (kid, secret) = rest.split_once('_').filter(|(k, _)| k.len() == KID_CHARS)?;
    let kid_ok = kid.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    (kid_ok && secret_ok).then_some(kid)
}

/// Whether `token` is the key `record` holds the hash of (constant time in the hash).
pub fn matches(record: &ApiKeyRecord, token: &str) -> bool {
    ct_eq(hash(token).as_bytes(), record.hash.as_bytes())
}

/// Where API keys are kept: the tenant policy table on AWS (items `apikey#{kid}`), the API keys
/// file locally.
pub trait ApiKeyStore: Send + Sync {
    /// The record of key `kid`, if there is one.
    fn api_key(
        &self,
        kid: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;
}

impl<T: ApiKeyStore> ApiKeyStore for Arc<T> {
    fn api_key(
        &self,
        kid: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        (**self).api_key(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_has_the_shape_and_matches_only_its_record() {
        let a = generate("acme", "2026-12-07T00:00:00Z").unwrap();
        let b = generate("acme", "2026-12-07T00:00:00Z").unwrap();
        assert_eq!(kid_of(&a.key), Some(a.record.kid.as_str()));
        assert!(matches(&a.record, &a.key));
        assert!(!matches(&a.record, &b.key));
        assert_ne!(a.record.hash, a.key, "the key itself is never stored");
        assert_eq!(a.record.hash.len(), 64);
    }

    #[test]
    fn tokens_of_other_shapes_are_no_keys() {
        let good = format!("pfk_{}_{}", "0123456789abcdef", "A".repeat(SECRET_CHARS));
        assert!(looks_like_key(&good));
        for bad in [
            "",
            "pfk_",
            "admin-token",
            &format!("pfk_{}_{}", "0123456789ABCDEF", "A".repeat(SECRET_CHARS)),
            &format!("pfk_{}_{}", "0123456789abcde", "A".repeat(SECRET_CHARS)),
            &format!(
                "pfk_{}_{}",
                "0123456789abcdef",
                "A".repeat(SECRET_CHARS - 1)
            ),
            &format!("pfk_{}_{}", "0123456789abcdef", "A+".repeat(22)),
        ] {
            assert!(!looks_like_key(bad), "{bad}");
        }
    }
}
