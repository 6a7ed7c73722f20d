//! Local-filesystem object store for the local stack: one directory per bucket, the object key
//! as the relative path, atomic writes (temporary file in the same directory, fsync, rename) so
//! a killed process never leaves a half-written object under a real name.
//!
//! Versioned originals live beside the key as `{key}@{version}`; the key grammar (docs/url-grammar.md)
//! excludes `@`, so the two never collide. The takedown steps list and delete them through
//! [`crate::removal::VersionedStore`] (feature `local`, `removal/fs.rs`).

use super::{Object, ObjectStore, PutOptions, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of temporary files; [`FsObjects::remove_temporaries`] deletes leftovers at start-up.
pub const TEMP_PREFIX: &str = ".tmp-";

/// An object store rooted at a directory.
#[derive(Debug)]
pub struct FsObjects {
    root: PathBuf,
    name: String,
    counter: AtomicU64,
}

impl FsObjects {
    /// A store rooted at `root` (created when missing), named after the root's last path
    /// component (`data/originals` is the bucket `originals`; `local` when there is none).
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        let name = root
            .file_name()
            .map_or_else(|| "local".to_string(), |n| n.to_string_lossy().into_owned());
        Self::named(root, &name)
    }

    /// A store rooted at `root` (created when missing) whose bucket name, as the audit
    /// records show it, is `name` (e.g. `originals`, `derived`).
    pub fn named(root: impl Into<PathBuf>, name: &str) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsObjects {
            root,
            name: name.to_string(),
            counter: AtomicU64::new(0),
        })
    }

    /// The directory this store writes under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bucket name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path of `key` (and `version`), refusing keys that could escape the root.
    pub fn path_of(&self, key: &str, version: Option<&str>) -> Result<PathBuf, StoreError> {
        let safe_segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.starts_with(TEMP_PREFIX)
                && !s.contains(['\\', '\0', '@'])
        };
        if key.split('/').any(|s| !safe_segment(s)) {
            return Err(StoreError::Denied(format!("unsafe object key {key:?}")));
        }
        let mut rel = key.to_string();
        if let Some(v) = version {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(StoreError::Denied(format!("unsafe version id {v:?}")));
            }
            rel = format!("{rel}@{v}");
        }
        Ok(self.root.join(rel))
    }

    /// Stores `body` as a new version of `key` and returns its version id (time-ordered).
    pub fn put_version(&self, key: &str, body: &[u8]) -> Result<String, StoreError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let version = format!("{nanos:032x}-{seq:x}");
        let path = self.path_of(key, Some(&version))?;
        self.write_atomic(&path, body)?;
        Ok(version)
    }

    /// Deletes leftover temporary files (from a process killed mid-write) under the root.
    /// Returns how many were removed.
    pub fn remove_temporaries(&self) -> std::io::Result<usize> {
        fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(&path, removed)?;
                } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    std::fs::remove_file(&path)?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let mut removed = 0;
        walk(&self.root, &mut removed)?;
        Ok(removed)
    }

    fn write_atomic(&self, path: &Path, body: &[u8]) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Denied(format!("no parent for {}", path.display())))?;
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TEMP_PREFIX}{}-{seq}", std::process::id()));
        let result = (|| {
            let mut f = create_in(dir, &tmp)?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

/// Creates `file` in `dir`, creating `dir` first. A purge removes directories it empties
/// (`removal/fs.rs`), so the directory can vanish between the two: tried again a few times.
fn create_in(dir: &Path, file: &Path) -> std::io::Result<std::fs::File> {
    let mut attempts = 0;
    loop {
        std::fs::create_dir_all(dir)?;
        match std::fs::File::create(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            other => return other,
        }
    }
}

/// `Content-Type` from a derivative or original name's extension.
pub fn content_type_for(key: &str) -> Option<&'static str> {
    let ext = key.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "avif" => "image/avif",
        "webp" => "image/webp",
        "jpeg" | "jpg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        _ => return None,
    })
}

impl ObjectStore for FsObjects {
    async fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, StoreError> {
        let path = self.path_of(key, version)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(StoreError::NotFound(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => return Err(StoreError::Unavailable(e.to_string())),
        };
        if meta.len() > max_bytes {
            return Err(StoreError::TooLarge {
                bytes: meta.len(),
                limit: max_bytes,
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        })?;
        Ok(Object {
            bytes,
            content_type: content_type_for(key).map(str::to_string),
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, _opts: &PutOptions) -> Result<(), StoreError> {
        let path = self.path_of(key, None)?;
        self.write_atomic(&path, &body)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key, None)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn opts() -> PutOptions {
        PutOptions {
            content_type: "image/webp".into(),
            cache_control: "public".into(),
            cache_tag: None,
            on_demand: false,
        }
    }

    #[test]
    fn put_get_roundtrip_and_versions() {
        let dir = std::env::temp_dir().join(format!("pf-fs-{}", std::process::id()));
        let store = FsObjects::new(&dir).expect("root");
        block_on(store.put("acme/v1/a/b.jpg/w320-q80.webp", vec![1, 2, 3], &opts())).expect("put");
        let got = block_on(store.get("acme/v1/a/b.jpg/w320-q80.webp", None, 10)).expect("get");
        assert_eq!(got.bytes, vec![1, 2, 3]);
        assert_eq!(got.content_type.as_deref(), Some("image/webp"));
        let too_small = block_on(store.get("acme/v1/a/b.jpg/w320-q80.webp", None, 2));
        assert!(matches!(
            too_small,
            Err(StoreError::TooLarge { bytes: 3, .. })
        ));

        let v1 = store.put_version("acme/a/b.jpg", b"one").expect("v1");
        let v2 = store.put_version("acme/a/b.jpg", b"two").expect("v2");
        assert_ne!(v1, v2);
        let one = block_on(store.get("acme/a/b.jpg", Some(&v1), 100)).expect("v1");
        assert_eq!(one.bytes, b"one");
        let missing = block_on(store.get("acme/a/b.jpg", None, 100));
        assert!(matches!(missing, Err(StoreError::NotFound(_))));
        assert_eq!(store.remove_temporaries().expect("walk"), 0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn keys_that_escape_the_root_are_refused() {
        let dir = std::env::temp_dir().join(format!("pf-fs-esc-{}", std::process::id()));
        let store = FsObjects::new(&dir).expect("root");
        for key in [
            "../etc/passwd",
            "a//b",
            "/abs",
            "a/./b",
            "a\\b",
            "a@b",
            ".tmp-x",
        ] {
            assert!(
                matches!(store.path_of(key, None), Err(StoreError::Denied(_))),
                "{key}"
            );
        }
        assert!(store.path_of("a/b", Some("../x")).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
