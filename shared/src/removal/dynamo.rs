//! DynamoDB adapter of the [`AuditStore`] port (feature `aws`).
//!
//! Table layout (partition `pk`, sort `sk`, both strings):
//! - `pk = "{tenant}/{key}"`, `sk = request_id`: one item per asset and request with
//!   `request_id`, `action`, `reason`, `requester`, `tenant`, `key`, `status` (`in_progress`,
//!   then `taken_down`/`erased`), `started_at`, `finished_at`, `versions` (list of numbers),
//!   `deleted_originals`, `deleted_replica`, `deleted_derivatives` (lists of JSON strings
//!   `{"bucket","key","version_id","delete_marker"}`, appended before each deletion, so a
//!   retried step may repeat an entry: readers deduplicate) and `invalidation_ids`;
//! - `pk = "#request/{request_id}"`, `sk = "request"`: the request summary (`record`, JSON),
//!   written last and only once.

use super::{AuditRecord, AuditStore, Deleted, RemovalError, Summary, Target};
use crate::store::{AssetId, Status};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Audit records in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoAudit {
    client: Client,
    table: String,
}

impl DynamoAudit {
    /// The table `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAudit {
            client,
            table: table.into(),
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn unavailable<E: ProvideErrorMetadata, R>(err: SdkError<E, R>) -> RemovalError {
    let code = err.code().unwrap_or("no response").to_string();
    let message = err.message().unwrap_or_default().to_string();
    RemovalError::Audit(format!("{code} {message}").trim().to_string())
}

fn conditional<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// Partition key of a request's summary item.
pub fn request_pk(request_id: &str) -> String {
    format!("#request/{request_id}")
}

fn get_s(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn strings(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

fn deleted_list(item: &Item, name: &str) -> Result<Vec<Deleted>, RemovalError> {
    let mut out: Vec<Deleted> = Vec::new();
    for json in strings(item, name) {
        let d: Deleted = serde_json::from_str(&json)
            .map_err(|e| RemovalError::Audit(format!("malformed {name} entry: {e}")))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Parses an asset item.
pub fn parse_record(item: &Item) -> Result<AuditRecord, RemovalError> {
    let versions = item
        .get("versions")
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(AuditRecord {
        request_id: get_s(item, "request_id"),
        action: get_s(item, "action"),
        reason: get_s(item, "reason"),
        requester: get_s(item, "requester"),
        tenant: get_s(item, "tenant"),
        key: get_s(item, "key"),
        status: get_s(item, "status"),
        versions,
        started_at: get_s(item, "started_at"),
        finished_at: item.get("finished_at").and_then(|v| v.as_s().ok()).cloned(),
        deleted_originals: deleted_list(item, "deleted_originals")?,
        deleted_replica: deleted_list(item, "deleted_replica")?,
        deleted_derivatives: deleted_list(item, "deleted_derivatives")?,
        invalidation_ids: strings(item, "invalidation_ids"),
    })
}

impl AuditStore for DynamoAudit {
    async fn finished(&self, request_id: &str) -> Result<Option<Summary>, RemovalError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&request_pk(request_id)))
            .key("sk", s("request"))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        serde_json::from_str(&get_s(&item, "record"))
            .map(Some)
            .map_err(|e| RemovalError::Audit(format!("malformed request item: {e}")))
    }

    async fn open(&self, r: &AuditRecord) -> Result<(), RemovalError> {
        let versions = r.versions.iter().map(|v| AttributeValue::N(v.to_string()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("{}/{}", r.tenant, r.key)))
            .item("sk", s(&r.request_id))
            .item("request_id", s(&r.request_id))
            .item("action", s(&r.action))
            .item("reason", s(&r.reason))
            .item("requester", s(&r.requester))
            .item("tenant", s(&r.tenant))
            .item("key", s(&r.key))
            .item("status", s(&r.status))
            .item("started_at", s(&r.started_at))
            .item("versions", AttributeValue::L(versions.collect()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn append_deleted(
        &self,
        asset: &AssetId,
        request_id: &str,
        target: Target,
        deleted: &[Deleted],
    ) -> Result<(), RemovalError> {
        let mut entries = Vec::with_capacity(deleted.len());
        for d in deleted {
            let json = serde_json::to_string(d)
                .map_err(|e| RemovalError::Audit(format!("serializing: {e}")))?;
            entries.push(AttributeValue::S(json));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&asset.id()))
            .key("sk", s(request_id))
            .update_expression("SET #a = list_append(if_not_exists(#a, :empty), :new)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#a", target.audit_attribute())
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", AttributeValue::L(entries))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn close(
        &self,
        asset: &AssetId,
        request_id: &str,
        status: Status,
        finished_at: &str,
        invalidation_ids: &[String],
    ) -> Result<(), RemovalError> {
        let ids = invalidation_ids.iter().map(|i| s(i)).collect();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&asset.id()))
            .key("sk", s(request_id))
            .update_expression("SET #s = :s, finished_at = :f, invalidation_ids = :i")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":f", s(finished_at))
            .expression_attribute_values(":i", AttributeValue::L(ids))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_finished(&self, summary: &Summary) -> Result<Summary, RemovalError> {
        let json = serde_json::to_string(summary)
            .map_err(|e| RemovalError::Audit(format!("serializing: {e}")))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&request_pk(&summary.request_id)))
            .item("sk", s("request"))
            .item("record", s(&json))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(summary.clone()),
            Err(e) if conditional(&e) => self
                .finished(&summary.request_id)
                .await?
                .ok_or_else(|| RemovalError::Audit("request item vanished".into())),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn records(&self, asset: &AssetId) -> Result<Vec<AuditRecord>, RemovalError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&asset.id()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in resp.items() {
                out.push(parse_record(item)?);
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(out)
    }
}
