//! The local stack: the whole of Pixelfront on one machine with no AWS (docs/local-stack.md),
//! run by `pixelfront dev`.
//!
//! It is an adapter, not a second implementation: every behaviour is the shared crate's code
//! over local stores. Originals and derivatives live on the filesystem
//! ([`FsObjects`](pixelfront_shared::store::fs::FsObjects), atomic writes), the manifest and the
//! audit records in SQLite ([`SqliteManifest`](pixelfront_shared::store::sqlite::SqliteManifest)),
//! tenant policies in `{data}/tenants.json` ([`tenants`]).
//!
//! - uploads run the precompute pipeline's own entry point (`Pipeline::process_job`, the one the
//!   Lambda runs), retrying transient errors as the state machine does ([`uploads`]);
//! - image requests go through the edge's checks and the transformer's code
//!   (`Transformer::admit`/`deliver`) and are answered by the shared HTTP mapping
//!   (`pixelfront_shared::delivery::http`), behind a byte-bounded cache that coalesces
//!   concurrent misses, as Origin Shield does ([`delivery`], [`cache`]);
//! - takedown and erasure run the takedown workflow's steps (`pixelfront_shared::removal`) over
//!   the local stores, with the in-process cache as the CDN ([`admin`], [`cdn`]);
//! - backfill runs `Pipeline::backfill` over every ready version ([`backfill`]);
//! - the tenant API (`/api/v1/tenants/…`, signed upload URLs, the `latest` alias) is the
//!   shared `pixelfront_shared::api` over the same stores ([`api`], [`api_keys`]);
//! - the web console at `/console/`, a client of that API, embedded in the binary
//!   ([`console`], with its tenant routes in [`tenant_admin`]).

pub mod admin;
pub mod api;
pub mod api_keys;
pub mod backfill;
pub mod cache;
pub mod cdn;
pub mod console;
pub mod delivery;
pub mod limit;
pub mod lock;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod stack;
pub mod tenant_admin;
pub mod tenants;
pub mod uploads;

use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `pixelfront dev`, the local stack.
#[derive(clap::Args, Debug, Clone)]
pub struct LocalStackArgs {
    /// Data directory: originals/, derived/, manifest.db, tenants.json.
    #[arg(long, default_value = ".pixelfront")]
    pub data: PathBuf,
    /// Listen address, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Bearer token for uploads and admin calls; generated and printed when absent.
    #[arg(long, env = "PIXELFRONT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// In-memory image cache, megabytes (0: off).
    #[arg(long, default_value_t = 256)]
    pub cache_mb: u64,
    /// Requests per client (an IPv4 address, an IPv6 /64) per five minutes, on every route,
    /// as the WAF rate rule; calls with the admin token are not counted (0: off).
    #[arg(long, default_value_t = 2000)]
    pub rate_limit: u32,
    /// Seconds a connection has to send a request head; also the keep-alive idle time (≥ 1).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Seconds a client may leave its answer unread (no byte taken) before the connection is
    /// closed (≥ 1).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub write_timeout: u64,
    /// Seconds a request has to send its whole body (an upload: up to 50 MB), else 408.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub body_timeout: u64,
    /// Connections served at once; more wait in the accept backlog.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds from SIGTERM or Ctrl-C to exit: requests and renders in flight get this long,
    /// then every connection is closed (a render cut short resumes at the next start).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_timeout: u64,
    /// Renders at once, on-demand and uploads together (0: one per core); beyond it an
    /// on-demand request waits, then gets 503, and an upload's render waits its turn
    /// (docs/limits.md).
    #[arg(long, default_value_t = 0)]
    pub render_slots: usize,
    /// Memory budget of the renders running at once (on-demand and uploads), MiB, each render
    /// counted by an estimate from its image's header (docs/limits.md).
    #[arg(long, default_value_t = pixelfront_shared::delivery::admission::DEFAULT_BUDGET_MIB)]
    pub render_memory_mb: u64,
    /// Longest wait for a render slot and its memory before 503 with `Retry-After`, milliseconds.
    #[arg(long, default_value_t = pixelfront_shared::delivery::admission::DEFAULT_WAIT_MS)]
    pub render_wait_ms: u64,
    /// The address clients reach the stack at (`https://img.example.com`), the prefix of the
    /// URLs the tenant API answers (variants, uploads, takedown status); default: the listen
    /// address.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// How long an upload URL of the tenant API works, seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub upload_ttl: u64,
    /// Serve the web console from this folder instead of the copy built into the binary (for
    /// editing it without a rebuild).
    #[arg(long, env = "PIXELFRONT_CONSOLE_DIR", value_name = "DIR")]
    pub console_dir: Option<PathBuf>,
    /// Upload every image of this folder as tenant `demo` at start-up, print a table of the
    /// manifests and the URLs to open, then serve.
    #[arg(long)]
    pub ingest: Option<PathBuf>,
}

/// Why the local stack stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The data directory, the listen address or the runtime failed (exit 1).
    #[error("{0}")]
    Io(String),
    /// The input was refused, e.g. an `--ingest` folder without images (exit 2).
    #[error("{0}")]
    Rejected(String),
}

/// Runs the local stack until Ctrl-C or SIGTERM.
pub fn run(args: LocalStackArgs) -> Result<(), LocalError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let (admin_token, generated) = match args.admin_token.clone().filter(|t| !t.is_empty()) {
        Some(t) => (t, false),
        None => (
            pixelfront_shared::sign::random_token().map_err(|e| LocalError::Io(e.to_string()))?,
            true,
        ),
    };
    // One process per data directory, held until this function returns.
    let _lock = lock::data_dir(&args.data).map_err(LocalError::Io)?;
    let stack = stack::LocalStack::open(&args, admin_token).map_err(LocalError::Io)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| LocalError::Io(format!("tokio runtime: {e}")))?;
    let served = runtime.block_on(routes::serve(Arc::new(stack), args, generated));
    // Renders still running past the shutdown deadline are not waited for.
    runtime.shutdown_background();
    served
}
