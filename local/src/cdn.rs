//! The local stack's CDN port of the takedown steps: the in-process image cache. An
//! invalidation of the takedown plan (an asset's cache tag `#asset:{tenant}/{key}`, or the
//! exact path `/{tenant}/v{N}/{key}/{derivative}` of one derivative) drops the matching cached
//! answers at once, so it is complete as soon as it is created. Every item is exact: the tag
//! of `K` never matches `K/x`'s derivatives, and a wildcard `/{tenant}/v{N}/{key}/*` (not in
//! today's plans) drops only the entries directly under it, never `{key}/x/...`.

use crate::cache::Cache;
use pixelfront_shared::removal::{Cdn, CdnError, Invalidation};

/// The cache as the CDN in front of the derived store.
#[derive(Debug, Clone, Copy)]
pub struct LocalCdn<'a> {
    /// The cache purged.
    pub cache: &'a Cache,
}

/// Whether `derived_key` lies directly under `prefix` (ending in `/`): one of the
/// derivatives `{prefix}{derivative}`, never a longer key's `{prefix}x/{derivative}`.
pub fn directly_under(derived_key: &str, prefix: &str) -> bool {
    derived_key
        .strip_prefix(prefix)
        .is_some_and(|d| !d.is_empty() && !d.contains('/'))
}

/// Whether the cached derived key `{tenant}/v{N}/{key}/{derivative}` belongs to the asset of
/// cache tag `asset:{tenant}/{key}` (any version).
fn tagged(derived_key: &str, tag: &str) -> bool {
    let Some(asset) = tag.strip_prefix("asset:") else {
        return false;
    };
    let Some((tenant, key)) = asset.split_once('/') else {
        return false;
    };
    let Some(rest) = derived_key
        .strip_prefix(tenant)
        .and_then(|r| r.strip_prefix("/v"))
    else {
        return false;
    };
    let Some((version, rest)) = rest.split_once('/') else {
        return false;
    };
    let Some((stored_key, _derivative)) = rest.rsplit_once('/') else {
        return false;
    };
    !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) && stored_key == key
}

impl LocalCdn<'_> {
    /// Drops what one invalidation item names; returns how many answers.
    async fn purge(&self, item: &str) -> Result<usize, CdnError> {
        if let Some(tag) = item.strip_prefix('#') {
            return Ok(self.cache.purge_where(|k| tagged(k, tag)).await);
        }
        let Some(path) = item.strip_prefix('/') else {
            return Err(CdnError::Denied(format!(
                "{item:?} is neither a cache tag nor a path"
            )));
        };
        match path.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => {
                Ok(self.cache.purge_where(|k| directly_under(k, prefix)).await)
            }
            Some(_) => Err(CdnError::Denied(format!(
                "{item:?}: a wildcard must follow a `/`"
            ))),
            None => Ok(self.cache.purge_where(|k| k == path).await),
        }
    }
}

impl Cdn for LocalCdn<'_> {
    async fn invalidate(
        &self,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<Invalidation, CdnError> {
        let mut purged = 0;
        for item in paths {
            purged += self.purge(item).await?;
        }
        tracing::info!(
            caller_reference,
            items = paths.len(),
            purged,
            "cache invalidated"
        );
        Ok(Invalidation::completed(
            format!("local-{caller_reference}"),
            caller_reference,
            paths.len(),
        ))
    }

    async fn invalidation(&self, id: &str) -> Result<Invalidation, CdnError> {
        let caller_reference = id.strip_prefix("local-").unwrap_or(id);
        Ok(Invalidation::completed(id.to_string(), caller_reference, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pixelfront_shared::delivery::{Delivered, Source};

    async fn cached(cache: &Cache, key: &str) {
        let d = Delivered {
            derived_key: key.to_string(),
            bytes: Bytes::from_static(b"x"),
            content_type: "image/webp",
            cache_control: "x",
            etag: String::new(),
            cache_tag: String::new(),
            source: Source::Stored,
            render_ms: 0,
        };
        let delivered = cache.get_or_deliver(key, async { Ok::<_, ()>(d) }).await;
        assert!(delivered.is_ok());
    }

    async fn has(cache: &Cache, key: &str) -> bool {
        let probe = cache
            .get_or_deliver(key, async { Err::<Delivered, _>(()) })
            .await;
        probe.is_ok()
    }

    #[tokio::test]
    async fn tags_and_wildcards_drop_exactly_their_asset() {
        let cache = Cache::new(1 << 20);
        for key in [
            "acme/v1/cat.jpg/w320.webp",
            "acme/v2/cat.jpg/w640.avif",
            "acme/v1/cat.jpg/x/w320.webp",
            "acme/v1/cat.jpg.bak/w320.webp",
            "acme/v3/a/cat.jpg/w320.webp",
            "other/v1/cat.jpg/w320.webp",
        ] {
            cached(&cache, key).await;
        }
        let cdn = LocalCdn { cache: &cache };
        let inv = cdn
            .invalidate("req-0", &["#asset:acme/cat.jpg".to_string()])
            .await
            .expect("tag");
        assert!(inv.done);
        for (key, kept) in [
            ("acme/v1/cat.jpg/w320.webp", false),
            ("acme/v2/cat.jpg/w640.avif", false),
            ("acme/v1/cat.jpg/x/w320.webp", true),
            ("acme/v1/cat.jpg.bak/w320.webp", true),
            ("acme/v3/a/cat.jpg/w320.webp", true),
            ("other/v1/cat.jpg/w320.webp", true),
        ] {
            assert_eq!(has(&cache, key).await, kept, "{key}");
        }
        cdn.invalidate("req-1", &["/acme/v1/cat.jpg.bak/*".to_string()])
            .await
            .expect("wildcard");
        assert!(!has(&cache, "acme/v1/cat.jpg.bak/w320.webp").await);
        assert!(has(&cache, "acme/v1/cat.jpg/x/w320.webp").await);
        assert!(cdn
            .invalidate("r", &["/acme/v1/x*".to_string()])
            .await
            .is_err());
        assert!(cdn
            .invalidate("r", &["acme/v1/x".to_string()])
            .await
            .is_err());
    }

    /// A wildcard or an exact path under `K` never reaches `K/x` or `K/w640-q80.webp`.
    #[tokio::test]
    async fn paths_and_wildcards_stop_at_the_next_segment() {
        let cache = Cache::new(1 << 20);
        let keys = [
            "acme/v1/K/w640-q80.webp",
            "acme/v1/K/w320-q80.webp",
            "acme/v1/K/x/w640-q80.webp",
            "acme/v1/K/w640-q80.webp/w640-q80.webp",
        ];
        for key in keys {
            cached(&cache, key).await;
        }
        let cdn = LocalCdn { cache: &cache };
        cdn.invalidate("r-0", &["/acme/v1/K/w640-q80.webp".to_string()])
            .await
            .expect("path");
        let kept: Vec<bool> = futures_kept(&cache, &keys).await;
        assert_eq!(kept, vec![false, true, true, true]);
        cdn.invalidate("r-1", &["/acme/v1/K/*".to_string()])
            .await
            .expect("wildcard");
        let kept: Vec<bool> = futures_kept(&cache, &keys).await;
        assert_eq!(kept, vec![false, false, true, true]);
    }

    async fn futures_kept(cache: &Cache, keys: &[&str]) -> Vec<bool> {
        let mut out = Vec::new();
        for key in keys {
            out.push(has(cache, key).await);
        }
        out
    }
}
