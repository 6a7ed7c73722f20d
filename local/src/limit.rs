//! Per-IP rate limit, as the WAF rate-based rule applies it at the edge: at most `limit`
//! requests per source IP in five minutes. `governor`'s keyed GCRA limiter with a burst of
//! `limit` and one request replenished every `300 s / limit`: the same as a token bucket of
//! `limit` tokens refilled at `limit / 300` per second.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Source IPs above this count are swept of those whose state is back to full.
const SWEEP_AT: usize = 10_000;

/// The count is looked at once every this many requests.
const SWEEP_EVERY: u64 = 1024;

type Keyed<C> =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// GCRA state by source IP (`None`: no limit).
pub struct RateLimit<C: Clock = DefaultClock> {
    limiter: Option<Keyed<C>>,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_5min` requests per IP per five minutes; 0 switches the limit off.
    pub fn new(per_5min: u32) -> Self {
        Self::with_clock(per_5min, DefaultClock::default())
    }
}

impl<C: Clock> RateLimit<C> {
    /// As [`RateLimit::new`], on `clock`.
    pub fn with_clock(per_5min: u32, clock: C) -> Self {
        let limiter = NonZeroU32::new(per_5min).and_then(|n| {
            let quota = Quota::with_period(Duration::from_secs(300) / n.get())?.allow_burst(n);
            Some(RateLimiter::dashmap_with_clock(quota, clock))
        });
        RateLimit {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request from `ip`; `false` means refuse (429).
    pub fn allow(&self, ip: IpAddr) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
            && limiter.len() > SWEEP_AT
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&ip).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimit::with_clock(300, clock.clone()); // one request per second
        let ip: IpAddr = "198.51.100.1".parse().expect("ip");
        let other: IpAddr = "198.51.100.2".parse().expect("ip");
        assert!((0..300).all(|_| rl.allow(ip)));
        assert!(!rl.allow(ip));
        assert!(rl.allow(other), "per IP");
        clock.advance(Duration::from_millis(1100));
        assert!(rl.allow(ip));
        clock.advance(Duration::from_millis(100));
        assert!(!rl.allow(ip));
        let off = RateLimit::new(0);
        assert!((0..1000).all(|_| off.allow(ip)), "0 is off");
    }
}
