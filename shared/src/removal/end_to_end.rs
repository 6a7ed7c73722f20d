//! Whole takedowns and erasures ([`Removal::run`], and the Lambda task protocol driven in the
//! state machine's order), each case generic over the stores and run twice: over the in-memory
//! adapters (module `memory`) and over the local stack's (module `local`, feature `local`:
//! [`FsObjects`] in a temporary directory, one [`SqliteManifest`] file for the manifest and
//! the audit).

use super::memory::{MemoryAudit, MemoryBucket, MemoryCdn};
use super::run::{RETRIED, RETRIED_INVALIDATION, RETRIED_STATUS, RUN_CDN_RETRIES};
use super::task::Removal;
use super::*;
use crate::store::memory::MemoryManifest;
use crate::store::{OriginalInfo, SourceRef, VariantRecord};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[cfg(feature = "local")]
use crate::store::{fs::FsObjects, sqlite::SqliteManifest};

/// A bucket the cases fill and read back.
trait Bucket: VersionedStore {
    /// Whether the store keeps delete markers (S3 does, a directory does not).
    const MARKERS: bool;
    /// Adds version `version` of original `key` (a delete marker when `marker` and the store
    /// has them, else an ordinary version).
    fn add_version(&self, key: &str, version: &str, marker: bool);
    /// Adds the plain object `key` (a derivative).
    fn add_object(&self, key: &str);
}

impl Bucket for MemoryBucket {
    const MARKERS: bool = true;
    fn add_version(&self, key: &str, version: &str, marker: bool) {
        self.add(key, version, marker);
    }
    fn add_object(&self, key: &str) {
        self.add(key, "null", false);
    }
}

#[cfg(feature = "local")]
impl Bucket for FsObjects {
    const MARKERS: bool = false;
    fn add_version(&self, key: &str, version: &str, _marker: bool) {
        write(&self.path_of(key, Some(version)).expect("path"));
    }
    fn add_object(&self, key: &str) {
        write(&self.path_of(key, None).expect("path"));
    }
}

#[cfg(feature = "local")]
fn write(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, b"x").expect("write");
}

/// Every key in `bucket`, sorted, once per version.
async fn keys<B: VersionedStore>(bucket: &B) -> Vec<String> {
    let all = bucket.list_versions("", Listing::Deep).await.expect("list");
    all.into_iter().map(|v| v.key).collect()
}

type Stack<M, A, B> = Removal<M, A, B, B, B, MemoryCdn>;

fn memory_stack() -> (Stack<MemoryManifest, MemoryAudit, MemoryBucket>, ()) {
    let stack = Removal {
        manifest: MemoryManifest::new(),
        audit: MemoryAudit::new(),
        originals: MemoryBucket::new("originals"),
        replica: Some(MemoryBucket::new("replica")),
        derived: MemoryBucket::new("derived"),
        cdn: MemoryCdn::new(),
    };
    (stack, ())
}

/// The local stack's stores: three directories and one database file, in a temporary
/// directory that lives as long as the second value.
#[cfg(feature = "local")]
fn local_stack() -> (
    Stack<Arc<SqliteManifest>, Arc<SqliteManifest>, FsObjects>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(SqliteManifest::open(&dir.path().join("manifest.db")).expect("db"));
    let bucket = |name: &str| FsObjects::named(dir.path().join(name), name).expect("bucket");
    let stack = Removal {
        manifest: db.clone(),
        audit: db,
        originals: bucket("originals"),
        replica: Some(bucket("replica")),
        derived: bucket("derived"),
        cdn: MemoryCdn::new(),
    };
    (stack, dir)
}

/// A clock that ticks one second per call.
fn clock() -> impl Fn() -> String {
    let tick = AtomicU32::new(0);
    move || {
        let s = tick.fetch_add(1, Ordering::SeqCst);
        format!("2026-12-06T12:{:02}:{:02}Z", s / 60, s % 60)
    }
}

fn input(v: Value) -> RemovalInput {
    serde_json::from_value(v).expect("input")
}

fn asset(key: &str) -> AssetId {
    AssetId {
        tenant: "acme".into(),
        key: key.into(),
    }
}

async fn ready_version(m: &impl ManifestStore, asset: &AssetId, vid: &str) {
    let source = SourceRef {
        bucket: "originals".into(),
        key: asset.id(),
        version_id: Some(vid.into()),
        etag: Some("e".into()),
        size: 10,
    };
    let a = m.assign(asset, &source, "t0").await.expect("assign");
    let info = OriginalInfo {
        width: 10,
        height: 10,
        format: "png".into(),
    };
    let variant = VariantRecord {
        name: "thumb".into(),
        derivative: "w160.webp".into(),
        width: 10,
        height: 10,
        bytes: 1,
        render_ms: 1,
    };
    m.mark_ready(asset, a.record.version, &info, &[variant], "t1")
        .await
        .expect("ready");
}

async fn status(m: &impl ManifestStore, asset: &AssetId, version: u32) -> Option<Status> {
    m.get(asset, version).await.expect("get").map(|r| r.status)
}

/// Two versions of `photos/beach.jpg` in every bucket (and a delete marker of the original),
/// beside a neighbour whose key is longer.
async fn beach<M: ManifestStore, A, B: Bucket>(s: &Stack<M, A, B>) -> AssetId {
    let beach = asset("photos/beach.jpg");
    ready_version(&s.manifest, &beach, "V1").await;
    ready_version(&s.manifest, &beach, "V2").await;
    for (bucket, marker) in [
        (&s.originals, true),
        (s.replica.as_ref().expect("r"), false),
    ] {
        bucket.add_version("acme/photos/beach.jpg", "V1", false);
        bucket.add_version("acme/photos/beach.jpg", "V2", false);
        if marker {
            bucket.add_version("acme/photos/beach.jpg", "DM3", true);
        }
        bucket.add_version("acme/photos/beach.jpg.bak", "B1", false);
    }
    for v in [1, 2] {
        s.derived
            .add_object(&format!("acme/v{v}/photos/beach.jpg/w160.webp"));
    }
    s.derived
        .add_object("acme/v1/photos/beach.jpg.bak/w160.webp");
    beach
}

const BEACH: &str = r#"{"tenant": "acme", "key": "photos/beach.jpg", "reason": "dmca",
    "requester": "legal@example.com"}"#;

async fn takedown_everywhere<M: ManifestStore, A: AuditStore, B: Bucket>(s: &Stack<M, A, B>) {
    let beach = beach(s).await;
    s.cdn.refuse_next(3);
    let req = input(serde_json::from_str(BEACH).expect("json"));
    let now = clock();
    let summary = s.run("REQ-1", &req, &now).await.expect("takedown");
    assert_eq!(summary.deleted, 3 + 2 + 2);
    assert_eq!(summary.invalidation_ids.len(), 1);
    assert_eq!(summary.assets, vec!["acme/photos/beach.jpg".to_string()]);
    assert_eq!(
        (summary.started_at.as_str(), summary.finished_at.as_str()),
        ("2026-12-06T12:00:00Z", "2026-12-06T12:00:01Z")
    );

    // Nothing of the asset is left; the neighbour with a longer key is untouched.
    assert_eq!(keys(&s.originals).await, vec!["acme/photos/beach.jpg.bak"]);
    let replica = s.replica.as_ref().expect("r");
    assert_eq!(keys(replica).await, vec!["acme/photos/beach.jpg.bak"]);
    assert_eq!(
        keys(&s.derived).await,
        vec!["acme/v1/photos/beach.jpg.bak/w160.webp"]
    );
    for v in [1, 2] {
        let rec = s.manifest.get(&beach, v).await.expect("get").expect("rec");
        assert_eq!(rec.status, Status::TakenDown);
        assert!(rec.variants.is_empty());
    }
    // One exact tag: no wildcard that would reach `photos/beach.jpg/...` of another key.
    let created = s.cdn.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1, vec!["#asset:acme/photos/beach.jpg"]);

    let records = s.audit.records(&beach).await.expect("records");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.reason.as_str(), r.status.as_str()),
        ("dmca", "taken_down")
    );
    assert_eq!(r.versions, vec![1, 2]);
    assert_eq!(r.started_at, summary.started_at);
    assert_eq!(r.finished_at.as_ref(), Some(&summary.finished_at));
    assert_eq!(r.deleted_originals.len(), 3);
    assert!(r.deleted_originals.iter().all(|d| d.bucket == "originals"
        && d.key == "acme/photos/beach.jpg"
        && d.version_id.is_some()));
    let dm3 = r
        .deleted_originals
        .iter()
        .find(|d| d.version_id.as_deref() == Some("DM3"))
        .expect("DM3 recorded");
    assert_eq!(dm3.delete_marker, B::MARKERS);
    assert_eq!(r.deleted_replica.len(), 2);
    assert!(r.deleted_replica.iter().all(|d| d.bucket == "replica"));
    let derivatives: Vec<&str> = r
        .deleted_derivatives
        .iter()
        .map(|d| d.key.as_str())
        .collect();
    assert_eq!(
        derivatives,
        vec![
            "acme/v1/photos/beach.jpg/w160.webp",
            "acme/v2/photos/beach.jpg/w160.webp"
        ]
    );
    assert_eq!(r.invalidation_ids, vec!["I0".to_string()]);

    // The same request id again: nothing runs, the first summary comes back.
    s.originals
        .add_version("acme/photos/beach.jpg", "V9", false);
    let again = s.run("REQ-1", &req, &now).await.expect("repeat");
    assert_eq!(again, summary);
    assert_eq!(s.cdn.created().len(), 1);
    assert_eq!(s.audit.records(&beach).await.expect("records").len(), 1);
    assert_eq!(keys(&s.originals).await.len(), 2, "V9 stays");
}

async fn erasure_by_prefix<M: ManifestStore, A: AuditStore, B: Bucket>(s: &Stack<M, A, B>) {
    for key in ["u/1.jpg", "u/2.jpg", "keep.jpg"] {
        let a = asset(key);
        ready_version(&s.manifest, &a, "V1").await;
        s.originals.add_version(&a.id(), "V1", false);
    }
    let req = json!({"tenant": "acme", "prefix": "u/", "reason": "gdpr",
                     "requester": "dpo@example.com"});
    let summary = s.run("GDPR-7", &input(req), clock()).await.expect("erase");
    assert_eq!(summary.assets, vec!["acme/u/1.jpg", "acme/u/2.jpg"]);
    assert_eq!(summary.action, Action::Erase);
    let keep = asset("keep.jpg");
    assert_eq!(status(&s.manifest, &keep, 1).await, Some(Status::Ready));
    let gone = asset("u/1.jpg");
    assert_eq!(status(&s.manifest, &gone, 1).await, Some(Status::Erased));
    assert_eq!(keys(&s.originals).await, vec!["acme/keep.jpg"]);
    let records = s.audit.records(&gone).await.expect("records");
    assert_eq!((records.len(), records[0].status.as_str()), (1, "erased"));

    let none = json!({"tenant": "acme", "prefix": "nothing/", "reason": "dmca", "requester": "x"});
    let err = s
        .run("R2", &input(none), clock())
        .await
        .expect_err("not found");
    assert_eq!(err.error_type(), "NotFound");
    let invalidations = s.cdn.created().len();
    let typo = json!({"tenant": "acme", "keys": ["u/1.jpgg"], "reason": "dmca", "requester": "x"});
    let err = s.run("R3", &input(typo), clock()).await.expect_err("typo");
    assert_eq!(err.error_type(), "NotFound");
    assert_eq!(s.cdn.created().len(), invalidations, "a typo invalidated");
    let bad = json!({"tenant": "acme", "key": "a.jpg", "reason": "dmca", "requester": "x"});
    let err = s
        .run("bad id!", &input(bad), clock())
        .await
        .expect_err("id");
    assert_eq!(err.error_type(), "InvalidRequest");
}

async fn version_budget<M: ManifestStore, A: AuditStore, B: Bucket>(s: &Stack<M, A, B>) {
    let old = asset("avatar.png");
    for v in 0..MAX_VERSIONS_PER_REQUEST {
        ready_version(&s.manifest, &old, &format!("V{v}")).await;
    }
    ready_version(&s.manifest, &asset("other.png"), "V1").await;
    s.originals.add_version(&old.id(), "V1", false);

    let both = json!({"tenant": "acme", "keys": ["avatar.png", "other.png"], "reason": "dmca",
                      "requester": "x"});
    let err = s
        .run("R-BOTH", &input(both), clock())
        .await
        .expect_err("budget");
    assert_eq!(err.error_type(), "InvalidRequest");
    assert!(err.to_string().contains("1001 versions"), "{err}");
    assert_eq!(status(&s.manifest, &old, 1).await, Some(Status::Ready));
    assert_eq!(keys(&s.originals).await.len(), 1, "nothing deleted");
    assert!(s.audit.records(&old).await.expect("records").is_empty());

    // The asset alone goes through; its tag purges every version.
    let one = json!({"tenant": "acme", "key": "avatar.png", "reason": "dmca", "requester": "x"});
    let summary = s.run("R-ONE", &input(one), clock()).await.expect("one");
    assert_eq!(summary.assets, vec!["acme/avatar.png"]);
    let created = s.cdn.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1, vec!["#asset:acme/avatar.png"]);
    assert!(keys(&s.originals).await.is_empty());
    assert_eq!(
        status(&s.manifest, &old, 1000).await,
        Some(Status::TakenDown)
    );
}

/// `a/K`, `a/K/x` and `a/K/w640-q80.webp`, each with a ready version 1, an original and
/// derivatives (the last key's name looks like one of `a/K`'s derivatives).
async fn neighbours<M: ManifestStore, A, B: Bucket>(s: &Stack<M, A, B>) -> [AssetId; 3] {
    let ids = [asset("a/K"), asset("a/K/x"), asset("a/K/w640-q80.webp")];
    for id in &ids {
        ready_version(&s.manifest, id, "V1").await;
        s.originals.add_version(&id.id(), "V1", false);
        let replica = s.replica.as_ref().expect("r");
        replica.add_version(&id.id(), "V1", false);
        for d in ["w640-q80.webp", "w160.webp"] {
            s.derived
                .add_object(&format!("{}/{d}", id.version_prefix(1)));
        }
    }
    ids
}

const K: &str = r#"{"tenant": "acme", "key": "a/K", "reason": "dmca", "requester": "legal@x"}"#;

/// A takedown of `a/K` removes `a/K`'s objects and nothing of `a/K/x` or `a/K/w640-q80.webp`,
/// and its audit record lists only `a/K`'s.
async fn exact_takedown<M: ManifestStore, A: AuditStore, B: Bucket>(s: &Stack<M, A, B>) {
    let [k, x, lookalike] = neighbours(s).await;
    let req = input(serde_json::from_str(K).expect("json"));
    let summary = s.run("R-K", &req, clock()).await.expect("takedown");
    assert_eq!(summary.assets, vec!["acme/a/K".to_string()]);
    assert_eq!(summary.deleted, 1 + 1 + 2);

    let others = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(
        keys(&s.originals).await,
        others(&["acme/a/K/w640-q80.webp", "acme/a/K/x"])
    );
    assert_eq!(
        keys(s.replica.as_ref().expect("r")).await,
        others(&["acme/a/K/w640-q80.webp", "acme/a/K/x"])
    );
    assert_eq!(
        keys(&s.derived).await,
        others(&[
            "acme/v1/a/K/w640-q80.webp/w160.webp",
            "acme/v1/a/K/w640-q80.webp/w640-q80.webp",
            "acme/v1/a/K/x/w160.webp",
            "acme/v1/a/K/x/w640-q80.webp",
        ])
    );
    assert_eq!(status(&s.manifest, &k, 1).await, Some(Status::TakenDown));
    for other in [&x, &lookalike] {
        assert_eq!(status(&s.manifest, other, 1).await, Some(Status::Ready));
        assert!(s.audit.records(other).await.expect("records").is_empty());
    }
    let records = s.audit.records(&k).await.expect("records");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    let listed = |list: &[Deleted]| list.iter().map(|d| d.key.clone()).collect::<Vec<_>>();
    assert_eq!(listed(&r.deleted_originals), others(&["acme/a/K"]));
    assert_eq!(listed(&r.deleted_replica), others(&["acme/a/K"]));
    assert_eq!(
        listed(&r.deleted_derivatives),
        others(&["acme/v1/a/K/w160.webp", "acme/v1/a/K/w640-q80.webp"])
    );
    // The CDN purge names `a/K` alone: its tag, no wildcard over `a/K/...`.
    let created = s.cdn.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1, vec!["#asset:acme/a/K"]);
}

/// A request id names one request: reused for another asset or the other action it is a
/// conflict that changes nothing; the same request again answers the stored summary.
async fn reused_request_id<M: ManifestStore, A: AuditStore, B: Bucket>(s: &Stack<M, A, B>) {
    let [_, x, _] = neighbours(s).await;
    let first: Value = serde_json::from_str(K).expect("json");
    let summary = s
        .run("R-1", &input(first.clone()), clock())
        .await
        .expect("first");
    let other_asset = json!({"tenant": "acme", "key": "a/K/x", "reason": "dmca",
                             "requester": "legal@x"});
    let other_action = json!({"tenant": "acme", "key": "a/K", "reason": "gdpr",
                              "requester": "legal@x"});
    for (req, what) in [(other_asset, "another asset"), (other_action, "erase")] {
        let err = s.run("R-1", &input(req), clock()).await.expect_err(what);
        assert_eq!(err.error_type(), "RequestIdConflict", "{what}: {err}");
        assert!(err.to_string().contains("new request id"), "{err}");
    }
    assert_eq!(status(&s.manifest, &x, 1).await, Some(Status::Ready));
    assert!(keys(&s.originals).await.contains(&"acme/a/K/x".to_string()));
    assert!(s.audit.records(&x).await.expect("records").is_empty());
    // Restating who asked is the same request.
    let mut same = first;
    same["requester"] = json!("legal@x (again)");
    let again = s.run("R-1", &input(same), clock()).await.expect("same");
    assert_eq!(again, summary);
    // A conflict found before the first request finished changes nothing either.
    let both = s
        .run(
            "R-2",
            &input(
                json!({"tenant": "acme", "keys": ["a/K/x", "a/K"], "reason": "tenant",
                          "requester": "t"}),
            ),
            clock(),
        )
        .await
        .expect("R-2 first");
    assert_eq!(both.assets.len(), 2);
    let conflict = s
        .run(
            "R-2",
            &input(json!({"tenant": "acme", "key": "a/K/x", "reason": "tenant",
                          "requester": "t"})),
            clock(),
        )
        .await
        .expect_err("fewer keys");
    assert_eq!(conflict.error_type(), "RequestIdConflict");
}

/// Six identical requests at once (on a multi-threaded runtime): every one answers the same
/// summary, which counts every deletion; one audit record lists them all; nothing is left.
async fn concurrent_identical<M, A, B>(s: Arc<Stack<M, A, B>>)
where
    M: ManifestStore + 'static,
    A: AuditStore + 'static,
    B: Bucket + 'static,
{
    let k = asset("a/K");
    neighbours(&s).await;
    for n in 2..=3 {
        ready_version(&s.manifest, &k, &format!("V{n}")).await;
        s.originals.add_version(&k.id(), &format!("V{n}"), false);
        for d in 0..20 {
            s.derived
                .add_object(&format!("{}/w{d}-q80.webp", k.version_prefix(n)));
        }
    }
    let req = input(serde_json::from_str(K).expect("json"));
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let (s, req) = (s.clone(), req.clone());
            tokio::spawn(async move { s.run("R-SIX", &req, clock()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for run in runs {
        answers.push(run.await.expect("task").expect("run"));
    }
    let total = 3 + 1 + (2 + 40);
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert_eq!(
        answers[0].deleted, total,
        "the summary counts every deletion"
    );
    let records = s.audit.records(&k).await.expect("records");
    assert_eq!(records.len(), 1, "one audit record");
    let r = &records[0];
    assert_eq!(r.status, "taken_down");
    assert_eq!(
        r.deleted_originals.len() + r.deleted_replica.len() + r.deleted_derivatives.len(),
        total
    );
    assert_eq!(r.finished_at.as_ref(), Some(&answers[0].finished_at));
    assert_eq!(
        keys(&s.originals).await,
        vec!["acme/a/K/w640-q80.webp", "acme/a/K/x"]
    );
    assert_eq!(keys(&s.derived).await.len(), 4);
    assert_eq!(s.cdn.created().len(), 1);
}

/// Runs the state machine's sequence of steps through the task protocol (JSON in, JSON out,
/// only what the state machine keeps carried from step to step).
async fn run_tasks<M, A, B>(s: &Stack<M, A, B>, request_id: &str, req: Value) -> Value
where
    M: ManifestStore,
    A: AuditStore,
    B: Bucket,
{
    let step = |v: Value| async move { s.handle(v).await.expect("step") };
    let begun = step(json!({"step": "begin", "request_id": request_id, "request": req})).await;
    if begun["already_done"] == json!(true) {
        return begun;
    }
    let mut purged = Vec::new();
    for asset in begun["assets"].as_array().expect("assets") {
        let mut per = Vec::new();
        for target in ["originals", "replica", "derived"] {
            let out = step(json!({"step": "purge", "request_id": request_id,
                                  "target": target, "asset": asset}))
            .await;
            // The state machine keeps only the count (its ResultSelector).
            per.push(json!({"deleted": out["deleted"]}));
        }
        purged.push(Value::Array(per));
    }
    let plan = step(json!({"step": "plan", "request_id": request_id,
                           "assets": begun["assets"]}))
    .await;
    let mut invalidations = Vec::new();
    for batch in plan["batches"].as_array().expect("batches") {
        invalidations.push(
            step(json!({"step": "invalidate", "request_id": request_id,
                        "index": batch["index"], "assets": begun["assets"]}))
            .await,
        );
    }
    step(json!({"step": "finish", "begin": begun, "purged": purged,
                "invalidations": invalidations}))
    .await
}

/// The task protocol, step by step, leaves what [`Removal::run`] leaves.
async fn the_task_protocol_matches_run<M, A, B>(by_tasks: &Stack<M, A, B>, by_run: &Stack<M, A, B>)
where
    M: ManifestStore,
    A: AuditStore,
    B: Bucket,
{
    let asset = beach(by_tasks).await;
    beach(by_run).await;
    let req: Value = serde_json::from_str(BEACH).expect("json");
    let tasks = run_tasks(by_tasks, "REQ-T", req.clone()).await;
    let mut tasks: Summary = serde_json::from_value(tasks).expect("summary");
    let mut run = by_run
        .run("REQ-T", &input(req.clone()), clock())
        .await
        .expect("run");
    for s in [&mut tasks, &mut run] {
        s.started_at.clear();
        s.finished_at.clear();
    }
    assert_eq!(tasks, run);
    let mut records = Vec::new();
    for s in [by_tasks, by_run] {
        let mut r = s.audit.records(&asset).await.expect("records");
        for r in &mut r {
            r.started_at.clear();
            r.finished_at = None;
        }
        records.push(r);
        assert_eq!(keys(&s.originals).await, vec!["acme/photos/beach.jpg.bak"]);
    }
    assert_eq!(records[0], records[1]);
    assert_eq!(by_tasks.cdn.created(), by_run.cdn.created());
    let again = run_tasks(by_tasks, "REQ-T", req).await;
    assert_eq!(again["already_done"], json!(true));
}

macro_rules! end_to_end {
    ($name:ident, $stack:path) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn a_takedown_removes_every_version_everywhere_and_is_audited_once() {
                let (s, _dir) = $stack();
                takedown_everywhere(&s).await;
            }

            #[tokio::test]
            async fn erasure_by_prefix_marks_erased_and_unknown_prefixes_are_not_found() {
                let (s, _dir) = $stack();
                erasure_by_prefix(&s).await;
            }

            #[tokio::test]
            async fn a_request_over_the_version_budget_changes_nothing_and_one_asset_is_always_removable(
            ) {
                let (s, _dir) = $stack();
                version_budget(&s).await;
            }

            #[tokio::test]
            async fn a_takedown_of_k_leaves_k_slash_x_and_a_derivative_like_key_alone() {
                let (s, _dir) = $stack();
                exact_takedown(&s).await;
            }

            #[tokio::test]
            async fn a_request_id_reused_for_another_asset_or_action_is_a_conflict() {
                let (s, _dir) = $stack();
                reused_request_id(&s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_identical_requests_make_one_record_and_a_complete_removal() {
                let (s, _dir) = $stack();
                concurrent_identical(Arc::new(s)).await;
            }

            #[tokio::test]
            async fn the_task_protocol_leaves_what_run_leaves() {
                let ((a, _a), (b, _b)) = ($stack(), $stack());
                the_task_protocol_matches_run(&a, &b).await;
            }
        }
    };
}

end_to_end!(memory, memory_stack);
#[cfg(feature = "local")]
end_to_end!(local, local_stack);

/// A CDN that completes an invalidation only at its second status check.
#[derive(Default)]
struct SlowCdn {
    inner: MemoryCdn,
    checks: AtomicU32,
}

impl Cdn for SlowCdn {
    async fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<Invalidation, CdnError> {
        let created = self.inner.invalidate(caller_reference, paths).await?;
        Ok(Invalidation {
            status: "InProgress".into(),
            done: false,
            ..created
        })
    }

    async fn invalidation(&self, id: &str) -> Result<Invalidation, CdnError> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        Ok(Invalidation {
            id: id.to_string(),
            status: if n % 2 == 1 {
                "Completed"
            } else {
                "InProgress"
            }
            .into(),
            done: n % 2 == 1,
            caller_reference: String::new(),
            paths: 0,
        })
    }
}

#[tokio::test]
async fn a_run_waits_for_each_invalidation_and_gives_up_on_a_refusing_cdn() {
    let (m, _) = memory_stack();
    let slow = Removal {
        cdn: Arc::new(SlowCdn::default()),
        manifest: m.manifest,
        audit: m.audit,
        originals: m.originals,
        replica: m.replica,
        derived: m.derived,
    };
    let beach = asset("photos/beach.jpg");
    ready_version(&slow.manifest, &beach, "V1").await;
    let req = input(serde_json::from_str(BEACH).expect("json"));
    let summary = slow.run("R-SLOW", &req, clock()).await.expect("run");
    assert_eq!(summary.invalidation_ids.len(), 1, "the tag batch");
    assert_eq!(
        slow.cdn.checks.load(Ordering::SeqCst),
        2,
        "two checks a batch"
    );

    // A CDN that keeps refusing: retried a bounded number of times, then the run fails with
    // the CDN's error and the request stays open (a later run with the same id goes on).
    let (s, _) = memory_stack();
    ready_version(&s.manifest, &beach, "V1").await;
    s.cdn.refuse_next(RUN_CDN_RETRIES as usize + 1);
    let err = s.run("R-BUSY", &req, clock()).await.expect_err("refused");
    assert_eq!(err.error_type(), "TooManyInvalidationsInProgress");
    assert_eq!(s.audit.finished("R-BUSY").await.expect("read"), None);
    assert!(s.run("R-BUSY", &req, clock()).await.is_ok());
    assert_eq!(s.cdn.created().len(), 1);
}

/// What a run retries is what the state machine retries, step by step.
#[test]
fn a_run_retries_what_the_state_machine_retries() {
    let asl: Value =
        serde_json::from_str(include_str!("../../../statemachine/takedown.asl.json")).expect("asl");
    let states = &asl["States"];
    // The state's retried error names, without those only Lambda and Step Functions raise.
    let retried = |state: &Value, i: usize| -> Vec<String> {
        let mut names: Vec<String> = state["Retry"][i]["ErrorEquals"]
            .as_array()
            .expect("retry")
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .filter(|e| !e.contains('.'))
            .collect();
        names.sort();
        names
    };
    let sorted = |names: &[&str]| {
        let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        v.sort();
        v
    };
    for name in ["Begin", "Plan", "Finish"] {
        assert_eq!(retried(&states[name], 0), sorted(&RETRIED), "{name}");
    }
    let item = &states["Invalidate"]["ItemProcessor"]["States"];
    assert_eq!(
        retried(&item["CreateInvalidation"], 0),
        sorted(&RETRIED_INVALIDATION)
    );
    assert_eq!(retried(&item["CreateInvalidation"], 1), sorted(&RETRIED));
    assert_eq!(
        retried(&item["CheckInvalidation"], 0),
        sorted(&RETRIED_STATUS)
    );
    let purge = &states["PurgeAssets"]["ItemProcessor"]["States"]["PurgeBuckets"]["Branches"];
    for b in purge.as_array().expect("branches") {
        let task = &b["States"][b["StartAt"].as_str().expect("start")];
        assert_eq!(retried(task, 0), sorted(&RETRIED));
    }
}
