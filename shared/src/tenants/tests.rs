//! Table tests of the edits, the policy checks and [`loosest`].

use super::*;
use std::collections::BTreeMap;

fn policy(sign: bool, keys: &[&str], referers: &[&str]) -> TenantPolicy {
    TenantPolicy {
        sign,
        keys: keys
            .iter()
            .map(|k| ((*k).to_string(), format!("secret-{k}")))
            .collect::<BTreeMap<_, _>>(),
        referers: referers.iter().map(|h| (*h).to_string()).collect(),
        on_demand: OnDemand::Any,
    }
}

#[test]
fn edits_table() {
    let signed = policy(true, &["a", "b"], &[]);
    let one_key = policy(true, &["a"], &[]);
    let ok = |e: Edit, cur: Option<&TenantPolicy>| e.apply("acme", cur);
    assert_eq!(ok(Edit::Add, None), Ok(Some(TenantPolicy::default())));
    assert!(ok(Edit::Add, Some(&signed)).is_err());
    assert_eq!(ok(Edit::Remove, Some(&signed)), Ok(None));
    assert!(ok(Edit::Remove, None).is_err());
    assert!(ok(Edit::Sign(true), Some(&TenantPolicy::default())).is_err());
    assert_eq!(
        ok(Edit::KeyRemove("b".into()), Some(&signed)),
        Ok(Some(one_key.clone()))
    );
    assert!(
        ok(Edit::KeyRemove("a".into()), Some(&one_key)).is_err(),
        "last key of a signer"
    );
    assert!(ok(Edit::KeyRemove("zz".into()), Some(&signed)).is_err());
    assert!(
        ok(Edit::KeyAdd("a".into(), "new".into()), Some(&signed)).is_err(),
        "same id"
    );
    assert!(ok(Edit::KeyAdd("bad kid".into(), "s".into()), Some(&signed)).is_err());
    assert!(ok(Edit::KeyAdd("c".into(), String::new()), Some(&signed)).is_err());
    let with_ref = ok(Edit::RefererAdd("Shop.Example.com".into()), Some(&signed));
    assert_eq!(
        with_ref.clone().map(|p| p.map(|p| p.referers)),
        Ok(Some(vec!["shop.example.com".to_string()]))
    );
    assert!(ok(Edit::RefererAdd("https://x.com".into()), Some(&signed)).is_err());
    assert!(ok(Edit::RefererRemove("other.com".into()), Some(&signed)).is_err());
    assert!(
        ok(Edit::KeyAdd("c".into(), "s".into()), None).is_err(),
        "no tenant"
    );
}

#[test]
fn policy_checks() {
    assert!(check_policy("acme", &policy(true, &["a"], &["*.example.com"])).is_ok());
    assert!(check_policy("Acme", &TenantPolicy::default()).is_err());
    assert!(check_policy("acme", &policy(true, &[], &[])).is_err());
    assert!(
        check_policy(DEFAULT_KEY, &policy(true, &[], &[])).is_ok(),
        "closed default"
    );
    assert!(check_policy("acme", &policy(false, &[], &["a.com/x"])).is_err());
    let big = TenantPolicy {
        keys: (0..20).map(|i| (format!("k{i}"), "x".repeat(60))).collect(),
        ..TenantPolicy::default()
    };
    assert!(check_policy("acme", &big).is_err(), "over 1 KB");
}

#[test]
fn hosts_and_on_demand() {
    for (h, ok) in [
        ("shop.example.com", true),
        ("*.example.com", true),
        ("localhost", true),
        ("Shop.example.com", false),
        ("https://x.com", false),
        ("x.com/path", false),
        ("*.", false),
        ("", false),
        (".x.com", false),
    ] {
        assert_eq!(valid_host(h), ok, "{h}");
    }
    assert_eq!(parse_on_demand("any"), Ok(OnDemand::Any));
    assert_eq!(parse_on_demand("catalogue"), Ok(OnDemand::Catalogue));
    let n = NonZeroU32::new(120).map(OnDemand::RatePerMinute);
    assert_eq!(parse_on_demand("120").ok(), n);
    for bad in ["0", "-1", "fast", ""] {
        assert!(parse_on_demand(bad).is_err(), "{bad}");
    }
}

#[test]
fn loosest_table() {
    let a = policy(true, &["a"], &["x.com"]);
    let b = policy(false, &["b"], &["y.com"]);
    let open = policy(false, &[], &[]);
    let l = loosest(Some(&a), Some(&b)).ok().flatten();
    assert_eq!(l, Some(policy(false, &["a", "b"], &["x.com", "y.com"])));
    assert_eq!(
        loosest(Some(&a), Some(&open))
            .ok()
            .flatten()
            .map(|p| p.referers),
        Some(vec![]),
        "any Referer wins"
    );
    assert_eq!(loosest(None, Some(&a)), Ok(Some(a.clone())));
    assert_eq!(loosest(None, None), Ok(None));
    let mut other_secret = a.clone();
    other_secret.keys.insert("a".into(), "changed".into());
    assert!(loosest(Some(&a), Some(&other_secret)).is_err());
    let rate = |n| NonZeroU32::new(n).map_or(OnDemand::Any, OnDemand::RatePerMinute);
    for (x, y, want) in [
        (
            OnDemand::Catalogue,
            OnDemand::Catalogue,
            OnDemand::Catalogue,
        ),
        (OnDemand::Catalogue, rate(5), rate(5)),
        (rate(5), rate(9), rate(9)),
        (rate(5), OnDemand::Any, OnDemand::Any),
    ] {
        let p = |o| TenantPolicy {
            on_demand: o,
            ..TenantPolicy::default()
        };
        let got = loosest(Some(&p(x)), Some(&p(y))).ok().flatten();
        assert_eq!(got.map(|p| p.on_demand), Some(want), "{x:?} {y:?}");
    }
}
