//! `pixelfront render` on the real corpus (`../shared/corpus` beside the checkout) and on
//! hostile input, through the built binary: exit codes, files, sizes, formats, metadata,
//! orientation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step fails the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = here.join("../../shared/corpus");
    assert!(
        dir.is_dir(),
        "the test corpus is expected at {} (the shared/ folder beside the checkout)",
        dir.display()
    );
    dir
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pixelfront-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn render(input: &Path, out: &Path, query: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixelfront"));
    cmd.arg("render").arg(input).arg("--out").arg(out);
    if let Some(q) = query {
        cmd.arg("--query").arg(q);
    }
    cmd.output().expect("run pixelfront")
}

/// `render` under a 1 GiB address-space limit: a decompression bomb that tried to allocate its
/// declared pixels would fail here instead of exiting 2 with a reason.
fn render_bounded(input: &Path, out: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" render \"$1\" --out \"$2\"")
        .arg(env!("CARGO_BIN_EXE_pixelfront"))
        .arg(input)
        .arg(out)
        .output()
        .expect("run pixelfront under ulimit")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Width and height from an AVIF file's `ispe` property.
fn avif_dims(bytes: &[u8]) -> Option<(u32, u32)> {
    let at = bytes.windows(4).position(|w| w == b"ispe")?;
    let b = bytes.get(at + 8..at + 16)?;
    Some((
        u32::from_be_bytes(b[0..4].try_into().ok()?),
        u32::from_be_bytes(b[4..8].try_into().ok()?),
    ))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// No EXIF, XMP or GPS in an output.
fn assert_no_metadata(path: &Path, bytes: &[u8]) {
    for marker in [
        &b"Exif\0"[..],
        b"EXIF",
        b"http://ns.adobe.com/xap",
        b"<x:xmpmeta",
        b"GPS",
    ] {
        assert!(
            !contains(bytes, marker),
            "{} carries metadata {:?}",
            path.display(),
            String::from_utf8_lossy(marker)
        );
    }
}

#[test]
fn photos_render_the_eight_standard_variants() {
    let dir = corpus().join("photos");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert!(!photos.is_empty());
    for photo in photos {
        let out = tmp("photo");
        let o = render(&photo, &out, None);
        assert!(o.status.success(), "{}: {}", photo.display(), stderr(&o));
        let src = image::ImageReader::open(&photo)
            .unwrap()
            .into_dimensions()
            .unwrap();
        for (file, w, h) in [
            ("w160-h160-q75.webp", 160, Some(160)),
            ("w320-q80.webp", 320, None),
            ("w320-q60.avif", 320, None),
            ("w640-q80.webp", 640, None),
            ("w640-q60.avif", 640, None),
            ("w640-q80.jpeg", 640, None),
            ("w1280-q80.webp", 1280, None),
            ("w1280-q60.avif", 1280, None),
        ] {
            let path = out.join(file);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: missing {file}: {e}", photo.display()));
            assert_no_metadata(&path, &bytes);
            let want_h = h.unwrap_or_else(|| {
                (f64::from(src.1) * f64::from(w) / f64::from(src.0)).round() as u32
            });
            let dims = if file.ends_with(".avif") {
                assert_eq!(&bytes[4..12], b"ftypavif", "{file}");
                avif_dims(&bytes).expect("ispe box")
            } else {
                let img = image::load_from_memory(&bytes)
                    .unwrap_or_else(|e| panic!("{file} does not decode: {e}"));
                let want = if file.ends_with(".jpeg") {
                    image::ImageFormat::Jpeg
                } else {
                    image::ImageFormat::WebP
                };
                assert_eq!(image::guess_format(&bytes).unwrap(), want, "{file}");
                (img.width(), img.height())
            };
            assert_eq!(dims, (w, want_h), "{} {file}", photo.display());
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// Mean absolute difference per channel between two RGB images of the same size.
fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn exif_orientations_come_out_upright() {
    let dir = corpus().join("exif-orientation");
    for shape in ["Landscape", "Portrait"] {
        let decode = |n: u8| -> image::RgbImage {
            let out = tmp(&format!("exif-{shape}-{n}"));
            let input = dir.join(format!("{shape}_{n}.jpg"));
            let o = render(&input, &out, Some("w=320&fmt=png"));
            assert!(o.status.success(), "{}: {}", input.display(), stderr(&o));
            let img = image::open(out.join("w320.png")).unwrap().to_rgb8();
            let _ = std::fs::remove_dir_all(&out);
            img
        };
        let upright = decode(1);
        if shape == "Landscape" {
            assert!(upright.width() > upright.height());
        } else {
            assert!(upright.width() < upright.height());
        }
        // A wrong orientation of the same picture differs by far more than this.
        let rotated = image::imageops::rotate180(&upright);
        let wrong = mean_abs_diff(&upright, &rotated);
        for n in 0..=8u8 {
            let img = decode(n);
            assert_eq!(img.dimensions(), upright.dimensions(), "{shape}_{n}");
            let d = mean_abs_diff(&img, &upright);
            assert!(
                d < 6.0 && d < wrong / 4.0,
                "{shape}_{n}: mean diff {d:.2} (wrong way: {wrong:.2})"
            );
        }
    }
}

#[test]
fn pngsuite_valid_files_render_and_corrupt_ones_are_rejected() {
    let dir = corpus().join("pngsuite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    assert!(files.len() > 150);
    let out = tmp("pngsuite");
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let o = render(f, &out, None);
        if name.starts_with('x') {
            if o.status.code() != Some(2) || stderr(&o).trim().is_empty() {
                problems.push(format!(
                    "{name}: expected exit 2 with a reason, got {:?}",
                    o.status
                ));
            }
        } else if !o.status.success() {
            problems.push(format!("{name}: {}", stderr(&o).trim()));
        } else if std::fs::read_dir(&out).unwrap().count() != 8 {
            problems.push(format!("{name}: not 8 outputs"));
        }
        for e in std::fs::read_dir(&out).unwrap() {
            let _ = std::fs::remove_file(e.unwrap().path());
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A minimal PNG with the given IHDR size whose pixel data is `rows` of zeros.
fn png_with_size(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grayscale
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zlib stream (stored blocks) of `n` zero bytes: a real PNG payload without a compressor.
fn zlib_zeros(n: usize) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut left = n;
    while left > 0 || out.len() == 2 {
        let len = left.min(65535);
        left -= len;
        out.push(u8::from(left == 0));
        out.extend((len as u16).to_le_bytes());
        out.extend((!(len as u16)).to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, len));
    }
    // Adler-32 of zeros: a = 1, b = n mod 65521.
    let b = (n % 65521) as u32;
    out.extend(((b << 16) | 1).to_be_bytes());
    out
}

#[test]
fn hostile_input_is_rejected_with_exit_2() {
    let dir = tmp("hostile");
    let photo = std::fs::read(corpus().join("photos/Wine_by_Jakkub_Mede.jpg")).unwrap();
    let mut jpeg_65000 = photo.clone();
    // Patch the SOF frame size to 65000 x 65000.
    let sof = jpeg_65000
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    jpeg_65000[sof + 5..sof + 7].copy_from_slice(&65000u16.to_be_bytes());
    jpeg_65000[sof + 7..sof + 9].copy_from_slice(&65000u16.to_be_bytes());
    let mut random = Vec::with_capacity(4096);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    // 10,001 x 10,001 declared (just over 100 MP), a tiny file: the bomb must not be inflated.
    let bomb = png_with_size(10_001, 10_001, &zlib_zeros(10_002 * 4));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.jpg", Vec::new(), "empty"),
        ("random.bin", random, "unsupported"),
        ("huge-header.jpg", jpeg_65000, "over the limit"),
        ("huge-header.png", png_with_size(65000, 65000, &zlib_zeros(16)), "over the limit"),
        ("bomb.png", bomb, "over the limit"),
        ("truncated.jpg", photo[..photo.len() / 2].to_vec(), "corrupt jpeg"),
        ("drawing.svg", b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100000\" height=\"100000\"/>".to_vec(), "SVG"),
        ("page.png", b"<!DOCTYPE html><html><body>not an image</body></html>".to_vec(), "HTML"),
        ("header-only.png", b"\x89PNG\r\n\x1a\n".to_vec(), "corrupt png"),
    ];
    for (name, bytes, reason) in cases {
        let input = dir.join(name);
        std::fs::write(&input, &bytes).unwrap();
        let out = dir.join("out");
        let started = Instant::now();
        let o = render_bounded(&input, &out);
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(reason),
            "{name}: stderr {:?} lacks {reason:?}",
            stderr(&o)
        );
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
    }
    // The same bound leaves room for a real photo: the limit is not what rejects the above.
    let ok = render_bounded(
        &corpus().join("photos/Wine_by_Jakkub_Mede.jpg"),
        &dir.join("ok"),
    );
    assert!(
        ok.status.success(),
        "a valid photo under the bound: {}",
        stderr(&ok)
    );
    // Over 50 MB: refused from the file size, before reading it.
    let big = dir.join("big.jpg");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(50 * 1024 * 1024 + 1).unwrap();
    let o = render(&big, &dir.join("out"), None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("over the limit of 52428800 bytes"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_pixelfront");
    let o = Command::new(bin)
        .args(["render", "/nonexistent.jpg", "--out", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "missing file is an I/O error");
    let o = Command::new(bin)
        .args([
            "render",
            "/nonexistent.jpg",
            "--out",
            "/tmp/x",
            "--query",
            "w=0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad w"));
    let o = Command::new(bin)
        .args([
            "normalize",
            "/img/acme/v1/a.jpg?W=287&utm_source=x&fmt=WEBP",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "acme/v1/a.jpg/w320-q80.webp\n"
    );
    let o = Command::new(bin)
        .args([
            "normalize",
            "--accept",
            "image/avif",
            "/img/acme/v1/a.jpg?w=100",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "acme/v1/a.jpg/w128-q60.avif\n"
    );
    let o = Command::new(bin)
        .args(["normalize", "/img/acme/v01/a.jpg"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "bad version\n");
    for verb in [
        &["--help"][..],
        &["render", "--help"],
        &["normalize", "--help"],
    ] {
        assert!(Command::new(bin)
            .args(verb)
            .output()
            .unwrap()
            .status
            .success());
    }
}
