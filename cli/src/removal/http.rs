//! A minimal HTTP/1.1 client for the local stack's admin routes (`pixelfront dev` serves plain
//! HTTP on a local address): one request per connection, `Connection: close`, bodies read to the
//! end (with or without chunked transfer coding). No TLS: the local stack has none.

use super::CliError;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long to wait for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an answer (a takedown of an asset with many versions takes a while).
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
    /// The body (de-chunked).
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
pub fn request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&[u8]>,
) -> Result<Response, CliError> {
    let unreachable = |why: String| {
        CliError::Unreachable(format!(
            "cannot reach the local stack at {}: {why} (is `pixelfront dev` running?)",
            ep.url
        ))
    };
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", ep.host)))?
        .collect();
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| unreachable(last))?;
    let io = |e: std::io::Error| unreachable(e.to_string());
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(READ_TIMEOUT)).map_err(io)?;
    let host = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nAccept: application/json\r\nContent-Length: {}\r\n",
        ep.base,
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .map_err(io)?;
    parse_response(&raw).map_err(|why| CliError::Server(format!("{}: {why}", ep.url)))
}

/// Parses a whole HTTP/1.1 response (status line, headers, body).
fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP (no header end)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the answer is not HTTP (no status line)")?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            }
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err("the answer was cut short".into()),
            None => rest.to_vec(),
        }
    };
    Ok(Response { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("malformed chunked body")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "malformed chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("the answer was cut short".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).ok_or("the answer was cut short")?;
    }
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

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").expect("ok");
        assert_eq!((r.status, r.body.as_slice()), (200, b"{}".as_slice()));
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!((r.status, r.text().as_str()), (404, "not found"));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nab").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
