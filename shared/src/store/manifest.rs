//! The manifest port: one record per (tenant, key, version), version assignment and the
//! `rendering → ready | failed` status machine (docs/aws-deploy.md).
//!
//! Every write an adapter makes is conditional: a duplicated S3 event (EventBridge and Express
//! workflows are at-least-once) finds the version already assigned to its S3 object version
//! instead of assigning a second one, and a late failure never overwrites `ready`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// An asset: a tenant and its key, without a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AssetId {
    /// Tenant id (first segment of the original's S3 key).
    pub tenant: String,
    /// The rest of the original's S3 key.
    pub key: String,
}

impl AssetId {
    /// `{tenant}/{key}`: the original's S3 key and the manifest partition.
    pub fn id(&self) -> String {
        format!("{}/{}", self.tenant, self.key)
    }

    /// The derived-object prefix of `version`: `{tenant}/v{N}/{key}`.
    pub fn version_prefix(&self, version: u32) -> String {
        format!("{}/v{}/{}", self.tenant, version, self.key)
    }

    /// The cache tag every derivative of the asset carries: `asset:{tenant}/{key}`.
    pub fn cache_tag(&self) -> String {
        format!("asset:{}", self.id())
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.key)
    }
}

/// The exact S3 object (version) an upload event points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Originals bucket name.
    pub bucket: String,
    /// Object key, already URL-decoded.
    pub key: String,
    /// S3 version id (`None` on an unversioned bucket).
    pub version_id: Option<String>,
    /// ETag as S3 reports it (without quotes).
    pub etag: Option<String>,
    /// Object size, bytes.
    pub size: u64,
}

impl SourceRef {
    /// The identity used to map this object to exactly one manifest version: the version id,
    /// or the ETag on an unversioned bucket.
    pub fn identity(&self) -> String {
        match (&self.version_id, &self.etag) {
            (Some(v), _) if v != "null" => v.clone(),
            (_, Some(e)) => format!("etag:{e}"),
            _ => "unversioned".to_string(),
        }
    }
}

/// Status of one version of an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Version assigned, variants being rendered.
    Rendering,
    /// All standard variants written.
    Ready,
    /// Rendering failed; the record carries the reason.
    Failed,
    /// Removed after a takedown request.
    TakenDown,
    /// Removed after an erasure request.
    Erased,
}

impl Status {
    /// The stored name (`rendering`, `ready`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Rendering => "rendering",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::TakenDown => "taken_down",
            Status::Erased => "erased",
        }
    }

    /// Whether a failure may be recorded over this status: only `rendering` and `failed`, so
    /// a late failure of a duplicate run never downgrades `ready` or a takedown.
    pub fn failure_allowed(self) -> bool {
        matches!(self, Status::Rendering | Status::Failed)
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "rendering" => Status::Rendering,
            "ready" => Status::Ready,
            "failed" => Status::Failed,
            "taken_down" => Status::TakenDown,
            "erased" => Status::Erased,
            _ => return None,
        })
    }
}

/// Facts about the original, recorded when it renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalInfo {
    /// Upright width, pixels.
    pub width: u32,
    /// Upright height, pixels.
    pub height: u32,
    /// Input format (`jpeg`, `png`, `webp`, `gif`).
    pub format: String,
}

/// One rendered variant in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantRecord {
    /// Catalogue name, e.g. `md-avif`.
    pub name: String,
    /// Derivative (object) name, e.g. `w640-q60.avif`.
    pub derivative: String,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Encoded size, bytes.
    pub bytes: u64,
    /// Resize + encode time, milliseconds.
    pub render_ms: u64,
}

/// One version of an asset as the manifest holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The asset.
    #[serde(flatten)]
    pub asset: AssetId,
    /// Version number, 1-based.
    pub version: u32,
    /// S3 version id of the original (or the ETag identity on unversioned buckets).
    pub source_version_id: String,
    /// ETag of the original.
    pub source_etag: Option<String>,
    /// Size of the original, bytes.
    pub source_bytes: u64,
    /// Current status.
    pub status: Status,
    /// Original facts, once rendered.
    pub original: Option<OriginalInfo>,
    /// The rendered variants (empty until `ready`).
    pub variants: Vec<VariantRecord>,
    /// Stable error type when failed (e.g. `ImageCorrupt`).
    pub error_type: Option<String>,
    /// Human-readable reason when failed.
    pub error: Option<String>,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
    /// RFC 3339 UTC time of the last change.
    pub updated_at: String,
}

impl VersionRecord {
    /// A fresh `rendering` record for version `version` of `asset`, from `source`.
    pub fn new(asset: &AssetId, version: u32, source: &SourceRef, now: &str) -> VersionRecord {
        VersionRecord {
            asset: asset.clone(),
            version,
            source_version_id: source.identity(),
            source_etag: source.etag.clone(),
            source_bytes: source.size,
            status: Status::Rendering,
            original: None,
            variants: Vec::new(),
            error_type: None,
            error: None,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        }
    }

    /// Makes the record `ready` with its original facts and variants (errors cleared), if
    /// [`VersionRecord::check_ready_allowed`] allows it.
    pub fn make_ready(
        &mut self,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> Result<(), ManifestError> {
        self.check_ready_allowed()?;
        self.status = Status::Ready;
        self.original = Some(original.clone());
        self.variants = variants.to_vec();
        self.error = None;
        self.error_type = None;
        self.updated_at = now.to_string();
        Ok(())
    }

    /// Makes the record `failed` with a reason when its status allows it
    /// ([`Status::failure_allowed`]); returns whether it changed.
    pub fn make_failed(&mut self, error_type: &str, reason: &str, now: &str) -> bool {
        if !self.status.failure_allowed() {
            return false;
        }
        self.status = Status::Failed;
        self.error_type = Some(error_type.to_string());
        self.error = Some(reason.to_string());
        self.updated_at = now.to_string();
        true
    }

    /// Marks the record removed (`taken_down` or `erased`) and forgets its variants: nothing
    /// of it is served or rendered again. Repeating it only moves `updated_at`.
    pub fn make_removed(&mut self, status: Status, now: &str) {
        self.status = status;
        self.variants.clear();
        self.updated_at = now.to_string();
    }

    /// Whether the record may become `ready`: from `rendering`, `failed` or `ready` (a
    /// repeat); never from `taken_down`/`erased`.
    pub fn check_ready_allowed(&self) -> Result<(), ManifestError> {
        match self.status {
            Status::Rendering | Status::Failed | Status::Ready => Ok(()),
            s => Err(ManifestError::WrongStatus {
                asset: self.asset.id(),
                version: self.version,
                status: s.as_str(),
                wanted: "rendering",
            }),
        }
    }
}

/// The result of assigning a version to an S3 object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The version record (new, or the one an earlier delivery of the same event created).
    pub record: VersionRecord,
    /// `true` when this call created the version; `false` for a repeated event.
    pub created: bool,
}

/// One page of a scan over every version record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// The records of this page, in the store's order.
    pub records: Vec<VersionRecord>,
    /// Where the next page starts; `None` after the last page. Opaque to callers.
    pub cursor: Option<String>,
}

/// One asset in a tenant's listing: its key, its latest version and that version's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetSummary {
    /// The asset key (without the tenant).
    pub key: String,
    /// The latest assigned version.
    pub version: u32,
    /// That version's status.
    pub status: Status,
}

/// One page of a tenant's assets, by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssetPage {
    /// The assets of this page, in key order (bytewise).
    pub assets: Vec<AssetSummary>,
    /// The last key of this page when more may follow (the next page starts after it).
    pub last_key: Option<String>,
}

/// Adds `rec` to the smallest-keyed `limit + 1` assets of `kept` (the latest version of each)
/// when it is `tenant`'s, its key starts with `prefix` and sorts after `after`.
fn keep_latest(
    kept: &mut std::collections::BTreeMap<String, (u32, Status)>,
    rec: &VersionRecord,
    (tenant, prefix, after, limit): (&str, &str, Option<&str>, usize),
) {
    let key = &rec.asset.key;
    if rec.asset.tenant != tenant
        || !key.starts_with(prefix)
        || after.is_some_and(|a| key.as_str() <= a)
    {
        return;
    }
    let entry = kept.entry(key.clone()).or_insert((rec.version, rec.status));
    if rec.version >= entry.0 {
        *entry = (rec.version, rec.status);
    }
    // Keys evicted from the top never come back: every key kept afterwards sorts before them.
    while kept.len() > limit + 1 {
        kept.pop_last();
    }
}

/// [`ManifestStore::list_assets`] over [`ManifestStore::scan`]: reads every version record once
/// per page, keeping at most `limit + 1` assets in memory.
pub async fn list_by_scan<M: ManifestStore + ?Sized>(
    store: &M,
    tenant: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<AssetPage, ManifestError> {
    let limit = limit.clamp(1, 1000);
    let mut kept = std::collections::BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan(cursor.as_deref(), 1000).await?;
        for rec in &page.records {
            keep_latest(&mut kept, rec, (tenant, prefix, after, limit));
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let more = kept.len() > limit;
    let assets: Vec<AssetSummary> = kept
        .into_iter()
        .take(limit)
        .map(|(key, (version, status))| AssetSummary {
            key,
            version,
            status,
        })
        .collect();
    Ok(AssetPage {
        last_key: more.then(|| assets.last().map(|a| a.key.clone())).flatten(),
        assets,
    })
}

/// Why a manifest operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The store is unreachable, throttling or failing: worth retrying.
    #[error("manifest store unavailable: {0}")]
    Unavailable(String),
    /// Concurrent writers kept winning the version counter; worth retrying later.
    #[error("version assignment for {0} kept conflicting with concurrent uploads")]
    Conflict(String),
    /// The record is missing (e.g. a render step for a version never assigned).
    #[error("no manifest record for {0}")]
    Missing(String),
    /// The record is in a state that forbids the write (e.g. taken down).
    #[error("{asset} v{version} is {status}, not {wanted}")]
    WrongStatus {
        /// `{tenant}/{key}`.
        asset: String,
        /// The version.
        version: u32,
        /// Its current status.
        status: &'static str,
        /// What the write needed.
        wanted: &'static str,
    },
    /// A stored item does not have the expected shape.
    #[error("malformed manifest item: {0}")]
    Malformed(String),
}

/// The manifest store.
pub trait ManifestStore: Send + Sync {
    /// Assigns the next version of `asset` to `source` (status `rendering`), or returns the
    /// version already assigned to the same S3 object version. N = previous + 1 per asset,
    /// and the per-asset latest pointer moves to N, atomically.
    fn assign(
        &self,
        asset: &AssetId,
        source: &SourceRef,
        now: &str,
    ) -> impl Future<Output = Result<Assignment, ManifestError>> + Send;

    /// Reads one version.
    fn get(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> impl Future<Output = Result<Option<VersionRecord>, ManifestError>> + Send;

    /// The latest assigned version of `asset`, if any.
    fn latest(
        &self,
        asset: &AssetId,
    ) -> impl Future<Output = Result<Option<u32>, ManifestError>> + Send;

    /// Marks a version `ready` with its original facts and variants. Allowed from
    /// `rendering`, `failed` and `ready` (a repeat); refused for `taken_down`/`erased`.
    fn mark_ready(
        &self,
        asset: &AssetId,
        version: u32,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> impl Future<Output = Result<VersionRecord, ManifestError>> + Send;

    /// Marks a version `failed` with a reason. Only from `rendering` or `failed`: a late
    /// failure of a duplicate run never downgrades `ready`. Returns the record as it stands.
    fn mark_failed(
        &self,
        asset: &AssetId,
        version: u32,
        error_type: &str,
        reason: &str,
        now: &str,
    ) -> impl Future<Output = Result<VersionRecord, ManifestError>> + Send;

    /// Marks every version of `asset` removed ([`VersionRecord::make_removed`]) and returns
    /// the records as they stood before, by version (empty: unknown asset, nothing written).
    /// Idempotent: a repeat returns the versions again, already removed.
    fn mark_removed(
        &self,
        asset: &AssetId,
        status: Status,
        now: &str,
    ) -> impl Future<Output = Result<Vec<VersionRecord>, ManifestError>> + Send;

    /// One page of at most `limit` (1..=1000) version records of every asset, starting at
    /// `cursor` (`None`: the first page). Used by backfills and prefix takedowns.
    fn scan(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ScanPage, ManifestError>> + Send;

    /// One page of at most `limit` (1..=1000) of `tenant`'s assets whose key starts with
    /// `prefix`, in key order, after key `after` (`None`: from the first). The default reads
    /// the whole manifest through [`ManifestStore::scan`] ([`list_by_scan`]); a store with an
    /// index by key answers from it.
    fn list_assets(
        &self,
        tenant: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<AssetPage, ManifestError>> + Send
    where
        Self: Sized,
    {
        list_by_scan(self, tenant, prefix, after, limit)
    }
}
