//! The local stack's audit store (feature `local`): [`AuditStore`] on the manifest's SQLite
//! file, one transaction per call, with the semantics of [`super::memory::MemoryAudit`].
//!
//! Tables: `removal_records` (one row per asset and request: the [`AuditRecord`] without its
//! deletions; version numbers and invalidation ids as JSON arrays), `removal_deleted` (one row
//! per deleted object version, in the order recorded; a repeated one is kept once) and
//! `removal_requests` (the [`Summary`] of each finished request, as JSON) and `removal_claims`
//! (what each request id removes: [`AuditStore::claim`], its primary key makes the first claim
//! stand). Every write commits with `synchronous=FULL`: an audit row or claim acknowledged is
//! on disk (the WAL is synced at each commit), whatever the rest of the file uses.

use super::{AuditRecord, AuditStore, Deleted, RemovalError, Summary, Target};
use crate::store::sqlite::SqliteManifest;
use crate::store::{AssetId, Status};
use rusqlite::{params, OptionalExtension, Transaction};

/// The audit tables, created with the manifest's.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS removal_records (
  asset            TEXT NOT NULL,
  request_id       TEXT NOT NULL,
  tenant           TEXT NOT NULL,
  asset_key        TEXT NOT NULL,
  action           TEXT NOT NULL,
  reason           TEXT NOT NULL,
  requester        TEXT NOT NULL,
  status           TEXT NOT NULL,
  versions         TEXT NOT NULL,
  started_at       TEXT NOT NULL,
  finished_at      TEXT,
  invalidation_ids TEXT NOT NULL,
  PRIMARY KEY (asset, request_id)
);
CREATE TABLE IF NOT EXISTS removal_deleted (
  seq           INTEGER PRIMARY KEY,
  asset         TEXT NOT NULL,
  request_id    TEXT NOT NULL,
  target        TEXT NOT NULL,
  bucket        TEXT NOT NULL,
  object_key    TEXT NOT NULL,
  versioned     INTEGER NOT NULL,
  version_id    TEXT NOT NULL,
  delete_marker INTEGER NOT NULL,
  UNIQUE (asset, request_id, target, bucket, object_key, versioned, version_id, delete_marker)
);
CREATE TABLE IF NOT EXISTS removal_requests (
  request_id  TEXT PRIMARY KEY,
  finished_at TEXT NOT NULL,
  summary     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS removal_claims (
  request_id  TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL
);
";

fn unavailable(e: rusqlite::Error) -> RemovalError {
    RemovalError::Audit(format!("sqlite: {e}"))
}

fn malformed(what: &str, e: impl std::fmt::Display) -> RemovalError {
    RemovalError::Audit(format!("sqlite audit {what}: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, RemovalError> {
    serde_json::to_string(v).map_err(|e| malformed("encoding", e))
}

/// The `target` column of a [`Target`].
fn target_name(t: Target) -> &'static str {
    match t {
        Target::Originals => "originals",
        Target::Replica => "replica",
        Target::Derived => "derived",
    }
}

/// Whether the asset's record of `request_id` exists.
fn is_open(tx: &Transaction<'_>, asset: &str, request_id: &str) -> Result<bool, RemovalError> {
    tx.query_row(
        "SELECT 1 FROM removal_records WHERE asset = ?1 AND request_id = ?2",
        params![asset, request_id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(unavailable)
}

/// The deletions recorded for the asset's record of `request_id`, into `record`.
fn read_deleted(
    tx: &Transaction<'_>,
    asset: &str,
    record: &mut AuditRecord,
) -> Result<(), RemovalError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT target, bucket, object_key, versioned, version_id, delete_marker
             FROM removal_deleted WHERE asset = ?1 AND request_id = ?2 ORDER BY seq",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![asset, record.request_id], |r| {
            let versioned: bool = r.get(3)?;
            let version_id: String = r.get(4)?;
            Ok((
                r.get::<_, String>(0)?,
                Deleted {
                    bucket: r.get(1)?,
                    key: r.get(2)?,
                    version_id: versioned.then_some(version_id),
                    delete_marker: r.get(5)?,
                },
            ))
        })
        .map_err(unavailable)?;
    for row in rows {
        let (target, deleted) = row.map_err(unavailable)?;
        let list = match target.as_str() {
            "originals" => &mut record.deleted_originals,
            "replica" => &mut record.deleted_replica,
            "derived" => &mut record.deleted_derivatives,
            other => return Err(malformed("target", other)),
        };
        list.push(deleted);
    }
    Ok(())
}

impl AuditStore for SqliteManifest {
    async fn claim(&self, request_id: &str, fingerprint: &str) -> Result<String, RemovalError> {
        self.transaction(unavailable, |tx| {
            tx.execute(
                "INSERT INTO removal_claims (request_id, fingerprint) VALUES (?1, ?2)
                 ON CONFLICT (request_id) DO NOTHING",
                params![request_id, fingerprint],
            )
            .map_err(unavailable)?;
            tx.query_row(
                "SELECT fingerprint FROM removal_claims WHERE request_id = ?1",
                params![request_id],
                |r| r.get(0),
            )
            .map_err(unavailable)
        })
    }

    async fn finished(&self, request_id: &str) -> Result<Option<Summary>, RemovalError> {
        let stored: Option<String> = self.transaction(unavailable, |tx| {
            tx.query_row(
                "SELECT summary FROM removal_requests WHERE request_id = ?1",
                params![request_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)
        })?;
        stored
            .map(|s| serde_json::from_str(&s).map_err(|e| malformed("summary", e)))
            .transpose()
    }

    async fn open(&self, r: &AuditRecord) -> Result<(), RemovalError> {
        let asset = format!("{}/{}", r.tenant, r.key);
        let versions = json(&r.versions)?;
        let ids = json(&r.invalidation_ids)?;
        self.transaction(unavailable, |tx| {
            // An existing record (a retried `begin`) is kept as it is.
            let inserted = tx
                .execute(
                    "INSERT INTO removal_records (asset, request_id, tenant, asset_key, action,
                   reason, requester, status, versions, started_at, finished_at, invalidation_ids)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (asset, request_id) DO NOTHING",
                    params![
                        asset,
                        r.request_id,
                        r.tenant,
                        r.key,
                        r.action,
                        r.reason,
                        r.requester,
                        r.status,
                        versions,
                        r.started_at,
                        r.finished_at,
                        ids
                    ],
                )
                .map_err(unavailable)?;
            if inserted == 0 {
                return Ok(());
            }
            for (target, list) in [
                (Target::Originals, &r.deleted_originals),
                (Target::Replica, &r.deleted_replica),
                (Target::Derived, &r.deleted_derivatives),
            ] {
                insert_deleted(tx, &asset, &r.request_id, target, list)?;
            }
            Ok(())
        })
    }

    async fn append_deleted(
        &self,
        asset: &AssetId,
        request_id: &str,
        target: Target,
        deleted: &[Deleted],
    ) -> Result<(), RemovalError> {
        let id = asset.id();
        self.transaction(unavailable, |tx| {
            if !is_open(tx, &id, request_id)? {
                return Err(RemovalError::Audit(format!("no open record for {asset}")));
            }
            insert_deleted(tx, &id, request_id, target, deleted)
        })
    }

    async fn close(
        &self,
        asset: &AssetId,
        request_id: &str,
        status: Status,
        finished_at: &str,
        invalidation_ids: &[String],
    ) -> Result<(), RemovalError> {
        let ids = json(&invalidation_ids)?;
        let changed = self.transaction(unavailable, |tx| {
            tx.execute(
                "UPDATE removal_records SET status = ?3, finished_at = ?4, invalidation_ids = ?5
                 WHERE asset = ?1 AND request_id = ?2",
                params![asset.id(), request_id, status.as_str(), finished_at, ids],
            )
            .map_err(unavailable)
        })?;
        if changed == 0 {
            return Err(RemovalError::Audit(format!("no open record for {asset}")));
        }
        Ok(())
    }

    async fn put_finished(&self, summary: &Summary) -> Result<Summary, RemovalError> {
        let encoded = json(summary)?;
        let stored: String = self.transaction(unavailable, |tx| {
            tx.execute(
                "INSERT INTO removal_requests (request_id, finished_at, summary)
                 VALUES (?1, ?2, ?3) ON CONFLICT (request_id) DO NOTHING",
                params![summary.request_id, summary.finished_at, encoded],
            )
            .map_err(unavailable)?;
            tx.query_row(
                "SELECT summary FROM removal_requests WHERE request_id = ?1",
                params![summary.request_id],
                |r| r.get(0),
            )
            .map_err(unavailable)
        })?;
        serde_json::from_str(&stored).map_err(|e| malformed("summary", e))
    }

    async fn records(&self, asset: &AssetId) -> Result<Vec<AuditRecord>, RemovalError> {
        let id = asset.id();
        self.transaction(unavailable, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT request_id, tenant, asset_key, action, reason, requester, status,
                       versions, started_at, finished_at, invalidation_ids
                     FROM removal_records WHERE asset = ?1 ORDER BY started_at, rowid",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![id], |r| {
                    Ok((
                        AuditRecord {
                            request_id: r.get(0)?,
                            tenant: r.get(1)?,
                            key: r.get(2)?,
                            action: r.get(3)?,
                            reason: r.get(4)?,
                            requester: r.get(5)?,
                            status: r.get(6)?,
                            started_at: r.get(8)?,
                            finished_at: r.get(9)?,
                            ..AuditRecord::default()
                        },
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(10)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut record, versions, ids) = row.map_err(unavailable)?;
                record.versions =
                    serde_json::from_str(&versions).map_err(|e| malformed("versions", e))?;
                record.invalidation_ids =
                    serde_json::from_str(&ids).map_err(|e| malformed("invalidation ids", e))?;
                out.push(record);
            }
            drop(stmt);
            for record in &mut out {
                read_deleted(tx, &id, record)?;
            }
            Ok(out)
        })
    }
}

/// Records `deleted` under `target` for the asset's record of `request_id`, skipping those
/// already recorded.
fn insert_deleted(
    tx: &Transaction<'_>,
    asset: &str,
    request_id: &str,
    target: Target,
    deleted: &[Deleted],
) -> Result<(), RemovalError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO removal_deleted (asset, request_id, target, bucket, object_key,
               versioned, version_id, delete_marker)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        )
        .map_err(unavailable)?;
    for d in deleted {
        stmt.execute(params![
            asset,
            request_id,
            target_name(target),
            d.bucket,
            d.key,
            d.version_id.is_some(),
            d.version_id.as_deref().unwrap_or(""),
            d.delete_marker
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::removal::{Action, Reason};

    fn asset() -> AssetId {
        AssetId {
            tenant: "acme".into(),
            key: "a/b.jpg".into(),
        }
    }

    fn record(request_id: &str, started_at: &str) -> AuditRecord {
        AuditRecord {
            request_id: request_id.into(),
            action: "takedown".into(),
            reason: "dmca".into(),
            requester: "legal@example.com".into(),
            tenant: "acme".into(),
            key: "a/b.jpg".into(),
            status: "in_progress".into(),
            versions: vec![1, 2],
            started_at: started_at.into(),
            ..AuditRecord::default()
        }
    }

    fn deleted(key: &str, version: Option<&str>, marker: bool) -> Deleted {
        Deleted {
            bucket: "originals".into(),
            key: key.into(),
            version_id: version.map(str::to_string),
            delete_marker: marker,
        }
    }

    fn summary(request_id: &str, finished_at: &str) -> Summary {
        Summary {
            request_id: request_id.into(),
            action: Action::Takedown,
            reason: Reason::Dmca,
            requester: "legal@example.com".into(),
            assets: vec!["acme/a/b.jpg".into()],
            deleted: 3,
            invalidation_ids: vec!["I0".into()],
            started_at: "t0".into(),
            finished_at: finished_at.into(),
        }
    }

    #[tokio::test]
    async fn records_follow_the_memory_audit_semantics() {
        let m = SqliteManifest::in_memory().expect("db");
        let a = asset();
        let orphan = m
            .append_deleted(&a, "R1", Target::Originals, &[deleted("k", None, false)])
            .await;
        assert!(matches!(orphan, Err(RemovalError::Audit(_))), "{orphan:?}");
        assert!(m
            .close(&a, "R1", Status::TakenDown, "t9", &[])
            .await
            .is_err());

        m.open(&record("R2", "t5")).await.expect("open");
        m.open(&record("R1", "t1")).await.expect("open");
        // Opening again keeps the record as it is.
        let mut changed = record("R1", "t2");
        changed.requester = "someone else".into();
        m.open(&changed).await.expect("reopen");

        let originals = [
            deleted("acme/a/b.jpg", Some("V1"), false),
            deleted("acme/a/b.jpg", Some("DM3"), true),
        ];
        let derivative = deleted("acme/v1/a/b.jpg/w160.webp", None, false);
        m.append_deleted(&a, "R1", Target::Originals, &originals)
            .await
            .expect("append");
        // A retried purge records the same deletions again: kept once, in the first order.
        m.append_deleted(&a, "R1", Target::Originals, &originals[1..])
            .await
            .expect("append again");
        for _ in 0..2 {
            m.append_deleted(&a, "R1", Target::Derived, std::slice::from_ref(&derivative))
                .await
                .expect("derived");
        }
        m.close(
            &a,
            "R1",
            Status::TakenDown,
            "t3",
            &["I0".into(), "I1".into()],
        )
        .await
        .expect("close");

        let records = m.records(&a).await.expect("records");
        assert_eq!(
            records
                .iter()
                .map(|r| r.request_id.as_str())
                .collect::<Vec<_>>(),
            vec!["R1", "R2"],
            "oldest first"
        );
        let want = AuditRecord {
            status: "taken_down".into(),
            finished_at: Some("t3".into()),
            deleted_originals: originals.to_vec(),
            deleted_derivatives: vec![derivative],
            invalidation_ids: vec!["I0".into(), "I1".into()],
            ..record("R1", "t1")
        };
        assert_eq!(records[0], want);
        assert_eq!(records[1], record("R2", "t5"));
        let other = AssetId {
            tenant: "acme".into(),
            key: "a/b.jpg.bak".into(),
        };
        assert!(m.records(&other).await.expect("none").is_empty());
    }

    #[tokio::test]
    async fn the_first_summary_stands_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.db");
        {
            let m = SqliteManifest::open(&path).expect("open");
            assert_eq!(m.finished("R1").await.expect("none"), None);
            let first = m.put_finished(&summary("R1", "t1")).await.expect("put");
            assert_eq!(first, summary("R1", "t1"));
            let again = m.put_finished(&summary("R1", "t2")).await.expect("again");
            assert_eq!(again, summary("R1", "t1"), "the stored one comes back");
            m.open(&record("R1", "t0")).await.expect("open");
        }
        let m = SqliteManifest::open(&path).expect("reopen");
        assert_eq!(
            m.finished("R1").await.expect("read"),
            Some(summary("R1", "t1"))
        );
        assert_eq!(m.records(&asset()).await.expect("records").len(), 1);
    }
}
