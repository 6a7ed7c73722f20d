//! The Lambda task protocol of the takedown function: what `statemachine/takedown.asl.json`
//! sends and what each step returns (counts and ids only; the deleted versions go to the audit
//! store, so the state payload stays far below 256 KB).
//!
//! - `{"step":"begin","request_id","request":<execution input>}` → [`Begun`];
//! - `{"step":"purge","request_id","target":"originals"|"replica"|"derived","asset":{..}}` →
//!   [`Purged`];
//! - `{"step":"plan","request_id","assets":[..]}` → `{"batches":[Batch..]}`;
//! - `{"step":"invalidate","batch":Batch}` → [`Invalidation`];
//! - `{"step":"invalidation_status","id"}` → [`Invalidation`];
//! - `{"step":"finish","begin":Begun,"purged":[..],"invalidations":[..]}` → [`Summary`].

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
        /// The batch.
        batch: Batch,
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
        /// Every purge output (nested arrays from the state machine's Map/Parallel flatten).
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

/// Collects every [`Purged`] object from nested arrays (Map of Parallel results).
fn flatten_purged(v: &Value, out: &mut Vec<Purged>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten_purged(i, out)),
        Value::Object(_) => {
            if let Ok(p) = serde_json::from_value::<Purged>(v.clone()) {
                out.push(p);
            }
        }
        _ => {}
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
            } => {
                let a = &self.audit;
                let out = match target {
                    Target::Originals => {
                        purge(Some(&self.originals), a, &request_id, target, &asset).await?
                    }
                    Target::Replica => {
                        purge(self.replica.as_ref(), a, &request_id, target, &asset).await?
                    }
                    Target::Derived => {
                        purge(Some(&self.derived), a, &request_id, target, &asset).await?
                    }
                };
                json(serde_json::to_value(out))
            }
            Step::Plan { request_id, assets } => Ok(serde_json::json!({
                "batches": plan(&request_id, &assets),
            })),
            Step::Invalidate { batch } => {
                json(serde_json::to_value(invalidate(&self.cdn, &batch).await?))
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
            } => {
                let mut all = Vec::new();
                flatten_purged(&purged, &mut all);
                json(serde_json::to_value(
                    finish(
                        &self.manifest,
                        &self.audit,
                        &begin,
                        &all,
                        &invalidations,
                        &now_rfc3339(),
                    )
                    .await?,
                ))
            }
        }
    }
}
