//! A whole takedown or erasure in-process: `statemachine/takedown.asl.json` as a function, for
//! the local stack (and the tests).
//!
//! The same steps in the same order: `begin` (a finished request id returns its stored
//! summary), `purge` per asset of the replica, the originals (again, after a short sleep,
//! while a version is pending replication), the derived bucket and the replica once more,
//! `plan`,
//! `invalidate` per batch (waiting, briefly, for each batch to complete), `finish`. The steps
//! run one after the other where the state machine runs some at once; each is idempotent, so
//! the order within a stage does not matter. The errors the state machine retries are retried
//! here too ([`RETRIED`], [`RETRIED_INVALIDATION`]), a few times with short sleeps
//! ([`RUN_RETRIES`] and [`RUN_CDN_RETRIES`] from [`RUN_FIRST_DELAY`] doubling up to
//! [`RUN_MAX_DELAY`]); any other error ends the run, as it fails the execution.
//!
//! Step Functions starts one execution per name; in-process, runs of the same request id wait
//! for each other ([`request_lock`]), so concurrent identical requests make one removal and one
//! audit record, and the later ones answer the stored summary.

use super::task::Removal;
use super::*;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// The runs in progress in this process, by request id.
static RUNNING: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Holds the request id's lock while alive; the last holder drops the id from [`RUNNING`].
struct RequestGuard {
    id: String,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.lock.take());
        // Nobody else holds or waits for it (the map's handle is the only one left).
        if running
            .get(&self.id)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            running.remove(&self.id);
        }
    }
}

/// Waits until no other run of `request_id` is in progress in this process, and holds that
/// until the guard drops.
async fn request_lock(request_id: &str) -> RequestGuard {
    let mutex = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(request_id.to_string())
        .or_default()
        .clone();
    RequestGuard {
        id: request_id.to_string(),
        lock: Some(mutex.lock_owned().await),
    }
}

/// Error types the state machine retries at every step (its generic `Retry`, less the Lambda
/// and Step Functions errors an in-process run cannot have).
pub const RETRIED: [&str; 4] = [
    "StoreUnavailable",
    "ManifestUnavailable",
    "AuditUnavailable",
    "PurgeIncomplete",
];

/// Error types the state machine's `CreateInvalidation` retries besides [`RETRIED`].
pub const RETRIED_INVALIDATION: [&str; 3] = [
    "TooManyInvalidationsInProgress",
    "Throttling",
    "CdnUnavailable",
];

/// Error types the state machine's `CheckInvalidation` retries besides [`RETRIED`].
pub const RETRIED_STATUS: [&str; 2] = ["Throttling", "CdnUnavailable"];

/// Retries of a step after its first attempt (the state machine's `MaxAttempts`).
pub const RUN_RETRIES: u32 = 6;

/// Retries of an invalidation the CDN refuses for now (the state machine allows 40 over hours;
/// a local CDN completes at once, so a few seconds in all are plenty).
pub const RUN_CDN_RETRIES: u32 = 10;

/// How often a run checks an invalidation the CDN did not complete at once, with the retry
/// delays in between, before it goes on (the invalidation is created: it completes anyway).
pub const RUN_STATUS_CHECKS: u32 = 20;

/// The first sleep before a retry or a status check.
pub const RUN_FIRST_DELAY: Duration = Duration::from_millis(10);

/// The longest sleep before a retry or a status check (the sleeps double up to it).
pub const RUN_MAX_DELAY: Duration = Duration::from_millis(500);

/// Runs `step` until it succeeds, fails with an error whose type is not in `retried`, or has
/// been retried `retries` times.
async fn retrying<T, F, Fut>(
    what: &str,
    retried: &[&[&str]],
    retries: u32,
    mut step: F,
) -> Result<T, RemovalError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RemovalError>>,
{
    let mut delay = RUN_FIRST_DELAY;
    let mut attempt = 0;
    loop {
        match step().await {
            Err(e) if attempt < retries && retried.iter().any(|l| l.contains(&e.error_type())) => {
                attempt += 1;
                tracing::warn!(step = what, error = %e, attempt, "removal step retried");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RUN_MAX_DELAY);
            }
            other => return other,
        }
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
    /// Runs request `request_id` (1-80 of `[A-Za-z0-9_-]`) to the end, as the state machine
    /// does, and returns its summary; a request id that already finished returns the stored
    /// summary and changes nothing. `now` gives the RFC 3339 UTC times of the start and the
    /// end (e.g. [`crate::pipeline::now_rfc3339`]).
    pub async fn run(
        &self,
        request_id: &str,
        input: &RemovalInput,
        now: impl Fn() -> String,
    ) -> Result<Summary, RemovalError> {
        let now = &now;
        let _running = request_lock(request_id).await;
        let begun = retrying("begin", &[&RETRIED], RUN_RETRIES, || async move {
            begin(&self.manifest, &self.audit, request_id, input, &now()).await
        })
        .await?;
        if begun.already_done {
            let done = retrying("finished", &[&RETRIED], RUN_RETRIES, || async move {
                self.audit.finished(request_id).await
            })
            .await?;
            return done.ok_or_else(|| {
                RemovalError::Audit(format!("request {request_id} finished without a summary"))
            });
        }
        let assets = &begun.assets;
        let mut deleted = 0;
        for asset in assets {
            // The replica first, the originals once none is pending replication, then the
            // replica again for a copy that landed meanwhile (module `replication`).
            deleted += self
                .purge_step(request_id, Target::Replica, asset, 0)
                .await?
                .deleted;
            deleted += self.purge_originals(request_id, asset).await?;
            deleted += self
                .purge_step(request_id, Target::Derived, asset, 0)
                .await?
                .deleted;
            deleted += self
                .purge_step(request_id, Target::Replica, asset, 0)
                .await?
                .deleted;
        }
        let paths = retrying("plan", &[&RETRIED], RUN_RETRIES, || async move {
            fallback_paths(&self.audit, request_id, assets).await
        })
        .await?;
        let paths = &paths;
        let mut invalidations = Vec::new();
        for batch in plan_refs(request_id, assets, paths) {
            let retried: [&[&str]; 2] = [&RETRIED_INVALIDATION, &RETRIED];
            let created = retrying("invalidate", &retried, RUN_CDN_RETRIES, || async move {
                invalidate(&self.cdn, request_id, assets, paths, batch.index).await
            })
            .await?;
            invalidations.push(self.completed(created).await?);
        }
        let (begun, invalidations) = (&begun, &invalidations);
        retrying("finish", &[&RETRIED], RUN_RETRIES, || async move {
            let end = now();
            finish(
                &self.manifest,
                &self.audit,
                begun,
                deleted,
                invalidations,
                &end,
            )
            .await
        })
        .await
    }

    /// One purge step, retried as the state machine retries it.
    async fn purge_step(
        &self,
        request_id: &str,
        target: Target,
        asset: &AssetVersions,
        checks: u32,
    ) -> Result<Purged, RemovalError> {
        retrying("purge", &[&RETRIED], RUN_RETRIES, || async move {
            self.purge_target(request_id, target, asset, checks).await
        })
        .await
    }

    /// The originals' branch of the state machine: the purge, run again while versions are
    /// pending replication (sleeping [`RUN_FIRST_DELAY`] doubling up to [`RUN_MAX_DELAY`],
    /// not the minutes the state machine waits); the deleted count.
    async fn purge_originals(
        &self,
        request_id: &str,
        asset: &AssetVersions,
    ) -> Result<usize, RemovalError> {
        let mut delay = RUN_FIRST_DELAY;
        let mut checks = 0;
        loop {
            let purged = self
                .purge_step(request_id, Target::Originals, asset, checks)
                .await?;
            if purged.pending == 0 {
                return Ok(purged.deleted);
            }
            tracing::info!(asset = %purged.asset, pending = purged.pending, checks = purged.checks,
                "original pending replication; checking again");
            checks = purged.checks;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RUN_MAX_DELAY);
        }
    }

    /// `invalidation` once the CDN reports it completed, or as it stands after
    /// [`RUN_STATUS_CHECKS`] checks.
    async fn completed(
        &self,
        mut invalidation: Invalidation,
    ) -> Result<Invalidation, RemovalError> {
        let mut delay = RUN_FIRST_DELAY;
        let mut checks = 0;
        while !invalidation.done && checks < RUN_STATUS_CHECKS {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RUN_MAX_DELAY);
            checks += 1;
            let id = invalidation.id.as_str();
            let retried: [&[&str]; 2] = [&RETRIED_STATUS, &RETRIED];
            let now = retrying(
                "invalidation_status",
                &retried,
                RUN_RETRIES,
                || async move { Ok(self.cdn.invalidation(id).await?) },
            )
            .await?;
            invalidation.status = now.status;
            invalidation.done = now.done;
        }
        if !invalidation.done {
            tracing::warn!(
                id = %invalidation.id,
                status = %invalidation.status,
                "invalidation not completed yet; the removal goes on"
            );
        }
        Ok(invalidation)
    }
}
