//! `POST /backfill` and `GET /backfill` (admin): every `ready` version checked against the
//! current catalogue with `Pipeline::backfill` (the step the AWS backfill workflow's map runs),
//! a few at a time in the background, with the progress kept for polling and `/metrics`.

use crate::metrics::Backfilled;
use crate::routes::{json, unavailable, App};
use axum::response::Response;
use pixelfront_shared::pipeline::{now_rfc3339, BackfillOutcome};
use pixelfront_shared::store::{AssetId, Status};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

/// Versions a backfill works on at once (each render already uses every core).
const BACKFILL_CONCURRENCY: usize = 2;

/// At most this many failures are listed in `GET /backfill` (all are counted).
const BACKFILL_ERRORS_LISTED: usize = 20;

/// The progress of the latest backfill, as `GET /backfill` answers it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackfillState {
    /// Run number since start-up (0: none yet).
    run: u64,
    /// `true` until every version was checked.
    running: bool,
    /// `ready` versions when the run started.
    total: usize,
    /// Versions checked so far (`rendered + current + skipped + failed`).
    done: usize,
    /// Rendered again with the current catalogue.
    rendered: usize,
    /// Already current: nothing written.
    current: usize,
    /// No longer `ready` when reached (taken down, erased, …): left alone.
    skipped: usize,
    /// Failed to render (the version keeps its record).
    failed: usize,
    /// `true` when the server stopped before every version was checked.
    interrupted: bool,
    /// RFC 3339 UTC start.
    started_at: Option<String>,
    /// RFC 3339 UTC end.
    finished_at: Option<String>,
    /// The first failures: `{tenant, key, version, error_type, error}`.
    errors: Vec<serde_json::Value>,
}

/// The latest backfill (the totals since start-up are in [`crate::metrics`]).
#[derive(Debug, Default)]
pub struct Backfills {
    state: Mutex<BackfillState>,
}

impl Backfills {
    fn state(&self) -> MutexGuard<'_, BackfillState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl App {
    /// `POST /backfill`: starts checking every `ready` version, [`BACKFILL_CONCURRENCY`] at a
    /// time. Answers `202` with `{"run", "total"}`, or `409` with the progress while a
    /// backfill runs.
    pub fn start_backfill(self: &Arc<Self>) -> Response {
        let versions = match self.stack.manifest.with_status(Status::Ready) {
            Ok(v) => v,
            Err(e) => return unavailable("manifest", &e),
        };
        let total = versions.len();
        let run = {
            let mut state = self.backfills.state();
            if state.running {
                let mut body = serde_json::json!(*state);
                body["error"] = serde_json::json!("a backfill is running");
                return json(409, &body);
            }
            *state = BackfillState {
                run: state.run + 1,
                running: true,
                total,
                started_at: Some(now_rfc3339()),
                ..BackfillState::default()
            };
            state.run
        };
        tracing::info!(run, total, "backfill started");
        let queue: VecDeque<(AssetId, u32)> =
            versions.into_iter().map(|r| (r.asset, r.version)).collect();
        let queue = Arc::new(Mutex::new(queue));
        let app = self.clone();
        tokio::spawn(async move {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..BACKFILL_CONCURRENCY {
                let (app, queue) = (app.clone(), queue.clone());
                workers.spawn(async move {
                    while !app.stopping.load(Ordering::SeqCst) {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some((asset, version)) = next else { break };
                        app.renders.fetch_add(1, Ordering::SeqCst);
                        app.backfill_one(&asset, version).await;
                        app.renders.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
            while let Some(joined) = workers.join_next().await {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "backfill worker");
                }
            }
            let mut state = app.backfills.state();
            state.running = false;
            state.interrupted = state.done < state.total;
            state.finished_at = Some(now_rfc3339());
            tracing::info!(
                run,
                rendered = state.rendered,
                current = state.current,
                skipped = state.skipped,
                failed = state.failed,
                "backfill finished"
            );
        });
        json(202, &serde_json::json!({ "run": run, "total": total }))
    }

    /// Backfills one version and counts the outcome; a version rendered again has its cached
    /// answers dropped (what a render wrote for a version taken down meanwhile, the pipeline
    /// itself deletes again).
    async fn backfill_one(&self, asset: &AssetId, version: u32) {
        let result = self.stack.pipeline.backfill(asset, version).await;
        if matches!(result, Ok(ref r) if r.outcome == BackfillOutcome::Rendered) {
            // Exactly this version's derivatives, not those of a key `{key}/...`.
            let prefix = format!("{}/", asset.version_prefix(version));
            self.cache
                .purge_where(|k| crate::cdn::directly_under(k, &prefix))
                .await;
        }
        let mut state = self.backfills.state();
        state.done += 1;
        let tally = match result {
            Ok(r) => match r.outcome {
                BackfillOutcome::Rendered => {
                    state.rendered += 1;
                    Backfilled::Rendered
                }
                BackfillOutcome::Current => {
                    state.current += 1;
                    Backfilled::Current
                }
                BackfillOutcome::Skipped => {
                    state.skipped += 1;
                    Backfilled::Skipped
                }
            },
            Err(e) => {
                tracing::warn!(%asset, version, error = %e, "backfill failed");
                state.failed += 1;
                if state.errors.len() < BACKFILL_ERRORS_LISTED {
                    state.errors.push(serde_json::json!({
                        "tenant": asset.tenant,
                        "key": asset.key,
                        "version": version,
                        "error_type": e.error_type(),
                        "error": pixelfront_shared::api::assets::public_error(e.error_type(), &e.to_string()),
                    }));
                }
                Backfilled::Failed
            }
        };
        drop(state);
        self.metrics.backfill(tally);
    }

    /// `GET /backfill`: the progress of the latest backfill.
    pub fn backfill_status(&self) -> Response {
        let state = self.backfills.state().clone();
        json(200, &serde_json::json!(state))
    }
}
