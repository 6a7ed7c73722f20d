//! Unit tests of the removal steps: validation, plans, limits, the state machine's shape (the
//! whole runs are in `end_to_end.rs`).

use super::*;
use serde_json::json;
use std::collections::BTreeSet;

fn input(v: Value) -> RemovalInput {
    serde_json::from_value(v).expect("input")
}

use serde_json::Value;

#[test]
fn requests_are_validated() {
    let ok = json!({"tenant": "acme", "key": "a.jpg", "reason": "dmca", "requester": "legal@x"});
    let v = validate(&input(ok.clone())).expect("valid");
    assert_eq!(v.action, Action::Takedown);
    assert_eq!(v.keys, vec!["a.jpg".to_string()]);

    let gdpr = json!({"tenant": "acme", "key": "a.jpg", "reason": "gdpr", "requester": "dpo"});
    assert_eq!(validate(&input(gdpr)).expect("valid").action, Action::Erase);

    let table: Vec<(Value, &str)> = vec![
        (
            json!({"tenant": "acme", "key": "a.jpg", "requester": "x"}),
            "reason required",
        ),
        (
            json!({"tenant": "acme", "key": "a.jpg", "reason": "boredom", "requester": "x"}),
            "is not one of",
        ),
        (
            json!({"tenant": "acme", "key": "a.jpg", "reason": "dmca"}),
            "requester required",
        ),
        (
            json!({"key": "a.jpg", "reason": "dmca", "requester": "x"}),
            "tenant required",
        ),
        (
            json!({"tenant": "Acme!", "key": "a.jpg", "reason": "dmca", "requester": "x"}),
            "is not a tenant id",
        ),
        (
            json!({"tenant": "acme", "reason": "dmca", "requester": "x"}),
            "key, keys or prefix",
        ),
        (
            json!({"tenant": "acme", "key": "a", "prefix": "b", "reason": "dmca", "requester": "x"}),
            "not both",
        ),
        (
            json!({"tenant": "acme", "key": "a\nb", "reason": "dmca", "requester": "x"}),
            "control characters",
        ),
        (
            json!({"tenant": "acme", "key": "a", "action": "nuke", "reason": "dmca", "requester": "x"}),
            "not takedown or erase",
        ),
    ];
    for (req, want) in table {
        match validate(&input(req.clone())) {
            Err(RemovalError::InvalidRequest(m)) => assert!(m.contains(want), "{req}: {m}"),
            other => panic!("{req}: {other:?}"),
        }
    }
    assert!(serde_json::from_value::<RemovalInput>(json!({"tenant": "a", "url": "x"})).is_err());
    assert!(valid_request_id("REQ-2026_11"));
    assert!(!valid_request_id("has space"));
    assert!(!valid_request_id(&"x".repeat(81)));
}

#[test]
fn batches_stay_inside_the_in_flight_limits() {
    let assets: Vec<AssetVersions> = (0..40)
        .map(|i| AssetVersions {
            tenant: "acme".into(),
            key: format!("k{i}.jpg"),
            versions: vec![1, 2, 3],
        })
        .collect();
    let paths: Vec<String> = (0..3000)
        .map(|i| format!("/acme/v1/long/w{i}-q80.webp"))
        .collect();
    let batches = plan("REQ1", &assets, &paths);
    let mut refs = BTreeSet::new();
    let (mut tags, mut exact) = (0, 0);
    for b in &batches {
        assert!(
            refs.insert(b.caller_reference.clone()),
            "duplicate reference"
        );
        assert!(!b.paths.is_empty());
        assert!(b.paths.len() <= MAX_PATHS_PER_BATCH);
        assert!(b.paths.iter().all(|p| !p.contains('*')), "a wildcard");
        match b.kind {
            BatchKind::Tags => {
                assert!(b.paths.iter().all(|p| p.starts_with("#asset:acme/")));
                tags += b.paths.len();
            }
            BatchKind::Paths => exact += b.paths.len(),
        }
    }
    assert_eq!((tags, exact), (40, 3000));
    assert_eq!(batches.len(), 1 + 3, "1,400 paths a batch");
    // One asset whose tag fits: its tag, nothing else (no wildcard reaches `k0.jpg/x`).
    let one = plan("R", &assets[..1], &[]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].paths, vec!["#asset:acme/k0.jpg".to_string()]);
}

#[test]
fn error_types_are_the_state_machine_names() {
    let table = [
        (
            RemovalError::Cdn(CdnError::TooManyInProgress("x".into())),
            "TooManyInvalidationsInProgress",
        ),
        (
            RemovalError::Cdn(CdnError::Throttled("x".into())),
            "Throttling",
        ),
        (RemovalError::Cdn(CdnError::Denied("x".into())), "CdnDenied"),
        (
            RemovalError::Store(StoreError::Unavailable("x".into())),
            "StoreUnavailable",
        ),
        (
            RemovalError::PurgeIncomplete(1, "p".into()),
            "PurgeIncomplete",
        ),
        (RemovalError::Conflict("x".into()), "RequestIdConflict"),
    ];
    for (e, want) in table {
        assert_eq!(e.error_type(), want);
    }
}

#[test]
fn the_state_machine_runs_as_many_batches_at_once_as_the_plan_assumes() {
    let asl: Value =
        serde_json::from_str(include_str!("../../../statemachine/takedown.asl.json")).expect("asl");
    let states = &asl["States"];
    assert_eq!(
        states["Invalidate"]["MaxConcurrency"],
        json!(INVALIDATION_CONCURRENCY)
    );
    // Every error the CDN adapter can raise for "later" is retried by the invalidation task.
    let retried: Vec<String> = states["Invalidate"]["ItemProcessor"]["States"]
        ["CreateInvalidation"]["Retry"]
        .as_array()
        .expect("retry")
        .iter()
        .flat_map(|r| r["ErrorEquals"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    for e in [
        CdnError::TooManyInProgress(String::new()),
        CdnError::Throttled(String::new()),
        CdnError::Unavailable(String::new()),
    ] {
        let t = RemovalError::Cdn(e).error_type();
        assert!(retried.iter().any(|r| r == t), "{t} is not retried");
    }
    assert_eq!(
        states["Begin"]["Parameters"]["Payload"]["request_id.$"],
        json!("$$.Execution.Name")
    );
    // The state keeps counts and batch indices, never lists that grow with the request.
    let branches = states["PurgeAssets"]["ItemProcessor"]["States"]["PurgeBuckets"]["Branches"]
        .as_array()
        .expect("branches");
    assert_eq!(branches.len(), 3);
    for b in branches {
        let task = &b["States"][b["StartAt"].as_str().expect("start")];
        let selected = task["ResultSelector"].as_object().expect("selector");
        assert_eq!(selected["deleted.$"], json!("$.Payload.deleted"));
        for key in selected.keys() {
            let counts = ["deleted.$", "pending.$", "checks.$", "wait_seconds.$"];
            assert!(counts.contains(&key.as_str()), "{key} is not a count");
        }
    }
    // The originals wait for replication; the replica is purged again after them.
    let item = &states["PurgeAssets"]["ItemProcessor"]["States"];
    let originals = &branches[0]["States"];
    assert_eq!(originals["Originals"]["Next"], json!("Replicated"));
    assert_eq!(
        originals["Replicated"]["Choices"][0]["Next"],
        json!("WaitForReplication")
    );
    assert_eq!(originals["CheckAgain"]["Next"], json!("Originals"));
    assert_eq!(item["PurgeBuckets"]["Next"], json!("ReplicaSweep"));
    assert_eq!(
        item["ReplicaSweep"]["Parameters"]["Payload"]["target"],
        json!("replica")
    );
    assert_eq!(
        states["Invalidate"]["ItemSelector"],
        json!({"index.$": "$$.Map.Item.Value.index", "request_id.$": "$.begin.request_id",
               "assets.$": "$.begin.assets"})
    );
    let payload = &states["Invalidate"]["ItemProcessor"]["States"]["CreateInvalidation"]
        ["Parameters"]["Payload"];
    let task: task::Step = serde_json::from_value(json!({
        "step": payload["step"],
        "request_id": "R",
        "index": 0,
        "assets": [],
    }))
    .expect("the invalidate payload parses");
    assert!(matches!(task, task::Step::Invalidate { .. }));
    for field in ["request_id.$", "index.$", "assets.$"] {
        assert!(payload.get(field).is_some(), "{field} missing: {payload}");
    }
}

fn assets_of(n: usize, key_len: usize, versions: u32) -> Vec<AssetVersions> {
    (0..n)
        .map(|i| {
            let mut key = format!("k{i:04}/");
            while key.len() < key_len {
                key.push('x');
            }
            AssetVersions {
                tenant: "acme".into(),
                key,
                versions: (1..=versions).collect(),
            }
        })
        .collect()
}

#[test]
fn tags_over_cloudfronts_limit_are_left_to_exact_paths() {
    let mut assets = assets_of(2, 20, 2);
    // 512-byte key: `asset:acme/{key}` is far over 256 characters.
    assets[1].key = format!("long/{}", "y".repeat(507));
    assert!(taggable(&assets[0].asset()));
    assert!(!taggable(&assets[1].asset()));
    let paths = vec![format!("/acme/v2/{}/w160.webp", assets[1].key)];
    let batches = plan("R", &assets, &paths);
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].kind, BatchKind::Tags);
    assert_eq!(
        batches[0].paths,
        vec![format!("#asset:acme/{}", assets[0].key)]
    );
    assert_eq!(batches[1].kind, BatchKind::Paths);
    assert_eq!(batches[1].paths, paths);
    // Exactly at the limit is still a tag.
    let at = "a".repeat(MAX_TAG_CHARS - "asset:acme/".len());
    let edge = plan(
        "R",
        &assets_of(1, 0, 1)
            .into_iter()
            .map(|a| AssetVersions {
                key: at.clone(),
                ..a
            })
            .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(edge[0].paths, vec![format!("#asset:acme/{at}")]);
    assert_eq!(edge[0].paths[0].len(), 1 + MAX_TAG_CHARS);
}

/// The fallback paths are the derivatives the request's purge recorded for the assets whose
/// tag does not fit: exact paths, never another request's, never a taggable asset's.
#[tokio::test]
async fn fallback_paths_come_from_the_audit_record_of_the_request() {
    let audit = memory::MemoryAudit::new();
    let long = format!("long/{}", "y".repeat(507));
    let assets = vec![
        AssetVersions {
            tenant: "acme".into(),
            key: "short.jpg".into(),
            versions: vec![1],
        },
        AssetVersions {
            tenant: "acme".into(),
            key: long.clone(),
            versions: vec![1],
        },
    ];
    let deleted = |key: String| Deleted {
        bucket: "derived".into(),
        key,
        version_id: None,
        delete_marker: false,
    };
    for (request_id, a) in [("R1", &assets[0]), ("R1", &assets[1]), ("R0", &assets[1])] {
        audit
            .open(&AuditRecord {
                request_id: request_id.into(),
                tenant: a.tenant.clone(),
                key: a.key.clone(),
                ..AuditRecord::default()
            })
            .await
            .expect("open");
        let keys = [
            format!("acme/v1/{}/w160.webp", a.key),
            format!("acme/v1/{}/w320 q.webp", a.key),
            format!("acme/v9/{}/{request_id}.webp", a.key),
        ];
        audit
            .append_deleted(&a.asset(), request_id, Target::Derived, &keys.map(deleted))
            .await
            .expect("append");
    }
    let paths = fallback_paths(&audit, "R1", &assets).await.expect("paths");
    assert_eq!(
        paths,
        vec![
            format!("/acme/v1/{long}/w160.webp"),
            format!("/acme/v1/{long}/w320%20q.webp"),
            format!("/acme/v9/{long}/R1.webp"),
        ]
    );
    assert!(fallback_paths(&audit, "R1", &assets[..1])
        .await
        .expect("none")
        .is_empty());
}

#[test]
fn long_lists_are_split_by_count_and_by_bytes() {
    let keys = |n: usize, len: usize| -> Vec<String> {
        assets_of(n, len, 1).into_iter().map(|a| a.key).collect()
    };
    // By count: 1,201 short keys -> 500, 500, 201.
    let short = keys(1201, 10);
    let chunks = request_chunks("acme", &short);
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![500, 500, 201]
    );
    assert_eq!(chunks.concat(), short, "order kept, nothing lost");
    // By bytes: 300 keys of 500 bytes (150 KB) -> chunks of at most 64 KiB.
    let long = keys(300, 500);
    let chunks = request_chunks("acme", &long);
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    for c in &chunks {
        assert!(asset_bytes("acme", c) <= MAX_ASSET_BYTES_PER_REQUEST);
        assert!(validate(&RemovalInput {
            tenant: Some("acme".into()),
            keys: Some(c.clone()),
            reason: Some("dmca".into()),
            requester: Some("x".into()),
            ..RemovalInput::default()
        })
        .is_ok());
    }
    assert_eq!(chunks.concat(), long);
    assert_eq!(request_chunks("acme", &long), chunks, "deterministic");
    assert!(request_chunks("acme", &[]).is_empty());
    // Unsplit, the same list is refused with the reason.
    let whole = RemovalInput {
        tenant: Some("acme".into()),
        keys: Some(long),
        reason: Some("dmca".into()),
        requester: Some("x".into()),
        ..RemovalInput::default()
    };
    match validate(&whole) {
        Err(RemovalError::InvalidRequest(m)) => assert!(m.contains("bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// The takedown state at its largest (the most assets and key bytes a request may name, the
/// most versions): what `Begin`, the purge map, `Plan` and the invalidation map leave in it,
/// in the shapes the state machine keeps, stays under Step Functions' 256 KB payload limit,
/// and so does the payload of each `invalidate` task.
#[test]
fn the_largest_request_keeps_the_state_under_256_kb() {
    const LIMIT: usize = 256 * 1024;
    let n = MAX_ASSETS_PER_REQUEST;
    let key_len = MAX_ASSET_BYTES_PER_REQUEST / n - "acme/".len();
    let per = (MAX_VERSIONS_PER_REQUEST / n) as u32;
    let assets = assets_of(n, key_len, per);
    let keys: Vec<String> = assets.iter().map(|a| a.key.clone()).collect();
    assert!(asset_bytes("acme", &keys) <= MAX_ASSET_BYTES_PER_REQUEST);
    let rid = "x".repeat(80);
    let begun = Begun {
        request_id: rid.clone(),
        action: Action::Takedown,
        reason: Reason::Dmca,
        requester: "r".repeat(256),
        started_at: "2026-12-06T12:00:00.000Z".into(),
        already_done: false,
        assets: assets.clone(),
    };
    let purged: Vec<Value> = (0..n)
        .map(|_| json!([{"deleted": 99999}, {"deleted": 99999}, {"deleted": 99999}]))
        .collect();
    // The most derivative paths a plan may hold: every asset's eight variants per version.
    let paths: Vec<String> = assets
        .iter()
        .flat_map(|a| {
            a.versions.iter().flat_map(move |n| {
                (0..8).map(move |w| format!("/acme/v{n}/{}/w{w}-q80.webp", a.key))
            })
        })
        .collect();
    let refs = plan_refs(&rid, &assets, &paths);
    let invalidations: Vec<Invalidation> = refs
        .iter()
        .map(|r| Invalidation {
            id: "I2J3K4L5M6N7O8P9Q0R1S2T3U4".into(),
            status: "Completed".into(),
            done: true,
            caller_reference: format!("{rid}-{}", r.index),
            paths: r.paths,
        })
        .collect();
    let state = json!({
        "begin": begun,
        "purged": purged,
        "plan": {"batches": refs},
        "invalidations": invalidations,
    });
    let size = serde_json::to_vec(&state).expect("json").len();
    assert!(size < LIMIT * 3 / 4, "state of {size} bytes");
    let task = json!({"step": "invalidate", "request_id": rid, "index": 0, "assets": assets});
    let size = serde_json::to_vec(&task).expect("json").len();
    assert!(size < LIMIT / 2, "invalidate payload of {size} bytes");
    // And the old shape (every batch's paths in the state) would not have fit.
    let full = serde_json::to_vec(&plan(&rid, &assets, &paths))
        .expect("json")
        .len();
    assert!(full > LIMIT / 2, "{full}");
}
