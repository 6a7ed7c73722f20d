//! What building an S3 client around a tenant's credentials costs (docs/aws-deploy.md,
//! "Tenant-scoped reads of the originals"), and whether the function's S3 configuration carries
//! a shared HTTP client. It does not, so each client has its own connection pool: that is why
//! `ScopedS3Objects` keeps one client per tenant instead of building one per miss.
//!
//! Run: `cargo run --release -p pixelfront-shared --features sts --example tenant_scope_cost`

use aws_credential_types::Credentials;
use std::time::Instant;

/// Client builds per measurement.
const ROUNDS: u32 = 20_000;

#[tokio::main]
async fn main() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "example",
            None,
            None,
            "cost",
        ))
        .load()
        .await;
    let config = pixelfront_shared::store::s3::config_in(&sdk, None, None).build();
    let scoped = Credentials::new("ASIAEXAMPLE", "example", Some("token".into()), None, "cost");
    let shared_pool = config.http_client().is_some();
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let conf = config
                .to_builder()
                .credentials_provider(scoped.clone())
                .build();
            std::hint::black_box(aws_sdk_s3::Client::from_conf(conf));
        }
        let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        println!("one scoped S3 client: {per:.1} µs (HTTP client shared: {shared_pool})");
    }
}
