//! CloudFront adapter of the [`Cdn`] port (feature `cdn`): `CreateInvalidation` and
//! `GetInvalidation` on one distribution, errors mapped to what the state machine retries.

use super::{Cdn, CdnError, Invalidation};
use aws_sdk_cloudfront::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_cloudfront::Client;

/// One CloudFront distribution.
#[derive(Debug, Clone)]
pub struct CloudFront {
    client: Client,
    distribution_id: String,
}

impl CloudFront {
    /// The distribution `distribution_id` through `client`.
    pub fn new(client: Client, distribution_id: impl Into<String>) -> Self {
        CloudFront {
            client,
            distribution_id: distribution_id.into(),
        }
    }
}

/// Maps an SDK error by its error code: the in-progress limit and throttling are retried by
/// the state machine, client errors are not, everything else (timeouts, 5xx) is.
fn map_err<E: ProvideErrorMetadata, R>(err: SdkError<E, R>) -> CdnError {
    let code = err.code().unwrap_or_default().to_string();
    let message = match err.message() {
        Some(m) => format!("{code}: {m}"),
        None if code.is_empty() => "no response from CloudFront".to_string(),
        None => code.clone(),
    };
    match code.as_str() {
        "TooManyInvalidationsInProgress" => CdnError::TooManyInProgress(message),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            CdnError::Throttled(message)
        }
        "AccessDenied"
        | "NoSuchDistribution"
        | "NoSuchInvalidation"
        | "InvalidArgument"
        | "MissingBody"
        | "BatchTooLarge"
        | "InconsistentQuantities" => CdnError::Denied(message),
        _ => CdnError::Unavailable(message),
    }
}

fn invalidation_of(
    inv: Option<&aws_sdk_cloudfront::types::Invalidation>,
    caller_reference: &str,
    paths: usize,
) -> Result<Invalidation, CdnError> {
    let inv = inv.ok_or_else(|| CdnError::Unavailable("answer without an invalidation".into()))?;
    let status = inv.status().to_string();
    Ok(Invalidation {
        id: inv.id().to_string(),
        done: status.eq_ignore_ascii_case("completed"),
        status,
        caller_reference: caller_reference.to_string(),
        paths,
    })
}

impl Cdn for CloudFront {
    async fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<Invalidation, CdnError> {
        let items = Paths::builder()
            .quantity(paths.len() as i32)
            .set_items(Some(paths.to_vec()))
            .build()
            .map_err(|e| CdnError::Denied(e.to_string()))?;
        let batch = InvalidationBatch::builder()
            .caller_reference(caller_reference)
            .paths(items)
            .build()
            .map_err(|e| CdnError::Denied(e.to_string()))?;
        let out = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(map_err)?;
        invalidation_of(out.invalidation(), caller_reference, paths.len())
    }

    async fn invalidation(&self, id: &str) -> Result<Invalidation, CdnError> {
        let out = self
            .client
            .get_invalidation()
            .distribution_id(&self.distribution_id)
            .id(id)
            .send()
            .await
            .map_err(map_err)?;
        let inv = out.invalidation();
        let reference = inv
            .and_then(|i| i.invalidation_batch())
            .map(|b| b.caller_reference().to_string())
            .unwrap_or_default();
        let n = inv
            .and_then(|i| i.invalidation_batch())
            .map(|b| b.paths().map_or(0, |p| p.quantity()) as usize)
            .unwrap_or(0);
        invalidation_of(inv, &reference, n)
    }
}
