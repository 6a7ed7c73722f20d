//! `pixelfront dev`: the whole system on one machine with no AWS (the local stack).
//!
//! The same shared code as the Lambda functions, over local adapters: originals and
//! derivatives on the filesystem ([`FsObjects`], atomic writes), the manifest in SQLite
//! ([`SqliteManifest`]), tenant policies in `{data}/tenants.json`. Uploads run the precompute
//! steps of the state machine ([`Pipeline`]); image requests go through the edge's checks and
//! the transformer's code ([`Transformer`]), behind a byte-bounded cache that coalesces
//! concurrent misses (what Origin Shield does).

mod cache;
mod limit;
mod metrics;
mod server;
pub mod tenants;

use crate::Failure;
use pixelfront_shared::delivery::{TransformConfig, Transformer};
use pixelfront_shared::pipeline::Pipeline;
use pixelfront_shared::store::fs::FsObjects;
use pixelfront_shared::store::sqlite::SqliteManifest;
use pixelfront_shared::store::{SourceRef, Status};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `pixelfront dev`.
#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Data directory: originals/, derived/, manifest.db, tenants.json.
    #[arg(long, default_value = ".pixelfront")]
    data: PathBuf,
    /// Listen address, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Bearer token for uploads and admin calls; generated and printed when absent.
    #[arg(long, env = "PIXELFRONT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// In-memory image cache, megabytes (0: off).
    #[arg(long, default_value_t = 256)]
    cache_mb: u64,
    /// Requests per source IP per five minutes, as the WAF rate rule (0: off).
    #[arg(long, default_value_t = 2000)]
    rate_limit: u32,
    /// Upload every image of this folder as tenant `demo` at start-up, print a table of the
    /// manifests and the URLs to open, then serve.
    #[arg(long)]
    ingest: Option<PathBuf>,
}

/// The precompute steps over the local stores.
type LocalPipeline = Pipeline<Arc<FsObjects>, Arc<FsObjects>, Arc<SqliteManifest>>;

/// The transformer over the local stores (no replica).
type LocalTransformer = Transformer<
    Arc<FsObjects>,
    Arc<FsObjects>,
    Arc<FsObjects>,
    Arc<SqliteManifest>,
    Arc<tenants::Tenants>,
>;

/// The local stack's stores and settings, shared by every request.
pub struct Dev {
    originals: Arc<FsObjects>,
    manifest: Arc<SqliteManifest>,
    pipeline: LocalPipeline,
    transformer: LocalTransformer,
    tenants: Arc<tenants::Tenants>,
    admin_token: String,
}

/// A random hex token from the OS (32 hex digits, see
/// [`pixelfront_shared::sign::random_token`]).
///
/// # Panics
/// When the OS has no random source: a guessable token or secret is worse than none.
pub fn new_token() -> String {
    pixelfront_shared::sign::random_token().unwrap_or_else(|e| panic!("{e}"))
}

impl Dev {
    /// Opens (creating) the data directory.
    fn open(args: &DevArgs, admin_token: String) -> Result<Dev, String> {
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir_all(&args.data).map_err(|e| io(&args.data.display().to_string(), e))?;
        let originals =
            Arc::new(FsObjects::new(args.data.join("originals")).map_err(|e| io("originals", e))?);
        let derived =
            Arc::new(FsObjects::new(args.data.join("derived")).map_err(|e| io("derived", e))?);
        let manifest = Arc::new(
            SqliteManifest::open(&args.data.join("manifest.db")).map_err(|e| e.to_string())?,
        );
        let tenants = Arc::new(tenants::Tenants::new(args.data.join("tenants.json")));
        tenants::read_file(&args.data.join("tenants.json"))?;
        // Leftovers of a process killed mid-write never become objects.
        for store in [&originals, &derived] {
            let n = store
                .remove_temporaries()
                .map_err(|e| io("removing temporary files", e))?;
            if n > 0 {
                tracing::info!(removed = n, root = %store.root().display(), "removed unfinished writes");
            }
        }
        Ok(Dev {
            pipeline: Pipeline::new(
                originals.clone(),
                derived.clone(),
                manifest.clone(),
                server::LOCAL_BUCKET,
            ),
            transformer: Transformer {
                originals: originals.clone(),
                replica: None,
                derived,
                manifest: manifest.clone(),
                policies: tenants.clone(),
                config: TransformConfig::default(),
            },
            originals,
            manifest,
            tenants,
            admin_token,
        })
    }

    /// The versions a killed process left `rendering`, as sources to render again.
    fn unfinished(&self) -> Result<Vec<SourceRef>, String> {
        let recs = self
            .manifest
            .with_status(Status::Rendering)
            .map_err(|e| e.to_string())?;
        Ok(recs
            .into_iter()
            .map(|r| SourceRef {
                bucket: server::LOCAL_BUCKET.to_string(),
                key: r.asset.id(),
                version_id: Some(r.source_version_id),
                etag: r.source_etag,
                size: r.source_bytes,
            })
            .collect())
    }
}

/// Runs the local stack until Ctrl-C or SIGTERM.
pub fn run(args: DevArgs) -> Result<(), Failure> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let (admin_token, generated) = match args.admin_token.clone().filter(|t| !t.is_empty()) {
        Some(t) => (t, false),
        None => (new_token(), true),
    };
    let dev = Dev::open(&args, admin_token).map_err(Failure::io)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("tokio runtime: {e}")))?;
    runtime.block_on(server::serve(Arc::new(dev), args, generated))
}
