//! A byte-bounded LRU cache of delivered images, in front of the stored derivatives (what the
//! CloudFront edge cache is for the AWS stack).

use crate::metrics::Outcome;
use pixelfront_shared::delivery::{Delivered, DeliveryError};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One delivery that concurrent misses of the same key wait for.
type Pending = Arc<OnceCell<Result<Arc<Served>, DeliveryError>>>;

/// A delivered image ready to send: the body is shared, never copied per response.
pub type Served = Delivered;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (Arc<Served>, u64)>,
    /// Last-use tick → key; the smallest tick is the least recently used.
    order: BTreeMap<u64, String>,
    bytes: u64,
    tick: u64,
}

/// Least-recently-used eviction once the bodies exceed `capacity` bytes.
#[derive(Debug)]
pub struct Cache {
    capacity: u64,
    inner: Mutex<Inner>,
    /// Misses being delivered, by key: later requests wait for the same result.
    pending: Mutex<HashMap<String, Pending>>,
}

impl Cache {
    /// A cache holding at most `capacity` bytes of image bodies (0 disables it).
    pub fn new(capacity: u64) -> Self {
        Cache {
            capacity,
            inner: Mutex::new(Inner::default()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key`, marked as just used.
    pub fn get(&self, key: &str) -> Option<Arc<Served>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (value, old) = {
            let (value, last) = inner.entries.get_mut(key)?;
            let old = std::mem::replace(last, tick);
            (value.clone(), old)
        };
        inner.order.remove(&old);
        inner.order.insert(tick, key.to_string());
        Some(value)
    }

    /// Stores `value` under `key`, evicting the least recently used entries to make room.
    /// A body larger than the whole cache is not stored.
    pub fn insert(&self, key: &str, value: Arc<Served>) {
        let size = value.bytes.len() as u64;
        if size > self.capacity {
            return;
        }
        let mut inner = self.lock();
        if let Some((old, tick)) = inner.entries.remove(key) {
            inner.order.remove(&tick);
            inner.bytes -= old.bytes.len() as u64;
        }
        while inner.bytes + size > self.capacity {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = inner.entries.remove(&victim) {
                inner.bytes -= old.bytes.len() as u64;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, key.to_string());
        inner.entries.insert(key.to_string(), (value, tick));
        inner.bytes += size;
    }

    /// Drops every entry whose key starts with `prefix`; returns how many.
    pub fn purge_prefix(&self, prefix: &str) -> usize {
        self.purge_where(|key| key.starts_with(prefix))
    }

    /// Drops every entry whose key satisfies `doomed`; returns how many.
    pub fn purge_where(&self, doomed: impl Fn(&str) -> bool) -> usize {
        let mut inner = self.lock();
        let victims: Vec<String> = inner
            .entries
            .keys()
            .filter(|k| doomed(k))
            .cloned()
            .collect();
        for key in &victims {
            if let Some((old, tick)) = inner.entries.remove(key) {
                inner.order.remove(&tick);
                inner.bytes -= old.bytes.len() as u64;
            }
        }
        victims.len()
    }

    /// The entry for `key` ([`Outcome::Hit`]), or the result of `deliver` ([`Outcome::Miss`]),
    /// stored when it succeeds. Concurrent misses of one key run `deliver` once and share its
    /// result, errors included.
    pub async fn get_or_deliver<F, Fut>(
        &self,
        key: &str,
        deliver: F,
    ) -> Result<(Arc<Served>, Outcome), DeliveryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Delivered, DeliveryError>>,
    {
        if let Some(hit) = self.get(key) {
            return Ok((hit, Outcome::Hit));
        }
        let cell = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        let result = cell
            .get_or_init(|| async {
                let served = Arc::new(deliver().await?);
                self.insert(key, served.clone());
                Ok(served)
            })
            .await
            .clone();
        {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                map.remove(key);
            }
        }
        result.map(|served| (served, Outcome::Miss))
    }

    /// Bytes of image bodies held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> Arc<Served> {
        Arc::new(Served {
            derived_key: String::new(),
            bytes: bytes::Bytes::from(vec![0; n]),
            content_type: "image/webp",
            cache_control: "x",
            etag: String::new(),
            cache_tag: String::new(),
            source: pixelfront_shared::delivery::Source::Stored,
            render_ms: 0,
        })
    }

    #[test]
    fn least_recently_used_entries_go_first_and_bytes_stay_bounded() {
        let c = Cache::new(100);
        c.insert("a", item(40));
        c.insert("b", item(40));
        assert!(c.get("a").is_some()); // b is now the least recently used
        c.insert("c", item(40));
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!(c.bytes(), 80);
        c.insert("huge", item(101));
        assert!(c.get("huge").is_none());
        c.insert("a", item(10)); // replacing adjusts the byte count
        assert_eq!(c.bytes(), 50);
        assert_eq!(c.purge_prefix("a"), 1);
        assert_eq!(c.bytes(), 40);
    }
}
