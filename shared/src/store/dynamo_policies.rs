//! The tenant policy table (DynamoDB): one item per tenant, partition key `tenant` (the
//! tenant id, or [`DEFAULT_KEY`] for the default policy), attribute `policy` = the same JSON
//! as the tenant's CloudFront KeyValueStore value, `rev` = a revision number every write
//! increments. The table holds the signing secrets, so only the transformer's role may read it
//! (`dynamodb:GetItem`) and only the operator's `pixelfront tenant --aws` writes it
//! ([`crate::tenants::sync`]).

use super::{PolicyStore, StoreError};
use crate::sign::TenantPolicy;
use crate::tenants::sync::{PolicyTable, Revision, SyncError};
use crate::tenants::DEFAULT_KEY;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};

type Item = HashMap<String, AttributeValue>;

/// Most items one `keys` listing reads (a Scan page is 1 MB; policies are at most 1 KB).
const MAX_KEYS: usize = 100_000;

/// Tenant policies in their DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoPolicies {
    client: Client,
    table: String,
}

impl DynamoPolicies {
    /// Policies in `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPolicies {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key: &str, consistent: bool) -> Result<Option<Item>, String> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("tenant", AttributeValue::S(key.to_string()))
            .consistent_read(consistent)
            .send()
            .await
            .map(|r| r.item)
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }

    async fn policy_of(&self, key: &str) -> Result<Option<TenantPolicy>, StoreError> {
        let item = self
            .get(key, false)
            .await
            .map_err(StoreError::Unavailable)?;
        item.map(|i| parse(key, &i).map(|(p, _)| p))
            .transpose()
            .map_err(StoreError::Unavailable)
    }
}

fn parse(key: &str, item: &Item) -> Result<(TenantPolicy, u64), String> {
    let json = item
        .get("policy")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| format!("policy item {key} has no `policy` string"))?;
    let policy =
        serde_json::from_str(json).map_err(|e| format!("policy of {key} is malformed: {e}"))?;
    let rev = item
        .get("rev")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((policy, rev))
}

impl PolicyStore for DynamoPolicies {
    async fn policy(&self, tenant: &str) -> Result<TenantPolicy, StoreError> {
        if let Some(own) = self.policy_of(tenant).await? {
            return Ok(own);
        }
        self.policy_of(DEFAULT_KEY)
            .await?
            .ok_or_else(|| StoreError::Unavailable("tenant policies not loaded".into()))
    }
}

fn store_error<E, R>(err: &SdkError<E, R>, what: &str) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    SyncError::Store(format!(
        "tenant policy table, {what}: {}",
        DisplayErrorContext(err)
    ))
}

/// A conditional write's failure: [`SyncError::Conflict`] when the revision moved on.
fn write_error<E, R>(err: &SdkError<E, R>, key: &str, expected: u64, what: &str) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if err.code() == Some("ConditionalCheckFailedException") {
        SyncError::Conflict(format!("{key} is no longer at revision {expected}"))
    } else {
        store_error(err, &format!("{what} {key}"))
    }
}

impl PolicyTable for DynamoPolicies {
    async fn read(&self, key: &str) -> Result<Revision, SyncError> {
        let item = self
            .get(key, true)
            .await
            .map_err(|e| SyncError::Store(format!("tenant policy table, read {key}: {e}")))?;
        match item {
            None => Ok(Revision::default()),
            Some(item) => {
                let (policy, rev) = parse(key, &item).map_err(SyncError::Store)?;
                Ok(Revision {
                    policy: Some(policy),
                    rev,
                })
            }
        }
    }

    async fn write(
        &self,
        key: &str,
        policy: Option<&TenantPolicy>,
        expected: u64,
    ) -> Result<u64, SyncError> {
        let cond = if expected == 0 {
            "attribute_not_exists(tenant)"
        } else {
            "rev = :rev"
        };
        let k = AttributeValue::S(key.to_string());
        let rev = AttributeValue::N(expected.to_string());
        let result = match policy {
            Some(p) => {
                let json = serde_json::to_string(p)
                    .map_err(|e| SyncError::Store(format!("policy of {key}: {e}")))?;
                let mut put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item("tenant", k)
                    .item("policy", AttributeValue::S(json))
                    .item("rev", AttributeValue::N((expected + 1).to_string()))
                    .condition_expression(cond);
                if expected != 0 {
                    put = put.expression_attribute_values(":rev", rev);
                }
                put.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| write_error(&e, key, expected, "write"))
            }
            None => {
                let mut del = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("tenant", k)
                    .condition_expression(cond);
                if expected != 0 {
                    del = del.expression_attribute_values(":rev", rev);
                }
                del.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| write_error(&e, key, expected, "delete"))
            }
        };
        result.map(|()| expected + 1)
    }

    async fn entries(&self) -> Result<BTreeMap<String, TenantPolicy>, SyncError> {
        let mut entries = BTreeMap::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| store_error(&e, "list"))?;
            if let Some(k) = item.get("tenant").and_then(|v| v.as_s().ok()) {
                let (policy, _) = parse(k, &item).map_err(SyncError::Store)?;
                entries.insert(k.clone(), policy);
            }
            if entries.len() >= MAX_KEYS {
                return Err(SyncError::Store(format!(
                    "tenant policy table holds over {MAX_KEYS} entries"
                )));
            }
        }
        Ok(entries)
    }
}
