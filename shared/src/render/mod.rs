//! The render engine (SPEC §4–§5): decode an original once, then render any number of
//! variants from the decoded pixels, the standard catalogue in parallel on a rayon pool.
//!
//! All pixel work here is synchronous and pure (bytes in, bytes out); async callers run it
//! through `spawn_blocking` or a rayon pool.

pub mod calibration;
pub mod color;
pub mod decode;
pub mod encode;
pub mod error;
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
    decode(bytes, &cfg.limits, if needed > 0.0 { needed } else { 1.0 })
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
    let full_crop = plan.crop_x == 0.0
        && plan.crop_y == 0.0
        && plan.crop_w == f64::from(img.width)
        && plan.crop_h == f64::from(img.height);
    if full_crop && plan.out_w == img.width && plan.out_h == img.height {
        return Ok(img.clone());
    }
    let pt = if img.alpha {
        fir::PixelType::U8x4
    } else {
        fir::PixelType::U8x3
    };
    let err = |e: &dyn std::fmt::Display| RenderError::internal("resize", e);
    let src = fir::images::ImageRef::new(img.width, img.height, &img.data, pt)
        .map_err(|e| err(&e))?;
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
    // Slowest encoders first so the pool's tail is short.
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost_rank(&targets[i])));
    let mut rendered: Vec<(usize, Rendered)> = order
        .par_iter()
        .map(|&i| render_target(&decoded, &targets[i], cfg).map(|r| (i, r)))
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
