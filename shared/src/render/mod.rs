//! The render engine (docs/rendering.md): decode an original once, then render any number of
//! variants from the decoded pixels, the standard catalogue in parallel on a rayon pool.
//!
//! All pixel work here is synchronous and pure (bytes in, bytes out); async callers run it
//! through `spawn_blocking` or a rayon pool.

pub mod calibration;
pub mod color;
pub mod decode;
pub mod encode;
pub mod error;
pub mod frames;
pub mod orient;
pub mod sizing;
pub mod sniff;

pub use decode::{decode, probe, Decoded, SourceInfo};
pub use encode::Speed;
pub use error::RenderError;
pub use sniff::InputFormat;

use crate::normalize::Canonical;
use crate::policy::{Format, Limits, Policy, Variant};
use rayon::prelude::*;
use std::time::Instant;

/// Interleaved 8-bit sRGB pixels, RGB or RGBA, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width, pixels (>= 1).
    pub width: u32,
    /// Height, pixels (>= 1).
    pub height: u32,
    /// Whether there is a fourth (alpha, straight, not premultiplied) channel.
    pub alpha: bool,
    /// `width * height * channels()` bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// 3 (RGB) or 4 (RGBA).
    pub fn channels(&self) -> usize {
        if self.alpha {
            4
        } else {
            3
        }
    }

    /// Composite onto white and drop the alpha channel (for JPEG output).
    pub fn flatten_on_white(&self) -> Image {
        if !self.alpha {
            return self.clone();
        }
        let data = self
            .data
            .chunks_exact(4)
            .flat_map(|p| {
                let a = u32::from(p[3]);
                let mix = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                [mix(p[0]), mix(p[1]), mix(p[2])]
            })
            .collect();
        Image {
            width: self.width,
            height: self.height,
            alpha: false,
            data,
        }
    }
}

/// One output size and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Requested width (a breakpoint), pixels.
    pub w: Option<u32>,
    /// Requested height (a breakpoint), pixels.
    pub h: Option<u32>,
    /// Output format.
    pub fmt: Format,
    /// Public quality step 1..=100 (`None` for PNG or the format default).
    pub q: Option<u8>,
}

impl From<&Canonical> for Target {
    fn from(c: &Canonical) -> Self {
        Target {
            w: c.w,
            h: c.h,
            fmt: c.fmt,
            q: c.q,
        }
    }
}

impl From<&Variant> for Target {
    fn from(v: &Variant) -> Self {
        Target {
            w: v.w,
            h: v.h,
            fmt: v.fmt,
            q: v.q,
        }
    }
}

impl Target {
    /// The canonical request for this target (quality defaulted per the policy).
    pub fn canonical(&self) -> Canonical {
        let q = if self.fmt.has_quality() {
            self.q.or_else(|| Policy::get().default_quality(self.fmt))
        } else {
            None
        };
        Canonical {
            fmt: self.fmt,
            w: self.w,
            h: self.h,
            q,
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderConfig {
    /// Input/output limits (defaults from the policy file).
    pub limits: Limits,
    /// Encoder speed knobs.
    pub speed: Speed,
    /// Use this raw encoder setting instead of the calibrated one (calibration tooling only).
    pub encoder_setting_override: Option<f32>,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            limits: Policy::get().limits,
            speed: Speed::default(),
            encoder_setting_override: None,
        }
    }
}

/// One rendered output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The canonical request it answers (its derivative name is the object name).
    pub canonical: Canonical,
    /// Output width, pixels.
    pub width: u32,
    /// Output height, pixels.
    pub height: u32,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Resize + encode time, milliseconds.
    pub render_ms: u64,
}

/// The output size of `target` for an upright `source` (no pixels needed).
pub fn plan_for(source: &SourceInfo, target: &Target, limits: &Limits) -> sizing::Plan {
    sizing::plan(
        source.width,
        source.height,
        target.w,
        target.h,
        limits.max_output_side,
    )
}

/// How much more resolution than the output the DCT-domain shrink keeps, so that the last
/// reduction is always a Lanczos3 resample of at least 2x (a DCT shrink straight to the target
/// size is visibly softer and aliased; libvips keeps the same margin).
pub const DCT_SHRINK_MARGIN: f64 = 2.0;

/// Decode `bytes` once at the smallest resolution that still serves every target.
pub fn decode_for(
    bytes: &[u8],
    targets: &[Target],
    cfg: &RenderConfig,
) -> Result<Decoded, RenderError> {
    let info = probe(bytes, &cfg.limits)?;
    let needed = targets
        .iter()
        .map(|t| plan_for(&info, t, &cfg.limits).needed_scale())
        .fold(0.0_f64, f64::max);
    let needed = if needed > 0.0 {
        needed * DCT_SHRINK_MARGIN
    } else {
        1.0
    };
    decode(bytes, &cfg.limits, needed.min(1.0))
}

/// Render one target from decoded pixels.
pub fn render_target(
    decoded: &Decoded,
    target: &Target,
    cfg: &RenderConfig,
) -> Result<Rendered, RenderError> {
    let started = Instant::now();
    let plan = plan_for(&decoded.source, target, &cfg.limits);
    // The decoded pixels may be a DCT-scaled copy of the source: map the crop onto them.
    let sx = f64::from(decoded.image.width) / f64::from(decoded.source.width.max(1));
    let sy = f64::from(decoded.image.height) / f64::from(decoded.source.height.max(1));
    let resized = resize(&decoded.image, &plan.scaled(sx, sy))?;
    let canonical = target.canonical();
    let setting = cfg
        .encoder_setting_override
        .unwrap_or_else(|| calibration::encoder_setting(canonical.fmt, canonical.q));
    let bytes = encode::encode(&resized, canonical.fmt, setting, cfg.speed)?;
    Ok(Rendered {
        canonical,
        width: resized.width,
        height: resized.height,
        bytes,
        render_ms: started.elapsed().as_millis() as u64,
    })
}

/// Resize `img` per `plan` (crop in `img` pixels) with Lanczos3, alpha-aware.
pub fn resize(img: &Image, plan: &sizing::Plan) -> Result<Image, RenderError> {
    use fast_image_resize as fir;
    let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let full_crop = near(plan.crop_x, 0.0)
        && near(plan.crop_y, 0.0)
        && near(plan.crop_w, f64::from(img.width))
        && near(plan.crop_h, f64::from(img.height));
    if full_crop && plan.out_w == img.width && plan.out_h == img.height {
        return Ok(img.clone());
    }
    let pt = if img.alpha {
        fir::PixelType::U8x4
    } else {
        fir::PixelType::U8x3
    };
    let err = |e: &dyn std::fmt::Display| RenderError::internal("resize", e);
    let src =
        fir::images::ImageRef::new(img.width, img.height, &img.data, pt).map_err(|e| err(&e))?;
    let mut dst = fir::images::Image::new(plan.out_w, plan.out_h, pt);
    let opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3))
        .crop(plan.crop_x, plan.crop_y, plan.crop_w, plan.crop_h)
        .use_alpha(img.alpha);
    fir::Resizer::new()
        .resize(&src, &mut dst, &opts)
        .map_err(|e| err(&e))?;
    Ok(Image {
        width: plan.out_w,
        height: plan.out_h,
        alpha: img.alpha,
        data: dst.into_vec(),
    })
}

/// The result of rendering a whole catalogue from one original.
#[derive(Debug, Clone)]
pub struct CatalogueRender {
    /// Header facts of the original.
    pub source: SourceInfo,
    /// Decode time, milliseconds.
    pub decode_ms: u64,
    /// One output per catalogue entry, in catalogue order.
    pub outputs: Vec<(Variant, Rendered)>,
}

/// Decode `bytes` once and render every variant in parallel on the current rayon pool.
pub fn render_catalogue(
    bytes: &[u8],
    variants: &[Variant],
    cfg: &RenderConfig,
) -> Result<CatalogueRender, RenderError> {
    let targets: Vec<Target> = variants.iter().map(Target::from).collect();
    let started = Instant::now();
    let decoded = decode_for(bytes, &targets, cfg)?;
    let decode_ms = started.elapsed().as_millis() as u64;
    let intermediate = intermediate_for(&decoded, &targets, cfg)?;
    // Slowest encoders first so the pool's tail is short.
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost_rank(&targets[i])));
    let mut rendered: Vec<(usize, Rendered)> = order
        .par_iter()
        .map(|&i| {
            let t = &targets[i];
            let from = match &intermediate {
                Some(mid) if serves(mid, t, cfg) => mid,
                _ => &decoded,
            };
            render_target(from, t, cfg).map(|r| (i, r))
        })
        .collect::<Result<_, _>>()?;
    rendered.sort_by_key(|(i, _)| *i);
    Ok(CatalogueRender {
        source: decoded.source,
        decode_ms,
        outputs: rendered
            .into_iter()
            .map(|(i, r)| (variants[i].clone(), r))
            .collect(),
    })
}

/// Whether `from` has at least `DCT_SHRINK_MARGIN` times the resolution `t` needs, so a
/// Lanczos reduction from it loses nothing against one from the full decode.
/// An output of exactly `from`'s size and framing (the intermediate's own target) is served too.
fn serves(from: &Decoded, t: &Target, cfg: &RenderConfig) -> bool {
    let plan = plan_for(&from.source, t, &cfg.limits);
    let same = plan.crop_x == 0.0
        && plan.crop_y == 0.0
        && (plan.out_w, plan.out_h) == (from.image.width, from.image.height);
    let have = f64::from(from.image.width) / f64::from(from.source.width.max(1));
    same || have >= plan.needed_scale() * DCT_SHRINK_MARGIN - 1e-9
}

/// The largest full-frame output of the catalogue (for the standard one, the 1280-px width),
/// rendered once from the decode so the smaller variants resize from it instead of from the
/// larger decode. `None` when no target is a full-frame downscale.
fn intermediate_for(
    decoded: &Decoded,
    targets: &[Target],
    cfg: &RenderConfig,
) -> Result<Option<Decoded>, RenderError> {
    let largest = targets
        .iter()
        .map(|t| plan_for(&decoded.source, t, &cfg.limits))
        .filter(|p| p.crop_x == 0.0 && p.crop_y == 0.0)
        .filter(|p| p.out_w < decoded.image.width)
        .max_by_key(|p| p.out_w);
    let Some(plan) = largest else {
        return Ok(None);
    };
    let sx = f64::from(decoded.image.width) / f64::from(decoded.source.width.max(1));
    let sy = f64::from(decoded.image.height) / f64::from(decoded.source.height.max(1));
    let image = resize(&decoded.image, &plan.scaled(sx, sy))?;
    Ok(Some(Decoded {
        source: decoded.source,
        image,
    }))
}

/// Rough relative cost of a target, to schedule expensive encodes first.
fn cost_rank(t: &Target) -> u64 {
    let px = u64::from(t.w.unwrap_or(2560)) * u64::from(t.h.or(t.w).unwrap_or(2560));
    let k = match t.fmt {
        Format::Avif => 20,
        Format::Png => 4,
        Format::Webp => 2,
        Format::Jpeg => 1,
    };
    px * k
}

/// Render one request (e.g. a non-standard miss): decode at the resolution it needs, render.
pub fn render_one(
    bytes: &[u8],
    target: &Target,
    cfg: &RenderConfig,
) -> Result<Rendered, RenderError> {
    let decoded = decode_for(bytes, std::slice::from_ref(target), cfg)?;
    render_target(&decoded, target, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(w: Option<u32>, fmt: Format) -> Target {
        Target {
            w,
            h: None,
            fmt,
            q: None,
        }
    }

    fn png_rgba(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba(px));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn decode_png(bytes: &[u8]) -> image::RgbaImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .unwrap()
            .to_rgba8()
    }

    fn jpeg(cs: mozjpeg::ColorSpace, w: usize, h: usize, px: &[u8], icc: Option<&[u8]>) -> Vec<u8> {
        let mut c = mozjpeg::Compress::new(cs);
        c.set_size(w, h);
        c.set_quality(95.0);
        let mut s = c.start_compress(Vec::new()).unwrap();
        if let Some(icc) = icc {
            s.write_icc_profile(icc);
        }
        let row: Vec<u8> = std::iter::repeat_n(px, w * h).flatten().copied().collect();
        s.write_scanlines(&row).unwrap();
        s.finish().unwrap()
    }

    fn centre_rgb(bytes: &[u8], cfg: &RenderConfig) -> [u8; 3] {
        let r = render_one(bytes, &target(None, Format::Png), cfg).unwrap();
        let img = decode_png(&r.bytes);
        let p = img.get_pixel(img.width() / 2, img.height() / 2);
        [p[0], p[1], p[2]]
    }

    fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
    }

    #[test]
    fn alpha_is_kept_for_png_and_flattened_on_white_for_jpeg() {
        let cfg = RenderConfig::default();
        let input = png_rgba(64, 64, [255, 0, 0, 128]);
        let png = render_one(&input, &target(Some(32), Format::Png), &cfg).unwrap();
        let p = *decode_png(&png.bytes).get_pixel(16, 16);
        assert!(p[3].abs_diff(128) <= 1 && p[0] >= 250, "{p:?}");
        let jpg = render_one(&input, &target(Some(32), Format::Jpeg), &cfg).unwrap();
        let img = decode(&jpg.bytes, &cfg.limits, 1.0).unwrap().image;
        let at = (16 * 32 + 16) * 3;
        let p = [img.data[at], img.data[at + 1], img.data[at + 2]];
        assert!(close(p, [255, 127, 127], 8), "flattened onto white: {p:?}");
        // WebP and AVIF keep an alpha channel.
        let webp = render_one(&input, &target(Some(32), Format::Webp), &cfg).unwrap();
        assert!(contains(&webp.bytes, b"ALPH") || contains(&webp.bytes, b"VP8L"));
        let avif = render_one(&input, &target(Some(32), Format::Avif), &cfg).unwrap();
        assert!(contains(&avif.bytes, b"auxC") || contains(&avif.bytes, b"auxl"));
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn adobe_cmyk_jpeg_is_not_inverted() {
        // Photoshop stores CMYK inverted (255 = no ink); libjpeg writes the Adobe marker.
        // Pure red: C=0 M=255 Y=255 K=0 -> stored 255, 0, 0, 255.
        let bytes = jpeg(
            mozjpeg::ColorSpace::JCS_CMYK,
            32,
            32,
            &[255, 0, 0, 255],
            None,
        );
        let got = centre_rgb(&bytes, &RenderConfig::default());
        assert!(close(got, [255, 0, 0], 12), "{got:?}");
    }

    #[test]
    fn embedded_icc_profile_is_converted_to_srgb() {
        use lcms2::{CIExyY, CIExyYTRIPLE, Profile, ToneCurve};
        // sRGB primaries with a linear (gamma 1.0) tone curve: linear 50/255 is sRGB ~124.
        let d65 = CIExyY {
            x: 0.3127,
            y: 0.3290,
            Y: 1.0,
        };
        let primaries = CIExyYTRIPLE {
            Red: CIExyY {
                x: 0.64,
                y: 0.33,
                Y: 1.0,
            },
            Green: CIExyY {
                x: 0.30,
                y: 0.60,
                Y: 1.0,
            },
            Blue: CIExyY {
                x: 0.15,
                y: 0.06,
                Y: 1.0,
            },
        };
        let linear = ToneCurve::new(1.0);
        let profile = Profile::new_rgb(&d65, &primaries, &[&linear, &linear, &linear]).unwrap();
        let icc = profile.icc().unwrap();
        let bytes = jpeg(
            mozjpeg::ColorSpace::JCS_RGB,
            32,
            32,
            &[50, 50, 50],
            Some(&icc),
        );
        let got = centre_rgb(&bytes, &RenderConfig::default());
        assert!(close(got, [124, 124, 124], 6), "{got:?}");
        // Without the profile the same pixels stay as they are.
        let plain = jpeg(mozjpeg::ColorSpace::JCS_RGB, 32, 32, &[50, 50, 50], None);
        assert!(close(
            centre_rgb(&plain, &RenderConfig::default()),
            [50, 50, 50],
            3
        ));
    }

    #[test]
    fn grayscale_jpeg_decodes() {
        let bytes = jpeg(mozjpeg::ColorSpace::JCS_GRAYSCALE, 16, 16, &[200], None);
        assert!(close(
            centre_rgb(&bytes, &RenderConfig::default()),
            [200, 200, 200],
            3
        ));
    }

    #[test]
    fn animated_gif_renders_its_first_frame() {
        use image::codecs::gif::GifEncoder;
        let mut gif = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut gif);
            for px in [[255, 0, 0, 255], [0, 0, 255, 255]] {
                let frame =
                    image::Frame::new(image::RgbaImage::from_pixel(16, 16, image::Rgba(px)));
                enc.encode_frame(frame).unwrap();
            }
        }
        let got = centre_rgb(&gif, &RenderConfig::default());
        assert!(close(got, [255, 0, 0], 4), "{got:?}");
    }

    #[test]
    fn webp_input_decodes() {
        let cfg = RenderConfig::default();
        let webp = render_one(
            &png_rgba(40, 20, [10, 200, 30, 255]),
            &target(None, Format::Webp),
            &cfg,
        )
        .unwrap();
        let r = render_one(&webp.bytes, &target(Some(20), Format::Png), &cfg).unwrap();
        assert_eq!((r.width, r.height), (20, 10));
        let p = *decode_png(&r.bytes).get_pixel(10, 5);
        assert!(close([p[0], p[1], p[2]], [10, 200, 30], 10), "{p:?}");
    }

    #[test]
    fn jpeg_is_decoded_at_a_dct_scale_when_possible() {
        let bytes = jpeg(mozjpeg::ColorSpace::JCS_RGB, 800, 600, &[90, 90, 90], None);
        let d = decode_for(
            &bytes,
            &[target(Some(160), Format::Webp)],
            &RenderConfig::default(),
        )
        .unwrap();
        assert_eq!((d.source.width, d.source.height), (800, 600));
        assert_eq!(
            (d.image.width, d.image.height),
            (400, 300),
            "1/2 scale: 2x margin over 160"
        );
        let d = decode_for(
            &bytes,
            &[target(None, Format::Webp)],
            &RenderConfig::default(),
        )
        .unwrap();
        assert_eq!(d.image.width, 800);
    }

    #[test]
    fn catalogue_renders_every_variant_in_order() {
        let bytes = jpeg(mozjpeg::ColorSpace::JCS_RGB, 400, 300, &[120, 60, 30], None);
        let variants = &Policy::get().variants;
        let all = render_catalogue(&bytes, variants, &RenderConfig::default()).unwrap();
        assert_eq!(all.outputs.len(), 8);
        for ((v, r), want) in all.outputs.iter().zip(variants) {
            assert_eq!(v, want);
            assert_eq!(r.canonical.fmt, want.fmt);
            assert!(r.width <= 400 && !r.bytes.is_empty());
        }
        // Never upscaled: the 640 and 1280 variants stay at the source's 400 px.
        assert_eq!(all.outputs[7].1.width, 400);
        assert_eq!(
            (all.outputs[0].1.width, all.outputs[0].1.height),
            (160, 160)
        );
    }
}
