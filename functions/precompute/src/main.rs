//! The precompute Lambda (the render task of `statemachine/precompute.asl.json`).
//!
//! Thin by design: read the configuration, size the rayon pool from the memory setting, wire
//! the S3 and DynamoDB adapters into the shared pipeline, and hand each payload to
//! [`pixelfront::pipeline::task::handle`]. Errors become the Lambda `errorType` the state
//! machine matches: image errors are permanent (caught, recorded as `failed`), store errors
//! transient (retried with backoff).

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pixelfront::pipeline::{task, Pipeline, PipelineError};
use pixelfront::render::sizing::threads_for_lambda_memory;
use pixelfront::store::dynamo::DynamoManifest;
use pixelfront::store::s3::{self, S3Objects};
use serde_json::Value;

/// A pipeline error as a Lambda function error.
#[derive(Debug)]
struct TaskError(PipelineError);

impl From<TaskError> for Diagnostic {
    fn from(e: TaskError) -> Diagnostic {
        Diagnostic {
            error_type: e.0.error_type().to_string(),
            error_message: e.0.to_string(),
        }
    }
}

/// Required environment variable, with a clear start-up error.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("environment variable {name} is not set"))
}

/// Render threads: `PIXELFRONT_THREADS`, else from `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (vCPUs
/// scale with memory), else every core.
fn render_threads() -> usize {
    let parse = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    if let Some(n) = parse("PIXELFRONT_THREADS").filter(|&n| n > 0) {
        return n as usize;
    }
    match parse("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        Some(mb) => threads_for_lambda_memory(mb),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();

    let originals_bucket = env("ORIGINALS_BUCKET")?;
    let derived_bucket = env("DERIVED_BUCKET")?;
    let table = env("MANIFEST_TABLE")?;
    let threads = render_threads();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = s3::client(&sdk);
    let pipeline = Pipeline::new(
        S3Objects::new(s3.clone(), &originals_bucket),
        S3Objects::new(s3, derived_bucket),
        DynamoManifest::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        originals_bucket,
    );
    tracing::info!(threads, "precompute ready");

    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match task::handle(pipeline, event.payload).await {
            Ok(result) => Ok(result),
            Err(e) => {
                tracing::warn!(
                    error_type = e.error_type(),
                    permanent = e.is_permanent(),
                    error = %e,
                    "task failed"
                );
                Err(TaskError(e))
            }
        }
    }))
    .await
}
