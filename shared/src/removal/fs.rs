//! The local stack's object store as a takedown target (feature `local`): [`FsObjects`]
//! listed and deleted as a versioned bucket.
//!
//! A versioned original (file `{segment}@{version}`) is listed as (`key`, `Some(version)`), a
//! plain object (a derivative, file `{segment}@`) as (`key`, `None`); temporary files and the
//! layout marker are never listed (the layout: `store/fs.rs`). A delimited listing reads one
//! directory, so the derivatives of `{tenant}/v1/K/` never include those of `K/x`. A deletion
//! is made durable (the directory is synced) and removes the directories it leaves empty, up
//! to the store's root. All of it runs on Tokio's blocking pool.

use super::{Listing, ObjectVersion, VersionedStore};
use crate::store::fs::{blocking, parse_file_name, remove_durably, sync_dir, FsObjects};
use crate::store::StoreError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

fn unavailable(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

/// The objects in directory `dir` (whose key prefix is `rel`, empty for the root) into `out`:
/// at the top (`first` is `Some`) only names starting with it, below every one; into
/// subdirectories only when `deep`. Only regular files and real directories: a symbolic link
/// is never followed out of the root.
fn walk(
    dir: &Path,
    rel: &str,
    first: Option<&str>,
    deep: bool,
    out: &mut Vec<ObjectVersion>,
) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Gone meanwhile (or never there, or a file where a directory was named): nothing.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(())
        }
        Err(e) => return Err(unavailable(dir, e)),
    };
    let join = |name: &str| {
        if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        }
    };
    for entry in entries {
        let entry = entry.map_err(|e| unavailable(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| unavailable(&path, e))?;
        if kind.is_dir() {
            if deep && first.is_none_or(|f| name.starts_with(f)) {
                walk(&path, &join(&name), None, true, out)?;
            }
        } else if kind.is_file() {
            let Some((segment, version)) = parse_file_name(&name) else {
                continue;
            };
            if first.is_none_or(|f| segment.starts_with(f)) {
                out.push(ObjectVersion {
                    key: join(segment),
                    version_id: version.map(str::to_string),
                    delete_marker: false,
                });
            }
        }
    }
    Ok(())
}

/// Removes `path`, then the directories it leaves empty up to `root`, and syncs the directory
/// of the last removal.
fn delete_file(root: &Path, path: &Path) -> Result<(), StoreError> {
    if !remove_durably(path)? {
        return Ok(());
    }
    let mut dir = path.parent();
    let mut removed = false;
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        match std::fs::remove_dir(d) {
            Ok(()) => {
                removed = true;
                dir = d.parent();
            }
            // Not empty (or already gone, or in use): what is left stays.
            Err(_) => break,
        }
    }
    match (removed, dir) {
        (true, Some(d)) => sync_dir(d).map_err(|e| unavailable(d, e)),
        _ => Ok(()),
    }
}

impl VersionedStore for FsObjects {
    fn bucket_name(&self) -> &str {
        self.name()
    }

    /// The objects whose key starts with `prefix` (with [`Listing::Delimited`], only those
    /// without a `/` after it), sorted; a prefix no storable key can start with (`..`, an
    /// empty segment) lists nothing.
    async fn list_versions(
        &self,
        prefix: &str,
        listing: Listing,
    ) -> Result<Vec<ObjectVersion>, StoreError> {
        // Start in the deepest directory the prefix names: `acme/photos/be` reads
        // `acme/photos` (names starting with `be`), `acme/v1/a.jpg/` reads `acme/v1/a.jpg`.
        let (dirs, first) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let start: PathBuf = match self.dir_of(dirs) {
            Ok(path) => path,
            Err(_) => return Ok(Vec::new()),
        };
        let (rel, first) = (dirs.to_string(), first.to_string());
        let deep = listing == Listing::Deep;
        blocking(move || {
            let mut out = Vec::new();
            walk(&start, &rel, Some(&first), deep, &mut out)?;
            out.sort();
            Ok(out)
        })
        .await
    }

    /// Deletes `key` (`version_id` `None` or `null`: the plain object) or its version.
    async fn delete_version(&self, key: &str, version_id: Option<&str>) -> Result<(), StoreError> {
        let version = version_id.filter(|v| *v != "null");
        let path = self.path_of(key, version)?;
        let root = self.root().to_path_buf();
        blocking(move || delete_file(&root, &path)).await
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

    async fn version(store: &FsObjects, key: &str) -> String {
        store.put_version(key, b"x".to_vec()).await.expect(key)
    }

    async fn object(store: &FsObjects, key: &str) {
        store.put(key, vec![1], &opts()).await.expect(key);
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
        let v1 = version(&store, "acme/cat.jpg").await;
        let v2 = version(&store, "acme/cat.jpg").await;
        let bak = version(&store, "acme/cat.jpg.bak").await;
        let sub = version(&store, "acme/cat.jpg/x").await;
        version(&store, "acme/dog.jpg").await;
        object(&store, "acme/v1/cat.jpg/w160.webp").await;
        std::fs::write(dir.path().join("acme").join("+tmp-1-2"), b"half").expect("tmp");

        let deep = Listing::Deep;
        let found = store
            .list_versions("acme/cat.jpg", deep)
            .await
            .expect("list");
        assert_eq!(
            keys(&found),
            vec![
                ("acme/cat.jpg", Some(v1.as_str())),
                ("acme/cat.jpg", Some(v2.as_str())),
                ("acme/cat.jpg.bak", Some(bak.as_str())),
                ("acme/cat.jpg/x", Some(sub.as_str())),
            ]
        );
        assert!(found.iter().all(|v| !v.delete_marker));
        let flat = Listing::Delimited;
        let found = store
            .list_versions("acme/cat.jpg", flat)
            .await
            .expect("list");
        assert_eq!(found.len(), 3, "the delimiter stops at the next `/`");
        let derived = store.list_versions("acme/v1/cat.jpg/", deep).await;
        assert_eq!(
            keys(&derived.expect("list")),
            vec![("acme/v1/cat.jpg/w160.webp", None)]
        );
        assert_eq!(store.list_versions("", deep).await.expect("all").len(), 6);
        assert_eq!(store.list_versions("", flat).await.expect("root").len(), 0);
        assert_eq!(
            store.list_versions("acme/c", deep).await.expect("c").len(),
            4
        );
        assert!(store
            .list_versions("zzz/", deep)
            .await
            .expect("none")
            .is_empty());
        assert!(store
            .list_versions("../", deep)
            .await
            .expect("escape")
            .is_empty());
        let file_as_dir = store
            .list_versions("acme/v1/cat.jpg/w160.webp/", flat)
            .await;
        assert!(file_as_dir.expect("nothing").is_empty());
    }

    /// The derivatives of `K` (one directory) are not those of `K/x` or `K/w640-q80.webp`.
    #[tokio::test]
    async fn a_delimited_listing_of_a_version_holds_only_that_keys_derivatives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjects::named(dir.path(), "derived").expect("root");
        for key in [
            "acme/v1/K/w640-q80.webp",
            "acme/v1/K/w320-q80.avif",
            "acme/v1/K/x/w640-q80.webp",
            "acme/v1/K/w640-q80.webp/w640-q80.webp",
        ] {
            object(&store, key).await;
        }
        let found = store
            .list_versions("acme/v1/K/", Listing::Delimited)
            .await
            .expect("list");
        assert_eq!(
            keys(&found),
            vec![
                ("acme/v1/K/w320-q80.avif", None),
                ("acme/v1/K/w640-q80.webp", None)
            ]
        );
    }

    #[tokio::test]
    async fn deleting_removes_the_file_and_the_directories_it_empties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjects::named(dir.path(), "derived").expect("root");
        let v1 = version(&store, "acme/a/cat.jpg").await;
        version(&store, "acme/keep.jpg").await;
        object(&store, "acme/v1/a/cat.jpg/w160.webp").await;

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
        let left = store.list_versions("", Listing::Deep).await.expect("list");
        assert_eq!(
            left.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(),
            vec!["acme/keep.jpg"]
        );
        assert!(dir.path().is_dir(), "the root stays");
        // A write into a directory a purge removed still lands.
        version(&store, "acme/a/new.jpg").await;
    }
}
