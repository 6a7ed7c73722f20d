//! The local stack's object store as a takedown target (feature `local`): [`FsObjects`]
//! listed and deleted as a versioned bucket.
//!
//! A versioned original `{key}@{version}` is listed as (`key`, `Some(version)`), a plain
//! object (a derivative) as (`key`, `None`); temporary files of unfinished writes are never
//! listed. A deletion is made durable (the directory is synced) and removes the directories
//! it leaves empty, up to the store's root.

use super::{ObjectVersion, VersionedStore};
use crate::store::fs::{FsObjects, TEMP_PREFIX};
use crate::store::StoreError;
use std::io::ErrorKind;
use std::path::Path;

fn unavailable(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

/// The stored key and version of a file name: `cat.jpg@V1` is (`cat.jpg`, `Some("V1")`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((key, version)) => (key, Some(version)),
        None => (name, None),
    }
}

/// Every object under `dir` (whose key is `rel`, empty for the root) whose key starts with
/// `prefix`, into `out`. Only regular files and real directories: a symbolic link is never
/// followed out of the root.
fn walk(
    dir: &Path,
    rel: &str,
    prefix: &str,
    out: &mut Vec<ObjectVersion>,
) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Gone meanwhile (or never there): nothing under it.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unavailable(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| unavailable(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| unavailable(&path, e))?;
        let full = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if kind.is_dir() {
            // Descend only where a key under the prefix can be.
            let dir_key = format!("{full}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(&path, &full, prefix, out)?;
            }
        } else if kind.is_file() {
            let (key, version) = split_version(&full);
            if key.starts_with(prefix) {
                out.push(ObjectVersion {
                    key: key.to_string(),
                    version_id: version.map(str::to_string),
                    delete_marker: false,
                });
            }
        }
    }
    Ok(())
}

/// Syncs directory `dir`, so that an unlink in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| unavailable(dir, e))
}

impl VersionedStore for FsObjects {
    fn bucket_name(&self) -> &str {
        self.name()
    }

    /// Every object whose key starts with `prefix`, sorted; a prefix no storable key can
    /// start with (`..`, an empty segment) lists nothing.
    async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        // Walk from the deepest directory the prefix names: `acme/photos/be` starts in
        // `acme/photos`, `acme/v1/a.jpg/` in `acme/v1/a.jpg`.
        let start = match prefix.rfind('/') {
            None => self.root().to_path_buf(),
            Some(i) => match self.path_of(&prefix[..i], None) {
                Ok(path) => path,
                Err(_) => return Ok(Vec::new()),
            },
        };
        let rel = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let mut out = Vec::new();
        walk(&start, rel, prefix, &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Deletes `key` (`version_id` `None` or `null`: the plain object) or `{key}@{version}`.
    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        let version = version_id.filter(|v| *v != "null");
        let path = self.path_of(key, version)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(unavailable(&path, e)),
        }
        // Remove the directories this left empty, then make the last change durable.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root() || !d.starts_with(self.root()) {
                break;
            }
            match std::fs::remove_dir(d) {
                Ok(()) => dir = d.parent(),
                // Not empty (or already gone, or in use): what is left stays.
                Err(_) => break,
            }
        }
        sync_dir(dir.unwrap_or(self.root()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ObjectStore, PutOptions};

    fn opts() -> PutOptions {
        PutOptions {
            content_type: "image/webp".into(),
            cache_control: "public".into(),
            cache_tag: None,
            on_demand: false,
        }
    }

    fn keys(found: &[ObjectVersion]) -> Vec<(&str, Option<&str>)> {
        found
            .iter()
            .map(|v| (v.key.as_str(), v.version_id.as_deref()))
            .collect()
    }

    #[tokio::test]
    async fn versions_and_objects_are_listed_by_key_prefix_without_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjects::named(dir.path(), "originals").expect("root");
        assert_eq!(store.bucket_name(), "originals");
        assert_eq!(
            FsObjects::new(dir.path().join("derived"))
                .expect("root")
                .bucket_name(),
            "derived"
        );
        let v1 = store.put_version("acme/cat.jpg", b"1").expect("v1");
        let v2 = store.put_version("acme/cat.jpg", b"2").expect("v2");
        let bak = store.put_version("acme/cat.jpg.bak", b"b").expect("bak");
        store.put_version("acme/dog.jpg", b"d").expect("dog");
        store
            .put("acme/v1/cat.jpg/w160.webp", vec![1], &opts())
            .await
            .expect("derivative");
        std::fs::write(dir.path().join("acme").join(".tmp-1-2"), b"half").expect("tmp");

        let found = store.list_versions("acme/cat.jpg").await.expect("list");
        assert_eq!(
            keys(&found),
            vec![
                ("acme/cat.jpg", Some(v1.as_str())),
                ("acme/cat.jpg", Some(v2.as_str())),
                ("acme/cat.jpg.bak", Some(bak.as_str())),
            ]
        );
        assert!(found.iter().all(|v| !v.delete_marker));
        let derived = store.list_versions("acme/v1/cat.jpg/").await.expect("list");
        assert_eq!(keys(&derived), vec![("acme/v1/cat.jpg/w160.webp", None)]);
        assert_eq!(store.list_versions("").await.expect("all").len(), 5);
        assert_eq!(store.list_versions("acme/c").await.expect("c").len(), 3);
        assert!(store.list_versions("zzz/").await.expect("none").is_empty());
        assert!(store.list_versions("../").await.expect("escape").is_empty());
    }

    #[tokio::test]
    async fn deleting_removes_the_file_and_the_directories_it_empties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjects::named(dir.path(), "derived").expect("root");
        let v1 = store.put_version("acme/a/cat.jpg", b"1").expect("v1");
        store.put_version("acme/keep.jpg", b"k").expect("keep");
        store
            .put("acme/v1/a/cat.jpg/w160.webp", vec![1], &opts())
            .await
            .expect("derivative");

        store
            .delete_version("acme/a/cat.jpg", Some(&v1))
            .await
            .expect("delete");
        assert!(!dir.path().join("acme/a").exists(), "empty directory left");
        assert!(dir.path().join("acme").is_dir(), "a non-empty parent went");
        store
            .delete_version("acme/v1/a/cat.jpg/w160.webp", None)
            .await
            .expect("delete");
        assert!(!dir.path().join("acme/v1").exists());
        // Deleting what is gone succeeds; `null` is the plain object.
        store
            .delete_version("acme/a/cat.jpg", Some(&v1))
            .await
            .expect("again");
        store
            .delete_version("acme/v1/a/cat.jpg/w160.webp", Some("null"))
            .await
            .expect("null");
        assert!(matches!(
            store.delete_version("../x", None).await,
            Err(StoreError::Denied(_))
        ));
        let left = store.list_versions("").await.expect("list");
        assert_eq!(
            left.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(),
            vec!["acme/keep.jpg"]
        );
        assert!(dir.path().is_dir(), "the root stays");
        // A write into a directory a purge removed still lands.
        store.put_version("acme/a/new.jpg", b"n").expect("write");
    }
}
