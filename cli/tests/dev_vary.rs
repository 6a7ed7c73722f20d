//! `Vary: Accept` on the local stack over HTTP (docs/url-grammar.md): an answer whose format
//! came from `Accept` (`fmt=auto` or no `fmt`) says so, on a render, a cache hit, `HEAD` and
//! `304`; an answer to an explicit `fmt` does not, even when it is the same cached derivative.
//! And the `Accept` header is read as the edge reads it: repeated fields joined with `,`, a
//! value with a byte outside visible ASCII, space and tab counted as absent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, png, Resp, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A GET with raw header lines (any bytes), as a client that does not check them sends it.
fn raw_get(s: &Server, target: &str, header_lines: &[&[u8]]) -> Resp {
    let mut stream = TcpStream::connect(&s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .expect("timeout");
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        s.addr
    )
    .into_bytes();
    for line in header_lines {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    stream.write_all(&req).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    Resp::parse(&raw)
}

#[test]
fn answers_whose_format_came_from_accept_vary_on_it_and_no_others() {
    let data = data_dir("vary");
    let s = Server::start(&data, &[]);
    assert_eq!(s.upload("acme/v.png", &png(400, 300, 7)).status, 202);
    assert_eq!(s.settled("acme/v.png")["status"], "ready");

    let webp = [("Accept", "image/webp,*/*")];
    // (target, Accept, content type, Vary, X-Cache)
    for (target, accept, ctype, vary, cache) in [
        (
            "/img/acme/v1/v.png?w=96",
            &webp[..],
            "image/webp",
            "Accept",
            "Miss",
        ),
        (
            "/img/acme/v1/v.png?w=96",
            &webp[..],
            "image/webp",
            "Accept",
            "Hit",
        ),
        (
            "/img/acme/v1/v.png?w=96&FMT=Auto",
            &webp[..],
            "image/webp",
            "Accept",
            "Hit",
        ),
        // The same derivative asked for by name: no Vary, from the cache too.
        (
            "/img/acme/v1/v.png?w=96&fmt=webp",
            &webp[..],
            "image/webp",
            "",
            "Hit",
        ),
        (
            "/img/acme/v1/v.png?w=96&fmt=webp&q=80",
            &[],
            "image/webp",
            "",
            "Hit",
        ),
        // No Accept at all: JPEG, still chosen by (the absence of) Accept.
        (
            "/img/acme/v1/v.png?w=96",
            &[],
            "image/jpeg",
            "Accept",
            "Miss",
        ),
        (
            "/img/acme/v1/v.png?w=96&fmt=jpg",
            &webp[..],
            "image/jpeg",
            "",
            "Hit",
        ),
        // A standard variant from the stored derivative.
        (
            "/img/acme/v1/v.png?w=640",
            &webp[..],
            "image/webp",
            "Accept",
            "Miss",
        ),
        (
            "/img/acme/v1/v.png?w=640&fmt=webp",
            &webp[..],
            "image/webp",
            "",
            "Hit",
        ),
    ] {
        let r = s.request("GET", target, accept, b"");
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        assert_eq!(
            (
                r.header("content-type"),
                r.header("vary"),
                r.header("x-cache")
            ),
            (ctype, vary, cache),
            "{target} {accept:?}"
        );
    }

    // HEAD and 304 carry the headers of the GET, Vary included.
    let etag = s
        .request("GET", "/img/acme/v1/v.png?w=96", &webp, b"")
        .header("etag")
        .to_string();
    let head = s.request("HEAD", "/img/acme/v1/v.png?w=96", &webp, b"");
    assert_eq!((head.status, head.header("vary")), (200, "Accept"));
    let inm = [("Accept", "image/webp"), ("If-None-Match", etag.as_str())];
    let not_modified = s.request("GET", "/img/acme/v1/v.png?w=96", &inm, b"");
    assert_eq!(
        (not_modified.status, not_modified.header("vary")),
        (304, "Accept")
    );
    let not_modified = s.request("GET", "/img/acme/v1/v.png?w=96&fmt=webp", &inm, b"");
    assert_eq!(
        (not_modified.status, not_modified.header("vary")),
        (304, "")
    );

    // Refusals do not depend on Accept: no Vary.
    let bad = s.request("GET", "/img/acme/v1/v.png?w=0", &webp, b"");
    assert_eq!((bad.status, bad.header("vary")), (400, ""));
    s.stop();
}

#[test]
fn accept_is_read_as_the_edge_reads_it() {
    let data = data_dir("vary-accept");
    let s = Server::start(&data, &[]);
    assert_eq!(s.upload("acme/a.png", &png(200, 100, 3)).status, 202);
    assert_eq!(s.settled("acme/a.png")["status"], "ready");

    for (lines, ctype) in [
        // Repeated fields count as one list, joined with ',' (the edge function joins them).
        (
            &[&b"Accept: text/html"[..], b"Accept: image/webp"][..],
            "image/webp",
        ),
        (
            &[&b"Accept: image/webp;q=0"[..], b"Accept: image/avif"][..],
            "image/avif",
        ),
        // A byte outside visible ASCII, space and tab anywhere: no Accept at all, JPEG.
        (&[&b"Accept: image/avif,caf\xe9"[..]][..], "image/jpeg"),
        (
            &[&b"Accept: image/webp"[..], b"Accept: \xc3\xa9"][..],
            "image/jpeg",
        ),
        // Tabs and case do not matter.
        (&[&b"Accept: \tIMAGE/WEBP\t;\tq=1"[..]][..], "image/webp"),
    ] {
        let r = raw_get(&s, "/img/acme/v1/a.png?w=64", lines);
        assert_eq!(r.status, 200, "{}", r.text());
        let shown: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(
            (r.header("content-type"), r.header("vary")),
            (ctype, "Accept"),
            "{shown:?}"
        );
    }
    s.stop();
}
