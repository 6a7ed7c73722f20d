//! DynamoDB adapter of the manifest port (aws-sdk-dynamodb).
//!
//! Table layout (partition `pk` = `{tenant}/{key}`, sort `sk`):
//! - `sk = "asset"`: the per-asset item, `latest` = the last assigned version;
//! - `sk = "v#0000000007"`: one item per version (zero-padded so versions sort);
//! - `sk = "src#{s3 version id}"`: maps one S3 object version to its manifest version.
//!
//! Tenant policies (with their signing secrets) live in a table of their own, readable only by
//! the transformer ([`super::dynamo_policies`]).
//!
//! Version assignment is one `TransactWriteItems` with three conditions: the source item must
//! not exist, the asset item's `latest` must still hold the value read, and the version item
//! must not exist. A duplicated event fails the first condition and re-reads the mapping; a
//! concurrent upload fails the second and retries with the next number.

use super::manifest::*;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Attempts at winning the version counter before giving up with `Conflict`.
const ASSIGN_ATTEMPTS: usize = 8;

/// The manifest in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoManifest {
    client: Client,
    table: String,
}

impl DynamoManifest {
    /// The table `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoManifest {
            client,
            table: table.into(),
        }
    }

    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, ManifestError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(resp.item)
    }

    /// Reads a version that must exist (after a failed condition on it).
    async fn read_existing(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<VersionRecord, ManifestError> {
        self.read_version(asset, version)
            .await?
            .ok_or_else(|| ManifestError::Missing(format!("{asset} v{version}")))
    }

    /// Every version of `asset` (one strongly consistent query), by version.
    async fn versions_of(&self, asset: &AssetId) -> Result<Vec<VersionRecord>, ManifestError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
                .expression_attribute_values(":pk", s(&asset.id()))
                .expression_attribute_values(":v", s("v#"))
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
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    async fn read_version(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<Option<VersionRecord>, ManifestError> {
        self.get_item(&asset.id(), &version_sk(version))
            .await?
            .map(|item| parse_record(&item))
            .transpose()
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Sort key of a version item.
pub fn version_sk(version: u32) -> String {
    format!("v#{version:010}")
}

fn unavailable<E, R>(err: SdkError<E, R>) -> ManifestError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    ManifestError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())
}

fn is_conditional_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err.code(),
        Some("ConditionalCheckFailedException")
            | Some("TransactionCanceledException")
            | Some("TransactionConflictException")
    )
}

fn record_item(rec: &VersionRecord) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(&rec.asset.id()));
    item.insert("sk".into(), s(&version_sk(rec.version)));
    item.insert("tenant".into(), s(&rec.asset.tenant));
    item.insert("key".into(), s(&rec.asset.key));
    item.insert("version".into(), n(rec.version));
    item.insert("source_version_id".into(), s(&rec.source_version_id));
    if let Some(etag) = &rec.source_etag {
        item.insert("source_etag".into(), s(etag));
    }
    item.insert("source_bytes".into(), n(rec.source_bytes));
    item.insert("status".into(), s(rec.status.as_str()));
    item.insert("variants".into(), AttributeValue::L(Vec::new()));
    item.insert("created_at".into(), s(&rec.created_at));
    item.insert("updated_at".into(), s(&rec.updated_at));
    item
}

fn variants_value(variants: &[VariantRecord]) -> AttributeValue {
    AttributeValue::L(
        variants
            .iter()
            .map(|v| {
                AttributeValue::M(HashMap::from([
                    ("name".to_string(), s(&v.name)),
                    ("derivative".to_string(), s(&v.derivative)),
                    ("width".to_string(), n(v.width)),
                    ("height".to_string(), n(v.height)),
                    ("bytes".to_string(), n(v.bytes)),
                    ("render_ms".to_string(), n(v.render_ms)),
                ]))
            })
            .collect(),
    )
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn need<T>(v: Option<T>, name: &str, item: &Item) -> Result<T, ManifestError> {
    v.ok_or_else(|| {
        ManifestError::Malformed(format!(
            "attribute {name} missing or mistyped in {:?}/{:?}",
            get_s(item, "pk").unwrap_or_default(),
            get_s(item, "sk").unwrap_or_default()
        ))
    })
}

/// Parses a version item.
fn parse_record(item: &Item) -> Result<VersionRecord, ManifestError> {
    let status_name = need(get_s(item, "status"), "status", item)?;
    let status = need(Status::parse(&status_name), "status", item)?;
    let original = match (
        get_n(item, "width"),
        get_n(item, "height"),
        get_s(item, "format"),
    ) {
        (Some(width), Some(height), Some(format)) => Some(OriginalInfo {
            width,
            height,
            format,
        }),
        _ => None,
    };
    let mut variants = Vec::new();
    if let Some(AttributeValue::L(list)) = item.get("variants") {
        for v in list {
            let m = v
                .as_m()
                .map_err(|_| ManifestError::Malformed("variant is not a map".into()))?;
            variants.push(VariantRecord {
                name: need(get_s(m, "name"), "variants.name", item)?,
                derivative: need(get_s(m, "derivative"), "variants.derivative", item)?,
                width: need(get_n(m, "width"), "variants.width", item)?,
                height: need(get_n(m, "height"), "variants.height", item)?,
                bytes: need(get_n(m, "bytes"), "variants.bytes", item)?,
                render_ms: need(get_n(m, "render_ms"), "variants.render_ms", item)?,
            });
        }
    }
    Ok(VersionRecord {
        asset: AssetId {
            tenant: need(get_s(item, "tenant"), "tenant", item)?,
            key: need(get_s(item, "key"), "key", item)?,
        },
        version: need(get_n(item, "version"), "version", item)?,
        source_version_id: need(get_s(item, "source_version_id"), "source_version_id", item)?,
        source_etag: get_s(item, "source_etag"),
        source_bytes: get_n(item, "source_bytes").unwrap_or(0),
        status,
        original,
        variants,
        error_type: get_s(item, "error_type"),
        error: get_s(item, "error"),
        created_at: get_s(item, "created_at").unwrap_or_default(),
        updated_at: get_s(item, "updated_at").unwrap_or_default(),
    })
}

fn build_err(e: impl std::fmt::Display) -> ManifestError {
    ManifestError::Malformed(format!("request build: {e}"))
}

impl ManifestStore for DynamoManifest {
    async fn assign(
        &self,
        asset: &AssetId,
        source: &SourceRef,
        now: &str,
    ) -> Result<Assignment, ManifestError> {
        let pk = asset.id();
        let src_sk = format!("src#{}", source.identity());
        for attempt in 0..ASSIGN_ATTEMPTS {
            if attempt > 0 {
                // Another writer won a condition: back off a little before re-reading.
                let ms = 10 * (1u64 << attempt.min(6));
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            if let Some(item) = self.get_item(&pk, &src_sk).await? {
                let version = need(get_n(&item, "version"), "version", &item)?;
                match self.read_version(asset, version).await? {
                    Some(record) => {
                        return Ok(Assignment {
                            record,
                            created: false,
                        })
                    }
                    // The mapping is visible but its version item not yet: a store whose
                    // transactions are not isolated from reads (emulators). Read again.
                    None => continue,
                }
            }
            let latest: Option<u32> = self
                .get_item(&pk, "asset")
                .await?
                .and_then(|item| get_n(&item, "latest"));
            let version = latest.unwrap_or(0) + 1;
            let record = VersionRecord::new(asset, version, source, now);

            let src_put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(&src_sk))
                .item("version", n(version))
                .item("created_at", s(now))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err)?;
            let mut counter = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("asset"))
                .update_expression("SET latest = :n, updated_at = :now")
                .expression_attribute_values(":n", n(version))
                .expression_attribute_values(":now", s(now));
            counter = match latest {
                Some(prev) => counter
                    .condition_expression("latest = :prev")
                    .expression_attribute_values(":prev", n(prev)),
                None => counter.condition_expression("attribute_not_exists(latest)"),
            };
            let version_put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(record_item(&record)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(src_put).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .update(counter.build().map_err(build_err)?)
                        .build(),
                )
                .transact_items(TransactWriteItem::builder().put(version_put).build())
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Assignment {
                        record,
                        created: true,
                    })
                }
                // A duplicate delivery or a concurrent upload won a condition: re-read.
                Err(e) if is_conditional_failure(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(ManifestError::Conflict(pk))
    }

    async fn get(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<Option<VersionRecord>, ManifestError> {
        self.read_version(asset, version).await
    }

    async fn latest(&self, asset: &AssetId) -> Result<Option<u32>, ManifestError> {
        Ok(self
            .get_item(&asset.id(), "asset")
            .await?
            .and_then(|item| get_n(&item, "latest")))
    }

    async fn mark_ready(
        &self,
        asset: &AssetId,
        version: u32,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&asset.id()))
            .key("sk", s(&version_sk(version)))
            .update_expression(
                "SET #s = :ready, width = :w, height = :h, #f = :f, variants = :v, \
                 updated_at = :now REMOVE #e, error_type",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#s = :rendering OR #s = :failed OR #s = :ready)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#f", "format")
            .expression_attribute_names("#e", "error")
            .expression_attribute_values(":ready", s("ready"))
            .expression_attribute_values(":rendering", s("rendering"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":w", n(original.width))
            .expression_attribute_values(":h", n(original.height))
            .expression_attribute_values(":f", s(&original.format))
            .expression_attribute_values(":v", variants_value(variants))
            .expression_attribute_values(":now", s(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => parse_record(&out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => {
                let rec = self.read_existing(asset, version).await?;
                rec.check_ready_allowed()?;
                Ok(rec)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mark_failed(
        &self,
        asset: &AssetId,
        version: u32,
        error_type: &str,
        reason: &str,
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&asset.id()))
            .key("sk", s(&version_sk(version)))
            .update_expression("SET #s = :failed, #e = :e, error_type = :t, updated_at = :now")
            .condition_expression("attribute_exists(pk) AND (#s = :rendering OR #s = :failed)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#e", "error")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":rendering", s("rendering"))
            .expression_attribute_values(":e", s(reason))
            .expression_attribute_values(":t", s(error_type))
            .expression_attribute_values(":now", s(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => parse_record(&out.attributes.unwrap_or_default()),
            // Already ready (a duplicate run won) or taken down: leave it as it is.
            Err(e) if is_conditional_failure(&e) => self.read_existing(asset, version).await,
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mark_removed(
        &self,
        asset: &AssetId,
        status: Status,
        now: &str,
    ) -> Result<Vec<VersionRecord>, ManifestError> {
        let before = self.versions_of(asset).await?;
        for rec in &before {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&asset.id()))
                .key("sk", s(&version_sk(rec.version)))
                .update_expression("SET #s = :st, variants = :none, updated_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":st", s(status.as_str()))
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":now", s(now))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(before)
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<ScanPage, ManifestError> {
        let mut req = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(sk, :v)")
            .expression_attribute_values(":v", s("v#"))
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(c) = cursor {
            let (pk, sk) = c
                .split_once('\n')
                .ok_or_else(|| ManifestError::Malformed(format!("scan cursor {c:?}")))?;
            req = req
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(sk));
        }
        let out = req.send().await.map_err(unavailable)?;
        let records = out
            .items()
            .iter()
            .map(parse_record)
            .collect::<Result<Vec<_>, _>>()?;
        let cursor = out
            .last_evaluated_key()
            .and_then(|k| Some(format!("{}\n{}", get_s(k, "pk")?, get_s(k, "sk")?)));
        Ok(ScanPage { records, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_item_round_trip() {
        let asset = AssetId {
            tenant: "acme".into(),
            key: "photos/beach.jpg".into(),
        };
        let source = SourceRef {
            bucket: "originals".into(),
            key: "acme/photos/beach.jpg".into(),
            version_id: Some("3HL4kqtJlcpXroDTDmJ".into()),
            etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            size: 1234,
        };
        let rec = VersionRecord::new(&asset, 7, &source, "2026-11-25T10:00:00Z");
        let item = record_item(&rec);
        assert_eq!(get_s(&item, "sk").as_deref(), Some("v#0000000007"));
        assert_eq!(parse_record(&item).expect("parse"), rec);

        let mut item = item;
        item.insert(
            "variants".into(),
            variants_value(&[VariantRecord {
                name: "thumb".into(),
                derivative: "w160-h160-q75.webp".into(),
                width: 160,
                height: 160,
                bytes: 4242,
                render_ms: 12,
            }]),
        );
        item.insert("width".into(), n(4000));
        item.insert("height".into(), n(3000));
        item.insert("format".into(), s("jpeg"));
        let parsed = parse_record(&item).expect("parse");
        assert_eq!(parsed.variants.len(), 1);
        assert_eq!(parsed.variants[0].bytes, 4242);
        assert_eq!(parsed.original.map(|o| o.width), Some(4000));
    }

    #[test]
    fn malformed_items_are_typed_errors() {
        let mut item = Item::new();
        item.insert("pk".into(), s("acme/a.jpg"));
        item.insert("status".into(), s("exploded"));
        assert!(matches!(
            parse_record(&item),
            Err(ManifestError::Malformed(_))
        ));
    }
}
