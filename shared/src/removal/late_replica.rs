//! The replica purge against Cross-Region Replication that lands late ([`MemoryCrr`]): a
//! version still pending when the erasure starts gets its copy after the replica was purged
//! once, and the erasure must still remove that copy and list it in the audit record.

use super::memory::{MemoryAudit, MemoryBucket, MemoryCdn};
use super::memory_crr::{CrrReplica, CrrSource, MemoryCrr};
use super::replication::MAX_REPLICATION_CHECKS;
use super::task::Removal;
use super::*;
use crate::store::memory::MemoryManifest;
use crate::store::{OriginalInfo, SourceRef};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};

type Stack = Removal<MemoryManifest, MemoryAudit, CrrSource, CrrReplica, MemoryBucket, MemoryCdn>;

const KEY: &str = "acme/photos/k.jpg";

fn stack(crr: &Arc<MemoryCrr>) -> Stack {
    Removal {
        manifest: MemoryManifest::new(),
        audit: MemoryAudit::new(),
        originals: crr.source(),
        replica: Some(crr.replica()),
        derived: MemoryBucket::new("derived"),
        cdn: MemoryCdn::new(),
    }
}

fn clock() -> impl Fn() -> String {
    let tick = AtomicU32::new(0);
    move || {
        format!(
            "2026-12-06T12:00:{:02}Z",
            tick.fetch_add(1, Ordering::SeqCst)
        )
    }
}

fn asset() -> AssetId {
    AssetId {
        tenant: "acme".into(),
        key: "photos/k.jpg".into(),
    }
}

/// One manifest version of the asset.
async fn in_manifest(s: &Stack) {
    let source = SourceRef {
        bucket: "originals".into(),
        key: KEY.into(),
        version_id: Some("V1".into()),
        etag: Some("e".into()),
        size: 10,
    };
    let a = s
        .manifest
        .assign(&asset(), &source, "t0")
        .await
        .expect("assign");
    let info = OriginalInfo {
        width: 10,
        height: 10,
        format: "png".into(),
    };
    s.manifest
        .mark_ready(&asset(), a.record.version, &info, &[], "t1")
        .await
        .expect("ready");
}

/// `V1` replicated already (`R1`), `V2` still pending: its copy `R2` lands on the `after`th
/// bucket call. Neighbours `K/x` and `K.bak`, replicated, must survive.
async fn late(after: usize) -> (Arc<MemoryCrr>, Stack) {
    let crr = MemoryCrr::new("originals", "replica");
    crr.put(KEY, "V1", "R1", 0);
    crr.put(KEY, "V2", "R2", after);
    crr.put(&format!("{KEY}/x"), "X1", "RX1", 0);
    crr.put(&format!("{KEY}.bak"), "B1", "RB1", 0);
    let s = stack(&crr);
    in_manifest(&s).await;
    (crr, s)
}

fn erase() -> RemovalInput {
    serde_json::from_value(
        json!({"tenant": "acme", "key": "photos/k.jpg", "reason": "gdpr",
        "requester": "DSR-1"}),
    )
    .expect("input")
}

fn keys(versions: &[ObjectVersion]) -> Vec<(&str, Option<&str>)> {
    versions
        .iter()
        .map(|v| (v.key.as_str(), v.version_id.as_deref()))
        .collect()
}

fn neighbours(replica: bool) -> Vec<(&'static str, Option<&'static str>)> {
    let (x, bak) = if replica {
        ("RX1", "RB1")
    } else {
        ("X1", "B1")
    };
    vec![
        ("acme/photos/k.jpg.bak", Some(bak)),
        ("acme/photos/k.jpg/x", Some(x)),
    ]
}

#[tokio::test]
async fn a_copy_landing_after_the_first_replica_purge_is_erased_and_audited() {
    // The copy of V2 lands on the 6th bucket call: after a replica purge that ran first (or
    // beside the originals' purge) finished listing and deleting.
    let (crr, s) = late(6).await;
    let summary = s.run("GDPR-1", &erase(), clock()).await.expect("erasure");
    // Whatever replication still had in flight lands now.
    crr.flush();
    assert_eq!(keys(&crr.replica_versions()), neighbours(true));
    assert_eq!(keys(&crr.source_versions()), neighbours(false));
    assert_eq!(crr.in_flight(), 0);

    let records = s.audit.records(&asset()).await.expect("records");
    assert_eq!(records.len(), 1);
    let mut replica: Vec<(&str, &str, Option<&str>)> = records[0]
        .deleted_replica
        .iter()
        .map(|d| (d.bucket.as_str(), d.key.as_str(), d.version_id.as_deref()))
        .collect();
    replica.sort();
    assert_eq!(
        replica,
        vec![("replica", KEY, Some("R1")), ("replica", KEY, Some("R2"))],
        "the late copy is listed with the first one"
    );
    assert_eq!(records[0].deleted_originals.len(), 2);
    assert_eq!(summary.deleted, 4);
}

#[tokio::test]
async fn a_copy_that_never_lands_stops_the_erasure_before_the_original_is_deleted() {
    let (crr, s) = late(10_000).await;
    let err = s
        .run("GDPR-2", &erase(), clock())
        .await
        .expect_err("still pending");
    assert_eq!(err.error_type(), "ReplicationPending", "{err}");
    // Both originals stay, so the copy still in flight is not orphaned: a later request
    // (replication done) erases both sides.
    let originals = crr.source_versions();
    assert!(keys(&originals).contains(&(KEY, Some("V1"))));
    assert!(keys(&originals).contains(&(KEY, Some("V2"))));
}

#[tokio::test]
async fn the_originals_step_answers_pending_and_a_wait_then_gives_up_at_the_last_check() {
    let (crr, s) = late(10_000).await;
    let begun = s
        .handle(json!({"step": "begin", "request_id": "GDPR-3", "request": erase()}))
        .await
        .expect("begin");
    let asset = begun["assets"][0].clone();
    let step = |checks: u32| {
        json!({"step": "purge", "target": "originals", "request_id": "GDPR-3",
            "asset": asset, "checks": checks})
    };
    let first = s.handle(step(0)).await.expect("first check");
    assert_eq!(first["deleted"], 0);
    assert_eq!(first["pending"], 1);
    assert_eq!(first["checks"], 1);
    assert_eq!(first["wait_seconds"], 10);
    let last = s.handle(step(MAX_REPLICATION_CHECKS - 1)).await;
    let err = last.expect_err("the last check gives up");
    assert_eq!(err.error_type(), "ReplicationPending");
    assert_eq!(crr.source_versions().len(), 4, "nothing deleted");

    // Once the copy landed the same step purges; the replica step (the sweep) takes the copy.
    crr.flush();
    let done = s.handle(step(3)).await.expect("purge");
    assert_eq!(
        (done["deleted"].as_u64(), done["pending"].as_u64()),
        (Some(2), Some(0))
    );
    let sweep = s
        .handle(
            json!({"step": "purge", "target": "replica", "request_id": "GDPR-3",
            "asset": asset}),
        )
        .await
        .expect("sweep");
    assert_eq!(sweep["deleted"], 2);
    assert_eq!(keys(&crr.replica_versions()), neighbours(true));
}

#[test]
fn finish_counts_the_sweep_beside_the_three_purges() {
    let purged = json!([
        {"purged": [{"deleted": 2, "pending": 0, "checks": 2, "wait_seconds": 0},
                    {"deleted": 1}, {"deleted": 3}],
         "sweep": {"deleted": 1}},
        {"purged": [{"deleted": 0}, {"deleted": 0}, {"deleted": 0}], "sweep": {"deleted": 0}}
    ]);
    assert_eq!(super::task::deleted_count(&purged), 7);
}
