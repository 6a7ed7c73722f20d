//! AWS adapters of the tenant API's ports (feature `api-aws`): API keys in their DynamoDB
//! table ([`DynamoApiKeys`]), upload URLs as S3 presigned `PUT`s ([`S3UploadSigner`]) and
//! takedown requests as executions of the takedown state machine ([`SfnTakedowns`]).

use super::keys::{ApiKeyRecord, ApiKeyStore};
use super::service::{finished_status, TakedownStatus, Takedowns};
use super::uploads::{UploadScope, UploadSigner, UploadTarget};
use crate::removal::dynamo::DynamoAudit;
use crate::removal::{validate, RemovalError, RemovalInput};
use crate::store::StoreError;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The API key table: partition key `kid`, attributes `tenant`, `hash`, `created_at`. Only the
/// `api` function reads it (`dynamodb:GetItem`); `pixelfront tenant --aws api-key-*` writes it.
#[derive(Debug, Clone)]
pub struct DynamoApiKeys {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn attr(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

impl DynamoApiKeys {
    /// Keys in `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoApiKeys {
            client,
            table: table.into(),
        }
    }

    /// Stores `record` unless its key id exists.
    pub async fn put(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("kid", AttributeValue::S(record.kid.clone()))
            .item("tenant", AttributeValue::S(record.tenant.clone()))
            .item("hash", AttributeValue::S(record.hash.clone()))
            .item("created_at", AttributeValue::S(record.created_at.clone()))
            .condition_expression("attribute_not_exists(kid)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))
    }

    /// Deletes key `kid` if it is `tenant`'s: `Ok(false)` when there is no such key.
    pub async fn delete(&self, tenant: &str, kid: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("kid", AttributeValue::S(kid.to_string()))
            .condition_expression("tenant = :t")
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(DisplayErrorContext(&e).to_string())),
        }
    }

    /// Every key of `tenant` (a scan of the table, filtered).
    pub async fn of_tenant(&self, tenant: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("tenant = :t")
                .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))?;
            out.extend(page.items().iter().filter_map(parse_key));
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }
}

fn parse_key(item: &std::collections::HashMap<String, AttributeValue>) -> Option<ApiKeyRecord> {
    Some(ApiKeyRecord {
        kid: attr(item, "kid")?,
        tenant: attr(item, "tenant")?,
        hash: attr(item, "hash")?,
        created_at: attr(item, "created_at").unwrap_or_default(),
    })
}

impl ApiKeyStore for DynamoApiKeys {
    async fn api_key(&self, kid: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("kid", AttributeValue::S(kid.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))?
            .item;
        Ok(item.as_ref().and_then(parse_key))
    }
}

/// Upload URLs as S3 presigned `PUT`s on the originals bucket, with the content type and
/// length signed: S3 refuses any other key, type or length (it needs exactly the declared
/// length), and any `PUT` after the expiry.
#[derive(Debug, Clone)]
pub struct S3UploadSigner {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3UploadSigner {
    /// Presigns with `client`'s credentials (the `api` function's role: `s3:PutObject` on the
    /// originals bucket) for `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3UploadSigner {
            client,
            bucket: bucket.into(),
        }
    }
}

impl UploadSigner for S3UploadSigner {
    async fn presign(&self, scope: &UploadScope<'_>) -> Result<UploadTarget, StoreError> {
        use aws_sdk_s3::presigning::PresigningConfig;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ttl = Duration::from_secs(scope.expires_at.saturating_sub(now).max(1));
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Denied(format!("presigning: {e}")))?;
        let length = i64::try_from(scope.content_length)
            .map_err(|_| StoreError::Denied("content length out of range".into()))?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(scope.object_key)
            .content_type(scope.content_type)
            .content_length(length)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        let mut headers = BTreeMap::new();
        for (name, value) in presigned.headers() {
            // The client's HTTP library sets Content-Length from the body it sends.
            if !name.eq_ignore_ascii_case("content-length") {
                headers.insert(canonical_header(name), value.to_string());
            }
        }
        headers.insert("Content-Type".into(), scope.content_type.to_string());
        Ok(UploadTarget {
            method: "PUT",
            url: presigned.uri().to_string(),
            headers,
        })
    }
}

/// `content-type` → `Content-Type`.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Takedown requests as executions of the takedown state machine, named by the request id;
/// their status from the execution and, once it succeeded, the audit table.
#[derive(Debug, Clone)]
pub struct SfnTakedowns {
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
    audit: DynamoAudit,
}

impl SfnTakedowns {
    /// Executions of `state_machine_arn`; records read from `audit`.
    pub fn new(
        sfn: aws_sdk_sfn::Client,
        state_machine_arn: impl Into<String>,
        audit: DynamoAudit,
    ) -> Self {
        SfnTakedowns {
            sfn,
            state_machine_arn: state_machine_arn.into(),
            audit,
        }
    }

    fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

fn sfn_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: &aws_sdk_sfn::error::SdkError<E, R>,
) -> RemovalError {
    RemovalError::Audit(aws_sdk_sfn::error::DisplayErrorContext(e).to_string())
}

impl Takedowns for SfnTakedowns {
    async fn start(&self, request_id: &str, input: &RemovalInput) -> Result<(), RemovalError> {
        let checked = validate(input)?;
        let json = serde_json::to_string(input)
            .map_err(|e| RemovalError::InvalidRequest(e.to_string()))?;
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(request_id)
            .input(&json)
            .send()
            .await;
        let Err(e) = started else {
            return Ok(());
        };
        if !e
            .as_service_error()
            .is_some_and(|s| s.is_execution_already_exists())
        {
            return Err(sfn_error(&e));
        }
        // The same request again is accepted; the id naming another request is a conflict.
        let theirs = self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(request_id))
            .send()
            .await
            .map_err(|e| sfn_error(&e))?;
        let same = theirs
            .input()
            .and_then(|i| serde_json::from_str::<RemovalInput>(i).ok())
            .and_then(|i| validate(&i).ok())
            .is_some_and(|v| v.fingerprint() == checked.fingerprint());
        if same {
            Ok(())
        } else {
            Err(RemovalError::Conflict(request_id.to_string()))
        }
    }

    async fn status(&self, request_id: &str) -> Result<Option<TakedownStatus>, RemovalError> {
        use aws_sdk_sfn::types::ExecutionStatus;
        let described = match self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(request_id))
            .send()
            .await
        {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sfn_error(&e)),
        };
        let tenant = described
            .input()
            .and_then(|i| serde_json::from_str::<RemovalInput>(i).ok())
            .and_then(|i| i.tenant)
            .unwrap_or_default();
        let state = match described.status() {
            ExecutionStatus::Succeeded => {
                if let Some(done) = finished_status(&self.audit, request_id).await? {
                    return Ok(Some(done));
                }
                "in_progress"
            }
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => "in_progress",
            _ => "failed",
        };
        Ok(Some(TakedownStatus {
            request_id: request_id.to_string(),
            tenant,
            status: state.to_string(),
            summary: None,
            records: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_header;

    #[test]
    fn header_names_are_written_as_http_writes_them() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("x-amz-meta-a"), "X-Amz-Meta-A");
    }
}
