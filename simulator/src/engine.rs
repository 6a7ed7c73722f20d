//! The four cache-key designs, each replaying every request through its own cache tiers.
//!
//! Every request goes through the real `shared` normalizer once ([`pixelfront_shared::normalize`]);
//! each scenario then derives its cache key:
//!
//! | scenario | cache key | origin behind the cache |
//! |---|---|---|
//! | `naive` | path + the whole query string | a transformer that renders every request it gets, storing nothing |
//! | `allowlist` | path + only `w`, `h`, `fmt`, `q` (names exactly so), values as sent, in the order sent | the same |
//! | `normalized` | the derived object key of docs/url-grammar.md | the derived bucket; a missing object is rendered once, stored, then served from S3 |
//! | `normalized+precompute` | the same | the same, with the 8 standard variants of every asset already in the bucket |
//!
//! A request the normalizer rejects (400) is answered by the CloudFront Function in the
//! normalized designs; the naive designs pass it to the transformer, which answers 400. It is
//! counted apart from the cacheable requests.

use super::cache::{key_hash, Served, Tiers};
use super::pricing::NREGIONS;
use super::workload::{model_bytes, Render, Request, Sizes};
use pixelfront_shared::{Canonical, Policy};
use std::collections::HashSet;

/// A cache-key design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The whole query string is the key.
    Naive,
    /// Only w, h, fmt, q, as sent, in the order sent.
    Allowlist,
    /// The normalized key (docs/url-grammar.md); derivatives rendered on first request and stored.
    Normalized,
    /// Normalized, and the standard variants exist before the first request.
    Precompute,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Naive,
        Scenario::Allowlist,
        Scenario::Normalized,
        Scenario::Precompute,
    ];

    /// The name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Naive => "naive",
            Scenario::Allowlist => "allowlist",
            Scenario::Normalized => "normalized",
            Scenario::Precompute => "normalized+precompute",
        }
    }

    /// Whether the origin stores what it renders (the normalized designs).
    pub fn stores_derivatives(self) -> bool {
        matches!(self, Scenario::Normalized | Scenario::Precompute)
    }
}

/// What one scenario counted over the measured requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Cacheable requests (not rejected).
    pub requests: u64,
    /// Requests the normalizer rejects (400).
    pub rejected: u64,
    /// Answered by the edge cache.
    pub edge_hits: u64,
    /// Edge misses answered by Origin Shield.
    pub shield_hits: u64,
    /// Requests reaching the origin with Origin Shield on (edge and shield misses).
    pub origin_with_shield: u64,
    /// Renders in a design that stores derivatives: keys requested for the first time and
    /// not precomputed (the same with and without shield).
    pub first_renders: u64,
    /// Bytes delivered to viewers, per pricing region.
    pub bytes: [f64; NREGIONS],
    /// Viewer requests (rejected included), per pricing region.
    pub region_requests: [u64; NREGIONS],
}

impl Counts {
    /// Requests reaching the origin without Origin Shield (the edge misses).
    pub fn origin_without_shield(&self) -> u64 {
        self.requests - self.edge_hits
    }
}

struct State {
    scenario: Scenario,
    tiers: Tiers,
    /// Derived objects in S3 (designs that store derivatives).
    store: HashSet<u64>,
    counts: Counts,
}

/// The simulator: four scenarios fed the same requests.
pub struct Engine {
    states: Vec<State>,
    standard: HashSet<Canonical>,
    /// Multiplier from modelled to served bytes (synthetic workloads).
    size_scale: f64,
    /// Distinct assets (`{tenant}/{key}`) seen, as hashes.
    assets: HashSet<u64>,
}

impl Engine {
    /// `edges` edge caches of `edge_bytes` and a shield of `shield_bytes` per scenario;
    /// modelled sizes are multiplied by `size_scale`.
    pub fn new(edges: usize, edge_bytes: u64, shield_bytes: u64, size_scale: f64) -> Engine {
        let standard = Policy::get()
            .variants
            .iter()
            .map(|v| Canonical {
                fmt: v.fmt,
                w: v.w,
                h: v.h,
                q: if v.fmt.has_quality() { v.q } else { None },
            })
            .collect();
        Engine {
            states: Scenario::ALL
                .iter()
                .map(|&scenario| State {
                    scenario,
                    tiers: Tiers::new(edges, edge_bytes, shield_bytes),
                    store: HashSet::new(),
                    counts: Counts::default(),
                })
                .collect(),
            standard,
            size_scale,
            assets: HashSet::new(),
        }
    }

    /// Replay one request; `measure` is false during the warm-up (caches and the derived
    /// bucket fill, nothing is counted).
    pub fn feed(&mut self, req: &Request, measure: bool) {
        let normalized = pixelfront_shared::normalize(&req.path, &req.query, Some(req.accept));
        let Ok(n) = normalized else {
            if measure {
                for s in &mut self.states {
                    s.counts.rejected += 1;
                    s.counts.region_requests[req.region] += 1;
                }
            }
            return;
        };
        let asset = &n.asset;
        self.assets
            .insert(key_hash(&[asset.tenant.as_bytes(), asset.key.as_bytes()]));
        let path = req.path.as_bytes();
        let naive_key = key_hash(&[path, req.query.as_bytes()]);
        let allow_key = key_hash(&[path, allowlisted(&req.query).as_bytes()]);
        let norm_key = key_hash(&[n.derived_key().as_bytes()]);
        let (exact_bytes, norm_bytes) = match req.sizes {
            Sizes::Logged(b) => (b as f64, b as f64),
            Sizes::Modelled { original, exact } => (
                model_bytes(original, &exact) * self.size_scale,
                model_bytes(original, &Render::from(&n.canonical)) * self.size_scale,
            ),
        };
        let standard = self.standard.contains(&n.canonical);
        for s in &mut self.states {
            let (key, bytes) = match s.scenario {
                Scenario::Naive => (naive_key, exact_bytes),
                Scenario::Allowlist => (allow_key, exact_bytes),
                Scenario::Normalized | Scenario::Precompute => (norm_key, norm_bytes),
            };
            let served = s
                .tiers
                .request(req.edge, key, bytes.round().max(1.0) as u64);
            let mut first_render = false;
            if served != Served::Edge && s.scenario.stores_derivatives() {
                let precomputed = s.scenario == Scenario::Precompute && standard;
                first_render = !precomputed && s.store.insert(key);
            }
            if !measure {
                continue;
            }
            let c = &mut s.counts;
            c.requests += 1;
            c.region_requests[req.region] += 1;
            c.bytes[req.region] += bytes;
            match served {
                Served::Edge => c.edge_hits += 1,
                Served::Shield => c.shield_hits += 1,
                Served::Origin => c.origin_with_shield += 1,
            }
            c.first_renders += u64::from(first_render);
        }
    }

    /// Distinct assets among the valid requests (warm-up included).
    pub fn distinct_assets(&self) -> usize {
        self.assets.len()
    }

    /// The counts of each scenario, in [`Scenario::ALL`] order.
    pub fn counts(&self) -> Vec<(Scenario, Counts)> {
        self.states
            .iter()
            .map(|s| (s.scenario, s.counts.clone()))
            .collect()
    }
}

/// The query as a CloudFront cache policy allowlisting `w`, `h`, `fmt`, `q`, `dpr` keys it:
/// only those names (matched exactly), values as sent, in the order sent.
pub fn allowlisted(query: &str) -> String {
    query
        .split('&')
        .filter(|piece| {
            let name = piece.split_once('=').map_or(*piece, |(n, _)| n);
            matches!(name, "w" | "h" | "fmt" | "q" | "dpr")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, query: &str, accept: &'static str, edge: usize) -> Request {
        Request {
            path: path.into(),
            query: query.into(),
            accept,
            edge,
            region: 0,
            sizes: Sizes::Logged(1000),
        }
    }

    fn run(reqs: &[Request], edges: usize) -> Vec<(Scenario, Counts)> {
        let mut e = Engine::new(edges, 1 << 30, 1 << 30, 1.0);
        for r in reqs {
            e.feed(r, true);
        }
        e.counts()
    }

    #[test]
    fn allowlist_keeps_only_the_four_names_in_order() {
        assert_eq!(
            allowlisted("utm_source=x&w=300&W=9&fmt=WEBP&q"),
            "w=300&fmt=WEBP&q"
        );
        assert_eq!(allowlisted(""), "");
        assert_eq!(allowlisted("cb=1"), "");
    }

    #[test]
    fn hand_computed_trace() {
        // One asset, one edge, caches never full. Distinct keys per scenario:
        //   naive:      5 distinct query strings of 6 requests -> 1 hit
        //   allowlist:  w=300 | w=300 | fmt=webp&w=300 | w=320 | w=320 | w=320 -> 3 keys, 3 hits
        //   normalized: all are w320 webp (Accept webp) except none -> 1 key, 5 hits
        let a = "/img/acme/v1/a.jpg";
        let webp = "image/webp,*/*";
        let reqs = [
            req(a, "w=300&utm_source=x", webp, 0),
            req(a, "w=300&utm_source=y", webp, 0),
            req(a, "fmt=webp&w=300", webp, 0),
            req(a, "w=320", webp, 0),
            req(a, "w=320", webp, 0),
            req(a, "utm_medium=z&w=320", webp, 0),
        ];
        let c = run(&reqs, 1);
        let hits: Vec<u64> = c.iter().map(|(_, c)| c.edge_hits).collect();
        assert_eq!(hits, vec![1, 3, 5, 5]);
        // w320-q80.webp is a standard variant: precomputed, never rendered.
        assert_eq!(c[2].1.first_renders, 1);
        assert_eq!(c[3].1.first_renders, 0);
        assert!(c.iter().all(|(_, c)| c.requests == 6 && c.rejected == 0));
    }

    #[test]
    fn rejected_requests_are_counted_apart() {
        let c = run(
            &[
                req("/img/acme/v1/a.jpg", "w=0", "", 0),
                req("/img/acme/v1/a.jpg", "w=1&W=2", "", 0),
                req("/img/acme/v1/a.jpg", "w=1", "", 0),
            ],
            1,
        );
        assert!(c.iter().all(|(_, c)| c.rejected == 2 && c.requests == 1));
        assert!(c.iter().all(|(_, c)| c.region_requests[0] == 3));
    }

    #[test]
    fn shield_counts_across_edges() {
        let a = "/img/acme/v1/a.jpg";
        // Same object at three edges, then again at the first.
        let reqs = [
            req(a, "w=500&fmt=jpeg", "", 0),
            req(a, "w=500&fmt=jpeg", "", 1),
            req(a, "w=500&fmt=jpeg", "", 2),
            req(a, "w=500&fmt=jpeg", "", 0),
        ];
        for (_, c) in run(&reqs, 3) {
            assert_eq!(c.edge_hits, 1);
            assert_eq!(c.origin_without_shield(), 3);
            assert_eq!(c.shield_hits, 2);
            assert_eq!(c.origin_with_shield, 1);
        }
    }

    #[test]
    fn warm_up_fills_caches_without_counting() {
        let mut e = Engine::new(1, 1 << 30, 1 << 30, 1.0);
        let r = req("/img/acme/v1/a.jpg", "w=500", "", 0);
        e.feed(&r, false);
        e.feed(&r, true);
        for (_, c) in e.counts() {
            assert_eq!((c.requests, c.edge_hits, c.first_renders), (1, 1, 0));
        }
    }
}
