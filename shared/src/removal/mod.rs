//! Takedown (DMCA) and erasure (GDPR Art. 17) of whole assets (docs/takedown.md): the steps of
//! `statemachine/takedown.asl.json`, generic over narrow ports.
//!
//! A request names a tenant and one key, a list of keys, or a key prefix (a manifest query).
//! The steps, each idempotent so that a retried or repeated step changes nothing twice:
//!
//! 1. [`begin`]: validate, claim the request id for this request (the same id for another
//!    asset or action is a [`RemovalError::Conflict`]), answer `already_done` when the request
//!    id has a finished audit record, mark every version of every asset removed in the manifest
//!    (from here on nothing of it is served or rendered), open one audit item per asset;
//! 2. [`purge`]: per asset and bucket (originals, replica, derived), list every S3 version and
//!    delete marker of exactly that asset (a delimited listing: the key `K` never reaches the
//!    objects of `K/x`), record them in the audit item, delete them, and check that nothing is
//!    left; the originals wait until no version is pending cross-region replication, and the
//!    replica is purged once more after them ([`replication`]: a copy that lands late);
//! 3. [`plan`]: the CDN invalidations, one cache tag per asset, and for an asset whose tag
//!    CloudFront cannot take the exact path of each derivative the purge removed
//!    ([`fallback_paths`]), in batches that stay inside CloudFront's in-flight limits
//!    ([`MAX_PATHS_PER_BATCH`], at the state machine's concurrency of
//!    [`INVALIDATION_CONCURRENCY`]);
//! 4. [`invalidate`]: one `CreateInvalidation` per batch; `TooManyInvalidationsInProgress` and
//!    throttling are typed errors the state machine retries, so no purge is dropped;
//! 5. [`finish`]: set the final status again, close every audit item with the end time and
//!    the invalidation ids, and write the request item that makes a repeat a no-op.

pub mod replication;
pub mod run;
pub mod task;

#[cfg(feature = "cdn")]
pub mod cloudfront;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "local")]
pub mod fs;
#[cfg(feature = "local")]
pub mod sqlite;

use crate::normalize::valid_tenant;
use crate::store::{AssetId, ManifestError, ManifestStore, Status, StoreError};
pub use replication::ReplicationState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// Paths (cache tags count as paths here, conservatively) per invalidation batch: two batches
/// in flight stay under CloudFront's 3,000 in-progress paths.
pub const MAX_PATHS_PER_BATCH: usize = 1400;
/// How many invalidation batches the state machine runs at once (its Map `MaxConcurrency`).
pub const INVALIDATION_CONCURRENCY: usize = 2;
// CloudFront's in-progress limits per distribution: 15 wildcard paths, 3,000 paths.
const _: () = assert!(INVALIDATION_CONCURRENCY * MAX_PATHS_PER_BATCH <= 3000);

/// Most assets one request may cover; larger lists are split into several requests by the CLI
/// ([`request_chunks`]). The state carries the asset list (payloads are capped at 256 KB), and
/// each asset costs about 28 history events in the purge map (a Standard execution keeps at
/// most 25,000).
pub const MAX_ASSETS_PER_REQUEST: usize = 500;

/// Most bytes of `{tenant}/{key}` one request may name in all: the asset list rides in the
/// state once (`begin.assets`), so with the version numbers and the counts it stays well under
/// the 256 KB state payload. The CLI splits longer lists ([`request_chunks`]).
pub const MAX_ASSET_BYTES_PER_REQUEST: usize = 64 * 1024;

/// Most manifest versions a request of several assets may cover: each version is a listing of
/// the derived bucket and a few audit writes, so this bounds the work and the execution's
/// history. A request for a single asset is never refused for its versions: an asset must
/// always be removable.
pub const MAX_VERSIONS_PER_REQUEST: usize = 1000;

/// CloudFront's longest cache tag, characters. A longer `asset:{tenant}/{key}` (keys may be
/// 512 bytes) is never indexed by CloudFront, so it is not sent as a tag item; the exact paths
/// of the asset's derivatives purge it ([`fallback_paths`]).
pub const MAX_TAG_CHARS: usize = 256;

/// Why a removal step failed. [`RemovalError::error_type`] is the Lambda `errorType` the state
/// machine matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemovalError {
    /// The request is malformed: nothing was changed. Permanent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No named asset (or none under the prefix) is in the manifest. Permanent.
    #[error("no asset matches: {0}")]
    NotFound(String),
    /// An object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest failed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The CDN refused or failed an invalidation.
    #[error(transparent)]
    Cdn(#[from] CdnError),
    /// The audit store failed.
    #[error("audit store: {0}")]
    Audit(String),
    /// Objects were still listed after their deletion (e.g. a concurrent upload): retried.
    #[error("{0} object version(s) remain after the purge of {1}")]
    PurgeIncomplete(usize, String),
    /// Versions of the original were still pending cross-region replication after the last
    /// check: nothing of it was deleted (its copy could land in the replica after the purge).
    #[error("{0} version(s) still pending replication: {1}")]
    ReplicationPending(usize, String),
    /// The request id already names another request (other assets or another action): nothing
    /// was changed. Permanent: use a new request id.
    #[error("request id conflict: {0}")]
    Conflict(String),
}

impl RemovalError {
    /// The stable error name for the state machine's `Retry`/`Catch`.
    pub fn error_type(&self) -> &'static str {
        match self {
            RemovalError::InvalidRequest(_) => "InvalidRequest",
            RemovalError::NotFound(_) => "NotFound",
            RemovalError::Store(StoreError::Denied(_)) => "StoreDenied",
            RemovalError::Store(_) => "StoreUnavailable",
            RemovalError::Manifest(_) => "ManifestUnavailable",
            RemovalError::Cdn(CdnError::TooManyInProgress(_)) => "TooManyInvalidationsInProgress",
            RemovalError::Cdn(CdnError::Throttled(_)) => "Throttling",
            RemovalError::Cdn(CdnError::Denied(_)) => "CdnDenied",
            RemovalError::Cdn(CdnError::Unavailable(_)) => "CdnUnavailable",
            RemovalError::Audit(_) => "AuditUnavailable",
            RemovalError::PurgeIncomplete(..) => "PurgeIncomplete",
            RemovalError::ReplicationPending(..) => "ReplicationPending",
            RemovalError::Conflict(_) => "RequestIdConflict",
        }
    }
}

/// Why the CDN did not take an invalidation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdnError {
    /// Too many invalidations in progress on the distribution: retry later.
    #[error("too many invalidations in progress: {0}")]
    TooManyInProgress(String),
    /// Request rate exceeded: retry later.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Refused (permissions, unknown distribution, malformed batch): retrying will not help.
    #[error("refused: {0}")]
    Denied(String),
    /// Unreachable or failing: retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Takedown or erasure: decides the final manifest status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// DMCA or tenant request: status `taken_down`.
    Takedown,
    /// GDPR Art. 17: status `erased`.
    Erase,
}

impl Action {
    /// The manifest status this action leaves.
    pub fn status(self) -> Status {
        match self {
            Action::Takedown => Status::TakenDown,
            Action::Erase => Status::Erased,
        }
    }
}

/// Why the content is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A DMCA notice.
    Dmca,
    /// A GDPR erasure request.
    Gdpr,
    /// The tenant asked.
    Tenant,
}

/// The state machine's execution input, as sent by `pixelfront takedown|erase`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalInput {
    /// Tenant id.
    pub tenant: Option<String>,
    /// One key (without the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Several keys of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Every asset of the tenant whose key starts with this (a manifest query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `dmca`, `gdpr` or `tenant`.
    pub reason: Option<String>,
    /// Who asked (free text, e.g. an e-mail address or ticket).
    pub requester: Option<String>,
    /// `takedown` or `erase`; default `erase` for `gdpr`, else `takedown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// One asset of a request and its manifest versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetVersions {
    /// Tenant id.
    pub tenant: String,
    /// Key.
    pub key: String,
    /// Manifest versions (possibly none: an original that never became a version).
    pub versions: Vec<u32>,
}

impl AssetVersions {
    /// The asset id.
    pub fn asset(&self) -> AssetId {
        AssetId {
            tenant: self.tenant.clone(),
            key: self.key.clone(),
        }
    }
}

/// The output of [`begin`], carried through the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begun {
    /// Request id (the execution name).
    pub request_id: String,
    /// What is done.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Who asked.
    pub requester: String,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// `true` when this request id already finished: nothing else runs.
    pub already_done: bool,
    /// The assets (empty when already done).
    pub assets: Vec<AssetVersions>,
}

/// Which bucket a purge step empties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The originals bucket (every version and delete marker of the key).
    Originals,
    /// The originals' cross-region replica.
    Replica,
    /// The derived bucket (every derivative of every version).
    Derived,
}

impl Target {
    /// Name of the audit attribute listing this target's deletions.
    pub fn audit_attribute(self) -> &'static str {
        match self {
            Target::Originals => "deleted_originals",
            Target::Replica => "deleted_replica",
            Target::Derived => "deleted_derivatives",
        }
    }
}

/// One S3 object version or delete marker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// Object key.
    pub key: String,
    /// S3 version id (`None` or `"null"` on an unversioned bucket).
    pub version_id: Option<String>,
    /// `true` for a delete marker.
    pub delete_marker: bool,
}

/// One deleted object version, as the audit record lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Deleted {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// S3 version id.
    pub version_id: Option<String>,
    /// `true` for a delete marker.
    pub delete_marker: bool,
}

/// The output of [`purge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    /// Which bucket.
    pub target: Target,
    /// `{tenant}/{key}`.
    pub asset: String,
    /// How many versions and delete markers were deleted (the list is in the audit item).
    pub deleted: usize,
    /// `true` when the target is not configured (no replica): nothing to do.
    #[serde(default)]
    pub skipped: bool,
    /// Originals only: versions still pending cross-region replication. When non-zero nothing
    /// was deleted; check again after `wait_seconds`.
    #[serde(default)]
    pub pending: usize,
    /// Originals only: the replication checks made so far, this one included.
    #[serde(default)]
    pub checks: u32,
    /// Originals only: seconds to wait before the next check (0 when nothing is pending).
    #[serde(default)]
    pub wait_seconds: u64,
}

/// What a batch invalidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Cache tags `#asset:{tenant}/{key}` (the distribution's `CacheTagConfig`).
    Tags,
    /// Exact derivative paths `/{tenant}/v{N}/{key}/{derivative}`, the fallback for an asset
    /// whose tag CloudFront cannot take.
    Paths,
}

/// One `CreateInvalidation` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Caller reference: `{request_id}-{index}`, so a retried call is the same invalidation.
    pub caller_reference: String,
    /// Tags or paths.
    pub kind: BatchKind,
    /// The items.
    pub paths: Vec<String>,
}

/// A batch as the state machine carries it: its place in the plan, not its paths (the
/// `invalidate` step builds the batch again from the asset list, so the state stays small
/// however many paths a request purges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    /// Index in [`plan`]'s output (0-based).
    pub index: usize,
    /// Tags or paths.
    pub kind: BatchKind,
    /// How many items the batch holds.
    pub paths: usize,
}

impl From<(usize, &Batch)> for BatchRef {
    fn from((index, b): (usize, &Batch)) -> Self {
        BatchRef {
            index,
            kind: b.kind,
            paths: b.paths.len(),
        }
    }
}

/// A created invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    /// CloudFront invalidation id.
    pub id: String,
    /// Its status (`InProgress`, `Completed`).
    pub status: String,
    /// `true` once completed.
    pub done: bool,
    /// The caller reference it was created with.
    pub caller_reference: String,
    /// How many items it holds.
    pub paths: usize,
}

impl Invalidation {
    /// An invalidation already completed when created (a CDN that purges at once): status
    /// `Completed`, `paths` items.
    pub fn completed(id: String, caller_reference: &str, paths: usize) -> Invalidation {
        Invalidation {
            id,
            status: "Completed".to_string(),
            done: true,
            caller_reference: caller_reference.to_string(),
            paths,
        }
    }
}

/// The summary [`finish`] returns and stores as the request item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Request id.
    pub request_id: String,
    /// What was done.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Who asked.
    pub requester: String,
    /// `{tenant}/{key}` of every asset.
    pub assets: Vec<String>,
    /// Object versions and delete markers deleted, all buckets.
    pub deleted: usize,
    /// Every invalidation id.
    pub invalidation_ids: Vec<String>,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end.
    pub finished_at: String,
}

/// The audit record of one asset in one request: what was removed and when.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Request id.
    pub request_id: String,
    /// `takedown` or `erase`.
    pub action: String,
    /// `dmca`, `gdpr` or `tenant`.
    pub reason: String,
    /// Who asked.
    pub requester: String,
    /// Tenant.
    pub tenant: String,
    /// Key.
    pub key: String,
    /// `in_progress`, then `taken_down` or `erased`.
    pub status: String,
    /// Manifest versions removed.
    pub versions: Vec<u32>,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end (absent while in progress).
    pub finished_at: Option<String>,
    /// Deleted versions and delete markers of the original.
    pub deleted_originals: Vec<Deleted>,
    /// Deleted versions and delete markers of the replica.
    pub deleted_replica: Vec<Deleted>,
    /// Deleted derivatives.
    pub deleted_derivatives: Vec<Deleted>,
    /// CloudFront invalidation ids.
    pub invalidation_ids: Vec<String>,
}

/// How far a listing reaches below its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every key that starts with the prefix (S3 without a delimiter).
    Deep,
    /// Only the keys with no `/` after the prefix (S3 with the delimiter `/`): the derivatives
    /// listed under `{tenant}/v{N}/K/` are `K`'s, never those of `K/x`.
    Delimited,
}

/// A bucket whose object versions can be listed and deleted (S3 with versioning).
pub trait VersionedStore: Send + Sync {
    /// The bucket's name, for the audit record.
    fn bucket_name(&self) -> &str;

    /// Every version and delete marker whose key starts with `prefix`, as deep as `listing`
    /// says.
    fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> impl Future<Output = Result<Vec<ObjectVersion>, StoreError>> + Send;

    /// Deletes one version (or delete marker) for good; deleting what is gone succeeds.
    fn delete_version(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The replication state of one version (S3: `HeadObject` with the version id, its
    /// `x-amz-replication-status`). A store that does not replicate answers
    /// [`ReplicationState::None`].
    fn replication(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<ReplicationState, StoreError>> + Send {
        let _ = (key, version_id);
        async { Ok(ReplicationState::None) }
    }
}

/// The CDN in front of the derived bucket.
pub trait Cdn: Send + Sync {
    /// Creates one invalidation of `paths` (paths, or `#tag` items).
    fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> impl Future<Output = Result<Invalidation, CdnError>> + Send;

    /// The status of invalidation `id`.
    fn invalidation(&self, id: &str)
        -> impl Future<Output = Result<Invalidation, CdnError>> + Send;
}

/// Where audit records live (a DynamoDB table on AWS).
pub trait AuditStore: Send + Sync {
    /// Claims `request_id` for the request `fingerprint` ([`Validated::fingerprint`]) unless
    /// it is claimed already, atomically (of concurrent claims exactly one is stored), and
    /// returns the stored fingerprint: `fingerprint` itself when the id is new or names the
    /// same request.
    fn claim(
        &self,
        request_id: &str,
        fingerprint: &str,
    ) -> impl Future<Output = Result<String, RemovalError>> + Send;

    /// The summary of request `request_id` if it finished.
    fn finished(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Summary>, RemovalError>> + Send;

    /// Creates (or keeps) the asset's record of this request, status `in_progress`.
    fn open(&self, record: &AuditRecord) -> impl Future<Output = Result<(), RemovalError>> + Send;

    /// Appends deletions of `target` to the asset's record of `request_id`.
    fn append_deleted(
        &self,
        asset: &AssetId,
        request_id: &str,
        target: Target,
        deleted: &[Deleted],
    ) -> impl Future<Output = Result<(), RemovalError>> + Send;

    /// Closes the asset's record: final status, end time, invalidation ids.
    fn close(
        &self,
        asset: &AssetId,
        request_id: &str,
        status: Status,
        finished_at: &str,
        invalidation_ids: &[String],
    ) -> impl Future<Output = Result<(), RemovalError>> + Send;

    /// Stores the request summary unless one exists; returns the stored one.
    fn put_finished(
        &self,
        summary: &Summary,
    ) -> impl Future<Output = Result<Summary, RemovalError>> + Send;

    /// Every record about `asset`, oldest first, deletions deduplicated.
    fn records(
        &self,
        asset: &AssetId,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, RemovalError>> + Send;
}

// Shared handles: the local stack hands one SQLite file to the manifest and the audit ports.

impl<T: VersionedStore> VersionedStore for Arc<T> {
    fn bucket_name(&self) -> &str {
        (**self).bucket_name()
    }

    fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> impl Future<Output = Result<Vec<ObjectVersion>, StoreError>> + Send {
        (**self).list_versions(prefix, listing)
    }

    fn delete_version(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_version(key, version_id)
    }

    fn replication(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<ReplicationState, StoreError>> + Send {
        (**self).replication(key, version_id)
    }
}

impl<T: Cdn> Cdn for Arc<T> {
    fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> impl Future<Output = Result<Invalidation, CdnError>> + Send {
        (**self).invalidate(caller_reference, paths)
    }

    fn invalidation(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Invalidation, CdnError>> + Send {
        (**self).invalidation(id)
    }
}

impl<T: AuditStore> AuditStore for Arc<T> {
    fn claim(
        &self,
        request_id: &str,
        fingerprint: &str,
    ) -> impl Future<Output = Result<String, RemovalError>> + Send {
        (**self).claim(request_id, fingerprint)
    }

    fn finished(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Summary>, RemovalError>> + Send {
        (**self).finished(request_id)
    }

    fn open(&self, record: &AuditRecord) -> impl Future<Output = Result<(), RemovalError>> + Send {
        (**self).open(record)
    }

    fn append_deleted(
        &self,
        asset: &AssetId,
        request_id: &str,
        target: Target,
        deleted: &[Deleted],
    ) -> impl Future<Output = Result<(), RemovalError>> + Send {
        (**self).append_deleted(asset, request_id, target, deleted)
    }

    fn close(
        &self,
        asset: &AssetId,
        request_id: &str,
        status: Status,
        finished_at: &str,
        invalidation_ids: &[String],
    ) -> impl Future<Output = Result<(), RemovalError>> + Send {
        (**self).close(asset, request_id, status, finished_at, invalidation_ids)
    }

    fn put_finished(
        &self,
        summary: &Summary,
    ) -> impl Future<Output = Result<Summary, RemovalError>> + Send {
        (**self).put_finished(summary)
    }

    fn records(
        &self,
        asset: &AssetId,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, RemovalError>> + Send {
        (**self).records(asset)
    }
}

/// Request ids are execution names: 1..=80 of `[A-Za-z0-9_-]`.
pub fn valid_request_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A request validated: who, why, what, and the assets named (before any prefix query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// What is done.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Who asked.
    pub requester: String,
    /// Tenant.
    pub tenant: String,
    /// Named keys (empty with a prefix).
    pub keys: Vec<String>,
    /// The prefix of a manifest query.
    pub prefix: Option<String>,
}

impl Validated {
    /// What the request removes, as the request id's claim stores it: the action, the tenant
    /// and the sorted keys or the prefix, as JSON (who asked and why may be restated).
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "action": action_name(self.action),
            "tenant": self.tenant,
            "keys": self.keys,
            "prefix": self.prefix,
        })
        .to_string()
    }
}

/// The conflict of a request id claimed by `stored` for a request `fingerprint`.
fn conflict(request_id: &str, stored: &str, fingerprint: &str) -> RemovalError {
    let short = |s: &str| -> String {
        let mut end = s.len().min(300);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if end < s.len() {
            format!("{}…", &s[..end])
        } else {
            s.to_string()
        }
    };
    RemovalError::Conflict(format!(
        "request id {request_id} already names another request ({}), not this one ({}): \
         use a new request id",
        short(stored),
        short(fingerprint)
    ))
}

/// Checks a request; the error says what is wrong, in one line.
pub fn validate(input: &RemovalInput) -> Result<Validated, RemovalError> {
    let bad = |m: &str| Err(RemovalError::InvalidRequest(m.to_string()));
    let reason = match input.reason.as_deref().map(str::trim) {
        Some("dmca") => Reason::Dmca,
        Some("gdpr") => Reason::Gdpr,
        Some("tenant") => Reason::Tenant,
        Some(other) => {
            return Err(RemovalError::InvalidRequest(format!(
                "reason {other:?} is not one of dmca, gdpr, tenant"
            )))
        }
        None => return bad("reason required (dmca, gdpr or tenant)"),
    };
    let action = match input.action.as_deref() {
        None if reason == Reason::Gdpr => Action::Erase,
        None | Some("takedown") => Action::Takedown,
        Some("erase") => Action::Erase,
        Some(other) => {
            return Err(RemovalError::InvalidRequest(format!(
                "action {other:?} is not takedown or erase"
            )))
        }
    };
    let requester = match input.requester.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 256 => r.to_string(),
        Some(r) if !r.is_empty() => return bad("requester over 256 bytes"),
        _ => return bad("requester required (who asked: an e-mail address or a ticket)"),
    };
    let Some(tenant) = input.tenant.as_deref() else {
        return bad("tenant required");
    };
    let mut keys: Vec<String> = input.key.iter().cloned().collect();
    keys.extend(input.keys.iter().flatten().cloned());
    let prefix = input.prefix.clone();
    match (keys.is_empty(), &prefix) {
        (true, None) => return bad("key, keys or prefix required"),
        (false, Some(_)) => return bad("give keys or a prefix, not both"),
        _ => {}
    }
    if keys.len() > MAX_ASSETS_PER_REQUEST {
        return Err(RemovalError::InvalidRequest(format!(
            "{} keys, over {MAX_ASSETS_PER_REQUEST} per request: split the list",
            keys.len()
        )));
    }
    let bytes = asset_bytes(tenant, &keys);
    if bytes > MAX_ASSET_BYTES_PER_REQUEST {
        return Err(RemovalError::InvalidRequest(format!(
            "the keys take {bytes} bytes, over {MAX_ASSET_BYTES_PER_REQUEST} per request: \
             split the list"
        )));
    }
    if !valid_tenant(tenant) {
        return Err(RemovalError::InvalidRequest(format!(
            "tenant {tenant:?} is not a tenant id ([a-z0-9][a-z0-9-]{{0,62}})"
        )));
    }
    // Any stored key may be removed, even one the URL grammar cannot serve (an erasure must
    // reach every upload): only empty, oversize and control-character keys are refused.
    for key in keys.iter().chain(prefix.iter()) {
        if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
            return Err(RemovalError::InvalidRequest(format!(
                "key {key:?} must be 1-1024 bytes without control characters"
            )));
        }
    }
    keys.sort();
    keys.dedup();
    Ok(Validated {
        action,
        reason,
        requester,
        tenant: tenant.to_string(),
        keys,
        prefix,
    })
}

/// Bytes of `{tenant}/{key}`, as [`MAX_ASSET_BYTES_PER_REQUEST`] counts them.
fn asset_cost(tenant: &str, key: &str) -> usize {
    tenant.len() + 1 + key.len()
}

/// Bytes of `{tenant}/{key}` over `keys`, as [`MAX_ASSET_BYTES_PER_REQUEST`] counts them.
pub fn asset_bytes(tenant: &str, keys: &[String]) -> usize {
    keys.iter().map(|k| asset_cost(tenant, k)).sum()
}

/// Splits `items`, in order, into runs of at most `max_items` items and `max_bytes` of
/// `cost` each (an item costing more than `max_bytes` gets a run of its own). Deterministic:
/// the same items always give the same runs.
pub fn runs_within<T>(
    items: impl IntoIterator<Item = T>,
    max_items: usize,
    max_bytes: usize,
    cost: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let c = cost(&item);
        if !current.is_empty() && (current.len() == max_items || bytes + c > max_bytes) {
            runs.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(item);
        bytes += c;
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Splits one tenant's keys (sorted, deduplicated) into request-sized lists: at most
/// [`MAX_ASSETS_PER_REQUEST`] keys and [`MAX_ASSET_BYTES_PER_REQUEST`] bytes each, in order.
/// The same keys always give the same lists, so a repeated request id finds the same requests.
pub fn request_chunks(tenant: &str, keys: &[String]) -> Vec<Vec<String>> {
    runs_within(
        keys.iter().cloned(),
        MAX_ASSETS_PER_REQUEST,
        MAX_ASSET_BYTES_PER_REQUEST,
        |k: &String| asset_cost(tenant, k),
    )
}

/// Step 1: validate, short-circuit a finished request, resolve the assets, mark the manifest
/// and open the audit records.
pub async fn begin<M: ManifestStore, A: AuditStore>(
    manifest: &M,
    audit: &A,
    request_id: &str,
    input: &RemovalInput,
    now: &str,
) -> Result<Begun, RemovalError> {
    if !valid_request_id(request_id) {
        return Err(RemovalError::InvalidRequest(format!(
            "request id {request_id:?} must be 1-80 of [A-Za-z0-9_-]"
        )));
    }
    let v = validate(input)?;
    let mut begun = Begun {
        request_id: request_id.to_string(),
        action: v.action,
        reason: v.reason,
        requester: v.requester.clone(),
        started_at: now.to_string(),
        already_done: false,
        assets: Vec::new(),
    };
    let fingerprint = v.fingerprint();
    let stored = audit.claim(request_id, &fingerprint).await?;
    if stored != fingerprint {
        return Err(conflict(request_id, &stored, &fingerprint));
    }
    if let Some(done) = audit.finished(request_id).await? {
        begun.already_done = true;
        begun.started_at = done.started_at;
        return Ok(begun);
    }
    // Before anything changes: each asset's latest version (versions are numbered
    // 1..=latest), from the prefix query's scan or one read per named key.
    let latest: Vec<(String, Option<u32>)> = match &v.prefix {
        None => {
            let mut latest = Vec::with_capacity(v.keys.len());
            for key in &v.keys {
                let asset = AssetId {
                    tenant: v.tenant.clone(),
                    key: key.clone(),
                };
                latest.push((key.clone(), manifest.latest(&asset).await?));
            }
            latest
        }
        Some(prefix) => {
            let found = keys_with_prefix(manifest, &v.tenant, prefix).await?;
            if found.is_empty() {
                return Err(RemovalError::NotFound(format!("{}/{prefix}*", v.tenant)));
            }
            let keys: Vec<String> = found.keys().cloned().collect();
            let bytes = asset_bytes(&v.tenant, &keys);
            if keys.len() > MAX_ASSETS_PER_REQUEST || bytes > MAX_ASSET_BYTES_PER_REQUEST {
                return Err(RemovalError::InvalidRequest(format!(
                    "{} assets ({bytes} bytes of keys) match {}/{prefix}, over \
                     {MAX_ASSETS_PER_REQUEST} assets or {MAX_ASSET_BYTES_PER_REQUEST} bytes per \
                     request: use longer prefixes",
                    keys.len(),
                    v.tenant
                )));
            }
            found.into_iter().map(|(k, n)| (k, Some(n))).collect()
        }
    };
    // A typo must not "succeed": at least one named key must be in the manifest. Named assets
    // without a version (an upload never processed) are still purged with the rest.
    if latest.iter().all(|(_, n)| n.is_none()) {
        return Err(RemovalError::NotFound(format!(
            "{}/{} (no manifest version)",
            v.tenant,
            v.keys.join(", ")
        )));
    }
    let versions: usize = latest
        .iter()
        .filter_map(|(_, n)| *n)
        .map(|n| n as usize)
        .sum();
    let keys: Vec<String> = latest.into_iter().map(|(k, _)| k).collect();
    if keys.len() > 1 && versions > MAX_VERSIONS_PER_REQUEST {
        return Err(RemovalError::InvalidRequest(format!(
            "the {} assets have {versions} versions, over {MAX_VERSIONS_PER_REQUEST} per request: \
             split the list",
            keys.len()
        )));
    }
    for key in keys {
        let asset = AssetId {
            tenant: v.tenant.clone(),
            key,
        };
        let before = manifest
            .mark_removed(&asset, v.action.status(), now)
            .await?;
        let versions: Vec<u32> = before.iter().map(|r| r.version).collect();
        audit
            .open(&AuditRecord {
                request_id: request_id.to_string(),
                action: action_name(v.action).to_string(),
                reason: reason_name(v.reason).to_string(),
                requester: v.requester.clone(),
                tenant: asset.tenant.clone(),
                key: asset.key.clone(),
                status: "in_progress".to_string(),
                versions: versions.clone(),
                started_at: now.to_string(),
                ..AuditRecord::default()
            })
            .await?;
        begun.assets.push(AssetVersions {
            tenant: asset.tenant,
            key: asset.key,
            versions,
        });
    }
    Ok(begun)
}

/// The keys of `tenant` starting with `prefix`, each with its highest version, from a scan of
/// the manifest.
async fn keys_with_prefix<M: ManifestStore>(
    manifest: &M,
    tenant: &str,
    prefix: &str,
) -> Result<BTreeMap<String, u32>, RemovalError> {
    let mut keys: BTreeMap<String, u32> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = manifest.scan(cursor.as_deref(), 1000).await?;
        for r in page.records {
            if r.asset.tenant == tenant && r.asset.key.starts_with(prefix) {
                let latest = keys.entry(r.asset.key).or_insert(r.version);
                *latest = (*latest).max(r.version);
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(keys)
}

/// `takedown` / `erase`.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Takedown => "takedown",
        Action::Erase => "erase",
    }
}

/// `dmca` / `gdpr` / `tenant`.
pub fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::Dmca => "dmca",
        Reason::Gdpr => "gdpr",
        Reason::Tenant => "tenant",
    }
}

/// Step 2: deletes every version and delete marker of the asset in one bucket (`store` is
/// `None` for an unconfigured replica), recording each in the audit item before deleting it,
/// then lists again to prove nothing is left. Exact: the original is the key itself (not
/// `{key}.bak`, not `{key}/x`), the derivatives of version N are the objects directly under
/// `{tenant}/v{N}/{key}/` (derivative names never contain `/`), both listed with the
/// delimiter `/`.
///
/// `gate` (the originals of a replicated bucket): the number of replication checks made
/// before this one. Then nothing is deleted while a listed version is pending replication: the
/// result counts the pending versions and the wait before the next check, and the last check
/// allowed fails with [`RemovalError::ReplicationPending`] ([`replication`]). A version that
/// appears after the listing is found by the listing after the deletions
/// ([`RemovalError::PurgeIncomplete`], retried), so no version is deleted unchecked.
pub async fn purge<S: VersionedStore, A: AuditStore>(
    store: Option<&S>,
    audit: &A,
    request_id: &str,
    target: Target,
    asset: &AssetVersions,
    gate: Option<u32>,
) -> Result<Purged, RemovalError> {
    let id = asset.asset();
    let checks = gate.map_or(0, |c| c.saturating_add(1));
    let mut out = Purged {
        target,
        asset: id.id(),
        deleted: 0,
        skipped: false,
        pending: 0,
        checks,
        wait_seconds: 0,
    };
    let Some(store) = store else {
        out.skipped = true;
        return Ok(out);
    };
    let prefixes: Vec<String> = match target {
        Target::Originals | Target::Replica => vec![id.id()],
        Target::Derived => asset
            .versions
            .iter()
            .map(|&n| format!("{}/", id.version_prefix(n)))
            .collect(),
    };
    let exact = matches!(target, Target::Originals | Target::Replica);
    let list = |prefix: String| async move {
        let mut found = store.list_versions(&prefix, Listing::Delimited).await?;
        // The originals' listing by prefix also returns longer keys (`a.jpg.bak`).
        if exact {
            found.retain(|v| v.key == prefix);
        }
        Ok::<_, RemovalError>(found)
    };
    for prefix in prefixes {
        let found = list(prefix.clone()).await?;
        if found.is_empty() {
            continue;
        }
        if gate.is_some() {
            let pending = replication::pending_versions(store, &found).await?;
            if pending > 0 {
                if checks >= replication::MAX_REPLICATION_CHECKS {
                    return Err(replication::still_pending(pending, &out.asset, checks));
                }
                out.pending = pending;
                out.wait_seconds = replication::replication_wait(checks);
                return Ok(out);
            }
        }
        let records: Vec<Deleted> = found
            .iter()
            .map(|v| Deleted {
                bucket: store.bucket_name().to_string(),
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                delete_marker: v.delete_marker,
            })
            .collect();
        audit
            .append_deleted(&id, request_id, target, &records)
            .await?;
        for v in &found {
            store
                .delete_version(&v.key, v.version_id.as_deref())
                .await?;
        }
        out.deleted += found.len();
        let left = list(prefix.clone()).await?;
        if !left.is_empty() {
            return Err(RemovalError::PurgeIncomplete(left.len(), prefix));
        }
    }
    Ok(out)
}

/// The cache tag of an asset as an invalidation item: `#asset:{tenant}/{key}`.
pub fn tag_path(asset: &AssetId) -> String {
    format!("#{}", asset.cache_tag())
}

/// Whether CloudFront takes the asset's cache tag (at most [`MAX_TAG_CHARS`] characters).
pub fn taggable(asset: &AssetId) -> bool {
    asset.cache_tag().chars().count() <= MAX_TAG_CHARS
}

/// The invalidation path of a derived object key, as the cache key sees it (the
/// viewer-request function rewrites the URI to the derivative key): `/{key}`, each byte
/// outside `[A-Za-z0-9._~/-]` percent-encoded (such keys are never served, so never cached,
/// but the path must still be valid).
pub fn derivative_path(derived_key: &str) -> String {
    let mut out = String::with_capacity(derived_key.len() + 1);
    out.push('/');
    for b in derived_key.bytes() {
        if b.is_ascii_alphanumeric() || b"._~/-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The fallback of the CDN purge: for each asset whose tag CloudFront cannot take, the exact
/// path of every derivative this request's purge removed (from the asset's audit record),
/// sorted and deduplicated. Empty (and no read) when every tag fits. Read after the purge
/// finished, it gives the same paths every time, so `invalidate` can rebuild a batch.
pub async fn fallback_paths<A: AuditStore>(
    audit: &A,
    request_id: &str,
    assets: &[AssetVersions],
) -> Result<Vec<String>, RemovalError> {
    let mut paths = Vec::new();
    for a in assets {
        let id = a.asset();
        if taggable(&id) {
            continue;
        }
        for record in audit.records(&id).await? {
            if record.request_id == request_id {
                paths.extend(
                    record
                        .deleted_derivatives
                        .iter()
                        .map(|d| derivative_path(&d.key)),
                );
            }
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Step 3: the invalidation batches of a request: every asset's tag that CloudFront takes,
/// then the exact `paths` of [`fallback_paths`], in batches of at most
/// [`MAX_PATHS_PER_BATCH`] items. Caller references are `{request_id}-{index}`.
/// Deterministic: the same request, assets and paths always give the same batches, which is
/// what lets `invalidate` rebuild one from its index.
pub fn plan(request_id: &str, assets: &[AssetVersions], paths: &[String]) -> Vec<Batch> {
    let tags: Vec<String> = assets
        .iter()
        .map(AssetVersions::asset)
        .filter(taggable)
        .map(|id| tag_path(&id))
        .collect();
    let mut batches = Vec::new();
    for (kind, items) in [(BatchKind::Tags, &tags[..]), (BatchKind::Paths, paths)] {
        for chunk in items.chunks(MAX_PATHS_PER_BATCH) {
            batches.push(Batch {
                caller_reference: format!("{request_id}-{}", batches.len()),
                kind,
                paths: chunk.to_vec(),
            });
        }
    }
    batches
}

/// Step 3 as the state carries it: one [`BatchRef`] per batch of [`plan`].
pub fn plan_refs(request_id: &str, assets: &[AssetVersions], paths: &[String]) -> Vec<BatchRef> {
    plan(request_id, assets, paths)
        .iter()
        .enumerate()
        .map(BatchRef::from)
        .collect()
}

/// Step 4: creates the invalidation of batch `index` of the request's [`plan`].
pub async fn invalidate<C: Cdn>(
    cdn: &C,
    request_id: &str,
    assets: &[AssetVersions],
    paths: &[String],
    index: usize,
) -> Result<Invalidation, RemovalError> {
    let batches = plan(request_id, assets, paths);
    let Some(batch) = batches.get(index) else {
        return Err(RemovalError::InvalidRequest(format!(
            "invalidation batch {index} of a plan of {}",
            batches.len()
        )));
    };
    Ok(cdn
        .invalidate(&batch.caller_reference, &batch.paths)
        .await?)
}

/// Step 5: sets the final status again (a version assigned meanwhile is caught too), closes
/// every audit item and stores the request summary; a repeat returns the stored summary.
/// `deleted` is the sum of the purge steps' counts.
pub async fn finish<M: ManifestStore, A: AuditStore>(
    manifest: &M,
    audit: &A,
    begun: &Begun,
    deleted: usize,
    invalidations: &[Invalidation],
    now: &str,
) -> Result<Summary, RemovalError> {
    if let Some(done) = audit.finished(&begun.request_id).await? {
        return Ok(done);
    }
    let status = begun.action.status();
    let ids: Vec<String> = invalidations.iter().map(|i| i.id.clone()).collect();
    for a in &begun.assets {
        let asset = a.asset();
        manifest.mark_removed(&asset, status, now).await?;
        audit
            .close(&asset, &begun.request_id, status, now, &ids)
            .await?;
    }
    let summary = Summary {
        request_id: begun.request_id.clone(),
        action: begun.action,
        reason: begun.reason,
        requester: begun.requester.clone(),
        assets: begun.assets.iter().map(|a| a.asset().id()).collect(),
        deleted,
        invalidation_ids: ids,
        started_at: begun.started_at.clone(),
        finished_at: now.to_string(),
    };
    audit.put_finished(&summary).await
}

pub mod memory;
pub mod memory_crr;

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod late_replica;
#[cfg(test)]
mod tests;
