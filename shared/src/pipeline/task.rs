//! The Lambda task protocol of the precompute function: what the state machine sends, and
//! what each step returns (never image bytes: state payloads are capped at 256 KB).
//!
//! - `{"step": "assign", "event": <EventBridge Object Created event>}` → a [`Job`];
//! - `{"step": "render", "job": <Job>}` → a [`RenderReport`];
//! - `{"step": "fail", "job": <Job>, "error": {"Error": .., "Cause": ..}}` → the [`Job`]
//!   with status `failed` (the `Catch` output of Step Functions, passed through);
//! - `{"step": "backfill_count", "cursor": null|"…"}` → `{"total": n, "cursor": null|"…"}`,
//!   the `ready` versions in one slice of at most [`COUNT_SLICE`] records (the state machine
//!   adds the slices up);
//! - `{"step": "backfill_page", "cursor": null|"…", "limit": 1..1000}` →
//!   `{"items": [{"tenant", "key", "version"}], "cursor": null|"…"}`, the `ready` versions of
//!   one page of the manifest (the backfill state machine's Distributed Map items);
//! - `{"step": "backfill", "tenant", "key", "version"}` → a [`BackfillReport`];
//! - a bare EventBridge event (e.g. `cargo lambda invoke --data-file events/…`) → all steps,
//!   an [`Outcome`].

use super::event::{source_of, ObjectCreatedEvent};
use super::{cause_message, BackfillReport, Job, Pipeline, PipelineError};
use crate::store::{AssetId, ManifestStore, ObjectStore, Status};
use serde::Deserialize;
use serde_json::Value;

/// A Step Functions error object as `Catch` with `ResultPath` places it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StepError {
    /// Error name, e.g. `ImageCorrupt` or `States.Timeout`.
    #[serde(rename = "Error")]
    pub error: String,
    /// Cause: for Lambda errors the JSON `{"errorType", "errorMessage"}`.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// One task request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Assign a version for an upload event.
    Assign {
        /// The EventBridge event.
        event: ObjectCreatedEvent,
    },
    /// Render an assigned version.
    Render {
        /// The job `assign` returned.
        job: Job,
    },
    /// Count the `ready` versions of one slice of the manifest (a backfill's total).
    BackfillCount {
        /// Where the slice starts (`None`: the beginning).
        #[serde(default)]
        cursor: Option<String>,
    },
    /// One page of `ready` versions.
    BackfillPage {
        /// Where the page starts (`None`: the first page).
        #[serde(default)]
        cursor: Option<String>,
        /// Records examined per page, 1..=1000 (default 500).
        #[serde(default = "default_page")]
        limit: usize,
    },
    /// Re-render one version if the catalogue changed.
    Backfill {
        /// The asset.
        #[serde(flatten)]
        asset: AssetId,
        /// The version.
        version: u32,
    },
    /// Record a failure.
    Fail {
        /// The job `assign` returned.
        job: Job,
        /// The caught error.
        error: StepError,
    },
}

/// Manifest records one `backfill_count` call examines, far inside the function's timeout.
pub const COUNT_SLICE: usize = 20_000;

fn default_page() -> usize {
    500
}

/// Parses a task payload: a `step` request, or a bare event (all steps).
pub fn parse_request(payload: Value) -> Result<Result<Step, ObjectCreatedEvent>, PipelineError> {
    let invalid = |e: serde_json::Error| PipelineError::InvalidInput(e.to_string());
    if payload.get("step").is_some() {
        serde_json::from_value(payload).map(Ok).map_err(invalid)
    } else if payload.get("detail-type").is_some() {
        serde_json::from_value(payload).map(Err).map_err(invalid)
    } else {
        Err(PipelineError::InvalidInput(
            "expected {\"step\": \"assign\"|\"render\"|\"fail\"|\"backfill…\", ...} or an S3 \
             Object Created EventBridge event"
                .into(),
        ))
    }
}

/// Runs one task payload through the pipeline and returns the step's JSON result.
pub async fn handle<O: ObjectStore, D: ObjectStore, M: ManifestStore>(
    pipeline: &Pipeline<O, D, M>,
    payload: Value,
) -> Result<Value, PipelineError> {
    let to_json = |v: Result<Value, serde_json::Error>| {
        v.map_err(|e| PipelineError::InvalidInput(format!("serializing the result: {e}")))
    };
    match parse_request(payload)? {
        Ok(Step::Assign { event }) => {
            let job = pipeline.assign(source_of(&event)?).await?;
            to_json(serde_json::to_value(job))
        }
        Ok(Step::Render { job }) => {
            let report = pipeline.render(&job).await?;
            to_json(serde_json::to_value(report))
        }
        Ok(Step::Fail { job, error }) => {
            let reason = cause_message(&error.cause);
            let reason = if reason.is_empty() {
                error.error.clone()
            } else {
                reason
            };
            let job = pipeline.fail(&job, &error.error, &reason).await?;
            to_json(serde_json::to_value(job))
        }
        Ok(Step::BackfillCount { mut cursor }) => {
            let (mut total, mut seen) = (0u64, 0usize);
            loop {
                let page = pipeline.manifest.scan(cursor.as_deref(), 1000).await?;
                seen += page.records.len().max(1);
                total += page
                    .records
                    .iter()
                    .filter(|r| r.status == Status::Ready)
                    .count() as u64;
                cursor = page.cursor;
                if cursor.is_none() || seen >= COUNT_SLICE {
                    break;
                }
            }
            Ok(serde_json::json!({ "total": total, "cursor": cursor }))
        }
        Ok(Step::BackfillPage { cursor, limit }) => {
            let page = pipeline.manifest.scan(cursor.as_deref(), limit).await?;
            let items: Vec<Value> = page
                .records
                .iter()
                .filter(|r| r.status == Status::Ready)
                .map(|r| {
                    serde_json::json!({
                        "tenant": r.asset.tenant,
                        "key": r.asset.key,
                        "version": r.version,
                    })
                })
                .collect();
            Ok(serde_json::json!({ "items": items, "cursor": page.cursor }))
        }
        Ok(Step::Backfill { asset, version }) => {
            let report: BackfillReport = pipeline.backfill(&asset, version).await?;
            to_json(serde_json::to_value(report))
        }
        Err(event) => {
            let outcome = pipeline.process(source_of(&event)?).await?;
            to_json(serde_json::to_value(outcome))
        }
    }
}
