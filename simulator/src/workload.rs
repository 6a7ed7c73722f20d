//! The seeded synthetic workload: requests for a catalogue of assets with Zipf popularity, as
//! browsers, integrations, junk-adding marketing links and cache-busting attackers send them.
//!
//! Each request is a real public URL (`/img/{tenant}/v{N}/{key}?{query}`) plus an `Accept`
//! header, so the scenarios replay it through the real normalizer. The mix (documented on
//! [`Generator::next_request`]) is data in this file, not flags, except the shares the issue
//! names: junk, attackers, the Accept mix, the Zipf exponent and the traffic per region.
//!
//! **Scale-down.** A sample of `S` requests standing for `N` real ones (`k = N / S`) draws
//! popularity ranks from the full catalogue's Zipf law and merges each run of `k` consecutive
//! ranks into one modelled asset, while the caches shrink by `k` too. Each modelled object then
//! gets as many requests as one real object, and by Che's approximation of LRU (hit probability
//! `1 - exp(-rate x T)` with the characteristic time `T` set by the capacity) every object keeps
//! its real hit probability: the popularity curve is preserved as a function of the share of
//! the catalogue, which merely shrinking the catalogue (Zipf over `M/k` assets) would distort.

use super::pricing::NREGIONS;
use super::rng::{self, mix64, Rng, Zipf};
use pixelfront_shared::{Canonical, Format, Policy};

/// `Accept` headers of clients that take AVIF (Chrome, Firefox, Safari 16+).
const ACCEPT_AVIF: [&str; 3] = [
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "image/avif,image/webp,*/*",
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
];
/// `Accept` headers of clients that take WebP but not AVIF (older Chrome, Edge, Android).
const ACCEPT_WEBP: [&str; 2] = ["image/webp,image/apng,image/*,*/*;q=0.8", "image/webp,*/*"];
/// `Accept` headers of clients that take neither (old Safari, bots, apps, curl).
const ACCEPT_JPEG: [&str; 3] = ["image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", "*/*", ""];

/// The client classes of the Accept mix, in `--accept-mix` order.
pub const ACCEPT_CLASSES: [&str; 3] = ["avif", "webp", "jpeg"];

/// A representative `Accept` header for a client class (0 = AVIF, 1 = WebP, 2 = JPEG only);
/// `pick` chooses among the browsers of that class.
pub fn accept_header(class: usize, pick: u64) -> &'static str {
    let list: &[&'static str] = match class {
        0 => &ACCEPT_AVIF,
        1 => &ACCEPT_WEBP,
        _ => &ACCEPT_JPEG,
    };
    list[(pick % list.len() as u64) as usize]
}

/// CSS widths of common viewports and how often each appears (phones first).
const DEVICE_WIDTHS: [(u32, f64); 16] = [
    (360, 0.12),
    (375, 0.08),
    (390, 0.12),
    (393, 0.06),
    (412, 0.08),
    (414, 0.06),
    (428, 0.04),
    (768, 0.05),
    (810, 0.02),
    (820, 0.03),
    (1024, 0.04),
    (1280, 0.06),
    (1366, 0.07),
    (1440, 0.05),
    (1536, 0.05),
    (1920, 0.07),
];
/// Device pixel ratios and their shares.
const DPRS: [(u32, f64); 3] = [(1, 0.35), (2, 0.45), (3, 0.20)];
/// Fixed crops sites ask for (cards, social previews, avatars).
const CROPS: [(u32, u32); 4] = [(300, 200), (600, 400), (1200, 630), (400, 400)];
/// Qualities integrations pass explicitly.
const QUALITIES: [u32; 8] = [60, 65, 70, 72, 75, 80, 85, 90];
/// Explicit `fmt` values as they appear in the wild (note the letter case and `jpg`).
const FMTS: [(&str, f64); 7] = [
    ("webp", 0.38),
    ("WEBP", 0.04),
    ("jpg", 0.20),
    ("jpeg", 0.13),
    ("avif", 0.15),
    ("AVIF", 0.02),
    ("png", 0.08),
];
/// `utm_source` values.
const UTM_SOURCES: [&str; 12] = [
    "newsletter",
    "facebook",
    "twitter",
    "instagram",
    "google",
    "bing",
    "linkedin",
    "pinterest",
    "reddit",
    "tiktok",
    "partner",
    "email",
];
/// `utm_medium` values.
const UTM_MEDIUMS: [&str; 5] = ["social", "email", "cpc", "referral", "display"];
/// Distinct campaign names in flight.
const UTM_CAMPAIGNS: u64 = 400;
/// Original sizes (pixels) of the catalogue, picked per asset.
const ORIGINALS: [(u32, u32); 6] = [
    (4000, 3000),
    (3000, 2000),
    (2400, 1600),
    (1600, 1200),
    (2000, 2000),
    (1080, 1350),
];
/// Tenants the catalogue is spread over.
const TENANTS: u64 = 50;

/// A rendering as a transformer would produce it: exact (as requested) or canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Render {
    /// Output format (auto already resolved).
    pub fmt: Format,
    /// Requested width, px.
    pub w: Option<u32>,
    /// Requested height, px.
    pub h: Option<u32>,
    /// Quality 1..=100 (`None` for PNG).
    pub q: Option<u8>,
}

impl From<&Canonical> for Render {
    fn from(c: &Canonical) -> Render {
        Render {
            fmt: c.fmt,
            w: c.w,
            h: c.h,
            q: c.q,
        }
    }
}

/// How big a response is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizes {
    /// Synthetic: modelled from the original's size and the rendering (see [`model_bytes`]);
    /// `exact` is what a transformer without normalization renders for this request.
    Modelled {
        /// The original's width and height, px.
        original: (u32, u32),
        /// The rendering exactly as requested.
        exact: Render,
    },
    /// From a log: the bytes CloudFront served (`sc-bytes`), whatever the scenario.
    Logged(u64),
}

/// One viewer request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `/img/{tenant}/v{N}/{key}`.
    pub path: String,
    /// The raw query string, without `?` (may be empty).
    pub query: String,
    /// The `Accept` header.
    pub accept: &'static str,
    /// Edge location index.
    pub edge: usize,
    /// Pricing region index of that edge.
    pub region: usize,
    /// Response size.
    pub sizes: Sizes,
}

/// What the generator draws from.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Seed: the same seed and settings give the same requests.
    pub seed: u64,
    /// Assets in the catalogue at full scale (popularity ranks are drawn over these).
    pub assets: u64,
    /// Real assets per modelled asset (the scale-down factor, >= 1): ranks `1..=block` are
    /// modelled asset 1, the next `block` ranks asset 2, and so on.
    pub block: f64,
    /// Zipf exponent of asset popularity.
    pub zipf: f64,
    /// Share of requests carrying `utm_*` (and click-id) junk, 0..=1.
    pub junk_share: f64,
    /// Share of requests from cache-busting attackers, 0..=1.
    pub attack_share: f64,
    /// Shares of AVIF, WebP and JPEG-only clients.
    pub accept_mix: [f64; 3],
    /// Share of traffic per pricing region.
    pub traffic_mix: [f64; NREGIONS],
    /// The pricing region of each edge location (index = edge).
    pub edge_regions: Vec<usize>,
}

/// Spread `edges` edge locations over the regions in proportion to `mix` (largest remainder,
/// at least one per region with traffic). Returns the region of each edge.
pub fn place_edges(edges: usize, mix: &[f64; NREGIONS]) -> Vec<usize> {
    let active: Vec<usize> = (0..NREGIONS).filter(|&r| mix[r] > 0.0).collect();
    let edges = edges.max(active.len());
    let total: f64 = active.iter().map(|&r| mix[r]).sum();
    let mut count = [0usize; NREGIONS];
    let mut rema: Vec<(f64, usize)> = Vec::new();
    let mut given = 0;
    for &r in &active {
        let exact = mix[r] / total * edges as f64;
        count[r] = (exact.floor() as usize).max(1);
        given += count[r];
        rema.push((exact - exact.floor(), r));
    }
    // Largest remainders first; ties by region order, so the placement is deterministic.
    rema.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, r) in rema.iter().cycle().take(edges.saturating_sub(given)) {
        count[r] += 1;
    }
    (0..NREGIONS)
        .flat_map(|r| std::iter::repeat_n(r, count[r]))
        .collect()
}

/// The seeded request generator.
pub struct Generator {
    cfg: WorkloadConfig,
    rng: Rng,
    zipf: Zipf,
    edges_by_region: Vec<Vec<usize>>,
    device_weights: Vec<f64>,
    dpr_weights: Vec<f64>,
    fmt_weights: Vec<f64>,
}

impl Generator {
    /// A generator; `stream` picks an independent sequence for the same seed (0 = the
    /// workload itself, others for calibration pilots).
    pub fn new(cfg: WorkloadConfig, stream: u64) -> Generator {
        let mut edges_by_region = vec![Vec::new(); NREGIONS];
        for (edge, &region) in cfg.edge_regions.iter().enumerate() {
            edges_by_region[region].push(edge);
        }
        Generator {
            rng: Rng::new(cfg.seed, stream),
            zipf: Zipf::new(cfg.assets, cfg.zipf),
            edges_by_region,
            device_weights: DEVICE_WIDTHS.iter().map(|d| d.1).collect(),
            dpr_weights: DPRS.iter().map(|d| d.1).collect(),
            fmt_weights: FMTS.iter().map(|f| f.1).collect(),
            cfg,
        }
    }

    /// The next request. The mix:
    ///
    /// - **Attackers** (`attack_share`): 70 % re-request real, popular URLs with a random
    ///   `cb=` parameter (a classic cache-busting flood); 30 % sweep random assets with random
    ///   `w` (1..8192), random `q` half the time, and a random `cb=`.
    /// - **Everyone else** requests an asset drawn by Zipf popularity:
    ///   - 50 % responsive `srcset` widths of the catalogue (320, 640, 1280), `fmt` usually
    ///     left to `auto`;
    ///   - 10 % the catalogue thumbnail `w=160&h=160&fmt=webp&q=75`;
    ///   - 25 % a device width (viewport x DPR, e.g. 390 x 3 = 1170);
    ///   - 8 % a layout-computed width, uniform 100..2000;
    ///   - 4 % a fixed crop (`w` and `h`);
    ///   - 3 % the original size (no `w`, `h`).
    ///
    ///   Outside `srcset` and the thumbnail, 12 % pass a `q`, and 25 % an explicit `fmt` in
    ///   the case they like (`webp`, `WEBP`, `jpg`, ...).
    /// - **Junk** (`junk_share`, independent of the above): `utm_source` (12 values),
    ///   `utm_medium` (5), `utm_campaign` (400), and in 35 % of them a unique click id
    ///   (`fbclid` or `gclid`).
    /// - Parameter order is shuffled on every request.
    pub fn next_request(&mut self) -> Request {
        let region = self.rng.weighted(&self.cfg.traffic_mix);
        let edges = &self.edges_by_region[region];
        let edge = edges[self.rng.below(edges.len() as u64) as usize];
        let class = self.rng.weighted(&self.cfg.accept_mix);
        let accept = accept_header(class, self.rng.next_u64());

        let mut params: Vec<(&'static str, String)> = Vec::with_capacity(8);
        let attacker = self.rng.chance(self.cfg.attack_share);
        let asset = if attacker && self.rng.chance(0.3) {
            // A sweeper: random asset, random size, maybe random quality.
            params.push(("w", self.rng.range(1, 8192).to_string()));
            if self.rng.chance(0.5) {
                params.push(("q", self.rng.range(1, 100).to_string()));
            }
            1 + self.rng.below(self.modelled_assets())
        } else {
            self.legit_params(&mut params);
            let rank = self.zipf.sample(&mut self.rng);
            (((rank - 1) as f64 / self.cfg.block) as u64 + 1).min(self.modelled_assets())
        };
        if attacker {
            params.push(("cb", format!("{:x}", self.rng.next_u64())));
        }
        if self.rng.chance(self.cfg.junk_share) {
            self.junk(&mut params);
        }
        self.rng.shuffle(&mut params);

        let exact = exact_render(&params, class);
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        Request {
            path: asset_path(asset),
            query,
            accept,
            edge,
            region,
            sizes: Sizes::Modelled {
                original: original_size(asset),
                exact,
            },
        }
    }

    /// Assets in the scaled-down model.
    pub fn modelled_assets(&self) -> u64 {
        modelled_assets(self.cfg.assets, self.cfg.block)
    }

    fn legit_params(&mut self, params: &mut Vec<(&'static str, String)>) {
        let kind = self.rng.weighted(&[0.50, 0.10, 0.25, 0.08, 0.04, 0.03]);
        match kind {
            0 => {
                let w = [320, 640, 1280][self.rng.weighted(&[0.3, 0.4, 0.3])];
                params.push(("w", w.to_string()));
                match self.rng.weighted(&[0.7, 0.1, 0.2]) {
                    0 => {}
                    1 => params.push(("fmt", "auto".into())),
                    _ => params.push(("fmt", self.explicit_fmt())),
                }
                return;
            }
            1 => {
                params.push(("w", "160".into()));
                params.push(("h", "160".into()));
                params.push(("fmt", "webp".into()));
                params.push(("q", "75".into()));
                return;
            }
            2 => {
                let css = DEVICE_WIDTHS[self.rng.weighted(&self.device_weights)].0;
                let dpr = DPRS[self.rng.weighted(&self.dpr_weights)].0;
                params.push(("w", (css * dpr).min(8192).to_string()));
            }
            3 => params.push(("w", self.rng.range(100, 2000).to_string())),
            4 => {
                let (w, h) = CROPS[self.rng.below(CROPS.len() as u64) as usize];
                params.push(("w", w.to_string()));
                params.push(("h", h.to_string()));
            }
            _ => {}
        }
        if self.rng.chance(0.12) {
            let q = QUALITIES[self.rng.below(QUALITIES.len() as u64) as usize];
            params.push(("q", q.to_string()));
        }
        match self.rng.weighted(&[0.70, 0.05, 0.25]) {
            0 => {}
            1 => params.push(("fmt", "auto".into())),
            _ => params.push(("fmt", self.explicit_fmt())),
        }
    }

    fn explicit_fmt(&mut self) -> String {
        FMTS[self.rng.weighted(&self.fmt_weights)].0.to_string()
    }

    fn junk(&mut self, params: &mut Vec<(&'static str, String)>) {
        if self.rng.chance(0.9) {
            let s = UTM_SOURCES[self.rng.below(UTM_SOURCES.len() as u64) as usize];
            params.push(("utm_source", s.into()));
        }
        if self.rng.chance(0.7) {
            let m = UTM_MEDIUMS[self.rng.below(UTM_MEDIUMS.len() as u64) as usize];
            params.push(("utm_medium", m.into()));
        }
        if self.rng.chance(0.6) {
            let c = self.rng.below(UTM_CAMPAIGNS);
            params.push(("utm_campaign", format!("spring-{c}")));
        }
        if self.rng.chance(0.35) {
            let name = if self.rng.chance(0.6) {
                "fbclid"
            } else {
                "gclid"
            };
            params.push((name, format!("IwAR{:016x}", self.rng.next_u64())));
        }
    }
}

/// Assets in the scaled-down model of a catalogue of `assets` with `block` real assets per
/// modelled one.
pub fn modelled_assets(assets: u64, block: f64) -> u64 {
    ((assets as f64 / block.max(1.0)).ceil() as u64).max(1)
}

/// The public path of catalogue asset `rank` (1-based): tenant and version are fixed per asset.
pub fn asset_path(rank: u64) -> String {
    let h = mix64(rank ^ 0xA55E7);
    let tenant = h % TENANTS;
    let version = 1 + (h >> 16) % 3;
    format!("/img/t{tenant}/v{version}/photos/{rank}.jpg")
}

/// The original's size of catalogue asset `rank`.
pub fn original_size(rank: u64) -> (u32, u32) {
    ORIGINALS[(mix64(rank ^ 0x0D1E) % ORIGINALS.len() as u64) as usize]
}

/// The rendering a transformer without normalization produces for these parameters: values
/// as sent (`w`, `h` exact; `q` as sent or the format default), `fmt` resolved from the client
/// class when absent or `auto`.
fn exact_render(params: &[(&'static str, String)], class: usize) -> Render {
    let get = |name: &str| params.iter().find(|p| p.0 == name).map(|p| p.1.as_str());
    let num = |name: &str| get(name).and_then(|v| v.parse::<u32>().ok());
    let fmt = match get("fmt").map(str::to_ascii_lowercase).as_deref() {
        Some("webp") => Format::Webp,
        Some("avif") => Format::Avif,
        Some("png") => Format::Png,
        Some("jpg" | "jpeg") => Format::Jpeg,
        _ => [Format::Avif, Format::Webp, Format::Jpeg][class.min(2)],
    };
    let q = if fmt.has_quality() {
        num("q")
            .and_then(|q| u8::try_from(q.min(100)).ok())
            .or_else(|| Policy::get().default_quality(fmt))
    } else {
        None
    };
    Render {
        fmt,
        w: num("w"),
        h: num("h"),
        q,
    }
}

/// Reference output at 640x427 px (273,280 px) and the format's default quality, in bytes:
/// the means of the `md-*` variants over the corpus photos in BENCHMARKS.md (PNG: about 4x
/// the JPEG, a photo being a poor fit for lossless).
fn reference_bytes(fmt: Format) -> f64 {
    match fmt {
        Format::Jpeg => 45_200.0,
        Format::Webp => 29_800.0,
        Format::Avif => 26_200.0,
        Format::Png => 180_000.0,
    }
}

/// Modelled size in bytes of `r` rendered from an original of `original` px, before the
/// workload's scale to its average object size.
///
/// The output size follows the rendering rules (never upscale; `w` and `h` together cover and
/// crop), and bytes grow as pixels^0.69 (the growth from the 320- to the 1280-px variants in
/// BENCHMARKS.md) and double every 20 quality points above the format default.
pub fn model_bytes(original: (u32, u32), r: &Render) -> f64 {
    let (ow, oh) = (f64::from(original.0), f64::from(original.1));
    let (w, h) = match (r.w, r.h) {
        (Some(w), None) => {
            let w = f64::from(w).min(ow);
            (w, (oh * w / ow).max(1.0))
        }
        (None, Some(h)) => {
            let h = f64::from(h).min(oh);
            ((ow * h / oh).max(1.0), h)
        }
        (Some(w), Some(h)) => {
            let (w, h) = (f64::from(w), f64::from(h));
            let s = (ow / w).min(oh / h).min(1.0);
            (w * s, h * s)
        }
        (None, None) => (ow, oh),
    };
    let pixels = (w * h).max(1.0);
    let growth = rng::exp(0.69 * rng::ln(pixels / 273_280.0));
    let default_q = Policy::get().default_quality(r.fmt);
    let quality = match (r.q, default_q) {
        (Some(q), Some(d)) => {
            rng::exp((f64::from(q) - f64::from(d)) / 20.0 * std::f64::consts::LN_2)
        }
        _ => 1.0,
    };
    reference_bytes(r.fmt) * growth * quality
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> WorkloadConfig {
        let mut traffic_mix = [0.0; NREGIONS];
        traffic_mix[0] = 0.6;
        traffic_mix[1] = 0.4;
        WorkloadConfig {
            seed,
            assets: 1000,
            block: 1.0,
            zipf: 0.9,
            junk_share: 0.3,
            attack_share: 0.05,
            accept_mix: [0.7, 0.2, 0.1],
            traffic_mix,
            edge_regions: place_edges(5, &traffic_mix),
        }
    }

    #[test]
    fn seeded_and_deterministic() {
        let draw = |seed| {
            let mut g = Generator::new(config(seed), 0);
            (0..500).map(|_| g.next_request()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn first_requests_are_pinned() {
        // Pinned so that any change to the workload (or a platform difference) is visible.
        let mut mix = [0.0; NREGIONS];
        mix[0] = 0.6;
        mix[1] = 0.4;
        let cfg = WorkloadConfig {
            assets: 2_000_000,
            block: 1000.0,
            zipf: 1.1,
            junk_share: 0.25,
            attack_share: 0.01,
            accept_mix: [0.75, 0.17, 0.08],
            traffic_mix: mix,
            edge_regions: place_edges(4, &mix),
            seed: 1,
        };
        let mut g = Generator::new(cfg, 0);
        let want = [
            ("/img/t35/v2/photos/1.jpg", "w=320", 1, 3, 12_412.409_358),
            ("/img/t35/v2/photos/1.jpg", "w=1280", 0, 3, 73_923.735_654),
            (
                "/img/t35/v2/photos/1.jpg",
                "w=2880&fmt=auto",
                2,
                0,
                173_522.927_805,
            ),
            (
                "/img/t48/v2/photos/176.jpg",
                "fmt=auto&w=640",
                0,
                2,
                28_402.888_659,
            ),
        ];
        for (path, query, class, edge, bytes) in want {
            let r = g.next_request();
            assert_eq!(
                (r.path.as_str(), r.query.as_str(), r.edge),
                (path, query, edge)
            );
            let classes = [&ACCEPT_AVIF[..], &ACCEPT_WEBP[..], &ACCEPT_JPEG[..]];
            assert!(classes[class].contains(&r.accept), "{}", r.accept);
            let Sizes::Modelled { original, exact } = r.sizes else {
                panic!("synthetic sizes are modelled")
            };
            assert!((model_bytes(original, &exact) - bytes).abs() < 1e-3);
        }
    }

    #[test]
    fn requests_are_valid_public_urls() {
        let mut g = Generator::new(config(1), 0);
        let (mut junk, mut busted) = (0, 0);
        for _ in 0..20_000 {
            let r = g.next_request();
            let n = pixelfront_shared::normalize(&r.path, &r.query, Some(r.accept));
            assert!(n.is_ok(), "{}?{} rejected: {:?}", r.path, r.query, n);
            junk += usize::from(r.query.contains("utm_"));
            busted += usize::from(r.query.contains("cb="));
            assert!(r.edge < 5 && r.region < 2);
        }
        // 30 % junk (90 % of it with utm_source), 5 % attackers.
        assert!((4_500..7_000).contains(&junk), "{junk}");
        assert!((700..1_300).contains(&busted), "{busted}");
    }

    #[test]
    fn edges_are_placed_by_traffic() {
        let mut mix = [0.0; NREGIONS];
        mix[0] = 0.5;
        mix[1] = 0.3;
        mix[7] = 0.2;
        let edges = place_edges(10, &mix);
        assert_eq!(edges, vec![0, 0, 0, 0, 0, 1, 1, 1, 7, 7]);
        // Every region with traffic gets an edge, even when there are fewer edges asked for.
        assert_eq!(place_edges(1, &mix).len(), 3);
    }

    #[test]
    fn size_model_follows_rendering_rules() {
        let r = |fmt, w, h, q| Render { fmt, w, h, q };
        let orig = (3000, 2000);
        let md = model_bytes((640, 427), &r(Format::Jpeg, Some(640), None, Some(80)));
        assert!((md - 45_200.0).abs() < 300.0, "{md}");
        let small = model_bytes(orig, &r(Format::Webp, Some(320), None, Some(80)));
        let large = model_bytes(orig, &r(Format::Webp, Some(1280), None, Some(80)));
        assert!(large / small > 6.0 && large / small < 7.5);
        // Never upscale: 8000 px wide is the original's 3000.
        let huge = model_bytes(orig, &r(Format::Avif, Some(8000), None, Some(60)));
        let full = model_bytes(orig, &r(Format::Avif, None, None, Some(60)));
        assert_eq!(huge, full);
        // Higher quality, more bytes; AVIF below WebP below JPEG.
        assert!(
            model_bytes(orig, &r(Format::Jpeg, Some(640), None, Some(90)))
                > model_bytes(orig, &r(Format::Jpeg, Some(640), None, Some(80)))
        );
        let at = |f, q| model_bytes(orig, &r(f, Some(640), None, q));
        assert!(at(Format::Avif, Some(60)) < at(Format::Webp, Some(80)));
        assert!(at(Format::Webp, Some(80)) < at(Format::Jpeg, Some(80)));
    }

    #[test]
    fn exact_render_resolves_auto_by_client() {
        let p = |v: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
            v.iter().map(|(k, v)| (*k, v.to_string())).collect()
        };
        let r = exact_render(&p(&[("w", "287"), ("fmt", "WEBP")]), 2);
        assert_eq!((r.fmt, r.w, r.q), (Format::Webp, Some(287), Some(80)));
        let r = exact_render(&p(&[("w", "500")]), 0);
        assert_eq!((r.fmt, r.q), (Format::Avif, Some(60)));
        let r = exact_render(&p(&[("fmt", "png"), ("q", "90")]), 1);
        assert_eq!((r.fmt, r.q), (Format::Png, None));
    }
}
