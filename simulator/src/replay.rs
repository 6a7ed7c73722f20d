//! The two workloads of a run, replayed through the four cache-key designs: the seeded
//! synthetic one ([`synthetic`], scaled down by the sample size) and a CloudFront log
//! ([`replay_log`], replayed as it is). Each returns the filled [`Engine`] with the daily
//! volume, the report's preamble lines and the settings for the JSON.

use crate::args::{parse_traffic, positive, share, PresetValues, SimulateArgs, MAX_EDGES};
use crate::engine::Engine;
use crate::pricing::{region_index, Prices, NREGIONS, REGIONS};
use crate::report::thousands;
use crate::workload::{self, Generator, Sizes, WorkloadConfig};
use crate::{log, Error};
use serde_json::json;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};

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
pub(crate) struct Common {
    pub(crate) prices: Prices,
    pub(crate) accept_mix: [f64; 3],
    pub(crate) edge_cache_gb: f64,
    pub(crate) shield_cache_gb: f64,
}

/// What the replay produced.
pub(crate) struct Replay {
    pub(crate) engine: Engine,
    pub(crate) daily_requests: f64,
    /// Full-scale catalogue size (for the default upload rate).
    pub(crate) catalogue: f64,
    pub(crate) preamble: Vec<String>,
    pub(crate) settings: serde_json::Value,
}

pub(crate) fn synthetic(
    args: &SimulateArgs,
    preset: &PresetValues,
    common: &Common,
) -> Result<Replay, Error> {
    let reject = Error::Rejected;
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

pub(crate) fn replay_log(args: &SimulateArgs, common: &Common) -> Result<Replay, Error> {
    let reject = Error::Rejected;
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
    let inputs = crate::log_files::expand(&args.log)
        .map_err(|(path, source)| Error::Read { path, source })?;
    for input in &inputs {
        let path = input.path();
        let lines = input.open().map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        for line in lines {
            let line = line.map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let req = reader.line(&line).map_err(|source| Error::Log {
                path: path.clone(),
                source,
            })?;
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
            "pixelfront simulate: CloudFront log replay ({}{})",
            args.log
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if inputs.len() == args.log.len() {
                String::new()
            } else {
                format!("; {} files", inputs.len())
            }
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
