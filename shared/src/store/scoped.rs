//! Tenant-scoped reads of the originals (feature `sts`): the transformer reads tenant `t`'s
//! original through temporary credentials whose STS session policy allows reading only
//! `{bucket}/t/*`, so a bug in key derivation cannot read another tenant's objects, whatever
//! the function's own role allows (it allows no originals at all: docs/aws-deploy.md).
//!
//! `sts:AssumeRole` of the tenant-read role (template.yaml `TenantOriginalsReadRole`) with the
//! session policy of [`session_policy`]; the effective permissions are the intersection of the
//! role's and the session policy's. Credentials last [`SESSION_SECONDS`]; each store keeps one
//! S3 client per tenant built around them (with its own connection pool) for [`CACHE_SECONDS`],
//! counted from the `AssumeRole` call (single-flight: concurrent misses of one tenant make one
//! call). STS calls cost nothing; a miss of a tenant whose client is cached costs a map lookup
//! (`examples/tenant_scope_cost.rs` measures what building a client each time would cost).

use super::s3::S3Objects;
use super::{Object, ObjectStore, PutOptions, StoreError};
use aws_credential_types::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Lifetime of the temporary credentials, in seconds: 1 hour, the most a role assumed by
/// another role's session (role chaining, as in a Lambda function) may ask for.
pub const SESSION_SECONDS: i32 = 3600;

/// How long credentials are used, in seconds: 10 minutes before they expire.
pub const CACHE_SECONDS: u64 = 3000;

/// Most tenants whose credentials one instance keeps (least recently used go first).
pub const MAX_TENANTS: u64 = 10_000;

/// The session policy of `tenant`: `s3:GetObject` and `s3:GetObjectVersion` on
/// `{bucket}/{tenant}/*` of each bucket, and `s3:ListBucket` on the buckets themselves (so a
/// missing key answers 404, not 403). `partition` is `aws` outside China and GovCloud.
/// A tenant outside the URL grammar (`[a-z0-9][a-z0-9-]{0,62}`) has no policy: `Denied`.
pub fn session_policy(
    partition: &str,
    buckets: &[String],
    tenant: &str,
) -> Result<String, StoreError> {
    if !crate::normalize::valid_tenant(tenant) {
        return Err(StoreError::Denied(format!(
            "tenant {tenant:?} cannot be scoped"
        )));
    }
    let objects: Vec<String> = buckets
        .iter()
        .map(|b| format!("arn:{partition}:s3:::{b}/{tenant}/*"))
        .collect();
    let bucket_arns: Vec<String> = buckets
        .iter()
        .map(|b| format!("arn:{partition}:s3:::{b}"))
        .collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": objects},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arns},
        ],
    });
    Ok(policy.to_string())
}

/// The partition of an ARN (`arn:{partition}:…`), `aws` when it names none.
fn partition_of(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// Per-tenant credentials from `sts:AssumeRole` of one role.
#[derive(Debug, Clone)]
pub struct TenantScope {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    buckets: Vec<String>,
}

impl TenantScope {
    /// Credentials from `role_arn`, each session allowed to read only its tenant's prefix of
    /// `buckets` (the originals and their replica).
    pub fn new(
        sts: aws_sdk_sts::Client,
        role_arn: impl Into<String>,
        buckets: Vec<String>,
    ) -> Self {
        TenantScope {
            sts,
            role_arn: role_arn.into(),
            buckets,
        }
    }

    /// Fresh credentials of `tenant`: one `AssumeRole` call.
    pub async fn credentials(&self, tenant: &str) -> Result<Credentials, StoreError> {
        let policy = session_policy(partition_of(&self.role_arn), &self.buckets, tenant)?;
        self.assume(tenant, policy).await
    }

    async fn assume(&self, tenant: &str, policy: String) -> Result<Credentials, StoreError> {
        let started = std::time::Instant::now();
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(format!("pixelfront-{tenant}"))
            .policy(policy)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| {
                let detail = format!(
                    "sts:AssumeRole for tenant {tenant}: {}",
                    e.code().unwrap_or("no answer")
                );
                match e.code() {
                    Some("AccessDenied" | "PackedPolicyTooLarge" | "MalformedPolicyDocument") => {
                        StoreError::Denied(detail)
                    }
                    _ => StoreError::Unavailable(detail),
                }
            })?;
        let c = out.credentials().ok_or_else(|| {
            StoreError::Unavailable(format!(
                "sts:AssumeRole for tenant {tenant}: no credentials"
            ))
        })?;
        let expiry = u64::try_from(c.expiration().secs())
            .ok()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        tracing::info!(
            tenant,
            ms = started.elapsed().as_millis() as u64,
            "tenant credentials"
        );
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "pixelfront-tenant-scope",
        ))
    }
}

/// An S3 bucket of originals read with tenant-scoped credentials: the tenant is the key's
/// first segment. Without a scope (no tenant-read role configured), reads use the function's
/// own credentials. Read-only: `put` and `delete` are `Denied`.
#[derive(Debug, Clone)]
pub struct ScopedS3Objects {
    scope: Option<Arc<TenantScope>>,
    config: aws_sdk_s3::Config,
    bucket: String,
    /// Tenant -> its client, for [`CACHE_SECONDS`] after its credentials were issued.
    clients: moka::future::Cache<String, aws_sdk_s3::Client>,
    /// The client without a scope (the function's own credentials).
    plain: aws_sdk_s3::Client,
}

impl ScopedS3Objects {
    /// Reads of `bucket` through `scope`'s credentials, with the rest of `config` (region,
    /// endpoint, addressing) unchanged.
    pub fn new(
        scope: Option<Arc<TenantScope>>,
        config: aws_sdk_s3::Config,
        bucket: impl Into<String>,
    ) -> Self {
        ScopedS3Objects {
            scope,
            plain: aws_sdk_s3::Client::from_conf(config.clone()),
            config,
            bucket: bucket.into(),
            clients: moka::future::Cache::builder()
                .max_capacity(MAX_TENANTS)
                .time_to_live(Duration::from_secs(CACHE_SECONDS))
                .build(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether reads go through tenant-scoped credentials.
    pub fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }
}

impl ObjectStore for ScopedS3Objects {
    async fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, StoreError> {
        let client = match &self.scope {
            Some(scope) => {
                let tenant = key.split('/').next().unwrap_or_default();
                let build = async {
                    let credentials = scope.credentials(tenant).await?;
                    let conf = self.config.to_builder().credentials_provider(credentials);
                    Ok::<_, StoreError>(aws_sdk_s3::Client::from_conf(conf.build()))
                };
                self.clients
                    .try_get_with(tenant.to_string(), build)
                    .await
                    .map_err(|e| (*e).clone())?
            }
            None => self.plain.clone(),
        };
        S3Objects::new(client, self.bucket.clone())
            .get(key, version, max_bytes)
            .await
    }

    async fn put(&self, key: &str, _body: Vec<u8>, _opts: &PutOptions) -> Result<(), StoreError> {
        Err(StoreError::Denied(format!(
            "{key}: tenant-scoped originals are read-only"
        )))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        Err(StoreError::Denied(format!(
            "{key}: tenant-scoped originals are read-only"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tenant: &str) -> serde_json::Value {
        let buckets = vec!["originals".to_string(), "replica".to_string()];
        let text = session_policy("aws", &buckets, tenant).expect("policy");
        serde_json::from_str(&text).expect("json")
    }

    #[test]
    fn the_session_policy_allows_reads_of_the_tenant_prefix_only() {
        let p = policy("acme");
        assert_eq!(
            p["Statement"][0]["Resource"],
            serde_json::json!([
                "arn:aws:s3:::originals/acme/*",
                "arn:aws:s3:::replica/acme/*"
            ])
        );
        assert_eq!(
            p["Statement"][0]["Action"],
            serde_json::json!(["s3:GetObject", "s3:GetObjectVersion"])
        );
        assert_eq!(
            p["Statement"][1]["Resource"],
            serde_json::json!(["arn:aws:s3:::originals", "arn:aws:s3:::replica"])
        );
        assert_eq!(p["Statement"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn tenants_outside_the_grammar_get_no_policy() {
        let buckets = vec!["originals".to_string()];
        for bad in ["", "*", "a/b", "Acme", "a*", "-a", "a\"b", &"a".repeat(64)] {
            assert!(
                matches!(
                    session_policy("aws", &buckets, bad),
                    Err(StoreError::Denied(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn policies_stay_under_the_sts_limit_and_name_the_partition() {
        // AWS refuses a session policy over 2,048 characters (before packing).
        let buckets = vec!["a".repeat(63), "b".repeat(63)];
        let longest = session_policy("aws-us-gov", &buckets, &"t".repeat(63)).expect("policy");
        assert!(longest.len() < 2048, "{} characters", longest.len());
        assert!(longest.contains("arn:aws-us-gov:s3:::"));
        assert_eq!(partition_of("arn:aws-cn:iam::1:role/r"), "aws-cn");
        assert_eq!(partition_of("role"), "aws");
    }
}
