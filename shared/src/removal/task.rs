//! The Lambda task protocol of the takedown function: what `statemachine/takedown.asl.json`
//! sends and what each step returns (counts and ids only; the deleted versions go to the audit
//! store, so the state payload stays far below 256 KB).
//!
//! - `{"step":"begin","request_id","request":<execution input>}` → [`Begun`];
//! - `{"step":"purge","request_id","target":"originals"|"replica"|"derived","asset":{..}}` →
//!   [`Purged`]; the originals take `"checks"` (replication checks so far) and answer
//!   `pending`, `checks` and `wait_seconds` (nothing deleted while `pending` > 0);
//! - `{"step":"plan","request_id","assets":[..]}` → `{"batches":[BatchRef..]}` (indices and
//!   sizes, never the paths);
//! - `{"step":"invalidate","request_id","index","assets":[..]}` → [`Invalidation`] of batch
//!   `index` of the plan, built again from the assets (and, for an asset whose cache tag
//!   CloudFront cannot take, the derivatives its audit record lists: [`fallback_paths`]);
//! - `{"step":"invalidation_status","id"}` → [`Invalidation`];
//! - `{"step":"finish","begin":Begun,"purged":[..],"invalidations":[..]}` → [`Summary`]
//!   (`purged`: the purge map's nested results, each with a `deleted` count).

use super::*;
use crate::pipeline::now_rfc3339;
use serde_json::Value;

/// One task request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Step 1.
    Begin {
        /// The execution name.
        request_id: String,
        /// The execution input.
        request: RemovalInput,
    },
    /// Step 2, per asset and bucket.
    Purge {
        /// The execution name.
        request_id: String,
        /// Which bucket.
        target: Target,
        /// The asset.
        asset: AssetVersions,
        /// Originals: the replication checks made so far (the state machine's loop counter).
        #[serde(default)]
        checks: u32,
    },
    /// Step 3.
    Plan {
        /// The execution name.
        request_id: String,
        /// Every asset.
        assets: Vec<AssetVersions>,
    },
    /// Step 4, per batch.
    Invalidate {
        /// The execution name.
        request_id: String,
        /// The batch's index in the plan.
        index: usize,
        /// Every asset (the plan's input).
        assets: Vec<AssetVersions>,
    },
    /// Step 4's completion check.
    InvalidationStatus {
        /// Invalidation id.
        id: String,
    },
    /// Step 5.
    Finish {
        /// The output of `begin`.
        begin: Begun,
        /// Every purge output (nested arrays from the state machine's Map of Parallel), each
        /// an object with a `deleted` count.
        #[serde(default)]
        purged: Value,
        /// Every invalidation.
        #[serde(default)]
        invalidations: Vec<Invalidation>,
    },
}

/// The takedown function's stores.
#[derive(Debug)]
pub struct Removal<M, A, O, R, D, C> {
    /// The manifest.
    pub manifest: M,
    /// The audit store.
    pub audit: A,
    /// The originals bucket.
    pub originals: O,
    /// The originals' replica, when configured.
    pub replica: Option<R>,
    /// The derived bucket.
    pub derived: D,
    /// The CDN.
    pub cdn: C,
}

/// The sum of the `deleted` counts in nested purge results: arrays (Map of Parallel) and
/// objects without a count of their own (`{"purged": [..], "sweep": {..}}`).
pub(crate) fn deleted_count(v: &Value) -> usize {
    match v {
        Value::Array(items) => items.iter().map(deleted_count).sum(),
        Value::Object(o) => match o.get("deleted") {
            Some(n) => n
                .as_u64()
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            None => o.values().map(deleted_count).sum(),
        },
        _ => 0,
    }
}

impl<M, A, O, R, D, C> Removal<M, A, O, R, D, C>
where
    M: ManifestStore,
    A: AuditStore,
    O: VersionedStore,
    R: VersionedStore,
    D: VersionedStore,
    C: Cdn,
{
    /// Step 2 on the bucket `target` names; for the originals, `checks` replication checks
    /// were made before (the gate exists only with a replica).
    pub(crate) async fn purge_target(
        &self,
        request_id: &str,
        target: Target,
        asset: &AssetVersions,
        checks: u32,
    ) -> Result<Purged, RemovalError> {
        let (a, id) = (&self.audit, request_id);
        let gate = self.replica.as_ref().map(|_| checks);
        match target {
            Target::Originals => purge(Some(&self.originals), a, id, target, asset, gate).await,
            Target::Replica => purge(self.replica.as_ref(), a, id, target, asset, None).await,
            Target::Derived => purge(Some(&self.derived), a, id, target, asset, None).await,
        }
    }

    /// Runs one task payload and returns the step's JSON result.
    pub async fn handle(&self, payload: Value) -> Result<Value, RemovalError> {
        let step: Step = serde_json::from_value(payload)
            .map_err(|e| RemovalError::InvalidRequest(e.to_string()))?;
        let json = |v: Result<Value, serde_json::Error>| {
            v.map_err(|e| RemovalError::InvalidRequest(format!("serializing the result: {e}")))
        };
        match step {
            Step::Begin {
                request_id,
                request,
            } => json(serde_json::to_value(
                begin(
                    &self.manifest,
                    &self.audit,
                    &request_id,
                    &request,
                    &now_rfc3339(),
                )
                .await?,
            )),
            Step::Purge {
                request_id,
                target,
                asset,
                checks,
            } => json(serde_json::to_value(
                self.purge_target(&request_id, target, &asset, checks)
                    .await?,
            )),
            Step::Plan { request_id, assets } => {
                let paths = fallback_paths(&self.audit, &request_id, &assets).await?;
                Ok(serde_json::json!({
                    "batches": plan_refs(&request_id, &assets, &paths),
                }))
            }
            Step::Invalidate {
                request_id,
                index,
                assets,
            } => {
                let paths = fallback_paths(&self.audit, &request_id, &assets).await?;
                json(serde_json::to_value(
                    invalidate(&self.cdn, &request_id, &assets, &paths, index).await?,
                ))
            }
            Step::InvalidationStatus { id } => json(serde_json::to_value(
                self.cdn
                    .invalidation(&id)
                    .await
                    .map_err(RemovalError::Cdn)?,
            )),
            Step::Finish {
                begin,
                purged,
                invalidations,
            } => json(serde_json::to_value(
                finish(
                    &self.manifest,
                    &self.audit,
                    &begin,
                    deleted_count(&purged),
                    &invalidations,
                    &now_rfc3339(),
                )
                .await?,
            )),
        }
    }
}
