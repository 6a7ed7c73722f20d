//! The local stack's stores and the shared services wired to them: the precompute pipeline
//! and the transformer over the filesystem and SQLite adapters.

use crate::tenants::Tenants;
use crate::LocalStackArgs;
use pixelfront_shared::delivery::admission::MIB;
use pixelfront_shared::delivery::{Admission, AdmissionConfig, TransformConfig, Transformer};
use pixelfront_shared::pipeline::Pipeline;
use pixelfront_shared::store::fs::FsObjects;
use pixelfront_shared::store::sqlite::SqliteManifest;
use pixelfront_shared::store::{SourceRef, Status};
use std::sync::Arc;

/// The "bucket" name local sources carry (the pipeline refuses any other).
pub const LOCAL_BUCKET: &str = "local";

/// The precompute steps over the local stores.
pub type LocalPipeline = Pipeline<Arc<FsObjects>, Arc<FsObjects>, Arc<SqliteManifest>>;

/// The transformer over the local stores (no replica).
pub type LocalTransformer =
    Transformer<Arc<FsObjects>, Arc<FsObjects>, Arc<FsObjects>, Arc<SqliteManifest>, Arc<Tenants>>;

/// The local stack's stores and settings, shared by every request.
pub struct LocalStack {
    /// Originals, versioned (`{tenant}/{key}@{version}`).
    pub originals: Arc<FsObjects>,
    /// Derivatives (`{tenant}/v{N}/{key}/{derivative}`).
    pub derived: Arc<FsObjects>,
    /// The manifest and the audit records.
    pub manifest: Arc<SqliteManifest>,
    /// The precompute pipeline.
    pub pipeline: LocalPipeline,
    /// The on-demand transformer.
    pub transformer: LocalTransformer,
    /// Tenant policies.
    pub tenants: Arc<Tenants>,
    /// The admin token (uploads, takedown, audit, backfill).
    pub admin_token: String,
    /// The data directory (`--data`).
    pub data: std::path::PathBuf,
}

impl LocalStack {
    /// Opens (creating) the data directory of `args`.
    pub fn open(args: &LocalStackArgs, admin_token: String) -> Result<LocalStack, String> {
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir_all(&args.data).map_err(|e| io(&args.data.display().to_string(), e))?;
        let originals = Arc::new(
            FsObjects::named(args.data.join("originals"), "originals")
                .map_err(|e| io("originals", e))?,
        );
        let derived = Arc::new(
            FsObjects::named(args.data.join("derived"), "derived").map_err(|e| io("derived", e))?,
        );
        let manifest = Arc::new(
            SqliteManifest::open(&args.data.join("manifest.db")).map_err(|e| e.to_string())?,
        );
        let tenants = Arc::new(Tenants::new(args.data.join("tenants.json")));
        crate::tenants::read_file(&args.data.join("tenants.json"))?;
        // Leftovers of a process killed mid-write never become objects.
        for store in [&originals, &derived] {
            let n = store
                .remove_temporaries()
                .map_err(|e| io("removing temporary files", e))?;
            if n > 0 {
                tracing::info!(removed = n, root = %store.root().display(), "removed unfinished writes");
            }
        }
        // One gate for uploads and on-demand misses: one memory budget for the process.
        let admission = Admission::new(admission_config(args));
        let mut pipeline = Pipeline::new(
            originals.clone(),
            derived.clone(),
            manifest.clone(),
            LOCAL_BUCKET,
        );
        pipeline.admission = Some(admission.clone());
        Ok(LocalStack {
            pipeline,
            transformer: Transformer {
                originals: originals.clone(),
                replica: None,
                derived: derived.clone(),
                manifest: manifest.clone(),
                policies: tenants.clone(),
                config: TransformConfig::default(),
                admission,
            },
            originals,
            derived,
            manifest,
            tenants,
            admin_token,
            data: args.data.clone(),
        })
    }

    /// The versions a killed process left `rendering`, as sources to render again.
    pub fn unfinished(&self) -> Result<Vec<SourceRef>, String> {
        let recs = self
            .manifest
            .with_status(Status::Rendering)
            .map_err(|e| e.to_string())?;
        Ok(recs
            .into_iter()
            .map(|r| SourceRef {
                bucket: LOCAL_BUCKET.to_string(),
                key: r.asset.id(),
                version_id: Some(r.source_version_id),
                etag: r.source_etag,
                size: r.source_bytes,
            })
            .collect())
    }
}

/// The render gate's settings from the command line (`--render-slots`, `--render-memory-mb`,
/// `--render-wait-ms`); 0 slots means one per core.
pub fn admission_config(args: &LocalStackArgs) -> AdmissionConfig {
    let defaults = AdmissionConfig::default();
    AdmissionConfig {
        max_renders: match args.render_slots {
            0 => defaults.max_renders,
            n => n,
        },
        budget_bytes: args.render_memory_mb.saturating_mul(MIB),
        wait: std::time::Duration::from_millis(args.render_wait_ms),
        ..defaults
    }
}
