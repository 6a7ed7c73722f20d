//! Local-filesystem object store for the local stack: one directory per bucket, durable atomic
//! writes (temporary file in the same directory, fsync, rename, fsync of the directory) so a
//! killed process or a power loss never leaves a half-written object under a real name, and an
//! acknowledged write or deletion stays done.
//!
//! Layout (docs/local-stack.md#data-directory): every key segment but the last is a directory;
//! the last becomes a file named `{segment}@{version}` (a versioned original) or `{segment}@`
//! (a plain object, e.g. a derivative). Key segments never contain `@` (docs/url-grammar.md),
//! so a file name always has one and a directory name never does: the keys `K`, `K/x` and
//! `K/w640-q80.webp` (and the derivatives `{tenant}/v1/K/w640-q80.webp` and
//! `{tenant}/v1/K/w640-q80.webp/w320-q80.webp`) coexist. Names starting with `+` are the
//! store's own (temporary files, the layout marker); no key segment starts with `+`.
//!
//! A root written by an older release (plain objects stored under their bare key) is migrated
//! when opened: each such file gets its `@`, then the marker [`LAYOUT_MARKER`] records the
//! layout. The takedown steps list and delete objects through
//! [`crate::removal::VersionedStore`] (feature `local`, `removal/fs.rs`).
//!
//! The async methods run their file-system calls on Tokio's blocking pool, never on the async
//! workers.

use super::{Object, ObjectStore, PutOptions, StoreError};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of temporary files; [`FsObjects::remove_temporaries`] deletes leftovers at start-up.
pub const TEMP_PREFIX: &str = "+tmp-";

/// Prefix of the temporary files of the older layout (removed at start-up too).
const LEGACY_TEMP_PREFIX: &str = ".tmp-";

/// The file in a store's root naming its layout ([`LAYOUT`]).
pub const LAYOUT_MARKER: &str = "+layout";

/// The layout this release writes: `2`, files `{segment}@{version}` and `{segment}@`.
pub const LAYOUT: &str = "2";

/// Separates a key's last segment from its version in a file name.
pub const VERSION_MARK: char = '@';

/// An object store rooted at a directory.
#[derive(Debug)]
pub struct FsObjects {
    root: PathBuf,
    name: String,
    counter: AtomicU64,
}

/// The key segment and version of a file name: `cat.jpg@V1` is (`cat.jpg`, `Some("V1")`),
/// `w160.webp@` is (`w160.webp`, `None`); a name without `@` (a temporary file, the marker)
/// is no object.
pub fn parse_file_name(name: &str) -> Option<(&str, Option<&str>)> {
    if name.starts_with('+') {
        return None;
    }
    let (segment, version) = name.rsplit_once(VERSION_MARK)?;
    if segment.is_empty() {
        return None;
    }
    Some((segment, (!version.is_empty()).then_some(version)))
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

/// Syncs directory `dir`, so that an entry created, renamed or removed in it survives a
/// power loss.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, syncing the parent of each directory created.
/// A purge removes directories it empties (`removal/fs.rs`), so one can vanish meanwhile:
/// creating it again is tried a few times.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match create_durably(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 3 => attempts += 1,
            other => return other,
        }
    }
}

fn create_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent();
    if let Some(p) = parent {
        create_durably(p)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => parent.map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `body` to `path` through the temporary file `tmp` beside it: write, fsync, rename,
/// fsync of the directory. `tmp` is removed when anything fails.
fn write_atomic(path: &Path, tmp: &Path, body: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Denied(format!("no parent for {}", path.display())))?;
    let result = (|| {
        let mut attempts = 0;
        let mut f = loop {
            ensure_dir(dir)?;
            match std::fs::File::create(tmp) {
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 3 => attempts += 1,
                other => break other?,
            }
        };
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result.map_err(|e| io_err(path, e))
}

/// Runs blocking file-system work `f` on Tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("file-system task: {e}")))?
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
    /// records show it, is `name` (e.g. `originals`, `derived`). A root in the older layout
    /// is migrated first ([`migrate`]); a root in a layout this release does not know is
    /// refused.
    pub fn named(root: impl Into<PathBuf>, name: &str) -> std::io::Result<Self> {
        let root = root.into();
        ensure_dir(&root)?;
        let moved = migrate(&root)?;
        if moved > 0 {
            tracing::info!(root = %root.display(), moved, "object store migrated to layout {LAYOUT}");
        }
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

    /// The path of the directory holding key prefix `dirs` (whole segments, e.g.
    /// `acme/v1/photos/a.jpg`; empty for the root), refusing segments that could escape the
    /// root or name the store's own files.
    pub fn dir_of(&self, dirs: &str) -> Result<PathBuf, StoreError> {
        if dirs.is_empty() {
            return Ok(self.root.clone());
        }
        if dirs.split('/').any(|s| !safe_segment(s)) {
            return Err(StoreError::Denied(format!("unsafe object key {dirs:?}")));
        }
        Ok(self.root.join(dirs))
    }

    /// The path of `key` (and `version`): `{key}@{version}`, or `{key}@` for a plain object.
    pub fn path_of(&self, key: &str, version: Option<&str>) -> Result<PathBuf, StoreError> {
        if key.split('/').any(|s| !safe_segment(s)) {
            return Err(StoreError::Denied(format!("unsafe object key {key:?}")));
        }
        let v = version.unwrap_or("");
        if version.is_some()
            && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(StoreError::Denied(format!("unsafe version id {v:?}")));
        }
        Ok(self.root.join(format!("{key}{VERSION_MARK}{v}")))
    }

    /// A fresh temporary file name beside `path`.
    fn temp_for(&self, path: &Path) -> PathBuf {
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{seq}", std::process::id());
        path.parent().unwrap_or(&self.root).join(name)
    }

    /// Stores `body` as a new version of `key` and returns its version id (time-ordered),
    /// once it is durable.
    pub async fn put_version(&self, key: &str, body: Vec<u8>) -> Result<String, StoreError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let version = format!("{nanos:032x}-{seq:x}");
        let path = self.path_of(key, Some(&version))?;
        let tmp = self.temp_for(&path);
        blocking(move || write_atomic(&path, &tmp, &body)).await?;
        Ok(version)
    }

    /// Deletes leftover temporary files (from a process killed mid-write) under the root.
    /// Returns how many were removed.
    pub fn remove_temporaries(&self) -> std::io::Result<usize> {
        fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type()?.is_dir() {
                    walk(&path, removed)?;
                } else if is_temporary(&name) {
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
}

/// Whether `s` may be a path segment: not empty, `.` or `..`, no `\`, NUL or `@`, and not
/// starting with `+` (the store's own names).
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('+')
        && !s.contains(['\\', '\0', VERSION_MARK])
}

/// A temporary file of an unfinished write (this layout's or the older one's).
fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
        || (name.starts_with(LEGACY_TEMP_PREFIX) && !name.contains(VERSION_MARK))
}

/// Brings `root` to layout [`LAYOUT`]: every plain object of the older layout (a file whose
/// name has no `@`, not a temporary file) is renamed `{name}@`, each directory synced, then
/// the marker is written. Returns how many files moved; a root already marked costs one read.
/// A marker naming another layout is an error that says what to do.
pub fn migrate(root: &Path) -> std::io::Result<usize> {
    let marker = root.join(LAYOUT_MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(s) if s.trim() == LAYOUT => return Ok(0),
        Ok(s) => {
            return Err(std::io::Error::other(format!(
                "{}: object layout {:?}, this release reads layout {LAYOUT}: run the release \
                 that wrote it, or start with an empty data directory",
                root.display(),
                s.trim()
            )))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fn walk(dir: &Path, moved: &mut usize) -> std::io::Result<()> {
        let mut changed = false;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&path, moved)?;
            } else if kind.is_file()
                && !name.contains(VERSION_MARK)
                && !name.starts_with('+')
                && !is_temporary(&name)
            {
                std::fs::rename(&path, dir.join(format!("{name}{VERSION_MARK}")))?;
                *moved += 1;
                changed = true;
            }
        }
        if changed {
            sync_dir(dir)?;
        }
        Ok(())
    }
    let mut moved = 0;
    walk(root, &mut moved)?;
    let tmp = root.join(format!("{TEMP_PREFIX}layout-{}", std::process::id()));
    write_atomic(&marker, &tmp, format!("{LAYOUT}\n").as_bytes())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(moved)
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

/// Reads `path` as the object `key`, refusing one over `max_bytes` before reading it.
fn read_object(path: &Path, key: &str, max_bytes: u64) -> Result<Object, StoreError> {
    let not_found = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    };
    let meta = std::fs::metadata(path).map_err(not_found)?;
    if !meta.is_file() {
        return Err(StoreError::NotFound(key.to_string()));
    }
    if meta.len() > max_bytes {
        return Err(StoreError::TooLarge {
            bytes: meta.len(),
            limit: max_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(not_found)?;
    Ok(Object {
        bytes,
        content_type: content_type_for(key).map(str::to_string),
    })
}

/// Removes the file `path` and syncs its directory; a file already gone is no error.
pub(crate) fn remove_durably(path: &Path) -> Result<bool, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(path, e)),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(|e| io_err(dir, e))?;
    }
    Ok(true)
}

impl ObjectStore for FsObjects {
    async fn get(
        &self,
        key: &str,
        version: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, StoreError> {
        let path = self.path_of(key, version)?;
        let key = key.to_string();
        blocking(move || read_object(&path, &key, max_bytes)).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, _opts: &PutOptions) -> Result<(), StoreError> {
        let path = self.path_of(key, None)?;
        let tmp = self.temp_for(&path);
        blocking(move || write_atomic(&path, &tmp, &body)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key, None)?;
        blocking(move || remove_durably(&path).map(|_| ())).await
    }
}

#[cfg(test)]
mod tests;
