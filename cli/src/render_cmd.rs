//! `pixelfront render <input> --out <dir> [--query '...']`: decode once, render the standard
//! catalogue (or one request) on a rayon pool, write each output under its derivative name and
//! print a table.

use crate::Failure;
use pixelfront_shared::render::{self, RenderConfig, Rendered, Target};
use pixelfront_shared::Policy;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The original image (JPEG, PNG, WebP or GIF).
    input: PathBuf,
    /// Output folder (created if missing); each file is named by its derivative name.
    #[arg(long)]
    out: PathBuf,
    /// Render this one request instead of the catalogue, e.g. 'w=500&fmt=jpeg&q=90'.
    /// fmt=auto (or no fmt) resolves as for a client without an Accept header: JPEG.
    #[arg(long)]
    query: Option<String>,
    /// rayon threads (default: all cores; PIXELFRONT_THREADS also sets it).
    #[arg(long, env = "PIXELFRONT_THREADS")]
    threads: Option<usize>,
    /// Print the table as JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Calibration tooling: use this raw encoder setting instead of the calibrated table.
    #[arg(long, hide = true)]
    encoder_setting: Option<f32>,
    /// Encoder speed for AVIF (rav1e preset 0..=10, 10 = fastest).
    #[arg(long, default_value_t = render::Speed::default().avif, value_parser = clap::value_parser!(u8).range(0..=10))]
    avif_speed: u8,
    /// Encoder effort for WebP (libwebp method 0..=6, 0 = fastest).
    #[arg(long, default_value_t = render::Speed::default().webp, value_parser = clap::value_parser!(i32).range(0..=6))]
    webp_method: i32,
}

/// Read the input, refusing oversized files before reading them.
fn read_input(path: &Path, cfg: &RenderConfig) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Failure::io(format!("{} is not a file", path.display())));
    }
    render::decode::check_size(meta.len(), &cfg.limits).map_err(Failure::rejected)?;
    std::fs::read(path).map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))
}

pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let cfg = RenderConfig {
        encoder_setting_override: args.encoder_setting,
        speed: render::Speed {
            avif: args.avif_speed,
            webp: args.webp_method,
        },
        ..RenderConfig::default()
    };
    // Validate the request before doing any work.
    let single = args
        .query
        .as_deref()
        .map(|q| {
            pixelfront_shared::normalize::canonicalize_query(q, None).map_err(Failure::rejected)
        })
        .transpose()?;
    let bytes = read_input(&args.input, &cfg)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::io(format!("cannot create {}: {e}", args.out.display())))?;

    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads.filter(|&n| n > 0) {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .map_err(|e| Failure::io(format!("thread pool: {e}")))?;

    let started = Instant::now();
    let (rows, decode_ms, source) = pool.install(|| -> Result<_, Failure> {
        match &single {
            Some(canonical) => {
                let target = Target::from(canonical);
                let t0 = Instant::now();
                let decoded =
                    render::decode_for(&bytes, &[target], &cfg).map_err(Failure::rejected)?;
                let decode_ms = t0.elapsed().as_millis() as u64;
                let r =
                    render::render_target(&decoded, &target, &cfg).map_err(Failure::rejected)?;
                Ok((vec![("request".to_string(), r)], decode_ms, decoded.source))
            }
            None => {
                let all = render::render_catalogue(&bytes, &Policy::get().variants, &cfg)
                    .map_err(Failure::rejected)?;
                let rows = all.outputs.into_iter().map(|(v, r)| (v.name, r)).collect();
                Ok((rows, all.decode_ms, all.source))
            }
        }
    })?;
    let total_ms = started.elapsed().as_millis() as u64;

    for (_, r) in &rows {
        let path = args.out.join(r.canonical.derivative_name());
        std::fs::write(&path, &r.bytes)
            .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))?;
    }
    print_table(&args, &rows, decode_ms, total_ms, &source);
    Ok(())
}

fn print_table(
    args: &RenderArgs,
    rows: &[(String, Rendered)],
    decode_ms: u64,
    total_ms: u64,
    source: &render::SourceInfo,
) {
    let mut out = std::io::stdout().lock();
    if args.json {
        for (name, r) in rows {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({
                    "variant": name,
                    "file": r.canonical.derivative_name(),
                    "width": r.width,
                    "height": r.height,
                    "bytes": r.bytes.len(),
                    "ms": r.render_ms,
                })
            );
        }
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({
                "source": {"format": source.format.as_str(), "width": source.width, "height": source.height},
                "decode_ms": decode_ms,
                "total_ms": total_ms,
            })
        );
        return;
    }
    let _ = writeln!(
        out,
        "{} {}x{} {} -> {}",
        args.input.display(),
        source.width,
        source.height,
        source.format.as_str(),
        args.out.display()
    );
    let _ = writeln!(
        out,
        "{:<8} {:<22} {:>11} {:>9} {:>6}",
        "variant", "file", "size", "bytes", "ms"
    );
    for (name, r) in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>11} {:>9} {:>6}",
            name,
            r.canonical.derivative_name(),
            format!("{}x{}", r.width, r.height),
            r.bytes.len(),
            r.render_ms
        );
    }
    let total_bytes: usize = rows.iter().map(|(_, r)| r.bytes.len()).sum();
    let _ = writeln!(
        out,
        "decode {decode_ms} ms, total {total_ms} ms, {total_bytes} bytes"
    );
}
