//! The local stack under test: starts the real `pixelfront dev` binary on 127.0.0.1 (a free
//! port, its own data directory), speaks plain HTTP/1.1 to it and stops it by its PID. Shared by
//! the `dev*` test files; each uses a part of it.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test; each test file uses a part"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token";

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// Starts `pixelfront dev` on `data`: this build's binary, or the one `PIXELFRONT_TEST_BIN`
    /// names (to show that a test fails on an older build).
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let bin = std::env::var_os("PIXELFRONT_TEST_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_pixelfront")),
            PathBuf::from,
        );
        let mut child = Command::new(bin)
            .args(["dev", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("PIXELFRONT_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pixelfront dev");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("pixelfront dev exited before listening")
                .expect("read stderr");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().expect("address").to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    /// SIGTERM, then wait for the graceful exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "pixelfront dev exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("pixelfront dev did not stop on SIGTERM");
    }

    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .expect("timeout");
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body).expect("write body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Resp::parse(&raw)
    }

    pub fn get(&self, target: &str) -> Resp {
        self.request("GET", target, &[], b"")
    }

    pub fn upload(&self, tenant_key: &str, body: &[u8]) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        self.request(
            "PUT",
            &format!("/originals/{tenant_key}"),
            &[("Authorization", &auth)],
            body,
        )
    }

    /// [`Server::upload`], which must be accepted (202).
    pub fn upload_accepted(&self, tenant_key: &str, body: &[u8]) {
        let r = self.upload(tenant_key, body);
        assert_eq!(r.status, 202, "{}", r.text());
    }

    /// `http://{addr}`, for the CLI's `--endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The manifest as the admin reads it (a signing tenant's needs the token).
    pub fn manifest(&self, tenant_key: &str) -> serde_json::Value {
        let auth = format!("Bearer {TOKEN}");
        let r = self.request(
            "GET",
            &format!("/manifest/{tenant_key}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).expect("manifest JSON")
    }

    /// Polls the manifest until the latest version is no longer `rendering`.
    pub fn settled(&self, tenant_key: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let m = self.manifest(tenant_key);
            if m["status"] != "rendering" {
                return m;
            }
            assert!(Instant::now() < deadline, "still rendering: {m}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metric(&self, line_prefix: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_prefix} in\n{text}"))
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn parse(raw: &[u8]) -> Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end");
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pixelfront-dev-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

/// A PNG of noise (a hash of each pixel's position): it does not compress, so its renders are
/// about 3 bytes a pixel.
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v =
            (x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77)).wrapping_mul(0xC2B2_AE3D);
        let [a, b, c, _] = v.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x % 251) as u8,
            (y % 241) as u8,
            seed.wrapping_add((x ^ y) as u8),
        ])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

/// A JSON answer's body (the test fails naming the status and text when it is not JSON).
pub fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{} {}", r.status, r.text()))
}

/// A JSON call with `Authorization: Bearer {key}` (an API key or the admin token).
pub fn call(s: &Server, method: &str, target: &str, key: &str, body: &str) -> Resp {
    let auth = format!("Bearer {key}");
    s.request(
        method,
        target,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}
