//! Unit tests of the render gate: count, budget, the wait, release on error and panic, the
//! estimate, tenant rates.

use super::*;

fn gate(max_renders: usize, budget_mib: u64, wait_ms: u64) -> Admission {
    Admission::new(AdmissionConfig {
        max_renders,
        budget_bytes: budget_mib * MIB,
        wait: Duration::from_millis(wait_ms),
        retry_after_s: 2,
    })
}

#[tokio::test]
async fn at_most_max_renders_slots_then_a_bounded_wait_then_overloaded() {
    let a = gate(2, 100, 80);
    let s1 = a.slot().await.expect("first");
    let s2 = a.slot().await.expect("second");
    assert!(!s1.waited() && !s2.waited());
    assert_eq!(a.running(), 2);
    let started = std::time::Instant::now();
    let third = a.slot().await;
    let waited = started.elapsed();
    assert_eq!(third.err(), Some(Overloaded { retry_after_s: 2 }));
    assert!(waited >= Duration::from_millis(80), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // A slot freed during the wait is handed to the waiter.
    let a2 = a.clone();
    let waiter = tokio::spawn(async move { a2.slot().await.map(|s| s.waited()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(s1);
    assert_eq!(waiter.await.expect("join"), Ok(true));
    drop(s2);
    assert_eq!(a.running(), 0);
}

#[tokio::test]
async fn the_budget_bounds_the_memory_of_renders_at_once() {
    let a = gate(8, 100, 60);
    let p1 = a
        .slot()
        .await
        .expect("slot")
        .reserve(60 * MIB)
        .await
        .expect("60");
    assert_eq!(p1.reserved_bytes, 60 * MIB);
    assert_eq!(a.available_bytes(), 40 * MIB);
    // 50 MiB more does not fit: wait, then overloaded, and the slot is given back.
    let second = a.slot().await.expect("slot").reserve(50 * MIB).await;
    assert!(second.is_err());
    assert_eq!(a.running(), 1);
    assert_eq!(
        a.available_bytes(),
        40 * MIB,
        "a failed wait reserves nothing"
    );
    let p2 = a
        .slot()
        .await
        .expect("slot")
        .reserve(40 * MIB)
        .await
        .expect("40 fits");
    drop((p1, p2));
    assert_eq!((a.running(), a.available_bytes()), (0, 100 * MIB));
}

#[tokio::test]
async fn a_render_larger_than_the_whole_budget_runs_alone() {
    let a = gate(8, 100, 60);
    let small = a.slot().await.expect("slot").reserve(MIB).await.expect("1");
    let huge = a.slot().await.expect("slot").reserve(5000 * MIB).await;
    assert!(huge.is_err(), "not beside another render");
    drop(small);
    let huge = a
        .slot()
        .await
        .expect("slot")
        .reserve(5000 * MIB)
        .await
        .expect("alone");
    assert_eq!(huge.reserved_bytes, 100 * MIB);
    assert!(a.slot().await.expect("slot").reserve(MIB).await.is_err());
}

#[tokio::test]
async fn permits_are_released_when_the_render_fails_or_panics() {
    let a = gate(1, 100, 50);
    let permit = a
        .slot()
        .await
        .expect("slot")
        .reserve(70 * MIB)
        .await
        .expect("70");
    let failed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        Err::<(), _>("decoder error")
    })
    .await
    .expect("join");
    assert!(failed.is_err());
    assert_eq!((a.running(), a.available_bytes()), (0, 100 * MIB));

    let permit = a
        .slot()
        .await
        .expect("slot")
        .reserve(70 * MIB)
        .await
        .expect("70");
    let panicked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        panic!("render panicked");
    })
    .await;
    assert!(panicked.is_err());
    assert_eq!((a.running(), a.available_bytes()), (0, 100 * MIB));
    assert!(a.slot().await.is_ok());
}

fn info(format: InputFormat, width: u32, height: u32) -> SourceInfo {
    SourceInfo {
        format,
        width,
        height,
        orientation: 1,
    }
}

fn target(w: u32, fmt: Format) -> Target {
    Target {
        w: Some(w),
        h: None,
        fmt,
        q: None,
    }
}

#[test]
fn the_estimate_follows_decoded_pixels_and_the_jpeg_dct_shrink() {
    let cfg = RenderConfig::default();
    // A 100 MP PNG is decoded whole: at least 6 bytes a pixel whatever the output.
    let png = estimate(
        &info(InputFormat::Png, 10_000, 10_000),
        &target(320, Format::Webp),
        &cfg,
        300_000,
    );
    assert!((600_000_000..700_000_000).contains(&png), "{png}");
    // A 13 MP JPEG to 320 px decodes at 1/8: a few MB.
    let photo = info(InputFormat::Jpeg, 4_416, 2_944);
    let small = estimate(&photo, &target(320, Format::Webp), &cfg, 5_000_000);
    assert!(small < 30 * MIB, "{small}");
    // ... to 2560 px AVIF it decodes whole and the encoder's share counts.
    let large = estimate(&photo, &target(2560, Format::Avif), &cfg, 5_000_000);
    assert!(large > 13_000_000 * DECODE_BYTES_PER_PIXEL, "{large}");
    assert!(large > estimate(&photo, &target(2560, Format::Jpeg), &cfg, 5_000_000));
}

#[test]
fn the_catalogue_estimate_counts_one_decode_and_every_output() {
    let cfg = RenderConfig::default();
    let photo = info(InputFormat::Jpeg, 4_416, 2_944);
    let targets = [
        target(320, Format::Webp),
        target(1280, Format::Avif),
        target(2560, Format::Avif),
    ];
    let each: Vec<u64> = targets
        .iter()
        .map(|t| estimate(&photo, t, &cfg, 5_000_000))
        .collect();
    let all = estimate_catalogue(&photo, &targets, &cfg, 5_000_000);
    let largest = *each.iter().max().expect("targets");
    // The largest render plus every output's share: more than the largest alone, less than
    // the largest plus every whole render (each of which counts a decode and the original).
    assert!(all > largest, "{all} vs {largest}");
    assert!(
        all < largest + each.iter().sum::<u64>(),
        "{all} vs {each:?}"
    );
    // No targets: the original alone.
    assert_eq!(estimate_catalogue(&photo, &[], &cfg, 5_000_000), 5_000_000);
}

#[tokio::test]
async fn queued_work_waits_for_its_turn_and_is_never_refused() {
    let a = gate(1, 100, 10);
    let running = a
        .slot()
        .await
        .expect("slot")
        .reserve(60 * MIB)
        .await
        .expect("budget");
    let a2 = a.clone();
    // Longer than the 10 ms wait of an on-demand render, then admitted.
    let queued = tokio::spawn(async move { a2.queue(500 * MIB).await.reserved_bytes });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!queued.is_finished(), "admitted beside a running render");
    drop(running);
    // Over the whole budget: it reserves the whole budget.
    assert_eq!(queued.await.expect("join"), 100 * MIB);
    assert_eq!((a.running(), a.available_bytes()), (0, 100 * MIB));
}

#[test]
fn lambda_defaults_follow_the_memory_size() {
    let c = AdmissionConfig::for_lambda_memory(3008);
    assert_eq!(c.max_renders, 2);
    assert_eq!(c.budget_bytes, 3008 * MIB * 70 / 100);
    assert!(AdmissionConfig::default().max_renders >= 1);
}

#[test]
fn tenant_rates_are_counted_per_tenant() {
    let a = gate(1, 100, 10);
    let two = NonZeroU32::new(2).expect("2");
    assert!(a.tenant_rate("acme", two).is_ok());
    assert!(a.tenant_rate("acme", two).is_ok());
    let refused = a.tenant_rate("acme", two).expect_err("third in the minute");
    assert!((1..=30).contains(&refused.retry_after_s), "{refused:?}");
    assert!(a.tenant_rate("other", two).is_ok(), "per tenant");
    // A raised rate takes effect at once.
    assert!(a
        .tenant_rate("acme", NonZeroU32::new(10).expect("10"))
        .is_ok());
}
