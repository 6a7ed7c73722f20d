//! The precompute pipeline (docs/architecture.md, docs/aws-deploy.md): an upload event becomes version N of an asset, the
//! original is decoded once, the standard variants are rendered in parallel and written as
//! static objects, and the manifest records the outcome.
//!
//! Three steps, each safe to repeat (S3 events and Express workflows are at-least-once):
//! [`Pipeline::assign`] (conditional version assignment), [`Pipeline::render`] (idempotent
//! writes under version-scoped keys, then `ready`) and [`Pipeline::fail`] (records the reason,
//! never over `ready`). The Step Functions workflow calls them as separate Lambda tasks;
//! [`Pipeline::process`] chains them for the local stack and for direct invocations.
//! Generic over the storage ports: the same code runs on S3 + DynamoDB and on local storage.

pub mod event;
pub mod task;

use crate::delivery::admission::{estimate_catalogue, Admission};
use crate::policy::{Policy, Variant};
use crate::render::{probe, render_catalogue, RenderConfig, RenderError, Target};
use crate::store::{
    AssetId, ManifestError, ManifestStore, ObjectStore, OriginalInfo, PutOptions, SourceRef,
    Status, StoreError, VariantRecord, VersionRecord,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `Cache-Control` of every derivative: versioned URLs never change (docs/aws-deploy.md).
pub const DERIVATIVE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Why a pipeline step failed. [`PipelineError::error_type`] is the stable name the state
/// machine matches; [`PipelineError::is_permanent`] says whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The image cannot be rendered (corrupt, unsupported, over limits).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The S3 key cannot be served under the URL grammar.
    #[error("key rejected: {0}")]
    KeyRejected(String),
    /// The original (that exact version) no longer exists.
    #[error("original is gone: {0}")]
    SourceGone(String),
    /// The object store refused the request (permissions, invalid key).
    #[error("{0}")]
    StoreDenied(String),
    /// The task input is not what the step expects.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The manifest holds something the step cannot work with.
    #[error("manifest: {0}")]
    ManifestInvalid(String),
    /// The object store is unreachable or failing: transient.
    #[error("{0}")]
    StoreUnavailable(String),
    /// The manifest store is unreachable or failing: transient.
    #[error("{0}")]
    ManifestUnavailable(String),
    /// Concurrent uploads of one asset kept winning the version counter: transient.
    #[error("{0}")]
    VersionConflict(String),
    /// A failure recorded earlier in the manifest (a rejected upload), with its stored type.
    #[error("{reason}")]
    Recorded {
        /// The stored error type, e.g. `ImageCorrupt`.
        error_type: String,
        /// The stored reason.
        reason: String,
    },
}

/// Prefixes of the error names the platform reports for a run rather than for the image:
/// `Lambda.*` (invoke-level errors such as `Lambda.ServiceException` or
/// `Lambda.ClientExecutionTimeoutException`, and `Lambda.Unknown` for an unhandled function
/// error), `Runtime.*` (`Runtime.ExitError`: the function exited, a panic aborts;
/// `Runtime.OutOfMemory`), `Sandbox.*` (`Sandbox.Timedout`: the function's own timeout) and
/// `States.*` (`States.Timeout`: the task's `TimeoutSeconds`).
pub const PLATFORM_ERROR_PREFIXES: [&str; 4] = ["Lambda.", "Runtime.", "Sandbox.", "States."];

/// Whether a failure of this type may succeed when tried again: ours that are transient
/// (`StoreUnavailable`, `ManifestUnavailable`, `VersionConflict`) and every name of
/// [`PLATFORM_ERROR_PREFIXES`]. A version recorded `failed` with such a type renders again when
/// its event is delivered again (after a crash, an out-of-memory kill or a timeout whose
/// retries ran out); any other type (`ImageCorrupt`, `ImageTooLarge`, `KeyRejected`, …) is
/// permanent and the event stays refused.
pub fn is_transient_error_type(error_type: &str) -> bool {
    matches!(
        error_type,
        "StoreUnavailable" | "ManifestUnavailable" | "VersionConflict"
    ) || PLATFORM_ERROR_PREFIXES
        .iter()
        .any(|prefix| error_type.starts_with(prefix))
}

impl PipelineError {
    /// Stable machine-readable type, the Lambda `errorType` (e.g. `ImageCorrupt`).
    pub fn error_type(&self) -> &str {
        match self {
            PipelineError::Recorded { error_type, .. } => error_type,
            PipelineError::Render(e) => e.error_type(),
            PipelineError::KeyRejected(_) => "KeyRejected",
            PipelineError::SourceGone(_) => "SourceGone",
            PipelineError::StoreDenied(_) => "StoreDenied",
            PipelineError::InvalidInput(_) => "InvalidInput",
            PipelineError::ManifestInvalid(_) => "ManifestInvalid",
            PipelineError::StoreUnavailable(_) => "StoreUnavailable",
            PipelineError::ManifestUnavailable(_) => "ManifestUnavailable",
            PipelineError::VersionConflict(_) => "VersionConflict",
        }
    }

    /// `true` when retrying the same input cannot succeed.
    pub fn is_permanent(&self) -> bool {
        !is_transient_error_type(self.error_type())
    }
}

impl From<StoreError> for PipelineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => PipelineError::SourceGone(what),
            StoreError::TooLarge { bytes, limit } => {
                PipelineError::Render(RenderError::TooManyBytes { bytes, limit })
            }
            StoreError::Denied(_) => PipelineError::StoreDenied(e.to_string()),
            StoreError::Unavailable(_) => PipelineError::StoreUnavailable(e.to_string()),
        }
    }
}

impl From<ManifestError> for PipelineError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Unavailable(_) => PipelineError::ManifestUnavailable(e.to_string()),
            ManifestError::Conflict(_) => PipelineError::VersionConflict(e.to_string()),
            other => PipelineError::ManifestInvalid(other.to_string()),
        }
    }
}

/// What the workflow does after assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Render the variants (new version, or a retry after a transient failure).
    Render,
    /// Nothing to do: a repeated event for a version that is already ready (or removed).
    Done,
    /// The upload is rejected (recorded as `failed`); the workflow ends failed.
    Rejected,
}

/// One version to process: the output of `assign`, the input of `render` and `fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The asset.
    #[serde(flatten)]
    pub asset: AssetId,
    /// The assigned version.
    pub version: u32,
    /// The exact original.
    pub source: SourceRef,
    /// What to do next.
    pub action: Action,
    /// Manifest status after the step.
    pub status: Status,
    /// `true` when this delivery created the version (false for a repeated event).
    pub created: bool,
    /// Error type when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Reason when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Job {
    fn from_record(rec: &VersionRecord, source: SourceRef, action: Action, created: bool) -> Job {
        Job {
            asset: rec.asset.clone(),
            version: rec.version,
            source,
            action,
            status: rec.status,
            created,
            error_type: rec.error_type.clone(),
            error: rec.error.clone(),
        }
    }
}

/// One written derivative, as the render step reports it (never the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenVariant {
    /// The manifest entry.
    #[serde(flatten)]
    pub variant: VariantRecord,
    /// Object key in the derived store.
    pub object_key: String,
    /// `Content-Type` written.
    pub content_type: String,
}

/// The render step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderReport {
    /// The asset.
    #[serde(flatten)]
    pub asset: AssetId,
    /// The version.
    pub version: u32,
    /// Status afterwards (`ready`, or the status that made the step a no-op).
    pub status: Status,
    /// `true` when the version was already ready and nothing was rendered.
    pub skipped: bool,
    /// Original facts.
    pub original: Option<OriginalInfo>,
    /// Decode time, milliseconds.
    pub decode_ms: u64,
    /// Wall time of the whole step (fetch, render, writes, manifest), milliseconds.
    pub total_ms: u64,
    /// The variants written.
    pub variants: Vec<WrittenVariant>,
}

/// What [`Pipeline::backfill`] did with one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillOutcome {
    /// Rendered again with the current catalogue.
    Rendered,
    /// Already current: nothing written.
    Current,
    /// Not `ready` (failed, rendering or removed): left alone.
    Skipped,
}

/// The backfill step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillReport {
    /// The asset.
    #[serde(flatten)]
    pub asset: AssetId,
    /// The version.
    pub version: u32,
    /// What happened.
    pub outcome: BackfillOutcome,
    /// Variants the record lists afterwards.
    pub variants: usize,
}

/// Everything `process` did for one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The assignment.
    pub job: Job,
    /// The render, when one ran.
    pub render: Option<RenderReport>,
}

/// The current time as RFC 3339 UTC with seconds, e.g. `2026-11-25T10:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats Unix seconds as RFC 3339 UTC with seconds, e.g. `2026-11-25T10:46:39Z`. Instants
/// past `9999-12-31T23:59:59Z` (the format's last) are given as that.
pub fn rfc3339(unix_secs: u64) -> String {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_string())
}

/// Extracts the human-readable message from a Step Functions error `Cause`, which for a
/// Lambda error is the JSON `{"errorType": ..., "errorMessage": ...}`.
pub fn cause_message(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string())
}

/// The pipeline over an originals store, a derived store and a manifest.
#[derive(Debug)]
pub struct Pipeline<O, D, M> {
    /// Where originals are read (by exact version).
    pub originals: O,
    /// Where derivatives are written.
    pub derived: D,
    /// The manifest.
    pub manifest: M,
    /// Name of the originals bucket events must come from (events naming another bucket are
    /// refused: the pipeline never reads a bucket the request chose).
    pub originals_bucket: String,
    /// Render settings.
    pub config: RenderConfig,
    /// The variants to render (the standard catalogue).
    pub variants: Vec<Variant>,
    /// The render gate the catalogue renders queue at, if any: the local stack shares its
    /// on-demand gate here, so concurrent uploads stay within one memory budget. `None` on AWS,
    /// where each precompute invocation has its own memory and renders one original.
    pub admission: Option<Admission>,
}

impl<O: ObjectStore, D: ObjectStore, M: ManifestStore> Pipeline<O, D, M> {
    /// A pipeline rendering the standard catalogue with default settings.
    pub fn new(originals: O, derived: D, manifest: M, originals_bucket: impl Into<String>) -> Self {
        Pipeline {
            originals,
            derived,
            manifest,
            originals_bucket: originals_bucket.into(),
            config: RenderConfig::default(),
            variants: Policy::get().variants.clone(),
            admission: None,
        }
    }

    /// Step 1: assign a version to the uploaded object (or find the one a previous delivery
    /// assigned). Keys that cannot be served and oversize objects are recorded as `failed`
    /// here, without downloading anything, and come back with [`Action::Rejected`].
    pub async fn assign(&self, source: SourceRef) -> Result<Job, PipelineError> {
        if source.bucket != self.originals_bucket {
            return Err(PipelineError::InvalidInput(format!(
                "event for bucket {:?}, this pipeline reads {:?}",
                source.bucket, self.originals_bucket
            )));
        }
        let (asset, rejection) = match event::split_asset(&source.key) {
            Ok(asset) => (asset, None),
            Err((asset, why)) => (asset, Some(PipelineError::KeyRejected(why))),
        };
        let limit = self.config.limits.max_input_bytes;
        let rejection = rejection.or_else(|| {
            (source.size > limit).then_some(PipelineError::Render(RenderError::TooManyBytes {
                bytes: source.size,
                limit,
            }))
        });
        let now = now_rfc3339();
        let assigned = self.manifest.assign(&asset, &source, &now).await?;
        let rec = &assigned.record;
        if let Some(err) = rejection {
            let rec = self
                .manifest
                .mark_failed(
                    &asset,
                    rec.version,
                    err.error_type(),
                    &err.to_string(),
                    &now,
                )
                .await?;
            return Ok(Job::from_record(
                &rec,
                source,
                Action::Rejected,
                assigned.created,
            ));
        }
        let action = match rec.status {
            Status::Rendering => Action::Render,
            Status::Ready | Status::TakenDown | Status::Erased => Action::Done,
            Status::Failed => match rec.error_type.as_deref() {
                Some(t) if !is_transient_error_type(t) => Action::Rejected,
                _ => Action::Render,
            },
        };
        Ok(Job::from_record(rec, source, action, assigned.created))
    }

    /// Step 2: fetch the exact original version, decode it once, render every variant in
    /// parallel (rayon, on a blocking thread), write them, and mark the version `ready`.
    /// A version that is already `ready` is not rendered again.
    pub async fn render(&self, job: &Job) -> Result<RenderReport, PipelineError> {
        let started = Instant::now();
        let rec = self
            .manifest
            .get(&job.asset, job.version)
            .await?
            .ok_or_else(|| {
                PipelineError::ManifestInvalid(format!(
                    "{} v{} was never assigned",
                    job.asset, job.version
                ))
            })?;
        if matches!(
            rec.status,
            Status::Ready | Status::TakenDown | Status::Erased
        ) {
            return Ok(RenderReport {
                asset: rec.asset.clone(),
                version: rec.version,
                status: rec.status,
                skipped: true,
                original: rec.original.clone(),
                decode_ms: 0,
                total_ms: started.elapsed().as_millis() as u64,
                variants: Vec::new(),
            });
        }
        let source = &job.source;
        let version_id = source.version_id.as_deref().filter(|v| *v != "null");
        let (info, written, decode_ms) = self
            .render_and_store(&job.asset, job.version, &source.key, version_id)
            .await?;
        let rec = match self
            .commit_ready(&job.asset, job.version, &info, &written)
            .await?
        {
            Ok(rec) => rec,
            // Taken down or erased while it rendered: what was written is gone again.
            Err(status) => {
                return Ok(RenderReport {
                    asset: job.asset.clone(),
                    version: job.version,
                    status,
                    skipped: true,
                    original: Some(info),
                    decode_ms,
                    total_ms: started.elapsed().as_millis() as u64,
                    variants: Vec::new(),
                })
            }
        };
        Ok(RenderReport {
            asset: rec.asset,
            version: rec.version,
            status: rec.status,
            skipped: false,
            original: Some(info),
            decode_ms,
            total_ms: started.elapsed().as_millis() as u64,
            variants: written,
        })
    }

    /// Fetches one exact original, renders the catalogue (rayon, on a blocking thread) and
    /// writes every variant under version `version`'s prefix; returns the original's facts,
    /// the written variants and the decode time (ms).
    async fn render_and_store(
        &self,
        asset: &AssetId,
        version: u32,
        source_key: &str,
        version_id: Option<&str>,
    ) -> Result<(OriginalInfo, Vec<WrittenVariant>, u64), PipelineError> {
        let original = self
            .originals
            .get(source_key, version_id, self.config.limits.max_input_bytes)
            .await?;

        let config = self.config;
        let variants = self.variants.clone();
        let permit = match &self.admission {
            Some(gate) => {
                // The header only: a file past the limits fails here, before it queues.
                let source = probe(&original.bytes, &config.limits)?;
                let targets: Vec<Target> = variants.iter().map(Target::from).collect();
                let bytes = original.bytes.len() as u64;
                Some(
                    gate.queue(estimate_catalogue(&source, &targets, &config, bytes))
                        .await,
                )
            }
            None => None,
        };
        let rendered = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            render_catalogue(&original.bytes, &variants, &config)
        })
        .await
        .map_err(|e| {
            PipelineError::Render(RenderError::Internal {
                stage: "render task",
                detail: e.to_string(),
            })
        })??;

        let prefix = asset.version_prefix(version);
        let tag = asset.cache_tag();
        let mut written = Vec::with_capacity(rendered.outputs.len());
        let mut puts = Vec::with_capacity(rendered.outputs.len());
        for (variant, out) in rendered.outputs {
            let derivative = out.canonical.derivative_name();
            let object_key = format!("{prefix}/{derivative}");
            let content_type = variant.fmt.content_type().to_string();
            written.push(WrittenVariant {
                variant: VariantRecord {
                    name: variant.name.clone(),
                    derivative,
                    width: out.width,
                    height: out.height,
                    bytes: out.bytes.len() as u64,
                    render_ms: out.render_ms,
                },
                object_key: object_key.clone(),
                content_type: content_type.clone(),
            });
            let opts = PutOptions {
                content_type,
                cache_control: DERIVATIVE_CACHE_CONTROL.to_string(),
                cache_tag: Some(tag.clone()),
                on_demand: false,
            };
            puts.push(async move { self.derived.put(&object_key, out.bytes, &opts).await });
        }
        futures_util::future::try_join_all(puts).await?;

        let info = OriginalInfo {
            width: rendered.source.width,
            height: rendered.source.height,
            format: rendered.source.format.as_str().to_string(),
        };
        Ok((info, written, rendered.decode_ms))
    }

    /// The (variant name, derivative name) pairs the current catalogue renders: what a `ready`
    /// version must list to be current.
    pub fn catalogue_derivatives(&self) -> Vec<(String, String)> {
        self.variants
            .iter()
            .map(|v| {
                let target = crate::render::Target::from(v);
                (v.name.clone(), target.canonical().derivative_name())
            })
            .collect()
    }

    /// Backfill one version after a catalogue change: a `ready` version whose recorded
    /// variants differ from [`Pipeline::catalogue_derivatives`] is rendered again from its
    /// exact original and its record replaced; a current one is left alone (so a repeated
    /// backfill writes nothing), and any other status is skipped.
    pub async fn backfill(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<BackfillReport, PipelineError> {
        let rec = self.manifest.get(asset, version).await?.ok_or_else(|| {
            PipelineError::ManifestInvalid(format!("{asset} v{version} was never assigned"))
        })?;
        let report = |outcome, variants| BackfillReport {
            asset: asset.clone(),
            version,
            outcome,
            variants,
        };
        if rec.status != Status::Ready {
            return Ok(report(BackfillOutcome::Skipped, rec.variants.len()));
        }
        let recorded: Vec<(String, String)> = rec
            .variants
            .iter()
            .map(|v| (v.name.clone(), v.derivative.clone()))
            .collect();
        if recorded == self.catalogue_derivatives() {
            return Ok(report(BackfillOutcome::Current, recorded.len()));
        }
        // The source identity is the S3 version id, or `etag:…` on an unversioned bucket.
        let version_id = Some(rec.source_version_id.as_str())
            .filter(|v| !v.starts_with("etag:") && *v != "unversioned" && *v != "null");
        let (info, written, _) = self
            .render_and_store(asset, version, &asset.id(), version_id)
            .await?;
        match self.commit_ready(asset, version, &info, &written).await? {
            Ok(_) => Ok(report(BackfillOutcome::Rendered, written.len())),
            Err(_) => Ok(report(BackfillOutcome::Skipped, 0)),
        }
    }

    /// Marks `version` `ready` with the variants just written -> `Ok(record)`. When the version
    /// was taken down or erased while it rendered (the manifest refuses `ready`), the objects
    /// just written are deleted again -> `Err(that status)`: a takedown's purge may have
    /// listed the version's prefix before they existed, and no pixel of it may stay.
    async fn commit_ready(
        &self,
        asset: &AssetId,
        version: u32,
        info: &OriginalInfo,
        written: &[WrittenVariant],
    ) -> Result<Result<VersionRecord, Status>, PipelineError> {
        let records: Vec<VariantRecord> = written.iter().map(|w| w.variant.clone()).collect();
        let refused = match self
            .manifest
            .mark_ready(asset, version, info, &records, &now_rfc3339())
            .await
        {
            Ok(rec) => return Ok(Ok(rec)),
            Err(e) => e,
        };
        let removed = match &refused {
            ManifestError::WrongStatus { status, .. } => {
                Status::parse(status).filter(|s| matches!(s, Status::TakenDown | Status::Erased))
            }
            _ => None,
        };
        let Some(removed) = removed else {
            return Err(refused.into());
        };
        for w in written {
            self.derived.delete(&w.object_key).await?;
        }
        tracing::info!(%asset, version, status = removed.as_str(), deleted = written.len(),
            "removed while rendering: written variants deleted");
        Ok(Err(removed))
    }

    /// Step 3 (on error): record the failure. A version that became `ready` meanwhile (a
    /// duplicate run won) stays `ready`.
    pub async fn fail(
        &self,
        job: &Job,
        error_type: &str,
        reason: &str,
    ) -> Result<Job, PipelineError> {
        let rec = self
            .manifest
            .mark_failed(&job.asset, job.version, error_type, reason, &now_rfc3339())
            .await?;
        let action = if rec.status == Status::Ready {
            Action::Done
        } else {
            Action::Rejected
        };
        Ok(Job::from_record(
            &rec,
            job.source.clone(),
            action,
            job.created,
        ))
    }

    /// All steps for one upload event delivered straight to the function (no state machine):
    /// assign, then [`Pipeline::render_or_fail`] with [`Retry::REDELIVERY`]: a permanent
    /// error is recorded and returned; a transient one is returned without marking the version
    /// failed, so the platform's redelivery renders it.
    pub async fn process(&self, source: SourceRef) -> Result<Outcome, PipelineError> {
        let job = self.assign(source).await?;
        match job.action {
            Action::Done => Ok(Outcome { job, render: None }),
            Action::Rejected => Err(rejection_error(&job)),
            Action::Render => {
                let report = self.render_or_fail(&job, Retry::REDELIVERY).await?;
                Ok(Outcome {
                    job,
                    render: Some(report),
                })
            }
        }
    }

    /// The pipeline's one entry point after assignment, for every stack: render `job`,
    /// retrying transient errors as `retry` says; when the error is permanent, or transient
    /// with the retries used up and `retry.record_exhausted`, record it (`failed`, with its
    /// type and reason) and return it. [`Retry::STATE_MACHINE`] is what the precompute state
    /// machine does (its `RenderVariants` retry, then `MarkFailed`), which the local stack
    /// runs in-process.
    pub async fn render_or_fail(
        &self,
        job: &Job,
        retry: Retry,
    ) -> Result<RenderReport, PipelineError> {
        let mut delay = retry.first_delay;
        let mut retries = 0;
        loop {
            let err = match self.render(job).await {
                Ok(report) => return Ok(report),
                Err(e) => e,
            };
            if !err.is_permanent() && retries < retry.retries {
                retries += 1;
                tracing::warn!(asset = %job.asset, version = job.version, retries, error = %err, "render failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * retry.backoff).min(retry.max_delay);
                continue;
            }
            if err.is_permanent() || retry.record_exhausted {
                self.fail(job, err.error_type(), &err.to_string()).await?;
            }
            return Err(err);
        }
    }
}

/// How [`Pipeline::render_or_fail`] retries transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first try, 0..; only transient errors are retried.
    pub retries: u32,
    /// Wait before the first retry.
    pub first_delay: Duration,
    /// Factor applied to the wait after each retry, 1..
    pub backoff: u32,
    /// Longest wait between two tries.
    pub max_delay: Duration,
    /// Record a transient error as `failed` once the retries are used up (a redelivered event
    /// for a version failed with a transient type is rendered again).
    pub record_exhausted: bool,
}

impl Retry {
    /// The precompute state machine's `RenderVariants` retry of storage errors (2 retries from
    /// 1 s, doubling, at most 20 s apart), then its catch-all `MarkFailed`.
    pub const STATE_MACHINE: Retry = Retry {
        retries: 2,
        first_delay: Duration::from_secs(1),
        backoff: 2,
        max_delay: Duration::from_secs(20),
        record_exhausted: true,
    };

    /// No retry here: a transient error is left for the platform to deliver the event again.
    pub const REDELIVERY: Retry = Retry {
        retries: 0,
        first_delay: Duration::ZERO,
        backoff: 1,
        max_delay: Duration::ZERO,
        record_exhausted: false,
    };
}

/// The error a rejected job stands for (its recorded type and reason).
pub fn rejection_error(job: &Job) -> PipelineError {
    PipelineError::Recorded {
        error_type: job
            .error_type
            .clone()
            .unwrap_or_else(|| "InvalidInput".into()),
        reason: job.error.clone().unwrap_or_else(|| "rejected".into()),
    }
}

#[cfg(test)]
mod asl_tests;
#[cfg(test)]
mod tests;
