//! The `curl` walk-through of docs/tenant-api.md, run as written: every block marked `sh`, in
//! order, in one shell, against a local stack, with `$API`, `$KEY` and a `cat.jpg` (a sample
//! image of the repository). Needs `bash`, `curl` and `jq` (`.ci/setup-test` installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

mod common;

use common::{data_dir, Server};
use std::process::Command;

/// The `sh` blocks of a Markdown file, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_integration_guide_runs_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/tenant-api.md")).unwrap();
    let blocks = sh_blocks(&guide);
    assert!(blocks.len() >= 6, "{} sh blocks", blocks.len());
    let data = data_dir("tenant-api-guide");
    let out = Command::new(env!("CARGO_BIN_EXE_pixelfront"))
        .args(["tenant", "--data"])
        .arg(&data)
        .args(["api-key-add", "acme"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let s = Server::start(&data, &[]);
    let work = data.join("client");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(
        root.join("samples/Wine_by_Jakkub_Mede.jpg"),
        work.join("cat.jpg"),
    )
    .unwrap();
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("API", s.url())
        .env("KEY", &key)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the guide failed:\n{stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"ready"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<img src=") && l.contains(" 640w")),
        "{stdout}"
    );
    let redirect = format!("302 {}/img/acme/v1/photos/cat.jpg?w=640", s.url());
    assert!(lines.contains(&redirect.as_str()), "{stdout}");
    assert!(lines.contains(&"photos/cat.jpg v1 ready"), "{stdout}");
    assert_eq!(lines.last(), Some(&"finished"), "{stdout}");
    s.stop();
}
