//! `pixelfront dev` under hostile clients (issue 14, SPEC §8): stalled headers and bodies,
//! SIGTERM while they are held, rate limits on every route, guessed admin tokens, the manifest
//! of a signing tenant, the tenants file's permission bits and one process per data directory.
//! Each test starts the real binary on 127.0.0.1 and stops it by its PID.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, noise_png, png, Server, TOKEN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `n` connections that each send part of a request head and then nothing.
fn stalled(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("partial head");
            c
        })
        .collect()
}

/// Whether the server closed `c` (EOF or reset) within `wait`.
fn closed_within(c: &mut TcpStream, wait: Duration) -> bool {
    c.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn stalled_headers_are_cut_off_while_normal_requests_pass() {
    let data = data_dir("slowloris");
    let s = Server::start(&data, &["--header-timeout", "2"]);
    let started = Instant::now();
    let mut held = stalled(&s.addr, 300);
    let ok = s.get("/healthz");
    assert_eq!(
        ok.status, 200,
        "a normal request while 300 connections stall"
    );
    for c in &mut held {
        let left = Duration::from_secs(8).saturating_sub(started.elapsed());
        assert!(
            closed_within(c, left.max(Duration::from_millis(10))),
            "a stalled connection still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_client_that_stops_reading_is_cut_off_and_frees_its_slot() {
    let data = data_dir("slow-reader");
    // One connection at a time, so a stalled reader would lock everyone else out.
    let s = Server::start(&data, &["--max-connections", "1", "--write-timeout", "2"]);
    s.upload_accepted("acme/big.png", &noise_png(1600, 1200));
    assert_eq!(s.settled("acme/big.png")["status"], "ready");
    let target = "/img/acme/v1/big.png?w=1600&fmt=png";
    let size = s.get(target).body.len();
    assert!(size > 1_000_000, "{size} bytes");
    // Ask for the image 64 times (pipelined, tens of MB) and read none of it.
    let mut reader = TcpStream::connect(&s.addr).expect("connect");
    let one = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    reader
        .write_all(one.repeat(64).as_bytes())
        .expect("pipelined requests");
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile another client waits for the only slot: served once the reader is cut off.
    let started = Instant::now();
    let mut other = TcpStream::connect(&s.addr).expect("connect");
    other
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = other.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "no answer within {waited:?} while a client held the slot without reading"
    );
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    // The stalled reader got less than it asked for, then the end of the connection.
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = reader.read_to_end(&mut got);
    assert!(
        got.len() < 64 * size,
        "{} of {} bytes",
        got.len(),
        64 * size
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn sigterm_finishes_in_bounded_time_whatever_clients_do() {
    let data = data_dir("sigterm");
    // Defaults: 10 s to drain. Held: 200 stalled heads and an upload whose body never ends.
    let mut s = Server::start(&data, &[]);
    let _held = stalled(&s.addr, 200);
    let mut upload = TcpStream::connect(&s.addr).expect("connect");
    write!(
        upload,
        "PUT /originals/acme/slow.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\npartial"
    )
    .expect("partial upload");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.get("/healthz").status, 200);
    let started = Instant::now();
    let pid = s.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(14) {
            let _ = s.child.kill();
            panic!("pixelfront dev still running 14 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}");
    let _ = std::fs::remove_dir_all(&data);
}

#[cfg(unix)]
#[test]
fn the_tenants_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let data = data_dir("private");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let out = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .args(["tenant", "add", "shop", "--data"])
        .arg(&data)
        .output()
        .expect("tenant add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mode(&data.join("tenants.json")),
        0o600,
        "written by the CLI"
    );
    // The server rewrites it for a newcomer tenant: still 0600, no temporary file left.
    std::fs::set_permissions(
        data.join("tenants.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let s = Server::start(&data, &[]);
    assert_eq!(s.upload("acme/a.png", &png(64, 48, 1)).status, 202);
    assert_eq!(
        mode(&data.join("tenants.json")),
        0o600,
        "written by the server"
    );
    let names: Vec<String> = std::fs::read_dir(&data)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("tmp")), "{names:?}");
    s.settled("acme/a.png");
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_second_server_on_the_same_data_directory_exits_with_a_message() {
    let data = data_dir("lock");
    let s = Server::start(&data, &[]);
    let mut second = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .args(["dev", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("PIXELFRONT_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("second server");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second pixelfront dev runs on the same data directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    second
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&data.display().to_string()) && stderr.contains("in use"),
        "{stderr}"
    );
    // The first one is unharmed.
    assert_eq!(s.get("/healthz").status, 200);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn every_route_is_rate_limited() {
    let data = data_dir("ratelimit");
    let s = Server::start(&data, &["--rate-limit", "10"]);
    let answers: Vec<_> = (0..15).map(|_| s.get("/healthz")).collect();
    let refused = answers
        .iter()
        .find(|r| r.status == 429)
        .expect("a 429 among 15 requests to /healthz with --rate-limit 10");
    assert!(refused
        .header("retry-after")
        .parse::<u64>()
        .is_ok_and(|s| s >= 1));
    assert_eq!(s.get("/manifest/acme/none.png").status, 429);
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn guessed_admin_tokens_are_throttled() {
    let data = data_dir("guess");
    let s = Server::start(&data, &[]);
    let statuses: Vec<u16> = (0..8)
        .map(|i| {
            let auth = format!("Bearer guess-{i}");
            s.request("GET", "/backfill", &[("Authorization", &auth)], b"")
                .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 3], "{statuses:?}");
    // While throttled, even the right token is refused: a 429 says nothing about a guess.
    let auth = format!("Bearer {TOKEN}");
    let right = s.request("GET", "/backfill", &[("Authorization", &auth)], b"");
    assert_eq!(right.status, 429);
    assert!(right
        .header("retry-after")
        .parse::<u64>()
        .is_ok_and(|s| s >= 1));
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_manifest_of_a_signing_tenant_needs_the_admin_token() {
    let data = data_dir("manifest-auth");
    std::fs::write(
        data.join("tenants.json"),
        r#"{"shop": {"sign": true, "keys": {"k1": "s3cret"}}}"#,
    )
    .expect("tenants");
    let s = Server::start(&data, &[]);
    assert_eq!(s.upload("shop/p.png", &png(64, 48, 2)).status, 202);
    assert_eq!(s.upload("acme/p.png", &png(64, 48, 3)).status, 202);
    let anonymous = s.get("/manifest/shop/p.png");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(
        s.get("/manifest/shop/none.png").status,
        401,
        "no existence oracle"
    );
    assert_eq!(
        s.manifest("shop/p.png")["version"],
        1,
        "with the admin token"
    );
    assert_eq!(s.get("/manifest/acme/p.png").status, 200, "public tenant");
    s.settled("shop/p.png");
    s.settled("acme/p.png");
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn healthz_answers_quickly_during_uploads() {
    let data = data_dir("healthz");
    let s = Server::start(&data, &["--rate-limit", "0"]);
    let body = png(1600, 1200, 4);
    let worst = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..3)
            .map(|t| {
                let (s, body) = (&s, &body);
                scope.spawn(move || {
                    for i in 0..6 {
                        assert_eq!(s.upload(&format!("acme/h{t}-{i}.png"), body).status, 202);
                    }
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        while !uploads.iter().all(|u| u.is_finished()) {
            let t = Instant::now();
            assert_eq!(s.get("/healthz").status, 200);
            worst = worst.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        worst
    });
    assert!(
        worst < Duration::from_millis(250),
        "/healthz took {worst:?} during uploads"
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}
