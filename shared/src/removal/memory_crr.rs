//! Cross-Region Replication between two in-memory buckets, with copies that land late: the
//! reference model of what the replica purge must survive (module `late_replica`).
//!
//! [`MemoryCrr::put`] writes a version into the source and starts its copy; the copy lands
//! in the replica (under its own version id) on the `n`th call made to either bucket after
//! that, like S3 finishing a replication while the removal runs. Until then the source
//! version reports [`ReplicationState::Pending`], afterwards `Completed`. Deleting the source
//! version does not stop a copy in flight (S3 may already have read it), and
//! [`MemoryCrr::flush`] lands every copy still in flight, as CRR eventually does.

use super::memory::MemoryBucket;
use super::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A copy on its way to the replica.
#[derive(Debug, Clone)]
struct InFlight {
    key: String,
    source_version: String,
    replica_version: String,
    lands_at: usize,
}

/// A source bucket replicated into a replica bucket (see the module documentation).
#[derive(Debug)]
pub struct MemoryCrr {
    source: MemoryBucket,
    replica: MemoryBucket,
    calls: AtomicUsize,
    in_flight: Mutex<Vec<InFlight>>,
    completed: Mutex<BTreeSet<(String, String)>>,
}

impl MemoryCrr {
    /// Empty buckets `source` and `replica`.
    pub fn new(source: &str, replica: &str) -> Arc<Self> {
        Arc::new(MemoryCrr {
            source: MemoryBucket::new(source),
            replica: MemoryBucket::new(replica),
            calls: AtomicUsize::new(0),
            in_flight: Mutex::default(),
            completed: Mutex::default(),
        })
    }

    /// Writes `version` of `key` into the source; its copy (replica version id
    /// `replica_version`) lands on the `after`th bucket call from now (0: at once).
    pub fn put(&self, key: &str, version: &str, replica_version: &str, after: usize) {
        self.source.add(key, version, false);
        let copy = InFlight {
            key: key.to_string(),
            source_version: version.to_string(),
            replica_version: replica_version.to_string(),
            lands_at: self.calls.load(Ordering::SeqCst) + after,
        };
        locked(&self.in_flight).push(copy);
        self.land(false);
    }

    /// Lands every copy still in flight (replication finishing after the removal).
    pub fn flush(&self) {
        self.land(true);
    }

    /// Copies still in flight.
    pub fn in_flight(&self) -> usize {
        locked(&self.in_flight).len()
    }

    /// The source side, as a store.
    pub fn source(self: &Arc<Self>) -> CrrSource {
        CrrSource(self.clone())
    }

    /// The replica side, as a store.
    pub fn replica(self: &Arc<Self>) -> CrrReplica {
        CrrReplica(self.clone())
    }

    /// Everything in the source bucket.
    pub fn source_versions(&self) -> Vec<ObjectVersion> {
        self.source.all()
    }

    /// Everything in the replica bucket.
    pub fn replica_versions(&self) -> Vec<ObjectVersion> {
        self.replica.all()
    }

    /// Counts one bucket call and lands the copies due.
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.land(false);
    }

    fn land(&self, all: bool) {
        let now = self.calls.load(Ordering::SeqCst);
        let mut in_flight = locked(&self.in_flight);
        let (due, later): (Vec<InFlight>, Vec<InFlight>) =
            in_flight.drain(..).partition(|c| all || c.lands_at <= now);
        *in_flight = later;
        for c in due {
            self.replica.add(&c.key, &c.replica_version, false);
            locked(&self.completed).insert((c.key, c.source_version));
        }
    }

    fn state(&self, key: &str, version_id: Option<&str>) -> ReplicationState {
        let v = version_id.unwrap_or("null");
        let pending = locked(&self.in_flight)
            .iter()
            .any(|c| c.key == key && c.source_version == v);
        if pending {
            ReplicationState::Pending
        } else if locked(&self.completed).contains(&(key.to_string(), v.to_string())) {
            ReplicationState::Completed
        } else {
            ReplicationState::None
        }
    }
}

/// The source bucket of a [`MemoryCrr`].
#[derive(Debug, Clone)]
pub struct CrrSource(Arc<MemoryCrr>);

/// The replica bucket of a [`MemoryCrr`].
#[derive(Debug, Clone)]
pub struct CrrReplica(Arc<MemoryCrr>);

impl VersionedStore for CrrSource {
    fn bucket_name(&self) -> &str {
        self.0.source.bucket_name()
    }

    async fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> Result<Vec<ObjectVersion>, StoreError> {
        self.0.tick();
        self.0.source.list_versions(prefix, listing).await
    }

    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        self.0.source.delete_version(key, version_id).await
    }

    async fn replication(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ReplicationState, StoreError> {
        self.0.tick();
        let exists = self
            .0
            .source
            .all()
            .iter()
            .any(|v| v.key == key && v.version_id.as_deref() == version_id && !v.delete_marker);
        if !exists {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok(self.0.state(key, version_id))
    }
}

impl VersionedStore for CrrReplica {
    fn bucket_name(&self) -> &str {
        self.0.replica.bucket_name()
    }

    async fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> Result<Vec<ObjectVersion>, StoreError> {
        self.0.tick();
        self.0.replica.list_versions(prefix, listing).await
    }

    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        self.0.replica.delete_version(key, version_id).await
    }

    async fn replication(
        &self,
        _key: &str,
        _version_id: Option<&str>,
    ) -> Result<ReplicationState, StoreError> {
        Ok(ReplicationState::Replica)
    }
}
