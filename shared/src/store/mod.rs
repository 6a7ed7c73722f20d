//! Storage ports: the narrow interfaces the domain needs, an object store (originals and
//! derivatives), a manifest store (versions and their render status) and a tenant-policy
//! store (signing keys and allowed Referers, read by whatever serves requests).
//!
//! The domain code ([`crate::pipeline`]) is generic over these traits and never sees an SDK.
//! Adapters: [`s3::S3Objects`] and [`dynamo::DynamoManifest`] (feature `aws`) for the Lambda
//! functions, [`fs::FsObjects`] for the local stack, and [`memory`] for unit tests.

pub mod fs;
pub mod manifest;
pub mod memory;

#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "aws")]
pub mod dynamo_policies;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "sts")]
pub mod scoped;
#[cfg(feature = "local")]
pub mod sqlite;

use crate::sign::TenantPolicy;
use std::future::Future;
use std::sync::Arc;

pub use manifest::{
    AssetId, AssetPage, AssetSummary, Assignment, ManifestError, ManifestStore, OriginalInfo,
    ScanPage, SourceRef, Status, VariantRecord, VersionRecord,
};

/// An object read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// Its `Content-Type`, when the store keeps one.
    pub content_type: Option<String>,
}

/// How to write an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type` header, e.g. `image/avif`.
    pub content_type: String,
    /// `Cache-Control` header served with the object.
    pub cache_control: String,
    /// Cache tag (`x-amz-meta-cache-tag`), e.g. `asset:acme/photos/beach.jpg`.
    pub cache_tag: Option<String>,
    /// An on-demand derivative (not a standard variant): the S3 adapter tags it
    /// [`ON_DEMAND_TAG_KEY`]`=`[`ON_DEMAND_TAG_VALUE`] so the derived bucket's lifecycle rule
    /// expires it; other stores ignore the flag. Standard variants are never marked.
    pub on_demand: bool,
}

/// S3 object tag key marking an on-demand derivative (template.yaml's lifecycle rule filter).
pub const ON_DEMAND_TAG_KEY: &str = "pixelfront-on-demand";

/// S3 object tag value marking an on-demand derivative.
pub const ON_DEMAND_TAG_VALUE: &str = "1";

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such object (or no such version of it).
    #[error("object not found: {0}")]
    NotFound(String),
    /// The object is larger than the caller's limit; nothing was read past the header.
    #[error("object is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Object size, bytes.
        bytes: u64,
        /// The limit, bytes.
        limit: u64,
    },
    /// The store refused the request (permissions, invalid key): retrying will not help.
    #[error("store refused the request: {0}")]
    Denied(String),
    /// The store is unreachable, throttling or failing (5xx, timeout): worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// An object store bound to one bucket (or one directory).
pub trait ObjectStore: Send + Sync {
    /// Reads `key`, the exact `version` when given (S3 version id). Objects larger than
    /// `max_bytes` fail with [`StoreError::TooLarge`] before their body is read.
    fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Object, StoreError>> + Send;

    /// Writes `body` under `key`, replacing any previous object; atomic for readers.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        opts: &PutOptions,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the current object `key` (on a versioned S3 bucket this adds a delete marker;
    /// the takedown's purge removes versions for good). Removing what is gone succeeds. Used
    /// to take back what a render wrote for a version that was removed meanwhile.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where the tenants' delivery policies live: the tenant policy table on AWS (the edge reads
/// the same JSON from CloudFront KeyValueStore), the tenants file locally.
pub trait PolicyStore: Send + Sync {
    /// The policy of `tenant`: its own entry, else the default entry
    /// ([`crate::tenants::DEFAULT_KEY`]), as at the edge. Fails when the store cannot answer,
    /// and with [`StoreError::Unavailable`] `tenant policies not loaded` when it holds neither
    /// (a fresh deploy fails closed).
    fn policy(&self, tenant: &str)
        -> impl Future<Output = Result<TenantPolicy, StoreError>> + Send;
}

// Shared handles: the local stack hands one store to both the pipeline and the transformer.

impl<T: ObjectStore> ObjectStore for Arc<T> {
    fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Object, StoreError>> + Send {
        (**self).get(key, version, max_bytes)
    }

    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        opts: &PutOptions,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put(key, body, opts)
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key)
    }
}

impl<T: ManifestStore> ManifestStore for Arc<T> {
    fn assign(
        &self,
        asset: &AssetId,
        source: &SourceRef,
        now: &str,
    ) -> impl Future<Output = Result<Assignment, ManifestError>> + Send {
        (**self).assign(asset, source, now)
    }

    fn get(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> impl Future<Output = Result<Option<VersionRecord>, ManifestError>> + Send {
        (**self).get(asset, version)
    }

    fn latest(
        &self,
        asset: &AssetId,
    ) -> impl Future<Output = Result<Option<u32>, ManifestError>> + Send {
        (**self).latest(asset)
    }

    fn mark_ready(
        &self,
        asset: &AssetId,
        version: u32,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> impl Future<Output = Result<VersionRecord, ManifestError>> + Send {
        (**self).mark_ready(asset, version, original, variants, now)
    }

    fn mark_failed(
        &self,
        asset: &AssetId,
        version: u32,
        error_type: &str,
        reason: &str,
        now: &str,
    ) -> impl Future<Output = Result<VersionRecord, ManifestError>> + Send {
        (**self).mark_failed(asset, version, error_type, reason, now)
    }

    fn mark_removed(
        &self,
        asset: &AssetId,
        status: Status,
        now: &str,
    ) -> impl Future<Output = Result<Vec<VersionRecord>, ManifestError>> + Send {
        (**self).mark_removed(asset, status, now)
    }

    fn scan(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ScanPage, ManifestError>> + Send {
        (**self).scan(cursor, limit)
    }

    fn list_assets(
        &self,
        tenant: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<AssetPage, ManifestError>> + Send {
        (**self).list_assets(tenant, prefix, after, limit)
    }
}

impl<T: PolicyStore> PolicyStore for Arc<T> {
    fn policy(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<TenantPolicy, StoreError>> + Send {
        (**self).policy(tenant)
    }
}
