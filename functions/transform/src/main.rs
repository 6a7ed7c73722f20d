//! The on-demand transformer Lambda, behind a Function URL that only CloudFront can call
//! (Origin Access Control). CloudFront's origin group sends it what the derived bucket did not
//! have (403/404) or could not serve (5xx).
//!
//! Thin by design: read the configuration, wire the S3 (primary and replica) and DynamoDB
//! adapters into [`pixelfront_shared::delivery::Transformer`], and hand each request to
//! [`Transformer::admit`], [`Transformer::deliver`] and the shared HTTP mapping
//! ([`pixelfront_shared::delivery::http`]), the one the local stack answers with too.
//! Everything it checks, renders and answers is the shared crate's code. Each request prints its
//! CloudWatch metrics ([`pixelfront_shared::metrics`]): the miss, the render, and an error for a
//! 5xx or an unrenderable original.

use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use pixelfront_shared::delivery::admission::MIB;
use pixelfront_shared::delivery::http::{self as mapping, HttpResponse};
use pixelfront_shared::delivery::{
    Admission, AdmissionConfig, DeliveryError, Incoming, Source, TransformConfig, Transformer,
    FORWARDED_REQUEST_HEADER,
};
use pixelfront_shared::lambda;
use pixelfront_shared::metrics::{self, Emf, Unit};
use pixelfront_shared::normalize::accept_header;
use pixelfront_shared::store::dynamo::DynamoManifest;
use pixelfront_shared::store::dynamo_policies::DynamoPolicies;
use pixelfront_shared::store::s3::{self, S3Objects};
use pixelfront_shared::store::scoped::{ScopedS3Objects, TenantScope};
use pixelfront_shared::store::{ManifestStore, ObjectStore, PolicyStore};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest image answered in the response body: Lambda's buffered payload is 6 MB and a
/// binary body travels base64-encoded (4/3 larger), with room left for the headers. Larger
/// renders are stored and the viewer is sent to fetch them again, from the bucket.
const MAX_INLINE_BYTES: usize = 4_400_000;

/// The shared mapping's response as a Function URL response: text stays text, an image
/// travels as binary (base64 on the wire), an empty body is empty.
fn to_lambda(resp: HttpResponse) -> Response<Body> {
    let (parts, bytes) = resp.into_parts();
    let is_text = parts
        .headers
        .get(lambda_http::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/") || t.starts_with("application/json"));
    let body = if bytes.is_empty() {
        Body::Empty
    } else if is_text {
        Body::Text(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        Body::Binary(bytes.to_vec())
    };
    Response::from_parts(parts, body)
}

/// The render gate's settings (docs/limits.md): defaults from the function's memory
/// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`: one render per vCPU, 70 % of the memory as the budget),
/// overridden by `PIXELFRONT_RENDER_SLOTS`, `PIXELFRONT_RENDER_MEMORY_MB` and
/// `PIXELFRONT_RENDER_WAIT_MS`. One invocation serves one request, so the count matters little
/// here; the budget still lets a render over it run only alone. The cap across instances is the
/// function's reserved concurrency (template.yaml).
fn admission_from_env(var: impl Fn(&str) -> Option<String>) -> Result<AdmissionConfig, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        var(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
            })
            .transpose()
    };
    let mut cfg = match number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")? {
        Some(mb) => AdmissionConfig::for_lambda_memory(u32::try_from(mb).unwrap_or(u32::MAX)),
        None => AdmissionConfig::default(),
    };
    if let Some(n) = number("PIXELFRONT_RENDER_SLOTS")?.filter(|&n| n > 0) {
        cfg.max_renders = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(mb) = number("PIXELFRONT_RENDER_MEMORY_MB")?.filter(|&n| n > 0) {
        cfg.budget_bytes = mb.saturating_mul(MIB);
    }
    if let Some(ms) = number("PIXELFRONT_RENDER_WAIT_MS")? {
        cfg.wait = Duration::from_millis(ms);
    }
    Ok(cfg)
}

/// One request's metrics: every request is a miss of the derived bucket.
fn miss(function: &str) -> Emf {
    Emf::new(function).with(metrics::ON_DEMAND_MISSES, Unit::Count, 1.0)
}

/// The answer to a failed request, with `records` and, when the failure is the service's (5xx)
/// or the original's (422) rather than the viewer's, an error record.
fn failed(function: &str, e: &DeliveryError, mut records: Vec<Emf>) -> (HttpResponse, Vec<Emf>) {
    if e.status() >= 500 || matches!(e, DeliveryError::Unrenderable { .. }) {
        records.push(Emf::error(function, e.error_type()));
    }
    (mapping::error(e), records)
}

/// The transformer's answer to `req`, in the shared HTTP mapping, and the request's metrics
/// records (dimension `Function` = `function`), for the caller to emit.
async fn answer<O, R, D, M, P>(
    t: &Transformer<O, R, D, M, P>,
    req: &Request,
    function: &str,
) -> (HttpResponse, Vec<Emf>)
where
    O: ObjectStore,
    R: ObjectStore,
    D: ObjectStore,
    M: ManifestStore,
    P: PolicyStore,
{
    if let Some(refused) = mapping::method_not_allowed(req.method()) {
        return (refused, vec![miss(function)]);
    }
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    // The raw path: the URI's path has had dot segments resolved by the URL parser.
    let raw_path = req.raw_http_path();
    let path = if raw_path.is_empty() {
        req.uri().path()
    } else {
        raw_path
    };
    let query = req.uri().query().unwrap_or("");
    // Every Accept field, byte for byte, read as the edge function reads them.
    let accept = accept_header(
        req.headers()
            .get_all("accept")
            .iter()
            .map(lambda_http::http::HeaderValue::as_bytes),
    );
    let incoming = Incoming {
        path,
        query,
        forwarded: header_str(FORWARDED_REQUEST_HEADER),
        accept: accept.as_deref(),
        referer: header_str("referer"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Admit and deliver (what `Transformer::serve` does), keeping the normalized request for
    // the answer's Vary.
    let admitted = match t.admit(&incoming, now).await {
        Ok(a) => a,
        Err(e) => return failed(function, &e, vec![miss(function)]),
    };
    let delivered = match t.deliver(&admitted).await {
        Ok(d) => d,
        Err(e) => return failed(function, &e, vec![miss(function)]),
    };
    let mut record = miss(function);
    if let Source::Rendered { stored, .. } = delivered.source {
        record = record.with(metrics::RENDERS, Unit::Count, 1.0).with(
            metrics::RENDER_TIME,
            Unit::Milliseconds,
            delivered.render_ms as f64,
        );
        if stored {
            let bytes = delivered.bytes.len() as f64;
            record = record.with(metrics::BYTES_WRITTEN, Unit::Bytes, bytes);
        }
    }
    let records = vec![record];
    tracing::info!(
        key = %delivered.derived_key,
        source = delivered.source.as_str(),
        bytes = delivered.bytes.len(),
        render_ms = delivered.render_ms,
        "served"
    );
    let resp = mapping::image(req.method(), req.headers(), &delivered, &admitted.request);
    if resp.body().len() > MAX_INLINE_BYTES {
        if let Source::Rendered { stored: true, .. } = delivered.source {
            let location = match incoming.forwarded {
                Some(viewer) => viewer.to_string(),
                None if query.is_empty() => path.to_string(),
                None => format!("{path}?{query}"),
            };
            return (mapping::fetch_again(&location), records);
        }
        let e = DeliveryError::Unavailable(format!(
            "{} is {} bytes, over the inline limit, and not stored",
            delivered.derived_key,
            delivered.bytes.len()
        ));
        return failed(function, &e, records);
    }
    (resp, records)
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    pixelfront_shared::alloc::limit_malloc_arenas();
    lambda::init_tracing();
    let function = metrics::function_name("transform");
    let originals_bucket = lambda::required_env("ORIGINALS_BUCKET")?;
    let derived_bucket = lambda::required_env("DERIVED_BUCKET")?;
    let table = lambda::required_env("MANIFEST_TABLE")?;
    let policy_table = lambda::required_env("TENANT_POLICY_TABLE")?;
    let replica_bucket = lambda::optional_env("REPLICA_BUCKET");
    let replica_region = lambda::optional_env("REPLICA_REGION");
    // An S3-compatible endpoint for the replica (tests and non-AWS stores); AWS needs none.
    let replica_endpoint = lambda::optional_env("REPLICA_ENDPOINT_URL");
    let timeout_ms = match lambda::optional_env("PRIMARY_READ_TIMEOUT_MS") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| format!("PRIMARY_READ_TIMEOUT_MS must be milliseconds, got {v:?}"))?,
        None => 3000,
    };
    let threads = lambda::init_rayon()?;
    let admission = admission_from_env(|name| std::env::var(name).ok())?;

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = s3::client(&sdk);
    // Originals are read with credentials scoped to the request's tenant (template.yaml
    // TenantOriginalsReadRole); without the role, with the function's own.
    let scope = lambda::optional_env("TENANT_READ_ROLE_ARN").map(|role| {
        let buckets = [Some(originals_bucket.clone()), replica_bucket.clone()];
        let buckets = buckets.into_iter().flatten().collect();
        Arc::new(TenantScope::new(
            aws_sdk_sts::Client::new(&sdk),
            role,
            buckets,
        ))
    });
    let replica = replica_bucket.map(|bucket| {
        let conf = s3::config_in(&sdk, replica_region.as_deref(), replica_endpoint.as_deref());
        ScopedS3Objects::new(scope.clone(), conf.build(), bucket)
    });
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let originals_conf = s3::config_in(&sdk, None, None).build();
    let transformer = Transformer {
        originals: ScopedS3Objects::new(scope, originals_conf, originals_bucket),
        replica,
        derived: S3Objects::new(s3, derived_bucket),
        manifest: DynamoManifest::new(dynamo.clone(), &table),
        policies: DynamoPolicies::new(dynamo, policy_table),
        config: TransformConfig {
            primary_timeout: Duration::from_millis(timeout_ms),
            ..TransformConfig::default()
        },
        admission: Admission::new(admission),
    };
    tracing::info!(
        threads,
        render_slots = admission.max_renders,
        render_budget_mb = admission.budget_bytes / MIB,
        replica = transformer.replica.is_some(),
        tenant_scoped = transformer.originals.is_scoped(),
        "transform ready"
    );
    let (transformer, function) = (&transformer, function.as_str());
    lambda_http::run(service_fn(move |req: Request| async move {
        let (resp, records) = answer(transformer, &req, function).await;
        for record in &records {
            record.emit();
        }
        Ok::<_, std::convert::Infallible>(to_lambda(resp))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixelfront_shared::store::memory::{MemoryManifest, MemoryObjects, MemoryPolicies};
    use pixelfront_shared::store::{AssetId, SourceRef};

    type Memory =
        Transformer<MemoryObjects, MemoryObjects, MemoryObjects, MemoryManifest, MemoryPolicies>;

    /// One Function URL request, as the handler runs it.
    async fn handle(t: &Memory, req: Request) -> Response<Body> {
        to_lambda(answer(t, &req, "transform").await.0)
    }

    /// The metrics records of one request, as JSON (timestamp 0).
    async fn records(t: &Memory, req: Request) -> Vec<serde_json::Value> {
        let (_, records) = answer(t, &req, "transform").await;
        records.iter().map(|r| r.to_json(0)).collect()
    }

    async fn with_original(bytes: Vec<u8>) -> Memory {
        let t = Transformer {
            originals: MemoryObjects::new(),
            replica: None,
            derived: MemoryObjects::new(),
            manifest: MemoryManifest::new(),
            policies: MemoryPolicies::new(),
            config: TransformConfig::default(),
            admission: Admission::default(),
        };
        t.originals
            .insert("acme/p.png", Some("s3v1"), bytes.clone());
        let asset = AssetId {
            tenant: "acme".into(),
            key: "p.png".into(),
        };
        let source = SourceRef {
            bucket: "o".into(),
            key: "acme/p.png".into(),
            version_id: Some("s3v1".into()),
            etag: None,
            size: bytes.len() as u64,
        };
        let assigned = t
            .manifest
            .assign(&asset, &source, "2026-01-01T00:00:00Z")
            .await;
        assigned.expect("assign");
        t
    }

    fn png(w: u32, h: u32, noise: bool) -> Vec<u8> {
        let mut seed = 0x2545_f491_u32;
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            if noise {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let [a, b, c, _] = seed.to_le_bytes();
                image::Rgb([a, b, c])
            } else {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
            }
        });
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encode");
        out
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = lambda_http::http::Request::builder()
            .method(method)
            .uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Empty).expect("request")
    }

    fn header<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn image_headers_conditional_get_head_and_errors() {
        let t = with_original(png(300, 200, false)).await;
        let r = handle(&t, request("GET", "/img/acme/v1/p.png?w=100&fmt=webp", &[])).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), "image/webp");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&r, "x-pixelfront-source"), "rendered");
        assert_eq!(header(&r, "x-amz-meta-cache-tag"), "asset:acme/p.png");
        let etag = header(&r, "etag").to_string();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        assert!(matches!(r.body(), Body::Binary(b) if b.starts_with(b"RIFF")));
        let length = match r.body() {
            Body::Binary(b) => b.len().to_string(),
            _ => String::new(),
        };

        let r = handle(
            &t,
            request(
                "GET",
                "/img/acme/v1/p.png?w=128&fmt=webp",
                &[("if-none-match", &etag)],
            ),
        )
        .await;
        assert_eq!(r.status(), 304);
        assert!(matches!(r.body(), Body::Empty));
        assert_eq!(header(&r, "x-pixelfront-source"), "stored");

        let r = handle(
            &t,
            request("HEAD", "/img/acme/v1/p.png?w=128&fmt=webp", &[]),
        )
        .await;
        assert_eq!(
            (r.status().as_u16(), header(&r, "etag")),
            (200, etag.as_str())
        );
        assert!(matches!(r.body(), Body::Empty));
        // HEAD announces the length of the GET's body (the local stack answers the same).
        assert_eq!(header(&r, "content-length"), length);

        let r = handle(&t, request("POST", "/img/acme/v1/p.png", &[])).await;
        assert_eq!(
            (r.status().as_u16(), header(&r, "allow")),
            (405, "GET, HEAD")
        );

        let r = handle(&t, request("GET", "/img/acme/v1/p.png?w=abc", &[])).await;
        assert_eq!(r.status(), 400);
        assert_eq!(header(&r, "cache-control"), "public, max-age=10");
        assert!(matches!(r.body(), Body::Text(s) if s == "bad w: expected an integer 1..8192"));

        let r = handle(&t, request("GET", "/img/acme/v9/p.png", &[])).await;
        assert_eq!(r.status(), 404);
    }

    #[test]
    fn the_render_gate_is_sized_from_the_memory_and_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = admission_from_env(env(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")]))
            .expect("config");
        assert_eq!((c.max_renders, c.budget_bytes), (1, 1769 * MIB * 70 / 100));
        let c = admission_from_env(env(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769"),
            ("PIXELFRONT_RENDER_SLOTS", "3"),
            ("PIXELFRONT_RENDER_MEMORY_MB", "512"),
            ("PIXELFRONT_RENDER_WAIT_MS", "250"),
        ]))
        .expect("config");
        assert_eq!(
            (c.max_renders, c.budget_bytes, c.wait),
            (3, 512 * MIB, Duration::from_millis(250))
        );
        assert!(admission_from_env(env(&[("PIXELFRONT_RENDER_MEMORY_MB", "lots")])).is_err());
    }

    #[tokio::test]
    async fn an_overloaded_renderer_answers_503_with_retry_after() {
        let mut t = with_original(png(300, 200, false)).await;
        t.admission = Admission::new(AdmissionConfig {
            max_renders: 1,
            wait: Duration::from_millis(50),
            ..AdmissionConfig::default()
        });
        let busy = t.admission.slot().await.expect("slot");
        let r = handle(&t, request("GET", "/img/acme/v1/p.png?w=100&fmt=webp", &[])).await;
        assert_eq!(r.status(), 503);
        assert_eq!(header(&r, "retry-after"), "2");
        assert_eq!(header(&r, "cache-control"), "public, max-age=2");
        drop(busy);
        let r = handle(&t, request("GET", "/img/acme/v1/p.png?w=100&fmt=webp", &[])).await;
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn each_request_records_its_miss_render_and_server_errors() {
        let mut t = with_original(png(300, 200, false)).await;
        let url = "/img/acme/v1/p.png?w=100&fmt=webp";
        let r = records(&t, request("GET", url, &[])).await;
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0]["Function"], "transform");
        assert_eq!(
            (&r[0]["OnDemandMisses"], &r[0]["Renders"]),
            (&1.0.into(), &1.0.into())
        );
        assert!(r[0]["RenderTime"].is_number() && r[0]["BytesWritten"].as_f64() > Some(0.0));
        // Found stored: a miss, no render.
        let r = records(&t, request("GET", url, &[])).await;
        assert!(r.len() == 1 && r[0].get("Renders").is_none(), "{r:?}");
        // The viewer's mistakes are not errors.
        let r = records(&t, request("GET", "/img/acme/v9/p.png", &[])).await;
        assert!(r.len() == 1 && r[0].get("Errors").is_none(), "{r:?}");
        // A shed render is: Errors by ErrorType.
        t.admission = Admission::new(AdmissionConfig {
            max_renders: 1,
            wait: Duration::from_millis(10),
            ..AdmissionConfig::default()
        });
        let _busy = t.admission.slot().await.expect("slot");
        let r = records(&t, request("GET", "/img/acme/v1/p.png?w=200&fmt=webp", &[])).await;
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (&r[1]["ErrorType"], &r[1]["Errors"]),
            (&"Overloaded".into(), &1.0.into())
        );
    }

    #[tokio::test]
    async fn the_forwarded_viewer_request_is_what_is_checked() {
        let t = with_original(png(300, 200, false)).await;
        let fwd = [(
            FORWARDED_REQUEST_HEADER,
            "/img/acme/v1/p.png?w=300&fmt=png&x=1",
        )];
        let r = handle(&t, request("GET", "/acme/v1/p.png/w320.png", &fwd)).await;
        assert_eq!(r.status(), 200);
        let r = handle(&t, request("GET", "/acme/v1/p.png/w640.png", &fwd)).await;
        assert_eq!(r.status(), 400);
        assert!(matches!(r.body(), Body::Text(s) if s == "request does not match its derivative"));
    }

    #[tokio::test]
    async fn a_render_over_the_payload_limit_is_stored_and_fetched_again() {
        // Noise does not compress: 1600x1200 RGB as PNG is about 5.8 MB.
        let t = with_original(png(1600, 1200, true)).await;
        let fwd = [(
            FORWARDED_REQUEST_HEADER,
            "/img/acme/v1/p.png?fmt=png&w=1600",
        )];
        let r = handle(&t, request("GET", "/acme/v1/p.png/w1600.png", &fwd)).await;
        assert_eq!(r.status(), 307, "{:?}", r.body());
        assert_eq!(header(&r, "location"), "/img/acme/v1/p.png?fmt=png&w=1600");
        assert_eq!(header(&r, "cache-control"), "no-store");
        let stored = t.derived.object("acme/v1/p.png/w1600.png").expect("stored");
        assert!(
            stored.bytes.len() > MAX_INLINE_BYTES,
            "{}",
            stored.bytes.len()
        );
    }
}
