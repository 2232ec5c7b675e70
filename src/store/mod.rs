//! The SQLite state database: the metrics outbox, the assigned miner list, per-miner status,
//! the pickaxe identity and counters.
//!
//! One writer: every write goes through `writer`, a pool of exactly one connection, and opens
//! its transaction with `BEGIN IMMEDIATE` so SQLite never has to upgrade a read lock (the case
//! where its busy handler does not help). Reads (status, the uploader picking its next batch)
//! use a separate small pool; WAL lets them run beside the writer.

mod miners;
mod outbox;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Row;

pub use miners::{AssignedMiner, MinerStatusRow, PollRecord};
pub use outbox::{Backlog, CycleBatch, StoredBatch};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("state database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("state database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("state database: cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power
            // cut may roll back the last commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        // Readers set no pragmas that write (journal mode, vacuum): the writer owns those.
        let reader_options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let reader = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(reader_options)
            .await
            .map_err(open_err)?;
        Ok(Store {
            writer,
            reader,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing database read-only, for `pickaxe status` beside a running daemon.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .read_only(true);
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Store {
            writer: reader.clone(),
            reader,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pickaxe id: the configured one, else the one created on first start, else a new
    /// UUID v4 that is stored for every later start.
    pub async fn pickaxe_id(&self, configured: Option<&str>) -> Result<String, StoreError> {
        if let Some(id) = configured {
            self.set_meta("pickaxe_id", id).await?;
            return Ok(id.to_string());
        }
        if let Some(id) = self.meta("pickaxe_id").await? {
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().to_string();
        // INSERT OR IGNORE + re-read: two racing starts still agree on one id.
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('pickaxe_id', ?)")
            .bind(&id)
            .execute(&self.writer)
            .await?;
        Ok(self.meta("pickaxe_id").await?.unwrap_or(id))
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// All counters, by name.
    pub async fn counters(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT name, value FROM counters ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect())
    }

    pub async fn counter(&self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0)).unwrap_or(0))
    }

    /// Closes both pools, letting SQLite checkpoint the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Adds `by` to a counter inside an open transaction.
async fn bump(
    tx: &mut sqlx::SqliteConnection,
    name: &'static str,
    by: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    )
    .bind(name)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(())
}

/// Counter names, in one place.
pub mod counter {
    pub const CYCLES: &str = "cycles";
    pub const SAMPLES_TAKEN: &str = "samples_taken";
    pub const POLL_FAILURES: &str = "poll_failures";
    pub const BATCHES_WRITTEN: &str = "batches_written";
    pub const BATCHES_UPLOADED: &str = "batches_uploaded";
    pub const SAMPLES_UPLOADED: &str = "samples_uploaded";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pickaxe_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/pickaxe.db");
        let store = Store::open(&path).await.unwrap();
        let first = store.pickaxe_id(None).await.unwrap();
        assert!(uuid::Uuid::parse_str(&first).is_ok());
        store.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.pickaxe_id(None).await.unwrap(), first);
        let fixed = "6b3615b4-0000-4000-8000-000000000001";
        assert_eq!(store.pickaxe_id(Some(fixed)).await.unwrap(), fixed);
    }
}
