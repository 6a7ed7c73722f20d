//! Sizing math (docs/rendering.md), pure and table-tested: which source rectangle becomes which output
//! size, and how far a JPEG may be shrunk in the DCT domain while decoding.
//!
//! - only `w`: scale to that width, keep the aspect ratio; only `h`: likewise by height;
//! - both: *cover* — scale to fill, centre-crop to exactly `w` x `h`;
//! - neither: keep the dimensions;
//! - never upscale: a request larger than the source renders at the source's size (cover keeps
//!   the requested aspect ratio within the source);
//! - no output side exceeds `max_side`.

/// A source rectangle (in source pixels, fractional) and the output size it maps to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Left edge of the crop, source pixels.
    pub crop_x: f64,
    /// Top edge of the crop, source pixels.
    pub crop_y: f64,
    /// Crop width, source pixels (> 0).
    pub crop_w: f64,
    /// Crop height, source pixels (> 0).
    pub crop_h: f64,
    /// Output width, pixels (>= 1).
    pub out_w: u32,
    /// Output height, pixels (>= 1).
    pub out_h: u32,
}

impl Plan {
    /// The fraction of the source resolution the output needs (0, 1]: the DCT-domain decode may
    /// shrink by this much without losing detail.
    pub fn needed_scale(&self) -> f64 {
        (f64::from(self.out_w) / self.crop_w)
            .max(f64::from(self.out_h) / self.crop_h)
            .min(1.0)
    }

    /// The same plan for a copy of the source scaled by `sx` horizontally and `sy` vertically
    /// (for example a DCT-scaled decode); the output size is unchanged.
    pub fn scaled(&self, sx: f64, sy: f64) -> Plan {
        Plan {
            crop_x: self.crop_x * sx,
            crop_y: self.crop_y * sy,
            crop_w: self.crop_w * sx,
            crop_h: self.crop_h * sy,
            ..*self
        }
    }
}

fn round_px(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

/// Plan an output of at most `w` x `h` from a `src_w` x `src_h` (upright) source.
pub fn plan(src_w: u32, src_h: u32, w: Option<u32>, h: Option<u32>, max_side: u32) -> Plan {
    let (sw, sh) = (f64::from(src_w.max(1)), f64::from(src_h.max(1)));
    let full = |out_w: u32, out_h: u32| Plan {
        crop_x: 0.0,
        crop_y: 0.0,
        crop_w: sw,
        crop_h: sh,
        out_w,
        out_h,
    };
    let p = match (w, h) {
        (None, None) => full(src_w.max(1), src_h.max(1)),
        (Some(w), None) => {
            let ow = w.min(src_w).max(1);
            full(ow, round_px(sh * f64::from(ow) / sw))
        }
        (None, Some(h)) => {
            let oh = h.min(src_h).max(1);
            full(round_px(sw * f64::from(oh) / sh), oh)
        }
        (Some(w), Some(h)) => {
            let (rw, rh) = (f64::from(w), f64::from(h));
            // The largest rectangle of aspect w:h inside the source, centred.
            let (cw, ch) = if sw * rh > sh * rw {
                (sh * rw / rh, sh)
            } else {
                (sw, sw * rh / rw)
            };
            let (ow, oh) = if rw <= cw {
                (w, h)
            } else {
                (round_px(cw), round_px(ch))
            };
            Plan {
                crop_x: (sw - cw) / 2.0,
                crop_y: (sh - ch) / 2.0,
                crop_w: cw,
                crop_h: ch,
                out_w: ow,
                out_h: oh,
            }
        }
    };
    clamp_side(p, max_side)
}

fn clamp_side(mut p: Plan, max_side: u32) -> Plan {
    let longest = p.out_w.max(p.out_h);
    if longest > max_side && max_side > 0 {
        let k = f64::from(max_side) / f64::from(longest);
        p.out_w = round_px(f64::from(p.out_w) * k).min(max_side);
        p.out_h = round_px(f64::from(p.out_h) * k).min(max_side);
    }
    p
}

/// The DCT-domain scale numerator (over 8, 1..=8) for decoding a JPEG so that every plan still
/// has at least its output resolution available: the smallest `n` with `n/8 >= needed`.
pub fn jpeg_scale_numerator(needed: f64) -> u8 {
    (1u8..=8)
        .find(|&n| f64::from(n) / 8.0 >= needed - 1e-9)
        .unwrap_or(8)
}

/// Size of a JPEG dimension decoded at `num/8` (libjpeg rounds up).
pub fn jpeg_scaled_dim(dim: u32, num: u8) -> u32 {
    (u64::from(dim) * u64::from(num)).div_ceil(8) as u32
}

/// rayon threads for a Lambda function with `memory_mb` of memory: Lambda grants about one
/// vCPU per 1,769 MB, up to 6 vCPUs at 10,240 MB.
pub fn threads_for_lambda_memory(memory_mb: u32) -> usize {
    (memory_mb.div_ceil(1769)).clamp(1, 6) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(p: Plan) -> (u32, u32) {
        (p.out_w, p.out_h)
    }

    #[test]
    fn plan_table() {
        // (src, w, h) -> out
        for (src, w, h, want) in [
            ((4000, 3000), Some(320), None, (320, 240)),
            ((4000, 3000), None, Some(300), (400, 300)),
            ((4000, 3000), Some(160), Some(160), (160, 160)),
            ((4000, 3000), None, None, (2560, 1920)), // clamped to max side
            ((800, 600), None, None, (800, 600)),
            ((200, 100), Some(320), None, (200, 100)), // never upscale
            ((200, 100), None, Some(640), (200, 100)),
            ((200, 100), Some(320), Some(320), (100, 100)), // cover keeps 1:1 within source
            ((200, 100), Some(640), Some(160), (200, 50)),
            ((300, 200), Some(160), Some(160), (160, 160)),
            ((1, 1), Some(2560), None, (1, 1)),
            ((10000, 1), Some(640), None, (640, 1)), // at least one pixel
            ((3000, 4000), Some(2560), Some(2560), (2560, 2560)),
        ] {
            assert_eq!(
                out(plan(src.0, src.1, w, h, 2560)),
                want,
                "{src:?} {w:?} {h:?}"
            );
        }
    }

    #[test]
    fn cover_crop_is_centred() {
        let p = plan(400, 200, Some(100), Some(100), 2560);
        assert_eq!(
            (p.crop_x, p.crop_y, p.crop_w, p.crop_h),
            (100.0, 0.0, 200.0, 200.0)
        );
        let p = plan(200, 400, Some(100), Some(50), 2560);
        assert_eq!(
            (p.crop_x, p.crop_y, p.crop_w, p.crop_h),
            (0.0, 150.0, 200.0, 100.0)
        );
    }

    #[test]
    fn scale_table() {
        for (needed, want) in [
            (1.0, 8),
            (0.9, 8),
            (0.5, 4),
            (0.3, 3),
            (0.26, 3),
            (0.25, 2),
            (0.01, 1),
        ] {
            assert_eq!(jpeg_scale_numerator(needed), want, "{needed}");
        }
        assert_eq!(jpeg_scaled_dim(4224, 2), 1056);
        assert_eq!(jpeg_scaled_dim(2988, 2), 747);
        assert_eq!(jpeg_scaled_dim(5, 1), 1);
        let p = plan(4224, 3168, Some(1280), None, 2560);
        assert_eq!(jpeg_scale_numerator(p.needed_scale()), 3);
    }

    #[test]
    fn lambda_threads_table() {
        for (mb, want) in [
            (128, 1),
            (1769, 1),
            (1770, 2),
            (3008, 2),
            (5307, 3),
            (10240, 6),
        ] {
            assert_eq!(threads_for_lambda_memory(mb), want, "{mb}");
        }
    }
}
