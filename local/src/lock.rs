//! Advisory locks on files of the data directory (`flock(2)`, released when the file is closed
//! or the process dies, so a killed process never leaves a stale lock):
//! - `{data}/dev.lock`, held by `pixelfront dev` for its lifetime: one server per data
//!   directory (two would delete each other's temporary files and race on the manifest);
//! - `{data}/tenants.lock`, held while the tenants file is read, changed and replaced, by the
//!   server and by `pixelfront tenant` alike ([`crate::tenants::update`]).
//!
//! On platforms without `flock` (non-Unix) the lock is not taken.

use std::fs::File;
use std::path::Path;

/// The data directory's lock, held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Opens (creating, mode 0600) `path` and locks it exclusively: waiting for the holder when
/// `wait`, else `Ok(None)` when another process holds it.
pub fn exclusive(path: &Path, wait: bool) -> std::io::Result<Option<File>> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        let op = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        match flock(&file, op) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(file))
}

/// Creates `dir` if needed and takes its `dev.lock`; the error names the directory when
/// another process holds it.
pub fn data_dir(dir: &Path) -> Result<DataDirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("dev.lock");
    match exclusive(&path, false) {
        Ok(Some(file)) => Ok(DataDirLock { _file: file }),
        Ok(None) => Err(format!(
            "data directory {} is in use by another pixelfront dev ({} is locked); stop it or \
             choose another --data",
            dir.display(),
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_is_locked_once() {
        let dir = tempfile::tempdir().expect("dir");
        let held = data_dir(dir.path()).expect("first");
        let again = data_dir(dir.path()).expect_err("second");
        assert!(again.contains("in use"), "{again}");
        drop(held);
        data_dir(dir.path()).expect("free again");
    }
}
