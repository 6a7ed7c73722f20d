//! Exact takedowns on the local stack (`pixelfront dev`, over HTTP): the keys `a/K`, `a/K/x`
//! and `a/K/w640-q80.webp` (a key whose last segment looks like one of `a/K`'s derivatives)
//! coexist on disk, render and serve; a takedown of `a/K` removes `a/K` alone; its request id
//! reused for another asset or the other action is `409`.

mod common;

use common::{data_dir, png, Server, TOKEN};

const KEYS: [&str; 3] = ["a/K", "a/K/x", "a/K/w640-q80.webp"];

/// A standard variant (stored by the upload's renders) and an on-demand one of `key`.
fn urls(key: &str) -> [String; 2] {
    [
        format!("/img/acme/v1/{key}?w=640&fmt=webp"),
        format!("/img/acme/v1/{key}?w=333&fmt=png"),
    ]
}

#[test]
fn a_takedown_of_k_removes_k_alone_and_a_reused_request_id_is_a_conflict() {
    let data = data_dir("takedown-exact");
    let s = Server::start(&data, &[]);
    // Uploaded in both orders of "file first, directory first".
    for (i, key) in KEYS.iter().enumerate().rev() {
        let r = s.upload(&format!("acme/{key}"), &png(700, 400, i as u8));
        assert_eq!(r.status, 202, "{key}: {}", r.text());
    }
    for key in KEYS {
        let m = s.settled(&format!("acme/{key}"));
        assert_eq!(m["status"], "ready", "{key}: {m}");
    }
    // Every key serves its own image: a stored variant and an on-demand render, twice (the
    // second from the cache).
    let mut bodies = Vec::new();
    for key in KEYS {
        for url in urls(key) {
            let first = s.get(&url);
            assert_eq!(first.status, 200, "{url}: {}", first.text());
            let again = s.get(&url);
            assert_eq!((again.status, &again.body), (200, &first.body), "{url}");
            bodies.push(first.body);
        }
    }
    assert_ne!(bodies[0], bodies[2], "a/K and a/K/x served the same bytes");
    assert_ne!(
        bodies[0], bodies[4],
        "a/K and a/K/w640-q80.webp served the same bytes"
    );

    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str())];
    let body = br#"{"reason":"dmca","requester":"legal@example.com","request_id":"exact-1"}"#;
    let r = s.request("POST", "/takedown/acme/a/K", &headers, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let summary: serde_json::Value = serde_json::from_slice(&r.body).expect("summary");
    assert_eq!(summary["assets"], serde_json::json!(["acme/a/K"]));

    for url in urls("a/K") {
        let r = s.get(&url);
        assert_eq!((r.status, r.text().trim()), (404, "removed"), "{url}");
    }
    for key in &KEYS[1..] {
        assert_eq!(
            s.manifest(&format!("acme/{key}"))["status"],
            "ready",
            "{key}"
        );
        for url in urls(key) {
            assert_eq!(s.get(&url).status, 200, "{url} after the takedown of a/K");
        }
        let audit = s.request("GET", &format!("/audit/acme/{key}"), &headers, b"");
        assert_eq!(audit.status, 404, "{key} has an audit record");
    }
    // The record of a/K lists a/K's objects only.
    let audit = s.request("GET", "/audit/acme/a/K", &headers, b"");
    assert_eq!(audit.status, 200, "{}", audit.text());
    let records: serde_json::Value = serde_json::from_slice(&audit.body).expect("audit");
    assert_eq!(records.as_array().map(Vec::len), Some(1));
    let derivatives = records[0]["deleted_derivatives"]
        .as_array()
        .expect("derivatives");
    assert!(derivatives.len() >= 8, "{derivatives:?}");
    for d in derivatives {
        let key = d["key"].as_str().expect("key");
        let name = key.strip_prefix("acme/v1/a/K/").expect("under a/K");
        assert!(!name.contains('/'), "{key} is another key's derivative");
    }
    for d in records[0]["deleted_originals"]
        .as_array()
        .expect("originals")
    {
        assert_eq!(d["key"], "acme/a/K");
    }

    // The request id again: the same request answers the first summary; another asset or
    // the other action is a conflict that changes nothing.
    let repeat = s.request("POST", "/takedown/acme/a/K", &headers, body);
    assert_eq!((repeat.status, &repeat.body), (200, &r.body));
    let other = s.request("POST", "/takedown/acme/a/K/x", &headers, body);
    assert_eq!(other.status, 409, "{}", other.text());
    assert!(other.text().contains("request id"), "{}", other.text());
    let erase = br#"{"tenant":"acme","key":"a/K","reason":"gdpr","requester":"dpo",
                     "request_id":"exact-1"}"#;
    let r = s.request("POST", "/erase", &headers, erase);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(s.manifest("acme/a/K/x")["status"], "ready");
    assert_eq!(s.manifest("acme/a/K")["status"], "taken_down");
    for url in urls("a/K/x") {
        assert_eq!(s.get(&url).status, 200, "{url} after the conflict");
    }
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}
