//! `pixelfront sign` and `pixelfront verify` through the binary, and the cross-check with the
//! JavaScript twin (`edge/sign.mjs`, the signing code of the CloudFront Function's tests):
//! both must produce the same URL, and a JS-made URL must verify in Rust.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pixelfront"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

fn policy_file(name: &str, json: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pf-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join(name);
    std::fs::write(&path, json).expect("write policy");
    path
}

const URI: &str = "/img/acme/v3/products/red-shoe.jpg?w=300&fmt=webp&utm_source=mail";
const EXP: &str = "2000000000";

fn sign(kid: &str, secret: &str) -> Output {
    bin()
        .args(["sign", "--kid", kid, "--expires-at", EXP, URI])
        .env("PIXELFRONT_SIGNING_SECRET", secret)
        .output()
        .expect("run pixelfront sign")
}

fn verify(policy: &Path, uri: &str, now: &str, referer: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.args(["verify", "--policy"])
        .arg(policy)
        .args(["--now", now]);
    if let Some(r) = referer {
        cmd.args(["--referer", r]);
    }
    cmd.arg(uri).output().expect("run pixelfront verify")
}

#[test]
fn signed_urls_verify_until_they_expire_and_through_a_rotation() {
    let out = sign("k2026a", "old-secret");
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = stdout(&out);
    assert!(
        signed.starts_with(&format!("{URI}&exp={EXP}&kid=k2026a&sig=")),
        "{signed}"
    );

    let overlap = policy_file(
        "overlap.json",
        r#"{"sign":true,"keys":{"k2026a":"old-secret","k2026b":"new-secret"},"referers":["shop.example.com"]}"#,
    );
    let retired = policy_file(
        "retired.json",
        r#"{"sign":true,"keys":{"k2026b":"new-secret"}}"#,
    );
    let ok = verify(&overlap, &signed, "1999999999", None);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "ok");

    for (policy, uri, now, referer, reason) in [
        (&overlap, signed.clone(), "2000000000", None, "expired"),
        (&retired, signed.clone(), "1999999999", None, "unknown key"),
        (
            &overlap,
            signed.replace("w=300", "w=640"),
            "1999999999",
            None,
            "bad signature",
        ),
        (
            &overlap,
            signed.replace("/img/acme/", "/img/globex/"),
            "1999999999",
            None,
            "bad signature",
        ),
        (
            &overlap,
            URI.to_string(),
            "1999999999",
            None,
            "signature required",
        ),
        (
            &overlap,
            signed.clone(),
            "1999999999",
            Some("https://evil.example/"),
            "hotlink refused",
        ),
    ] {
        let out = verify(policy, &uri, now, referer);
        assert_eq!(out.status.code(), Some(2), "{uri}");
        assert_eq!(stderr(&out), reason, "{uri}");
    }

    // The new key works during and after the rotation.
    let new = stdout(&sign("k2026b", "new-secret"));
    for policy in [&overlap, &retired] {
        assert!(verify(policy, &new, "1999999999", None).status.success());
    }
}

#[test]
fn sign_refuses_what_the_edge_would_reject() {
    let out = bin()
        .args(["sign", "--kid", "k1", "/img/acme/v3/a.jpg?w=0"])
        .env("PIXELFRONT_SIGNING_SECRET", "s")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("bad w"), "{}", stderr(&out));

    let out = bin()
        .args(["sign", "--kid", "bad kid!", "/img/acme/v3/a.jpg"])
        .env("PIXELFRONT_SIGNING_SECRET", "s")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));

    let out = bin()
        .args(["sign", "--kid", "k1", "/img/acme/v3/a.jpg"])
        .env_remove("PIXELFRONT_SIGNING_SECRET")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing secret is a usage error"
    );

    let bad_policy = policy_file("bad.json", "{not json");
    let out = verify(&bad_policy, URI, "1", None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rust_and_javascript_sign_identically_and_verify_each_other() {
    let js = Command::new("node")
        .arg(repo().join("edge/sign.mjs"))
        .args([
            "--kid",
            "k2026a",
            "--secret",
            "old-secret",
            "--exp",
            EXP,
            URI,
        ])
        .output()
        .expect("run node edge/sign.mjs");
    assert!(js.status.success(), "{}", stderr(&js));
    let js_url = stdout(&js);
    let rust_url = stdout(&sign("k2026a", "old-secret"));
    assert_eq!(js_url, rust_url);

    let policy = policy_file(
        "cross.json",
        r#"{"sign":true,"keys":{"k2026a":"old-secret"}}"#,
    );
    let out = verify(&policy, &js_url, "1999999999", None);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn sign_refuses_an_expiry_the_edge_would_never_accept() {
    let run = |args: &[&str]| {
        bin()
            .arg("sign")
            .args(["--kid", "k1"])
            .args(args)
            .arg("/img/acme/v3/a.jpg?w=300")
            .env("PIXELFRONT_SIGNING_SECRET", "s")
            .output()
            .expect("run pixelfront sign")
    };
    // More than 10 digits, past the edge's largest exp, already past, or now: refused.
    for (args, message) in [
        (&["--expires-at", "10000000000"][..], "beyond"),
        (&["--expires-at", "18446744073709551615"], "beyond"),
        (&["--expires-in", "18446744073709551615"], "beyond"),
        (&["--expires-at", "1000000000"], "not in the future"),
        (&["--expires-at", "0"], "not in the future"),
        (&["--expires-in", "0"], "not in the future"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stdout(&out).is_empty(), "{args:?} printed a URL");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    // The largest exp the edge accepts, and the default lifetime, sign.
    for args in [&["--expires-at", "9999999999"][..], &[]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let url = stdout(&out);
        let exp = url.split("exp=").nth(1).and_then(|r| r.split('&').next());
        assert!(exp.is_some_and(|e| e.len() <= 10), "{url}");
    }
}
