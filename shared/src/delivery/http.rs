//! The one HTTP mapping of an image request's outcome, used by the transformer Lambda and the
//! local stack alike, so both answer with the same status, headers and body
//! (docs/local-stack.md, docs/architecture.md).
//!
//! - only `GET` and `HEAD` are answered ([`method_not_allowed`]: 405 with `Allow`);
//! - an image carries `Content-Type`, `Cache-Control`, the strong `ETag`, the asset's cache tag
//!   as `x-amz-meta-cache-tag` (what S3 serves with the stored object, so one tag invalidation
//!   purges both origins), `x-pixelfront-source` and the normalized key `x-pixelfront-key`;
//! - an image whose format came from `Accept` (`fmt` absent or `auto`) says `Vary: Accept`, so a
//!   shared cache downstream keeps one copy per `Accept` (docs/url-grammar.md); an explicit
//!   `fmt` does not vary;
//! - `If-None-Match` matching the ETag gives 304 with the same headers and no body;
//! - `HEAD` gives the headers of the `GET`, `Content-Length` included, and no body;
//! - an error gives its status, its `Cache-Control` and its short public reason as plain text;
//!   internal detail goes to the log only; an overloaded renderer (503) or a used-up tenant rate
//!   (429) adds `Retry-After` and is cached for two seconds only (docs/limits.md).
//!
//! Responses are `http::Response<Bytes>`: the image body is shared, never copied per answer.

use super::{if_none_match, Delivered, DeliveryError};
use crate::normalize::Normalized;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

/// Header carrying the asset's cache tag (`asset:{tenant}/{key}`), as S3 serves it from the
/// object's user metadata.
pub const CACHE_TAG_HEADER: &str = "x-amz-meta-cache-tag";

/// Header naming where the image came from: `stored`, `rendered` or `rendered-replica`.
pub const SOURCE_HEADER: &str = "x-pixelfront-source";

/// Header naming the normalized object key of the derivative (`{tenant}/v{N}/{key}/{name}`),
/// the cache key the edge derives from the request (the console's playground shows it).
pub const KEY_HEADER: &str = "x-pixelfront-key";

/// A response with a shared body.
pub type HttpResponse = Response<Bytes>;

/// A plain-text answer (`text/plain; charset=utf-8`) with `status` (100..=599; anything else
/// becomes 500) and `cache_control`.
pub fn text(status: u16, cache_control: &str, body: impl Into<String>) -> HttpResponse {
    let body = Bytes::from(body.into());
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// A JSON answer (`application/json`, `no-store`), pretty-printed with a final newline.
pub fn json(status: u16, value: &serde_json::Value) -> HttpResponse {
    let mut resp = text(status, "no-store", format!("{value:#}\n"));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// 405 for any method but `GET` and `HEAD`, with `Allow: GET, HEAD`; `None` for those two.
pub fn method_not_allowed(method: &Method) -> Option<HttpResponse> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut resp = text(405, "no-store", "method not allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(resp)
}

/// The answer to a refused or failed request: its status, `Cache-Control` and public reason.
/// Server-side failures are logged with their internal detail, refusals at info level.
/// A load-dependent refusal (503 overloaded, 429 rate) carries `Retry-After` (seconds).
pub fn error(e: &DeliveryError) -> HttpResponse {
    match e {
        DeliveryError::Unavailable(_) | DeliveryError::Internal(_) => {
            tracing::error!(status = e.status(), error = %e, "request failed");
        }
        DeliveryError::Overloaded { .. } | DeliveryError::RateLimited { .. } => {
            tracing::warn!(status = e.status(), error = %e, "request shed");
        }
        _ => tracing::info!(status = e.status(), error = %e, "request refused"),
    }
    let mut resp = text(e.status(), e.cache_control(), e.reason());
    if let Some(s) = e.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// The answer with image `d` to a `GET` or `HEAD` whose headers are `request` and which
/// normalized to `n`: 200, or 304 when `If-None-Match` matches; no body for `HEAD` or 304;
/// `Vary: Accept` when `n`'s format came from `Accept`.
pub fn image(method: &Method, request: &HeaderMap, d: &Delivered, n: &Normalized) -> HttpResponse {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| if_none_match(h, &d.etag));
    let empty = not_modified || method == Method::HEAD;
    let mut resp = Response::new(if empty { Bytes::new() } else { d.bytes.clone() });
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(d.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(d.cache_control),
    );
    if let Ok(v) = HeaderValue::from_str(&d.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&d.cache_tag) {
        h.insert(CACHE_TAG_HEADER, v);
    }
    h.insert(SOURCE_HEADER, HeaderValue::from_static(d.source.as_str()));
    if let Ok(v) = HeaderValue::from_str(&n.derived_key()) {
        h.insert(KEY_HEADER, v);
    }
    if n.fmt_from_accept {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if !not_modified {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.bytes.len()));
    }
    resp
}

/// A render too large to answer inline (the Lambda's buffered payload), already stored: 307 to
/// `location` (the viewer's own request), `no-store`, so the viewer's retry is served by the
/// bucket.
pub fn fetch_again(location: &str) -> HttpResponse {
    let mut resp = text(307, "no-store", "rendered; fetch again");
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Source;
    use crate::normalize::normalize_uri;

    /// The request `uri` (any `Accept`) normalized.
    fn req(uri: &str) -> Normalized {
        normalize_uri(uri, Some("image/webp")).expect("valid request")
    }

    fn delivered() -> Delivered {
        Delivered {
            derived_key: "acme/v1/p.png/w320.webp".into(),
            bytes: Bytes::from_static(b"RIFF0000WEBP"),
            content_type: "image/webp",
            cache_control: "public, max-age=31536000, immutable",
            etag: "\"abc\"".into(),
            cache_tag: "asset:acme/p.png".into(),
            source: Source::Stored,
            render_ms: 0,
        }
    }

    fn get(resp: &HttpResponse, name: &str) -> String {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    #[test]
    fn get_head_and_conditional_answers_share_their_headers() {
        let d = delivered();
        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"abc\""));
        for (method, headers, status, body, length) in [
            (Method::GET, HeaderMap::new(), 200, 12, "12"),
            (Method::HEAD, HeaderMap::new(), 200, 0, "12"),
            (Method::GET, conditional.clone(), 304, 0, ""),
            (Method::HEAD, conditional, 304, 0, ""),
        ] {
            let r = image(
                &method,
                &headers,
                &d,
                &req("/img/acme/v1/p.png?w=320&fmt=webp"),
            );
            assert_eq!(r.status(), status, "{method} {headers:?}");
            assert_eq!(r.body().len(), body, "{method}");
            assert_eq!(get(&r, "content-length"), length, "{method}");
            assert_eq!(get(&r, "etag"), "\"abc\"");
            assert_eq!(get(&r, "content-type"), "image/webp");
            assert_eq!(get(&r, CACHE_TAG_HEADER), "asset:acme/p.png");
            assert_eq!(get(&r, SOURCE_HEADER), "stored");
            assert_eq!(get(&r, "cache-control"), d.cache_control);
        }
    }

    #[test]
    fn answers_whose_format_came_from_accept_vary_on_it() {
        let d = delivered();
        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abc\""));
        for (uri, vary) in [
            ("/img/acme/v1/p.png?w=320", "Accept"),
            ("/img/acme/v1/p.png?w=320&fmt=auto", "Accept"),
            ("/img/acme/v1/p.png?W=320&FMT=AUTO", "Accept"),
            ("/img/acme/v1/p.png?w=320&fmt=webp", ""),
            ("/img/acme/v1/p.png?w=320&fmt=WEBP&q=80", ""),
        ] {
            for (method, headers, status) in [
                (Method::GET, HeaderMap::new(), 200),
                (Method::HEAD, HeaderMap::new(), 200),
                (Method::GET, conditional.clone(), 304),
            ] {
                let r = image(&method, &headers, &d, &req(uri));
                assert_eq!(r.status(), status, "{uri} {method}");
                assert_eq!(get(&r, "vary"), vary, "{uri} {method} {status}");
                assert_eq!(
                    r.headers().get_all(header::VARY).iter().count(),
                    vary.len().min(1)
                );
            }
        }
    }

    #[test]
    fn only_get_and_head_are_answered() {
        assert!(method_not_allowed(&Method::GET).is_none());
        assert!(method_not_allowed(&Method::HEAD).is_none());
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let r = method_not_allowed(&m).expect("refused");
            assert_eq!(
                (r.status().as_u16(), get(&r, "allow")),
                (405, "GET, HEAD".into())
            );
        }
    }

    #[test]
    fn errors_carry_their_reason_and_cache_control_only() {
        let r = error(&DeliveryError::Unavailable("s3 said: secret detail".into()));
        assert_eq!(r.status(), 503);
        assert_eq!(r.body(), "temporarily unavailable");
        assert_eq!(get(&r, "cache-control"), "public, max-age=60");
        let r = error(&DeliveryError::NotFound);
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (404, &b"not found"[..])
        );
        assert_eq!(get(&r, "cache-control"), "public, max-age=10");
        let r = fetch_again("/img/acme/v1/p.png?w=1600");
        assert_eq!(r.status(), 307);
        assert_eq!(get(&r, "location"), "/img/acme/v1/p.png?w=1600");
        assert_eq!(get(&r, "cache-control"), "no-store");
    }

    #[test]
    fn load_refusals_carry_retry_after_and_a_short_ttl() {
        for (e, status) in [
            (DeliveryError::Overloaded { retry_after_s: 3 }, 503),
            (DeliveryError::RateLimited { retry_after_s: 3 }, 429),
        ] {
            let r = error(&e);
            assert_eq!(r.status(), status);
            assert_eq!(get(&r, "retry-after"), "3");
            assert_eq!(get(&r, "cache-control"), "public, max-age=2");
        }
        assert_eq!(get(&error(&DeliveryError::NotFound), "retry-after"), "");
    }
}
