//! `pixelfront tenant …`: tenant policies (docs/signing.md): signing keys, whether URLs must be
//! signed, allowed Referer hosts, the on-demand render policy, and `#default`, the policy of
//! tenants without an entry. Every verb is one [`Edit`] from the shared crate, applied to
//! - the local stack's tenants file (`{data}/tenants.json`, the default; the running
//!   `pixelfront dev` picks up every change without a restart), or
//! - with `--aws`, the AWS stack's two stores, the edge's CloudFront KeyValueStore and the
//!   transformer's tenant policy table, in the order that never lets the transformer refuse
//!   what the edge admitted ([`pixelfront_shared::tenants::sync`], [`aws`]).

mod aws;
mod local;

use crate::Failure;
use pixelfront_shared::sign::TenantPolicy;
use pixelfront_shared::tenants::{new_signing_secret, parse_on_demand, Edit, DEFAULT_KEY};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Arguments of `pixelfront tenant`.
#[derive(clap::Args, Debug)]
pub struct TenantArgs {
    /// Data directory of the local stack.
    #[arg(long, default_value = ".pixelfront", global = true)]
    data: PathBuf,
    #[command(flatten)]
    aws: aws::AwsTarget,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand, Debug)]
enum Verb {
    /// List the tenants (keys shown by id only).
    List,
    /// Print one tenant's policy as JSON, secrets included (`#default`: the default policy).
    Show { tenant: String },
    /// Create a tenant (no signing, any Referer).
    Add { tenant: String },
    /// Delete a tenant's entry (it falls back to `#default`).
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
    /// Write the default policy (`#default`), the one tenants without an entry get. Until it
    /// exists, the AWS stack answers every request 503 `tenant policies not loaded`.
    Init {
        /// Tenants without an entry must sign (and, having no key, are refused).
        #[arg(long)]
        closed: bool,
    },
    /// Set every tenant of a tenants file (`{tenant: policy}`, `#default` included) to its
    /// policy there; tenants not in the file are left alone.
    Load { file: PathBuf },
    /// AWS only: compare the KeyValueStore with the table, entry by entry; exit 1 on a
    /// difference.
    Check,
    /// Make a tenant API key (docs/tenant-api.md): printed once on stdout, stored only as its
    /// SHA-256. The key acts for this tenant only.
    ApiKeyAdd { tenant: String },
    /// Remove a tenant API key (its id, the 16 hex digits after `pfk_`, or the whole key): it
    /// stops working at once.
    ApiKeyRemove { tenant: String, kid: String },
    /// List a tenant's API keys (ids and creation times).
    ApiKeys { tenant: String },
}

impl Verb {
    /// The entry a changing verb edits and the edit; `None` for the reading verbs.
    fn edit(&self) -> Result<Option<Change>, Failure> {
        let one = |t: &str, e: Edit| {
            Ok(Some(Change {
                key: t.to_string(),
                edit: e,
                generated_secret: None,
            }))
        };
        match self {
            Verb::List
            | Verb::Show { .. }
            | Verb::Load { .. }
            | Verb::Check
            | Verb::ApiKeyAdd { .. }
            | Verb::ApiKeyRemove { .. }
            | Verb::ApiKeys { .. } => Ok(None),
            Verb::Add { tenant } => one(tenant, Edit::Add),
            Verb::Remove { tenant } => one(tenant, Edit::Remove),
            Verb::Sign { tenant, mode } => one(tenant, Edit::Sign(mode == "on")),
            Verb::KeyAdd {
                tenant,
                kid,
                secret,
            } => {
                let (secret, generated) = match secret {
                    Some(s) => (s.clone(), None),
                    None => {
                        let s = new_signing_secret().map_err(Failure::io)?;
                        (s.clone(), Some(s))
                    }
                };
                Ok(Some(Change {
                    key: tenant.clone(),
                    edit: Edit::KeyAdd(kid.clone(), secret),
                    generated_secret: generated,
                }))
            }
            Verb::KeyRemove { tenant, kid } => one(tenant, Edit::KeyRemove(kid.clone())),
            Verb::RefererAdd { tenant, host } => one(tenant, Edit::RefererAdd(host.clone())),
            Verb::RefererRemove { tenant, host } => one(tenant, Edit::RefererRemove(host.clone())),
            Verb::OnDemand { tenant, policy } => {
                let p = parse_on_demand(policy).map_err(|e| Failure::rejected(e.0))?;
                one(tenant, Edit::OnDemand(p))
            }
            Verb::Init { closed } => one(
                DEFAULT_KEY,
                Edit::Set(TenantPolicy {
                    sign: *closed,
                    ..TenantPolicy::default()
                }),
            ),
        }
    }
}

/// One changing verb: the entry, the edit, and a generated secret to print once it is stored.
struct Change {
    key: String,
    edit: Edit,
    generated_secret: Option<String>,
}

impl Change {
    /// Prints the generated secret (stdout) and what was done (stderr), after success.
    fn report(&self, place: &str) {
        if let Some(s) = &self.generated_secret {
            println!("{s}");
        }
        eprintln!(
            "pixelfront tenant: {} ({place})",
            describe(&self.key, &self.edit)
        );
    }
}

/// What a verb did, for the one-line report on stderr.
fn describe(key: &str, edit: &Edit) -> String {
    match edit {
        Edit::Add => format!("added {key}"),
        Edit::Remove => format!("removed {key}"),
        Edit::Sign(on) => format!("{key}: signing {}", if *on { "on" } else { "off" }),
        Edit::KeyAdd(kid, _) => format!("{key}: key {kid} added"),
        Edit::KeyRemove(kid) => format!("{key}: key {kid} retired"),
        Edit::RefererAdd(h) => format!("{key}: referer {} allowed", h.to_ascii_lowercase()),
        Edit::RefererRemove(h) => format!("{key}: referer {h} removed"),
        Edit::OnDemand(_) => format!("{key}: on-demand policy set"),
        Edit::Set(_) => format!("{key}: policy set"),
    }
}

/// Reads a tenants file for `load`: `{tenant or #default: policy}`.
fn read_tenants_file(path: &PathBuf) -> Result<BTreeMap<String, TenantPolicy>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::rejected(format!(
            "{}: not a tenants file ({{\"tenant\": {{\"sign\": …, \"keys\": …, \"referers\": …}}}}): {e}",
            path.display()
        ))
    })
}

/// One line per entry for `list`.
fn list_line(key: &str, p: &TenantPolicy) -> String {
    let keys: Vec<&str> = p.keys.keys().map(String::as_str).collect();
    format!(
        "{key}\tsign={}\tkeys=[{}]\treferers=[{}]",
        if p.sign { "on" } else { "off" },
        keys.join(","),
        p.referers.join(",")
    )
}

/// Runs one `tenant` verb.
pub fn run(args: TenantArgs) -> Result<(), Failure> {
    let api_key_verb = matches!(
        args.verb,
        Verb::ApiKeyAdd { .. } | Verb::ApiKeyRemove { .. } | Verb::ApiKeys { .. }
    );
    if args.aws.enabled() && api_key_verb {
        return aws::run_api_keys(&args.aws, args.verb);
    }
    if args.aws.enabled() {
        aws::run(&args.aws, args.verb)
    } else {
        local::run(&args.data, args.verb)
    }
}
