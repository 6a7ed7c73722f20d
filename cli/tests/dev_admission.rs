//! Admission control on the real local stack (SPEC §13, docs/limits.md): floods of distinct
//! on-demand sizes of a 13 MP photo and of a 100 MP PNG (a few hundred KB of one flat colour)
//! are answered 200 or 503 with `Retry-After`; six concurrent uploads of the 100 MP PNG all end
//! `ready` (their renders queue at the same gate); the server stays up, and its peak RSS (VmHWM)
//! stays under 1.5 GB.
//!
//! A watchdog kills the server above 3 GB of RSS, so an unbounded renderer fails this test
//! instead of taking the machine down. `PIXELFRONT_TEST_BIN` runs another build of the binary
//! (e.g. an older one, for a before/after comparison).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

mod admission {
    use super::common::{data_dir, Resp, Server};
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Peak RSS the server may reach, bytes.
    const MAX_PEAK_RSS: u64 = 1_500_000_000;
    /// Copies of the 100 MP PNG uploaded at once (each render alone decodes about 400 MB).
    const UPLOAD_COPIES: usize = 6;
    /// RSS at which the watchdog kills the server, bytes.
    const KILL_RSS: u64 = 3_000_000_000;

    const PHOTO: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/photos/Dragonfly_by_Bolly.jpg"
    );

    /// Kills the server if the test fails before stopping it.
    struct Running(Option<Server>);

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(mut s) = self.0.take() {
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
        }
    }

    /// A `/proc/{pid}/status` field in bytes (`VmRSS`, `VmHWM`); 0 when the process is gone.
    fn status_bytes(pid: u32, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Kills `pid` (SIGKILL) if its RSS passes [`KILL_RSS`]; `true` in the flag when it did.
    fn watchdog(pid: u32, stop: Arc<AtomicBool>) -> Arc<AtomicBool> {
        let killed = Arc::new(AtomicBool::new(false));
        let flag = killed.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if status_bytes(pid, "VmRSS") > KILL_RSS {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        killed
    }

    /// A 100-megapixel PNG of one flat colour: a few hundred KB, 300 MB of pixels.
    fn flat_png_100mp() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(10_000, 10_000, image::Rgb([40, 120, 200]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encode");
        out
    }

    /// `n` distinct on-demand queries after the first `skip`: widths x formats x quality steps,
    /// spread so that every burst mixes small and large outputs.
    fn queries(skip: usize, n: usize) -> Vec<String> {
        let widths = [
            16, 32, 48, 64, 96, 128, 160, 240, 320, 480, 640, 768, 960, 1080, 1280, 1440, 1600,
            1920, 2048, 2560,
        ];
        let steps = [30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100];
        let mut all = Vec::new();
        for q in steps {
            for fmt in ["webp", "jpeg", "avif"] {
                for w in widths {
                    all.push(format!("w={w}&fmt={fmt}&q={q}"));
                }
            }
        }
        // A fixed stride through the list (coprime with its length) mixes the sizes.
        let len = all.len();
        (skip..skip + n)
            .map(|i| all[(i * 97) % len].clone())
            .collect()
    }

    /// Fires every query at once (one connection each) and returns the answers.
    fn burst(server: &Server, asset: &str, qs: &[String]) -> Vec<(String, Resp)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = qs
                .iter()
                .map(|q| {
                    let target = format!("/img/{asset}?{q}");
                    s.spawn(move || {
                        let r = server.get(&target);
                        (target, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("client"))
                .collect()
        })
    }

    fn check(answers: &[(String, Resp)]) -> (usize, usize) {
        let mut ok = 0;
        let mut shed = 0;
        for (target, r) in answers {
            match r.status {
                200 => ok += 1,
                503 => {
                    let retry: u32 = r.header("retry-after").parse().unwrap_or(0);
                    assert!(retry >= 1, "503 without Retry-After for {target}");
                    shed += 1;
                }
                other => panic!("{target}: {other} {}", r.text()),
            }
        }
        (ok, shed)
    }

    #[test]
    fn floods_of_distinct_sizes_are_answered_200_or_503_within_the_memory_limit() {
        let data = data_dir("admission");
        let mut running = Running(Some(Server::start(&data, &[])));
        let server = running.0.as_ref().expect("server");
        let pid = server.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let killed = watchdog(pid, stop.clone());
        let started = Instant::now();

        let photo = std::fs::read(PHOTO).expect("corpus photo");
        assert_eq!(server.upload("acme/photo.jpg", &photo).status, 202);
        let big = flat_png_100mp();
        assert!(big.len() < 2_000_000, "{} bytes", big.len());
        assert_eq!(server.upload("acme/big.png", &big).status, 202);
        drop(big);
        for key in ["acme/photo.jpg", "acme/big.png"] {
            assert_eq!(server.settled(key)["status"], "ready", "{key}");
        }
        // A flood of uploads: every accepted upload renders, queued behind the same gate.
        let copies: Vec<String> = (0..UPLOAD_COPIES)
            .map(|i| format!("acme/big-{i}.png"))
            .collect();
        let big = flat_png_100mp();
        std::thread::scope(|scope| {
            for key in &copies {
                let big = &big;
                scope.spawn(move || assert_eq!(server.upload(key, big).status, 202, "{key}"));
            }
        });
        drop(big);
        for key in &copies {
            assert_eq!(server.settled(key)["status"], "ready", "{key}");
        }
        assert!(
            !killed.load(Ordering::Relaxed),
            "the server passed {KILL_RSS} bytes of RSS and was killed"
        );
        eprintln!(
            "{UPLOAD_COPIES} concurrent uploads of the 100 MP PNG: all ready, peak RSS {} MB, {:?}",
            status_bytes(pid, "VmHWM") / 1_000_000,
            started.elapsed()
        );

        let mut skip = 0;
        for (asset, n) in [
            ("acme/v1/photo.jpg", 40),
            ("acme/v1/photo.jpg", 200),
            ("acme/v1/big.png", 40),
            ("acme/v1/big.png", 200),
        ] {
            let answers = burst(server, asset, &queries(skip, n));
            skip += n;
            assert!(
                !killed.load(Ordering::Relaxed),
                "the server passed {KILL_RSS} bytes of RSS and was killed"
            );
            let (ok, shed) = check(&answers);
            eprintln!(
                "{asset} x{n}: {ok} x 200, {shed} x 503, peak RSS {} MB, {:?}",
                status_bytes(pid, "VmHWM") / 1_000_000,
                started.elapsed()
            );
            assert_eq!(server.get("/healthz").status, 200, "alive");
        }
        let peak = status_bytes(pid, "VmHWM");
        stop.store(true, Ordering::Relaxed);
        assert!(peak > 0, "VmHWM readable");
        assert!(
            peak < MAX_PEAK_RSS,
            "peak RSS {peak} bytes over {MAX_PEAK_RSS}"
        );
        running.0.take().expect("server").stop();
        let _ = std::fs::remove_dir_all(&data);
    }
}
