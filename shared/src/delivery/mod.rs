//! On-demand delivery (docs/url-grammar.md, docs/aws-deploy.md, docs/signing.md): what the transformer Lambda and the local stack do
//! with one image request that the static derivatives did not answer.
//!
//! 1. [`ViewerRequest::parse`] finds the viewer's request: the request itself
//!    (`/img/{tenant}/v{N}/{key}?…`), or, behind CloudFront, the derived-object URI the edge
//!    function rewrote it to plus the viewer's request it forwards in
//!    [`FORWARDED_REQUEST_HEADER`].
//! 2. [`ViewerRequest::admit`] re-runs the edge's checks with the same code as everywhere in
//!    Rust: the tenant's signature and Referer policy ([`crate::sign::check`]), normalization
//!    ([`crate::normalize`]), and, for a forwarded request, that it normalizes to exactly the
//!    URI CloudFront asked for.
//! 3. [`Transformer::deliver`] serves the normalized request: the manifest names the exact
//!    S3 version of the original; a derivative already stored is returned as is; otherwise the
//!    original is read (from the replica when the primary fails or is slow), the one variant
//!    is rendered and stored under its derivative name, so the next miss is a plain GET.
//!    A render is first allowed by the tenant's on-demand policy ([`crate::sign::OnDemand`]),
//!    then admitted by the render gate ([`admission`]: a bounded count and a memory budget
//!    estimated from the header), or answered 503 with `Retry-After` after a short wait.
//!
//! Storage keys are built only from the validated tenant, version and key: no request data
//! ever becomes a URL, a bucket name or an unvalidated key. Errors carry a short public
//! reason ([`DeliveryError::reason`]) and never an internal message.

use crate::normalize::{self, AssetPath, Canonical, Normalized, Reject};
use crate::pipeline::DERIVATIVE_CACHE_CONTROL;
use crate::policy::Policy;
use crate::render::{probe, render_one, RenderConfig, RenderError, Target};
use crate::sign::{self, Forbidden, OnDemand, TenantPolicy};
use crate::store::{
    AssetId, ManifestError, ManifestStore, ObjectStore, PolicyStore, PutOptions, Status,
    StoreError, VersionRecord,
};
use bytes::Bytes;
use md5::{Digest, Md5};
use std::time::{Duration, Instant};

pub mod admission;
pub mod http;

pub use admission::{Admission, AdmissionConfig};

/// Request header in which the CloudFront Function forwards the viewer's request (path, then
/// `?` and the query pieces as sent) when it rewrites the URI to the derived-object key.
pub const FORWARDED_REQUEST_HEADER: &str = "x-pixelfront-request";

/// `Cache-Control` of 4xx answers (docs/aws-deploy.md: 10 s).
pub const CLIENT_ERROR_CACHE_CONTROL: &str = "public, max-age=10";

/// `Cache-Control` of 5xx answers (docs/aws-deploy.md: 60 s).
pub const SERVER_ERROR_CACHE_CONTROL: &str = "public, max-age=60";

/// `Cache-Control` of the answers that ask the client to retry shortly (503 overloaded, 429
/// rate): cached for a moment only, so a flood of one URL does not reach the renderer but a
/// retry after `Retry-After` does.
pub const RETRY_CACHE_CONTROL: &str = "public, max-age=2";

/// Why a request is not answered with an image. [`DeliveryError::status`] is the HTTP status,
/// [`DeliveryError::reason`] the short plain-text body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The request breaks the URL grammar or the parameter rules (400).
    #[error("{0}")]
    BadRequest(Reject),
    /// The forwarded viewer request does not normalize to the requested derivative (400).
    #[error("request does not match its derivative")]
    Mismatch,
    /// Refused by the tenant's policy (403).
    #[error("{0}")]
    Forbidden(Forbidden),
    /// No such asset or version (404).
    #[error("not found")]
    NotFound,
    /// The asset was taken down or erased (404; nothing of it is served).
    #[error("removed")]
    Removed,
    /// The original cannot be rendered (422), e.g. corrupt; the public reason is the stable
    /// error type such as `ImageCorrupt`.
    #[error("original cannot be rendered: {error_type}")]
    Unrenderable {
        /// Stable error type (`ImageCorrupt`, `ImageTooLarge`, `ImageUnsupported`, …).
        error_type: String,
        /// Internal detail, for logs only.
        detail: String,
    },
    /// No render slot or memory within the wait (503 with `Retry-After`); nothing was rendered.
    #[error("overloaded; retry in {retry_after_s} s")]
    Overloaded {
        /// Seconds to wait before retrying (the `Retry-After` header).
        retry_after_s: u32,
    },
    /// The tenant's on-demand render rate is used up (429 with `Retry-After`).
    #[error("on-demand render rate exceeded; retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until the tenant's next render is allowed (the `Retry-After` header).
        retry_after_s: u32,
    },
    /// A store or the manifest failed or timed out (503); worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an impossible state (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DeliveryError {
    /// HTTP status code, 400..=599.
    pub fn status(&self) -> u16 {
        match self {
            DeliveryError::BadRequest(_) | DeliveryError::Mismatch => 400,
            DeliveryError::Forbidden(_) => 403,
            DeliveryError::NotFound | DeliveryError::Removed => 404,
            DeliveryError::Unrenderable { .. } => 422,
            DeliveryError::RateLimited { .. } => 429,
            DeliveryError::Unavailable(_) | DeliveryError::Overloaded { .. } => 503,
            DeliveryError::Internal(_) => 500,
        }
    }

    /// A stable name of the error's kind, for logs and metrics: the variant's name, or for
    /// [`DeliveryError::Unrenderable`] the original's error type (`ImageCorrupt`, …).
    pub fn error_type(&self) -> &str {
        match self {
            DeliveryError::BadRequest(_) => "BadRequest",
            DeliveryError::Mismatch => "Mismatch",
            DeliveryError::Forbidden(_) => "Forbidden",
            DeliveryError::NotFound => "NotFound",
            DeliveryError::Removed => "Removed",
            DeliveryError::Unrenderable { error_type, .. } => error_type,
            DeliveryError::Overloaded { .. } => "Overloaded",
            DeliveryError::RateLimited { .. } => "RateLimited",
            DeliveryError::Unavailable(_) => "Unavailable",
            DeliveryError::Internal(_) => "Internal",
        }
    }

    /// The short public reason (the response body): the rejection or refusal reason the edge
    /// gives, never store, SDK or file-system detail.
    pub fn reason(&self) -> String {
        match self {
            DeliveryError::BadRequest(r) => r.to_string(),
            DeliveryError::Forbidden(f) => f.to_string(),
            DeliveryError::Unrenderable { error_type, .. } => {
                format!("original cannot be rendered: {error_type}")
            }
            DeliveryError::Unavailable(_) => "temporarily unavailable".to_string(),
            DeliveryError::Overloaded { .. } => "overloaded; retry later".to_string(),
            DeliveryError::RateLimited { .. } => "on-demand render rate exceeded".to_string(),
            DeliveryError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// Seconds a client should wait before retrying (the `Retry-After` header), for the answers
    /// that depend on load rather than on the request: [`DeliveryError::Overloaded`] and
    /// [`DeliveryError::RateLimited`].
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            DeliveryError::Overloaded { retry_after_s }
            | DeliveryError::RateLimited { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// `Cache-Control` for this answer: 4xx 10 s and 5xx 60 s (docs/aws-deploy.md); a 403 is never
    /// cached, as at the edge (it depends on the time and the Referer, not only on the URL), nor
    /// a [`DeliveryError::Mismatch`] (it depends on the viewer's request, e.g. its `Accept`, not
    /// on the derivative CloudFront would cache it under); an answer with
    /// [`DeliveryError::retry_after`] is cached for [`RETRY_CACHE_CONTROL`]'s moment.
    pub fn cache_control(&self) -> &'static str {
        if self.retry_after().is_some() {
            return RETRY_CACHE_CONTROL;
        }
        match self.status() {
            403 => "no-store",
            _ if *self == DeliveryError::Mismatch => "no-store",
            400..=499 => CLIENT_ERROR_CACHE_CONTROL,
            _ => SERVER_ERROR_CACHE_CONTROL,
        }
    }
}

impl From<ManifestError> for DeliveryError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Unavailable(_) | ManifestError::Conflict(_) => {
                DeliveryError::Unavailable(e.to_string())
            }
            other => DeliveryError::Internal(other.to_string()),
        }
    }
}

/// A request [`Transformer::admit`] let through: normalized, with the tenant's on-demand policy
/// from the same policy read (so a miss does not read the policy twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The normalized request: canonical parameters, derivative name, version.
    pub request: Normalized,
    /// The tenant's on-demand policy, applied if the derivative has to be rendered.
    pub on_demand: OnDemand,
}

/// The viewer's request behind one incoming request, with its asset path validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerRequest {
    /// The viewer's path, `/img/{tenant}/v{N}/{key}`.
    pub path: String,
    /// The viewer's raw query string (without `?`), as sent.
    pub query: String,
    /// The validated tenant, version and key.
    pub asset: AssetPath,
    /// For a forwarded request, the URI path CloudFront asked for (`/{derived key}`).
    pub derived_uri: Option<String>,
}

impl ViewerRequest {
    /// The viewer's request behind `uri_path` + `uri_query`: the request itself, or, when
    /// `forwarded` (the [`FORWARDED_REQUEST_HEADER`] value) is present, that request, which
    /// must then normalize to `uri_path`. Fails with the 400 of a path that breaks the grammar.
    pub fn parse(
        uri_path: &str,
        uri_query: &str,
        forwarded: Option<&str>,
    ) -> Result<ViewerRequest, DeliveryError> {
        let (path, query, derived_uri) = match forwarded {
            Some(f) => {
                let (p, q) = f.split_once('?').unwrap_or((f, ""));
                (p, q, Some(uri_path.to_string()))
            }
            None => (uri_path, uri_query, None),
        };
        let asset = normalize::parse_path(path).map_err(DeliveryError::BadRequest)?;
        Ok(ViewerRequest {
            path: path.to_string(),
            query: query.to_string(),
            asset,
            derived_uri,
        })
    }

    /// The edge's checks, in the edge's order after the path: the tenant's `policy`
    /// (signature at `now`, Unix seconds, then Referer), then normalization with `accept`,
    /// then, for a forwarded request, the match with the requested derivative.
    pub fn admit(
        &self,
        accept: Option<&str>,
        referer: Option<&str>,
        policy: &TenantPolicy,
        now: u64,
    ) -> Result<Normalized, DeliveryError> {
        sign::check(&self.path, &self.query, referer, now, policy)
            .map_err(DeliveryError::Forbidden)?;
        let n = normalize::normalize(&self.path, &self.query, accept)
            .map_err(DeliveryError::BadRequest)?;
        match &self.derived_uri {
            Some(uri) if uri.strip_prefix('/') != Some(n.derived_key().as_str()) => {
                Err(DeliveryError::Mismatch)
            }
            _ => Ok(n),
        }
    }
}

/// Where a delivered image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The derivative was already stored (a race with another miss, or a standard variant).
    Stored,
    /// Rendered now from the original.
    Rendered {
        /// The original was read from the replica bucket (the primary failed or timed out).
        from_replica: bool,
        /// Whether the derivative was stored (`false` when the write failed; it was still
        /// served).
        stored: bool,
    },
}

impl Source {
    /// `stored`, `rendered` or `rendered-replica` (a response header and a log field).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stored => "stored",
            Source::Rendered {
                from_replica: false,
                ..
            } => "rendered",
            Source::Rendered {
                from_replica: true, ..
            } => "rendered-replica",
        }
    }
}

/// An image to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The derived object key, `{tenant}/v{N}/{key}/{derivative}`.
    pub derived_key: String,
    /// Encoded image, shared (a cache and every answer hold the same buffer).
    pub bytes: Bytes,
    /// `Content-Type`, e.g. `image/webp`.
    pub content_type: &'static str,
    /// `Cache-Control`: versioned derivatives are immutable for a year.
    pub cache_control: &'static str,
    /// Strong `ETag`, quoted: the MD5 of the bytes, as S3 reports it for the stored object.
    pub etag: String,
    /// The asset's cache tag, `asset:{tenant}/{key}`: served as `x-amz-meta-cache-tag`, as
    /// S3 serves it with the stored object, so one tag invalidation purges both paths.
    pub cache_tag: String,
    /// Where it came from.
    pub source: Source,
    /// Render time (decode + resize + encode), milliseconds; 0 when stored.
    pub render_ms: u64,
}

/// The quoted strong ETag of `bytes`: hex MD5, what S3 gives a single-part upload.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    format!("\"{}\"", hex::encode(digest))
}

/// Whether an `If-None-Match` header value matches `etag` (a list, weak forms, or `*`).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == bare)
}

/// Settings of a [`Transformer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformConfig {
    /// Engine settings and input limits.
    pub render: RenderConfig,
    /// How long the primary originals store may take before the replica is tried.
    pub primary_timeout: Duration,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig {
            render: RenderConfig::default(),
            primary_timeout: Duration::from_secs(3),
        }
    }
}

/// The on-demand transformer over its ports: originals (and their replica), derivatives, the
/// manifest and the tenant policies.
#[derive(Debug)]
pub struct Transformer<O, R, D, M, P> {
    /// Originals, `{tenant}/{key}`, versioned.
    pub originals: O,
    /// The originals' replica (S3 CRR), read when `originals` fails or is slow.
    pub replica: Option<R>,
    /// Derivatives, `{tenant}/v{N}/{key}/{derivative}`.
    pub derived: D,
    /// The manifest (which S3 version is version N).
    pub manifest: M,
    /// Tenant policies (signing keys, Referers).
    pub policies: P,
    /// Settings.
    pub config: TransformConfig,
    /// The render gate (count, memory budget, tenant rates), shared by every request.
    pub admission: Admission,
}

/// One incoming request as a server sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Incoming<'a> {
    /// URI path as received.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    /// The [`FORWARDED_REQUEST_HEADER`] value, if any.
    pub forwarded: Option<&'a str>,
    /// `Accept` header (for `fmt=auto`).
    pub accept: Option<&'a str>,
    /// `Referer` header.
    pub referer: Option<&'a str>,
}

impl<O, R, D, M, P> Transformer<O, R, D, M, P>
where
    O: ObjectStore,
    R: ObjectStore,
    D: ObjectStore,
    M: ManifestStore,
    P: PolicyStore,
{
    /// Checks `req` like the edge (path, tenant policy at `now` in Unix seconds, normalization)
    /// and returns the normalized request with the tenant's on-demand policy (one policy read).
    pub async fn admit(&self, req: &Incoming<'_>, now: u64) -> Result<Admitted, DeliveryError> {
        let viewer = ViewerRequest::parse(req.path, req.query, req.forwarded)?;
        let policy = self
            .policies
            .policy(&viewer.asset.tenant)
            .await
            .map_err(|e| DeliveryError::Unavailable(format!("tenant policy: {e}")))?;
        Ok(Admitted {
            request: viewer.admit(req.accept, req.referer, &policy, now)?,
            on_demand: policy.on_demand,
        })
    }

    /// [`Transformer::admit`], then [`Transformer::deliver`].
    pub async fn serve(&self, req: &Incoming<'_>, now: u64) -> Result<Delivered, DeliveryError> {
        let admitted = self.admit(req, now).await?;
        self.deliver(&admitted).await
    }

    /// Serves a normalized request: the stored derivative, or a render of the exact original
    /// version the manifest names, stored under the derivative name.
    pub async fn deliver(&self, admitted: &Admitted) -> Result<Delivered, DeliveryError> {
        let n = &admitted.request;
        let asset = AssetId {
            tenant: n.asset.tenant.clone(),
            key: n.asset.key.clone(),
        };
        let record = self
            .manifest
            .get(&asset, n.asset.version)
            .await?
            .ok_or(DeliveryError::NotFound)?;
        match record.status {
            Status::TakenDown | Status::Erased => return Err(DeliveryError::Removed),
            Status::Failed => {
                if let Some(t) = record.error_type.as_deref().filter(|t| is_image_error(t)) {
                    return Err(DeliveryError::Unrenderable {
                        error_type: t.to_string(),
                        detail: record.error.clone().unwrap_or_default(),
                    });
                }
            }
            Status::Rendering | Status::Ready => {}
        }

        let derived_key = n.derived_key();
        let target = Target::from(&n.canonical);
        let content_type = target.fmt.content_type();
        if let Some(stored) = self.stored(&derived_key, &asset, content_type).await {
            return Ok(stored);
        }

        // Only a render is subject to the tenant's on-demand policy and to the render gate.
        let standard = is_standard(&n.canonical);
        if !standard {
            self.on_demand_allowed(&asset.tenant, admitted.on_demand)?;
        }
        let overloaded = |o: admission::Overloaded| DeliveryError::Overloaded {
            retry_after_s: o.retry_after_s,
        };
        let slot = self.admission.slot().await.map_err(overloaded)?;
        if slot.waited() {
            // Rendered and stored by someone else while this waited: not twice.
            if let Some(stored) = self.stored(&derived_key, &asset, content_type).await {
                return Ok(stored);
            }
        }
        let (original, from_replica) = self.read_original(&asset, &record).await?;
        let cfg = self.config.render;
        let info = probe(&original, &cfg.limits).map_err(render_error)?;
        let estimate = admission::estimate(&info, &target, &cfg, original.len() as u64);
        let permit = slot.reserve(estimate).await.map_err(overloaded)?;
        let started = Instant::now();
        // The permit moves into the render and is released when it ends (returns, fails or
        // panics), even if this request is dropped meanwhile.
        let rendered = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            render_one(&original, &target, &cfg)
        })
        .await
        .map_err(|e| DeliveryError::Internal(format!("render task: {e}")))?
        .map_err(render_error)?;
        let render_ms = started.elapsed().as_millis() as u64;

        let opts = PutOptions {
            content_type: content_type.to_string(),
            cache_control: DERIVATIVE_CACHE_CONTROL.to_string(),
            cache_tag: Some(asset.cache_tag()),
            // Standard variants never expire; on-demand ones may (a lifecycle rule on AWS).
            on_demand: !standard,
        };
        let stored = match self
            .derived
            .put(&derived_key, rendered.bytes.clone(), &opts)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(key = %derived_key, error = %e, "storing the derivative failed");
                false
            }
        };
        if stored {
            // A takedown may have marked and purged the version while this rendered: its
            // purge listed the prefix before this object existed, so take it back and answer
            // as for a removed asset. (Once stored, any later purge lists it: S3 listings are
            // strongly consistent.)
            let now = self.manifest.get(&asset, n.asset.version).await?;
            if matches!(
                now.map(|r| r.status),
                Some(Status::TakenDown | Status::Erased) | None
            ) {
                self.derived.delete(&derived_key).await.map_err(|e| {
                    DeliveryError::Unavailable(format!("taking back {derived_key}: {e}"))
                })?;
                tracing::info!(key = %derived_key, "removed while rendering: derivative deleted");
                return Err(DeliveryError::Removed);
            }
        }
        Ok(Delivered {
            derived_key,
            cache_tag: asset.cache_tag(),
            etag: etag_of(&rendered.bytes),
            bytes: Bytes::from(rendered.bytes),
            content_type,
            cache_control: DERIVATIVE_CACHE_CONTROL,
            source: Source::Rendered {
                from_replica,
                stored,
            },
            render_ms,
        })
    }

    /// The stored derivative `derived_key`, if there is one (a failed read is logged and
    /// treated as a miss).
    async fn stored(
        &self,
        derived_key: &str,
        asset: &AssetId,
        content_type: &'static str,
    ) -> Option<Delivered> {
        // A derivative is at most the output limit's worth of pixels, encoded; far below this.
        let stored_limit = self.config.render.limits.max_input_bytes;
        match self.derived.get(derived_key, None, stored_limit).await {
            Ok(obj) => Some(Delivered {
                derived_key: derived_key.to_string(),
                cache_tag: asset.cache_tag(),
                etag: etag_of(&obj.bytes),
                bytes: Bytes::from(obj.bytes),
                content_type,
                cache_control: DERIVATIVE_CACHE_CONTROL,
                source: Source::Stored,
                render_ms: 0,
            }),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => {
                tracing::warn!(key = %derived_key, error = %e, "derived read failed; rendering");
                None
            }
        }
    }

    /// Whether `tenant`'s on-demand policy (read by [`Transformer::admit`]) allows one more
    /// render of a non-standard derivative:
    /// `catalogue` answers 404, a used-up rate 429.
    fn on_demand_allowed(&self, tenant: &str, on_demand: OnDemand) -> Result<(), DeliveryError> {
        match on_demand {
            OnDemand::Any => Ok(()),
            OnDemand::Catalogue => Err(DeliveryError::NotFound),
            OnDemand::RatePerMinute(n) => {
                self.admission
                    .tenant_rate(tenant, n)
                    .map_err(|r| DeliveryError::RateLimited {
                        retry_after_s: r.retry_after_s,
                    })
            }
        }
    }

    /// The bytes of the original version `record` names: from the primary store, or from the
    /// replica when the primary is unavailable or slower than the configured timeout.
    async fn read_original(
        &self,
        asset: &AssetId,
        record: &VersionRecord,
    ) -> Result<(Vec<u8>, bool), DeliveryError> {
        let key = asset.id();
        let version = s3_version(record);
        let limit = self.config.render.limits.max_input_bytes;
        let primary = tokio::time::timeout(
            self.config.primary_timeout,
            self.originals.get(&key, version, limit),
        )
        .await;
        let why = match primary {
            Ok(Ok(obj)) => return Ok((obj.bytes, false)),
            Ok(Err(StoreError::Unavailable(e))) => e,
            Err(_) => format!("no answer in {:?}", self.config.primary_timeout),
            Ok(Err(e)) => return Err(store_error(e)),
        };
        let Some(replica) = &self.replica else {
            return Err(DeliveryError::Unavailable(format!("originals: {why}")));
        };
        tracing::warn!(key = %key, reason = %why, "primary originals store failed; reading the replica");
        let bytes = match replica.get(&key, version, limit).await {
            Ok(obj) => obj.bytes,
            // A store that does not keep S3 version ids: its current object, if it is the
            // very bytes the manifest recorded (the ETag of a single-part upload is its MD5).
            Err(StoreError::NotFound(_)) if version.is_some() => {
                let obj = replica.get(&key, None, limit).await.map_err(store_error)?;
                let want = record.source_etag.as_deref().map(|e| e.trim_matches('"'));
                if want.is_none() || Some(etag_of(&obj.bytes).trim_matches('"')) != want {
                    return Err(DeliveryError::Unavailable(format!(
                        "replica of {key} does not hold version {}",
                        record.source_version_id
                    )));
                }
                obj.bytes
            }
            Err(e) => return Err(store_error(e)),
        };
        Ok((bytes, true))
    }
}

/// The S3 version id to read, or `None` when the manifest recorded an unversioned upload.
fn s3_version(record: &VersionRecord) -> Option<&str> {
    let v = record.source_version_id.as_str();
    (!v.starts_with("etag:") && v != "unversioned" && v != "null").then_some(v)
}

/// Whether `c` is one of the standard variants (the catalogue every upload pre-renders).
pub fn is_standard(c: &Canonical) -> bool {
    static STANDARD: std::sync::OnceLock<Vec<Canonical>> = std::sync::OnceLock::new();
    STANDARD
        .get_or_init(|| {
            Policy::get()
                .variants
                .iter()
                .map(|v| Target::from(v).canonical())
                .collect()
        })
        .contains(c)
}

/// Error types of originals that no retry will render.
fn is_image_error(error_type: &str) -> bool {
    matches!(
        error_type,
        "ImageCorrupt" | "ImageTooLarge" | "ImageUnsupported"
    )
}

fn render_error(e: RenderError) -> DeliveryError {
    DeliveryError::Unrenderable {
        error_type: e.error_type().to_string(),
        detail: e.to_string(),
    }
}

fn store_error(e: StoreError) -> DeliveryError {
    match e {
        // The manifest names an original the store no longer has: a removal in progress.
        StoreError::NotFound(_) => DeliveryError::NotFound,
        StoreError::TooLarge { .. } => DeliveryError::Unrenderable {
            error_type: "ImageTooLarge".to_string(),
            detail: e.to_string(),
        },
        StoreError::Denied(_) => DeliveryError::Internal(e.to_string()),
        StoreError::Unavailable(_) => DeliveryError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
