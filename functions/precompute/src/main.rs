//! The precompute Lambda (the render task of `statemachine/precompute.asl.json`).
//!
//! Thin by design: read the configuration, size the rayon pool from the memory setting, wire
//! the S3 and DynamoDB adapters into the shared pipeline, and hand each payload to
//! [`pixelfront_shared::pipeline::task::handle`]. Errors become the Lambda `errorType` the state
//! machine matches: image errors are permanent (caught, recorded as `failed`), store errors
//! transient (retried with backoff). Each render and each error prints its CloudWatch metrics
//! ([`pixelfront_shared::metrics`]).

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pixelfront_shared::lambda;
use pixelfront_shared::metrics::{self, Emf};
use pixelfront_shared::pipeline::{task, Pipeline, PipelineError};
use pixelfront_shared::store::dynamo::DynamoManifest;
use pixelfront_shared::store::s3::{self, S3Objects};
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

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pixelfront_shared::alloc::limit_malloc_arenas();
    lambda::init_tracing();
    let function = metrics::function_name("precompute");
    let originals_bucket = lambda::required_env("ORIGINALS_BUCKET")?;
    let derived_bucket = lambda::required_env("DERIVED_BUCKET")?;
    let table = lambda::required_env("MANIFEST_TABLE")?;
    let threads = lambda::init_rayon()?;

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = s3::client(&sdk);
    let pipeline = Pipeline::new(
        S3Objects::new(s3.clone(), &originals_bucket),
        S3Objects::new(s3, derived_bucket),
        DynamoManifest::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        originals_bucket,
    );
    tracing::info!(threads, "precompute ready");

    let (pipeline, function) = (&pipeline, function.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match task::handle(pipeline, event.payload).await {
            Ok(result) => {
                metrics::precompute_result(function, &result).emit();
                Ok(result)
            }
            Err(e) => {
                Emf::error(function, e.error_type()).emit();
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
