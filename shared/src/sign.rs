//! Signed URLs (docs/signing.md): per-tenant HMAC-SHA256 keys, checked at the edge (the CloudFront
//! Function, `edge/viewer-request.js`) and again wherever Rust serves a request. Both
//! implementations are tested against `tests/vectors/sign.json`.
//!
//! A signed URL carries three extra query parameters: `exp` (Unix seconds), `kid` (key id)
//! and `sig`, the unpadded base64url HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
//!
//! ```text
//! "PF1\n" + path + "\n" + signed params + "\n" + exp + "\n" + kid
//! ```
//!
//! where *signed params* are the query pieces named `w`, `h`, `fmt` or `q` (any case),
//! exactly as sent, in the order sent, joined by `&`. Other parameters (`utm_*`, junk) are
//! not signed: they never affect the bytes and normalization drops them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;

/// Longest accepted `kid`, bytes.
pub const MAX_KID_BYTES: usize = 64;

/// Largest `exp` the edge accepts: it reads at most 10 digits (9,999,999,999 s, in 2286).
pub const MAX_EXP: u64 = 9_999_999_999;

/// A tenant's delivery policy (the KeyValueStore value at the edge, the tenant config
/// locally).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantPolicy {
    /// Whether every URL must be signed.
    #[serde(default)]
    pub sign: bool,
    /// Active signing keys: key id → secret. Two during a rotation's overlap.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Allowed Referer hosts (`shop.example.com`, `*.example.com`); empty = any.
    #[serde(default)]
    pub referers: Vec<String>,
    /// Which derivatives a request may have rendered on demand (docs/limits.md); stored
    /// derivatives are always served. Absent in older policies: [`OnDemand::Any`].
    #[serde(default, skip_serializing_if = "OnDemand::is_any")]
    pub on_demand: OnDemand,
}

/// A tenant's on-demand render policy. JSON: `"any"`, `"catalogue"` or
/// `{"rate_per_minute": 60}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDemand {
    /// Any derivative the URL grammar allows (sizes snapped to the breakpoints).
    #[default]
    Any,
    /// Only the standard variants (the catalogue of `shared/policy.json`); any other derivative
    /// that is not already stored answers 404.
    Catalogue,
    /// Any derivative, at most this many renders per minute for the tenant (a burst of one
    /// minute's worth); beyond it 429 with `Retry-After`. Standard variants are not counted.
    RatePerMinute(std::num::NonZeroU32),
}

impl OnDemand {
    /// Whether this is the default, [`OnDemand::Any`].
    pub fn is_any(&self) -> bool {
        *self == OnDemand::Any
    }
}

/// Why a request is refused with 403. `Display` is the exact reason the edge answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    /// The tenant signs, and `exp`, `kid` or `sig` is absent.
    #[error("signature required")]
    SignatureRequired,
    /// A signature parameter is repeated or malformed.
    #[error("bad signature parameters")]
    BadParameters,
    /// `exp` is not in the future.
    #[error("expired")]
    Expired,
    /// `kid` is not one of the tenant's active keys (e.g. retired after a rotation).
    #[error("unknown key")]
    UnknownKey,
    /// The HMAC does not match (forged, altered, other path, other tenant).
    #[error("bad signature")]
    BadSignature,
    /// The Referer's host is not one of the tenant's allowed hosts.
    #[error("hotlink refused")]
    Hotlink,
}

/// Why a URL cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key id does not match `[A-Za-z0-9_-]{1,64}`.
    #[error("key id must be 1-64 characters of [A-Za-z0-9_-]")]
    BadKid,
    /// The secret is empty.
    #[error("secret must not be empty")]
    EmptySecret,
    /// `exp` is beyond [`MAX_EXP`]: the edge would refuse it as malformed.
    #[error("expiry {0} is beyond what the edge accepts (at most {MAX_EXP}, 10 digits)")]
    ExpiryOutOfRange(u64),
    /// `exp` is not after `now`: the edge would refuse it as expired.
    #[error("expiry {exp} is not in the future (now is {now})")]
    ExpiryPast {
        /// The expiry asked for, Unix seconds.
        exp: u64,
        /// The current time, Unix seconds.
        now: u64,
    },
}

/// Checks that a URL expiring at `exp` (Unix seconds) can verify at the edge at `now`: `exp`
/// within [`MAX_EXP`] and after `now` (the edge refuses `now >= exp`).
pub fn check_expiry(exp: u64, now: u64) -> Result<(), SignError> {
    if exp > MAX_EXP {
        return Err(SignError::ExpiryOutOfRange(exp));
    }
    if exp <= now {
        return Err(SignError::ExpiryPast { exp, now });
    }
    Ok(())
}

fn is_signed_param(piece: &str) -> bool {
    let name = piece.split_once('=').map_or(piece, |(n, _)| n);
    matches!(
        name.to_ascii_lowercase().as_str(),
        "w" | "h" | "fmt" | "q" | "dpr"
    )
}

/// Slot of a signature parameter: `exp` 0, `kid` 1, `sig` 2 (names exact, lower case).
fn signature_param_slot(piece: &str) -> Option<usize> {
    let name = piece.split_once('=').map_or(piece, |(n, _)| n);
    ["exp", "kid", "sig"].iter().position(|&p| p == name)
}

/// Whether `kid` is a valid key id: 1..=64 characters of `[A-Za-z0-9_-]`.
pub fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_BYTES
        && kid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// The string the HMAC covers.
pub fn string_to_sign(path: &str, query: &str, exp: u64, kid: &str) -> String {
    let signed: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && is_signed_param(p))
        .collect();
    format!("PF1\n{path}\n{}\n{exp}\n{kid}", signed.join("&"))
}

/// HMAC-SHA256 (RFC 2104) of `msg` keyed with `key` (any length).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Unpadded base64url (RFC 4648 §5).
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Bytes of OS randomness in a [`random_token`] (128 bits; 32 hex digits).
pub const TOKEN_BYTES: usize = 16;

/// The OS random source failed (no `getrandom` syscall nor `/dev/urandom`).
#[derive(Debug, thiserror::Error)]
#[error("the OS random source failed: {0}")]
pub struct RandomError(#[from] getrandom::Error);

/// A random token: [`TOKEN_BYTES`] bytes from the OS random source, lower-case hex.
pub fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The `sig` value for a request.
pub fn signature(secret: &str, path: &str, query: &str, exp: u64, kid: &str) -> String {
    base64url(&hmac_sha256(
        secret.as_bytes(),
        string_to_sign(path, query, exp, kid).as_bytes(),
    ))
}

/// Signs `path?query`: drops any `exp`/`kid`/`sig` pieces, then appends the new ones.
/// Returns the full URI (`path?…&exp=…&kid=…&sig=…`). Refuses an `exp` beyond [`MAX_EXP`]
/// (no time is read here: [`check_expiry`] also refuses one already past).
pub fn sign_uri(
    path: &str,
    query: &str,
    kid: &str,
    secret: &str,
    exp: u64,
) -> Result<String, SignError> {
    if !valid_kid(kid) {
        return Err(SignError::BadKid);
    }
    if secret.is_empty() {
        return Err(SignError::EmptySecret);
    }
    if exp > MAX_EXP {
        return Err(SignError::ExpiryOutOfRange(exp));
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && signature_param_slot(p).is_none())
        .collect();
    let sig = signature(secret, path, &kept.join("&"), exp, kid);
    let mut parts = kept;
    let tail = format!("exp={exp}&kid={kid}&sig={sig}");
    parts.push(&tail);
    Ok(format!("{path}?{}", parts.join("&")))
}

/// Constant-time equality of two secrets' byte strings (`subtle`; only the length is not
/// secret): signatures here, the local stack's admin token there.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The host of a Referer URL: after `scheme://`, up to `/`, `?`, `#` or `:`, lower-cased.
fn referer_host(referer: &str) -> Option<String> {
    let (_, rest) = referer.split_once("://")?;
    let end = rest.find(['/', '?', '#', ':']).unwrap_or(rest.len());
    let host = &rest[..end];
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn referer_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            None => host == entry,
        }
    })
}

/// Checks a request against its tenant's policy: the signature when the tenant signs
/// (`now` in Unix seconds), then the Referer allowlist. `path` is the request path as
/// received, `query` the raw query string without `?`.
pub fn check(
    path: &str,
    query: &str,
    referer: Option<&str>,
    now: u64,
    policy: &TenantPolicy,
) -> Result<(), Forbidden> {
    if policy.sign {
        let mut found: [Option<&str>; 3] = [None; 3];
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let Some(i) = signature_param_slot(piece) else {
                continue;
            };
            let value = piece.split_once('=').map_or("", |(_, v)| v);
            let slot = &mut found[i];
            if slot.is_some() {
                return Err(Forbidden::BadParameters);
            }
            *slot = Some(value);
        }
        let [Some(exp), Some(kid), Some(sig)] = found else {
            return Err(Forbidden::SignatureRequired);
        };
        let exp_ok = !exp.is_empty() && exp.len() <= 10 && exp.bytes().all(|c| c.is_ascii_digit());
        if !exp_ok || !valid_kid(kid) || sig.is_empty() {
            return Err(Forbidden::BadParameters);
        }
        let exp: u64 = exp.parse().map_err(|_| Forbidden::BadParameters)?;
        if now >= exp {
            return Err(Forbidden::Expired);
        }
        let secret = policy.keys.get(kid).ok_or(Forbidden::UnknownKey)?;
        let want = signature(secret, path, query, exp, kid);
        if !ct_eq(want.as_bytes(), sig.as_bytes()) {
            return Err(Forbidden::BadSignature);
        }
    }
    if let (false, Some(referer)) = (policy.referers.is_empty(), referer) {
        let allowed = referer_host(referer).is_some_and(|h| referer_allowed(&h, &policy.referers));
        if !allowed {
            return Err(Forbidden::Hotlink);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(mac[..4], [0x60, 0xe4, 0x31, 0x59]);
    }

    #[test]
    fn base64url_table() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (&[0xfb, 0xff, 0xbf], "-_-_"),
        ] {
            assert_eq!(base64url(input), want);
        }
    }

    #[test]
    fn random_tokens_are_hex_and_differ() {
        let a = random_token().expect("token");
        let b = random_token().expect("token");
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        tenant: TenantPolicy,
        uri: String,
        referer: Option<String>,
        expect: String,
    }

    #[derive(Deserialize)]
    struct Vectors {
        now: u64,
        cases: Vec<Case>,
    }

    #[test]
    fn shared_vectors() {
        let v: Vectors =
            serde_json::from_str(include_str!("../../tests/vectors/sign.json")).expect("vectors");
        assert!(v.cases.len() >= 30);
        for c in &v.cases {
            let (path, query) = c.uri.split_once('?').unwrap_or((&c.uri, ""));
            let got = match check(path, query, c.referer.as_deref(), v.now, &c.tenant) {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            };
            assert_eq!(got, c.expect, "{}", c.name);
        }
    }

    #[test]
    fn only_expiries_the_edge_accepts_are_signed() {
        let now = 1_800_000_000;
        assert_eq!(check_expiry(now + 1, now), Ok(()));
        assert_eq!(check_expiry(MAX_EXP, now), Ok(()));
        assert_eq!(
            check_expiry(MAX_EXP + 1, now),
            Err(SignError::ExpiryOutOfRange(MAX_EXP + 1))
        );
        assert_eq!(
            check_expiry(u64::MAX, now),
            Err(SignError::ExpiryOutOfRange(u64::MAX))
        );
        for exp in [0, 1, now - 1, now] {
            assert_eq!(
                check_expiry(exp, now),
                Err(SignError::ExpiryPast { exp, now })
            );
        }
        assert_eq!(
            sign_uri("/img/acme/v1/a.jpg", "", "k1", "s", MAX_EXP + 1),
            Err(SignError::ExpiryOutOfRange(MAX_EXP + 1))
        );
        // The largest one signs into a URL the check accepts.
        let policy = TenantPolicy {
            sign: true,
            keys: BTreeMap::from([("k1".to_string(), "s".to_string())]),
            ..TenantPolicy::default()
        };
        let uri = sign_uri("/img/acme/v1/a.jpg", "", "k1", "s", MAX_EXP).expect("sign");
        let (path, query) = uri.split_once('?').expect("query");
        assert_eq!(check(path, query, None, now, &policy), Ok(()));
    }

    #[test]
    fn signing_round_trips_and_replaces_old_parameters() {
        let policy = TenantPolicy {
            sign: true,
            keys: BTreeMap::from([("k1".to_string(), "secret".to_string())]),
            referers: vec![],
            on_demand: OnDemand::Any,
        };
        let uri = sign_uri(
            "/img/acme/v1/a.jpg",
            "w=300&exp=1&sig=x&utm=y",
            "k1",
            "secret",
            2_000_000_000,
        )
        .expect("sign");
        assert!(uri.starts_with("/img/acme/v1/a.jpg?w=300&utm=y&exp=2000000000&kid=k1&sig="));
        let (path, query) = uri.split_once('?').expect("query");
        assert_eq!(check(path, query, None, 1_999_999_999, &policy), Ok(()));
        assert_eq!(
            check(path, query, None, 2_000_000_000, &policy),
            Err(Forbidden::Expired)
        );
        assert_eq!(
            sign_uri("/img/a/v1/b", "", "bad kid", "s", 1),
            Err(SignError::BadKid)
        );
        assert_eq!(
            sign_uri("/img/a/v1/b", "", "k", "", 1),
            Err(SignError::EmptySecret)
        );
    }
}
