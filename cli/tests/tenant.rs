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

#[test]
fn init_and_load_write_the_default_and_a_tenants_file() {
    let data = std::env::temp_dir().join(format!("pixelfront-tenant-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("dir");
    ok(&tenant(&data, &["init", "--closed"]));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&tenant(&data, &["show", "#default"]))).expect("json");
    assert_eq!(shown["sign"], true);
    let file = data.join("load.json");
    std::fs::write(
        &file,
        r##"{"#default": {}, "acme": {"sign": true, "keys": {"k1": "s1"}}}"##,
    )
    .expect("write");
    ok(&tenant(
        &data,
        &["load", file.to_str().expect("utf-8 path")],
    ));
    let list = ok(&tenant(&data, &["list"]));
    assert_eq!(
        list.trim(),
        "#default\tsign=off\tkeys=[]\treferers=[]\nacme\tsign=on\tkeys=[k1]\treferers=[]"
    );
    // A file with one bad entry changes nothing.
    std::fs::write(&file, r#"{"acme": {}, "globex": {"sign": true}}"#).expect("write");
    refused(
        &tenant(&data, &["load", file.to_str().expect("utf-8 path")]),
        "signs but has no key",
    );
    assert_eq!(ok(&tenant(&data, &["list"])), list);
    refused(&tenant(&data, &["check"]), "--aws");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn aws_target_is_checked_before_anything_is_sent() {
    let data = std::env::temp_dir();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pixelfront"))
            .args(["tenant", "--aws", "list"])
            .args(extra)
            .arg("--data")
            .arg(&data)
            .env_remove("PIXELFRONT_KVS_ARN")
            .env_remove("PIXELFRONT_POLICY_TABLE")
            .output()
            .expect("run pixelfront tenant")
    };
    refused(&run(&[]), "--kvs-arn");
    refused(
        &run(&["--kvs-arn", "arn:aws:cloudfront::1:key-value-store/x"]),
        "--policy-table",
    );
    refused(
        &run(&["--kvs-arn", "arn:aws:s3:::bucket", "--policy-table", "t"]),
        "not a KeyValueStore ARN",
    );
    refused(
        &run(&[
            "--kvs-arn",
            "arn:aws:cloudfront::1:key-value-store/x",
            "--policy-table",
            "t",
            "--kvs-endpoint-url",
            "ftp://x",
        ]),
        "bad --endpoint-url",
    );
}
