//! The local stack's tenant API keys: `{data}/api-keys.json`, key id → record (the tenant, the
//! SHA-256 of the key, the creation time); the keys themselves are printed once by
//! `pixelfront tenant api-key-add` and never stored. Written 0600 through a unique temporary
//! file under `{data}/api-keys.lock`, as the tenants file is ([`crate::tenants::write_json`]);
//! read on every API call, so a key removed stops working at once.

use pixelfront_shared::api::keys::{generate, ApiKeyRecord, ApiKeyStore};
use pixelfront_shared::normalize::valid_tenant;
use pixelfront_shared::pipeline::now_rfc3339;
use pixelfront_shared::store::sqlite::blocking;
use pixelfront_shared::store::StoreError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Key id → record, as stored in the file.
pub type KeyMap = BTreeMap<String, ApiKeyRecord>;

/// The file's name in the data directory.
pub const FILE: &str = "api-keys.json";

/// Reads `path`: absent means no keys; malformed JSON is an error naming the file.
pub fn read_file(path: &Path) -> Result<KeyMap, String> {
    crate::tenants::read_json(path, "an API keys file")
}

/// Reads, edits and writes back the file under its lock; `edit` answers whether to write.
fn update<T>(
    path: &Path,
    edit: impl FnOnce(&mut KeyMap) -> Result<(bool, T), String>,
) -> Result<T, String> {
    let lock_path = path.with_file_name("api-keys.lock");
    let _lock = crate::lock::exclusive(&lock_path, true)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let mut map = read_file(path)?;
    let (write, out) = edit(&mut map)?;
    if write {
        crate::tenants::write_json(path, &map)?;
    }
    Ok(out)
}

/// Makes a key for `tenant` in the data directory `data`; returns the key text (shown once)
/// and its id.
pub fn add(data: &Path, tenant: &str) -> Result<(String, String), String> {
    if !valid_tenant(tenant) {
        return Err(format!("bad tenant {tenant:?}: [a-z0-9][a-z0-9-]{{0,62}}"));
    }
    let new = generate(tenant, &now_rfc3339()).map_err(|e| e.to_string())?;
    update(&data.join(FILE), |map| {
        map.insert(new.record.kid.clone(), new.record.clone());
        Ok((true, ()))
    })?;
    Ok((new.key, new.record.kid))
}

/// Removes `tenant`'s key `kid` (its id, or the whole key); refused when `tenant` has no such key.
pub fn remove(data: &Path, tenant: &str, kid: &str) -> Result<(), String> {
    let kid = pixelfront_shared::api::keys::kid_of(kid)
        .unwrap_or(kid)
        .to_string();
    update(&data.join(FILE), |map| match map.get(&kid) {
        Some(r) if r.tenant == tenant => {
            map.remove(&kid);
            Ok((true, ()))
        }
        _ => Err(format!("{tenant} has no API key {kid:?}")),
    })
}

/// The API keys file as an [`ApiKeyStore`].
#[derive(Debug, Clone)]
pub struct ApiKeys {
    path: PathBuf,
}

impl ApiKeys {
    /// The keys of the data directory `data`.
    pub fn new(data: &Path) -> Self {
        ApiKeys {
            path: data.join(FILE),
        }
    }
}

impl ApiKeyStore for ApiKeys {
    async fn api_key(&self, kid: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let map = blocking(|| read_file(&self.path)).map_err(StoreError::Unavailable)?;
        Ok(map.get(kid).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixelfront_shared::api::keys::{kid_of, matches};

    #[test]
    fn keys_are_stored_as_hashes_and_removed_by_their_tenant_only() {
        let dir = tempfile::tempdir().unwrap();
        let (key, kid) = add(dir.path(), "acme").unwrap();
        assert_eq!(kid_of(&key), Some(kid.as_str()));
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!text.contains(&key), "the key itself is never written");
        let map = read_file(&dir.path().join(FILE)).unwrap();
        assert!(matches(&map[&kid], &key));
        assert!(remove(dir.path(), "other", &kid).is_err());
        remove(dir.path(), "acme", &key).unwrap();
        assert!(read_file(&dir.path().join(FILE)).unwrap().is_empty());
        assert!(add(dir.path(), "Bad!").is_err());
    }
}
