//! The web console (docs/console.md): the static files of `console/`, embedded in the binary at
//! build time, served at `/console/` (`/` redirects there). The console is a client of the
//! tenant API and the image URLs only, so the same files can be served from the distribution on
//! AWS. `pixelfront dev --console-dir console` serves them from disk instead, for editing
//! without a rebuild.
//!
//! Every answer carries a Content-Security-Policy that allows the page's own scripts and styles
//! only (no inline code), images from anywhere, and refuses framing.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_files.rs"));
}

/// The console's policy: its own scripts, styles and API; images from the stack or any CDN.
const CSP: &str = "default-src 'self'; img-src 'self' http: https: blob: data:; \
    style-src 'self'; script-src 'self'; connect-src 'self' http: https:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Where the console's files come from.
#[derive(Debug, Clone, Default)]
pub struct Console {
    /// Read files from this folder instead of the embedded copy (`--console-dir`).
    pub dir: Option<PathBuf>,
}

/// The `Content-Type` of a console file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

/// Whether `rel` is a plain relative path of `[A-Za-z0-9._-]` segments, none of them starting
/// with a dot (no `..`, no hidden files).
fn plain(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
        })
}

impl Console {
    /// The bytes of the console file `rel` (`index.html`, `js/main.js`), or `None`.
    pub fn file(&self, rel: &str) -> Option<Vec<u8>> {
        if !plain(rel) {
            return None;
        }
        match &self.dir {
            Some(dir) => std::fs::read(Path::new(dir).join(rel)).ok(),
            None => embedded::FILES
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, bytes)| bytes.to_vec()),
        }
    }

    /// Answers `GET`/`HEAD` of `path`: `/` → 302 to `/console/`; `/console/` → `index.html`;
    /// `/console/{file}`; anything else (or another method) `None`.
    pub fn answer(&self, method: &Method, path: &str) -> Option<Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if path == "/" || path == "/console" {
            return Some(redirect("/console/"));
        }
        let rel = path.strip_prefix("/console/")?;
        let rel = if rel.is_empty() { "index.html" } else { rel };
        let Some(bytes) = self.file(rel) else {
            return Some(with_policy(
                crate::routes::text(404, "not found"),
                "text/plain; charset=utf-8",
            ));
        };
        let len = bytes.len();
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(bytes)
        };
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        Some(with_policy(resp, content_type(rel)))
    }
}

fn redirect(location: &'static str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Adds the console's headers: type, `no-cache` (revalidate: a new binary serves new files),
/// the CSP, `nosniff` and no framing.
fn with_policy(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_files() {
        for ok in ["index.html", "js/main.js", "a-b_c.css"] {
            assert!(plain(ok), "{ok}");
        }
        for bad in [
            "",
            "../Cargo.toml",
            "js/../x",
            ".git/config",
            "a//b",
            "/etc/passwd",
            "a%2e",
        ] {
            assert!(!plain(bad), "{bad}");
        }
    }

    #[test]
    fn the_embedded_console_has_its_page() {
        let c = Console::default();
        let index = c.file("index.html").unwrap_or_default();
        assert!(String::from_utf8_lossy(&index).contains("<html"));
        assert!(c.file("nope.html").is_none());
    }

    #[test]
    fn root_redirects_and_files_carry_the_policy() {
        let c = Console::default();
        let r = c.answer(&Method::GET, "/").unwrap_or_default();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()[header::LOCATION], "/console/");
        let r = c.answer(&Method::GET, "/console/").unwrap_or_default();
        assert_eq!(r.status(), 200);
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .is_ok_and(|v| v.contains("script-src 'self'")));
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let r = c.answer(&Method::GET, "/console/../x").unwrap_or_default();
        assert_eq!(r.status(), 404);
        assert!(c.answer(&Method::POST, "/console/").is_none());
        assert!(c.answer(&Method::GET, "/metrics").is_none());
    }
}
