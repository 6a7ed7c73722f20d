//! `pixelfront`: one binary for people and scripts (README.md).
//!
//! Exit codes: 0 success; 2 rejected input (a corrupt, unsupported or over-limit image, a
//! request the edge would answer with 400, or bad command-line usage); 1 anything else (an
//! unreadable file, an unwritable output folder). Errors go to stderr; nothing panics on input.

mod removal;
mod render_cmd;
mod sign_cmd;
mod tenant;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Pixelfront: image origin and delivery.
#[derive(Parser, Debug)]
#[command(name = "pixelfront", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render the 8 standard variants of one image (or one request with --query) into a folder.
    Render(render_cmd::RenderArgs),
    /// Print the derived object key of a request path (docs/url-grammar.md), or exit 2 with the 400 reason.
    Normalize(NormalizeArgs),
    /// Cost and hit-ratio model (docs/cost-model.md): replay a synthetic workload or a CloudFront log
    /// through four cache-key designs, with and without Origin Shield, and price a month.
    Simulate(Box<pixelfront_simulator::SimulateArgs>),
    /// Sign a request URL with one of a tenant's keys (HMAC-SHA256, docs/signing.md).
    Sign(sign_cmd::SignArgs),
    /// Check a request URL against a tenant policy as the edge does: `ok`, or exit 2 with the
    /// 403 reason.
    Verify(sign_cmd::VerifyArgs),
    /// Run the local stack: the whole system on one machine, no AWS (uploads, rendering, image
    /// serving with the edge's checks, takedown, backfill, metrics).
    Dev(pixelfront_local::LocalStackArgs),
    /// Manage tenant policies (signing keys, signing on/off, allowed Referers): the local stack's
    /// tenants file, or with --aws the stack's KeyValueStore and tenant policy table.
    Tenant(tenant::TenantArgs),
    /// Take assets down (DMCA, tenant request): originals, replicas and derivatives deleted,
    /// the CDN purged, an audit record written; on the local stack or AWS.
    #[command(long_about = removal::TAKEDOWN_HELP)]
    Takedown(removal::RemoveArgs),
    /// Erase assets (GDPR Art. 17): as `takedown`, with the manifest marked `erased`.
    #[command(long_about = removal::ERASE_HELP)]
    Erase(removal::RemoveArgs),
    /// Render every ready version again whose variants differ from the current catalogue.
    #[command(long_about = removal::BACKFILL_HELP)]
    Backfill(removal::BackfillArgs),
    /// Print the takedown and erasure records of one asset.
    #[command(long_about = removal::AUDIT_HELP)]
    Audit(removal::AuditArgs),
}

#[derive(clap::Args, Debug)]
struct NormalizeArgs {
    /// The viewer's Accept header, used to resolve fmt=auto.
    #[arg(long)]
    accept: Option<String>,
    /// The request, '/img/{tenant}/v{N}/{key}?{query}'.
    uri: String,
}

/// A command failure with the exit code it maps to.
pub struct Failure {
    code: u8,
    message: String,
    /// Print the message alone (no `pixelfront:` prefix), e.g. a 400 reason.
    bare: bool,
}

impl Failure {
    /// Exit 2: the input was rejected (the user's image or request is at fault).
    pub fn rejected(message: impl ToString) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
            bare: false,
        }
    }

    /// Exit 1: an environment problem (I/O).
    pub fn io(message: impl ToString) -> Self {
        Failure {
            code: 1,
            message: message.to_string(),
            bare: false,
        }
    }
}

fn main() -> ExitCode {
    pixelfront_shared::alloc::limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render_cmd::run(args),
        Command::Normalize(args) => normalize(args),
        Command::Sign(args) => sign_cmd::run_sign(args),
        Command::Verify(args) => sign_cmd::run_verify(args),
        Command::Simulate(args) => simulate(*args),
        Command::Dev(args) => pixelfront_local::run(args).map_err(|e| match e {
            pixelfront_local::LocalError::Rejected(m) => Failure::rejected(m),
            pixelfront_local::LocalError::Io(m) => Failure::io(m),
        }),
        Command::Tenant(args) => tenant::run(args),
        Command::Takedown(args) => removal::run_remove(args, removal::Verb::Takedown),
        Command::Erase(args) => removal::run_remove(args, removal::Verb::Erase),
        Command::Backfill(args) => removal::run_backfill(args),
        Command::Audit(args) => removal::run_audit(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.bare => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
        Err(f) => {
            eprintln!("pixelfront: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `pixelfront simulate`: the model lives in `pixelfront_simulator`; a rejected input exits 2,
/// anything else 1.
fn simulate(args: pixelfront_simulator::SimulateArgs) -> Result<(), Failure> {
    pixelfront_simulator::run(args).map_err(|e| {
        if e.is_rejected() {
            Failure::rejected(e)
        } else {
            Failure::io(e)
        }
    })
}

fn normalize(args: NormalizeArgs) -> Result<(), Failure> {
    // The reason is printed exactly as the edge returns it (edge/normalize.mjs prints the same).
    let n = pixelfront_shared::normalize_uri(&args.uri, args.accept.as_deref()).map_err(|r| {
        Failure {
            bare: true,
            ..Failure::rejected(r)
        }
    })?;
    println!("{}", n.derived_key());
    Ok(())
}
