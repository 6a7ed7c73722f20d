//! The cost and hit-ratio model behind `pixelfront simulate`: how often the CDN answers an image
//! request itself, and what a month of delivery costs on AWS, for four cache-key designs, each
//! with and without Origin Shield.
//!
//! A workload (the seeded synthetic generator of [`workload`], or a CloudFront standard log
//! read by [`log`]) is replayed through the four designs ([`engine`]), each with a byte-bounded
//! LRU per edge location and an Origin Shield tier ([`cache`]). Every request goes through the
//! real normalizer and policy of `pixelfront_shared`, so the cache keys are the ones the edge
//! derives. The counts are scaled to the daily volume and priced with the data file
//! `simulator/pricing.json`, or a price file given with `--prices` ([`pricing`]); [`report`]
//! prints the table or JSON and [`plot`] draws the SVG.
//!
//! **Scaling.** Simulating a billion requests a day one by one is not needed to get its hit
//! ratios: the synthetic model simulates `--sample` requests and scales the catalogue and the
//! cache sizes down by the same factor k = daily volume / sample (each modelled asset merges k
//! neighbouring popularity ranks, see [`workload`]), so every object gets as many requests and
//! keeps its hit probability. Counts are then multiplied back up by k. A log is replayed as it
//! is (no scaling of the caches); its counts are scaled to `--daily-requests` when given.
//!
//! **Use.** The `pixelfront` binary takes [`SimulateArgs`] (clap options) as its `simulate`
//! subcommand and calls [`run`], which writes the report to stdout (and the SVG with
//! `--plot`). An [`Error`] says whether the input was rejected ([`Error::is_rejected`]) or the
//! environment failed; the binary turns that into its exit code. The crate does not depend on
//! the CLI.

pub mod args;
pub mod cache;
pub mod engine;
pub mod log;
pub mod log_files;
pub mod plot;
pub mod pricing;
mod replay;
pub mod report;
pub mod rng;
pub mod workload;

pub use args::{Preset, SimulateArgs, GLOBAL_MIX};

use args::{non_negative, parse_mix, positive};
use pricing::Prices;
use replay::Common;
use report::{thousands, CostInputs};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use workload::ACCEPT_CLASSES;

/// Why a run failed: the input was rejected (the caller's options, price file or log are at
/// fault; [`Error::is_rejected`]), or the environment failed (a file or stream could not be
/// read or written).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is out of range or malformed, or the workload has nothing to replay.
    #[error("{0}")]
    Rejected(String),
    /// The price file given with `--prices` is not a valid price file.
    #[error("{}: {reason}", path.display())]
    Prices {
        /// The file given with `--prices`.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of a CloudFront log cannot be replayed.
    #[error("{}: {source}", path.display())]
    Log {
        /// The log file (`-`: stdin).
        path: PathBuf,
        /// What is wrong with the line.
        source: log::LogError,
    },
    /// The built-in price file does not load (a defect of the build, not of the input).
    #[error("the built-in prices do not load: {0}")]
    BuiltinPrices(String),
    /// A file (or stdin, `-`) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report cannot be written to stdout (other than a closed pipe, which is no error).
    #[error("cannot write the report: {0}")]
    Report(std::io::Error),
}

impl Error {
    /// True when the input was rejected (options, price file, log), false when the environment
    /// failed (reading or writing files, a broken build). `pixelfront` exits 2 and 1.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self,
            Error::Rejected(_) | Error::Prices { .. } | Error::Log { .. }
        )
    }
}

/// Run the model with these options: replay the workload, price it, and print the report to
/// stdout (text or, with `--json`, one JSON document); with `--plot`, also write the SVG.
/// Progress goes to stderr when stderr is a terminal.
pub fn run(args: SimulateArgs) -> Result<(), Error> {
    let preset = args.preset.values();
    let prices = match &args.prices {
        None => Prices::builtin().map_err(Error::BuiltinPrices)?,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            Prices::parse(&text).map_err(|reason| Error::Prices {
                path: path.clone(),
                reason,
            })?
        }
    };
    let accept_mix = match &args.accept_mix {
        Some(m) => parse_mix(m, &ACCEPT_CLASSES, "accept-mix").map_err(Error::Rejected)?,
        None => preset.accept_mix,
    };
    let edge_cache_gb = positive(
        args.edge_cache_gb.unwrap_or(preset.edge_cache_gb),
        "edge-cache-gb",
    )
    .map_err(Error::Rejected)?;
    let shield_cache_gb = positive(
        args.shield_cache_gb.unwrap_or(preset.shield_cache_gb),
        "shield-cache-gb",
    )
    .map_err(Error::Rejected)?;
    let checks = [
        positive(args.render_ms, "render-ms"),
        positive(args.lambda_memory_mb, "lambda-memory-mb"),
        positive(args.precompute_ms, "precompute-ms"),
        positive(args.precompute_memory_mb, "precompute-memory-mb"),
        non_negative(args.invalidation_paths, "invalidation-paths"),
    ];
    for c in checks {
        c.map_err(Error::Rejected)?;
    }
    if let Some(d) = args.daily_requests {
        positive(d, "daily-requests").map_err(Error::Rejected)?;
    }
    let common = Common {
        prices,
        accept_mix,
        edge_cache_gb,
        shield_cache_gb,
    };

    let replay = if args.log.is_empty() {
        replay::synthetic(&args, &preset, &common)?
    } else {
        replay::replay_log(&args, &common)?
    };

    let uploads = match args.uploads_per_day {
        Some(u) => non_negative(u, "uploads-per-day").map_err(Error::Rejected)?,
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
        .map_or("built-in simulator/pricing.json".to_string(), |p| {
            p.display().to_string()
        });
    preamble.push(format!("  prices: {lead} ({file}; see its \"source\")"));

    if let Some(path) = &args.plot {
        let title = format!(
            "pixelfront simulate: {} requests/day",
            thousands(replay.daily_requests)
        );
        std::fs::write(path, plot::svg(&title, &rows)).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
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
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Report(e)),
        _ => Ok(()),
    }
}
