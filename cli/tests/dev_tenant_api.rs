//! The tenant API on the local stack over HTTP (docs/tenant-api.md): keys made by
//! `pixelfront tenant api-key-add`, uploads through signed URLs, lookups with `wait`, listing,
//! the `latest` alias and takedown requests, with every refusal a tenant can meet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{call, data_dir, json, png, Resp, Server, TOKEN};
use std::path::Path;
use std::process::Command;

/// `pixelfront tenant --data DATA ARGS`, which must succeed: its stdout.
fn tenant_cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .args(["tenant", "--data"])
        .arg(data)
        .args(args)
        .output()
        .expect("pixelfront tenant");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn api_key(data: &Path, tenant: &str) -> String {
    tenant_cli(data, &["api-key-add", tenant])
}

/// Asks for an upload URL and sends `body` to it with `content_type`.
fn grant(s: &Server, key: &str, tenant: &str, asset: &str, len: usize) -> serde_json::Value {
    let body = format!(r#"{{"key":"{asset}","content_type":"image/png","content_length":{len}}}"#);
    let r = call(
        s,
        "POST",
        &format!("/api/v1/tenants/{tenant}/uploads"),
        key,
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    json(&r)
}

fn put(s: &Server, grant: &serde_json::Value, content_type: &str, body: &[u8]) -> Resp {
    let url = grant["upload"]["url"].as_str().unwrap();
    let target = url.strip_prefix(&s.url()).expect("URL of this stack");
    s.request("PUT", target, &[("Content-Type", content_type)], body)
}

fn upload(s: &Server, key: &str, tenant: &str, asset: &str, image: &[u8]) -> u64 {
    let g = grant(s, key, tenant, asset, image.len());
    let r = put(s, &g, "image/png", image);
    assert_eq!(r.status, 200, "{}", r.text());
    json(&r)["version"].as_u64().unwrap()
}

#[test]
fn a_tenant_with_only_an_api_key_uploads_finds_serves_and_takes_down() {
    let data = data_dir("tenant-api");
    let acme = api_key(&data, "acme");
    let other = api_key(&data, "other");
    let s = Server::start(&data, &["--upload-ttl", "3"]);
    let image = png(800, 600, 3);

    // Credentials.
    let assets = "/api/v1/tenants/acme/assets";
    let r = s.get(assets);
    assert_eq!((r.status, r.header("www-authenticate")), (401, "Bearer"));
    assert!(json(&r)["error"].is_string());
    assert_eq!(
        call(&s, "GET", assets, &other, "").status,
        403,
        "another tenant's key"
    );
    // Another last character (a key ending in `A` would otherwise be forged into itself).
    let last = if acme.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &acme[..acme.len() - 1]);
    assert_eq!(call(&s, "GET", assets, &forged, "").status, 401);
    assert_eq!(
        call(&s, "GET", assets, TOKEN, "").status,
        200,
        "the admin token"
    );

    // Upload through the signed URL, then wait until it is ready.
    let v1 = upload(&s, &acme, "acme", "photos/a.png", &image);
    assert_eq!(v1, 1);
    let r = call(
        &s,
        "GET",
        &format!("{assets}/photos/a.png?wait=20"),
        &acme,
        "",
    );
    let view = json(&r);
    assert_eq!(
        (r.status, view["status"].as_str()),
        (200, Some("ready")),
        "{view}"
    );
    let variants = view["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 8);
    let url = variants[0]["url"].as_str().unwrap();
    let img = s.get(url.strip_prefix(&s.url()).expect("absolute URL"));
    assert_eq!(img.status, 200, "{url}");
    assert!(img.header("content-type").starts_with("image/"));
    assert_eq!(
        call(&s, "GET", &format!("{assets}/photos/zz.png"), &acme, "").status,
        404
    );
    assert_eq!(
        call(
            &s,
            "GET",
            &format!("{assets}/photos/a.png?version=7"),
            &acme,
            ""
        )
        .status,
        404
    );

    // Upload URLs are scoped: altered, other type, over the declared size, expired.
    let g = grant(&s, &acme, "acme", "photos/b.png", image.len());
    let url = g["upload"]["url"].as_str().unwrap().to_string();
    let altered =
        serde_json::json!({"upload": {"url": url.replace("photos/b.png", "photos/c.png")}});
    assert_eq!(put(&s, &altered, "image/png", &image).status, 403);
    let other_tenant = serde_json::json!({"upload": {"url": url.replace("/acme/", "/other/")}});
    assert_eq!(put(&s, &other_tenant, "image/png", &image).status, 403);
    let longer = serde_json::json!({"upload": {"url": url.replace(&format!("len={}", image.len()), "len=99999999")}});
    assert_eq!(put(&s, &longer, "image/png", &image).status, 403);
    assert_eq!(
        put(&s, &g, "image/jpeg", &image).status,
        403,
        "other Content-Type"
    );
    let mut too_long = image.clone();
    too_long.push(0);
    assert_eq!(put(&s, &g, "image/png", &too_long).status, 413);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let expired = put(&s, &g, "image/png", &image);
    assert_eq!(expired.status, 403, "{}", expired.text());
    let too_big = format!(
        r#"{{"key":"x.png","content_type":"image/png","content_length":{}}}"#,
        1u64 << 40
    );
    assert_eq!(
        call(&s, "POST", "/api/v1/tenants/acme/uploads", &acme, &too_big).status,
        413
    );
    let bad = r#"{"key":"x.svg","content_type":"image/svg+xml","content_length":10}"#;
    assert_eq!(
        call(&s, "POST", "/api/v1/tenants/acme/uploads", &acme, bad).status,
        400
    );
    let huge_body = "x".repeat(20_000);
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/tenants/acme/uploads",
            &acme,
            &huge_body
        )
        .status,
        413
    );

    // Listing, paged in key order.
    upload(&s, &acme, "acme", "photos/b.png", &image);
    upload(&s, &acme, "acme", "photos/c.png", &image);
    upload(&s, &acme, "acme", "other/d.png", &image);
    let page = json(&call(
        &s,
        "GET",
        &format!("{assets}?prefix=photos/&limit=2"),
        &acme,
        "",
    ));
    let keys: Vec<&str> = page["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["photos/a.png", "photos/b.png"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = json(&call(
        &s,
        "GET",
        &format!("{assets}?prefix=photos/&limit=2&cursor={cursor}"),
        &acme,
        "",
    ));
    assert_eq!(page2["assets"][0]["key"], "photos/c.png");
    assert!(page2["next_cursor"].is_null(), "{page2}");

    // The latest alias follows new versions.
    let latest = "/img/acme/latest/photos/a.png?w=640&fmt=webp";
    let r = s.get(latest);
    assert_eq!(
        (r.status, r.header("location")),
        (302, "/img/acme/v1/photos/a.png?w=640&fmt=webp")
    );
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    upload(&s, &acme, "acme", "photos/a.png", &png(640, 480, 9));
    call(
        &s,
        "GET",
        &format!("{assets}/photos/a.png?wait=20"),
        &acme,
        "",
    );
    assert_eq!(
        s.get(latest).header("location"),
        "/img/acme/v2/photos/a.png?w=640&fmt=webp"
    );
    assert_eq!(s.get(s.get(latest).header("location")).status, 200);

    // Takedown requests: the tenant's own, reason tenant; dmca needs the admin token.
    let takedowns = "/api/v1/tenants/acme/takedowns";
    let dmca = r#"{"key":"photos/a.png","reason":"dmca","requester":"legal@example.com"}"#;
    assert_eq!(call(&s, "POST", takedowns, &acme, dmca).status, 403);
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/tenants/other/takedowns",
            &acme,
            r#"{"key":"photos/a.png"}"#
        )
        .status,
        403
    );
    let r = call(
        &s,
        "POST",
        takedowns,
        &acme,
        r#"{"key":"photos/a.png","action":"takedown","request_id":"req-1"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let accepted = json(&r);
    assert_eq!(accepted["request_id"], "req-1");
    let status_url = accepted["status_url"].as_str().unwrap();
    let record = json(&call(
        &s,
        "GET",
        status_url.strip_prefix(&s.url()).unwrap(),
        &acme,
        "",
    ));
    assert_eq!(record["status"], "finished", "{record}");
    assert_eq!(record["records"][0]["reason"], "tenant");
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v1/tenants/other/takedowns/req-1",
            &other,
            ""
        )
        .status,
        404
    );
    let reused = call(
        &s,
        "POST",
        takedowns,
        &acme,
        r#"{"key":"photos/b.png","request_id":"req-1"}"#,
    );
    assert_eq!(reused.status, 409);
    assert_eq!(s.get(latest).status, 404, "gone after the takedown");
    let view = json(&call(
        &s,
        "GET",
        &format!("{assets}/photos/a.png"),
        &acme,
        "",
    ));
    assert_eq!(view["status"], "taken_down");
    assert_eq!(
        call(&s, "POST", takedowns, TOKEN, dmca).status,
        202,
        "the admin may"
    );

    // A removed key stops working at once.
    tenant_cli(&data, &["api-key-remove", "acme", &acme]);
    assert_eq!(call(&s, "GET", assets, &acme, "").status, 401);
    s.stop();
}

#[test]
fn a_signing_tenants_urls_are_signed_and_its_latest_alias_needs_a_signature() {
    let data = data_dir("tenant-api-signed");
    let acme = api_key(&data, "acme");
    let cli = |args: &[&str]| tenant_cli(&data, args);
    cli(&["add", "acme"]);
    cli(&["key-add", "acme", "k1", "--secret", "s3cret"]);
    cli(&["sign", "acme", "on"]);
    let s = Server::start(&data, &[]);
    upload(&s, &acme, "acme", "a.png", &png(400, 300, 1));
    let view = json(&call(
        &s,
        "GET",
        "/api/v1/tenants/acme/assets/a.png?wait=20",
        &acme,
        "",
    ));
    let url = view["variants"][0]["url"].as_str().unwrap();
    assert!(url.contains("&kid=k1&sig="), "{url}");
    let target = url.strip_prefix(&s.url()).unwrap();
    assert_eq!(s.get(target).status, 200);
    let (path, _) = target.split_once('?').unwrap();
    assert_eq!(s.get(path).status, 403, "unsigned");
    assert_eq!(s.get("/img/acme/latest/a.png?w=320").status, 403);
    s.stop();
}

#[test]
fn the_tenant_api_is_rate_limited_with_a_json_429() {
    let data = data_dir("tenant-api-limited");
    let acme = api_key(&data, "acme");
    let s = Server::start(&data, &["--rate-limit", "3"]);
    let assets = "/api/v1/tenants/acme/assets";
    let answers: Vec<Resp> = (0..6).map(|_| call(&s, "GET", assets, &acme, "")).collect();
    let limited = answers
        .iter()
        .find(|r| r.status == 429)
        .expect("a 429 within 6 calls at 3 per 5 minutes");
    assert_eq!(json(limited)["error"], "rate limited");
    assert!(!limited.header("retry-after").is_empty());
    s.stop();
}
