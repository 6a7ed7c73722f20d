//! In-memory adapters of the removal ports (a versioned bucket, a CDN that can refuse the
//! first calls, an audit store), for unit tests and as the reference semantics.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A versioned bucket: a set of (key, version id, delete marker).
#[derive(Debug, Default)]
pub struct MemoryBucket {
    name: String,
    versions: Mutex<BTreeSet<ObjectVersion>>,
}

impl MemoryBucket {
    /// An empty bucket called `name`.
    pub fn new(name: &str) -> Self {
        MemoryBucket {
            name: name.to_string(),
            versions: Mutex::default(),
        }
    }

    /// Adds a version (or a delete marker).
    pub fn add(&self, key: &str, version_id: &str, delete_marker: bool) {
        locked(&self.versions).insert(ObjectVersion {
            key: key.to_string(),
            version_id: Some(version_id.to_string()),
            delete_marker,
        });
    }

    /// Everything in the bucket.
    pub fn all(&self) -> Vec<ObjectVersion> {
        locked(&self.versions).iter().cloned().collect()
    }
}

impl VersionedStore for MemoryBucket {
    fn bucket_name(&self) -> &str {
        &self.name
    }

    async fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> Result<Vec<ObjectVersion>, StoreError> {
        Ok(locked(&self.versions)
            .iter()
            .filter(|v| match v.key.strip_prefix(prefix) {
                Some(rest) => listing == Listing::Deep || !rest.contains('/'),
                None => false,
            })
            .cloned()
            .collect())
    }

    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        locked(&self.versions).retain(|v| !(v.key == key && v.version_id.as_deref() == version_id));
        Ok(())
    }
}

/// A CDN recording every invalidation; the first `n` calls can be refused.
#[derive(Debug, Default)]
pub struct MemoryCdn {
    refuse: AtomicUsize,
    created: Mutex<Vec<(String, Vec<String>)>>,
}

impl MemoryCdn {
    /// A CDN that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the next `n` calls with `TooManyInvalidationsInProgress`.
    pub fn refuse_next(&self, n: usize) {
        self.refuse.store(n, Ordering::SeqCst);
    }

    /// Every invalidation created: (caller reference, paths).
    pub fn created(&self) -> Vec<(String, Vec<String>)> {
        locked(&self.created).clone()
    }
}

impl Cdn for MemoryCdn {
    async fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<Invalidation, CdnError> {
        let left = self.refuse.load(Ordering::SeqCst);
        if left > 0 {
            self.refuse.store(left - 1, Ordering::SeqCst);
            return Err(CdnError::TooManyInProgress("memory CDN".into()));
        }
        let mut created = locked(&self.created);
        // Like CloudFront: the same caller reference is the same invalidation.
        let index = match created.iter().position(|(r, _)| r == caller_reference) {
            Some(i) => i,
            None => {
                created.push((caller_reference.to_string(), paths.to_vec()));
                created.len() - 1
            }
        };
        Ok(Invalidation::completed(
            format!("I{index}"),
            caller_reference,
            paths.len(),
        ))
    }

    async fn invalidation(&self, id: &str) -> Result<Invalidation, CdnError> {
        Ok(Invalidation::completed(id.to_string(), "", 0))
    }
}

/// Audit records in maps.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    claims: Mutex<BTreeMap<String, String>>,
    records: Mutex<BTreeMap<(String, String), AuditRecord>>,
    finished: Mutex<BTreeMap<String, Summary>>,
}

impl MemoryAudit {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditStore for MemoryAudit {
    async fn claim(&self, request_id: &str, fingerprint: &str) -> Result<String, RemovalError> {
        Ok(locked(&self.claims)
            .entry(request_id.to_string())
            .or_insert_with(|| fingerprint.to_string())
            .clone())
    }

    async fn finished(&self, request_id: &str) -> Result<Option<Summary>, RemovalError> {
        Ok(locked(&self.finished).get(request_id).cloned())
    }

    async fn open(&self, record: &AuditRecord) -> Result<(), RemovalError> {
        let id = format!("{}/{}", record.tenant, record.key);
        locked(&self.records)
            .entry((id, record.request_id.clone()))
            .or_insert_with(|| record.clone());
        Ok(())
    }

    async fn append_deleted(
        &self,
        asset: &AssetId,
        request_id: &str,
        target: Target,
        deleted: &[Deleted],
    ) -> Result<(), RemovalError> {
        let mut records = locked(&self.records);
        let rec = records
            .get_mut(&(asset.id(), request_id.to_string()))
            .ok_or_else(|| RemovalError::Audit(format!("no open record for {asset}")))?;
        let list = match target {
            Target::Originals => &mut rec.deleted_originals,
            Target::Replica => &mut rec.deleted_replica,
            Target::Derived => &mut rec.deleted_derivatives,
        };
        for d in deleted {
            if !list.contains(d) {
                list.push(d.clone());
            }
        }
        Ok(())
    }

    async fn close(
        &self,
        asset: &AssetId,
        request_id: &str,
        status: Status,
        finished_at: &str,
        invalidation_ids: &[String],
    ) -> Result<(), RemovalError> {
        let mut records = locked(&self.records);
        let rec = records
            .get_mut(&(asset.id(), request_id.to_string()))
            .ok_or_else(|| RemovalError::Audit(format!("no open record for {asset}")))?;
        rec.status = status.as_str().to_string();
        rec.finished_at = Some(finished_at.to_string());
        rec.invalidation_ids = invalidation_ids.to_vec();
        Ok(())
    }

    async fn put_finished(&self, summary: &Summary) -> Result<Summary, RemovalError> {
        Ok(locked(&self.finished)
            .entry(summary.request_id.clone())
            .or_insert_with(|| summary.clone())
            .clone())
    }

    async fn records(&self, asset: &AssetId) -> Result<Vec<AuditRecord>, RemovalError> {
        let id = asset.id();
        let mut out: Vec<AuditRecord> = locked(&self.records)
            .iter()
            .filter(|((a, _), _)| *a == id)
            .map(|(_, r)| r.clone())
            .collect();
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(out)
    }
}
