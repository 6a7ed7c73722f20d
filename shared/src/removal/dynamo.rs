//! DynamoDB adapter of the [`AuditStore`] port (feature `aws`).
//!
//! Table layout (partition `pk`, sort `sk`, both strings):
//! - `pk = "{tenant}/{key}"`, `sk = request_id`: one item per asset and request with
//!   `request_id`, `action`, `reason`, `requester`, `tenant`, `key`, `status` (`in_progress`,
//!   then `taken_down`/`erased`), `started_at`, `finished_at`, `versions` (list of numbers) and
//!   `invalidation_ids`;
//! - `pk = "{tenant}/{key}"`, `sk = "{request_id}#{attribute}#{digest}"`: the deletions, in
//!   chunk items of at most [`CHUNK_BYTES`] (an asset may have thousands of stored derivatives,
//!   more than one 400 KB item holds). `attribute` is `deleted_originals`, `deleted_replica` or
//!   `deleted_derivatives`, `entries` a list of JSON strings
//!   `{"bucket","key","version_id","delete_marker"}`, and `digest` the SHA-256 of the chunk's
//!   entries, so a retried step writes the same item again while a different list (what was
//!   left after a partial purge) gets an item of its own. Chunks are written before the
//!   deletions; readers merge them into the record and deduplicate. Request ids never contain
//!   `#`, so the two kinds of items cannot collide. Lists inside the asset item itself (the
//!   earlier layout) are still read;
//! - `pk = "#request/{request_id}"`, `sk = "request"`: the request summary (`record`, JSON),
//!   written last and only once;
//! - `pk = "#request/{request_id}"`, `sk = "claim"`: what the request removes (`fingerprint`,
//!   [`super::Validated::fingerprint`]), written by `begin` with a conditional put, so the
//!   first claim of an id stands and a reuse for another asset or action is a conflict.

use super::{AuditRecord, AuditStore, Deleted, RemovalError, Summary, Target};
use crate::store::{AssetId, Status};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Most bytes of entries in one chunk item (DynamoDB items hold at most 400 KB).
pub const CHUNK_BYTES: usize = 300 * 1024;

/// Splits serialized entries into chunks of at most [`CHUNK_BYTES`] (an entry larger than
/// that, impossible with S3's 1 KB keys, would get a chunk of its own).
pub fn chunk_entries(entries: Vec<String>) -> Vec<Vec<String>> {
    super::runs_within(entries, usize::MAX, CHUNK_BYTES, String::len)
}

/// The sort key of a chunk item: `{request_id}#{attribute}#{first 16 bytes of the SHA-256 of
/// the entries, hex}`.
pub fn chunk_sk(request_id: &str, attribute: &str, entries: &[String]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update((e.len() as u64).to_be_bytes());
        h.update(e.as_bytes());
    }
    let digest = h.finalize();
    format!("{request_id}#{attribute}#{}", hex::encode(&digest[..16]))
}

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

/// Parses the JSON entries `texts` of attribute `name` into `out`, skipping repeats.
fn push_deleted(
    out: &mut Vec<Deleted>,
    name: &str,
    texts: Vec<String>,
) -> Result<(), RemovalError> {
    for json in texts {
        let d: Deleted = serde_json::from_str(&json)
            .map_err(|e| RemovalError::Audit(format!("malformed {name} entry: {e}")))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(())
}

fn deleted_list(item: &Item, name: &str) -> Result<Vec<Deleted>, RemovalError> {
    let mut out: Vec<Deleted> = Vec::new();
    push_deleted(&mut out, name, strings(item, name))?;
    Ok(out)
}

/// Adds a chunk item's entries to `record` (the record of the chunk's request).
fn merge_chunk(record: &mut AuditRecord, item: &Item) -> Result<(), RemovalError> {
    let name = get_s(item, "attribute");
    let list = match name.as_str() {
        "deleted_originals" => &mut record.deleted_originals,
        "deleted_replica" => &mut record.deleted_replica,
        "deleted_derivatives" => &mut record.deleted_derivatives,
        other => {
            return Err(RemovalError::Audit(format!(
                "chunk item with unknown attribute {other:?}"
            )))
        }
    };
    push_deleted(list, &name, strings(item, "entries"))
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
    async fn claim(&self, request_id: &str, fingerprint: &str) -> Result<String, RemovalError> {
        let pk = request_pk(request_id);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s("claim"))
            .item("fingerprint", s(fingerprint))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => return Ok(fingerprint.to_string()),
            Err(e) if conditional(&e) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("claim"))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item
            .map(|item| get_s(&item, "fingerprint"))
            .ok_or_else(|| RemovalError::Audit(format!("claim of {request_id} vanished")))
    }

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
            entries.push(
                serde_json::to_string(d)
                    .map_err(|e| RemovalError::Audit(format!("serializing: {e}")))?,
            );
        }
        let attribute = target.audit_attribute();
        for chunk in chunk_entries(entries) {
            let sk = chunk_sk(request_id, attribute, &chunk);
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&asset.id()))
                .item("sk", s(&sk))
                .item("request_id", s(request_id))
                .item("attribute", s(attribute))
                .item(
                    "entries",
                    AttributeValue::L(chunk.into_iter().map(AttributeValue::S).collect()),
                )
                .send()
                .await
                .map_err(unavailable)?;
        }
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
        let mut chunks: Vec<Item> = Vec::new();
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
                if get_s(item, "sk").contains('#') {
                    chunks.push(item.clone());
                } else {
                    out.push(parse_record(item)?);
                }
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        for chunk in &chunks {
            let request = get_s(chunk, "request_id");
            if let Some(record) = out.iter_mut().find(|r| r.request_id == request) {
                merge_chunk(record, chunk)?;
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_under_the_item_limit_and_lose_nothing() {
        // 3,000 derivative entries: more than one 400 KB item holds.
        let entries: Vec<String> = (0..3000)
            .map(|i| {
                serde_json::to_string(&Deleted {
                    bucket: "pixelfront-derived-123456789012".into(),
                    key: format!("acme/v{}/photos/summer/beach-{i}.jpg/w640-q75.webp", i % 9),
                    version_id: Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into()),
                    delete_marker: false,
                })
                .expect("json")
            })
            .collect();
        assert!(entries.iter().map(String::len).sum::<usize>() > 400 * 1024);
        let chunks = chunk_entries(entries.clone());
        assert!(chunks.len() >= 2, "{} chunks", chunks.len());
        for c in &chunks {
            assert!(c.iter().map(String::len).sum::<usize>() <= CHUNK_BYTES);
        }
        assert_eq!(chunks.concat(), entries);
        assert!(chunk_entries(Vec::new()).is_empty());
    }

    #[test]
    fn chunk_keys_are_stable_and_distinct() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["xy".to_string()];
        let k = chunk_sk("REQ-1", "deleted_derivatives", &a);
        assert_eq!(
            k,
            chunk_sk("REQ-1", "deleted_derivatives", &a),
            "a retry writes the same item"
        );
        assert_ne!(
            k,
            chunk_sk("REQ-1", "deleted_derivatives", &b),
            "lengths are part of the digest"
        );
        assert_ne!(k, chunk_sk("REQ-1", "deleted_originals", &a));
        assert!(k.starts_with("REQ-1#deleted_derivatives#"));
        assert_eq!(k.len(), "REQ-1#deleted_derivatives#".len() + 32);
        // Stored keys outlive releases: the digest and its lower-case hex never change.
        assert_eq!(
            k,
            "REQ-1#deleted_derivatives#231ff9ae421066bd352810e4e3042f34"
        );
    }

    #[test]
    fn records_merge_their_chunks() {
        let entry = |key: &str| {
            serde_json::to_string(&Deleted {
                bucket: "b".into(),
                key: key.into(),
                version_id: None,
                delete_marker: false,
            })
            .expect("json")
        };
        let mut record: Item = HashMap::new();
        record.insert("sk".into(), s("R1"));
        record.insert("request_id".into(), s("R1"));
        let mut rec = parse_record(&record).expect("record");
        let mut chunk: Item = HashMap::new();
        chunk.insert("sk".into(), s("R1#deleted_derivatives#00"));
        chunk.insert("request_id".into(), s("R1"));
        chunk.insert("attribute".into(), s("deleted_derivatives"));
        chunk.insert(
            "entries".into(),
            AttributeValue::L(vec![s(&entry("a")), s(&entry("b")), s(&entry("a"))]),
        );
        merge_chunk(&mut rec, &chunk).expect("merge");
        merge_chunk(&mut rec, &chunk).expect("merge again");
        let keys: Vec<&str> = rec
            .deleted_derivatives
            .iter()
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(keys, vec!["a", "b"]);
        chunk.insert("attribute".into(), s("deleted_everything"));
        assert!(merge_chunk(&mut rec, &chunk).is_err());
    }
}
