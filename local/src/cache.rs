//! A byte-bounded LRU cache of delivered images, in front of the stored derivatives (what the
//! CloudFront edge cache is for the AWS stack), that also coalesces concurrent misses for one
//! key into one delivery (what Origin Shield does). Built on `moka`'s async cache: its weigher
//! counts body bytes, its entry API runs one delivery per key while the other callers wait.

use crate::metrics::Outcome;
use moka::future::Cache as Moka;
use moka::policy::EvictionPolicy;
use pixelfront_shared::delivery::Delivered;
use std::future::Future;
use std::sync::Arc;

/// A delivered image ready to send: the body is shared, never copied per response.
pub type Served = Delivered;

/// The cache's weight of an entry: its body's bytes (saturating at 4 GiB).
fn weight(_key: &String, value: &Arc<Served>) -> u32 {
    u32::try_from(value.bytes.len()).unwrap_or(u32::MAX)
}

/// Least-recently-used eviction once the bodies exceed `capacity` bytes.
#[derive(Debug, Clone)]
pub struct Cache {
    capacity: u64,
    inner: Moka<String, Arc<Served>>,
}

impl Cache {
    /// A cache holding at most `capacity` bytes of image bodies (0 disables caching; misses
    /// are still coalesced).
    pub fn new(capacity: u64) -> Self {
        Cache {
            capacity,
            inner: Moka::builder()
                .max_capacity(capacity)
                .weigher(weight)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    /// The entry for `key` ([`Outcome::Hit`]), or else the result of `deliver`, stored
    /// ([`Outcome::Miss`]). Concurrent misses for one key run one `deliver` and share its
    /// result, an error included; an error is not stored. A body larger than the whole cache
    /// (any body when the capacity is 0) is handed to the waiting callers, then dropped.
    pub async fn get_or_deliver<E, F>(
        &self,
        key: &str,
        deliver: F,
    ) -> Result<(Arc<Served>, Outcome), Arc<E>>
    where
        F: Future<Output = Result<Served, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(hit) = self.inner.get(key).await {
            return Ok((hit, Outcome::Hit));
        }
        let entry = self
            .inner
            .entry_by_ref(key)
            .or_try_insert_with(async { deliver.await.map(Arc::new) })
            .await?;
        let fresh = entry.is_fresh();
        let served = entry.into_value();
        if fresh && (self.capacity == 0 || served.bytes.len() as u64 > self.capacity) {
            self.inner.invalidate(key).await;
        }
        Ok((served, Outcome::Miss))
    }

    /// Drops every entry whose key starts with `prefix`; returns how many.
    pub async fn purge_prefix(&self, prefix: &str) -> usize {
        self.purge_where(|key| key.starts_with(prefix)).await
    }

    /// Drops every entry whose key satisfies `doomed`; returns how many.
    pub async fn purge_where(&self, doomed: impl Fn(&str) -> bool) -> usize {
        let victims: Vec<Arc<String>> = self
            .inner
            .iter()
            .filter(|(k, _)| doomed(k))
            .map(|(k, _)| k)
            .collect();
        let mut purged = 0;
        for key in victims {
            if self.inner.remove(key.as_str()).await.is_some() {
                purged += 1;
            }
        }
        purged
    }

    /// Bytes of image bodies held (after applying the pending evictions).
    pub async fn bytes(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn item(n: usize) -> Served {
        Served {
            derived_key: String::new(),
            bytes: bytes::Bytes::from(vec![0; n]),
            content_type: "image/webp",
            cache_control: "x",
            etag: String::new(),
            cache_tag: String::new(),
            source: pixelfront_shared::delivery::Source::Stored,
            render_ms: 0,
        }
    }

    async fn put(c: &Cache, key: &str, n: usize) -> Outcome {
        let r = c.get_or_deliver(key, async { Ok::<_, ()>(item(n)) }).await;
        c.inner.run_pending_tasks().await;
        r.expect("delivered").1
    }

    async fn has(c: &Cache, key: &str) -> bool {
        c.inner.get(key).await.is_some()
    }

    #[tokio::test]
    async fn least_recently_used_entries_go_first_and_bytes_stay_bounded() {
        let c = Cache::new(100);
        assert_eq!(put(&c, "a", 40).await, Outcome::Miss);
        assert_eq!(put(&c, "b", 40).await, Outcome::Miss);
        assert_eq!(put(&c, "a", 40).await, Outcome::Hit); // b is now the least recently used
        put(&c, "c", 40).await;
        assert!(!has(&c, "b").await);
        assert!(has(&c, "a").await && has(&c, "c").await);
        assert_eq!(c.bytes().await, 80);
        put(&c, "huge", 101).await;
        assert!(!has(&c, "huge").await);
        assert_eq!(c.bytes().await, 80);
        assert_eq!(c.purge_prefix("a").await, 1);
        assert_eq!(c.bytes().await, 40);
        // Not kept even before moka's housekeeping runs: no hit right after the miss.
        let off = Cache::new(0);
        for _ in 0..2 {
            let r = off
                .get_or_deliver("a", async { Ok::<_, ()>(item(1)) })
                .await;
            assert_eq!(r.expect("delivered").1, Outcome::Miss);
        }
        let r = c
            .get_or_deliver("huge", async { Ok::<_, ()>(item(101)) })
            .await;
        assert_eq!(r.expect("delivered").1, Outcome::Miss);
        assert!(!has(&c, "huge").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_deliver_once_and_share_errors() {
        let c = Arc::new(Cache::new(1000));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (c, runs) = (c.clone(), runs.clone());
            tasks.spawn(async move {
                c.get_or_deliver("k", async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok::<_, ()>(item(10))
                })
                .await
                .expect("delivered")
                .1
            });
        }
        let outcomes = tasks.join_all().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(outcomes.iter().all(|o| *o == Outcome::Miss));
        let err = c
            .get_or_deliver("e", async { Err::<Served, _>("boom") })
            .await;
        assert_eq!(err.err().as_deref(), Some(&"boom"));
        assert!(!has(&c, "e").await, "errors are not stored");
    }
}
