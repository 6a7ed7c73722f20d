//! Per-IP rate limit, as the WAF rate-based rule applies it at the edge: at most `limit`
//! requests per source IP in five minutes, as a token bucket (burst `limit`, refilled at
//! `limit / 300` per second).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets above this count are swept of idle (full) entries.
const SWEEP_AT: usize = 10_000;

/// Token buckets by source IP.
#[derive(Debug)]
pub struct RateLimit {
    capacity: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    /// `per_5min` requests per IP per five minutes; 0 switches the limit off.
    pub fn new(per_5min: u32) -> Self {
        RateLimit {
            capacity: f64::from(per_5min),
            per_sec: f64::from(per_5min) / 300.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip` at `now`; `false` means refuse (429).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.capacity <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > SWEEP_AT {
            let (cap, rate) = (self.capacity, self.per_sec);
            buckets.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < cap);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.capacity, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.per_sec;
        *tokens = (*tokens + refill).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let rl = RateLimit::new(300); // one token per second
        let ip: IpAddr = "198.51.100.1".parse().expect("ip");
        let other: IpAddr = "198.51.100.2".parse().expect("ip");
        let t0 = Instant::now();
        assert!((0..300).all(|_| rl.allow(ip, t0)));
        assert!(!rl.allow(ip, t0));
        assert!(rl.allow(other, t0), "per IP");
        assert!(rl.allow(ip, t0 + Duration::from_millis(1100)));
        assert!(!rl.allow(ip, t0 + Duration::from_millis(1200)));
        assert!(RateLimit::new(0).allow(ip, t0));
    }
}
