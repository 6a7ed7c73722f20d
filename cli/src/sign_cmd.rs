//! `pixelfront sign` (make a signed URL) and `pixelfront verify` (check one against a tenant
//! policy, as the edge does). The scheme is in `shared/src/sign.rs` and the README.

use crate::Failure;
use pixelfront_shared::sign::{self, TenantPolicy};
use std::time::{SystemTime, UNIX_EPOCH};

/// Arguments of `pixelfront sign`.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// Key id, one of the tenant's active keys ([A-Za-z0-9_-], 1-64 characters).
    #[arg(long)]
    kid: String,
    /// The key's secret (prefer the environment variable: arguments show in `ps`).
    #[arg(long, env = "PIXELFRONT_SIGNING_SECRET", hide_env_values = true)]
    secret: String,
    /// Lifetime in seconds from now (default one hour); the expiry must be at most
    /// 9999999999 (the edge reads 10 digits).
    #[arg(long, default_value_t = 3600, conflicts_with = "expires_at")]
    expires_in: u64,
    /// Absolute expiry, Unix seconds: in the future, at most 9999999999.
    #[arg(long)]
    expires_at: Option<u64>,
    /// The request to sign, '/img/{tenant}/v{N}/{key}?{query}'.
    uri: String,
}

/// Arguments of `pixelfront verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The tenant's policy: a JSON file {"sign": bool, "keys": {kid: secret}, "referers": [..]}.
    #[arg(long)]
    policy: std::path::PathBuf,
    /// The Referer header, if the request has one.
    #[arg(long)]
    referer: Option<String>,
    /// Check as of this time, Unix seconds (default now).
    #[arg(long)]
    now: Option<u64>,
    /// The request, '/img/{tenant}/v{N}/{key}?{query}'.
    uri: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints the signed URI.
pub fn run_sign(args: SignArgs) -> Result<(), Failure> {
    // Only URLs the edge would accept are worth signing.
    pixelfront_shared::normalize_uri(&args.uri, None).map_err(|r| Failure {
        bare: true,
        ..Failure::rejected(r)
    })?;
    let now = unix_now();
    let exp = match args.expires_at {
        Some(t) => t,
        None => now.saturating_add(args.expires_in),
    };
    // Nor a URL the edge would refuse for its expiry alone.
    sign::check_expiry(exp, now).map_err(Failure::rejected)?;
    let (path, query) = args.uri.split_once('?').unwrap_or((&args.uri, ""));
    let uri =
        sign::sign_uri(path, query, &args.kid, &args.secret, exp).map_err(Failure::rejected)?;
    println!("{uri}");
    Ok(())
}

/// Prints `ok`, or exits 2 with the 403 reason the edge would give.
pub fn run_verify(args: VerifyArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.policy)
        .map_err(|e| Failure::io(format!("{}: {e}", args.policy.display())))?;
    let policy: TenantPolicy = serde_json::from_str(&text)
        .map_err(|e| Failure::rejected(format!("{}: {e}", args.policy.display())))?;
    let (path, query) = args.uri.split_once('?').unwrap_or((&args.uri, ""));
    let now = args.now.unwrap_or_else(unix_now);
    sign::check(path, query, args.referer.as_deref(), now, &policy).map_err(|r| Failure {
        bare: true,
        ..Failure::rejected(r)
    })?;
    println!("ok");
    Ok(())
}
