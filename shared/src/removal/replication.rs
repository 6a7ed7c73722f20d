//! Erasure of the cross-region replica when a copy lands late (docs/takedown.md, *The
//! replica*).
//!
//! S3 Cross-Region Replication copies each new version of an original asynchronously; the
//! source version reports `x-amz-replication-status` `PENDING` until its copy is written in
//! the replica, then `COMPLETED` (or `FAILED`: no copy comes). Deleting a specific version
//! never replicates, so a version deleted while `PENDING` may still be copied into the replica
//! after the replica was purged. The removal therefore:
//!
//! 1. purges the replica a first time (what is there already), while
//! 2. the originals purge checks every version's replication status before it deletes
//!    anything: while one is `PENDING` it deletes nothing and answers how long to wait
//!    ([`replication_wait`]); the state machine waits and runs it again, at most
//!    [`MAX_REPLICATION_CHECKS`] times, then fails with [`RemovalError::ReplicationPending`];
//! 3. after the originals are gone, none of them pending when deleted, purges the replica
//!    again (the *sweep*): every copy CRR will ever write is in the replica by then, and the
//!    sweep records whatever it removes in the audit record like the first pass.

use super::{ObjectVersion, RemovalError, VersionedStore};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// Most replication checks of one asset's originals: with the waits of [`replication_wait`]
/// about 35 minutes, more than twice S3 Replication Time Control's 15 minutes.
pub const MAX_REPLICATION_CHECKS: u32 = 12;

/// The first wait before the replication status is checked again, seconds.
pub const FIRST_REPLICATION_WAIT_SECONDS: u64 = 10;

/// The longest wait between two checks, seconds (the waits double up to it).
pub const MAX_REPLICATION_WAIT_SECONDS: u64 = 300;

/// The replication state of one object version (`x-amz-replication-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationState {
    /// No status: the version is not in a replication rule's scope (or the store does not
    /// replicate). No copy will come.
    None,
    /// Its copy is not written in the replica yet.
    Pending,
    /// Its copy is in the replica.
    Completed,
    /// Replication failed: no copy will come (unless an operator replicates it again).
    Failed,
    /// The version is itself a replica.
    Replica,
}

/// The wait before check `checks + 1` when check `checks` (1-based) found versions pending:
/// [`FIRST_REPLICATION_WAIT_SECONDS`] doubling up to [`MAX_REPLICATION_WAIT_SECONDS`].
pub fn replication_wait(checks: u32) -> u64 {
    let doublings = checks.saturating_sub(1).min(16);
    (FIRST_REPLICATION_WAIT_SECONDS << doublings).min(MAX_REPLICATION_WAIT_SECONDS)
}

/// How many of `versions` (delete markers excepted: they hold no bytes and S3 reports no
/// status for them) are still pending replication. A version deleted meanwhile is not pending.
pub async fn pending_versions<S: VersionedStore>(
    store: &S,
    versions: &[ObjectVersion],
) -> Result<usize, StoreError> {
    let mut pending = 0;
    for v in versions.iter().filter(|v| !v.delete_marker) {
        match store.replication(&v.key, v.version_id.as_deref()).await {
            Ok(ReplicationState::Pending) => pending += 1,
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pending)
}

/// The error of an asset whose originals were still pending replication at check `checks`,
/// the last one allowed.
pub fn still_pending(pending: usize, asset: &str, checks: u32) -> RemovalError {
    RemovalError::ReplicationPending(
        pending,
        format!(
            "{asset} after {checks} checks; nothing of its original was deleted: run the request \
             again with a new request id once replication completed"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_the_checks_last_over_half_an_hour() {
        assert_eq!(replication_wait(1), 10);
        assert_eq!(replication_wait(2), 20);
        assert_eq!(replication_wait(5), 160);
        assert_eq!(replication_wait(6), 300);
        assert_eq!(replication_wait(u32::MAX), 300);
        let total: u64 = (1..MAX_REPLICATION_CHECKS).map(replication_wait).sum();
        assert!(total >= 30 * 60, "{total} s");
    }
}
