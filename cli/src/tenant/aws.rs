//! `pixelfront tenant --aws`: the AWS stack's tenant policies, in the edge's CloudFront
//! KeyValueStore (`--kvs-arn`, stack output `TenantPolicyStoreArn`) and the transformer's table
//! (`--policy-table`, stack output `TenantPolicyTableName`). Every change goes through
//! [`sync::change`] (table loosened, then the KeyValueStore, then the table), so the
//! transformer never refuses what the edge admitted. KeyValueStore writes name the store's
//! current ETag (`If-Match`); when another writer got in first (`ConflictException`), the
//! write re-reads the ETag and tries again.
//!
//! The `api-key*` verbs write the tenant API's key table (`--api-key-table`, stack output
//! `ApiKeyTableName`) instead ([`run_api_keys`]).
//!
//! No emulator of the KeyValueStore exists: the tests run this against a stand-in speaking its
//! HTTP API (`tests/integration/kvs.py`), reached through `--kvs-endpoint-url`.

use super::{list_line, read_tenants_file, Change, Verb};
use crate::removal::aws::{aws_error, block_on, check_aws_flags, sdk_config_with};
use crate::removal::CliError;
use crate::Failure;
use aws_sdk_cloudfrontkeyvaluestore as kvs;
use kvs::config::endpoint::{DefaultResolver, EndpointFuture, Params, ResolveEndpoint};
use kvs::error::ProvideErrorMetadata;
use pixelfront_shared::api::aws::DynamoApiKeys;
use pixelfront_shared::api::keys::{generate, kid_of};
use pixelfront_shared::normalize::valid_tenant;
use pixelfront_shared::pipeline::now_rfc3339;
use pixelfront_shared::sign::TenantPolicy;
use pixelfront_shared::store::dynamo_policies::DynamoPolicies;
use pixelfront_shared::tenants::sync::{self, EdgePolicies, PolicyTable, SyncError};
use pixelfront_shared::tenants::{check_policy, Edit};
use std::collections::BTreeMap;

/// Attempts at a KeyValueStore write when other writers keep changing its ETag.
const ETAG_ATTEMPTS: usize = 5;

/// Where `--aws` verbs write.
#[derive(clap::Args, Debug)]
pub struct AwsTarget {
    /// Change the AWS stack's stores (KeyValueStore and tenant policy table) instead of the
    /// local stack's tenants file.
    #[arg(long, global = true)]
    aws: bool,
    /// ARN of the tenant policy KeyValueStore (stack output TenantPolicyStoreArn).
    #[arg(long, value_name = "ARN", env = "PIXELFRONT_KVS_ARN", global = true)]
    kvs_arn: Option<String>,
    /// Name of the tenant policy table (stack output TenantPolicyTableName).
    #[arg(
        long,
        value_name = "TABLE",
        env = "PIXELFRONT_POLICY_TABLE",
        global = true
    )]
    policy_table: Option<String>,
    /// AWS region of the table (default: the SDK's, from AWS_REGION or the profile).
    #[arg(long, value_name = "REGION", global = true)]
    region: Option<String>,
    /// DynamoDB endpoint URL, for emulators (e.g. moto). AWS needs none.
    #[arg(long, value_name = "URL", global = true)]
    endpoint_url: Option<String>,
    /// KeyValueStore endpoint URL, for the tests' stand-in. AWS needs none.
    #[arg(long, value_name = "URL", global = true)]
    kvs_endpoint_url: Option<String>,
    /// Name of the tenant API key table (stack output ApiKeyTableName), for the `api-key*`
    /// verbs.
    #[arg(
        long,
        value_name = "TABLE",
        env = "PIXELFRONT_API_KEY_TABLE",
        global = true
    )]
    api_key_table: Option<String>,
}

impl AwsTarget {
    /// Whether `--aws` was given.
    pub fn enabled(&self) -> bool {
        self.aws
    }
}

/// The real endpoint rules (ARN checks, SigV4A with region set `*`), with the URL replaced by
/// a fixed one. The rules put the account id in front of an overridden endpoint's host
/// (`123456789012.127.0.0.1`), which a test server cannot answer to.
#[derive(Debug)]
struct FixedUrl {
    url: String,
    rules: DefaultResolver,
}

impl ResolveEndpoint for FixedUrl {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::new(async move {
            let real = ResolveEndpoint::resolve_endpoint(&self.rules, params).await?;
            Ok(real.into_builder().url(self.url.clone()).build())
        })
    }
}

/// The KeyValueStore adapter of [`EdgePolicies`].
struct Kvs {
    client: kvs::Client,
    arn: String,
}

impl Kvs {
    async fn etag(&self) -> Result<String, SyncError> {
        let out = self
            .client
            .describe_key_value_store()
            .kvs_arn(&self.arn)
            .send()
            .await
            .map_err(|e| SyncError::Store(aws_error("KeyValueStore DescribeKeyValueStore", &e)))?;
        Ok(out.e_tag)
    }

    /// Every entry, parsed (`Err` text for a value that is not a policy).
    async fn entries(&self) -> Result<BTreeMap<String, Result<TenantPolicy, String>>, SyncError> {
        let mut out = BTreeMap::new();
        let mut pages = self
            .client
            .list_keys()
            .kvs_arn(&self.arn)
            .max_results(50)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item =
                item.map_err(|e| SyncError::Store(aws_error("KeyValueStore ListKeys", &e)))?;
            let parsed = serde_json::from_str(&item.value).map_err(|e| e.to_string());
            out.insert(item.key, parsed);
        }
        Ok(out)
    }
}

impl EdgePolicies for Kvs {
    async fn write(&self, key: &str, policy: Option<&TenantPolicy>) -> Result<(), SyncError> {
        let value = policy
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| SyncError::Store(format!("policy of {key}: {e}")))?;
        for _ in 0..ETAG_ATTEMPTS {
            let etag = self.etag().await?;
            let result = match &value {
                Some(v) => self
                    .client
                    .put_key()
                    .kvs_arn(&self.arn)
                    .if_match(etag)
                    .key(key)
                    .value(v)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| failure("PutKey", &e)),
                None => self
                    .client
                    .delete_key()
                    .kvs_arn(&self.arn)
                    .if_match(etag)
                    .key(key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| failure("DeleteKey", &e)),
            };
            match result {
                Ok(()) => return Ok(()),
                Err((Some(code), _)) if code == "ConflictException" => continue,
                // Deleting a key that is not there: already done.
                Err((Some(code), _)) if code == "ResourceNotFoundException" && value.is_none() => {
                    return Ok(())
                }
                Err((_, msg)) => return Err(SyncError::Store(msg)),
            }
        }
        Err(SyncError::Conflict(format!(
            "KeyValueStore: its ETag changed under {ETAG_ATTEMPTS} writes in a row"
        )))
    }
}

/// A KeyValueStore call's error code (to tell a conflict from the rest) and its one-line text.
fn failure<E, R>(op: &str, e: &kvs::error::SdkError<E, R>) -> (Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    (
        e.code().map(str::to_string),
        aws_error(&format!("KeyValueStore {op}"), e),
    )
}

fn fail(e: SyncError) -> Failure {
    match e {
        SyncError::Refused(r) => Failure::rejected(r.0),
        other => Failure::io(other.to_string()),
    }
}

fn cli_fail(e: CliError) -> Failure {
    match e {
        CliError::Usage(m) | CliError::Rejected(m) => Failure::rejected(m),
        other => Failure::io(other.to_string()),
    }
}

/// Checks the flags before anything is sent.
fn check_target(t: &AwsTarget) -> Result<(String, String), Failure> {
    let arn = t.kvs_arn.clone().ok_or_else(|| {
        Failure::rejected(
            "--aws needs --kvs-arn or PIXELFRONT_KVS_ARN (stack output TenantPolicyStoreArn)",
        )
    })?;
    let table = t.policy_table.clone().ok_or_else(|| {
        Failure::rejected("--aws needs --policy-table or PIXELFRONT_POLICY_TABLE (stack output TenantPolicyTableName)")
    })?;
    let arn_ok = arn.starts_with("arn:")
        && arn.contains(":cloudfront::")
        && arn
            .split_once(":key-value-store/")
            .is_some_and(|(_, id)| !id.is_empty());
    if !arn_ok {
        return Err(Failure::rejected(format!(
            "{arn:?} is not a KeyValueStore ARN (arn:aws:cloudfront::ACCOUNT:key-value-store/ID)"
        )));
    }
    check_aws_flags(t.region.as_deref(), t.endpoint_url.as_deref()).map_err(cli_fail)?;
    check_aws_flags(None, t.kvs_endpoint_url.as_deref()).map_err(cli_fail)?;
    Ok((arn, table))
}

/// The `api-key*` verbs against the stack's API key table: a key is made here, printed once
/// and stored as its SHA-256 only.
pub fn run_api_keys(t: &AwsTarget, verb: Verb) -> Result<(), Failure> {
    let table = t.api_key_table.clone().ok_or_else(|| {
        Failure::rejected(
            "--aws api keys need --api-key-table or PIXELFRONT_API_KEY_TABLE (stack output ApiKeyTableName)",
        )
    })?;
    check_aws_flags(t.region.as_deref(), t.endpoint_url.as_deref()).map_err(cli_fail)?;
    block_on(async {
        let sdk = sdk_config_with(t.region.as_deref(), t.endpoint_url.as_deref()).await?;
        let keys = DynamoApiKeys::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        let place = "API key table";
        Ok(match verb {
            Verb::ApiKeyAdd { tenant } => {
                if !valid_tenant(&tenant) {
                    return Ok(Err(Failure::rejected(format!(
                        "bad tenant {tenant:?}: [a-z0-9][a-z0-9-]{{0,62}}"
                    ))));
                }
                let new =
                    generate(&tenant, &now_rfc3339()).map_err(|e| CliError::Aws(e.to_string()))?;
                keys.put(&new.record)
                    .await
                    .map_err(|e| CliError::Aws(e.to_string()))?;
                println!("{}", new.key);
                eprintln!(
                    "pixelfront tenant: {tenant}: API key {} added; it is shown only now ({place})",
                    new.record.kid
                );
                Ok(())
            }
            Verb::ApiKeyRemove { tenant, kid } => {
                let kid = kid_of(&kid).unwrap_or(&kid).to_string();
                if keys
                    .delete(&tenant, &kid)
                    .await
                    .map_err(|e| CliError::Aws(e.to_string()))?
                {
                    eprintln!("pixelfront tenant: {tenant}: API key {kid} removed ({place})");
                    Ok(())
                } else {
                    Err(Failure::rejected(format!(
                        "{tenant} has no API key {kid:?}"
                    )))
                }
            }
            Verb::ApiKeys { tenant } => {
                for r in keys
                    .of_tenant(&tenant)
                    .await
                    .map_err(|e| CliError::Aws(e.to_string()))?
                {
                    println!("{}\t{}", r.kid, r.created_at);
                }
                Ok(())
            }
            _ => Err(Failure::rejected("not an API key verb")),
        })
    })
    .map_err(cli_fail)?
}

/// Runs `verb` against the AWS stack.
pub fn run(t: &AwsTarget, verb: Verb) -> Result<(), Failure> {
    let (arn, table_name) = check_target(t)?;
    let change = verb.edit()?;
    // One runtime for the clients and the verb.
    block_on(async {
        let sdk = sdk_config_with(t.region.as_deref(), t.endpoint_url.as_deref()).await?;
        // The KeyValueStore is global: its client ignores the DynamoDB endpoint.
        let mut conf = kvs::config::Builder::from(&sdk);
        conf.set_endpoint_url(None);
        if let Some(url) = &t.kvs_endpoint_url {
            conf = conf.endpoint_resolver(FixedUrl {
                url: url.clone(),
                rules: DefaultResolver::new(),
            });
        }
        let edge = Kvs {
            client: kvs::Client::from_conf(conf.build()),
            arn,
        };
        let table = DynamoPolicies::new(aws_sdk_dynamodb::Client::new(&sdk), table_name);
        Ok(run_verb(&edge, &table, verb, change).await)
    })
    .map_err(cli_fail)?
}

async fn run_verb(
    edge: &Kvs,
    table: &DynamoPolicies,
    verb: Verb,
    change: Option<Change>,
) -> Result<(), Failure> {
    let place = "KeyValueStore and tenant policy table";
    if let Some(change) = change {
        sync::change(table, edge, &change.key, &change.edit)
            .await
            .map_err(fail)?;
        change.report(place);
        return Ok(());
    }
    match verb {
        Verb::List => {
            for (key, p) in table.entries().await.map_err(fail)? {
                println!("{}", list_line(&key, &p));
            }
        }
        Verb::Show { tenant } => {
            let p = PolicyTable::read(table, &tenant)
                .await
                .map_err(fail)?
                .policy
                .ok_or_else(|| Failure::rejected(format!("no tenant {tenant:?}")))?;
            let json = serde_json::to_string_pretty(&p).map_err(|e| Failure::io(e.to_string()))?;
            println!("{json}");
        }
        Verb::Load { file } => {
            let wanted = read_tenants_file(&file)?;
            for (key, p) in &wanted {
                check_policy(key, p).map_err(|e| Failure::rejected(e.0))?;
            }
            // The default first: tenants of the file may rely on it.
            let mut order: Vec<&String> = wanted.keys().collect();
            order.sort_by_key(|k| !k.starts_with('#'));
            for key in order {
                let edit = Edit::Set(wanted[key].clone());
                sync::change(table, edge, key, &edit).await.map_err(|e| {
                    Failure::io(format!("{key}: {e} (entries before it are loaded)"))
                })?;
                eprintln!("pixelfront tenant: {key}: policy set ({place})");
            }
        }
        Verb::Check => check(edge, table).await?,
        _ => {}
    }
    Ok(())
}

/// `check`: every entry of either store, compared; exit 1 on a difference.
async fn check(edge: &Kvs, table: &DynamoPolicies) -> Result<(), Failure> {
    let at_edge = edge.entries().await.map_err(fail)?;
    let in_table = table.entries().await.map_err(fail)?;
    let mut keys: Vec<&String> = in_table.keys().chain(at_edge.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut differences = 0;
    for key in &keys {
        let verdict = match (at_edge.get(*key), in_table.get(*key)) {
            (Some(Ok(e)), Some(t)) if e == t => "same",
            (Some(Err(_)), _) => "edge value is not a policy",
            (Some(_), None) => "only at the edge",
            (None, Some(_)) => "only in the table",
            _ => "different",
        };
        if verdict != "same" {
            differences += 1;
        }
        println!("{key}\t{verdict}");
    }
    if differences > 0 {
        return Err(Failure::io(format!(
            "{differences} of {} entries differ: run the verb that set them again (or `load` the tenants file)",
            keys.len()
        )));
    }
    eprintln!(
        "pixelfront tenant: {} entries, the same in both stores",
        keys.len()
    );
    Ok(())
}
