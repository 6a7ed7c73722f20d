//! The tenant API, the control plane (docs/tenant-api.md): uploads scoped to a tenant, asset
//! lookup with a ready-to-use URL per variant, a tenant's listing, takedown requests and the
//! `latest` alias. One implementation for both stacks: [`service::Api`] answers a parsed
//! request with the shared HTTP response type, generic over narrow ports (the manifest, the
//! tenant policies, [`keys::ApiKeyStore`], [`uploads::UploadSigner`], [`service::Takedowns`]);
//! the local stack and the `api` Lambda only read the request and write the answer.
//!
//! Every error is JSON `{"error": "<short reason>"}` with a 4xx status ([`ApiError`]); a store
//! that fails answers 503 `{"error": "<store> unavailable"}`, its detail going to the log only.

pub mod assets;
#[cfg(feature = "api-aws")]
pub mod aws;
pub mod keys;
pub mod service;
pub mod uploads;

#[cfg(test)]
mod tests;

use crate::delivery::http::{self as mapping, HttpResponse};
use http::header::{self, HeaderValue};

/// Largest JSON request body, bytes: a request is a few short fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Longest `wait` of an asset lookup, seconds.
pub const MAX_WAIT_SECS: u64 = 20;

/// Largest `limit` of a listing page (the default is 100).
pub const MAX_PAGE: usize = 1000;

/// Why a tenant API request is refused; `Display` is the public reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials that are no key and no admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the credentials may not do this (another tenant's key, an altered upload URL).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route, asset, version or request.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not; carries the `Allow` value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 409: a request id already names another request.
    #[error("{0}")]
    Conflict(String),
    /// 413: a body or a declared upload over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// 503: a store failed; the detail is logged, never answered.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// A store failure: logs `detail`, answers only which store.
    pub fn unavailable(what: &'static str, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "{what}");
        ApiError::Unavailable(what)
    }

    /// The JSON answer: `{"error": reason}`, never cached; 401 adds `WWW-Authenticate:
    /// Bearer`, 405 `Allow`.
    pub fn response(&self) -> HttpResponse {
        let mut resp = mapping::json(
            self.status(),
            &serde_json::json!({ "error": self.to_string() }),
        );
        let h = resp.headers_mut();
        match self {
            ApiError::Unauthorized(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed(allow) => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        resp
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: any tenant, any reason.
    Admin,
    /// A tenant API key: its own tenant only.
    Tenant {
        /// The tenant the key acts for.
        tenant: String,
        /// The key's id (for the audit trail).
        kid: String,
    },
}

impl Caller {
    /// Whether the caller may act for `tenant`: 403 otherwise.
    pub fn authorize(&self, tenant: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant { tenant: own, .. } if own == tenant => Ok(()),
            Caller::Tenant { .. } => Err(ApiError::Forbidden(
                "this API key is for another tenant".into(),
            )),
        }
    }
}
