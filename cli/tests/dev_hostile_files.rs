//! The local stack against hostile files (issue 14): an upload whose decoding would allocate
//! past the limits ends `failed` with `ImageTooLarge`, decided from the headers before any pixel
//! is decoded, and the server carries on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, png, Server};

/// The GIF bomb of issue 14, whole: a 1x1 logical screen and one 14600x14600 (213 MP) frame of
/// valid LZW data in 157 KB. A build that checks only the logical screen decodes it (about
/// 1 GB) and records it `ready`.
const GIF_BOMB: &[u8] = include_bytes!("data/gif-frame-bomb.gif");

/// The same header with LZW data of only a clear and an end code: the size check must not need
/// the pixel data.
fn gif_bomb_header_only() -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend([1, 0, 1, 0, 0x80, 0, 0]); // 1x1 screen, 2-colour global table
    b.extend([0, 0, 0, 255, 255, 255]);
    b.push(0x2C); // image descriptor: at (0, 0), 14600x14600, no local table
    b.extend([0, 0, 0, 0]);
    b.extend(14600u16.to_le_bytes());
    b.extend(14600u16.to_le_bytes());
    b.extend([0, 2, 1, 0x2C, 0, 0x3B]); // LZW minimum code 2: clear, end; trailer
    b
}

#[test]
fn a_gif_frame_bomb_fails_as_too_large_and_the_server_stays_up() {
    let data = data_dir("gif-bomb");
    let s = Server::start(&data, &[]);
    let header_only = gif_bomb_header_only();
    for (key, bomb) in [
        ("acme/bomb.gif", GIF_BOMB),
        ("acme/bomb-header.gif", &header_only),
    ] {
        assert_eq!(s.upload(key, bomb).status, 202);
        let m = s.settled(key);
        assert_eq!(
            (m["status"].as_str(), m["error_type"].as_str()),
            (Some("failed"), Some("ImageTooLarge")),
            "{key}: {m}"
        );
        assert!(
            m["error"]
                .as_str()
                .is_some_and(|e| e.contains("14600x14600")),
            "{key}: {m}"
        );
    }
    // Alive and still rendering.
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.upload("acme/ok.png", &png(64, 48, 1)).status, 202);
    assert_eq!(s.settled("acme/ok.png")["status"], "ready");
    s.stop();
}
