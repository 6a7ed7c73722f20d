//! `pixelfront simulate`: the cost and hit-ratio model of SPEC §10.
//!
//! A workload (the seeded synthetic generator of [`workload`], or a CloudFront standard log
//! read by [`log`]) is replayed through four cache-key designs ([`engine`]), each with a
//! byte-bounded LRU per edge location and an Origin Shield tier ([`cache`]). The counts are
//! scaled to the daily volume and priced with the data file `cli/pricing.json` ([`pricing`]);
//! [`report`] prints the table or JSON and [`plot`] draws the SVG.
//!
//! **Scaling.** Simulating a billion requests a day one by one is not needed to get its hit
//! ratios: the synthetic model simulates `--sample` requests and scales the catalogue and the
//! cache sizes down by the same factor k = daily volume / sample (each modelled asset merges k
//! neighbouring popularity ranks, see [`workload`]), so every object gets as many requests and
//! keeps its hit probability. Counts are then multiplied back up by k. A log is replayed as it
//! is (no scaling of the caches); its counts are scaled to `--daily-requests` when given.

pub mod cache;
pub mod engine;
pub mod log;
pub mod plot;
pub mod pricing;
pub mod report;
pub mod rng;
pub mod workload;

use crate::Failure;
use engine::Engine;
use pricing::{region_index, Prices, NREGIONS, REGIONS};
use report::{thousands, CostInputs};
use serde_json::json;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use workload::{Generator, Sizes, WorkloadConfig, ACCEPT_CLASSES};

/// The seed preset's traffic per CloudFront pricing region ("global traffic"): North America
/// 42 %, Europe 28 %, Asia-Pacific 11 %, South America 5 %, Japan 5 %, India 4 %, Australia
/// 3 %, Middle East and Africa 2 %.
pub const GLOBAL_MIX: [f64; NREGIONS] = [0.42, 0.28, 0.02, 0.05, 0.05, 0.03, 0.11, 0.04];

/// The most edge locations a synthetic run models (CloudFront has some 600 points of presence).
const MAX_EDGES: usize = 10_000;

/// Starting points for the options.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The seed's numbers: 1 billion requests/day, 40 KB average object, global traffic.
    Seed,
}

/// The values a preset gives the options left unset.
struct PresetValues {
    daily_requests: f64,
    sample: u64,
    assets: u64,
    zipf: f64,
    junk_share: f64,
    attack_share: f64,
    accept_mix: [f64; 3],
    traffic_mix: [f64; NREGIONS],
    edges: usize,
    edge_cache_gb: f64,
    shield_cache_gb: f64,
    avg_object_kb: f64,
}

impl Preset {
    fn values(self) -> PresetValues {
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

    fn name(self) -> &'static str {
        match self {
            Preset::Seed => "seed",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Settings to start from; every option below overrides its part.
    #[arg(long, value_enum, default_value_t = Preset::Seed)]
    preset: Preset,
    /// Replay a CloudFront standard access log (tab-separated, as delivered to S3, gunzipped)
    /// instead of the synthetic workload. Repeat for several files; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    log: Vec<PathBuf>,
    /// Requests per day to scale the results to [preset: 1e9; with --log: the log's requests
    /// divided by the number of dates it covers].
    #[arg(long, value_name = "N")]
    daily_requests: Option<f64>,
    /// Synthetic requests to simulate (after the warm-up); each stands for
    /// daily-requests / sample real ones [preset: 1,000,000].
    #[arg(long, value_name = "N")]
    sample: Option<u64>,
    /// Requests replayed before counting starts, to fill the caches and give the derived
    /// bucket a history [synthetic: the sample, i.e. one day; log: 0].
    #[arg(long, value_name = "N")]
    warmup: Option<u64>,
    /// Seed of the synthetic workload (and of the Accept assignment of a log).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Assets in the catalogue, at full scale [preset: 2,000,000].
    #[arg(long, value_name = "N")]
    assets: Option<u64>,
    /// Zipf exponent of asset popularity (larger = more concentrated) [preset: 1.1].
    #[arg(long, value_name = "ALPHA")]
    zipf: Option<f64>,
    /// Share of requests carrying utm_* / click-id junk, 0..1 [preset: 0.25].
    #[arg(long, value_name = "SHARE")]
    junk_share: Option<f64>,
    /// Share of requests from cache-busting attackers, 0..1 [preset: 0.01].
    #[arg(long, value_name = "SHARE")]
    attack_share: Option<f64>,
    /// Clients by the best format their Accept header allows, e.g.
    /// 'avif=0.75,webp=0.17,jpeg=0.08' (the preset). With --log, assigned per client.
    #[arg(long, value_name = "MIX")]
    accept_mix: Option<String>,
    /// Traffic per CloudFront pricing region (na, eu, za_me, sa, jp, au, ap, in), e.g.
    /// 'na=0.6,eu=0.4', or 'global' (the preset). Synthetic workloads only.
    #[arg(long, value_name = "MIX")]
    traffic_mix: Option<String>,
    /// Edge locations (each one LRU cache), spread over the regions by traffic [preset: 20].
    #[arg(long, value_name = "N")]
    edges: Option<usize>,
    /// Cache size of each edge location, GB (10^9 bytes) [preset: 1000].
    #[arg(long, value_name = "GB")]
    edge_cache_gb: Option<f64>,
    /// Cache size of Origin Shield, GB [preset: 5000].
    #[arg(long, value_name = "GB")]
    shield_cache_gb: Option<f64>,
    /// Average object size of the synthetic workload, KB (1000 bytes) [preset: 40].
    #[arg(long, value_name = "KB")]
    avg_object_kb: Option<f64>,
    /// New originals per day (each runs the precompute workflow) [1 % of the catalogue].
    #[arg(long, value_name = "N")]
    uploads_per_day: Option<f64>,
    /// Duration of one on-demand render, ms. Default: BENCHMARKS.md measures 0.10-0.24 s for
    /// one non-standard render of a 10-24 MP photo.
    #[arg(long, value_name = "MS", default_value_t = 200.0)]
    render_ms: f64,
    /// Memory of the on-demand transformer, MB (1,769 MB = one vCPU).
    #[arg(long, value_name = "MB", default_value_t = 1769.0)]
    lambda_memory_mb: f64,
    /// Duration of one precompute invocation (decode, 8 variants, 8 PUTs), ms. Default:
    /// BENCHMARKS.md, about 0.45 s per upload at 1,769 MB (libaom build).
    #[arg(long, value_name = "MS", default_value_t = 450.0)]
    precompute_ms: f64,
    /// Memory of the precompute function, MB (the template's PrecomputeMemorySize).
    #[arg(long, value_name = "MB", default_value_t = 1769.0)]
    precompute_memory_mb: f64,
    /// CloudFront invalidation paths per month (takedowns: one path per asset).
    #[arg(long, value_name = "N", default_value_t = 3000.0)]
    invalidation_paths: f64,
    /// Pricing region of log edge locations whose airport code is not in the built-in table.
    #[arg(long, value_name = "REGION", default_value = "na")]
    log_default_region: String,
    /// Rename a query parameter of the log before replay, e.g. 'width=w' (repeatable), to see
    /// what pixelfront would do with the URLs of an existing image service.
    #[arg(long, value_name = "FROM=TO")]
    param_alias: Vec<String>,
    /// Price file to use instead of the built-in cli/pricing.json.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Print JSON instead of the tables.
    #[arg(long)]
    json: bool,
    /// Also draw hit ratios and monthly cost per scenario into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Parse `key=share,key=share` over `keys` into shares summing to 1.
fn parse_mix<const N: usize>(text: &str, keys: &[&str; N], what: &str) -> Result<[f64; N], String> {
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

fn parse_traffic(text: &str) -> Result<[f64; NREGIONS], String> {
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

fn share(v: f64, what: &str) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("--{what} must be between 0 and 1"))
    }
}

fn positive(v: f64, what: &str) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("--{what} must be a positive number"))
    }
}

fn non_negative(v: f64, what: &str) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("--{what} must be a number >= 0"))
    }
}

/// Progress on stderr, only when it is a terminal.
struct Progress {
    on: bool,
    total: Option<u64>,
    step: u64,
    what: &'static str,
}

impl Progress {
    fn new(what: &'static str, total: Option<u64>) -> Progress {
        let step = total.map_or(100_000, |t| (t / 100).max(10_000));
        Progress {
            on: std::io::stderr().is_terminal(),
            total,
            step,
            what,
        }
    }

    fn tick(&self, done: u64) {
        if !self.on || !done.is_multiple_of(self.step) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = match self.total {
            Some(t) => write!(
                err,
                "\r{}: {:>3} % ({} of {} requests)",
                self.what,
                done * 100 / t.max(1),
                thousands(done as f64),
                thousands(t as f64)
            ),
            None => write!(err, "\r{}: {} requests", self.what, thousands(done as f64)),
        };
        let _ = err.flush();
    }

    fn done(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// The settings every run has, whichever the workload.
struct Common {
    prices: Prices,
    accept_mix: [f64; 3],
    edge_cache_gb: f64,
    shield_cache_gb: f64,
}

/// What the replay produced.
struct Replay {
    engine: Engine,
    daily_requests: f64,
    /// Full-scale catalogue size (for the default upload rate).
    catalogue: f64,
    preamble: Vec<String>,
    settings: serde_json::Value,
}

pub fn run(args: SimulateArgs) -> Result<(), Failure> {
    let preset = args.preset.values();
    let prices = match &args.prices {
        None => Prices::builtin().map_err(Failure::io)?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
            Prices::parse(&text)
                .map_err(|e| Failure::rejected(format!("{}: {e}", path.display())))?
        }
    };
    let accept_mix = match &args.accept_mix {
        Some(m) => parse_mix(m, &ACCEPT_CLASSES, "accept-mix").map_err(Failure::rejected)?,
        None => preset.accept_mix,
    };
    let edge_cache_gb = positive(
        args.edge_cache_gb.unwrap_or(preset.edge_cache_gb),
        "edge-cache-gb",
    )
    .map_err(Failure::rejected)?;
    let shield_cache_gb = positive(
        args.shield_cache_gb.unwrap_or(preset.shield_cache_gb),
        "shield-cache-gb",
    )
    .map_err(Failure::rejected)?;
    let checks = [
        positive(args.render_ms, "render-ms"),
        positive(args.lambda_memory_mb, "lambda-memory-mb"),
        positive(args.precompute_ms, "precompute-ms"),
        positive(args.precompute_memory_mb, "precompute-memory-mb"),
        non_negative(args.invalidation_paths, "invalidation-paths"),
    ];
    for c in checks {
        c.map_err(Failure::rejected)?;
    }
    if let Some(d) = args.daily_requests {
        positive(d, "daily-requests").map_err(Failure::rejected)?;
    }
    let common = Common {
        prices,
        accept_mix,
        edge_cache_gb,
        shield_cache_gb,
    };

    let replay = if args.log.is_empty() {
        synthetic(&args, &preset, &common)?
    } else {
        replay_log(&args, &common)?
    };

    let uploads = match args.uploads_per_day {
        Some(u) => non_negative(u, "uploads-per-day").map_err(Failure::rejected)?,
        None => (replay.catalogue / 100.0).round(),
    };
    let inputs = CostInputs {
        daily_requests: replay.daily_requests,
        render_ms: args.render_ms,
        lambda_memory_mb: args.lambda_memory_mb,
        precompute_ms: args.precompute_ms,
        precompute_memory_mb: args.precompute_memory_mb,
        uploads_per_day: uploads,
        invalidation_paths_per_month: args.invalidation_paths,
    };
    let prices = &common.prices;
    let rows = report::results(&replay.engine.counts(), &inputs, prices);
    let shield = report::ShieldEconomics::new(&rows, &inputs, prices);

    let mut preamble = replay.preamble;
    preamble.push(format!(
        "  Lambda ({}): on-demand render {} ms at {} MB; precompute {} ms per upload at {} MB; {} uploads/day; {} invalidation paths/month",
        prices.lambda.architecture,
        args.render_ms,
        thousands(args.lambda_memory_mb),
        args.precompute_ms,
        thousands(args.precompute_memory_mb),
        thousands(uploads),
        thousands(args.invalidation_paths)
    ));
    let lead = prices.source.split(" (").next().unwrap_or(&prices.source);
    let file = args
        .prices
        .as_ref()
        .map_or("built-in cli/pricing.json".to_string(), |p| {
            p.display().to_string()
        });
    preamble.push(format!("  prices: {lead} ({file}; see its \"source\")"));

    if let Some(path) = &args.plot {
        let title = format!(
            "pixelfront simulate: {} requests/day",
            thousands(replay.daily_requests)
        );
        std::fs::write(path, plot::svg(&title, &rows))
            .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))?;
    }

    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let mut settings = replay.settings;
        settings["uploads_per_day"] = json!(uploads);
        settings["render_ms"] = json!(args.render_ms);
        settings["lambda_memory_mb"] = json!(args.lambda_memory_mb);
        settings["precompute_ms"] = json!(args.precompute_ms);
        settings["precompute_memory_mb"] = json!(args.precompute_memory_mb);
        settings["invalidation_paths_per_month"] = json!(args.invalidation_paths);
        let doc = report::json(settings, &rows, &shield, prices);
        writeln!(out, "{doc}")
    } else {
        report::print_text(&mut out, &preamble, &rows, &shield, prices)
    };
    match written {
        // `pixelfront simulate | head` closing the pipe early is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::io(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

fn synthetic(
    args: &SimulateArgs,
    preset: &PresetValues,
    common: &Common,
) -> Result<Replay, Failure> {
    let reject = Failure::rejected;
    let daily = args.daily_requests.unwrap_or(preset.daily_requests);
    let sample = args.sample.unwrap_or(preset.sample);
    if sample == 0 || sample as f64 > daily {
        return Err(reject(format!(
            "--sample must be between 1 and the daily volume ({})",
            thousands(daily)
        )));
    }
    let warmup = args.warmup.unwrap_or(sample);
    let assets = args.assets.unwrap_or(preset.assets);
    if assets == 0 {
        return Err(reject("--assets must be at least 1".into()));
    }
    let zipf = positive(args.zipf.unwrap_or(preset.zipf), "zipf").map_err(reject)?;
    let junk = share(args.junk_share.unwrap_or(preset.junk_share), "junk-share").map_err(reject)?;
    let attack = share(
        args.attack_share.unwrap_or(preset.attack_share),
        "attack-share",
    )
    .map_err(reject)?;
    let traffic = match &args.traffic_mix {
        Some(t) => parse_traffic(t).map_err(reject)?,
        None => preset.traffic_mix,
    };
    if let Some(r) = (0..NREGIONS).find(|&r| traffic[r] > 0.0 && !common.prices.has_region(r)) {
        return Err(reject(format!(
            "the price file has no prices for region {}",
            REGIONS[r]
        )));
    }
    let edges = args.edges.unwrap_or(preset.edges);
    if !(1..=MAX_EDGES).contains(&edges) {
        return Err(reject(format!("--edges must be between 1 and {MAX_EDGES}")));
    }
    let avg_kb = positive(
        args.avg_object_kb.unwrap_or(preset.avg_object_kb),
        "avg-object-kb",
    )
    .map_err(reject)?;

    // The scale-down: each simulated request stands for `k` real ones.
    let k = daily / sample as f64;
    let scaled_assets = workload::modelled_assets(assets, k);
    let edge_bytes = (common.edge_cache_gb * 1e9 / k) as u64;
    let shield_bytes = (common.shield_cache_gb * 1e9 / k) as u64;
    let cfg = WorkloadConfig {
        seed: args.seed,
        assets,
        block: k,
        zipf,
        junk_share: junk,
        attack_share: attack,
        accept_mix: common.accept_mix,
        traffic_mix: traffic,
        edge_regions: workload::place_edges(edges, &traffic),
    };
    let edge_count = cfg.edge_regions.len();

    // Calibrate the size model so that the requested objects average --avg-object-kb.
    let mut pilot = Generator::new(cfg.clone(), 1);
    let pilot_n = 20_000;
    let mean: f64 = (0..pilot_n)
        .map(|_| match pilot.next_request().sizes {
            Sizes::Modelled { original, exact } => workload::model_bytes(original, &exact),
            Sizes::Logged(b) => b as f64,
        })
        .sum::<f64>()
        / f64::from(pilot_n);
    let size_scale = avg_kb * 1000.0 / mean;

    let mut engine = Engine::new(edge_count, edge_bytes, shield_bytes, size_scale);
    let mut gen = Generator::new(cfg, 0);
    let total = warmup + sample;
    let progress = Progress::new("simulating", Some(total));
    for i in 0..total {
        let req = gen.next_request();
        engine.feed(&req, i >= warmup);
        progress.tick(i + 1);
    }
    progress.done();

    let regions: Vec<String> = (0..NREGIONS)
        .filter(|&r| traffic[r] > 0.0)
        .map(|r| format!("{} {:.0} %", REGIONS[r], traffic[r] * 100.0))
        .collect();
    let preamble = vec![
        format!(
            "pixelfront simulate: preset {}, synthetic workload (seed {})",
            args.preset.name(),
            args.seed
        ),
        format!(
            "  {} requests/day; simulated {} requests after {} of warm-up, each standing for {}",
            thousands(daily),
            thousands(sample as f64),
            thousands(warmup as f64),
            thousands(k)
        ),
        format!(
            "  catalogue {} assets (Zipf {zipf}; {} in the scaled-down model), {:.0} % utm junk, {:.0} % cache-busting attackers",
            thousands(assets as f64),
            thousands(scaled_assets as f64),
            junk * 100.0,
            attack * 100.0
        ),
        format!(
            "  Accept: {:.0} % AVIF, {:.0} % WebP, {:.0} % JPEG only; traffic: {}",
            common.accept_mix[0] * 100.0,
            common.accept_mix[1] * 100.0,
            common.accept_mix[2] * 100.0,
            regions.join(", ")
        ),
        format!(
            "  {edge_count} edge caches x {} GB, Origin Shield {} GB; average requested object {avg_kb} KB",
            thousands(common.edge_cache_gb),
            thousands(common.shield_cache_gb)
        ),
    ];
    let settings = json!({
        "source": "synthetic",
        "preset": args.preset.name(),
        "seed": args.seed,
        "daily_requests": daily,
        "sample": sample,
        "warmup": warmup,
        "assets": assets,
        "scaled_assets": scaled_assets,
        "zipf": zipf,
        "junk_share": junk,
        "attack_share": attack,
        "accept_mix": {"avif": common.accept_mix[0], "webp": common.accept_mix[1], "jpeg": common.accept_mix[2]},
        "traffic_mix": (0..NREGIONS).filter(|&r| traffic[r] > 0.0).map(|r| (REGIONS[r].to_string(), json!(traffic[r]))).collect::<serde_json::Map<_, _>>(),
        "edges": edge_count,
        "edge_cache_gb": common.edge_cache_gb,
        "shield_cache_gb": common.shield_cache_gb,
        "avg_object_kb": avg_kb,
    });
    Ok(Replay {
        engine,
        daily_requests: daily,
        catalogue: assets as f64,
        preamble,
        settings,
    })
}

fn replay_log(args: &SimulateArgs, common: &Common) -> Result<Replay, Failure> {
    let reject = Failure::rejected;
    let default_region = region_index(&args.log_default_region).ok_or_else(|| {
        reject(format!(
            "--log-default-region: unknown region {:?} (known: {})",
            args.log_default_region,
            REGIONS.join(", ")
        ))
    })?;
    let mut aliases = Vec::new();
    for a in &args.param_alias {
        let (from, to) = a
            .split_once('=')
            .filter(|(f, t)| !f.is_empty() && !t.is_empty())
            .ok_or_else(|| reject(format!("--param-alias: expected FROM=TO, got {a:?}")))?;
        aliases.push((from.to_string(), to.to_string()));
    }
    let mut reader = log::LogReader::new(log::LogConfig {
        seed: args.seed,
        accept_mix: common.accept_mix,
        default_region,
        aliases,
    });
    let warmup = args.warmup.unwrap_or(0);
    let mut engine = Engine::new(
        0,
        (common.edge_cache_gb * 1e9) as u64,
        (common.shield_cache_gb * 1e9) as u64,
        1.0,
    );
    let progress = Progress::new("replaying", None);
    let mut seen: u64 = 0;
    let mut dates: HashSet<String> = HashSet::new();
    for path in &args.log {
        let name = path.display().to_string();
        let input: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::new(std::io::stdin().lock()))
        } else {
            let file = std::fs::File::open(path)
                .map_err(|e| Failure::io(format!("cannot read {name}: {e}")))?;
            Box::new(BufReader::new(file))
        };
        for line in input.lines() {
            let line = line.map_err(|e| Failure::io(format!("cannot read {name}: {e}")))?;
            let req = reader
                .line(&line)
                .map_err(|e| reject(format!("{name}: {e}")))?;
            let Some(req) = req else { continue };
            let measure = seen >= warmup;
            if measure && !dates.contains(&reader.stats.last_date) {
                dates.insert(reader.stats.last_date.clone());
            }
            engine.feed(&req, measure);
            seen += 1;
            progress.tick(seen);
        }
    }
    progress.done();
    let stats = &reader.stats;
    let measured = seen.saturating_sub(warmup);
    if measured == 0 {
        return Err(reject(format!(
            "no GET or HEAD requests to replay in the log ({} lines, {} malformed, {} other methods, {} of warm-up)",
            stats.lines, stats.malformed, stats.other_methods, warmup
        )));
    }
    let days = dates.len().max(1) as f64;
    let log_daily = measured as f64 / days;
    let daily = args.daily_requests.unwrap_or(log_daily);
    let preamble = vec![
        format!(
            "pixelfront simulate: CloudFront log replay ({})",
            args.log
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "  {} lines: {} requests replayed ({} of warm-up), {} malformed, {} not GET/HEAD; {} path(s) mapped onto /img/log/v1/",
            thousands(stats.lines as f64),
            thousands(seen as f64),
            thousands(warmup as f64),
            thousands(stats.malformed as f64),
            thousands(stats.other_methods as f64),
            thousands(stats.mapped_paths as f64)
        ),
        format!(
            "  {} date(s): {} requests/day in the log, scaled to {} requests/day; {} distinct assets",
            dates.len(),
            thousands(log_daily),
            thousands(daily),
            thousands(engine.distinct_assets() as f64)
        ),
        format!(
            "  {} edge caches ({}) x {} GB, Origin Shield {} GB; Accept assumed per client: {:.0} % AVIF, {:.0} % WebP, {:.0} % JPEG only",
            stats.edges.len(),
            stats.edges.join(" "),
            thousands(common.edge_cache_gb),
            thousands(common.shield_cache_gb),
            common.accept_mix[0] * 100.0,
            common.accept_mix[1] * 100.0,
            common.accept_mix[2] * 100.0
        ),
    ];
    let settings = json!({
        "source": "log",
        "files": args.log.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "lines": stats.lines,
        "requests": seen,
        "warmup": warmup,
        "malformed": stats.malformed,
        "other_methods": stats.other_methods,
        "mapped_paths": stats.mapped_paths,
        "dates": dates.len(),
        "daily_requests": daily,
        "log_requests_per_day": log_daily,
        "distinct_assets": engine.distinct_assets(),
        "edges": stats.edges,
        "edge_cache_gb": common.edge_cache_gb,
        "shield_cache_gb": common.shield_cache_gb,
        "accept_mix": {"avif": common.accept_mix[0], "webp": common.accept_mix[1], "jpeg": common.accept_mix[2]},
    });
    Ok(Replay {
        catalogue: engine.distinct_assets() as f64,
        engine,
        daily_requests: daily,
        preamble,
        settings,
    })
}
