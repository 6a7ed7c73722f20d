//! In-memory adapters of both ports, for unit tests of the pipeline and as the reference
//! semantics the real adapters must match.

use super::manifest::*;
use super::{Object, ObjectStore, PolicyStore, PutOptions, StoreError};
use crate::sign::TenantPolicy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A stored object with its write options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Bytes.
    pub bytes: Vec<u8>,
    /// Options it was written with (`None` for objects seeded with [`MemoryObjects::insert`]).
    pub opts: Option<PutOptions>,
}

/// An object store in a `HashMap`, keyed by (key, version id).
#[derive(Debug, Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<(String, Option<String>), StoredObject>>,
    failures: AtomicUsize,
}

impl MemoryObjects {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds an object (an upload), optionally under a version id.
    pub fn insert(&self, key: &str, version: Option<&str>, bytes: Vec<u8>) {
        self.lock().insert(
            (key.to_string(), version.map(str::to_string)),
            StoredObject { bytes, opts: None },
        );
    }

    /// Makes the next `n` operations fail with [`StoreError::Unavailable`].
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// The object at `key` (unversioned writes), if any.
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.lock().get(&(key.to_string(), None)).cloned()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().keys().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Option<String>), StoredObject>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn injected_failure(&self) -> Result<(), StoreError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        Ok(())
    }
}

impl ObjectStore for MemoryObjects {
    async fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, StoreError> {
        self.injected_failure()?;
        let found = self
            .lock()
            .get(&(key.to_string(), version.map(str::to_string)))
            .cloned();
        let obj = found.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        if obj.bytes.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                bytes: obj.bytes.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(Object {
            content_type: obj.opts.as_ref().map(|o| o.content_type.clone()),
            bytes: obj.bytes,
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, opts: &PutOptions) -> Result<(), StoreError> {
        self.injected_failure()?;
        self.lock().insert(
            (key.to_string(), None),
            StoredObject {
                bytes: body,
                opts: Some(opts.clone()),
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.injected_failure()?;
        self.lock().remove(&(key.to_string(), None));
        Ok(())
    }
}

/// A derived store that takes `asset` down in `manifest` right after each write: the race of
/// a takedown with a render in flight, for tests (the takedown marks the manifest and its
/// purge has already listed the prefix when the render's objects land).
#[derive(Debug)]
pub struct RemovingObjects<M> {
    /// Where the objects go (shared, so a test can look at it afterwards).
    pub inner: std::sync::Arc<MemoryObjects>,
    /// The manifest the takedown marks.
    pub manifest: M,
    /// The asset taken down.
    pub asset: AssetId,
}

impl<M: ManifestStore> ObjectStore for RemovingObjects<M> {
    async fn get(&self, key: &str, version: Option<&str>, max: u64) -> Result<Object, StoreError> {
        self.inner.get(key, version, max).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, opts: &PutOptions) -> Result<(), StoreError> {
        self.inner.put(key, body, opts).await?;
        self.manifest
            .mark_removed(&self.asset, Status::TakenDown, "2026-12-06T00:00:00Z")
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// Tenant policies in a `HashMap`; absent tenants get the defaults.
#[derive(Debug, Default)]
pub struct MemoryPolicies {
    policies: Mutex<HashMap<String, TenantPolicy>>,
}

impl MemoryPolicies {
    /// No tenant configured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (replaces) the policy of `tenant`.
    pub fn set(&self, tenant: &str, policy: TenantPolicy) {
        let mut map = self.policies.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(tenant.to_string(), policy);
    }
}

impl PolicyStore for MemoryPolicies {
    async fn policy(&self, tenant: &str) -> Result<TenantPolicy, StoreError> {
        let map = self.policies.lock().unwrap_or_else(|e| e.into_inner());
        let own = map.get(tenant).cloned();
        let default = map.get(crate::tenants::DEFAULT_KEY).cloned();
        Ok(crate::tenants::effective(own, default).unwrap_or_default())
    }
}

#[derive(Debug, Default)]
struct ManifestState {
    latest: HashMap<String, u32>,
    sources: HashMap<(String, String), u32>,
    versions: HashMap<(String, u32), VersionRecord>,
}

/// A manifest in a `Mutex<HashMap>`: every operation is one critical section, which is the
/// atomicity the conditional writes of the real adapters provide.
#[derive(Debug, Default)]
pub struct MemoryManifest {
    state: Mutex<ManifestState>,
}

impl MemoryManifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManifestState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ManifestState {
    fn version_mut(
        &mut self,
        asset: &AssetId,
        version: u32,
    ) -> Result<&mut VersionRecord, ManifestError> {
        self.versions
            .get_mut(&(asset.id(), version))
            .ok_or_else(|| ManifestError::Missing(format!("{asset} v{version}")))
    }
}

impl ManifestStore for MemoryManifest {
    async fn assign(
        &self,
        asset: &AssetId,
        source: &SourceRef,
        now: &str,
    ) -> Result<Assignment, ManifestError> {
        let mut st = self.lock();
        let id = asset.id();
        if let Some(&n) = st.sources.get(&(id.clone(), source.identity())) {
            let record = st
                .versions
                .get(&(id.clone(), n))
                .cloned()
                .ok_or_else(|| ManifestError::Missing(format!("{id} v{n}")))?;
            return Ok(Assignment {
                record,
                created: false,
            });
        }
        let n = st.latest.get(&id).copied().unwrap_or(0) + 1;
        let record = VersionRecord::new(asset, n, source, now);
        st.latest.insert(id.clone(), n);
        st.sources.insert((id.clone(), source.identity()), n);
        st.versions.insert((id, n), record.clone());
        Ok(Assignment {
            record,
            created: true,
        })
    }

    async fn get(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<Option<VersionRecord>, ManifestError> {
        Ok(self.lock().versions.get(&(asset.id(), version)).cloned())
    }

    async fn latest(&self, asset: &AssetId) -> Result<Option<u32>, ManifestError> {
        Ok(self.lock().latest.get(&asset.id()).copied())
    }

    async fn mark_ready(
        &self,
        asset: &AssetId,
        version: u32,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        let mut st = self.lock();
        let rec = st.version_mut(asset, version)?;
        rec.make_ready(original, variants, now)?;
        Ok(rec.clone())
    }

    async fn mark_failed(
        &self,
        asset: &AssetId,
        version: u32,
        error_type: &str,
        reason: &str,
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        let mut st = self.lock();
        let rec = st.version_mut(asset, version)?;
        rec.make_failed(error_type, reason, now);
        Ok(rec.clone())
    }

    async fn mark_removed(
        &self,
        asset: &AssetId,
        status: Status,
        now: &str,
    ) -> Result<Vec<VersionRecord>, ManifestError> {
        let mut st = self.lock();
        let id = asset.id();
        let mut before: Vec<VersionRecord> = st
            .versions
            .values()
            .filter(|r| r.asset.id() == id)
            .cloned()
            .collect();
        before.sort_by_key(|r| r.version);
        for rec in &before {
            st.version_mut(asset, rec.version)?
                .make_removed(status, now);
        }
        Ok(before)
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<ScanPage, ManifestError> {
        let st = self.lock();
        let mut all: Vec<&VersionRecord> = st.versions.values().collect();
        all.sort_by_key(|r| (r.asset.id(), r.version));
        let start = match cursor {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| ManifestError::Malformed(format!("scan cursor {c:?}")))?,
        };
        let limit = limit.clamp(1, 1000);
        let records: Vec<VersionRecord> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|r| (*r).clone())
            .collect();
        let next = start + records.len();
        Ok(ScanPage {
            cursor: (next < all.len()).then(|| next.to_string()),
            records,
        })
    }
}
