//! `pixelfront-fuzz`: mutation fuzzing of the decoders on stable Rust, bounded in time.
//!
//! Case `i` of seed `S` is a pure function of `(S, i)` and the seed files: a corpus file with one
//! to three mutations (see `mutate`). Cases run in a worker (this binary re-executed with
//! `--worker`) under an address-space limit (`RLIMIT_AS`, 1 GiB by default), through `probe` and
//! `decode` with the production limits. Every case must end in an image or a typed error: a
//! worker that panics, aborts (an allocation failure), is killed by a signal or hangs is a
//! failure; its input is saved under `--out` and named in the output, and the next worker
//! carries on with the following case. Exit status 1 when anything failed.
//!
//! Reproduce a failure: `pixelfront-fuzz --replay <saved file>` (same limit, one case), or
//! `pixelfront-fuzz --seed S --case I`.

mod mutate;
mod seeds;
mod worker;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Fuzz the decoders with mutated corpus files under an address-space limit.
#[derive(Parser, Debug, Clone)]
#[command(name = "pixelfront-fuzz")]
pub struct Args {
    /// Seed of the case generator (printed; the same seed runs the same cases).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time budget, seconds (cases stop starting after it).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Folders of seed files (searched recursively for .jpg .png .gif .webp).
    #[arg(long = "corpus", default_values = ["samples", "../shared/corpus"])]
    pub corpus: Vec<PathBuf>,
    /// Where failing inputs are saved.
    #[arg(long, default_value = "fuzz-failures")]
    pub out: PathBuf,
    /// Address-space limit of the worker, MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory_mib: u64,
    /// A case that runs longer than this is a hang, seconds.
    #[arg(long, default_value_t = 30)]
    pub case_timeout: u64,
    /// Run only case I of the seed (then stop).
    #[arg(long)]
    pub case: Option<u64>,
    /// Run one saved input instead of generated cases.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Internal: run cases from `--from` in this process (the parent sets the limit).
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Internal: the first case a worker runs.
    #[arg(long, hide = true, default_value_t = 0)]
    pub from: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.worker {
        worker::run(&args)
    } else {
        worker::supervise(&args)
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pixelfront-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}
