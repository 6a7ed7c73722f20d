//! The web console's server side on the local stack (docs/console.md): its embedded files
//! with their security headers, `whoami`, the admin-only tenant routes (and that every one of
//! them refuses a tenant key), and the image headers its playground reads. The pages themselves
//! are driven in headless Chromium by `tests/browser`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{call, data_dir, json, png, Server, TOKEN};

#[test]
fn the_console_is_served_from_the_binary_with_its_policy() {
    let s = Server::start(&data_dir("console-files"), &[]);
    let r = s.get("/");
    assert_eq!((r.status, r.header("location")), (302, "/console/"));
    let r = s.get("/console/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert!(r.text().contains("<html"), "{}", r.text());
    let csp = r.header("content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("x-frame-options"), "DENY");
    // Every script the page names is served, as JavaScript.
    let page = r.text();
    let scripts: Vec<&str> = page
        .split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|src| src.ends_with(".js"))
        .collect();
    assert!(!scripts.is_empty(), "{page}");
    for src in scripts {
        let path = format!("/console/{}", src.trim_start_matches("./"));
        let r = s.get(&path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").starts_with("text/javascript"));
    }
    assert_eq!(s.get("/console/nope.js").status, 404);
    assert_eq!(s.get("/console/../Cargo.toml").status, 404);
    assert_eq!(s.get("/console/%2e%2e/Cargo.toml").status, 404);
    s.stop();
}

#[test]
fn tenant_routes_need_the_admin_token_and_edit_the_tenants_file() {
    let data = data_dir("console-tenants");
    let s = Server::start(&data, &[]);

    // whoami: the admin token.
    let r = call(&s, "GET", "/api/v1/whoami", TOKEN, "");
    assert_eq!(
        (r.status, json(&r)["caller"].as_str()),
        (200, Some("admin"))
    );

    // A new tenant, then each edit.
    let r = call(&s, "POST", "/api/v1/tenants", TOKEN, r#"{"tenant":"acme"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = call(&s, "POST", "/api/v1/tenants", TOKEN, r#"{"tenant":"acme"}"#);
    assert_eq!(r.status, 400, "exists: {}", r.text());
    let patch = |body: &str| call(&s, "PATCH", "/api/v1/tenants/acme", TOKEN, body);
    let r = patch(r#"{"add_key":"k1"}"#);
    let v = json(&r);
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["keys"], serde_json::json!(["k1"]));
    let secret = v["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let r = patch(r#"{"sign":true}"#);
    assert_eq!(json(&r)["sign"], true);
    assert!(json(&r).get("secret").is_none(), "a secret is shown once");
    let r = patch(r#"{"add_referer":"Shop.Example.com"}"#);
    assert_eq!(
        json(&r)["referers"],
        serde_json::json!(["shop.example.com"])
    );
    let r = patch(r#"{"sign":true,"add_referer":"x.example"}"#);
    assert_eq!(r.status, 400, "one change at a time");
    let r = patch(r#"{"frobnicate":1}"#);
    assert_eq!(r.status, 400);
    // The file on disk holds the secret; the list never shows it.
    let file = std::fs::read_to_string(data.join("tenants.json")).unwrap();
    assert!(file.contains(&secret));
    let r = call(&s, "GET", "/api/v1/tenants", TOKEN, "");
    let list = r.text();
    assert!(!list.contains(&secret), "{list}");
    let acme = json(&r)["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "acme")
        .cloned()
        .unwrap();
    assert_eq!(
        (acme["sign"].as_bool(), acme["keys"][0].as_str()),
        (Some(true), Some("k1"))
    );
    // Signing applies at once: an unsigned image URL of acme is refused.
    assert_eq!(s.get("/img/acme/v1/a.png?w=100").status, 403);
    let r = patch(r#"{"sign":false}"#);
    assert_eq!(json(&r)["sign"], false);
    let r = patch(r#"{"remove_referer":"shop.example.com"}"#);
    assert_eq!(json(&r)["referers"], serde_json::json!([]));
    let r = patch(r#"{"retire_key":"k1"}"#);
    assert_eq!(json(&r)["keys"], serde_json::json!([]));
    let r = patch(r#"{"retire_key":"k1"}"#);
    assert_eq!(r.status, 400, "{}", r.text());

    // API keys: made (shown once), listed by id, usable, removed.
    let r = call(&s, "POST", "/api/v1/tenants/acme/api-keys", TOKEN, "");
    assert_eq!(r.status, 201, "{}", r.text());
    let made = json(&r);
    let (key, kid) = (made["key"].as_str().unwrap(), made["kid"].as_str().unwrap());
    let r = call(&s, "GET", "/api/v1/whoami", key, "");
    assert_eq!(json(&r)["tenant"], "acme");
    let r = call(&s, "GET", "/api/v1/tenants", TOKEN, "");
    assert!(r.text().contains(kid) && !r.text().contains(key));

    // A tenant key, a wrong token and no token reach none of the tenant routes.
    for (method, path) in [
        ("GET", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants"),
        ("PATCH", "/api/v1/tenants/acme"),
        ("POST", "/api/v1/tenants/acme/api-keys"),
        ("DELETE", "/api/v1/tenants/acme/api-keys/0000"),
    ] {
        let r = call(&s, method, path, key, r#"{"tenant":"evil"}"#);
        assert_eq!(r.status, 401, "{method} {path} with a tenant key");
        assert!(json(&r)["error"].is_string());
        let r = s.request(method, path, &[], b"");
        assert_eq!(r.status, 401, "{method} {path} with no token");
    }
    let r = call(&s, "PUT", "/api/v1/tenants/acme", TOKEN, "");
    assert_eq!(r.status, 405);
    for (target, body, status) in [
        ("/api/v1/tenants/Bad!", r#"{"sign":true}"#.to_string(), 400),
        ("/api/v1/tenants/acme", "x".repeat(5000), 413),
    ] {
        assert_eq!(
            call(&s, "PATCH", target, TOKEN, &body).status,
            status,
            "{target}"
        );
    }

    let path = format!("/api/v1/tenants/acme/api-keys/{kid}");
    assert_eq!(call(&s, "DELETE", &path, TOKEN, "").status, 200);
    assert_eq!(call(&s, "DELETE", &path, TOKEN, "").status, 404);
    assert_eq!(call(&s, "GET", "/api/v1/whoami", key, "").status, 401);
    s.stop();
}

#[test]
fn images_name_their_normalized_key_and_a_render_its_time() {
    let s = Server::start(&data_dir("console-headers"), &[]);
    s.upload_accepted("acme/a.png", &png(900, 600, 7));
    s.settled("acme/a.png");
    let target = "/img/acme/v1/a.png?fmt=webp&w=333";
    let r = s.get(target);
    assert_eq!(r.status, 200);
    let key = r.header("x-pixelfront-key").to_string();
    assert!(
        key.starts_with("acme/v1/a.png/w") && key.ends_with(".webp"),
        "{key}"
    );
    assert_eq!(r.header("x-cache"), "Miss");
    let timing = r.header("server-timing");
    assert!(timing.starts_with("render;dur="), "{timing}");
    // A hit names the same key and no render.
    let r = s.get("/img/acme/v1/a.png?w=333&fmt=webp");
    assert_eq!(
        (r.header("x-cache"), r.header("x-pixelfront-key")),
        ("Hit", key.as_str())
    );
    assert_eq!(r.header("server-timing"), "");
    s.stop();
}
