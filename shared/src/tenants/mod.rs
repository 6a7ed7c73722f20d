//! Tenant policies as an operator changes them (docs/signing.md#tenant-policies): the one place
//! that says what a policy entry means when it is missing, what each `pixelfront tenant` verb
//! does to a policy ([`Edit`]), and how far a policy admits relative to another
//! ([`loosest`]). [`sync`] writes a change to the two stores of the AWS stack (the edge's
//! KeyValueStore and the transformer's table) in the order that never lets the transformer
//! refuse what the edge admitted; the local stack has one store and applies an edit directly.
//!
//! Both stores hold one entry per tenant under the tenant id, plus [`DEFAULT_KEY`], the policy
//! of every tenant without an entry of its own. A store with neither (never loaded) admits
//! nothing: the edge and the transformer answer 503 `tenant policies not loaded`, so a fresh
//! deploy fails closed instead of serving a signing tenant unsigned.

pub mod sync;

use crate::normalize::valid_tenant;
use crate::sign::{random_token, valid_kid, OnDemand, RandomError, TenantPolicy};
use std::num::NonZeroU32;

/// Key of the default policy (tenants without an entry of their own). Tenant ids match
/// `[a-z0-9][a-z0-9-]{0,62}`, so it never collides with a tenant.
pub const DEFAULT_KEY: &str = "#default";

/// Largest policy, bytes of JSON: the KeyValueStore's value limit (1 KB).
pub const MAX_POLICY_BYTES: usize = 1024;

/// The policy that applies to a tenant: its own entry, else the default entry; `None` when the
/// store holds neither (never loaded: refuse).
pub fn effective(own: Option<TenantPolicy>, default: Option<TenantPolicy>) -> Option<TenantPolicy> {
    own.or(default)
}

/// Why an edit was refused. The text is shown to the operator as is.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct EditError(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T, EditError> {
    Err(EditError(msg.into()))
}

/// A new signing secret: 256 bits of OS randomness as 64 hex digits (what `key-add` stores
/// when no secret is given).
pub fn new_signing_secret() -> Result<String, RandomError> {
    Ok(format!("{}{}", random_token()?, random_token()?))
}

/// One change to one policy entry: what each `pixelfront tenant` verb does, on either stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Create the entry with the defaults (no signing, any Referer); refused if it exists.
    Add,
    /// Delete the entry (the tenant falls back to [`DEFAULT_KEY`]).
    Remove,
    /// Require signed URLs or not; `true` needs a key.
    Sign(bool),
    /// Add a key (id, secret); refused if the id exists (a key's secret never changes: add a
    /// new id and retire the old one).
    KeyAdd(String, String),
    /// Retire a key: URLs signed with it get 403 `unknown key`.
    KeyRemove(String),
    /// Allow a Referer host (lower-cased).
    RefererAdd(String),
    /// Stop allowing a Referer host.
    RefererRemove(String),
    /// The on-demand render policy.
    OnDemand(OnDemand),
    /// Replace the entry with this policy (loading a tenants file).
    Set(TenantPolicy),
}

impl Edit {
    /// The entry after the edit, or why not. `None` = no entry. `key` names the entry in
    /// messages.
    pub fn apply(
        &self,
        key: &str,
        current: Option<&TenantPolicy>,
    ) -> Result<Option<TenantPolicy>, EditError> {
        check_key(key)?;
        let existing = || {
            current.cloned().ok_or_else(|| {
                EditError(format!("no tenant {key:?} (pixelfront tenant add {key})"))
            })
        };
        let next = match self {
            Edit::Add => {
                if current.is_some() {
                    return refuse(format!("tenant {key:?} exists"));
                }
                return Ok(Some(TenantPolicy::default()));
            }
            Edit::Remove => {
                existing()?;
                return Ok(None);
            }
            Edit::Sign(on) => {
                let mut p = existing()?;
                if *on && p.keys.is_empty() {
                    return refuse(format!(
                        "{key} has no key: pixelfront tenant key-add {key} <kid> first"
                    ));
                }
                p.sign = *on;
                p
            }
            Edit::KeyAdd(kid, secret) => {
                let mut p = existing()?;
                if !valid_kid(kid) {
                    return refuse("key id must be 1-64 characters of [A-Za-z0-9_-]");
                }
                if secret.is_empty() {
                    return refuse("secret must not be empty");
                }
                if p.keys.contains_key(kid) {
                    return refuse(format!("{key} already has key {kid:?}"));
                }
                p.keys.insert(kid.clone(), secret.clone());
                p
            }
            Edit::KeyRemove(kid) => {
                let mut p = existing()?;
                if p.keys.remove(kid).is_none() {
                    return refuse(format!("{key} has no key {kid:?}"));
                }
                if p.sign && p.keys.is_empty() {
                    return refuse(format!(
                        "{kid} is {key}'s last key and it signs: add another key or `sign {key} off` first"
                    ));
                }
                p
            }
            Edit::RefererAdd(host) => {
                let mut p = existing()?;
                let host = host.to_ascii_lowercase();
                if !valid_host(&host) {
                    return refuse(format!(
                        "bad host {host:?}: a host name such as shop.example.com or *.example.com, no scheme or path"
                    ));
                }
                if !p.referers.contains(&host) {
                    p.referers.push(host);
                }
                p
            }
            Edit::RefererRemove(host) => {
                let mut p = existing()?;
                let before = p.referers.len();
                p.referers.retain(|h| !h.eq_ignore_ascii_case(host));
                if p.referers.len() == before {
                    return refuse(format!("{key} does not allow {host:?}"));
                }
                p
            }
            Edit::OnDemand(policy) => {
                let mut p = existing()?;
                p.on_demand = *policy;
                p
            }
            Edit::Set(policy) => {
                check_policy(key, policy)?;
                policy.clone()
            }
        };
        check_policy(key, &next)?;
        Ok(Some(next))
    }
}

/// Checks a whole policy as the stores would hold it: key ids, non-empty secrets, a key when
/// signing, hosts, and at most [`MAX_POLICY_BYTES`] of JSON.
pub fn check_policy(key: &str, p: &TenantPolicy) -> Result<(), EditError> {
    check_key(key)?;
    if let Some((kid, _)) = p.keys.iter().find(|(k, s)| !valid_kid(k) || s.is_empty()) {
        return refuse(format!(
            "{key}: key {kid:?} needs an id of 1-64 [A-Za-z0-9_-] and a non-empty secret"
        ));
    }
    if p.sign && p.keys.is_empty() && key != DEFAULT_KEY {
        return refuse(format!("{key} signs but has no key"));
    }
    if let Some(h) = p.referers.iter().find(|h| !valid_host(h)) {
        return refuse(format!("{key}: bad referer host {h:?}"));
    }
    let bytes = serde_json::to_string(p).map_or(usize::MAX, |j| j.len());
    if bytes > MAX_POLICY_BYTES {
        return refuse(format!(
            "{key}: policy is {bytes} bytes of JSON, over the KeyValueStore's {MAX_POLICY_BYTES}"
        ));
    }
    Ok(())
}

/// A tenant id, or [`DEFAULT_KEY`].
fn check_key(key: &str) -> Result<(), EditError> {
    if key == DEFAULT_KEY || valid_tenant(key) {
        Ok(())
    } else {
        refuse(format!(
            "bad tenant {key:?}: expected [a-z0-9][a-z0-9-]{{0,62}}"
        ))
    }
}

/// A Referer host as policies hold it: `shop.example.com` or `*.example.com`, lower case,
/// no scheme, port or path.
pub fn valid_host(host: &str) -> bool {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    !bare.is_empty()
        && bare.len() <= 253
        && bare
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && !bare.starts_with('.')
        && !bare.ends_with('.')
}

/// `any`, `catalogue` or a positive number of renders per minute.
pub fn parse_on_demand(s: &str) -> Result<OnDemand, EditError> {
    match s {
        "any" => Ok(OnDemand::Any),
        "catalogue" => Ok(OnDemand::Catalogue),
        n => n
            .parse::<NonZeroU32>()
            .map(OnDemand::RatePerMinute)
            .map_err(|_| {
                EditError(format!(
                    "bad on-demand policy {n:?}: any, catalogue or renders per minute (1 or more)"
                ))
            }),
    }
}

/// A policy that admits every request either `a` or `b` admits (`None` admits nothing): signing
/// only if both sign, every key of both, any Referer if either allows any, else both lists, the
/// freer on-demand policy. Refused when one key id has two secrets (no policy admits both).
pub fn loosest(
    a: Option<&TenantPolicy>,
    b: Option<&TenantPolicy>,
) -> Result<Option<TenantPolicy>, EditError> {
    let (a, b) = match (a, b) {
        (None, None) => return Ok(None),
        (Some(x), None) | (None, Some(x)) => return Ok(Some(x.clone())),
        (Some(a), Some(b)) => (a, b),
    };
    let mut keys = a.keys.clone();
    for (kid, secret) in &b.keys {
        if keys.get(kid).is_some_and(|s| s != secret) {
            return refuse(format!(
                "key {kid:?} would change its secret: add the new secret under a new key id, then retire {kid:?}"
            ));
        }
        keys.insert(kid.clone(), secret.clone());
    }
    let referers = if a.referers.is_empty() || b.referers.is_empty() {
        Vec::new()
    } else {
        let mut r = a.referers.clone();
        r.extend(
            b.referers
                .iter()
                .filter(|h| !a.referers.contains(h))
                .cloned(),
        );
        r
    };
    let on_demand = match (a.on_demand, b.on_demand) {
        (OnDemand::Any, _) | (_, OnDemand::Any) => OnDemand::Any,
        (OnDemand::RatePerMinute(x), OnDemand::RatePerMinute(y)) => {
            OnDemand::RatePerMinute(x.max(y))
        }
        (OnDemand::RatePerMinute(x), OnDemand::Catalogue)
        | (OnDemand::Catalogue, OnDemand::RatePerMinute(x)) => OnDemand::RatePerMinute(x),
        (OnDemand::Catalogue, OnDemand::Catalogue) => OnDemand::Catalogue,
    };
    Ok(Some(TenantPolicy {
        sign: a.sign && b.sign,
        keys,
        referers,
        on_demand,
    }))
}

#[cfg(test)]
mod tests;
