//! The takedown Lambda (the task of `statemachine/takedown.asl.json`).
//!
//! Thin by design: read the configuration, wire the S3 (originals, replica, derived), DynamoDB
//! (manifest, audit) and CloudFront adapters, and hand each payload to
//! [`pixelfront_shared::removal::task::Removal::handle`]. Errors become the Lambda `errorType` the
//! state machine matches (`TooManyInvalidationsInProgress` and `Throttling` are retried at
//! length; `InvalidRequest` fails the execution at once). A finished request and each error
//! print their CloudWatch metrics ([`pixelfront_shared::metrics`]).

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pixelfront_shared::lambda;
use pixelfront_shared::metrics::{self, Emf};
use pixelfront_shared::removal::cloudfront::CloudFront;
use pixelfront_shared::removal::dynamo::DynamoAudit;
use pixelfront_shared::removal::task::Removal;
use pixelfront_shared::removal::RemovalError;
use pixelfront_shared::store::dynamo::DynamoManifest;
use pixelfront_shared::store::s3::{self, S3Objects};
use serde_json::Value;

/// A removal error as a Lambda function error.
#[derive(Debug)]
struct TaskError(RemovalError);

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
    lambda::init_tracing();
    let function = metrics::function_name("takedown");
    let originals_bucket = lambda::required_env("ORIGINALS_BUCKET")?;
    let derived_bucket = lambda::required_env("DERIVED_BUCKET")?;
    let manifest_table = lambda::required_env("MANIFEST_TABLE")?;
    let audit_table = lambda::required_env("AUDIT_TABLE")?;
    let distribution = lambda::required_env("DISTRIBUTION_ID")?;
    let replica_bucket = lambda::optional_env("REPLICA_BUCKET");
    let replica_region = lambda::optional_env("REPLICA_REGION");
    let replica_endpoint = lambda::optional_env("REPLICA_ENDPOINT_URL");

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = s3::client(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let replica = replica_bucket.map(|bucket| {
        let client = s3::client_in(&sdk, replica_region.as_deref(), replica_endpoint.as_deref());
        S3Objects::new(client, bucket)
    });
    let removal = Removal {
        manifest: DynamoManifest::new(dynamodb.clone(), manifest_table),
        audit: DynamoAudit::new(dynamodb, audit_table),
        originals: S3Objects::new(s3.clone(), originals_bucket),
        replica,
        derived: S3Objects::new(s3, derived_bucket),
        cdn: CloudFront::new(aws_sdk_cloudfront::Client::new(&sdk), distribution),
    };
    tracing::info!(replica = removal.replica.is_some(), "takedown ready");

    let (removal, function) = (&removal, function.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let step = event.payload.get("step").cloned().unwrap_or(Value::Null);
        match removal.handle(event.payload).await {
            Ok(result) => {
                tracing::info!(%step, "step done");
                metrics::takedown_result(function, step.as_str().unwrap_or(""), &result).emit();
                Ok(result)
            }
            Err(e) => {
                Emf::error(function, e.error_type()).emit();
                tracing::warn!(%step, error_type = e.error_type(), error = %e, "step failed");
                Err(TaskError(e))
            }
        }
    }))
    .await
}
