//! The delivery policy as data: breakpoints, quality steps, format defaults, limits and the
//! standard-variant catalogue (docs/url-grammar.md, docs/rendering.md).
//!
//! The policy lives in one file, `shared/policy.json`, embedded at compile time. The
//! CloudFront Function embeds a generated copy of the same file (`edge/gen-policy.mjs`), and a
//! test proves the copy matches, so the edge and the Rust code can never disagree on a number.

use serde::Deserialize;
use std::sync::OnceLock;

/// The policy file, verbatim.
pub const POLICY_JSON: &str = include_str!("../policy.json");

/// An output image format. The only four the platform emits (docs/url-grammar.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Baseline JPEG, alpha flattened onto white.
    Jpeg,
    /// Lossy WebP, alpha kept.
    Webp,
    /// AVIF (AV1 still image), alpha kept.
    Avif,
    /// Lossless PNG, alpha kept; has no quality parameter.
    Png,
}

impl Format {
    /// The canonical lower-case name, as used in URLs and derivative names.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Png => "png",
        }
    }

    /// The HTTP `Content-Type` of the encoded bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Png => "image/png",
        }
    }

    /// Whether the format keeps an alpha channel (JPEG flattens onto white).
    pub fn keeps_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    /// Whether a quality parameter applies (PNG is lossless).
    pub fn has_quality(self) -> bool {
        !matches!(self, Format::Png)
    }
}

/// Resource limits for one input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Limits {
    /// Largest accepted input file, in bytes (default 50 MiB = 52,428,800).
    pub max_input_bytes: u64,
    /// Largest accepted input, in pixels (width x height, default 100,000,000), checked from
    /// the header before any pixel is decoded.
    pub max_input_pixels: u64,
    /// Longest side of any output, in pixels (default 2560).
    pub max_output_side: u32,
}

/// One entry of the standard-variant catalogue (docs/rendering.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Variant {
    /// Stable name, e.g. `sm-webp`.
    pub name: String,
    /// Requested width in pixels (a breakpoint), if any.
    #[serde(default)]
    pub w: Option<u32>,
    /// Requested height in pixels (a breakpoint), if any.
    #[serde(default)]
    pub h: Option<u32>,
    /// Output format.
    pub fmt: Format,
    /// Quality step 1..=100 (ignored for PNG).
    #[serde(default)]
    pub q: Option<u8>,
}

/// Default quality per lossy format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DefaultQuality {
    /// JPEG default quality step.
    pub jpeg: u8,
    /// WebP default quality step.
    pub webp: u8,
    /// AVIF default quality step.
    pub avif: u8,
}

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Policy {
    /// Width/height breakpoints in pixels, ascending; requests snap up to the next one.
    pub breakpoints: Vec<u32>,
    /// Quality steps 1..=100, ascending; requests snap up to the next one.
    pub quality_steps: Vec<u8>,
    /// Default quality per lossy format.
    pub default_quality: DefaultQuality,
    /// Largest accepted `w`/`h` parameter before snapping (8192).
    pub max_dimension_param: u32,
    /// Longest accepted asset key, in bytes (512).
    pub max_key_bytes: usize,
    /// Input and output limits.
    pub limits: Limits,
    /// The standard variants, pre-rendered for every upload.
    pub variants: Vec<Variant>,
}

impl Policy {
    /// The embedded policy, parsed once. The file is part of the build and validated by the
    /// tests, so a parse failure is a build defect, not bad input.
    pub fn get() -> &'static Policy {
        static POLICY: OnceLock<Policy> = OnceLock::new();
        POLICY.get_or_init(|| {
            #[allow(
                clippy::expect_used,
                reason = "the file is compiled in and parsed by the tests"
            )]
            serde_json::from_str(POLICY_JSON).expect("shared/policy.json is valid (tested)")
        })
    }

    /// The default quality step for `fmt` (`None` for PNG).
    pub fn default_quality(&self, fmt: Format) -> Option<u8> {
        match fmt {
            Format::Jpeg => Some(self.default_quality.jpeg),
            Format::Webp => Some(self.default_quality.webp),
            Format::Avif => Some(self.default_quality.avif),
            Format::Png => None,
        }
    }

    /// Snap a dimension (1..=max_dimension_param, pixels) up to the next breakpoint, clamping
    /// to the largest breakpoint.
    pub fn snap_dimension(&self, px: u32) -> u32 {
        let largest = self.breakpoints.last().copied().unwrap_or(px);
        self.breakpoints
            .iter()
            .copied()
            .find(|&b| b >= px)
            .unwrap_or(largest)
    }

    /// Snap a quality (1..=100) up to the next quality step.
    pub fn snap_quality(&self, q: u8) -> u8 {
        let largest = self.quality_steps.last().copied().unwrap_or(q);
        self.quality_steps
            .iter()
            .copied()
            .find(|&s| s >= q)
            .unwrap_or(largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_is_sorted() {
        let p = Policy::get();
        assert!(p.breakpoints.windows(2).all(|w| w[0] < w[1]));
        assert!(p.quality_steps.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(p.variants.len(), 8);
        assert_eq!(p.limits.max_output_side, *p.breakpoints.last().unwrap());
    }

    #[test]
    fn snapping_table() {
        let p = Policy::get();
        for (input, want) in [
            (1, 16),
            (16, 16),
            (17, 32),
            (287, 320),
            (320, 320),
            (2049, 2560),
            (2560, 2560),
            (8192, 2560),
        ] {
            assert_eq!(p.snap_dimension(input), want, "w={input}");
        }
        for (input, want) in [(1, 30), (30, 30), (31, 40), (72, 75), (76, 80), (96, 100)] {
            assert_eq!(p.snap_quality(input), want, "q={input}");
        }
    }

    #[test]
    fn catalogue_entries_are_canonical() {
        let p = Policy::get();
        for v in &p.variants {
            if let Some(w) = v.w {
                assert_eq!(p.snap_dimension(w), w, "{}", v.name);
            }
            if let Some(h) = v.h {
                assert_eq!(p.snap_dimension(h), h, "{}", v.name);
            }
            if let Some(q) = v.q {
                assert_eq!(p.snap_quality(q), q, "{}", v.name);
            }
        }
    }
}
