//! SQLite adapter of the manifest port (feature `local`), for the local stack: one database
//! file, durable across restarts and power loss (WAL journal, `synchronous=FULL`: a commit is
//! on disk before the call returns), every operation one transaction.
//!
//! SQLite blocks (a commit waits for fsync; a read waits for the connection while another
//! call commits), so every call runs through [`blocking`]: the async worker that makes it
//! hands its other tasks to another thread first, and `/healthz` or a cache hit never waits
//! behind a commit.
//!
//! Tables: `assets` (asset id → latest version), `sources` ((asset, source identity) →
//! version: a repeated upload event never gets a second version) and `versions` ((asset,
//! version) → the [`VersionRecord`] as JSON). The same file holds the takedown and erasure
//! audit ([`crate::removal::AuditStore`], `removal/sqlite.rs`). The transition rules are the
//! port types' own ([`VersionRecord::check_ready_allowed`], [`Status::failure_allowed`]), as in
//! every adapter.

use super::manifest::*;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs blocking `f` (SQLite, a file) from async code without holding up the runtime: on a
/// multi-threaded tokio runtime through `block_in_place` (the calling worker's other tasks move
/// to another thread while `f` runs; unlike `spawn_blocking`, `f` may borrow); on a
/// current-thread runtime or outside any runtime, `f` runs as is.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assets (
  asset  TEXT PRIMARY KEY,
  latest INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
  asset    TEXT NOT NULL,
  identity TEXT NOT NULL,
  version  INTEGER NOT NULL,
  PRIMARY KEY (asset, identity)
);
CREATE TABLE IF NOT EXISTS versions (
  asset   TEXT NOT NULL,
  version INTEGER NOT NULL,
  status  TEXT NOT NULL,
  record  TEXT NOT NULL,
  PRIMARY KEY (asset, version)
);
CREATE INDEX IF NOT EXISTS versions_status ON versions (status);
";

/// The manifest in a SQLite database file.
#[derive(Debug)]
pub struct SqliteManifest {
    conn: Mutex<Connection>,
}

fn unavailable(e: rusqlite::Error) -> ManifestError {
    ManifestError::Unavailable(format!("sqlite: {e}"))
}

fn malformed(e: serde_json::Error) -> ManifestError {
    ManifestError::Malformed(format!("sqlite version record: {e}"))
}

impl SqliteManifest {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteManifest, ManifestError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        Self::init(conn)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteManifest, ManifestError> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(conn: Connection) -> Result<SqliteManifest, ManifestError> {
        // WAL: readers never wait for the writer, and a commit survives a killed process.
        // FULL: the WAL is fsynced at every commit, so an acknowledged upload, render status
        // or audit row survives power loss too (NORMAL could lose the last commits; the cost
        // is in BENCHMARKS.md, "Upload throughput and durability").
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        conn.execute_batch(crate::removal::sqlite::SCHEMA)
            .map_err(unavailable)?;
        Ok(SqliteManifest {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one transaction, committed when it returns `Ok` (`err` maps SQLite's
    /// errors into the caller's).
    pub(crate) fn transaction<T, E>(
        &self,
        err: impl Fn(rusqlite::Error) -> E,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        blocking(|| {
            let mut conn = self.lock();
            let tx = conn.transaction().map_err(&err)?;
            let out = f(&tx)?;
            tx.commit().map_err(err)?;
            Ok(out)
        })
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ManifestError>,
    ) -> Result<T, ManifestError> {
        self.transaction(unavailable, f)
    }

    /// The JSON column of every row `sql` selects with the one parameter `param`, parsed.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        param: &str,
    ) -> Result<Vec<T>, ManifestError> {
        blocking(|| {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![param], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_str(&row.map_err(unavailable)?).map_err(malformed)?);
            }
            Ok(out)
        })
    }

    /// Every version in `status` (e.g. `rendering` left behind by a killed process), oldest
    /// first.
    pub fn with_status(&self, status: Status) -> Result<Vec<VersionRecord>, ManifestError> {
        self.records(
            "SELECT record FROM versions WHERE status = ?1 ORDER BY rowid",
            status.as_str(),
        )
    }
}

fn read_version(
    tx: &Connection,
    asset: &str,
    version: u32,
) -> Result<Option<VersionRecord>, ManifestError> {
    // The hot read of every on-demand request: the statement is prepared once per connection.
    let json: Option<String> = tx
        .prepare_cached("SELECT record FROM versions WHERE asset = ?1 AND version = ?2")
        .and_then(|mut stmt| stmt.query_row(params![asset, version], |r| r.get(0)))
        .optional()
        .map_err(unavailable)?;
    json.map(|j| serde_json::from_str(&j).map_err(malformed))
        .transpose()
}

fn put_version(tx: &Connection, rec: &VersionRecord) -> Result<(), ManifestError> {
    let json = serde_json::to_string(rec).map_err(malformed)?;
    tx.execute(
        "INSERT INTO versions (asset, version, status, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (asset, version) DO UPDATE SET status = excluded.status, record = excluded.record",
        params![rec.asset.id(), rec.version, rec.status.as_str(), json],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn existing(
    tx: &Connection,
    asset: &AssetId,
    version: u32,
) -> Result<VersionRecord, ManifestError> {
    read_version(tx, &asset.id(), version)?
        .ok_or_else(|| ManifestError::Missing(format!("{asset} v{version}")))
}

impl ManifestStore for SqliteManifest {
    async fn assign(
        &self,
        asset: &AssetId,
        source: &SourceRef,
        now: &str,
    ) -> Result<Assignment, ManifestError> {
        let id = asset.id();
        let identity = source.identity();
        self.write(|tx| {
            let known: Option<u32> = tx
                .query_row(
                    "SELECT version FROM sources WHERE asset = ?1 AND identity = ?2",
                    params![id, identity],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            if let Some(n) = known {
                return Ok(Assignment {
                    record: existing(tx, asset, n)?,
                    created: false,
                });
            }
            let latest: Option<u32> = tx
                .query_row(
                    "SELECT latest FROM assets WHERE asset = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let n = latest.unwrap_or(0) + 1;
            let record = VersionRecord::new(asset, n, source, now);
            tx.execute(
                "INSERT INTO assets (asset, latest) VALUES (?1, ?2)
                 ON CONFLICT (asset) DO UPDATE SET latest = excluded.latest",
                params![id, n],
            )
            .map_err(unavailable)?;
            tx.execute(
                "INSERT INTO sources (asset, identity, version) VALUES (?1, ?2, ?3)",
                params![id, identity, n],
            )
            .map_err(unavailable)?;
            put_version(tx, &record)?;
            Ok(Assignment {
                record,
                created: true,
            })
        })
    }

    async fn get(
        &self,
        asset: &AssetId,
        version: u32,
    ) -> Result<Option<VersionRecord>, ManifestError> {
        blocking(|| read_version(&self.lock(), &asset.id(), version))
    }

    async fn latest(&self, asset: &AssetId) -> Result<Option<u32>, ManifestError> {
        blocking(|| {
            self.lock()
                .query_row(
                    "SELECT latest FROM assets WHERE asset = ?1",
                    params![asset.id()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
        })
    }

    async fn mark_ready(
        &self,
        asset: &AssetId,
        version: u32,
        original: &OriginalInfo,
        variants: &[VariantRecord],
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        self.write(|tx| {
            let mut rec = existing(tx, asset, version)?;
            rec.make_ready(original, variants, now)?;
            put_version(tx, &rec)?;
            Ok(rec)
        })
    }

    async fn mark_failed(
        &self,
        asset: &AssetId,
        version: u32,
        error_type: &str,
        reason: &str,
        now: &str,
    ) -> Result<VersionRecord, ManifestError> {
        self.write(|tx| {
            let mut rec = existing(tx, asset, version)?;
            if rec.make_failed(error_type, reason, now) {
                put_version(tx, &rec)?;
            }
            Ok(rec)
        })
    }

    async fn mark_removed(
        &self,
        asset: &AssetId,
        status: Status,
        now: &str,
    ) -> Result<Vec<VersionRecord>, ManifestError> {
        // Read and rewrite in one transaction: no version can slip in between.
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached("SELECT record FROM versions WHERE asset = ?1 ORDER BY version")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![asset.id()], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut before: Vec<VersionRecord> = Vec::new();
            for row in rows {
                before.push(serde_json::from_str(&row.map_err(unavailable)?).map_err(malformed)?);
            }
            for rec in &before {
                let mut rec = rec.clone();
                rec.make_removed(status, now);
                put_version(tx, &rec)?;
            }
            Ok(before)
        })
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<ScanPage, ManifestError> {
        // The cursor is the last rowid returned: stable while rows are added or updated.
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| ManifestError::Malformed(format!("scan cursor {c:?}")))?,
        };
        let limit = limit.clamp(1, 1000) as i64;
        blocking(|| self.scan_page(after, limit))
    }

    async fn list_assets(
        &self,
        tenant: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AssetPage, ManifestError> {
        let limit = limit.clamp(1, 1000);
        blocking(|| self.list_page(tenant, prefix, after, limit))
    }
}

impl SqliteManifest {
    /// One page of [`ManifestStore::list_assets`] from the `assets` table's primary key. Keys
    /// are of `[A-Za-z0-9._~/-]`, all below U+007F, so `{prefix}\u{7f}` bounds the range.
    fn list_page(
        &self,
        tenant: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AssetPage, ManifestError> {
        let low = format!("{tenant}/{prefix}");
        let high = format!("{low}\u{7f}");
        let after = after.map_or_else(String::new, |a| format!("{tenant}/{a}"));
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT a.asset, a.latest, v.status FROM assets a \
                 JOIN versions v ON v.asset = a.asset AND v.version = a.latest \
                 WHERE a.asset >= ?1 AND a.asset < ?2 AND a.asset > ?3 \
                 ORDER BY a.asset LIMIT ?4",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(params![low, high, after, limit as i64 + 1], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(unavailable)?;
        let mut page = AssetPage::default();
        for row in rows {
            let (asset, version, status) = row.map_err(unavailable)?;
            if page.assets.len() == limit {
                page.last_key = page.assets.last().map(|a| a.key.clone());
                break;
            }
            let key = asset
                .strip_prefix(&format!("{tenant}/"))
                .ok_or_else(|| ManifestError::Malformed(format!("asset {asset:?}")))?
                .to_string();
            let status = Status::parse(&status)
                .ok_or_else(|| ManifestError::Malformed(format!("status {status:?}")))?;
            page.assets.push(AssetSummary {
                key,
                version,
                status,
            });
        }
        Ok(page)
    }

    /// Up to `limit` records after rowid `after` (see [`ManifestStore::scan`]).
    fn scan_page(&self, after: i64, limit: i64) -> Result<ScanPage, ManifestError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, record FROM versions WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(params![after, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(unavailable)?;
        let mut page = ScanPage::default();
        let mut last = after;
        for row in rows {
            let (rowid, json) = row.map_err(unavailable)?;
            page.records
                .push(serde_json::from_str(&json).map_err(malformed)?);
            last = rowid;
        }
        if page.records.len() as i64 == limit {
            page.cursor = Some(last.to_string());
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> AssetId {
        AssetId {
            tenant: "acme".into(),
            key: "a/b.jpg".into(),
        }
    }

    fn source(v: &str) -> SourceRef {
        SourceRef {
            bucket: "local".into(),
            key: "acme/a/b.jpg".into(),
            version_id: Some(v.into()),
            etag: Some("e".into()),
            size: 10,
        }
    }

    fn info() -> OriginalInfo {
        OriginalInfo {
            width: 4,
            height: 3,
            format: "jpeg".into(),
        }
    }

    #[tokio::test]
    async fn versions_are_sequential_and_a_repeated_source_keeps_its_version() {
        let m = SqliteManifest::in_memory().expect("db");
        let a = m.assign(&asset(), &source("s1"), "t0").await.expect("a1");
        assert_eq!((a.record.version, a.created), (1, true));
        let b = m.assign(&asset(), &source("s2"), "t1").await.expect("a2");
        assert_eq!((b.record.version, b.created), (2, true));
        let again = m
            .assign(&asset(), &source("s1"), "t2")
            .await
            .expect("again");
        assert_eq!((again.record.version, again.created), (1, false));
        assert_eq!(m.latest(&asset()).await.expect("latest"), Some(2));
        assert_eq!(m.get(&asset(), 3).await.expect("get"), None);
    }

    #[tokio::test]
    async fn transitions_follow_the_port_rules() {
        let m = SqliteManifest::in_memory().expect("db");
        m.assign(&asset(), &source("s1"), "t0")
            .await
            .expect("assign");
        let ready = m
            .mark_ready(&asset(), 1, &info(), &[], "t1")
            .await
            .expect("ready");
        assert_eq!(ready.status, Status::Ready);
        // A late failure of a duplicate run never downgrades `ready`.
        let still = m
            .mark_failed(&asset(), 1, "StoreUnavailable", "x", "t2")
            .await;
        assert_eq!(still.expect("failed").status, Status::Ready);
        let gone = m
            .mark_removed(&asset(), Status::TakenDown, "t3")
            .await
            .expect("remove");
        assert_eq!(gone.len(), 1);
        let refused = m.mark_ready(&asset(), 1, &info(), &[], "t4").await;
        assert!(
            matches!(refused, Err(ManifestError::WrongStatus { .. })),
            "{refused:?}"
        );
        assert!(matches!(
            m.mark_ready(&asset(), 9, &info(), &[], "t5").await,
            Err(ManifestError::Missing(_))
        ));
    }

    #[test]
    fn commits_are_synced_to_disk() {
        let dir = tempfile::tempdir().expect("dir");
        let m = SqliteManifest::open(&dir.path().join("manifest.db")).expect("open");
        let level: i64 = m
            .lock()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma");
        assert_eq!(level, 2, "synchronous=FULL");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_call_does_not_hold_up_the_other_tasks() {
        use std::time::{Duration, Instant};
        // One worker: without `blocking` the ticker could not run while the slow call blocks.
        let t0 = Instant::now();
        let slow =
            tokio::spawn(async { blocking(|| std::thread::sleep(Duration::from_millis(400))) });
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t0.elapsed()
        });
        let waited = ticker.await.expect("ticker");
        slow.await.expect("slow");
        assert!(waited < Duration::from_millis(300), "{waited:?}");
        // Elsewhere it simply runs.
        assert_eq!(blocking(|| 7), 7);
    }

    #[tokio::test]
    async fn the_manifest_survives_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("pf-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("manifest.db");
        let _ = std::fs::remove_file(&path);
        {
            let m = SqliteManifest::open(&path).expect("open");
            m.assign(&asset(), &source("s1"), "t0")
                .await
                .expect("assign");
            m.assign(&asset(), &source("s2"), "t1")
                .await
                .expect("assign");
            m.mark_failed(&asset(), 2, "ImageCorrupt", "bad", "t2")
                .await
                .expect("fail");
        }
        let m = SqliteManifest::open(&path).expect("reopen");
        assert_eq!(m.latest(&asset()).await.expect("latest"), Some(2));
        let rec = m.get(&asset(), 2).await.expect("get").expect("v2");
        assert_eq!(
            (rec.status, rec.error_type.as_deref()),
            (Status::Failed, Some("ImageCorrupt"))
        );
        let rendering = m.with_status(Status::Rendering).expect("query");
        assert_eq!(
            rendering.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![1]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
