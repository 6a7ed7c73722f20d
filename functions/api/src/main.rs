//! The tenant API Lambda (docs/tenant-api.md), behind an API Gateway HTTP API.
//!
//! Thin by design: read the configuration, wire the DynamoDB (manifest, tenant policies, API
//! keys, audit), S3 (presigned uploads) and Step Functions (takedown) adapters, and hand each
//! request to the shared [`Api`] — `/api/v1/tenants/…` to `Api::handle`, `/img/{tenant}/latest/…`
//! to `Api::latest`. Every answer is JSON or short text.
//!
//! Environment: `MANIFEST_TABLE`, `TENANT_POLICY_TABLE`, `API_KEY_TABLE`, `AUDIT_TABLE`,
//! `ORIGINALS_BUCKET`, `TAKEDOWN_STATE_MACHINE_ARN`, the distribution's address (prefix of
//! variant URLs) as `DELIVERY_BASE_URL` or, read once at start, the SSM parameter named by
//! `DELIVERY_BASE_URL_PARAMETER` (the template's way: the distribution routes `latest` to this
//! API, so the function cannot name the distribution itself), optional `API_BASE_URL` (prefix
//! of `status_url`s) and `UPLOAD_TTL_SECONDS` (default 900).

use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use pixelfront_shared::api::aws::{DynamoApiKeys, S3UploadSigner, SfnTakedowns};
use pixelfront_shared::api::service::{Api, ApiCall, ApiConfig};
use pixelfront_shared::api::{ApiError, MAX_BODY_BYTES};
use pixelfront_shared::delivery::http::HttpResponse;
use pixelfront_shared::lambda;
use pixelfront_shared::removal::dynamo::DynamoAudit;
use pixelfront_shared::store::dynamo::DynamoManifest;
use pixelfront_shared::store::dynamo_policies::DynamoPolicies;
use pixelfront_shared::store::s3;
use std::time::{SystemTime, UNIX_EPOCH};

type AwsApi = Api<DynamoManifest, DynamoPolicies, DynamoApiKeys, S3UploadSigner, SfnTakedowns>;

/// A shared answer as the Lambda runtime's response (text bodies only).
fn to_lambda(resp: HttpResponse) -> Response<Body> {
    let (parts, bytes) = resp.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Text(String::from_utf8_lossy(&bytes).into_owned())
    };
    Response::from_parts(parts, body)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One request: the raw path (dot segments unresolved), then the route.
async fn answer(api: &AwsApi, req: &Request) -> HttpResponse {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    };
    let query = req.uri().query().unwrap_or("");
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if path.starts_with("/img/") {
        return api.latest(path, query, header("referer"), now_secs()).await;
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return ApiError::TooLarge(format!("body over {MAX_BODY_BYTES} bytes")).response();
    }
    let call = ApiCall {
        method: req.method(),
        path,
        query,
        authorization: header("authorization"),
        body,
    };
    api.handle(&call, now_secs()).await
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_tracing();
    let manifest_table = lambda::required_env("MANIFEST_TABLE")?;
    let policy_table = lambda::required_env("TENANT_POLICY_TABLE")?;
    let key_table = lambda::required_env("API_KEY_TABLE")?;
    let audit_table = lambda::required_env("AUDIT_TABLE")?;
    let originals_bucket = lambda::required_env("ORIGINALS_BUCKET")?;
    let takedown_arn = lambda::required_env("TAKEDOWN_STATE_MACHINE_ARN")?;
    let api_base_url = lambda::optional_env("API_BASE_URL").unwrap_or_default();
    let upload_ttl_secs = match lambda::optional_env("UPLOAD_TTL_SECONDS") {
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=604_800).contains(s))
            .ok_or_else(|| format!("UPLOAD_TTL_SECONDS must be 1..=604800 seconds, got {v:?}"))?,
        None => 900,
    };

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let delivery_base_url = match lambda::optional_env("DELIVERY_BASE_URL") {
        Some(url) => url,
        None => {
            let name = lambda::required_env("DELIVERY_BASE_URL_PARAMETER")?;
            aws_sdk_ssm::Client::new(&sdk)
                .get_parameter()
                .name(&name)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading {name}: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&e)
                    )
                })?
                .parameter
                .and_then(|p| p.value)
                .ok_or_else(|| format!("parameter {name} has no value"))?
        }
    };
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let api: AwsApi = Api {
        manifest: DynamoManifest::new(dynamo.clone(), manifest_table),
        policies: DynamoPolicies::new(dynamo.clone(), policy_table),
        keys: DynamoApiKeys::new(dynamo.clone(), key_table),
        uploads: S3UploadSigner::new(s3::client(&sdk), originals_bucket),
        takedowns: SfnTakedowns::new(
            aws_sdk_sfn::Client::new(&sdk),
            takedown_arn,
            DynamoAudit::new(dynamo, audit_table),
        ),
        config: ApiConfig {
            delivery_base_url: delivery_base_url.trim_end_matches('/').to_string(),
            api_base_url: api_base_url.trim_end_matches('/').to_string(),
            upload_ttl_secs,
            ..ApiConfig::default()
        },
        // On AWS the operator acts through IAM (`pixelfront takedown --aws`): tenant keys only.
        admin_token: None,
    };
    tracing::info!("api ready");
    let api = &api;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(to_lambda(answer(api, &req).await))
    }))
    .await
}
