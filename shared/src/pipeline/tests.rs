//! Pipeline tests over the in-memory adapters (the emulator-backed end-to-end tests live in
//! `tests/integration`).

use super::task::handle;
use super::*;
use crate::store::memory::{MemoryManifest, MemoryObjects};
use serde_json::Value;

const BUCKET: &str = "pixelfront-originals";

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn pipeline() -> Pipeline<MemoryObjects, MemoryObjects, MemoryManifest> {
    Pipeline::new(
        MemoryObjects::new(),
        MemoryObjects::new(),
        MemoryManifest::new(),
        BUCKET,
    )
}

fn upload(
    p: &Pipeline<MemoryObjects, MemoryObjects, MemoryManifest>,
    key: &str,
    version: &str,
    bytes: Vec<u8>,
) -> SourceRef {
    let size = bytes.len() as u64;
    p.originals.insert(key, Some(version), bytes);
    SourceRef {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: Some(version.into()),
        etag: Some(format!("etag-{version}")),
        size,
    }
}

fn asset(tenant: &str, key: &str) -> AssetId {
    AssetId {
        tenant: tenant.into(),
        key: key.into(),
    }
}

#[tokio::test]
async fn an_upload_becomes_version_1_with_eight_static_variants() {
    let p = pipeline();
    let src = upload(&p, "acme/photos/beach.png", "a1", png(800, 600));
    let out = p.process(src).await.expect("process");
    assert!(out.job.created);
    assert_eq!(out.job.version, 1);
    let report = out.render.expect("rendered");
    assert_eq!(report.status, Status::Ready);
    assert_eq!(report.variants.len(), 8);

    let a = asset("acme", "photos/beach.png");
    let rec = p.manifest.get(&a, 1).await.expect("get").expect("record");
    assert_eq!(rec.status, Status::Ready);
    assert_eq!(rec.variants.len(), 8);
    assert_eq!(rec.source_version_id, "a1");
    assert_eq!(
        rec.original,
        Some(OriginalInfo {
            width: 800,
            height: 600,
            format: "png".into()
        })
    );
    assert_eq!(p.manifest.latest(&a).await.expect("latest"), Some(1));

    let keys = p.derived.keys();
    assert_eq!(keys.len(), 8);
    for v in &report.variants {
        assert!(v.object_key.starts_with("acme/v1/photos/beach.png/"));
        let obj = p.derived.object(&v.object_key).expect("written");
        let opts = obj.opts.expect("options");
        assert_eq!(opts.cache_control, DERIVATIVE_CACHE_CONTROL);
        assert_eq!(
            opts.cache_tag.as_deref(),
            Some("asset:acme/photos/beach.png")
        );
        assert_eq!(opts.content_type, v.content_type);
        assert_eq!(obj.bytes.len() as u64, v.variant.bytes);
    }
    let thumb = report
        .variants
        .iter()
        .find(|v| v.variant.derivative == "w160-h160-q75.webp")
        .expect("thumb");
    assert_eq!((thumb.variant.width, thumb.variant.height), (160, 160));
}

#[tokio::test]
async fn repeated_events_keep_one_version_and_new_uploads_get_the_next() {
    let p = pipeline();
    let first = upload(&p, "acme/a.png", "v-one", png(64, 48));
    p.process(first.clone()).await.expect("first");
    let again = p.assign(first.clone()).await.expect("repeat");
    assert_eq!(again.version, 1);
    assert!(!again.created);
    assert_eq!(again.action, Action::Done);

    let second = upload(&p, "acme/a.png", "v-two", png(32, 32));
    let out = p.process(second).await.expect("second");
    assert_eq!(out.job.version, 2);
    assert_eq!(
        p.manifest.latest(&asset("acme", "a.png")).await.expect("l"),
        Some(2)
    );
    assert!(p
        .derived
        .keys()
        .iter()
        .any(|k| k.starts_with("acme/v1/a.png/")));
    assert!(p
        .derived
        .keys()
        .iter()
        .any(|k| k.starts_with("acme/v2/a.png/")));
    // The repeat of the first event still maps to version 1.
    assert_eq!(p.assign(first).await.expect("repeat").version, 1);
}

#[tokio::test]
async fn a_corrupt_original_is_failed_with_its_reason_and_writes_nothing() {
    let p = pipeline();
    let mut bytes = png(64, 64);
    bytes.truncate(bytes.len() / 2);
    let src = upload(&p, "acme/broken.png", "b1", bytes);
    let err = p.process(src.clone()).await.expect_err("corrupt");
    assert_eq!(err.error_type(), "ImageCorrupt");
    let rec = p
        .manifest
        .get(&asset("acme", "broken.png"), 1)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error_type.as_deref(), Some("ImageCorrupt"));
    assert!(rec.error.unwrap_or_default().contains("corrupt"));
    assert!(p.derived.keys().is_empty());
    // A redelivery does not render again: the upload stays rejected.
    let again = p.assign(src).await.expect("assign");
    assert_eq!(again.action, Action::Rejected);
}

#[tokio::test]
async fn unservable_keys_and_oversize_objects_are_rejected_without_a_download() {
    let p = pipeline();
    let src = SourceRef {
        bucket: BUCKET.into(),
        key: "acme/summer sale/red+blue.jpg".into(),
        version_id: Some("k1".into()),
        etag: None,
        size: 10,
    };
    let job = p.assign(src).await.expect("assign");
    assert_eq!(job.action, Action::Rejected);
    assert_eq!(job.status, Status::Failed);
    assert_eq!(job.error_type.as_deref(), Some("KeyRejected"));
    assert_eq!(job.asset, asset("acme", "summer sale/red+blue.jpg"));

    let big = SourceRef {
        bucket: BUCKET.into(),
        key: "acme/huge.jpg".into(),
        version_id: Some("h1".into()),
        etag: None,
        size: 60 * 1024 * 1024,
    };
    let err = p.process(big).await.expect_err("too large");
    assert_eq!(err.error_type(), "ImageTooLarge");
    let rec = p
        .manifest
        .get(&asset("acme", "huge.jpg"), 1)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.status, Status::Failed);

    let foreign = SourceRef {
        bucket: "someone-elses-bucket".into(),
        ..upload(&p, "acme/x.png", "x1", png(8, 8))
    };
    let err = p.assign(foreign).await.expect_err("foreign bucket");
    assert_eq!(err.error_type(), "InvalidInput");
}

#[tokio::test]
async fn transient_store_failures_leave_the_version_rendering_for_a_retry() {
    let p = pipeline();
    let src = upload(&p, "acme/retry.png", "r1", png(64, 64));
    let job = p.assign(src).await.expect("assign");
    p.derived.fail_next(1);
    let err = p.render(&job).await.expect_err("store down");
    assert_eq!(err.error_type(), "StoreUnavailable");
    assert!(!err.is_permanent());
    let rec = p
        .manifest
        .get(&job.asset, 1)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.status, Status::Rendering);
    let report = p.render(&job).await.expect("retry");
    assert_eq!(report.status, Status::Ready);
    // A late failure from a duplicate run does not downgrade `ready`.
    let after = p
        .fail(&job, "StoreUnavailable", "late")
        .await
        .expect("fail");
    assert_eq!(after.status, Status::Ready);
    assert_eq!(after.action, Action::Done);
    // And rendering again is a no-op.
    assert!(p.render(&job).await.expect("again").skipped);
}

#[tokio::test]
async fn render_or_fail_retries_transient_errors_then_records_them() {
    let quick = Retry {
        retries: 2,
        first_delay: std::time::Duration::from_millis(1),
        backoff: 2,
        max_delay: std::time::Duration::from_millis(5),
        record_exhausted: true,
    };
    let p = pipeline();
    // Two failed writes: the second retry renders.
    let job = p
        .assign(upload(&p, "acme/flaky.png", "f1", png(64, 64)))
        .await
        .expect("assign");
    p.derived.fail_next(2);
    let report = p.render_or_fail(&job, quick).await.expect("retried");
    assert_eq!(report.status, Status::Ready);
    // A store that stays down: the retries are used up and the failure is recorded, with a
    // transient type that a redelivered event renders again.
    let job = p
        .assign(upload(&p, "acme/down.png", "d1", png(64, 64)))
        .await
        .expect("assign");
    p.derived.fail_next(100);
    let err = p.render_or_fail(&job, quick).await.expect_err("down");
    assert_eq!(err.error_type(), "StoreUnavailable");
    let rec = p
        .manifest
        .get(&job.asset, 1)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error_type.as_deref(), Some("StoreUnavailable"));
    // The redelivery policy leaves a transient failure `rendering`.
    let job = p
        .assign(upload(&p, "acme/later.png", "l1", png(64, 64)))
        .await
        .expect("assign");
    let err = p
        .render_or_fail(&job, Retry::REDELIVERY)
        .await
        .expect_err("still down");
    assert!(!err.is_permanent());
    let rec = p
        .manifest
        .get(&job.asset, 1)
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.status, Status::Rendering);
}

#[tokio::test]
async fn task_payloads_from_the_events_folder_drive_the_steps() {
    let p = pipeline();
    let ev: Value =
        serde_json::from_str(include_str!("../../../events/task-assign.json")).expect("json");
    // The sample event names a 5 MB JPEG at this exact version; seed a small PNG under it.
    upload(
        &p,
        "acme/photos/beach.jpg",
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        png(320, 240),
    );
    let job = handle(&p, ev).await.expect("assign");
    assert_eq!(job["version"], 1);
    assert_eq!(job["action"], "render");
    assert_eq!(job["tenant"], "acme");

    let render: Value =
        serde_json::from_str(include_str!("../../../events/task-render.json")).expect("json");
    assert_eq!(render["job"]["source"], job["source"]);
    let report = handle(&p, render).await.expect("render");
    assert_eq!(report["status"], "ready");
    assert_eq!(report["variants"].as_array().map(Vec::len), Some(8));
    assert!(
        report.to_string().len() < 8 * 1024,
        "no bytes in the result"
    );

    let fail: Value =
        serde_json::from_str(include_str!("../../../events/task-fail.json")).expect("json");
    let after = handle(&p, fail).await.expect("fail");
    assert_eq!(
        after["status"], "ready",
        "a late failure never downgrades ready"
    );

    let not_image: Value = serde_json::from_str(include_str!(
        "../../../events/object-created-not-an-image.json"
    ))
    .expect("json");
    p.originals.insert(
        "acme/docs/readme.txt",
        Some("pQ3n.4Wk9vX1s7ZrHc2Lb6YtM0aJdE8u"),
        b"just some text, certainly not an image".to_vec(),
    );
    let err = handle(&p, not_image).await.expect_err("not an image");
    assert_eq!(err.error_type(), "ImageUnsupported");

    let encoded: Value = serde_json::from_str(include_str!(
        "../../../events/object-created-encoded-key.json"
    ))
    .expect("json");
    let err = handle(&p, encoded).await.expect_err("key");
    assert_eq!(err.error_type(), "KeyRejected");

    for bad in [
        serde_json::json!({"hello": "world"}),
        serde_json::json!({"step": "explode"}),
        serde_json::json!({"step": "render", "job": {"tenant": 3}}),
    ] {
        let err = handle(&p, bad).await.expect_err("invalid");
        assert_eq!(err.error_type(), "InvalidInput");
    }
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_795_603_599), "2026-11-25T10:46:39Z");
    assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    assert_eq!(rfc3339(253_402_300_800), "9999-12-31T23:59:59Z");
    assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
}

#[test]
fn lambda_causes_yield_their_message() {
    assert_eq!(
        cause_message(r#"{"errorType":"ImageCorrupt","errorMessage":"corrupt png image: x"}"#),
        "corrupt png image: x"
    );
    assert_eq!(cause_message("Task timed out"), "Task timed out");
    assert!(is_transient_error_type("Lambda.ServiceException"));
    assert!(is_transient_error_type("States.Timeout"));
    assert!(!is_transient_error_type("ImageCorrupt"));
}

#[tokio::test]
async fn a_backfill_renders_stale_versions_once_and_leaves_the_rest() {
    let p = pipeline();
    let a = asset("acme", "photos/stale.png");
    let src = upload(&p, "acme/photos/stale.png", "s1", png(640, 480));
    p.process(src).await.expect("process");
    let fresh = p.manifest.get(&a, 1).await.expect("get").expect("record");
    assert_eq!(fresh.variants.len(), 8);

    // A current version: nothing is written.
    let before = p.derived.keys().len();
    let r = p.backfill(&a, 1).await.expect("backfill");
    assert_eq!(r.outcome, BackfillOutcome::Current);

    // An older catalogue: the record lacks a variant and its object is gone.
    let info = fresh.original.clone().expect("original");
    let older = &fresh.variants[1..];
    p.manifest
        .mark_ready(&a, 1, &info, older, "t")
        .await
        .expect("mark");
    let r = p.backfill(&a, 1).await.expect("backfill");
    assert_eq!((r.outcome, r.variants), (BackfillOutcome::Rendered, 8));
    let again = p.manifest.get(&a, 1).await.expect("get").expect("record");
    let names = |v: &[VariantRecord]| v.iter().map(|x| x.derivative.clone()).collect::<Vec<_>>();
    assert_eq!(names(&again.variants), names(&fresh.variants));
    assert_eq!(p.derived.keys().len(), before);
    assert_eq!(
        p.backfill(&a, 1).await.expect("backfill").outcome,
        BackfillOutcome::Current
    );

    // A removed version is skipped; an unknown one is an error, not a panic.
    p.manifest
        .mark_removed(&a, Status::TakenDown, "t")
        .await
        .expect("remove");
    assert_eq!(
        p.backfill(&a, 1).await.expect("backfill").outcome,
        BackfillOutcome::Skipped
    );
    assert!(p.backfill(&a, 9).await.is_err());

    // The task protocol: count, one page, one step.
    let b = asset("acme", "photos/other.png");
    let src = upload(&p, "acme/photos/other.png", "o1", png(320, 240));
    p.process(src).await.expect("process");
    let count = handle(&p, serde_json::json!({"step": "backfill_count"}))
        .await
        .expect("count");
    assert_eq!(count["total"], 1);
    assert!(count["cursor"].is_null());
    let page = handle(&p, serde_json::json!({"step": "backfill_page", "limit": 1}))
        .await
        .expect("page");
    let next = handle(
        &p,
        serde_json::json!({"step": "backfill_page", "cursor": page["cursor"], "limit": 1000}),
    )
    .await
    .expect("page 2");
    let items: Vec<Value> = [&page, &next]
        .iter()
        .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        items,
        vec![serde_json::json!({"tenant": "acme", "key": b.key, "version": 1})]
    );
    assert!(next["cursor"].is_null());
    let step = handle(
        &p,
        serde_json::json!({"step": "backfill", "tenant": "acme", "key": "photos/other.png", "version": 1}),
    )
    .await
    .expect("step");
    assert_eq!(step["outcome"], "current");
}

#[tokio::test]
async fn a_takedown_during_the_render_leaves_no_variant_behind() {
    let manifest = std::sync::Arc::new(MemoryManifest::new());
    let written = std::sync::Arc::new(MemoryObjects::new());
    let a = asset("acme", "race.png");
    let p = Pipeline::new(
        MemoryObjects::new(),
        crate::store::memory::RemovingObjects {
            inner: written.clone(),
            manifest: manifest.clone(),
            asset: a.clone(),
        },
        manifest.clone(),
        BUCKET,
    );
    let bytes = png(300, 200);
    let size = bytes.len() as u64;
    p.originals.insert("acme/race.png", Some("r1"), bytes);
    let src = SourceRef {
        bucket: BUCKET.into(),
        key: "acme/race.png".into(),
        version_id: Some("r1".into()),
        etag: Some("etag-r1".into()),
        size,
    };
    let out = p.process(src).await.expect("process");
    let report = out.render.expect("the render step ran");
    assert!(report.skipped);
    assert_eq!(report.status, Status::TakenDown);
    assert!(report.variants.is_empty());
    assert!(
        written.keys().is_empty(),
        "left behind: {:?}",
        written.keys()
    );
    let rec = manifest.get(&a, 1).await.expect("get").expect("record");
    assert_eq!(rec.status, Status::TakenDown);
}

/// Every error name a failed version can carry, with whether a redelivered event may render it
/// again: the platform's names (Step Functions and Lambda report them for a run, not for the
/// image) are transient, the pipeline's image and input errors are permanent.
#[test]
fn every_error_name_is_transient_or_permanent() {
    let table = [
        // Invoke-level errors of the Lambda service.
        ("Lambda.ServiceException", true),
        ("Lambda.AWSLambdaException", true),
        ("Lambda.SdkClientException", true),
        ("Lambda.TooManyRequestsException", true),
        ("Lambda.ClientExecutionTimeoutException", true),
        // An unhandled function error (out of memory, timeout) as Step Functions names it.
        ("Lambda.Unknown", true),
        // A crashed, OOM-killed or timed-out Rust function.
        ("Runtime.ExitError", true),
        ("Runtime.OutOfMemory", true),
        ("Sandbox.Timedout", true),
        // A task timeout and Step Functions' own failures.
        ("States.Timeout", true),
        ("States.TaskFailed", true),
        // The pipeline's transient errors.
        ("StoreUnavailable", true),
        ("ManifestUnavailable", true),
        ("VersionConflict", true),
        // The pipeline's permanent errors.
        ("ImageCorrupt", false),
        ("ImageTooLarge", false),
        ("ImageUnsupported", false),
        ("ImageRenderFailed", false),
        ("KeyRejected", false),
        ("SourceGone", false),
        ("StoreDenied", false),
        ("InvalidInput", false),
        ("ManifestInvalid", false),
        // Look-alikes of a platform prefix are not platform names.
        ("Runtime", false),
        ("LambdaUnknown", false),
        ("SandboxTimedout", false),
    ];
    for (name, transient) in table {
        assert_eq!(is_transient_error_type(name), transient, "{name}");
        let recorded = PipelineError::Recorded {
            error_type: name.into(),
            reason: "r".into(),
        };
        assert_eq!(recorded.is_permanent(), !transient, "{name}");
    }
}

/// The state machine's `MarkFailed` after a crash outlived its retries, then the same S3 event
/// again: a platform failure renders again (`ready`), an image error stays refused.
#[tokio::test]
async fn a_redelivered_event_after_a_crash_renders_again() {
    let crashes = [
        "Runtime.ExitError",
        "Runtime.OutOfMemory",
        "Sandbox.Timedout",
        "States.Timeout",
        "Lambda.Unknown",
        "Lambda.ClientExecutionTimeoutException",
    ];
    let p = pipeline();
    for (i, name) in crashes.iter().enumerate() {
        let src = upload(&p, &format!("acme/crash-{i}.png"), "c1", png(64, 48));
        let job = p.assign(src.clone()).await.expect("assign");
        let cause = serde_json::json!({
            "errorType": name,
            "errorMessage": "RequestId: 7f3c Error: Runtime exited with error: signal: aborted",
        });
        let fail = serde_json::json!({
            "step": "fail",
            "job": job,
            "error": {"Error": name, "Cause": cause.to_string()},
        });
        let failed = handle(&p, fail).await.expect("mark failed");
        assert_eq!(failed["status"], "failed", "{name}");
        assert_eq!(failed["error_type"], *name);

        let again = p.assign(src.clone()).await.expect("redelivered");
        assert_eq!(again.version, 1, "{name}: the same version");
        assert_eq!(again.action, Action::Render, "{name}");
        let out = p.process(src).await.expect("renders again");
        let report = out.render.expect("rendered");
        assert_eq!(report.status, Status::Ready, "{name}");
        assert_eq!(report.variants.len(), 8);
        let rec = p
            .manifest
            .get(&job.asset, 1)
            .await
            .expect("get")
            .expect("record");
        assert_eq!(rec.status, Status::Ready, "{name}");
    }
    // A permanent failure recorded the same way stays refused.
    let src = upload(&p, "acme/corrupt.png", "k1", png(64, 48));
    let job = p.assign(src.clone()).await.expect("assign");
    p.fail(&job, "ImageCorrupt", "corrupt png image")
        .await
        .expect("mark failed");
    let again = p.assign(src.clone()).await.expect("redelivered");
    assert_eq!(again.action, Action::Rejected);
    let err = p.process(src).await.expect_err("refused");
    assert_eq!(err.error_type(), "ImageCorrupt");
}
