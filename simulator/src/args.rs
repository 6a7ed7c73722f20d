//! The options of `pixelfront simulate` ([`SimulateArgs`], parsed by clap), the preset that
//! fills in the ones left unset, and the parsers and range checks of their values.

use crate::pricing::{region_index, NREGIONS, REGIONS};
use std::path::PathBuf;

/// The seed preset's traffic per CloudFront pricing region ("global traffic"): North America
/// 42 %, Europe 28 %, Asia-Pacific 11 %, South America 5 %, Japan 5 %, India 4 %, Australia
/// 3 %, Middle East and Africa 2 %.
pub const GLOBAL_MIX: [f64; NREGIONS] = [0.42, 0.28, 0.02, 0.05, 0.05, 0.03, 0.11, 0.04];

/// The most edge locations a synthetic run models (CloudFront has some 600 points of presence).
pub(crate) const MAX_EDGES: usize = 10_000;

/// Starting points for the options.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The seed's numbers: 1 billion requests/day, 40 KB average object, global traffic.
    Seed,
}

/// The values a preset gives the options left unset.
pub(crate) struct PresetValues {
    pub(crate) daily_requests: f64,
    pub(crate) sample: u64,
    pub(crate) assets: u64,
    pub(crate) zipf: f64,
    pub(crate) junk_share: f64,
    pub(crate) attack_share: f64,
    pub(crate) accept_mix: [f64; 3],
    pub(crate) traffic_mix: [f64; NREGIONS],
    pub(crate) edges: usize,
    pub(crate) edge_cache_gb: f64,
    pub(crate) shield_cache_gb: f64,
    pub(crate) avg_object_kb: f64,
}

impl Preset {
    pub(crate) fn values(self) -> PresetValues {
        match self {
            Preset::Seed => PresetValues {
                daily_requests: 1e9,
                sample: 1_000_000,
                assets: 2_000_000,
                zipf: 1.1,
                junk_share: 0.25,
                attack_share: 0.01,
                accept_mix: [0.75, 0.17, 0.08],
                traffic_mix: GLOBAL_MIX,
                edges: 20,
                edge_cache_gb: 1000.0,
                shield_cache_gb: 5000.0,
                avg_object_kb: 40.0,
            },
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Preset::Seed => "seed",
        }
    }
}

/// The options of `pixelfront simulate`; each one left unset takes its [`Preset`] value.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Settings to start from; every option below overrides its part.
    #[arg(long, value_enum, default_value_t = Preset::Seed)]
    pub(crate) preset: Preset,
    /// Replay a CloudFront standard access log (tab-separated, as delivered to S3, gunzipped)
    /// instead of the synthetic workload. Repeat for several files; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) log: Vec<PathBuf>,
    /// Requests per day to scale the results to [preset: 1e9; with --log: the log's requests
    /// divided by the number of dates it covers].
    #[arg(long, value_name = "N")]
    pub(crate) daily_requests: Option<f64>,
    /// Synthetic requests to simulate (after the warm-up); each stands for
    /// daily-requests / sample real ones [preset: 1,000,000].
    #[arg(long, value_name = "N")]
    pub(crate) sample: Option<u64>,
    /// Requests replayed before counting starts, to fill the caches and give the derived
    /// bucket a history [synthetic: the sample, i.e. one day; log: 0].
    #[arg(long, value_name = "N")]
    pub(crate) warmup: Option<u64>,
    /// Seed of the synthetic workload (and of the Accept assignment of a log).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Assets in the catalogue, at full scale [preset: 2,000,000].
    #[arg(long, value_name = "N")]
    pub(crate) assets: Option<u64>,
    /// Zipf exponent of asset popularity (larger = more concentrated) [preset: 1.1].
    #[arg(long, value_name = "ALPHA")]
    pub(crate) zipf: Option<f64>,
    /// Share of requests carrying utm_* / click-id junk, 0..1 [preset: 0.25].
    #[arg(long, value_name = "SHARE")]
    pub(crate) junk_share: Option<f64>,
    /// Share of requests from cache-busting attackers, 0..1 [preset: 0.01].
    #[arg(long, value_name = "SHARE")]
    pub(crate) attack_share: Option<f64>,
    /// Clients by the best format their Accept header allows, e.g.
    /// 'avif=0.75,webp=0.17,jpeg=0.08' (the preset). With --log, assigned per client.
    #[arg(long, value_name = "MIX")]
    pub(crate) accept_mix: Option<String>,
    /// Traffic per CloudFront pricing region (na, eu, za_me, sa, jp, au, ap, in), e.g.
    /// 'na=0.6,eu=0.4', or 'global' (the preset). Synthetic workloads only.
    #[arg(long, value_name = "MIX")]
    pub(crate) traffic_mix: Option<String>,
    /// Edge locations (each one LRU cache), spread over the regions by traffic [preset: 20].
    #[arg(long, value_name = "N")]
    pub(crate) edges: Option<usize>,
    /// Cache size of each edge location, GB (10^9 bytes) [preset: 1000].
    #[arg(long, value_name = "GB")]
    pub(crate) edge_cache_gb: Option<f64>,
    /// Cache size of Origin Shield, GB [preset: 5000].
    #[arg(long, value_name = "GB")]
    pub(crate) shield_cache_gb: Option<f64>,
    /// Average object size of the synthetic workload, KB (1000 bytes) [preset: 40].
    #[arg(long, value_name = "KB")]
    pub(crate) avg_object_kb: Option<f64>,
    /// New originals per day (each runs the precompute workflow) [1 % of the catalogue].
    #[arg(long, value_name = "N")]
    pub(crate) uploads_per_day: Option<f64>,
    /// Duration of one on-demand render, ms. Default: BENCHMARKS.md measures 0.10-0.24 s for
    /// one non-standard render of a 10-24 MP photo.
    #[arg(long, value_name = "MS", default_value_t = 200.0)]
    pub(crate) render_ms: f64,
    /// Memory of the on-demand transformer, MB (1,769 MB = one vCPU).
    #[arg(long, value_name = "MB", default_value_t = 1769.0)]
    pub(crate) lambda_memory_mb: f64,
    /// Duration of one precompute invocation (decode, 8 variants, 8 PUTs), ms. Default:
    /// BENCHMARKS.md, about 0.45 s per upload at 1,769 MB (libaom build).
    #[arg(long, value_name = "MS", default_value_t = 450.0)]
    pub(crate) precompute_ms: f64,
    /// Memory of the precompute function, MB (the template's PrecomputeMemorySize).
    #[arg(long, value_name = "MB", default_value_t = 1769.0)]
    pub(crate) precompute_memory_mb: f64,
    /// CloudFront invalidation paths per month (takedowns: one path per asset).
    #[arg(long, value_name = "N", default_value_t = 3000.0)]
    pub(crate) invalidation_paths: f64,
    /// Pricing region of log edge locations whose airport code is not in the built-in table.
    #[arg(long, value_name = "REGION", default_value = "na")]
    pub(crate) log_default_region: String,
    /// Rename a query parameter of the log before replay, e.g. 'width=w' (repeatable), to see
    /// what pixelfront would do with the URLs of an existing image service.
    #[arg(long, value_name = "FROM=TO")]
    pub(crate) param_alias: Vec<String>,
    /// Price file to use instead of the built-in simulator/pricing.json.
    #[arg(long, value_name = "FILE")]
    pub(crate) prices: Option<PathBuf>,
    /// Print JSON instead of the tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also draw hit ratios and monthly cost per scenario into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

/// Parse `key=share,key=share` over `keys` into shares summing to 1.
pub(crate) fn parse_mix<const N: usize>(
    text: &str,
    keys: &[&str; N],
    what: &str,
) -> Result<[f64; N], String> {
    let mut mix = [0.0; N];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("--{what}: expected key=share, got {part:?}"))?;
        let i = keys
            .iter()
            .position(|key| *key == k.trim())
            .ok_or_else(|| format!("--{what}: unknown key {k:?} (known: {})", keys.join(", ")))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("--{what}: {v:?} is not a number"))?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("--{what}: shares must be >= 0"));
        }
        mix[i] = v;
    }
    let total: f64 = mix.iter().sum();
    if total <= 0.0 {
        return Err(format!("--{what}: at least one share must be positive"));
    }
    Ok(mix.map(|v| v / total))
}

pub(crate) fn parse_traffic(text: &str) -> Result<[f64; NREGIONS], String> {
    let text = text.trim();
    if text == "global" {
        return Ok(GLOBAL_MIX);
    }
    if let Some(i) = region_index(text) {
        let mut mix = [0.0; NREGIONS];
        mix[i] = 1.0;
        return Ok(mix);
    }
    parse_mix(text, &REGIONS, "traffic-mix")
}

pub(crate) fn share(v: f64, what: &str) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("--{what} must be between 0 and 1"))
    }
}

pub(crate) fn positive(v: f64, what: &str) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("--{what} must be a positive number"))
    }
}

pub(crate) fn non_negative(v: f64, what: &str) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("--{what} must be a number >= 0"))
    }
}
