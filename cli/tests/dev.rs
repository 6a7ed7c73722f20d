//! `pixelfront dev` over HTTP: each test starts the real binary on 127.0.0.1 (a free port,
//! its own data directory) and stops it by its PID.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, png, Server, TOKEN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn upload_render_serve_cache_conditional_and_rejects() {
    let data = data_dir("serve");
    let s = Server::start(&data, &[]);
    assert_eq!(s.get("/healthz").status, 200);

    let unauthorized = s.request("PUT", "/originals/acme/a.png", &[], b"x");
    assert_eq!(
        (unauthorized.status, unauthorized.header("www-authenticate")),
        (401, "Bearer")
    );
    let r = s.upload("acme/photos/a.png", &png(900, 600, 1));
    assert_eq!(r.status, 202, "{}", r.text());
    let accepted: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(accepted["version"], 1);
    // A newcomer tenant is created by its first upload, with the defaults.
    let tenants = std::fs::read_to_string(data.join("tenants.json")).expect("tenants.json");
    assert!(tenants.contains("\"acme\""), "{tenants}");

    let m = s.settled("acme/photos/a.png");
    assert_eq!(m["status"], "ready", "{m}");
    let variants = m["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 8);
    let thumb = variants
        .iter()
        .find(|v| v["name"] == "thumb")
        .expect("thumb");
    assert_eq!(
        (thumb["width"].as_u64(), thumb["height"].as_u64()),
        (Some(160), Some(160))
    );
    assert!(data
        .join("derived/acme/v1/photos/a.png/w640-q80.webp@")
        .is_file());

    // A standard variant: the stored derivative, then the cache.
    let first = s.get("/img/acme/v1/photos/a.png?w=640&fmt=webp");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("content-type"), "image/webp");
    assert_eq!(
        first.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(first.header("x-cache"), "Miss");
    let again = s.get("/img/acme/v1/photos/a.png?W=600&utm_source=x&fmt=WEBP&q=80");
    assert_eq!((again.header("x-cache"), &again.body), ("Hit", &first.body));
    let etag = first.header("etag").to_string();
    let not_modified = s.request(
        "GET",
        "/img/acme/v1/photos/a.png?w=640&fmt=webp",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    // The transformer Lambda's headers, from the one shared HTTP mapping.
    assert_eq!(
        first.header("x-amz-meta-cache-tag"),
        "asset:acme/photos/a.png"
    );
    assert_eq!(first.header("x-pixelfront-source"), "stored");
    let head = s.request("HEAD", "/img/acme/v1/photos/a.png?w=640&fmt=webp", &[], b"");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), first.body.len().to_string());
    let post = s.request("POST", "/img/acme/v1/photos/a.png", &[], b"");
    assert_eq!((post.status, post.header("allow")), (405, "GET, HEAD"));

    // fmt=auto follows Accept; a non-standard request is rendered on demand.
    let avif = s.request(
        "GET",
        "/img/acme/v1/photos/a.png?w=300",
        &[("Accept", "image/avif,*/*")],
        b"",
    );
    assert_eq!(
        (avif.status, avif.header("content-type")),
        (200, "image/avif")
    );
    assert!(data
        .join("derived/acme/v1/photos/a.png/w320-q60.avif@")
        .is_file());
    let odd = s.get("/img/acme/v1/photos/a.png?w=333&h=200&fmt=png");
    assert_eq!(odd.status, 200);
    let img = image::load_from_memory(&odd.body).expect("png");
    assert_eq!((img.width(), img.height()), (480, 240));
    assert!(data
        .join("derived/acme/v1/photos/a.png/w480-h240.png@")
        .is_file());

    for (target, status, reason) in [
        (
            "/img/acme/v1/photos/a.png?w=0",
            400,
            "bad w: expected an integer 1..8192",
        ),
        (
            "/img/acme/v1/photos/a.png?fmt=tiff",
            400,
            "bad fmt: expected jpeg, jpg, webp, avif, png or auto",
        ),
        ("/img/acme/v01/photos/a.png", 400, "bad version"),
        ("/img/acme/v1/photos/%2e%2e/a.png", 400, "bad key"),
        ("/img/acme/v2/photos/a.png", 404, "not found"),
        ("/img/other/v1/photos/a.png", 404, "not found"),
        ("/manifest/acme/photos/none.png", 404, "not found"),
    ] {
        let r = s.get(target);
        assert_eq!((r.status, r.text().trim()), (status, reason), "{target}");
    }
    assert_eq!(s.metric("pixelfront_renders_total{kind=\"standard\"}"), 8.0);
    assert_eq!(
        s.metric("pixelfront_renders_total{kind=\"on_demand\"}"),
        1.0
    );
    assert!(s.metric("pixelfront_edge_requests_total{result=\"hit\"}") >= 2.0);
    assert!(s.metric("pixelfront_edge_requests_total{result=\"reject\"}") >= 6.0);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn fifty_concurrent_cold_misses_render_once() {
    let data = data_dir("coalesce");
    let s = Server::start(&data, &["--rate-limit", "0"]);
    assert_eq!(s.upload("acme/c.png", &png(1200, 800, 2)).status, 202);
    assert_eq!(s.settled("acme/c.png")["status"], "ready");
    let target = "/img/acme/v1/c.png?w=1000&fmt=jpeg&q=65";
    let bodies: Vec<(u16, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                scope.spawn(|| {
                    let r = s.get(target);
                    (r.status, r.body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(bodies.iter().all(|(st, b)| *st == 200 && *b == bodies[0].1));
    assert_eq!(
        s.metric("pixelfront_renders_total{kind=\"on_demand\"}"),
        1.0
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn versions_failures_takedown_and_restart() {
    let data = data_dir("lifecycle");
    let s = Server::start(&data, &[]);
    assert_eq!(s.upload("acme/v.png", &png(400, 300, 3)).status, 202);
    assert_eq!(s.settled("acme/v.png")["version"], 1);
    let r = s.upload("acme/v.png", &png(500, 300, 4));
    assert_eq!(r.status, 202);
    let m = s.settled("acme/v.png");
    assert_eq!(
        (m["version"].as_u64(), m["status"].as_str()),
        (Some(2), Some("ready"))
    );
    let v1 = s.get("/img/acme/v1/v.png?fmt=png");
    let v2 = s.get("/img/acme/v2/v.png?fmt=png");
    let dims = |b: &[u8]| {
        let i = image::load_from_memory(b).expect("png");
        (i.width(), i.height())
    };
    assert_eq!((dims(&v1.body), dims(&v2.body)), ((400, 300), (500, 300)));

    // A corrupt upload fails with a reason; the server stays healthy.
    assert_eq!(
        s.upload("acme/bad.jpg", b"\xff\xd8\xff\xe0 nope").status,
        202
    );
    let bad = s.settled("acme/bad.jpg");
    assert_eq!(
        (bad["status"].as_str(), bad["error_type"].as_str()),
        (Some("failed"), Some("ImageCorrupt"))
    );
    assert!(bad["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(s.get("/healthz").status, 200);

    // Restart: everything is still there, served without rendering again.
    s.stop();
    let s = Server::start(&data, &[]);
    assert_eq!(s.manifest("acme/v.png")["version"], 2);
    let again = s.get("/img/acme/v1/v.png?fmt=png");
    assert_eq!((again.status, &again.body), (200, &v1.body));
    assert_eq!(
        s.metric("pixelfront_renders_total{kind=\"on_demand\"}"),
        0.0
    );

    // Takedown: admin only, a reason required, then nothing of the asset is served.
    let unauth = s.request("POST", "/takedown/acme/v.png", &[], br#"{"reason":"dmca"}"#);
    assert_eq!(unauth.status, 401);
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str())];
    let no_reason = s.request("POST", "/takedown/acme/v.png", &headers, b"{}");
    assert_eq!(no_reason.status, 400, "{}", no_reason.text());
    assert!(no_reason.text().contains("reason"), "{}", no_reason.text());
    let body = br#"{"reason":"dmca","requester":"legal@example.com","request_id":"req-1"}"#;
    let r = s.request("POST", "/takedown/acme/v.png", &headers, body);
    assert_eq!(r.status, 200, "{}", r.text());
    // The answer is the takedown workflow's request summary, as on AWS.
    let summary: serde_json::Value = serde_json::from_slice(&r.body).expect("summary");
    assert_eq!(summary["request_id"], "req-1");
    assert_eq!(summary["action"], "takedown");
    assert_eq!(summary["assets"], serde_json::json!(["acme/v.png"]));
    assert!(
        summary["deleted"].as_u64().is_some_and(|n| n >= 18),
        "{summary}"
    );
    // The audit record is the shared one: every deleted original version and derivative.
    let audit = s.request("GET", "/audit/acme/v.png", &headers, b"");
    assert_eq!(audit.status, 200, "{}", audit.text());
    let records: serde_json::Value = serde_json::from_slice(&audit.body).expect("audit");
    let record = &records[0];
    assert_eq!(record["status"], "taken_down");
    assert_eq!(record["reason"], "dmca");
    assert_eq!(record["versions"], serde_json::json!([1, 2]));
    assert_eq!(
        record["deleted_originals"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(record["deleted_derivatives"]
        .as_array()
        .is_some_and(|d| d.len() >= 16));
    for target in ["/img/acme/v1/v.png?fmt=png", "/img/acme/v2/v.png?w=100"] {
        let r = s.get(target);
        assert_eq!((r.status, r.text().trim()), (404, "removed"), "{target}");
    }
    assert_eq!(s.manifest("acme/v.png")["status"], "taken_down");
    assert!(!data.join("derived/acme/v1/v.png").exists());
    let originals: Vec<_> = std::fs::read_dir(data.join("originals/acme"))
        .map(|d| d.filter_map(|e| e.ok()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with("v.png"))
        .collect();
    assert!(originals.is_empty());
    // The same request id again: the first summary, nothing changed.
    let repeat = s.request("POST", "/takedown/acme/v.png", &headers, body);
    assert_eq!((repeat.status, repeat.body), (200, r.body));
    // Erasure of the failed upload, with the workflow's input in the body.
    let r = s.request(
        "POST",
        "/erase",
        &headers,
        br#"{"tenant":"acme","key":"bad.jpg","reason":"gdpr","requester":"dpo@example.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.manifest("acme/bad.jpg")["status"], "erased");
    assert_eq!(s.get("/img/acme/v1/bad.jpg").status, 404);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn signed_tenant_hotlinks_and_rate_limit() {
    let data = data_dir("policy");
    std::fs::write(
        data.join("tenants.json"),
        r#"{"shop": {"sign": true, "keys": {"k1": "s3cret"}, "referers": ["shop.example"]}}"#,
    )
    .expect("tenants");
    let s = Server::start(&data, &["--rate-limit", "40"]);
    assert_eq!(s.upload("shop/p.png", &png(300, 200, 5)).status, 202);
    assert_eq!(s.settled("shop/p.png")["status"], "ready");

    let unsigned = s.get("/img/shop/v1/p.png?w=160&fmt=webp");
    assert_eq!(
        (unsigned.status, unsigned.text().trim()),
        (403, "signature required")
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let signed = pixelfront_shared::sign::sign_uri(
        "/img/shop/v1/p.png",
        "w=160&fmt=webp",
        "k1",
        "s3cret",
        exp,
    )
    .expect("sign");
    let ok = s.request(
        "GET",
        &signed,
        &[("Referer", "https://shop.example/cart")],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let hotlink = s.request("GET", &signed, &[("Referer", "https://evil.example/")], b"");
    assert_eq!(
        (hotlink.status, hotlink.text().trim()),
        (403, "hotlink refused")
    );
    let forged = signed.replace("w=160", "w=170");
    assert_eq!(s.get(&forged).text().trim(), "bad signature");

    // 40 per five minutes per IP: the rest of the burst is refused with 429.
    let statuses: Vec<u16> = (0..45).map(|_| s.get(&signed).status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_killed_process_leaves_no_half_written_object_and_resumes_its_renders() {
    let data = data_dir("killed");
    let s = Server::start(&data, &[]);
    // Large enough that the render is still running when the process dies.
    assert_eq!(s.upload("acme/big.png", &png(3000, 2000, 6)).status, 202);
    let mut s = s;
    let _ = s.child.kill(); // SIGKILL: no graceful anything
    let _ = s.child.wait();
    // A write cut short leaves at most a temporary file, which start-up removes.
    std::fs::write(data.join("derived/.tmp-crashed-0"), b"partial").expect("leftover");
    let s = Server::start(&data, &[]);
    let m = s.settled("acme/big.png");
    assert_eq!(
        (m["status"].as_str(), m["variants"].as_array().map(Vec::len)),
        (Some("ready"), Some(8))
    );
    assert!(!data.join("derived/.tmp-crashed-0").exists());
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn ingest_uploads_a_folder_and_prints_the_urls() {
    let data = data_dir("ingest");
    let folder = data.join("photos");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("one.png"), png(320, 240, 7)).expect("write");
    std::fs::write(folder.join("two photo.png"), png(200, 200, 8)).expect("write");
    std::fs::write(folder.join("notes.txt"), b"not an image").expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .args(["dev", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.join("store"))
        .arg("--ingest")
        .arg(&folder)
        .env("PIXELFRONT_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let stdout = child.stdout.take().expect("stdout");
    let mut rows = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line.starts_with("manifests:") {
            break;
        }
        rows.push(line);
    }
    assert_eq!(rows.len(), 3, "{rows:?}"); // header + two images, the .txt skipped
    assert!(
        rows[1].starts_with("one.png") && rows[1].contains(" ready "),
        "{rows:?}"
    );
    assert!(
        rows[2].starts_with("two-photo.png") && rows[2].contains(" ready "),
        "{rows:?}"
    );
    let url = rows[1].split_whitespace().last().expect("url").to_string();
    let rest = url.strip_prefix("http://").expect("http url");
    let (addr, target) = rest.split_at(rest.find('/').expect("path"));
    let s = Server {
        child,
        addr: addr.to_string(),
    };
    let r = s.get(target);
    assert_eq!((r.status, r.header("content-type")), (200, "image/webp"));
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_admin_token_comes_from_the_flag_or_is_generated_and_printed() {
    let data = data_dir("token");
    let spawn = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
            .args(["dev", "--addr", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(args)
            .env_remove("PIXELFRONT_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (mut addr, mut token) = (None, None);
        while addr.is_none() || (args.is_empty() && token.is_none()) {
            let line = lines.next().expect("server output").expect("line");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_string);
            }
            if line.contains("admin token") {
                token = line.rsplit(' ').next().map(str::to_string);
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let s = Server {
            child,
            addr: addr.expect("address"),
        };
        (s, token)
    };
    let put = |s: &Server, token: &str| {
        let auth = format!("Bearer {token}");
        s.request(
            "PUT",
            "/originals/acme/t.png",
            &[("Authorization", &auth)],
            &png(64, 64, 9),
        )
        .status
    };

    let (s, printed) = spawn(&["--admin-token", "flag-token"]);
    assert_eq!(printed, None, "a given token is not printed");
    assert_eq!(put(&s, "flag-token"), 202);
    assert_eq!(put(&s, "wrong"), 401);
    s.stop();

    let (s, printed) = spawn(&[]);
    let token = printed.expect("generated token printed");
    assert_eq!(token.len(), 32, "{token}");
    assert_eq!(put(&s, &token), 202);
    assert_eq!(put(&s, "flag-token"), 401);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}
