//! Frame layout from the container headers, read before any pixel is decoded.
//!
//! The canvas size a decoder reports is not all it allocates: a GIF frame may be larger than
//! the logical screen (a 1x1 screen with a 14600x14600 frame is 213 MP), an animated WebP
//! decodes its first `ANMF` frame into a frame buffer and composites it onto a canvas kept
//! beside the output, an APNG declares `fcTL` frames of their own size. This module walks the
//! chunk/block structure (never the compressed pixel data) and returns every frame rectangle
//! and the pixels the decoder will allocate for the one frame that is rendered (the first).
//!
//! The walk is tolerant: a truncated or malformed structure ends the walk with what was read
//! (the decoder then reports the damage); only sizes are judged here.

use super::sniff::InputFormat;

/// A frame rectangle on the canvas, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRect {
    /// Left edge, pixels from the canvas's left.
    pub left: u32,
    /// Top edge, pixels from the canvas's top.
    pub top: u32,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
}

impl FrameRect {
    /// Width x height, pixels.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// What the headers declare: the canvas, every frame, and what decoding the first frame costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Canvas (GIF logical screen, PNG `IHDR`, WebP `VP8X` or bitstream) width, pixels.
    pub canvas_width: u32,
    /// Canvas height, pixels.
    pub canvas_height: u32,
    /// Every frame descriptor found, in file order (empty for a still image without one).
    pub frames: Vec<FrameRect>,
    /// Pixels the decoder allocates to produce the first frame: the output canvas, plus a
    /// separate frame buffer and animation canvas where the decoder keeps them.
    pub decode_pixels: u64,
}

/// Read the frame layout of a PNG, GIF or WebP file; `None` for JPEG (one frame, the header
/// size is checked by the caller) or when even the canvas size is missing.
pub fn layout(bytes: &[u8], format: InputFormat) -> Option<Layout> {
    match format {
        InputFormat::Gif => gif(bytes),
        InputFormat::Png => png(bytes),
        InputFormat::Webp => webp(bytes),
        InputFormat::Jpeg => None,
    }
}

fn u16le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn u24le(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// GIF: the logical screen, then every image descriptor (extensions and LZW data skipped by
/// their sub-block lengths).
fn gif(b: &[u8]) -> Option<Layout> {
    let (cw, ch) = (u16le(b, 6)?, u16le(b, 8)?);
    let flags = *b.get(10)?;
    let mut pos = 13
        + if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        };
    let mut frames = Vec::new();
    let skip_sub_blocks = |mut p: usize| -> Option<usize> {
        loop {
            let len = usize::from(*b.get(p)?);
            p += 1 + len;
            if len == 0 {
                return Some(p);
            }
        }
    };
    while let Some(&tag) = b.get(pos) {
        match tag {
            0x21 => match skip_sub_blocks(pos + 2) {
                Some(p) => pos = p,
                None => break,
            },
            0x2C => {
                let (Some(left), Some(top), Some(width), Some(height), Some(&f)) = (
                    u16le(b, pos + 1),
                    u16le(b, pos + 3),
                    u16le(b, pos + 5),
                    u16le(b, pos + 7),
                    b.get(pos + 9),
                ) else {
                    break;
                };
                frames.push(FrameRect {
                    left,
                    top,
                    width,
                    height,
                });
                let table = if f & 0x80 != 0 { 3 << ((f & 7) + 1) } else { 0 };
                // Descriptor, local colour table, LZW minimum code size, then the data.
                match skip_sub_blocks(pos + 10 + table + 1) {
                    Some(p) => pos = p,
                    None => break,
                }
            }
            _ => break,
        }
    }
    let canvas = u64::from(cw) * u64::from(ch);
    // The `image` decoder writes the first frame straight into the output when it spans the
    // screen's width and fits its height; otherwise it decodes the whole frame into a buffer of
    // its own and copies the visible part.
    let extra = frames.first().map_or(0, |f| {
        let direct =
            f.left == 0 && f.width == cw && u64::from(f.top) + u64::from(f.height) <= u64::from(ch);
        if direct {
            0
        } else {
            f.pixels()
        }
    });
    Some(Layout {
        canvas_width: cw,
        canvas_height: ch,
        frames,
        decode_pixels: canvas + extra,
    })
}

/// PNG: `IHDR`, then every `fcTL` (APNG frame control). Only the default image is decoded, at
/// the `IHDR` size (the decoder requires the first `fcTL` to match it).
fn png(b: &[u8]) -> Option<Layout> {
    let mut pos = 8;
    let mut canvas = None;
    let mut frames = Vec::new();
    while let (Some(len), Some(kind)) = (u32be(b, pos), b.get(pos + 4..pos + 8)) {
        let data = pos + 8;
        match kind {
            b"IHDR" => canvas = Some((u32be(b, data)?, u32be(b, data + 4)?)),
            b"fcTL" => {
                if let (Some(width), Some(height), Some(left), Some(top)) = (
                    u32be(b, data + 4),
                    u32be(b, data + 8),
                    u32be(b, data + 12),
                    u32be(b, data + 16),
                ) {
                    frames.push(FrameRect {
                        left,
                        top,
                        width,
                        height,
                    });
                }
            }
            b"IEND" => break,
            _ => {}
        }
        pos = data.saturating_add(len as usize).saturating_add(4);
    }
    let (cw, ch) = canvas?;
    Some(Layout {
        canvas_width: cw,
        canvas_height: ch,
        frames,
        decode_pixels: u64::from(cw) * u64::from(ch),
    })
}

/// WebP: the `VP8X` canvas or the bitstream's own size, then every `ANMF` frame. An animated
/// file is decoded into the output, a canvas kept by the decoder and a buffer for the frame.
fn webp(b: &[u8]) -> Option<Layout> {
    let mut pos = 12;
    let mut canvas = None;
    let mut animated = false;
    let mut frames = Vec::new();
    while let (Some(kind), Some(len)) = (b.get(pos..pos + 4), u32le(b, pos + 4)) {
        let data = pos + 8;
        match kind {
            b"VP8X" => {
                animated = b.get(data).is_some_and(|f| f & 0x02 != 0);
                canvas = Some((u24le(b, data + 4)? + 1, u24le(b, data + 7)? + 1));
            }
            b"VP8 " if canvas.is_none() => {
                canvas = Some((u16le(b, data + 6)? & 0x3FFF, u16le(b, data + 8)? & 0x3FFF));
            }
            b"VP8L" if canvas.is_none() => {
                let bits = u32le(b, data + 1)?;
                canvas = Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1));
            }
            b"ANMF" => {
                if let (Some(x), Some(y), Some(w), Some(h)) = (
                    u24le(b, data),
                    u24le(b, data + 3),
                    u24le(b, data + 6),
                    u24le(b, data + 9),
                ) {
                    frames.push(FrameRect {
                        left: x * 2,
                        top: y * 2,
                        width: w + 1,
                        height: h + 1,
                    });
                }
            }
            _ => {}
        }
        pos = data.saturating_add(len as usize + (len as usize & 1));
    }
    let (cw, ch) = canvas?;
    let canvas_px = u64::from(cw) * u64::from(ch);
    let decode_pixels = match (animated, frames.first()) {
        (true, Some(f)) => 2 * canvas_px + f.pixels(),
        _ => canvas_px,
    };
    Some(Layout {
        canvas_width: cw,
        canvas_height: ch,
        frames,
        decode_pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{decode, probe, RenderError};
    use super::*;

    /// A GIF with a `sw`x`sh` logical screen and one `fw`x`fh` frame at (`left`, 0), whose LZW
    /// data is just a clear code and an end code: the size check must come before decoding.
    fn gif_bytes(sw: u16, sh: u16, frames: &[(u16, u16, u16)]) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend(sw.to_le_bytes());
        b.extend(sh.to_le_bytes());
        b.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // 2-colour global table
        for &(left, fw, fh) in frames {
            b.push(0x2C);
            b.extend(left.to_le_bytes());
            b.extend(0u16.to_le_bytes());
            b.extend(fw.to_le_bytes());
            b.extend(fh.to_le_bytes());
            b.extend([0, 2, 1, 0x2C, 0]); // no local table; min code 2; clear, end
        }
        b.push(0x3B);
        b
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        c.extend([0; 4]); // CRC: never reached, the size check comes first
        c
    }

    /// An APNG with a `cw`x`ch` IHDR whose second frame (`fcTL`) is `fw`x`fh`.
    fn apng_bytes(cw: u32, ch: u32, fw: u32, fh: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = cw.to_be_bytes().to_vec();
        ihdr.extend(ch.to_be_bytes());
        ihdr.extend([8, 6, 0, 0, 0]);
        b.extend(chunk(b"IHDR", &ihdr));
        b.extend(chunk(b"acTL", &[0, 0, 0, 2, 0, 0, 0, 0]));
        let fctl = |seq: u32, w: u32, h: u32| {
            let mut d = seq.to_be_bytes().to_vec();
            for v in [w, h, 0, 0] {
                d.extend(v.to_be_bytes());
            }
            d.extend([0, 1, 0, 10, 0, 0]);
            chunk(b"fcTL", &d)
        };
        b.extend(fctl(0, cw, ch));
        b.extend(chunk(b"IDAT", &[0x78, 0x9c, 3, 0, 0, 0, 0, 1]));
        b.extend(fctl(1, fw, fh));
        b.extend(chunk(b"IEND", &[]));
        b
    }

    fn riff(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = kind.to_vec();
        c.extend((data.len() as u32).to_le_bytes());
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    /// An animated WebP: a `cw`x`ch` `VP8X` canvas and one `fw`x`fh` `ANMF` frame.
    fn webp_bytes(cw: u32, ch: u32, fw: u32, fh: u32) -> Vec<u8> {
        let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
        let mut vp8x = vec![0x02, 0, 0, 0];
        vp8x.extend(u24(cw - 1));
        vp8x.extend(u24(ch - 1));
        let mut anmf = [u24(0), u24(0), u24(fw - 1), u24(fh - 1), u24(100)].concat();
        anmf.push(0);
        let bits = (fw - 1) | (fh - 1) << 14;
        let mut vp8l = vec![0x2f];
        vp8l.extend(bits.to_le_bytes());
        anmf.extend(riff(b"VP8L", &vp8l));
        let body = [
            b"WEBP".to_vec(),
            riff(b"VP8X", &vp8x),
            riff(b"ANIM", &[0; 6]),
            riff(b"ANMF", &anmf),
        ]
        .concat();
        [
            b"RIFF".to_vec(),
            (body.len() as u32).to_le_bytes().to_vec(),
            body,
        ]
        .concat()
    }

    fn too_large(bytes: &[u8]) {
        let limits = crate::Policy::get().limits;
        for err in [
            decode(bytes, &limits, 1.0).map(|_| ()),
            probe(bytes, &limits).map(|_| ()),
        ] {
            let err = err.expect_err("must be rejected");
            assert_eq!(err.error_type(), "ImageTooLarge", "{err}");
            assert!(matches!(err, RenderError::FramesTooLarge { .. }), "{err}");
        }
    }

    #[test]
    fn gif_frame_larger_than_the_logical_screen_is_too_large() {
        // The bomb of issue 14: a 1x1 screen, a 14600x14600 (213 MP) frame.
        let bomb = gif_bytes(1, 1, &[(0, 14600, 14600)]);
        assert_eq!(
            layout(&bomb, InputFormat::Gif).map(|l| l.frames.len()),
            Some(1)
        );
        too_large(&bomb);
    }

    #[test]
    fn gif_later_frame_over_the_limit_is_too_large() {
        too_large(&gif_bytes(100, 100, &[(0, 100, 100), (0, 12000, 12000)]));
    }

    #[test]
    fn gif_canvas_and_separate_first_frame_count_together() {
        // 64 MP screen + a 49 MP first frame off the left edge (decoded into its own buffer).
        too_large(&gif_bytes(8000, 8000, &[(1, 7000, 7000)]));
    }

    #[test]
    fn gif_first_frame_larger_than_the_screen_is_rejected_before_decoding() {
        let err = decode(
            &gif_bytes(10, 10, &[(0, 20, 10)]),
            &crate::Policy::get().limits,
            1.0,
        );
        assert!(
            matches!(&err, Err(RenderError::Corrupt { detail, .. }) if detail.contains("canvas")),
            "{err:?}"
        );
    }

    #[test]
    fn apng_frame_over_the_limit_is_too_large() {
        too_large(&apng_bytes(1, 1, 20000, 20000));
    }

    #[test]
    fn animated_webp_frame_over_the_limit_is_too_large() {
        too_large(&webp_bytes(1, 1, 16384, 16384));
    }

    #[test]
    fn animated_webp_canvas_copies_and_frame_count_together() {
        // 36 MP canvas: output + the decoder's canvas + the frame buffer = 108 MP.
        let bytes = webp_bytes(6000, 6000, 6000, 6000);
        assert_eq!(
            layout(&bytes, InputFormat::Webp).map(|l| l.decode_pixels),
            Some(108_000_000)
        );
        too_large(&bytes);
    }

    #[test]
    fn only_the_first_gif_frame_is_decoded() {
        use image::codecs::gif::GifEncoder;
        use image::{Frame, Rgba, RgbaImage};
        let mut gif = Vec::new();
        GifEncoder::new(&mut gif)
            .encode_frame(Frame::new(RgbaImage::from_pixel(
                4,
                3,
                Rgba([10, 10, 10, 255]),
            )))
            .expect("encode");
        // A second frame whose LZW data is garbage (an undefined first code): never read.
        assert_eq!(gif.pop(), Some(0x3B));
        gif.extend([
            0x2C, 0, 0, 0, 0, 4, 0, 3, 0, 0, 2, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        gif.extend([0, 0x3B]);
        let l = layout(&gif, InputFormat::Gif).expect("layout");
        assert_eq!((l.canvas_width, l.canvas_height, l.frames.len()), (4, 3, 2));
        let d = decode(&gif, &crate::Policy::get().limits, 1.0).expect("first frame decodes");
        assert_eq!((d.image.width, d.image.height), (4, 3));
        assert_eq!(d.image.data[0], 10);
    }
}
