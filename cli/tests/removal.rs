//! `pixelfront takedown`, `erase`, `audit` and `backfill` through the CLI binary against the
//! local stack: each test starts the real `pixelfront dev` on 127.0.0.1 (a free port, its own
//! data directory), drives it with the verbs, and stops it by its PID. Bad input is checked
//! without a server: exit 2, one line on stderr, no panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, png, Server, TOKEN};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the CLI with `args`, the admin token in the environment when `token` is set, and none
/// of the AWS settings of the caller's environment.
fn cli(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixelfront"));
    cmd.args(args)
        .env_remove("PIXELFRONT_ADMIN_TOKEN")
        .env_remove("PIXELFRONT_TAKEDOWN_ARN")
        .env_remove("PIXELFRONT_BACKFILL_ARN")
        .env_remove("PIXELFRONT_AUDIT_TABLE")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("PIXELFRONT_ADMIN_TOKEN", t);
    }
    cmd.output().expect("run pixelfront")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Exit 2 with exactly one line on stderr containing `needle`, and no panic.
fn assert_rejected(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {stderr}");
    assert!(lines[0].contains(needle), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

#[test]
fn takedown_audit_and_a_repeated_request_id_through_the_cli() {
    let data = data_dir("takedown");
    let s = Server::start(&data, &[]);
    let url = s.url();
    s.upload_accepted("acme/photos/a.png", &png(640, 480, 1));
    s.upload_accepted("acme/b.png", &png(320, 200, 2));
    assert_eq!(s.settled("acme/photos/a.png")["status"], "ready");
    assert_eq!(s.settled("acme/b.png")["status"], "ready");
    let image = "/img/acme/v1/photos/a.png?w=320&fmt=webp";
    assert_eq!(s.request("GET", image, &[], b"").status, 200);

    let takedown = [
        "takedown",
        "acme/photos/a.png",
        "--reason",
        "dmca",
        "--requester",
        "legal@example.com",
        "--request-id",
        "R1",
        "--local",
        url.as_str(),
    ];
    let first = cli(&takedown, Some(TOKEN));
    // The request summary, the same shape as the AWS workflow's output.
    let record = stdout_json(&first);
    assert_eq!(record["request_id"], "R1");
    assert_eq!(record["action"], "takedown");
    assert_eq!(record["reason"], "dmca");
    assert_eq!(record["requester"], "legal@example.com");
    assert_eq!(record["assets"], serde_json::json!(["acme/photos/a.png"]));
    let r = s.get(image);
    let (status, body) = (r.status, r.body);
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (404, "removed")
    );
    assert_eq!(s.manifest("acme/photos/a.png")["status"], "taken_down");

    // The audit lists R1 with what was deleted.
    let audit = ["audit", "acme/photos/a.png", "--local", url.as_str()];
    let records = stdout_json(&cli(&audit, Some(TOKEN)));
    let records = records.as_array().expect("an array");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["request_id"], "R1");
    assert_eq!(records[0]["status"], "taken_down");
    assert_eq!(
        records[0]["deleted_originals"].as_array().map(Vec::len),
        Some(1)
    );
    let derivatives = records[0]["deleted_derivatives"]
        .as_array()
        .expect("derivatives");
    assert!(derivatives.len() >= 8, "{derivatives:?}");
    assert!(derivatives.iter().all(|d| d["key"]
        .as_str()
        .is_some_and(|d| d.starts_with("acme/v1/photos/a.png/"))));
    let summary = cli(
        &[
            "audit",
            "acme/photos/a.png",
            "--summary",
            "--local",
            url.as_str(),
        ],
        Some(TOKEN),
    );
    assert!(summary.status.success());
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(
        text.starts_with("R1  takedown (dmca) requested by legal@example.com: acme/photos/a.png"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "1 original versions, 0 replica versions, {} derivatives",
            derivatives.len()
        )),
        "{text}"
    );

    // The same request id again changes nothing: the first record, still one audit record.
    let again = cli(&takedown, Some(TOKEN));
    assert_eq!(stdout_json(&again), record);
    let records = stdout_json(&cli(&audit, Some(TOKEN)));
    assert_eq!(records.as_array().map(Vec::len), Some(1));
    // R1 reused for another asset is refused: b.png is not removed under R1's record.
    let mut reused = takedown;
    reused[1] = "acme/b.png";
    assert_rejected(
        &cli(&reused, Some(TOKEN)),
        "request id R1 already names another request",
        "reused request id",
    );
    assert_eq!(s.manifest("acme/b.png")["status"], "ready");

    // Erase with a generated request id (printed first, on stderr) and the default reason.
    let erase = cli(
        &[
            "erase",
            "acme/b.png",
            "--requester",
            "dpo@example.com",
            "--local",
            url.as_str(),
        ],
        Some(TOKEN),
    );
    let erased = stdout_json(&erase);
    let stderr = String::from_utf8_lossy(&erase.stderr);
    let id = erased["request_id"].as_str().expect("request id");
    assert!(id.starts_with("erase-"), "{id}");
    assert!(
        stderr.lines().next().is_some_and(|l| l.contains(id)),
        "{stderr}"
    );
    assert_eq!(
        (erased["reason"].as_str(), erased["action"].as_str()),
        (Some("gdpr"), Some("erase"))
    );
    assert_eq!(s.manifest("acme/b.png")["status"], "erased");
    assert_eq!(
        s.request("GET", "/img/acme/v1/b.png?w=320", &[], b"")
            .status,
        404
    );

    // A prefix takedown: every asset whose key starts with it, in one request.
    s.upload_accepted("acme/set/x.png", &png(64, 64, 4));
    s.upload_accepted("acme/set/y.png", &png(64, 64, 5));
    assert_eq!(s.settled("acme/set/x.png")["status"], "ready");
    assert_eq!(s.settled("acme/set/y.png")["status"], "ready");
    let by_prefix = cli(
        &[
            "takedown",
            "acme/set/",
            "--prefix",
            "--reason",
            "tenant",
            "--requester",
            "owner@example.com",
            "--local",
            url.as_str(),
        ],
        Some(TOKEN),
    );
    let summary = stdout_json(&by_prefix);
    assert_eq!(
        summary["assets"],
        serde_json::json!(["acme/set/x.png", "acme/set/y.png"])
    );
    assert_eq!(s.manifest("acme/set/y.png")["status"], "taken_down");

    // An unknown asset, a refused or missing token: exit 2, one line.
    let unknown = [
        "takedown",
        "acme/nothing.png",
        "--reason",
        "tenant",
        "--requester",
        "x",
        "--request-id",
        "R9",
        "--local",
        url.as_str(),
    ];
    assert_rejected(
        &cli(&unknown, Some(TOKEN)),
        "acme/nothing.png: no asset matches",
        "unknown asset",
    );
    assert_rejected(
        &cli(&audit[..], Some("wrong-token")),
        "refused the admin token",
        "wrong token",
    );
    assert_rejected(&cli(&audit[..], None), "admin token", "no token");
    assert_rejected(
        &cli(&["audit", "acme/nothing.png", "--local", &url], Some(TOKEN)),
        "no audit record",
        "no record",
    );
    // The admin routes refuse requests without the token.
    assert_eq!(
        s.request("GET", "/audit/acme/photos/a.png", &[], b"")
            .status,
        401
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn backfill_renders_a_stale_version_again_then_reports_it_current() {
    let data = data_dir("backfill");
    let s = Server::start(&data, &[]);
    let url = s.url();
    s.upload_accepted("acme/stale.png", &png(500, 400, 3));
    s.upload_accepted("acme/fresh.png", &png(300, 300, 4));
    let before = s.settled("acme/stale.png");
    assert_eq!(before["status"], "ready");
    assert_eq!(s.settled("acme/fresh.png")["status"], "ready");
    let variants = before["variants"].as_array().map_or(0, Vec::len);
    assert_eq!(variants, 8);

    // A catalogue change, as the manifest sees it: one version's record lacks a variant.
    {
        let db = rusqlite::Connection::open(data.join("manifest.db")).expect("open manifest");
        db.busy_timeout(Duration::from_secs(5)).expect("timeout");
        let changed = db
            .execute(
                "UPDATE versions SET record = json_remove(record, '$.variants[0]') \
                 WHERE asset = 'acme/stale.png' AND version = 1",
                [],
            )
            .expect("make the record stale");
        assert_eq!(changed, 1);
    }
    assert_eq!(
        s.manifest("acme/stale.png")["variants"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );

    let backfill = ["backfill", "--local", url.as_str(), "--poll", "0.2"];
    let first = cli(&backfill, Some(TOKEN));
    let report = stdout_json(&first);
    let counts = |r: &serde_json::Value| {
        ["total", "done", "rendered", "current", "skipped", "failed"].map(|k| r[k].as_u64())
    };
    assert_eq!(
        counts(&report),
        [2, 2, 1, 1, 0, 0].map(Some),
        "{report}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(report["running"], false);
    let progress = String::from_utf8_lossy(&first.stderr);
    assert!(
        progress.contains("backfill: 2/2 versions | rendered 1 | current 1"),
        "{progress}"
    );
    let after = s.manifest("acme/stale.png");
    assert_eq!(after["variants"].as_array().map(Vec::len), Some(8));
    assert_eq!(s.get("/img/acme/v1/stale.png?w=320&fmt=webp").status, 200);

    // Again: everything is current, nothing is rendered.
    let report = stdout_json(&cli(&backfill, Some(TOKEN)));
    assert_eq!(counts(&report), [2, 2, 0, 2, 0, 0].map(Some), "{report}");
    assert_eq!(
        s.metric("pixelfront_backfill_total{outcome=\"rendered\"}"),
        1.0
    );
    assert_eq!(
        s.metric("pixelfront_backfill_total{outcome=\"current\"}"),
        3.0
    );
    assert_eq!(s.request("POST", "/backfill", &[], b"").status, 401);
    assert_eq!(s.request("GET", "/backfill", &[], b"").status, 401);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_panic() {
    let td = |extra: &[&str]| {
        let mut args = vec!["takedown", "acme/a.png", "--local", "http://127.0.0.1:9"];
        args.extend_from_slice(extra);
        cli(&args, Some(TOKEN))
    };
    for (out, needle, what) in [
        (
            td(&["--reason", "nope", "--requester", "x"]),
            "not one of dmca, gdpr, tenant",
            "unknown reason",
        ),
        (
            td(&["--reason", "dmca"]),
            "requester required",
            "missing requester",
        ),
        (
            td(&["--requester", "x"]),
            "reason required",
            "missing reason",
        ),
        (
            td(&[
                "--reason",
                "dmca",
                "--requester",
                "x",
                "--request-id",
                "bad id",
            ]),
            "request id",
            "bad request id",
        ),
        (
            cli(
                &[
                    "takedown",
                    "acme/a.png",
                    "--reason",
                    "dmca",
                    "--requester",
                    "x",
                    "--local",
                    "not a url",
                ],
                Some(TOKEN),
            ),
            "bad --local URL",
            "bad URL",
        ),
        (
            cli(
                &[
                    "erase",
                    "acme/a.png",
                    "--requester",
                    "x",
                    "--local",
                    "https://127.0.0.1:8080",
                ],
                Some(TOKEN),
            ),
            "plain http://",
            "https URL",
        ),
        (
            cli(
                &["erase", "acme", "--requester", "x", "--local", "http://h:1"],
                Some(TOKEN),
            ),
            "expected <tenant>/<key>",
            "no key",
        ),
        (
            cli(
                &[
                    "erase",
                    "acme/a b",
                    "--requester",
                    "x",
                    "--local",
                    "http://h:1",
                ],
                Some(TOKEN),
            ),
            "the local stack stores only keys",
            "unservable key",
        ),
        (
            cli(
                &[
                    "takedown",
                    "acme/a.png",
                    "--reason",
                    "dmca",
                    "--requester",
                    "x",
                    "--aws",
                ],
                None,
            ),
            "PIXELFRONT_TAKEDOWN_ARN",
            "no state machine",
        ),
        (
            cli(
                &[
                    "takedown",
                    "acme/a.png",
                    "--reason",
                    "dmca",
                    "--requester",
                    "x",
                    "--aws",
                    "--state-machine-arn",
                    "pixelfront-takedown",
                ],
                None,
            ),
            "not a state machine ARN",
            "bad ARN",
        ),
        (
            cli(&["backfill", "--aws"], None),
            "PIXELFRONT_BACKFILL_ARN",
            "backfill without ARN",
        ),
        (
            cli(
                &["backfill", "--local", "http://127.0.0.1:1:2"],
                Some(TOKEN),
            ),
            "bad --local URL",
            "backfill bad URL",
        ),
        (
            cli(&["audit", "acme/a.png", "--aws"], None),
            "PIXELFRONT_AUDIT_TABLE",
            "audit without table",
        ),
        (
            cli(&["audit", "acme"], Some(TOKEN)),
            "expected <tenant>/<key>",
            "audit without key",
        ),
    ] {
        assert_rejected(&out, needle, what);
    }
    // Nothing listening: exit 1, one line.
    let out = cli(
        &["audit", "acme/a.png", "--local", "http://127.0.0.1:1"],
        Some(TOKEN),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the local stack"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Clap's own usage errors also exit 2.
    assert_eq!(
        cli(&["takedown", "--reason", "dmca"], None).status.code(),
        Some(2)
    );
    // Every verb documents its flags.
    for (verb, flags) in [
        (
            "takedown",
            &[
                "--reason",
                "--requester",
                "--request-id",
                "--prefix",
                "--aws",
                "--state-machine-arn",
                "--endpoint-url",
                "--no-wait",
                "PIXELFRONT_TAKEDOWN_ARN",
                "PIXELFRONT_ADMIN_TOKEN",
            ][..],
        ),
        ("erase", &["--reason", "gdpr", "--requester"][..]),
        (
            "backfill",
            &["--local", "PIXELFRONT_BACKFILL_ARN", "--request-id"][..],
        ),
        (
            "audit",
            &["--summary", "--audit-table", "PIXELFRONT_AUDIT_TABLE"][..],
        ),
    ] {
        let out = cli(&[verb, "--help"], None);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{verb} --help");
        for flag in flags {
            assert!(help.contains(flag), "{verb} --help lacks {flag}:\n{help}");
        }
    }
}

/// Creates, in the moto server on port `argv[1]`, stand-ins of the two state machines with the
/// real state names (Pass, Wait, Map and Fail states instead of the Lambda tasks) and an audit
/// item; prints their ARNs as JSON.
const MOTO_SETUP: &str = r##"
import json, sys, urllib.request
import boto3
url = f"http://127.0.0.1:{sys.argv[1]}"
req = urllib.request.Request(url + "/moto-api/config", method="POST",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode())
urllib.request.urlopen(req)
sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
role = "arn:aws:iam::123456789012:role/x"
purge = lambda n: {"StartAt": n, "States": {n: {"Type": "Pass", "Result": {"deleted": 1}, "End": True}}}
takedown = {"StartAt": "Begin", "States": {
    "Begin": {"Type": "Pass", "Parameters": {"begin": {"request_id.$": "$$.Execution.Name", "already_done": False,
        "assets": [{"tenant": "acme", "key": "a", "versions": [1]}, {"tenant": "acme", "key": "b", "versions": [1, 2]}]},
        "input.$": "$"}, "Next": "Check"},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.input.requester", "StringEquals": "fail", "Next": "Boom"}],
        "Default": "PurgeAssets"},
    "Boom": {"Type": "Fail", "Error": "InvalidRequest", "Cause": "the requester says fail"},
    "PurgeAssets": {"Type": "Map", "ItemsPath": "$.begin.assets", "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "PurgeBuckets", "States": {"PurgeBuckets": {"Type": "Parallel",
            "Branches": [purge("Originals"), purge("Replica"), purge("Derived")], "End": True}}},
        "ResultPath": "$.purged", "Next": "Plan"},
    "Plan": {"Type": "Pass", "Result": {"batches": [{"paths": ["#asset:acme/a"]}, {"paths": ["/acme/v1/a/*"]}]},
        "ResultPath": "$.plan", "Next": "Invalidate"},
    "Invalidate": {"Type": "Map", "ItemsPath": "$.plan.batches", "MaxConcurrency": 1,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "CreateInvalidation", "States": {
            "CreateInvalidation": {"Type": "Wait", "Seconds": 1, "Next": "Invalidated"},
            "Invalidated": {"Type": "Succeed"}}},
        "ResultPath": "$.invalidations", "Next": "Finish"},
    "Finish": {"Type": "Pass", "Parameters": {"request_id.$": "$.begin.request_id", "deleted": 6}, "End": True}}}
# moto's grammar takes only STANDARD children in a Distributed Map (the real one uses EXPRESS).
backfill = {"StartAt": "Count", "States": {
    "Count": {"Type": "Pass", "Result": {"n": 5, "cursor": None}, "ResultPath": "$.counted", "Next": "Start"},
    "Start": {"Type": "Pass", "Parameters": {"total": 5, "cursor": None}, "ResultPath": "$.state", "Next": "ListPage"},
    "ListPage": {"Type": "Pass", "Result": {"items": [{"tenant": "acme", "key": f"k{i}", "version": 1} for i in range(5)],
        "cursor": None}, "ResultPath": "$.page", "Next": "RenderPage"},
    "RenderPage": {"Type": "Map", "ItemsPath": "$.page.items", "MaxConcurrency": 2, "Label": "Backfill",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Backfill",
            "States": {"Backfill": {"Type": "Wait", "Seconds": 1, "End": True}}},
        "ResultPath": None, "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"total.$": "$.state.total"}, "End": True}}}
arns = {name: sfn.create_state_machine(name=f"pixelfront-{name}", roleArn=role, type="STANDARD",
                                       definition=json.dumps(d))["stateMachineArn"]
        for name, d in [("takedown", takedown), ("backfill", backfill)]}
ddb.create_table(TableName="pixelfront-audit", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
d = lambda b, k, v: {"S": json.dumps({"bucket": b, "key": k, "version_id": v, "delete_marker": False})}
ddb.put_item(TableName="pixelfront-audit", Item={"pk": {"S": "acme/a"}, "sk": {"S": "R1"}, "request_id": {"S": "R1"},
    "action": {"S": "takedown"}, "reason": {"S": "dmca"}, "requester": {"S": "x"}, "tenant": {"S": "acme"},
    "key": {"S": "a"}, "status": {"S": "taken_down"}, "started_at": {"S": "2025-01-01T00:00:00Z"},
    "finished_at": {"S": "2025-01-01T00:01:00Z"}, "versions": {"L": [{"N": "1"}]},
    "deleted_originals": {"L": [d("o", "acme/a", "v1"), d("o", "acme/a", "v1")]}, "deleted_replica": {"L": []},
    "deleted_derivatives": {"L": [d("d", "acme/v1/a/w320.webp", None)]}, "invalidation_ids": {"L": [{"S": "I1"}]}})
print(json.dumps(arns))
"##;

/// The AWS side against moto's Step Functions interpreter and DynamoDB: takedown followed to
/// its summary with the progress of every step, the same request id followed again, another
/// input under it refused, a failed execution, `--no-wait`, a backfill's map-run progress, and
/// the audit table read. Needs moto and boto3 from the Python venv of `.ci/setup-test`
/// (`PIXELFRONT_VENV`, default `~/.cache/pixelfront/venv`), which `.ci/setup-test` creates.
#[test]
fn aws_verbs_against_moto() {
    let venv = std::env::var_os("PIXELFRONT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/pixelfront/venv")
        });
    let python = venv.join("bin/python");
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "moto"),
        ("AWS_SECRET_ACCESS_KEY", "moto"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ];
    // Stopped by its PID when the test ends, passing or failing.
    let (mut moto, port) = start_moto(&python, &aws_env);
    let setup = Command::new(&python)
        .args(["-c", MOTO_SETUP, &port.to_string()])
        .envs(aws_env)
        .output()
        .expect("moto setup");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let arns: serde_json::Value = serde_json::from_slice(&setup.stdout).expect("ARNs");
    let (td, bf) = (
        arns["takedown"].as_str().expect("takedown ARN").to_string(),
        arns["backfill"].as_str().expect("backfill ARN").to_string(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixelfront"));
        cmd.args(args)
            .args([
                "--aws",
                "--endpoint-url",
                &endpoint,
                "--region",
                "us-east-1",
            ])
            .envs(aws_env)
            .env_remove("PIXELFRONT_TAKEDOWN_ARN")
            .env_remove("PIXELFRONT_BACKFILL_ARN")
            .env_remove("PIXELFRONT_AUDIT_TABLE")
            .stdin(Stdio::null());
        cmd.output().expect("run pixelfront")
    };
    let takedown = [
        "takedown",
        "acme/b",
        "acme/a",
        "--reason",
        "dmca",
        "--requester",
        "x",
        "--request-id",
        "R1",
        "--poll",
        "0.2",
        "--state-machine-arn",
        td.as_str(),
    ];
    let first = run(&takedown);
    let summary = stdout_json(&first);
    assert_eq!(
        summary,
        serde_json::json!({"request_id": "R1", "deleted": 6})
    );
    let progress = String::from_utf8_lossy(&first.stderr);
    assert!(
        progress.contains("R1: Finish | purge 6/6 | invalidations 2/2 | CloudFront retries 0"),
        "{progress}"
    );
    // The same request (keys in another order) follows the finished execution.
    let mut again = takedown;
    (again[1], again[2]) = ("acme/a", "acme/b");
    let again = run(&again);
    assert_eq!(stdout_json(&again), summary);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // The same request id for other assets is refused.
    let mut other = takedown;
    other[1] = "acme/c";
    assert_rejected(
        &run(&other),
        "R1 already names another request",
        "reused id",
    );
    // A failed execution: exit 1 with its error and cause.
    let failed = run(&[
        "erase",
        "acme/a",
        "--requester",
        "fail",
        "--request-id",
        "R2",
        "--poll",
        "0.2",
        "--state-machine-arn",
        &td,
    ]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("execution R2 FAILED: InvalidRequest: the requester says fail"),
        "{stderr}"
    );
    let no_wait = run(&[
        "erase",
        "acme/a",
        "--requester",
        "y",
        "--request-id",
        "R3",
        "--no-wait",
        "--state-machine-arn",
        &td,
    ]);
    assert!(no_wait.status.success());
    assert_eq!(
        String::from_utf8_lossy(&no_wait.stdout).trim(),
        td.replace(":stateMachine:", ":execution:") + ":R3"
    );
    // Backfill: total from Count, progress from the map run's item counts.
    let backfill = run(&[
        "backfill",
        "--request-id",
        "B1",
        "--poll",
        "0.2",
        "--state-machine-arn",
        &bf,
    ]);
    let report = stdout_json(&backfill);
    assert_eq!(
        [
            &report["total"],
            &report["checked"],
            &report["succeeded"],
            &report["failed"],
            &report["map_runs"]
        ],
        [5, 5, 5, 0, 1].map(|n| serde_json::json!(n)).each_ref(),
        "{report}"
    );
    let progress = String::from_utf8_lossy(&backfill.stderr);
    assert!(progress.contains("5/5 versions checked"), "{progress}");
    // The audit table, deletions deduplicated.
    let audit = run(&["audit", "acme/a", "--audit-table", "pixelfront-audit"]);
    let records = stdout_json(&audit);
    assert_eq!(records[0]["request_id"], "R1");
    assert_eq!(
        records[0]["deleted_originals"].as_array().map(Vec::len),
        Some(1)
    );
    let summary = run(&[
        "audit",
        "acme/a",
        "--summary",
        "--audit-table",
        "pixelfront-audit",
    ]);
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(
        text.contains("1 original versions, 0 replica versions, 1 derivatives"),
        "{text}"
    );
    assert!(text.contains("invalidations: I1"), "{text}");
    assert_rejected(
        &run(&["audit", "acme/zzz", "--audit-table", "pixelfront-audit"]),
        "no audit record",
        "no record",
    );
    moto.stop();
}

/// A child process killed (by PID) and reaped when dropped, also when a test panics.
/// Starts moto's server from the venv on a free port and waits until moto itself answers there.
/// The port is free when picked but another test of this file may take it (a `pixelfront dev`
/// listening on port 0) before moto binds: moto then exits and the other server would answer
/// the set-up with 404. Such a start is retried on another port, up to five times.
fn start_moto(python: &std::path::Path, env: &[(&str, &str)]) -> (KillOnDrop, u16) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto from the venv of .ci/setup-test (PIXELFRONT_VENV)");
        let mut moto = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if moto.0.try_wait().ok().flatten().is_some() {
                break; // exited: the port was taken
            }
            if answers_as_moto(port) {
                return (moto, port);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    panic!("moto did not start on any of five ports");
}

/// True when `GET /moto-api/data.json` on `port` answers 200: moto's own endpoint, which no other
/// server of these tests has.
fn answers_as_moto(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}
