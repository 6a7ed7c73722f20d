//! `pixelfront tenant …`: the local stack's tenants file (`{data}/tenants.json`): signing keys,
//! whether URLs must be signed, allowed Referer hosts, the on-demand render policy. The running `pixelfront dev` picks up
//! every change without a restart. The file has the same shape as the tenants file the AWS
//! load files are generated from (`edge/gen-tenants.mjs`).

use crate::Failure;
use pixelfront_local::tenants;
use pixelfront_shared::normalize::valid_tenant;
use pixelfront_shared::sign::{valid_kid, OnDemand, TenantPolicy};
use std::path::PathBuf;

/// Arguments of `pixelfront tenant`.
#[derive(clap::Args, Debug)]
pub struct TenantArgs {
    /// Data directory of the local stack.
    #[arg(long, default_value = ".pixelfront", global = true)]
    data: PathBuf,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand, Debug)]
enum Verb {
    /// List the tenants (keys shown by id only).
    List,
    /// Print one tenant's policy as JSON, secrets included.
    Show { tenant: String },
    /// Create a tenant (defaults: no signing, any Referer).
    Add { tenant: String },
    /// Delete a tenant's entry (it falls back to the defaults).
    Remove { tenant: String },
    /// Require signed URLs (`on`) or not (`off`).
    Sign {
        tenant: String,
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Add a signing key; the secret is generated and printed when not given.
    KeyAdd {
        tenant: String,
        kid: String,
        #[arg(long)]
        secret: Option<String>,
    },
    /// Retire a signing key: URLs signed with it get 403 `unknown key`.
    KeyRemove { tenant: String, kid: String },
    /// Allow a Referer host (`shop.example.com` or `*.example.com`).
    RefererAdd { tenant: String, host: String },
    /// Stop allowing a Referer host.
    RefererRemove { tenant: String, host: String },
    /// Which derivatives may be rendered on demand (docs/limits.md): `any`, `catalogue` (the
    /// standard variants only) or a number, renders per minute.
    OnDemand { tenant: String, policy: String },
}

/// `any`, `catalogue` or a positive number of renders per minute.
fn parse_on_demand(s: &str) -> Result<OnDemand, Failure> {
    match s {
        "any" => Ok(OnDemand::Any),
        "catalogue" => Ok(OnDemand::Catalogue),
        n => n
            .parse::<std::num::NonZeroU32>()
            .map(OnDemand::RatePerMinute)
            .map_err(|_| {
                Failure::rejected(format!(
                    "bad on-demand policy {n:?}: any, catalogue or renders per minute (1 or more)"
                ))
            }),
    }
}

fn valid_host(host: &str) -> bool {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    !bare.is_empty()
        && bare.len() <= 253
        && bare
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        && !bare.starts_with('.')
        && !bare.ends_with('.')
}

fn checked_tenant(t: &str) -> Result<&str, Failure> {
    if valid_tenant(t) {
        Ok(t)
    } else {
        Err(Failure::rejected(format!(
            "bad tenant {t:?}: expected [a-z0-9][a-z0-9-]{{0,62}}"
        )))
    }
}

/// Runs one `tenant` verb.
pub fn run(args: TenantArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.data)
        .map_err(|e| Failure::io(format!("{}: {e}", args.data.display())))?;
    let path = args.data.join("tenants.json");
    // Read, changed and replaced under the tenants file's lock (the running server may add a
    // tenant at the same moment); written 0600 through a unique temporary file.
    let mut message = None;
    tenants::update(&path, |map| {
        message = apply(args.verb, map)?;
        Ok::<_, Failure>(message.is_some())
    })?;
    if let Some(message) = message {
        eprintln!("pixelfront tenant: {message} ({})", path.display());
    }
    Ok(())
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::io(message)
    }
}

/// Applies `verb` to `map`: `Some(what changed)` when it must be written back.
fn apply(verb: Verb, map: &mut tenants::TenantMap) -> Result<Option<String>, Failure> {
    let entry = |map: &mut tenants::TenantMap, t: &str| -> Result<TenantPolicy, Failure> {
        map.get(checked_tenant(t)?).cloned().ok_or_else(|| {
            Failure::rejected(format!("no tenant {t:?} (pixelfront tenant add {t})"))
        })
    };
    let changed = match verb {
        Verb::List => {
            for (t, p) in map.iter() {
                let keys: Vec<&str> = p.keys.keys().map(String::as_str).collect();
                println!(
                    "{t}\tsign={}\tkeys=[{}]\treferers=[{}]",
                    if p.sign { "on" } else { "off" },
                    keys.join(","),
                    p.referers.join(",")
                );
            }
            None
        }
        Verb::Show { tenant } => {
            let p = entry(map, &tenant)?;
            let json = serde_json::to_string_pretty(&p).map_err(|e| Failure::io(e.to_string()))?;
            println!("{json}");
            None
        }
        Verb::Add { tenant } => {
            let t = checked_tenant(&tenant)?;
            if map.contains_key(t) {
                return Err(Failure::rejected(format!("tenant {t:?} exists")));
            }
            map.insert(t.to_string(), TenantPolicy::default());
            Some(format!("added {t}"))
        }
        Verb::Remove { tenant } => {
            entry(map, &tenant)?;
            map.remove(&tenant);
            Some(format!("removed {tenant}"))
        }
        Verb::Sign { tenant, mode } => {
            let mut p = entry(map, &tenant)?;
            p.sign = mode == "on";
            if p.sign && p.keys.is_empty() {
                return Err(Failure::rejected(format!(
                    "{tenant} has no key: pixelfront tenant key-add {tenant} <kid> first"
                )));
            }
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: signing {mode}"))
        }
        Verb::KeyAdd {
            tenant,
            kid,
            secret,
        } => {
            let mut p = entry(map, &tenant)?;
            if !valid_kid(&kid) {
                return Err(Failure::rejected(
                    "key id must be 1-64 characters of [A-Za-z0-9_-]",
                ));
            }
            if p.keys.contains_key(&kid) {
                return Err(Failure::rejected(format!(
                    "{tenant} already has key {kid:?}"
                )));
            }
            let secret = match secret {
                Some(s) if s.is_empty() => {
                    return Err(Failure::rejected("secret must not be empty"))
                }
                Some(s) => s,
                None => {
                    let token = || pixelfront_shared::sign::random_token().map_err(Failure::io);
                    let s = format!("{}{}", token()?, token()?);
                    println!("{s}");
                    s
                }
            };
            p.keys.insert(kid.clone(), secret);
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: key {kid} added"))
        }
        Verb::KeyRemove { tenant, kid } => {
            let mut p = entry(map, &tenant)?;
            if p.keys.remove(&kid).is_none() {
                return Err(Failure::rejected(format!("{tenant} has no key {kid:?}")));
            }
            if p.sign && p.keys.is_empty() {
                return Err(Failure::rejected(format!(
                    "{kid} is {tenant}'s last key and it signs: add another key or `sign {tenant} off` first"
                )));
            }
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: key {kid} retired"))
        }
        Verb::RefererAdd { tenant, host } => {
            let mut p = entry(map, &tenant)?;
            let host = host.to_ascii_lowercase();
            if !valid_host(&host) {
                return Err(Failure::rejected(format!(
                    "bad host {host:?}: a host name such as shop.example.com or *.example.com, no scheme or path"
                )));
            }
            if !p.referers.contains(&host) {
                p.referers.push(host.clone());
            }
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: referer {host} allowed"))
        }
        Verb::RefererRemove { tenant, host } => {
            let mut p = entry(map, &tenant)?;
            let before = p.referers.len();
            p.referers.retain(|h| !h.eq_ignore_ascii_case(&host));
            if p.referers.len() == before {
                return Err(Failure::rejected(format!(
                    "{tenant} does not allow {host:?}"
                )));
            }
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: referer {host} removed"))
        }
        Verb::OnDemand { tenant, policy } => {
            let mut p = entry(map, &tenant)?;
            p.on_demand = parse_on_demand(&policy)?;
            map.insert(tenant.clone(), p);
            Some(format!("{tenant}: on-demand {policy}"))
        }
    };
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referer_hosts() {
        for (h, ok) in [
            ("shop.example.com", true),
            ("*.example.com", true),
            ("localhost", true),
            ("https://x.com", false),
            ("x.com/path", false),
            ("*.", false),
            ("", false),
            (".x.com", false),
        ] {
            assert_eq!(valid_host(h), ok, "{h}");
        }
    }

    #[test]
    fn on_demand_policies() {
        assert_eq!(parse_on_demand("any").ok(), Some(OnDemand::Any));
        assert_eq!(parse_on_demand("catalogue").ok(), Some(OnDemand::Catalogue));
        let n = std::num::NonZeroU32::new(120).expect("120");
        assert_eq!(
            parse_on_demand("120").ok(),
            Some(OnDemand::RatePerMinute(n))
        );
        for bad in ["0", "-1", "fast", ""] {
            assert!(parse_on_demand(bad).is_err(), "{bad}");
        }
    }
}
