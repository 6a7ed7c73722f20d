//! `pixelfront tenant …` on a scratch data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

use std::process::{Command, Output};

fn tenant(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .arg("tenant")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run pixelfront tenant")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{err}");
}

#[test]
fn tenant_verbs_manage_the_tenants_file() {
    let data = std::env::temp_dir().join(format!("pixelfront-tenant-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    ok(&tenant(&data, &["add", "acme"]));
    refused(&tenant(&data, &["add", "acme"]), "exists");
    refused(&tenant(&data, &["add", "Bad_Tenant"]), "bad tenant");
    refused(&tenant(&data, &["sign", "acme", "on"]), "has no key");
    let secret = ok(&tenant(&data, &["key-add", "acme", "k1"]));
    assert_eq!(secret.trim().len(), 64, "generated secret: {secret}");
    ok(&tenant(
        &data,
        &["key-add", "acme", "k2", "--secret", "given"],
    ));
    refused(&tenant(&data, &["key-add", "acme", "bad kid"]), "key id");
    ok(&tenant(&data, &["sign", "acme", "on"]));
    ok(&tenant(&data, &["referer-add", "acme", "*.Shop.example"]));
    refused(
        &tenant(&data, &["referer-add", "acme", "https://x.example/"]),
        "bad host",
    );

    let shown: serde_json::Value =
        serde_json::from_str(&ok(&tenant(&data, &["show", "acme"]))).expect("json");
    assert_eq!(shown["sign"], true);
    assert_eq!(shown["keys"]["k1"], secret.trim());
    assert_eq!(shown["keys"]["k2"], "given");
    assert_eq!(shown["referers"], serde_json::json!(["*.shop.example"]));

    // Rotation: retire k1, k2 stays; the last key of a signing tenant cannot go.
    ok(&tenant(&data, &["key-remove", "acme", "k1"]));
    refused(&tenant(&data, &["key-remove", "acme", "k2"]), "last key");
    let list = ok(&tenant(&data, &["list"]));
    assert_eq!(
        list.trim(),
        "acme\tsign=on\tkeys=[k2]\treferers=[*.shop.example]"
    );
    ok(&tenant(
        &data,
        &["referer-remove", "acme", "*.shop.example"],
    ));
    ok(&tenant(&data, &["remove", "acme"]));
    assert_eq!(ok(&tenant(&data, &["list"])).trim(), "");
    refused(&tenant(&data, &["show", "acme"]), "no tenant");
    let _ = std::fs::remove_dir_all(&data);
}
