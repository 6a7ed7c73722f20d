//! Unit tests of on-demand delivery over the in-memory adapters.

use super::*;
use crate::store::memory::{MemoryManifest, MemoryObjects, MemoryPolicies};
use crate::store::{Object, SourceRef};
use std::collections::BTreeMap;

const NOW: u64 = 1_800_000_000;

type Memory =
    Transformer<MemoryObjects, MemoryObjects, MemoryObjects, MemoryManifest, MemoryPolicies>;

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode test PNG");
    out
}

fn hex_md5(bytes: &[u8]) -> String {
    etag_of(bytes).trim_matches('"').to_string()
}

fn transformer() -> Memory {
    Transformer {
        originals: MemoryObjects::new(),
        replica: Some(MemoryObjects::new()),
        derived: MemoryObjects::new(),
        manifest: MemoryManifest::new(),
        policies: MemoryPolicies::new(),
        config: TransformConfig::default(),
        admission: Admission::default(),
    }
}

/// Puts `bytes` into `store` as `{tenant}/{key}` S3 version `vid` and assigns it a version in
/// `manifest` -> (the asset, its manifest version).
async fn assign_original<M: ManifestStore>(
    store: &MemoryObjects,
    manifest: &M,
    (tenant, key, vid): (&str, &str, &str),
    bytes: &[u8],
) -> (AssetId, u32) {
    let id = format!("{tenant}/{key}");
    store.insert(&id, Some(vid), bytes.to_vec());
    let asset = AssetId {
        tenant: tenant.into(),
        key: key.into(),
    };
    let source = SourceRef {
        bucket: "originals".into(),
        key: id,
        version_id: Some(vid.into()),
        etag: Some(hex_md5(bytes)),
        size: bytes.len() as u64,
    };
    let a = manifest
        .assign(&asset, &source, "2026-01-01T00:00:00Z")
        .await;
    let version = a.expect("assign").record.version;
    (asset, version)
}

/// Uploads `bytes` as `{tenant}/{key}` S3 version `vid` and assigns it a manifest version.
async fn upload(t: &Memory, tenant: &str, key: &str, vid: &str, bytes: &[u8]) -> u32 {
    assign_original(&t.originals, &t.manifest, (tenant, key, vid), bytes)
        .await
        .1
}

fn get(path_query: &str) -> Incoming<'_> {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Incoming {
        path,
        query,
        ..Incoming::default()
    }
}

#[tokio::test]
async fn a_miss_is_rendered_stored_and_then_served_from_the_stored_object() {
    let t = transformer();
    let original = png(400, 300);
    assert_eq!(upload(&t, "acme", "a/b.png", "s3v1", &original).await, 1);

    let first = t
        .serve(&get("/img/acme/v1/a/b.png?w=100&fmt=PNG&utm=x"), NOW)
        .await;
    let first = first.expect("rendered");
    assert_eq!(first.derived_key, "acme/v1/a/b.png/w128.png");
    assert_eq!(first.content_type, "image/png");
    assert_eq!(first.cache_control, DERIVATIVE_CACHE_CONTROL);
    assert_eq!(
        first.source,
        Source::Rendered {
            from_replica: false,
            stored: true
        }
    );
    let img = image::load_from_memory(&first.bytes).expect("decodes");
    assert_eq!((img.width(), img.height()), (128, 96));

    let stored = t
        .derived
        .object("acme/v1/a/b.png/w128.png")
        .expect("stored");
    assert_eq!(stored.bytes, first.bytes);
    let opts = stored.opts.expect("written with options");
    assert_eq!(opts.cache_tag.as_deref(), Some("asset:acme/a/b.png"));
    assert_eq!(opts.content_type, "image/png");

    let second = t
        .serve(&get("/img/acme/v1/a/b.png?fmt=png&w=128"), NOW)
        .await;
    let second = second.expect("stored");
    assert_eq!(second.source, Source::Stored);
    assert_eq!(second.bytes, first.bytes);
    assert_eq!(second.etag, first.etag);
}

#[tokio::test]
async fn a_forwarded_request_must_normalize_to_the_requested_derivative() {
    let t = transformer();
    upload(&t, "acme", "p.png", "s3v1", &png(200, 200)).await;
    let ok = Incoming {
        path: "/acme/v1/p.png/w160-q80.webp",
        forwarded: Some("/img/acme/v1/p.png?W=150&fmt=webp&junk=1"),
        ..Incoming::default()
    };
    let d = t.serve(&ok, NOW).await.expect("served");
    assert_eq!(d.derived_key, "acme/v1/p.png/w160-q80.webp");
    assert_eq!(d.content_type, "image/webp");

    for (path, forwarded) in [
        (
            "/acme/v1/p.png/w320-q80.webp",
            "/img/acme/v1/p.png?w=150&fmt=webp",
        ),
        (
            "/acme/v1/p.png/w160-q80.webp",
            "/img/other/v1/p.png?w=150&fmt=webp",
        ),
        (
            "/other/v1/p.png/w160-q80.webp",
            "/img/acme/v1/p.png?w=150&fmt=webp",
        ),
        (
            "acme/v1/p.png/w160-q80.webp",
            "/img/acme/v1/p.png?w=150&fmt=webp",
        ),
    ] {
        let req = Incoming {
            path,
            forwarded: Some(forwarded),
            ..Incoming::default()
        };
        assert_eq!(
            t.serve(&req, NOW).await,
            Err(DeliveryError::Mismatch),
            "{path} {forwarded}"
        );
    }
    // Without the header, a derived-object URI is not a viewer request at all.
    let bare = get("/acme/v1/p.png/w160-q80.webp");
    let err = t.serve(&bare, NOW).await.expect_err("rejected");
    assert_eq!(err.status(), 400);
    assert_eq!(err.reason(), "bad path: expected /img/{tenant}/v{N}/{key}");
}

#[tokio::test]
async fn signature_and_referer_are_checked_with_the_tenant_policy() {
    let t = transformer();
    upload(&t, "acme", "p.png", "s3v1", &png(64, 64)).await;
    let mut keys = BTreeMap::new();
    keys.insert("k2".to_string(), "second-secret".to_string());
    t.policies.set(
        "acme",
        TenantPolicy {
            sign: true,
            keys,
            referers: vec!["shop.example".into()],
            on_demand: OnDemand::Any,
        },
    );
    let unsigned = t.serve(&get("/img/acme/v1/p.png?w=32&fmt=png"), NOW).await;
    assert_eq!(
        unsigned,
        Err(DeliveryError::Forbidden(Forbidden::SignatureRequired))
    );

    let signed = sign::sign_uri(
        "/img/acme/v1/p.png",
        "w=32&fmt=png",
        "k2",
        "second-secret",
        NOW + 60,
    )
    .expect("sign");
    assert!(t.serve(&get(&signed), NOW).await.is_ok());
    let expired = t.serve(&get(&signed), NOW + 60).await;
    assert_eq!(expired, Err(DeliveryError::Forbidden(Forbidden::Expired)));
    let other_key = sign::sign_uri(
        "/img/acme/v1/p.png",
        "w=32&fmt=png",
        "k1",
        "first",
        NOW + 60,
    )
    .expect("sign");
    let refused = t.serve(&get(&other_key), NOW).await;
    assert_eq!(
        refused,
        Err(DeliveryError::Forbidden(Forbidden::UnknownKey))
    );
    let tampered = signed.replace("w=32", "w=33");
    let refused = t.serve(&get(&tampered), NOW).await;
    assert_eq!(
        refused,
        Err(DeliveryError::Forbidden(Forbidden::BadSignature))
    );

    let (path, query) = signed.split_once('?').expect("query");
    let hotlink = Incoming {
        path,
        query,
        referer: Some("https://evil.example/page"),
        ..Incoming::default()
    };
    let refused = t.serve(&hotlink, NOW).await.expect_err("hotlink");
    assert_eq!(
        (refused.status(), refused.reason()),
        (403, "hotlink refused".to_string())
    );
    assert_eq!(refused.cache_control(), "no-store");

    // Forwarded: the signature is checked over the viewer's request, not the rewritten URI.
    let forwarded = Incoming {
        path: "/acme/v1/p.png/w32.png",
        forwarded: Some(&signed),
        referer: Some("https://shop.example/cart"),
        ..Incoming::default()
    };
    assert!(t.serve(&forwarded, NOW).await.is_ok());
}

#[tokio::test]
async fn unknown_assets_versions_and_bad_parameters_are_4xx_with_short_reasons() {
    let t = transformer();
    upload(&t, "acme", "p.png", "s3v1", &png(64, 64)).await;
    for (uri, status, reason) in [
        ("/img/acme/v2/p.png", 404, "not found"),
        ("/img/acme/v1/q.png", 404, "not found"),
        ("/img/globex/v1/p.png", 404, "not found"),
        (
            "/img/acme/v1/p.png?w=0",
            400,
            "bad w: expected an integer 1..8192",
        ),
        (
            "/img/acme/v1/p.png?fmt=gif",
            400,
            "bad fmt: expected jpeg, jpg, webp, avif, png or auto",
        ),
        ("/img/acme/v1/p.png?q=1&Q=2", 400, "duplicate parameter q"),
        ("/img/acme/v01/p.png", 400, "bad version"),
        ("/img/acme/v1/../p.png", 400, "bad key"),
    ] {
        let err = t.serve(&get(uri), NOW).await.expect_err(uri);
        assert_eq!(
            (err.status(), err.reason().as_str()),
            (status, reason),
            "{uri}"
        );
        assert_eq!(err.cache_control(), CLIENT_ERROR_CACHE_CONTROL, "{uri}");
    }
    assert!(
        t.derived.keys().is_empty(),
        "nothing written for rejected requests"
    );
}

#[tokio::test]
async fn every_rejected_normalization_vector_is_rejected_with_the_edge_reason() {
    let t = transformer();
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/normalize.json"))
            .expect("vectors");
    let cases = vectors["cases"].as_array().expect("cases");
    let mut rejected = 0;
    for case in cases {
        let Some(reason) = case["reject"].as_str() else {
            continue;
        };
        let path = case["path"].as_str().expect("path");
        let query = case["query"].as_str().unwrap_or("");
        let uri = format!("{path}?{query}");
        let req = Incoming {
            path,
            query,
            accept: case["accept"].as_str(),
            ..Incoming::default()
        };
        let err = t.serve(&req, NOW).await.expect_err(&uri);
        assert_eq!(
            (err.status(), err.reason().as_str()),
            (400, reason),
            "{uri}"
        );
        rejected += 1;
    }
    assert!(rejected > 20, "only {rejected} rejected vectors");
}

#[tokio::test]
async fn a_corrupt_original_is_a_422_without_internal_detail() {
    let t = transformer();
    upload(
        &t,
        "acme",
        "bad.jpg",
        "s3v1",
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .await;
    let err = t
        .serve(&get("/img/acme/v1/bad.jpg?w=320"), NOW)
        .await
        .expect_err("corrupt");
    assert_eq!(err.status(), 422);
    assert_eq!(err.reason(), "original cannot be rendered: ImageCorrupt");
    assert!(t.derived.keys().is_empty());

    // A version the pipeline already marked failed for an image error is not rendered again.
    let asset = AssetId {
        tenant: "acme".into(),
        key: "bad.jpg".into(),
    };
    t.manifest
        .mark_failed(
            &asset,
            1,
            "ImageCorrupt",
            "decode: bad marker",
            "2026-01-01T00:00:01Z",
        )
        .await
        .expect("mark failed");
    t.originals.fail_next(1);
    let err = t
        .serve(&get("/img/acme/v1/bad.jpg?w=320"), NOW)
        .await
        .expect_err("failed");
    assert_eq!(err.reason(), "original cannot be rendered: ImageCorrupt");
}

#[tokio::test]
async fn the_replica_serves_when_the_primary_fails() {
    let t = transformer();
    let original = png(100, 100);
    upload(&t, "acme", "p.png", "s3v1", &original).await;
    t.replica
        .as_ref()
        .expect("replica")
        .insert("acme/p.png", Some("s3v1"), original.clone());
    t.originals.fail_next(1);
    let d = t
        .serve(&get("/img/acme/v1/p.png?w=64&fmt=png"), NOW)
        .await
        .expect("replica");
    assert_eq!(
        d.source,
        Source::Rendered {
            from_replica: true,
            stored: true
        }
    );
    assert_eq!(d.source.as_str(), "rendered-replica");
}

#[tokio::test]
async fn a_replica_without_version_ids_serves_only_the_recorded_bytes() {
    let t = transformer();
    let original = png(100, 100);
    upload(&t, "acme", "p.png", "s3v1", &original).await;
    let replica = t.replica.as_ref().expect("replica");
    replica.insert("acme/p.png", None, original.clone());
    t.originals.fail_next(1);
    let d = t.serve(&get("/img/acme/v1/p.png?w=48&fmt=png"), NOW).await;
    assert!(d.is_ok(), "{d:?}");

    // The replica's current object is another upload: refused, not served as version 1.
    replica.insert("acme/p.png", None, png(90, 90));
    t.originals.fail_next(1);
    let err = t
        .serve(&get("/img/acme/v1/p.png?w=32&fmt=png"), NOW)
        .await
        .expect_err("wrong bytes");
    assert_eq!(
        (err.status(), err.reason().as_str()),
        (503, "temporarily unavailable")
    );
}

/// An object store that never answers in time.
struct Stalled;

impl ObjectStore for Stalled {
    async fn get(&self, _: &str, _: Option<&str>, _: u64) -> Result<Object, StoreError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Err(StoreError::Unavailable("stalled".into()))
    }

    async fn put(&self, _: &str, _: Vec<u8>, _: &PutOptions) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("stalled".into()))
    }

    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("stalled".into()))
    }
}

#[tokio::test]
async fn a_slow_primary_falls_back_to_the_replica_after_the_timeout() {
    let replica = MemoryObjects::new();
    let manifest = MemoryManifest::new();
    assign_original(&replica, &manifest, ("acme", "p.png", "s3v1"), &png(80, 80)).await;
    let t = Transformer {
        originals: Stalled,
        replica: Some(replica),
        derived: MemoryObjects::new(),
        manifest,
        policies: MemoryPolicies::new(),
        config: TransformConfig {
            primary_timeout: Duration::from_millis(50),
            ..TransformConfig::default()
        },
        admission: Admission::default(),
    };
    let started = Instant::now();
    let d = t
        .serve(&get("/img/acme/v1/p.png?w=64&fmt=png"), NOW)
        .await
        .expect("replica");
    assert!(matches!(
        d.source,
        Source::Rendered {
            from_replica: true,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Without a replica the same stall is a 503.
    let t = Transformer {
        replica: None::<MemoryObjects>,
        ..t
    };
    let err = t
        .serve(&get("/img/acme/v1/p.png?w=32&fmt=png"), NOW)
        .await
        .expect_err("stalled");
    assert_eq!(err.status(), 503);
    assert_eq!(err.cache_control(), SERVER_ERROR_CACHE_CONTROL);
}

#[tokio::test]
async fn a_failed_write_still_serves_the_image() {
    let t = transformer();
    upload(&t, "acme", "p.png", "s3v1", &png(64, 64)).await;
    let n = normalize::normalize_uri("/img/acme/v1/p.png?w=32&fmt=png", None).expect("normalize");
    // The derived read and the write fail; the render succeeds.
    t.derived.fail_next(2);
    let admitted = Admitted {
        request: n,
        on_demand: OnDemand::Any,
    };
    let d = t.deliver(&admitted).await.expect("served");
    assert_eq!(
        d.source,
        Source::Rendered {
            from_replica: false,
            stored: false
        }
    );
    assert!(t.derived.keys().is_empty());
}

#[test]
fn etags_are_the_md5_s3_reports_and_if_none_match_understands_lists() {
    assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    let e = "\"900150983cd24fb0d6963f7d28e17f72\"";
    assert_eq!(etag_of(b"abc"), e);
    for (header, want) in [
        (e, true),
        ("*", true),
        ("W/\"900150983cd24fb0d6963f7d28e17f72\"", true),
        ("\"x\", \"900150983cd24fb0d6963f7d28e17f72\"", true),
        ("\"x\"", false),
        ("", false),
        ("900150983cd24fb0d6963f7d28e17f72", false),
    ] {
        assert_eq!(if_none_match(header, e), want, "{header}");
    }
}

#[test]
fn error_statuses_reasons_and_cache_control() {
    let cases = [
        (
            DeliveryError::BadRequest(Reject::BadTenant),
            400,
            "bad tenant",
            CLIENT_ERROR_CACHE_CONTROL,
        ),
        (
            DeliveryError::Mismatch,
            400,
            "request does not match its derivative",
            "no-store",
        ),
        (
            DeliveryError::Forbidden(Forbidden::Expired),
            403,
            "expired",
            "no-store",
        ),
        (
            DeliveryError::NotFound,
            404,
            "not found",
            CLIENT_ERROR_CACHE_CONTROL,
        ),
        (
            DeliveryError::Removed,
            404,
            "removed",
            CLIENT_ERROR_CACHE_CONTROL,
        ),
        (
            DeliveryError::Unavailable("s3://secret-bucket/x: dns error".into()),
            503,
            "temporarily unavailable",
            SERVER_ERROR_CACHE_CONTROL,
        ),
        (
            DeliveryError::Internal("panic at foo.rs".into()),
            500,
            "internal error",
            SERVER_ERROR_CACHE_CONTROL,
        ),
    ];
    for (err, status, reason, cc) in cases {
        assert_eq!(
            (err.status(), err.reason().as_str(), err.cache_control()),
            (status, reason, cc)
        );
    }
}

#[tokio::test]
async fn a_render_that_lands_after_a_takedown_is_taken_back_and_answered_404() {
    let manifest = std::sync::Arc::new(MemoryManifest::new());
    let written = std::sync::Arc::new(MemoryObjects::new());
    let originals = MemoryObjects::new();
    let (asset, _) = assign_original(
        &originals,
        &*manifest,
        ("acme", "race.png", "s3v1"),
        &png(120, 90),
    )
    .await;
    let t = Transformer {
        originals,
        replica: None::<MemoryObjects>,
        derived: crate::store::memory::RemovingObjects {
            inner: written.clone(),
            manifest: manifest.clone(),
            asset: asset.clone(),
        },
        manifest: manifest.clone(),
        policies: MemoryPolicies::new(),
        config: TransformConfig::default(),
        admission: Admission::default(),
    };
    let err = t
        .serve(&get("/img/acme/v1/race.png?w=64&fmt=png"), NOW)
        .await
        .expect_err("removed while rendering");
    assert_eq!(err.status(), 404);
    assert!(
        written.keys().is_empty(),
        "left behind: {:?}",
        written.keys()
    );
}

fn gated(max_renders: usize, budget_mib: u64, wait_ms: u64) -> Memory {
    Transformer {
        admission: Admission::new(AdmissionConfig {
            max_renders,
            budget_bytes: budget_mib * admission::MIB,
            wait: Duration::from_millis(wait_ms),
            retry_after_s: 3,
        }),
        ..transformer()
    }
}

#[tokio::test]
async fn a_miss_beyond_the_render_slots_waits_then_is_overloaded_but_stored_hits_are_served() {
    let t = gated(1, 1024, 100);
    upload(&t, "acme", "p.png", "s3v1", &png(64, 64)).await;
    let stored = t
        .serve(&get("/img/acme/v1/p.png?w=32&fmt=png"), NOW)
        .await
        .expect("render");
    assert!(matches!(stored.source, Source::Rendered { .. }));

    // Every slot busy: a miss waits the configured time, then 503 with Retry-After.
    let busy = t.admission.slot().await.expect("the only slot");
    let started = Instant::now();
    let err = t
        .serve(&get("/img/acme/v1/p.png?w=48&fmt=png"), NOW)
        .await
        .expect_err("no slot");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(err, DeliveryError::Overloaded { retry_after_s: 3 });
    assert_eq!((err.status(), err.retry_after()), (503, Some(3)));
    assert_eq!(err.cache_control(), RETRY_CACHE_CONTROL);
    assert!(t
        .derived
        .get("acme/v1/p.png/w48.png", None, 1 << 20)
        .await
        .is_err());
    // A stored derivative needs no slot.
    let again = t
        .serve(&get("/img/acme/v1/p.png?w=32&fmt=png"), NOW)
        .await
        .expect("stored");
    assert_eq!(again.source, Source::Stored);

    // Freed while waiting: admitted.
    let t2 = std::sync::Arc::new(t);
    let waiter = {
        let t2 = t2.clone();
        tokio::spawn(async move {
            t2.serve(&get("/img/acme/v1/p.png?w=48&fmt=png"), NOW)
                .await
                .map(|d| d.source)
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(busy);
    assert!(matches!(
        waiter.await.expect("join"),
        Ok(Source::Rendered { .. })
    ));
    assert_eq!(t2.admission.running(), 0);
    assert_eq!(t2.admission.available_bytes(), 1024 * admission::MIB);
}

#[tokio::test]
async fn a_render_over_the_memory_budget_waits_for_the_budget_then_runs_alone() {
    // A 2000 x 2000 PNG to w=640 needs ~40 MiB by the estimate: over a 16 MiB budget.
    let t = gated(4, 16, 150);
    upload(&t, "acme", "p.png", "s3v1", &png(2000, 2000)).await;
    let held = t.admission.slot().await.expect("slot");
    let held = held.reserve(admission::MIB).await.expect("1 MiB");
    let err = t
        .serve(&get("/img/acme/v1/p.png?w=640&fmt=png"), NOW)
        .await
        .expect_err("budget in use");
    assert_eq!(err.status(), 503);
    drop(held);
    let d = t
        .serve(&get("/img/acme/v1/p.png?w=640&fmt=png"), NOW)
        .await
        .expect("alone");
    assert!(matches!(d.source, Source::Rendered { .. }));
}

#[tokio::test]
async fn the_catalogue_policy_renders_only_standard_variants_and_rates_count_renders_only() {
    let t = transformer();
    upload(&t, "acme", "p.png", "s3v1", &png(64, 64)).await;
    let policy = |on_demand| TenantPolicy {
        on_demand,
        ..TenantPolicy::default()
    };
    t.policies.set("acme", policy(OnDemand::Catalogue));
    let other = t.serve(&get("/img/acme/v1/p.png?w=48&fmt=png"), NOW).await;
    assert_eq!(other, Err(DeliveryError::NotFound));
    let v = &Policy::get().variants[0];
    let c = Target::from(v).canonical();
    assert!(is_standard(&c));
    let uri = format!("/img/acme/v1/p.png?{}", c.query());
    let std_variant = t.serve(&get(&uri), NOW).await.expect("standard variant");
    assert!(matches!(std_variant.source, Source::Rendered { .. }));
    let written = t
        .derived
        .object(&std_variant.derived_key)
        .and_then(|o| o.opts)
        .expect("put");
    assert!(!written.on_demand, "standard variants never expire");

    let two = std::num::NonZeroU32::new(2).expect("2");
    t.policies.set("acme", policy(OnDemand::RatePerMinute(two)));
    for w in [16, 32] {
        let d = t
            .serve(&get(&format!("/img/acme/v1/p.png?w={w}&fmt=png")), NOW)
            .await
            .expect("within the rate");
        assert!(
            t.derived
                .object(&d.derived_key)
                .and_then(|o| o.opts)
                .expect("put")
                .on_demand
        );
    }
    let err = t
        .serve(&get("/img/acme/v1/p.png?w=48&fmt=png"), NOW)
        .await
        .expect_err("rate used up");
    assert_eq!(err.status(), 429);
    assert!(err.retry_after().is_some_and(|s| (1..=30).contains(&s)));
    // Stored derivatives are never refused by the policy.
    let hit = t.serve(&get("/img/acme/v1/p.png?w=16&fmt=png"), NOW).await;
    assert_eq!(hit.map(|d| d.source), Ok(Source::Stored));
}
