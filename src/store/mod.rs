//! The SQLite state database: the metrics outbox, the assigned miner list, per-miner status,
//! the pickaxe identity and counters.
//!
//! One writer: every write goes through `writer`, a pool of exactly one connection, and opens
//! its transaction with `BEGIN IMMEDIATE` so SQLite never has to upgrade a read lock (the case
//! where its busy handler does not help). Reads (status, the uploader picking its next batch)
//! use a separate small pool; WAL lets them run beside the writer.

pub mod commands;
mod miners;
mod outbox;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Row;

use crate::config::{StoreConfig, Synchronous, WhenFull};

pub use commands::{CommandCounts, CommandRow, OutboxEntry, Source};
pub use miners::{AssignedMiner, MinerStatusRow, PollRecord};
pub use outbox::{Backlog, CycleBatch, DropReason, Dropped, Drops, StoredBatch};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
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

impl StoreError {
    /// True when the file itself is damaged (as opposed to, say, a permission problem, where
    /// setting the file aside would throw good data away).
    fn is_corruption(&self) -> bool {
        fn corrupt_code(e: &sqlx::Error) -> bool {
            match e {
                sqlx::Error::Database(db) => db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    // Primary codes: SQLITE_CORRUPT 11, SQLITE_NOTADB 26.
                    .is_some_and(|c| matches!(c & 0xff, 11 | 26)),
                _ => false,
            }
        }
        match self {
            StoreError::Corrupt { .. } => true,
            StoreError::Open { source, .. } | StoreError::Sql(source) => corrupt_code(source),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => corrupt_code(e),
            _ => false,
        }
    }
}

/// Bounds and durability of the buffer.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_bytes: i64,
    pub max_age: Duration,
    pub min_free_bytes: u64,
    pub when_full: WhenFull,
    pub synchronous: Synchronous,
}

impl From<&StoreConfig> for StoreOptions {
    fn from(c: &StoreConfig) -> Self {
        StoreOptions {
            max_bytes: i64::try_from(c.max_buffer_mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX),
            max_age: c.max_age,
            min_free_bytes: c.min_free_disk_mb.saturating_mul(1 << 20),
            when_full: c.when_full,
            synchronous: c.synchronous,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::from(&StoreConfig::default())
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    options: StoreOptions,
    /// Where a corrupt database found at open was moved to.
    quarantined: Option<PathBuf>,
    /// The batch the uploader is sending right now (0 = none): the bounds never evict it, or
    /// a sample could be counted both dropped and delivered.
    in_flight: Arc<AtomicI64>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, with default bounds.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default()).await
    }

    /// Opens (creating if needed), checks and migrates the database at `path`. A corrupt file
    /// is set aside as `<name>.corrupt-<time>` and a fresh one created, so the agent never
    /// crash-loops on its own state (case C-28); `quarantined()` then says where it went.
    pub async fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        match Store::open_checked(path, options.clone()).await {
            Ok(store) => Ok(store),
            Err(e) if e.is_corruption() => {
                wait_until_closed(path).await;
                let aside = quarantine(path).map_err(|source| StoreError::Dir {
                    path: path.to_path_buf(),
                    source,
                })?;
                tracing::error!(error = %e, moved_to = %aside.display(), "State database is corrupt: set aside, starting a fresh one. Its unsent samples are lost.");
                let mut store = Store::open_checked(path, options).await?;
                sqlx::query("INSERT INTO counters (name, value) VALUES ('corrupt_resets', 1) ON CONFLICT(name) DO UPDATE SET value = value + 1")
                    .execute(&store.writer)
                    .await?;
                store
                    .set_meta("last_corrupt_file", &aside.display().to_string())
                    .await?;
                store.quarantined = Some(aside);
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }

    /// Marks the batch being uploaded (None when the upload is over).
    pub fn set_in_flight(&self, batch: Option<i64>) {
        self.in_flight.store(batch.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn quarantined(&self) -> Option<&Path> {
        self.quarantined.as_deref()
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    async fn open_checked(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
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
        let connect = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power
            // cut may roll back the last commits, never corrupt the file.
            .synchronous(match options.synchronous {
                Synchronous::Normal => SqliteSynchronous::Normal,
                Synchronous::Full => SqliteSynchronous::Full,
            })
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect)
            .await
            .map_err(open_err)?;
        let reader = match Store::check_migrate_and_read(&writer, path).await {
            Ok(reader) => reader,
            Err(e) => {
                // Closed before returning: a pool merely dropped closes its connection in
                // the background, and SQLite's last close deletes `<path>-wal` and `-shm` by
                // name, racing the quarantine that renames them (or the fresh database's).
                writer.close().await;
                return Err(e);
            }
        };
        Ok(Store {
            writer,
            reader,
            path: path.to_path_buf(),
            options,
            quarantined: None,
            in_flight: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Checks the file, brings its schema up to date and opens the read pool.
    async fn check_migrate_and_read(
        writer: &SqlitePool,
        path: &Path,
    ) -> Result<SqlitePool, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let check: String = sqlx::query_scalar("PRAGMA quick_check(1)")
            .fetch_one(writer)
            .await
            .map_err(open_err)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: check,
            });
        }
        sqlx::migrate!("./migrations").run(writer).await?;
        // Readers set no pragmas that write (journal mode, vacuum): the writer owns those.
        let reader_options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(reader_options)
            .await
            .map_err(open_err)
    }

    /// Opens an existing database read-only, for `pickaxe status` beside a running daemon.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        // Reading a WAL database needs its shared-memory file: prefer a read-write handle
        // (which may create it; we still only read), fall back to read-only for users
        // without write access to the state directory.
        let mut last_error = None;
        for read_only in [false, true] {
            let options = SqliteConnectOptions::from_str("sqlite://")
                .map_err(open_err)?
                .filename(path)
                .create_if_missing(false)
                .read_only(read_only)
                .busy_timeout(Duration::from_secs(5));
            match SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
            {
                Ok(reader) => return Ok(Store::read_side(path, reader)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(open_err(last_error.unwrap_or(sqlx::Error::PoolClosed)))
    }

    fn read_side(path: &Path, reader: SqlitePool) -> Store {
        Store {
            writer: reader.clone(),
            reader,
            path: path.to_path_buf(),
            options: StoreOptions::default(),
            quarantined: None,
            in_flight: Arc::new(AtomicI64::new(0)),
        }
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

/// Moves the database file and its WAL/SHM companions aside as `<name>.corrupt-<time>`.
fn quarantine(path: &Path) -> std::io::Result<PathBuf> {
    // Behind a symlink SQLite keeps the file and its WAL where the link leads: that is what
    // goes aside, and the link then gives the fresh database the same volume.
    let path = &resolved(path);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    // rename() silently replaces: never over an earlier one set aside in the same second.
    let taken = |p: &Path| {
        FILE_SET
            .iter()
            .any(|s| with_suffix(p, s).symlink_metadata().is_ok())
    };
    let mut aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while taken(&aside) {
        n += 1;
        aside = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", path.display()));
    }
    std::fs::rename(path, &aside)?;
    for suffix in &FILE_SET[1..] {
        match std::fs::rename(with_suffix(path, suffix), with_suffix(&aside, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(aside)
}

/// A database's files: itself, and its WAL and shared memory beside it.
const FILE_SET: [&str; 3] = ["", "-wal", "-shm"];

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// The path with every symlink resolved (as SQLite does), or as given if that fails.
fn resolved(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// A connection that failed while opening is closed by sqlx on its worker thread, a little
/// later, and SQLite's last close deletes `<path>-wal` and `-shm` by name: moving the files
/// aside (or creating the fresh database's) before then would race it. Waits until no file
/// descriptor of this process points at them any more (Linux /proc), at most 5 s.
async fn wait_until_closed(path: &Path) {
    // /proc/self/fd shows resolved paths.
    let base = resolved(path);
    let watched: Vec<PathBuf> = FILE_SET.iter().map(|s| with_suffix(&base, s)).collect();
    let still_open = || {
        std::fs::read_dir("/proc/self/fd").is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| watched.contains(&target))
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while still_open() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
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
    /// What waits in the outbox, kept exact by every transaction that touches it.
    pub const OUTBOX_BATCHES: &str = "outbox_batches";
    pub const OUTBOX_SAMPLES: &str = "outbox_samples";
    pub const OUTBOX_BYTES: &str = "outbox_bytes";
    pub const DEAD_LETTER_SAMPLES: &str = "dead_letter_samples";
    pub const DEAD_LETTER_BATCHES: &str = "dead_letter_batches";
    pub const CORRUPT_RESETS: &str = "corrupt_resets";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_corrupt_database_is_set_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pickaxe.db");
        let store = Store::open(&path).await.unwrap();
        store.set_meta("pickaxe_id", "keep-me").await.unwrap();
        store.close().await;
        // Overwrite bytes 100..4096 (the schema page), as a hard reset might (case C-28).
        let mut bytes = std::fs::read(&path).unwrap();
        for b in bytes.iter_mut().take(4096).skip(100) {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();

        let store = Store::open(&path).await.unwrap();
        let aside = store.quarantined().expect("set aside").to_path_buf();
        assert!(aside.exists());
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            bytes,
            "the damaged file is kept as it was"
        );
        assert_eq!(store.counter(counter::CORRUPT_RESETS).await.unwrap(), 1);
        assert_eq!(store.meta("pickaxe_id").await.unwrap(), None);
        // The fresh database works.
        store.write_cycle(1, &[], &[]).await.unwrap();
    }

    #[tokio::test]
    async fn a_truncated_database_is_set_aside_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pickaxe.db");
        Store::open(&path).await.unwrap().close().await;
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2 + 7]).unwrap();
        let store = Store::open(&path).await.unwrap();
        assert!(store.quarantined().is_some());
    }

    #[test]
    fn a_second_quarantine_in_the_same_second_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pickaxe.db");
        std::fs::write(&path, b"first").unwrap();
        std::fs::write(dir.path().join("pickaxe.db-wal"), b"first wal").unwrap();
        let first = quarantine(&path).unwrap();
        std::fs::write(&path, b"second").unwrap();
        let second = quarantine(&path).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"first");
        assert_eq!(std::fs::read(&second).unwrap(), b"second");
        let wal = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
        assert_eq!(std::fs::read(wal(&first)).unwrap(), b"first wal");
        assert!(
            !wal(&second).exists(),
            "no WAL of another file beside the second"
        );
    }

    #[tokio::test]
    async fn a_corrupt_database_behind_a_symlink_is_set_aside_where_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let real = data.join("pickaxe.db");
        let link = dir.path().join("pickaxe.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        Store::open(&link).await.unwrap().close().await;
        let bytes = std::fs::read(&real).unwrap();
        std::fs::write(&real, &bytes[..bytes.len() / 2 + 7]).unwrap();

        let store = Store::open(&link).await.unwrap();
        let aside = store.quarantined().expect("set aside").to_path_buf();
        assert!(aside.starts_with(&data), "{}", aside.display());
        assert!(!aside.is_symlink(), "the damaged file itself is kept");
        assert!(
            link.is_symlink(),
            "the configured link still leads to the data volume"
        );
        store.write_cycle(1, &[], &[]).await.unwrap();
        assert!(real.exists());
    }

    #[tokio::test]
    async fn a_permission_problem_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/x/pickaxe.db");
        std::fs::write(dir.path().join("missing-dir"), b"a file, not a directory").unwrap();
        assert!(Store::open(&path).await.is_err());
    }

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
