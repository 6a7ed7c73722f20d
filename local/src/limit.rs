//! Per-client rate limits. [`RateLimit`]: every request, on every route, as the WAF rate-based
//! rule applies it at the edge: at most `limit` requests per client in five minutes.
//! `governor`'s keyed GCRA limiter with a burst of `limit` and one request replenished every
//! `300 s / limit`: the same as a token bucket of `limit` tokens refilled at `limit / 300` per
//! second. [`AdminGuard`]: wrong admin tokens, a few per client, then a lockout.
//!
//! A client is its [`client_group`]: an IPv4 address, or the /64 of an IPv6 address (one
//! host's allocation: a client rotating through its /64 is still one client).

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The key of a client: an IPv4 address as it is (an IPv4-mapped IPv6 address too), an IPv6
/// address with its low 64 bits cleared.
pub fn client_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

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
        self.check(ip).is_ok()
    }

    /// Counts one request from `ip`'s [`client_group`]; `Err` is how long until the next one
    /// is allowed (429 with `Retry-After`).
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
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
        limiter
            .check_key(&client_group(ip))
            .map_err(|not_until| not_until.wait_time_from(limiter_now(limiter)))
    }
}

fn limiter_now<C: Clock>(limiter: &Keyed<C>) -> C::Instant {
    limiter.clock().now()
}

/// Wrong admin tokens a client may present before it is locked out.
pub const ADMIN_FAILURES: u32 = 5;

/// How long a client that presented [`ADMIN_FAILURES`] wrong tokens is refused every admin
/// call (the right token included: a 429 tells nothing about a guess); its count is forgotten
/// this long after its last failure.
pub const ADMIN_LOCKOUT: Duration = Duration::from_secs(60);

/// Clients tracked before those whose failures are forgotten are swept.
const ADMIN_SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    last: Instant,
}

/// Failed admin tokens by [`client_group`]: at most [`ADMIN_FAILURES`], then [`ADMIN_LOCKOUT`].
#[derive(Debug, Default)]
pub struct AdminGuard {
    clients: Mutex<HashMap<IpAddr, Strikes>>,
}

impl AdminGuard {
    /// `Some(retry after)` while `ip`'s client is locked out at `now`.
    pub fn locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let s = clients.get(&client_group(ip))?;
        let until = s.last + ADMIN_LOCKOUT;
        (s.failures >= ADMIN_FAILURES && until > now).then(|| until - now)
    }

    /// Records a wrong token from `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= ADMIN_SWEEP_AT {
            clients.retain(|_, s| now.saturating_duration_since(s.last) < ADMIN_LOCKOUT);
        }
        let s = clients.entry(client_group(ip)).or_insert(Strikes {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(s.last) >= ADMIN_LOCKOUT {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last = now;
    }

    /// Forgets `ip`'s failures (the right token).
    pub fn succeeded(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.remove(&client_group(ip));
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

    #[test]
    fn refusals_say_when_to_come_back() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimit::with_clock(30, clock.clone()); // one request per 10 s
        let ip: IpAddr = "198.51.100.1".parse().expect("ip");
        assert!((0..30).all(|_| rl.check(ip).is_ok()));
        let wait = rl.check(ip).expect_err("refused");
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_ipv4_by_address() {
        let group = |s: &str| client_group(s.parse().expect("ip"));
        assert_eq!(
            group("2001:db8:1:2:aaaa::1"),
            group("2001:db8:1:2:ffff:1:2:3")
        );
        assert_eq!(group("2001:db8:1:2::"), group("2001:db8:1:2:aaaa::1"));
        assert_ne!(group("2001:db8:1:2::1"), group("2001:db8:1:3::1"));
        assert_ne!(group("198.51.100.1"), group("198.51.100.2"));
        assert_eq!(group("::ffff:198.51.100.1"), group("198.51.100.1"));
        assert_eq!(group("::1"), group("::2"), "loopback /64");

        let rl = RateLimit::new(3);
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::ffff:2".parse().expect("ip");
        let other: IpAddr = "2001:db8:0:1::1".parse().expect("ip");
        assert!(rl.allow(a) && rl.allow(b) && rl.allow(a));
        assert!(!rl.allow(b), "one budget for the /64");
        assert!(rl.allow(other), "another /64");
    }

    #[test]
    fn wrong_admin_tokens_lock_the_client_out_for_a_while() {
        let guard = AdminGuard::default();
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let neighbour: IpAddr = "2001:db8::2".parse().expect("ip");
        let v4: IpAddr = "198.51.100.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..ADMIN_FAILURES {
            assert_eq!(guard.locked(ip, t0), None, "after {i} failures");
            guard.failed(ip, t0);
        }
        assert_eq!(guard.locked(neighbour, t0), Some(ADMIN_LOCKOUT), "same /64");
        assert_eq!(guard.locked(v4, t0), None);
        let later = t0 + ADMIN_LOCKOUT - Duration::from_secs(1);
        assert_eq!(guard.locked(ip, later), Some(Duration::from_secs(1)));
        let after = t0 + ADMIN_LOCKOUT;
        assert_eq!(guard.locked(ip, after), None);
        guard.failed(ip, after);
        assert_eq!(guard.locked(ip, after), None, "the count was forgotten");
        guard.failed(ip, after);
        guard.succeeded(ip);
        for _ in 0..ADMIN_FAILURES - 1 {
            guard.failed(ip, after);
        }
        assert_eq!(guard.locked(ip, after), None, "a success resets the count");
    }
}
