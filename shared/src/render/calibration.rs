//! Quality calibration: the public `q` step → each encoder's native setting.
//!
//! `q` must mean what it means in libvips/sharp: at every quality step our output's SSIM
//! (against the same reference pixels) is within 0.005 of sharp's. The table is data,
//! `shared/calibration.json`, produced by `bench/calibrate.mjs`; a format or step missing from
//! it maps to itself. AVIF has one table per encoder: `avif_aom` (libaom, the default build) and
//! `avif` (rav1e, `--features rav1e`).

use crate::policy::{Format, Policy};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The calibration file, verbatim.
pub const CALIBRATION_JSON: &str = include_str!("../../calibration.json");

#[derive(Debug, Deserialize, Default)]
struct Table {
    #[serde(default)]
    jpeg: BTreeMap<String, f32>,
    #[serde(default)]
    webp: BTreeMap<String, f32>,
    #[serde(default)]
    avif: BTreeMap<String, f32>,
    /// AVIF through libaom (the default `aom` feature): a different encoder needs its own table.
    #[serde(default)]
    avif_aom: BTreeMap<String, f32>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| serde_json::from_str(CALIBRATION_JSON).unwrap_or_default())
}

/// The encoder setting for public quality `q` (1..=100; `None` = the format default).
/// PNG has no setting and returns 0.
pub fn encoder_setting(fmt: Format, q: Option<u8>) -> f32 {
    let t = table();
    let map = match fmt {
        Format::Jpeg => &t.jpeg,
        Format::Webp => &t.webp,
        Format::Avif if !cfg!(feature = "rav1e") => &t.avif_aom,
        Format::Avif => &t.avif,
        Format::Png => return 0.0,
    };
    let q = q
        .or_else(|| Policy::get().default_quality(fmt))
        .unwrap_or(80);
    let step = Policy::get().snap_quality(q);
    map.get(&step.to_string())
        .copied()
        .unwrap_or(f32::from(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_file_parses_and_is_monotonic() {
        let t: Table = serde_json::from_str(CALIBRATION_JSON).unwrap();
        for map in [&t.jpeg, &t.webp, &t.avif, &t.avif_aom] {
            let mut steps: Vec<(u8, f32)> =
                map.iter().map(|(k, v)| (k.parse().unwrap(), *v)).collect();
            steps.sort_by_key(|s| s.0);
            assert!(steps.windows(2).all(|w| w[0].1 <= w[1].1), "{steps:?}");
            assert!(steps.iter().all(|s| (1.0..=100.0).contains(&s.1)));
        }
    }

    #[test]
    fn png_has_no_setting() {
        assert_eq!(encoder_setting(Format::Png, Some(80)), 0.0);
    }
}
