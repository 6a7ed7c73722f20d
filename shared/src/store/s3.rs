//! S3 adapter of the object-store port (aws-sdk-s3). One instance per bucket. Endpoint
//! override (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, read by aws-config) switches on
//! path-style addressing, which emulators such as SeaweedFS need.

use super::{Object, ObjectStore, PutOptions, StoreError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// Builds an S3 client from the shared SDK config; path-style addressing when an endpoint
/// override is set in the environment or `PIXELFRONT_S3_PATH_STYLE=1`.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    client_in(sdk, None, None)
}

/// Like [`client`], for another `region` (the replica's) and, optionally, its own `endpoint`
/// (an S3-compatible store standing in for the replica region; path-style then too).
pub fn client_in(
    sdk: &aws_config::SdkConfig,
    region: Option<&str>,
    endpoint: Option<&str>,
) -> Client {
    Client::from_conf(config_in(sdk, region, endpoint).build())
}

/// The configuration [`client_in`] builds, for adapters that change more (credentials).
pub fn config_in(
    sdk: &aws_config::SdkConfig,
    region: Option<&str>,
    endpoint: Option<&str>,
) -> aws_sdk_s3::config::Builder {
    let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let forced = std::env::var("PIXELFRONT_S3_PATH_STYLE").is_ok_and(|v| v == "1");
    let mut conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(overridden || forced || endpoint.is_some());
    if let Some(region) = region {
        conf = conf.region(aws_sdk_s3::config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        conf = conf.endpoint_url(endpoint);
    }
    conf
}

/// The `x-amz-tagging` value (URL-encoded query form) of an on-demand derivative:
/// [`super::ON_DEMAND_TAG_KEY`]`=`[`super::ON_DEMAND_TAG_VALUE`], the tag the derived bucket's
/// lifecycle rule expires (template.yaml, `OnDemandExpirationDays`).
pub fn on_demand_tagging() -> String {
    format!(
        "{}={}",
        super::ON_DEMAND_TAG_KEY,
        super::ON_DEMAND_TAG_VALUE
    )
}

/// An S3 bucket as an object store.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    /// The bucket `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Objects {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// Maps an SDK error to the port's error: 404s and missing versions are `NotFound`, other
/// 4xx `Denied`, everything else (5xx, throttling, timeouts, connection failures)
/// `Unavailable`.
fn map_err<E>(what: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_string();
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(&err));
    match (status, code.as_str()) {
        (_, "NoSuchKey" | "NoSuchVersion" | "NotFound") | (Some(404), _) => {
            StoreError::NotFound(what.to_string())
        }
        (_, "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout") => {
            StoreError::Unavailable(detail)
        }
        (Some(s), _) if (400..500).contains(&s) && s != 408 && s != 429 => {
            StoreError::Denied(detail)
        }
        _ => StoreError::Unavailable(detail),
    }
}

impl ObjectStore for S3Objects {
    async fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, StoreError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| map_err(&what, e))?;
        let len = resp.content_length().unwrap_or(0).max(0) as u64;
        if len > max_bytes {
            return Err(StoreError::TooLarge {
                bytes: len,
                limit: max_bytes,
            });
        }
        let content_type = resp.content_type().map(str::to_string);
        let body = resp
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{what}: reading body: {e}")))?;
        let bytes = body.into_bytes().to_vec();
        if bytes.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                bytes: bytes.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(Object {
            bytes,
            content_type,
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, opts: &PutOptions) -> Result<(), StoreError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(&opts.content_type)
            .cache_control(&opts.cache_control);
        if let Some(tag) = &opts.cache_tag {
            req = req.metadata("cache-tag", tag);
        }
        if opts.on_demand {
            // Needs s3:PutObjectTagging besides s3:PutObject (template.yaml).
            req = req.tagging(on_demand_tagging());
        }
        req.send().await.map_err(|e| map_err(&what, e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        crate::removal::VersionedStore::delete_version(self, key, None).await
    }
}

impl crate::removal::VersionedStore for S3Objects {
    fn bucket_name(&self) -> &str {
        &self.bucket
    }

    /// `ListObjectVersions` under `prefix`, every page; with [`crate::removal::Listing::Delimited`]
    /// the delimiter `/`, so keys with a `/` after the prefix are rolled up into common
    /// prefixes and left out (the derivatives of `K/x` are not `K`'s).
    async fn list_versions(
        &self,
        prefix: &str,
        listing: crate::removal::Listing,
    ) -> Result<Vec<crate::removal::ObjectVersion>, StoreError> {
        use crate::removal::{Listing, ObjectVersion};
        let delimiter = (listing == Listing::Delimited).then(|| "/".to_string());
        // Also checked here, should a store ignore the delimiter.
        let keep = |key: &&str| {
            listing == Listing::Deep || key.strip_prefix(prefix).is_some_and(|r| !r.contains('/'))
        };
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.clone())
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| map_err(prefix, e))?;
            for v in page.versions() {
                if let Some(key) = v.key().filter(keep) {
                    out.push(ObjectVersion {
                        key: key.to_string(),
                        version_id: v.version_id().map(str::to_string),
                        delete_marker: false,
                    });
                }
            }
            for m in page.delete_markers() {
                if let Some(key) = m.key().filter(keep) {
                    out.push(ObjectVersion {
                        key: key.to_string(),
                        version_id: m.version_id().map(str::to_string),
                        delete_marker: true,
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match map_err(key, e) {
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
    /// `HeadObject` of the version: its `x-amz-replication-status` (`PENDING` until the copy is
    /// written in the replica). A missing version is `NotFound`.
    async fn replication(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<crate::removal::ReplicationState, StoreError> {
        use crate::removal::ReplicationState;
        use aws_sdk_s3::types::ReplicationStatus;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(match head.replication_status() {
            None => ReplicationState::None,
            Some(ReplicationStatus::Pending) => ReplicationState::Pending,
            Some(ReplicationStatus::Failed) => ReplicationState::Failed,
            Some(ReplicationStatus::Replica) => ReplicationState::Replica,
            // COMPLETE(D); an unknown future value is not `PENDING`.
            Some(_) => ReplicationState::Completed,
        })
    }
}
