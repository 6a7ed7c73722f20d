//! One policy change written to the AWS stack's two stores: the edge's CloudFront
//! KeyValueStore ([`EdgePolicies`]) and the transformer's table ([`PolicyTable`], the source of
//! truth). The transformer must never refuse what the edge admitted, at any moment of the
//! change, whatever the change is (a key added, a key retired, signing switched on, a tenant
//! removed). [`change`] therefore writes three times:
//!
//! 1. the table gets [`loosest`] of the old and the new policy (it admits what either admits);
//! 2. the KeyValueStore gets the new policy;
//! 3. the table gets the new policy.
//!
//! Before 1 both stores hold the old policy, after 3 both hold the new one; in between the
//! table admits at least what the edge does. A run cut short leaves the table looser than the
//! edge, never stricter; running the command again finishes it. Concurrent operators are kept
//! apart by the table's revision number (a conditional write): the loser is told to run again.
//! Table writes that change nothing are skipped, so a repeated command is idempotent and
//! rewrites only the edge's value.

use super::{effective, loosest, Edit, EditError, DEFAULT_KEY};
use crate::sign::TenantPolicy;
use std::collections::BTreeMap;
use std::future::Future;

/// A table entry: the policy and its revision (0 = no entry yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revision {
    /// The policy; `None` = no entry.
    pub policy: Option<TenantPolicy>,
    /// Incremented by every write; the conditional writes compare it.
    pub rev: u64,
}

/// Why a change did not finish. Each names the step, so the operator knows what was written.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The edit itself was refused; nothing was written.
    #[error("{0}")]
    Refused(#[from] EditError),
    /// Another writer changed the entry since it was read; nothing of this change that
    /// matters was lost: run the command again.
    #[error("{0}: changed by someone else meanwhile; run the command again")]
    Conflict(String),
    /// A store failed; the message says which and at which step.
    #[error("{0}")]
    Store(String),
}

/// The transformer's store of tenant policies (the DynamoDB table on AWS).
pub trait PolicyTable: Send + Sync {
    /// The entry under `key` (a tenant id or [`DEFAULT_KEY`]), strongly consistent.
    fn read(&self, key: &str) -> impl Future<Output = Result<Revision, SyncError>> + Send;
    /// Writes `policy` (`None` deletes) if the entry is still at revision `expected`;
    /// returns the new revision. [`SyncError::Conflict`] otherwise.
    fn write(
        &self,
        key: &str,
        policy: Option<&TenantPolicy>,
        expected: u64,
    ) -> impl Future<Output = Result<u64, SyncError>> + Send;
    /// Every entry (key and policy) in one strongly consistent listing, sorted by key.
    fn entries(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, TenantPolicy>, SyncError>> + Send;
}

/// The edge's store of tenant policies (the CloudFront KeyValueStore on AWS). Written on every
/// change, even one the table already holds: a run cut short before its edge write is
/// finished by running it again.
pub trait EdgePolicies: Send + Sync {
    /// Puts (`Some`) or deletes (`None`) the value under `key`. Deleting an absent key is
    /// not an error.
    fn write(
        &self,
        key: &str,
        policy: Option<&TenantPolicy>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// What [`change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The entry before.
    pub before: Option<TenantPolicy>,
    /// The entry after.
    pub after: Option<TenantPolicy>,
    /// Store writes made, in order: `"table"` or `"edge"`.
    pub writes: Vec<&'static str>,
}

/// Applies `edit` to the entry `key` in both stores, in the safe order (module docs).
pub async fn change<T: PolicyTable, E: EdgePolicies>(
    table: &T,
    edge: &E,
    key: &str,
    edit: &Edit,
) -> Result<Changed, SyncError> {
    let current = table.read(key).await?;
    let after = edit.apply(key, current.policy.as_ref())?;
    let mut writes = Vec::new();

    // What the tenant is admitted under before and after: its entry, else the default entry.
    let fallback = if key == DEFAULT_KEY {
        None
    } else {
        table.read(DEFAULT_KEY).await?.policy
    };
    let before_eff = effective(current.policy.clone(), fallback.clone());
    let after_eff = effective(after.clone(), fallback);
    let merged = loosest(before_eff.as_ref(), after_eff.as_ref())?;
    // The table's entry during the change: a missing entry stays missing when the fallback
    // already admits everything merged admits (the tenant keeps the default policy).
    let interim = if merged == before_eff && current.policy.is_none() {
        None
    } else {
        merged
    };

    let mut rev = current.rev;
    if interim != current.policy {
        rev = table
            .write(key, interim.as_ref(), rev)
            .await
            .map_err(|e| step(e, "1/3 (table, loosest policy)"))?;
        writes.push("table");
    }
    edge.write(key, after.as_ref())
        .await
        .map_err(|e| step(e, "2/3 (edge)"))?;
    writes.push("edge");
    if after != interim {
        table
            .write(key, after.as_ref(), rev)
            .await
            .map_err(|e| step(e, "3/3 (table, new policy)"))?;
        writes.push("table");
    }
    Ok(Changed {
        before: current.policy,
        after,
        writes,
    })
}

fn step(e: SyncError, at: &str) -> SyncError {
    match e {
        SyncError::Store(m) => SyncError::Store(format!("step {at}: {m}")),
        SyncError::Conflict(m) => SyncError::Conflict(format!("step {at}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests;
