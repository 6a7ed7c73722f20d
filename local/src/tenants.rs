//! The local stack's tenant policies: `{data}/tenants.json`, the same JSON object as the
//! tenants file the AWS load files are generated from (`tenant id → {sign, keys, referers}`).
//! Re-read whenever the file changes, so edits apply without a restart; a tenant without an
//! entry gets the defaults (no signing, any Referer), as at the edge.

use pixelfront_shared::sign::TenantPolicy;
use pixelfront_shared::store::{PolicyStore, StoreError};
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
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a tenants file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TenantMap::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `map` to `path` atomically (temporary file, then rename).
pub fn write_file(path: &Path, map: &TenantMap) -> Result<(), String> {
    let mut json = serde_json::to_vec_pretty(map).map_err(|e| e.to_string())?;
    json.push(b'\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, &json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
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

    /// Adds `tenant` with the default policy when the file has no entry for it (a newcomer's
    /// first upload). Returns whether it was added.
    pub fn ensure(&self, tenant: &str) -> Result<bool, String> {
        if self.current()?.contains_key(tenant) {
            return Ok(false);
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = read_file(&self.path)?;
        if map.contains_key(tenant) {
            return Ok(false);
        }
        map.insert(tenant.to_string(), TenantPolicy::default());
        write_file(&self.path, &map)?;
        loaded.checked = None;
        Ok(true)
    }
}

impl PolicyStore for Tenants {
    async fn policy(&self, tenant: &str) -> Result<TenantPolicy, StoreError> {
        let map = self.current().map_err(StoreError::Unavailable)?;
        Ok(map.get(tenant).cloned().unwrap_or_default())
    }
}
