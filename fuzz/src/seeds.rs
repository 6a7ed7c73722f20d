//! The inputs mutations start from: the corpus folders (sorted, so a seed number means the same
//! case on every machine) plus small files made here for what the corpus lacks: an animated GIF
//! with a sub-rectangle frame, lossless, lossy and animated WebP, an APNG and a JPEG.

use pixelfront_shared::render::{encode, Image};
use pixelfront_shared::Format;
use std::path::{Path, PathBuf};

/// One starting input.
pub struct Seed {
    /// Where it came from (a path, or `generated:<what>`).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Every image file under `dirs` (recursively, sorted), then the generated seeds.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Seed>, String> {
    let mut paths = Vec::new();
    for dir in dirs {
        walk(dir, &mut paths).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    paths.sort();
    let mut seeds = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        seeds.push(Seed {
            name: p.display().to_string(),
            bytes,
        });
    }
    seeds.extend(generated()?);
    Ok(seeds)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["jpg", "jpeg", "png", "gif", "webp"].contains(&e))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn gradient(w: u32, h: u32, alpha: bool) -> Image {
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            data.extend([(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            if alpha {
                data.push((x + y) as u8);
            }
        }
    }
    Image {
        width: w,
        height: h,
        alpha,
        data,
    }
}

fn generated() -> Result<Vec<Seed>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let speed = encode::Speed::default();
    let small = gradient(24, 16, true);
    let mut seeds = vec![
        (
            "jpeg",
            encode::encode(&small, Format::Jpeg, 80.0, speed).map_err(|e| err(&e))?,
        ),
        (
            "webp-lossy",
            encode::encode(&small, Format::Webp, 80.0, speed).map_err(|e| err(&e))?,
        ),
        ("gif-animated", gif()?),
        ("apng", apng()?),
    ];
    let mut lossless = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut lossless)
        .encode(&small.data, 24, 16, image::ExtendedColorType::Rgba8)
        .map_err(|e| err(&e))?;
    seeds.push(("webp-animated", animated_webp(&lossless, 24, 16)));
    seeds.push(("webp-lossless", lossless));
    Ok(seeds
        .into_iter()
        .map(|(what, bytes)| Seed {
            name: format!("generated:{what}"),
            bytes,
        })
        .collect())
}

/// Two frames: the full screen, then a sub-rectangle at an offset.
fn gif() -> Result<Vec<u8>, String> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        let full = RgbaImage::from_raw(24, 16, gradient(24, 16, true).data).unwrap_or_default();
        let part = RgbaImage::from_raw(8, 6, gradient(8, 6, true).data).unwrap_or_default();
        let delay = Delay::from_numer_denom_ms(100, 1);
        enc.encode_frame(Frame::from_parts(full, 0, 0, delay))
            .map_err(|e| e.to_string())?;
        enc.encode_frame(Frame::from_parts(part, 5, 4, delay))
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// An APNG of two 16x12 frames (acTL, fcTL, IDAT, fcTL, fdAT).
fn apng() -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 16, 12);
        enc.set_color(png::ColorType::Rgba);
        enc.set_animated(2, 0).map_err(|e| e.to_string())?;
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        for alpha in [false, true] {
            let img = gradient(16, 12, true);
            let data: Vec<u8> = img
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2], if alpha { p[3] } else { 255 }])
                .collect();
            w.write_image_data(&data).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = kind.to_vec();
    c.extend((data.len() as u32).to_le_bytes());
    c.extend(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// The lossless file's `VP8L` bitstream as two `ANMF` frames on a `VP8X` canvas.
fn animated_webp(lossless: &[u8], w: u32, h: u32) -> Vec<u8> {
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let bitstream = lossless.get(12..).unwrap_or_default();
    let mut vp8x = vec![0x12, 0, 0, 0];
    vp8x.extend(u24(w - 1));
    vp8x.extend(u24(h - 1));
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(b"ANIM", &[255, 255, 255, 255, 0, 0]));
    for _ in 0..2 {
        let mut anmf = [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(100)].concat();
        anmf.push(0);
        anmf.extend(bitstream);
        body.extend(riff_chunk(b"ANMF", &anmf));
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}
