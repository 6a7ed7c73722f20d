//! The local stack's tenant policies: `{data}/tenants.json`, the same JSON object as the
//! tenants file `pixelfront tenant --aws load` reads (`tenant id → {sign, keys, referers}`,
//! `#default` for tenants without an entry). Re-read whenever the file changes, so edits apply
//! without a restart. The file counts as loaded: without a `#default` entry, a tenant without
//! an entry gets the defaults (no signing, any Referer).
//!
//! The file holds signing secrets: it is written mode 0600 through a temporary file of a unique
//! name in the same directory, flushed to disk, renamed over the old one and the directory
//! flushed ([`write_file`]); a change (the server adding a newcomer tenant, `pixelfront tenant`)
//! reads, edits and replaces it under `{data}/tenants.lock` ([`update`]), so neither loses the
//! other's edit.

use pixelfront_shared::sign::TenantPolicy;
use pixelfront_shared::store::sqlite::blocking;
use pixelfront_shared::store::{PolicyStore, StoreError};
use pixelfront_shared::tenants::{effective, Edit, DEFAULT_KEY};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often a request may look at the file's modification time: edits apply within this.
const RECHECK: Duration = Duration::from_millis(500);

/// Tenant id → policy, as stored in the file.
pub type TenantMap = BTreeMap<String, TenantPolicy>;

/// Reads `path`: absent means no tenants; malformed JSON is an error naming the file.
pub fn read_file(path: &Path) -> Result<TenantMap, String> {
    read_json(path, "a tenants file")
}

/// Reads the JSON file `path` (`what` it should be, for the error): absent means the empty
/// value; malformed JSON is an error naming the file.
pub fn read_json<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    what: &str,
) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not {what}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `map` to `path` atomically and durably: a temporary file of a unique name beside it
/// (mode 0600), fsync, rename over `path`, fsync of the directory.
pub fn write_file(path: &Path, map: &TenantMap) -> Result<(), String> {
    write_json(path, map)
}

/// Writes `value` as pretty JSON to `path` as [`write_file`] does: mode 0600 through a unique
/// temporary file, flushed, renamed over `path`, the directory flushed.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), String> {
    use std::io::Write;
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    json.push(b'\n');
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // NamedTempFile creates the file 0600 with a random name (O_EXCL), and removes it on error.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(&json).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(dir).map_err(err)
}

/// Flushes `dir`'s entries (a rename in it) to disk; a no-op where directories cannot be opened.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads the tenants file at `path`, lets `edit` change the map, and writes it back when
/// `edit` answers `Ok(true)`, all under `tenants.lock` beside the file.
pub fn update<E: From<String>>(
    path: &Path,
    edit: impl FnOnce(&mut TenantMap) -> Result<bool, E>,
) -> Result<(), E> {
    let lock_path = path.with_file_name("tenants.lock");
    let _lock = crate::lock::exclusive(&lock_path, true)
        .map_err(|e| E::from(format!("{}: {e}", lock_path.display())))?;
    let mut map = read_file(path)?;
    if edit(&mut map)? {
        write_file(path, &map)?;
    }
    Ok(())
}

/// Why a tenant edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditFailure {
    /// The edit is refused (no such tenant, a key id in use, …): the user's to fix.
    #[error("{0}")]
    Rejected(String),
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl From<String> for EditFailure {
    fn from(message: String) -> Self {
        EditFailure::Io(message)
    }
}

/// Applies `edit` to entry `key` of the tenants file at `path` under its lock; returns the
/// entry after it (`None`: removed). What `pixelfront tenant` and the console's tenant routes
/// both do.
pub fn apply_edit(
    path: &Path,
    key: &str,
    edit: &Edit,
) -> Result<Option<TenantPolicy>, EditFailure> {
    let mut after = None;
    update(path, |map| {
        let next = edit
            .apply(key, map.get(key))
            .map_err(|e| EditFailure::Rejected(e.0))?;
        match &next {
            Some(p) => map.insert(key.to_string(), p.clone()),
            None => map.remove(key),
        };
        after = next;
        Ok::<_, EditFailure>(true)
    })?;
    Ok(after)
}

#[derive(Debug, Default)]
struct Loaded {
    modified: Option<SystemTime>,
    checked: Option<Instant>,
    map: Arc<TenantMap>,
}

/// The tenants file as a [`PolicyStore`].
#[derive(Debug)]
pub struct Tenants {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl Tenants {
    /// The tenants of `path` (read on first use).
    pub fn new(path: PathBuf) -> Self {
        Tenants {
            path,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// The tenants as last read, when they were looked at less than [`RECHECK`] ago.
    fn cached(&self) -> Option<Arc<TenantMap>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .checked
            .is_some_and(|at| at.elapsed() < RECHECK)
            .then(|| loaded.map.clone())
    }

    /// The tenants, re-read when the file's modification time changed (looked at no more
    /// than every [`RECHECK`]; [`Tenants::ensure`] invalidates at once).
    fn current(&self) -> Result<Arc<TenantMap>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if loaded
            .checked
            .is_some_and(|at| now.duration_since(at) < RECHECK)
        {
            return Ok(loaded.map.clone());
        }
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if loaded.checked.is_none() || modified.is_none() || loaded.modified != modified {
            loaded.map = Arc::new(read_file(&self.path)?);
            loaded.modified = modified;
        }
        loaded.checked = Some(now);
        Ok(loaded.map.clone())
    }

    /// Adds `tenant` with the default policy (a copy of `#default`, else no signing and any
    /// Referer) when the file has no entry for it (a newcomer's first upload), so a closed
    /// default stays closed for it. Returns whether it was added.
    pub fn ensure(&self, tenant: &str) -> Result<bool, String> {
        if self.current()?.contains_key(tenant) {
            return Ok(false);
        }
        let mut added = false;
        update(&self.path, |map| {
            if map.contains_key(tenant) {
                return Ok::<_, String>(false);
            }
            let policy = map.get(DEFAULT_KEY).cloned().unwrap_or_default();
            map.insert(tenant.to_string(), policy);
            added = true;
            Ok(true)
        })?;
        self.forget();
        Ok(added)
    }

    /// The tenants file as it is now (re-read when it changed).
    pub fn map(&self) -> Result<Arc<TenantMap>, String> {
        self.current()
    }

    /// [`apply_edit`] on this file; the next request reads the edit.
    pub fn edit(&self, key: &str, edit: &Edit) -> Result<Option<TenantPolicy>, EditFailure> {
        let after = apply_edit(&self.path, key, edit);
        self.forget();
        after
    }

    /// Makes the next lookup look at the file again.
    fn forget(&self) {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .checked = None;
    }
}

impl PolicyStore for Tenants {
    async fn policy(&self, tenant: &str) -> Result<TenantPolicy, StoreError> {
        let map = match self.cached() {
            Some(map) => map,
            // A stat, perhaps a read: off the async workers.
            None => blocking(|| self.current()).map_err(StoreError::Unavailable)?,
        };
        // The tenants file counts as loaded: without a default entry, the defaults.
        let own = map.get(tenant).cloned();
        let default = map.get(DEFAULT_KEY).cloned();
        Ok(effective(own, default).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_no_temporary_file_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tenants.json");
        std::fs::write(&path, "{}").expect("old file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        update(&path, |map| {
            map.insert("shop".into(), TenantPolicy::default());
            Ok::<_, String>(true)
        })
        .expect("update");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(read_file(&path).expect("read").contains_key("shop"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn concurrent_updates_lose_no_tenant() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tenants.json");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = &path;
                s.spawn(move || {
                    update(path, |map| {
                        map.insert(format!("t{i}"), TenantPolicy::default());
                        Ok::<_, String>(true)
                    })
                    .expect("update")
                });
            }
        });
        assert_eq!(read_file(&path).expect("read").len(), 8);
    }

    #[test]
    fn a_newcomer_gets_a_copy_of_a_closed_default() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tenants.json");
        std::fs::write(&path, r##"{"#default": {"sign": true}}"##).expect("file");
        let tenants = Tenants::new(path.clone());
        assert!(tenants.ensure("newcomer").expect("ensure"));
        let map = read_file(&path).expect("read");
        assert!(map.get("newcomer").is_some_and(|p| p.sign), "{map:?}");
    }
}
