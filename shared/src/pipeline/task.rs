//! The Lambda task protocol of the precompute function: what the state machine sends, and
//! what each step returns (never image bytes: state payloads are capped at 256 KB).
//!
//! - `{"step": "assign", "event": <EventBridge Object Created event>}` → a [`Job`];
//! - `{"step": "render", "job": <Job>}` → a [`RenderReport`];
//! - `{"step": "fail", "job": <Job>, "error": {"Error": .., "Cause": ..}}` → the [`Job`]
//!   with status `failed` (the `Catch` output of Step Functions, passed through);
//! - a bare EventBridge event (e.g. `cargo lambda invoke --data-file events/…`) → all steps,
//!   an [`Outcome`].

use super::event::{source_of, ObjectCreatedEvent};
use super::{cause_message, Job, Pipeline, PipelineError};
use crate::store::{ManifestStore, ObjectStore};
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
    /// Record a failure.
    Fail {
        /// The job `assign` returned.
        job: Job,
        /// The caught error.
        error: StepError,
    },
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
            "expected {\"step\": \"assign\"|\"render\"|\"fail\", ...} or an S3 Object Created \
             EventBridge event"
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
        Err(event) => {
            let outcome = pipeline.process(source_of(&event)?).await?;
            to_json(serde_json::to_value(outcome))
        }
    }
}
