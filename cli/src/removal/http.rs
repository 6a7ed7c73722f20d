//! The client for the local stack's admin routes (`pixelfront dev` serves plain HTTP on a local
//! address): the `--local` URL's checks, then one request through `ureq` (HTTP/1.1, no TLS: the
//! local stack has none).

use super::CliError;
use std::time::Duration;

/// How long to wait for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one read or write may wait (a takedown of an asset with many versions takes a while).
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest answer read (audit records of an asset with many versions stay far below).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// The base URL of a local stack: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP literal (IPv6 without the brackets).
    host: String,
    /// TCP port (80 when the URL names none).
    port: u16,
    /// Path prefix without the trailing `/` (usually empty).
    base: String,
    /// The URL as given, for messages.
    url: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`; the error is one line naming what is wrong.
    pub fn parse(url: &str) -> Result<Endpoint, CliError> {
        let bad = |why: &str| CliError::Usage(format!("bad --local URL {url:?}: {why}"));
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(bad("the local stack serves plain http://, not https://"))
            }
            _ => return Err(bad("expected http://host:port")),
        };
        if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(bad(
                "expected http://host:port with no query, fragment or user",
            ));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(bad("unclosed [ in the host"));
            };
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let bracketed = authority.starts_with('[');
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'.' | b'-' | b'_')
                    || (bracketed && b == b':')
            });
        if !host_ok {
            return Err(bad("missing or malformed host"));
        }
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad("the port must be 1-65535")),
            },
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            base: path.trim_end_matches('/').to_string(),
            url: url.to_string(),
        })
    }
}

/// An answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body (de-chunked, at most 64 MiB).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, trimmed (for error messages: the local stack answers one-line
    /// reasons).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, CliError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError::Server(format!("the server answered malformed JSON: {e}")))
    }
}

/// Sends one request to `path` (starting with `/`, already URL-safe) with the bearer `token`.
/// No proxy and no redirects: the local stack is reached directly and answers itself.
pub fn request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&[u8]>,
) -> Result<Response, CliError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_per_write(Some(READ_TIMEOUT))
        .build()
        .into();
    let host = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let body = body.unwrap_or_default();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{host}{}{path}", ep.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json");
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json");
    }
    let req = req
        .body(body)
        .map_err(|e| CliError::Usage(format!("bad request to {}: {e}", ep.url)))?;
    let answer = agent.run(req).and_then(|mut r| {
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()?;
        Ok(Response { status, body })
    });
    answer.map_err(|e| classify(ep, e))
}

/// Maps a client error to the CLI's: no connection or no answer in time is
/// [`CliError::Unreachable`], an answer that is not usable HTTP is [`CliError::Server`].
fn classify(ep: &Endpoint, e: ureq::Error) -> CliError {
    let why = match e {
        ureq::Error::HostNotFound => format!("cannot resolve {}", ep.host),
        ureq::Error::Io(e) => e.to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Timeout(t) => format!("no answer in time ({t})"),
        ureq::Error::BodyStalled => "the answer stalled".to_string(),
        e => return CliError::Server(format!("{}: {e}", ep.url)),
    };
    CliError::Unreachable(format!(
        "cannot reach the local stack at {}: {why} (is `pixelfront dev` running?)",
        ep.url
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ep = Endpoint::parse("http://127.0.0.1:8080").expect("plain");
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.base.as_str()),
            ("127.0.0.1", 8080, "")
        );
        let ep = Endpoint::parse("HTTP://localhost/pf/").expect("path");
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.base.as_str()),
            ("localhost", 80, "/pf")
        );
        let ep = Endpoint::parse("http://[::1]:9000").expect("v6");
        assert_eq!((ep.host.as_str(), ep.port), ("::1", 9000));
        for bad in [
            "",
            "127.0.0.1:8080",
            "https://x",
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://u@h",
            "http://h/?a",
            "http://[::1",
            "http://h h",
            "http://127.0.0.1:1:2",
        ] {
            let err = Endpoint::parse(bad).expect_err(bad);
            assert!(matches!(err, CliError::Usage(_)), "{bad}: {err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    /// Serves one connection on 127.0.0.1 with `answer`; returns the URL and the request read.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            conn.write_all(answer).expect("write");
            String::from_utf8_lossy(&seen).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn requests_and_answers() {
        let (url, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n",
        );
        let ep = Endpoint::parse(&format!("{url}/pf/")).expect("url");
        let r = request(&ep, "GET", "/audit/a/b", "tok", None).expect("answer");
        assert_eq!((r.status, r.text().as_str()), (404, "not found"));
        let seen = server.join().expect("server");
        assert!(seen.starts_with("GET /pf/audit/a/b HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.to_ascii_lowercase()
                .contains("authorization: bearer tok\r\n"),
            "{seen}"
        );

        let (url, server) = serve_once(b"garbage\r\n\r\n");
        let ep = Endpoint::parse(&url).expect("url");
        let err = request(&ep, "POST", "/backfill", "t", Some(b"{}")).expect_err("garbage");
        assert!(matches!(err, CliError::Server(_)), "{err}");
        server.join().expect("server");
    }

    #[test]
    fn nobody_listening_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let err = request(&ep, "GET", "/backfill", "t", None).expect_err("closed port");
        assert!(matches!(err, CliError::Unreachable(_)), "{err}");
        assert!(
            err.to_string().contains("cannot reach the local stack"),
            "{err}"
        );
    }
}
