//! [`change`] against in-memory stores that check, after every single write, that the
//! transformer's table admits at least what the edge admits, for the tenant changed and for a
//! tenant that has no entry of its own (it follows the default entry).

use super::*;
use crate::sign::OnDemand;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct Stores {
    table: Mutex<BTreeMap<String, (TenantPolicy, u64)>>,
    edge: Mutex<BTreeMap<String, TenantPolicy>>,
    log: Mutex<Vec<String>>,
    /// Bumps the table's revision of this key before the next table write (a concurrent writer).
    race: Mutex<Option<String>>,
}

/// `outer` admits at least what `inner` admits (structurally; `None` admits nothing).
fn covers(outer: Option<&TenantPolicy>, inner: Option<&TenantPolicy>) -> bool {
    match (outer, inner) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(i)) => loosest(Some(o), Some(i)).ok().flatten().as_ref() == Some(o),
    }
}

impl Stores {
    fn table_eff(&self, tenant: &str) -> Option<TenantPolicy> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        effective(
            t.get(tenant).map(|e| e.0.clone()),
            t.get(DEFAULT_KEY).map(|e| e.0.clone()),
        )
    }
    fn edge_eff(&self, tenant: &str) -> Option<TenantPolicy> {
        let e = self.edge.lock().unwrap_or_else(|e| e.into_inner());
        effective(e.get(tenant).cloned(), e.get(DEFAULT_KEY).cloned())
    }
    fn check(&self, what: &str) {
        for tenant in ["acme", "nobody"] {
            assert!(
                covers(self.table_eff(tenant).as_ref(), self.edge_eff(tenant).as_ref()),
                "after {what}: the table refuses what the edge admits for {tenant}:\n table {:?}\n edge {:?}",
                self.table_eff(tenant),
                self.edge_eff(tenant)
            );
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what.to_string());
    }
    fn seed(&self, key: &str, p: TenantPolicy) {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.into(), (p.clone(), 1));
        self.edge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.into(), p);
    }
}

impl PolicyTable for Stores {
    async fn read(&self, key: &str) -> Result<Revision, SyncError> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        Ok(t.get(key)
            .map_or_else(Revision::default, |(p, rev)| Revision {
                policy: Some(p.clone()),
                rev: *rev,
            }))
    }
    async fn write(
        &self,
        key: &str,
        policy: Option<&TenantPolicy>,
        expected: u64,
    ) -> Result<u64, SyncError> {
        {
            let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
            if self
                .race
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .as_deref()
                == Some(key)
            {
                if let Some(e) = t.get_mut(key) {
                    e.1 += 1;
                }
            }
            let rev = t.get(key).map_or(0, |e| e.1);
            if rev != expected {
                return Err(SyncError::Conflict(format!(
                    "{key} at {rev}, expected {expected}"
                )));
            }
            match policy {
                Some(p) => {
                    t.insert(key.into(), (p.clone(), rev + 1));
                }
                None => {
                    t.remove(key);
                }
            }
        }
        self.check(&format!("table {key}"));
        Ok(expected + 1)
    }
    async fn entries(&self) -> Result<BTreeMap<String, TenantPolicy>, SyncError> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        Ok(t.iter().map(|(k, (p, _))| (k.clone(), p.clone())).collect())
    }
}

impl EdgePolicies for Stores {
    async fn write(&self, key: &str, policy: Option<&TenantPolicy>) -> Result<(), SyncError> {
        {
            let mut e = self.edge.lock().unwrap_or_else(|e| e.into_inner());
            match policy {
                Some(p) => e.insert(key.into(), p.clone()),
                None => e.remove(key),
            };
        }
        self.check(&format!("edge {key}"));
        Ok(())
    }
}

fn keys(p: &TenantPolicy, kids: &[&str]) -> TenantPolicy {
    let mut p = p.clone();
    p.keys = kids
        .iter()
        .map(|k| ((*k).into(), format!("s-{k}")))
        .collect();
    p
}

fn run<T>(fut: impl std::future::Future<Output = T>) -> T {
    futures_executor(fut)
}

/// A minimal executor: the in-memory stores never pend.
fn futures_executor<T>(fut: impl std::future::Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn signer() -> TenantPolicy {
    keys(
        &TenantPolicy {
            sign: true,
            ..TenantPolicy::default()
        },
        &["old"],
    )
}

#[test]
fn every_verb_keeps_the_table_at_least_as_open_as_the_edge() {
    let open = TenantPolicy::default();
    let closed_default = TenantPolicy {
        sign: true,
        ..TenantPolicy::default()
    };
    let cases: Vec<(&str, Option<TenantPolicy>, Option<TenantPolicy>, Edit)> = vec![
        ("add", None, Some(open.clone()), Edit::Add),
        (
            "add under a closed default",
            None,
            Some(closed_default.clone()),
            Edit::Add,
        ),
        (
            "key add",
            Some(signer()),
            Some(open.clone()),
            Edit::KeyAdd("new".into(), "s".into()),
        ),
        (
            "key retire",
            Some(keys(&signer(), &["old", "new"])),
            Some(open.clone()),
            Edit::KeyRemove("old".into()),
        ),
        (
            "sign on",
            Some(keys(&open, &["k"])),
            Some(open.clone()),
            Edit::Sign(true),
        ),
        (
            "sign off",
            Some(signer()),
            Some(open.clone()),
            Edit::Sign(false),
        ),
        (
            "referer narrowed",
            Some(open.clone()),
            Some(open.clone()),
            Edit::RefererAdd("shop.example.com".into()),
        ),
        (
            "on-demand narrowed",
            Some(open.clone()),
            Some(open.clone()),
            Edit::OnDemand(OnDemand::Catalogue),
        ),
        (
            "remove a signer",
            Some(signer()),
            Some(open.clone()),
            Edit::Remove,
        ),
        (
            "remove under a closed default",
            Some(open.clone()),
            Some(closed_default.clone()),
            Edit::Remove,
        ),
        (
            "replace all keys",
            Some(signer()),
            Some(open.clone()),
            Edit::Set(keys(&signer(), &["k2027"])),
        ),
    ];
    for (name, own, default, edit) in cases {
        let s = Stores::default();
        if let Some(d) = default {
            s.seed(DEFAULT_KEY, d);
        }
        if let Some(o) = own {
            s.seed("acme", o);
        }
        let done = run(change(&s, &s, "acme", &edit));
        let done = done.unwrap_or_else(|e| panic!("{name}: {e}"));
        let table = s
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get("acme")
            .map(|e| e.0.clone());
        let edge = s
            .edge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get("acme")
            .cloned();
        assert_eq!(table, done.after, "{name}: table ends at the new policy");
        assert_eq!(edge, done.after, "{name}: edge ends at the new policy");
        // A second run has nothing left to write but the edge's value.
        let again = run(change(
            &s,
            &s,
            "acme",
            &Edit::Set(done.after.clone().unwrap_or_default()),
        ));
        if done.after.is_some() {
            assert_eq!(
                again.map(|c| c.writes).ok(),
                Some(vec!["edge"]),
                "{name}: idempotent"
            );
        }
    }
}

#[test]
fn defaults_load_table_first_and_change_safely() {
    let s = Stores::default();
    let done = run(change(
        &s,
        &s,
        DEFAULT_KEY,
        &Edit::Set(TenantPolicy::default()),
    ));
    assert_eq!(done.map(|c| c.writes).ok(), Some(vec!["table", "edge"]));
    let closed = TenantPolicy {
        sign: true,
        ..TenantPolicy::default()
    };
    let done = run(change(&s, &s, DEFAULT_KEY, &Edit::Set(closed)));
    assert_eq!(done.map(|c| c.writes).ok(), Some(vec!["edge", "table"]));
}

#[test]
fn naive_order_is_caught() {
    // The check must be able to fail: the naive orders (table first for a retirement, edge first
    // for a new key) trip it.
    let s = Stores::default();
    s.seed("acme", keys(&signer(), &["old", "new"]));
    let retired = keys(&signer(), &["new"]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(PolicyTable::write(&s, "acme", Some(&retired), 1))
    }));
    assert!(
        caught.is_err(),
        "retiring a key in the table while the edge has it must trip the check"
    );
    let s = Stores::default();
    s.seed("acme", keys(&signer(), &["old"]));
    let added = keys(&signer(), &["old", "new"]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(EdgePolicies::write(&s, "acme", Some(&added)))
    }));
    assert!(
        caught.is_err(),
        "a key at the edge before the table must trip the check"
    );
}

#[test]
fn a_concurrent_writer_gets_a_conflict_not_a_lost_update() {
    let s = Stores::default();
    s.seed("acme", keys(&signer(), &["old", "new"]));
    *s.race.lock().unwrap_or_else(|e| e.into_inner()) = Some("acme".into());
    let done = run(change(&s, &s, "acme", &Edit::KeyRemove("old".into())));
    assert!(matches!(done, Err(SyncError::Conflict(_))), "{done:?}");
}
