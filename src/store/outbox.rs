//! The metrics outbox: upload-ready batches, written one poll cycle per transaction and
//! deleted only after Foreman answered 2xx for them.

use sqlx::Row;

use super::{bump, counter, PollRecord, Store, StoreError};
use crate::config::WhenFull;

/// Why the buffer dropped samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    MaxAge,
    MaxBytes,
    DiskLow,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MaxAge => "max_age",
            DropReason::MaxBytes => "max_bytes",
            DropReason::DiskLow => "disk_low",
        }
    }
    pub fn samples_counter(self) -> &'static str {
        match self {
            DropReason::MaxAge => "dropped_samples_max_age",
            DropReason::MaxBytes => "dropped_samples_max_bytes",
            DropReason::DiskLow => "dropped_samples_disk_low",
        }
    }
    pub fn batches_counter(self) -> &'static str {
        match self {
            DropReason::MaxAge => "dropped_batches_max_age",
            DropReason::MaxBytes => "dropped_batches_max_bytes",
            DropReason::DiskLow => "dropped_batches_disk_low",
        }
    }
    pub const ALL: [DropReason; 3] = [
        DropReason::MaxAge,
        DropReason::MaxBytes,
        DropReason::DiskLow,
    ];
}

/// Samples and batches dropped under one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub batches: i64,
    pub samples: i64,
    /// Bytes removed from the outbox (0 for new cycles refused before they were stored).
    pub bytes: i64,
}

/// What one `write_cycle` dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops(std::collections::BTreeMap<DropReason, Dropped>);

impl Drops {
    fn record(&mut self, reason: DropReason, batches: i64, samples: i64, bytes: i64) {
        let d = self.0.entry(reason).or_default();
        d.batches += batches;
        d.samples += samples;
        d.bytes += bytes;
    }
    /// Records deleted rows (samples, bytes); returns the bytes freed.
    fn add(&mut self, reason: DropReason, rows: &[sqlx::sqlite::SqliteRow]) -> i64 {
        let samples: i64 = rows.iter().map(|r| r.get::<i64, _>(0)).sum();
        let bytes: i64 = rows.iter().map(|r| r.get::<i64, _>(1)).sum();
        if !rows.is_empty() {
            self.record(reason, rows.len() as i64, samples, bytes);
        }
        bytes
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn by_reason(&self) -> impl Iterator<Item = (DropReason, Dropped)> + '_ {
        self.0.iter().map(|(r, d)| (*r, *d))
    }
    pub fn samples(&self) -> i64 {
        self.0.values().map(|d| d.samples).sum()
    }
    fn bytes(&self) -> i64 {
        self.0.values().map(|d| d.bytes).sum()
    }
    /// Samples and batches removed from the outbox (not counting refused new ones).
    fn samples_evicted(&self) -> i64 {
        self.0
            .values()
            .filter(|d| d.bytes > 0)
            .map(|d| d.samples)
            .sum()
    }
    fn batches_evicted(&self) -> i64 {
        self.0
            .values()
            .filter(|d| d.bytes > 0)
            .map(|d| d.batches)
            .sum()
    }
}

async fn read_counter(tx: &mut sqlx::SqliteConnection, name: &str) -> Result<i64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE name = ?")
        .bind(name)
        .fetch_optional(tx)
        .await?;
    Ok(v.unwrap_or(0))
}

/// One batch of a poll cycle, ready to store.
#[derive(Debug, Clone)]
pub struct CycleBatch {
    pub idempotency_key: String,
    pub samples: u32,
    /// gzip of the JSON metrics body.
    pub body_gz: Vec<u8>,
}

/// A batch read back for upload.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub id: i64,
    pub cycle_ms: i64,
    pub idempotency_key: String,
    pub samples: i64,
    pub body_gz: Vec<u8>,
}

/// What waits in the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub batches: i64,
    pub samples: i64,
    pub bytes: i64,
    pub oldest_cycle_ms: Option<i64>,
}

impl Store {
    /// Stores one poll cycle: its batches, each miner's status and the counters, in one
    /// transaction, and enforces the buffer's bounds (age, bytes, free disk) in the same
    /// transaction. When this returns, the cycle survives a crash. Returns what the bounds
    /// dropped, by reason.
    pub async fn write_cycle(
        &self,
        cycle_ms: i64,
        batches: &[CycleBatch],
        polls: &[PollRecord],
    ) -> Result<Drops, StoreError> {
        let opts = &self.options;
        let mut drops = Drops::default();
        let new_bytes: i64 = batches.iter().map(|b| b.body_gz.len() as i64).sum();
        let disk_short = self.disk_shortfall();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;

        let cutoff = cycle_ms - i64::try_from(opts.max_age.as_millis()).unwrap_or(i64::MAX);
        let in_flight = self.in_flight.load(std::sync::atomic::Ordering::Relaxed);
        let aged = sqlx::query(
            "DELETE FROM outbox WHERE cycle_ms < ? AND id != ? RETURNING samples, bytes",
        )
        .bind(cutoff)
        .bind(in_flight)
        .fetch_all(&mut *tx)
        .await?;
        drops.add(DropReason::MaxAge, &aged);

        let stored_bytes = read_counter(&mut tx, counter::OUTBOX_BYTES).await? - drops.bytes();
        let over_bytes = stored_bytes + new_bytes > opts.max_bytes;
        let refuse_new = opts.when_full == WhenFull::DropNewest && (over_bytes || disk_short > 0);
        let mut samples = 0i64;
        if refuse_new {
            let reason = if over_bytes {
                DropReason::MaxBytes
            } else {
                DropReason::DiskLow
            };
            let dropped: i64 = batches.iter().map(|b| i64::from(b.samples)).sum();
            drops.record(reason, batches.len() as i64, dropped, 0);
        } else {
            for batch in batches {
                sqlx::query(
                    "INSERT INTO outbox (cycle_ms, idempotency_key, samples, bytes, body_gz) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(cycle_ms)
                .bind(&batch.idempotency_key)
                .bind(i64::from(batch.samples))
                .bind(batch.body_gz.len() as i64)
                .bind(&batch.body_gz)
                .execute(&mut *tx)
                .await?;
                samples += i64::from(batch.samples);
            }
            // Drop the oldest batches until the buffer fits (never the cycle just written:
            // a single cycle larger than the bound still gets its chance to upload).
            let mut excess = (stored_bytes + new_bytes - opts.max_bytes).max(0);
            let mut reason = DropReason::MaxBytes;
            if excess == 0 && disk_short > 0 {
                excess = i64::try_from(disk_short).unwrap_or(i64::MAX);
                reason = DropReason::DiskLow;
            }
            while excess > 0 {
                let oldest = sqlx::query(
                    "DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE cycle_ms < ? AND id != ? ORDER BY cycle_ms, id LIMIT 1) RETURNING samples, bytes",
                )
                .bind(cycle_ms)
                .bind(in_flight)
                .fetch_all(&mut *tx)
                .await?;
                if oldest.is_empty() {
                    break;
                }
                excess -= drops.add(reason, &oldest);
            }
        }

        let failures = polls.iter().filter(|p| p.error.is_some()).count() as i64;
        super::miners::record_polls(&mut tx, polls).await?;
        let kept_batches = if refuse_new { 0 } else { batches.len() as i64 };
        let kept_bytes = if refuse_new { 0 } else { new_bytes };
        bump(&mut tx, counter::CYCLES, 1).await?;
        bump(
            &mut tx,
            counter::SAMPLES_TAKEN,
            batches.iter().map(|b| i64::from(b.samples)).sum(),
        )
        .await?;
        bump(&mut tx, counter::POLL_FAILURES, failures).await?;
        bump(&mut tx, counter::BATCHES_WRITTEN, kept_batches).await?;
        bump(
            &mut tx,
            counter::OUTBOX_BATCHES,
            kept_batches - drops.batches_evicted(),
        )
        .await?;
        bump(
            &mut tx,
            counter::OUTBOX_SAMPLES,
            samples - drops.samples_evicted(),
        )
        .await?;
        bump(&mut tx, counter::OUTBOX_BYTES, kept_bytes - drops.bytes()).await?;
        for (reason, d) in drops.by_reason() {
            bump(&mut tx, reason.samples_counter(), d.samples).await?;
            bump(&mut tx, reason.batches_counter(), d.batches).await?;
        }
        tx.commit().await?;
        if drops.bytes() > 0 {
            // Hand the freed pages back to the file system, or a full disk stays full.
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(&self.writer)
                .await?;
        }
        Ok(drops)
    }

    /// Bytes missing to keep `min_free_bytes` free on the database's file system.
    fn disk_shortfall(&self) -> u64 {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        match nix::sys::statvfs::statvfs(dir) {
            Ok(fs) => {
                let free = fs.blocks_available().saturating_mul(fs.fragment_size());
                self.options.min_free_bytes.saturating_sub(free)
            }
            Err(_) => 0,
        }
    }

    /// The next batch to upload: one of the live cycle's when there is one (live data first),
    /// else the oldest waiting.
    pub async fn next_batch(
        &self,
        live_cycle_ms: Option<i64>,
    ) -> Result<Option<StoredBatch>, StoreError> {
        if let Some(live) = live_cycle_ms {
            let row = sqlx::query(
                "SELECT id, cycle_ms, idempotency_key, samples, body_gz FROM outbox WHERE cycle_ms = ? ORDER BY id LIMIT 1",
            )
            .bind(live)
            .fetch_optional(&self.reader)
            .await?;
            if let Some(row) = row {
                return Ok(Some(stored_batch(&row)));
            }
        }
        let row = sqlx::query(
            "SELECT id, cycle_ms, idempotency_key, samples, body_gz FROM outbox ORDER BY cycle_ms, id LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_batch))
    }

    /// Foreman accepted the batch: delete it and count it, in one transaction.
    pub async fn ack_batch(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = ? RETURNING samples, bytes")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let samples: i64 = row.get(0);
            bump(&mut tx, counter::BATCHES_UPLOADED, 1).await?;
            bump(&mut tx, counter::SAMPLES_UPLOADED, samples).await?;
            bump(&mut tx, counter::OUTBOX_BATCHES, -1).await?;
            bump(&mut tx, counter::OUTBOX_SAMPLES, -samples).await?;
            bump(&mut tx, counter::OUTBOX_BYTES, -row.get::<i64, _>(1)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What waits in the outbox, from the running totals (no table scan).
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(cycle_ms) FROM outbox")
            .fetch_one(&self.reader)
            .await?;
        Ok(Backlog {
            batches: self.counter(counter::OUTBOX_BATCHES).await?,
            samples: self.counter(counter::OUTBOX_SAMPLES).await?,
            bytes: self.counter(counter::OUTBOX_BYTES).await?,
            oldest_cycle_ms: oldest,
        })
    }

    /// Foreman refused the batch for good (a 4xx other than auth/413): keep it aside with the
    /// server's message instead of retrying it forever or deleting it silently.
    pub async fn dead_letter(&self, id: i64, status: u16, message: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = ? RETURNING cycle_ms, idempotency_key, samples, bytes, body_gz")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let samples: i64 = row.get(2);
            sqlx::query("INSERT INTO dead_letter (cycle_ms, idempotency_key, samples, status, message, at_ms, body_gz) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(row.get::<i64, _>(0))
                .bind(row.get::<String, _>(1))
                .bind(samples)
                .bind(i64::from(status))
                .bind(message)
                .bind(chrono::Utc::now().timestamp_millis())
                .bind(row.get::<Vec<u8>, _>(4))
                .execute(&mut *tx)
                .await?;
            bump(&mut tx, counter::DEAD_LETTER_BATCHES, 1).await?;
            bump(&mut tx, counter::DEAD_LETTER_SAMPLES, samples).await?;
            bump(&mut tx, counter::OUTBOX_BATCHES, -1).await?;
            bump(&mut tx, counter::OUTBOX_SAMPLES, -samples).await?;
            bump(&mut tx, counter::OUTBOX_BYTES, -row.get::<i64, _>(3)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a batch by smaller ones of the same cycle (after a 413), in one transaction.
    /// They keep the cycle's place in the queue (ordered by cycle, then id).
    pub async fn split_batch(&self, id: i64, parts: &[CycleBatch]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = ? RETURNING cycle_ms, samples, bytes")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(());
        };
        let cycle_ms: i64 = row.get(0);
        let (mut samples, mut bytes) = (-row.get::<i64, _>(1), -row.get::<i64, _>(2));
        for part in parts {
            sqlx::query(
                "INSERT INTO outbox (cycle_ms, idempotency_key, samples, bytes, body_gz) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(cycle_ms)
            .bind(&part.idempotency_key)
            .bind(i64::from(part.samples))
            .bind(part.body_gz.len() as i64)
            .bind(&part.body_gz)
            .execute(&mut *tx)
            .await?;
            samples += i64::from(part.samples);
            bytes += part.body_gz.len() as i64;
        }
        bump(&mut tx, counter::OUTBOX_BATCHES, parts.len() as i64 - 1).await?;
        bump(&mut tx, counter::OUTBOX_SAMPLES, samples).await?;
        bump(&mut tx, counter::OUTBOX_BYTES, bytes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Truncates the WAL after a drain, so it does not keep the size of the largest burst.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

fn stored_batch(row: &sqlx::sqlite::SqliteRow) -> StoredBatch {
    StoredBatch {
        id: row.get(0),
        cycle_ms: row.get(1),
        idempotency_key: row.get(2),
        samples: row.get(3),
        body_gz: row.get(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &str, samples: u32) -> CycleBatch {
        CycleBatch {
            idempotency_key: key.into(),
            samples,
            body_gz: vec![1, 2, 3],
        }
    }

    fn sized(key: &str, samples: u32, bytes: usize) -> CycleBatch {
        CycleBatch {
            idempotency_key: key.into(),
            samples,
            body_gz: vec![7; bytes],
        }
    }

    async fn store_with(dir: &tempfile::TempDir, max_bytes: i64, when_full: WhenFull) -> Store {
        let options = super::super::StoreOptions {
            max_bytes,
            when_full,
            min_free_bytes: 0,
            ..Default::default()
        };
        Store::open_with(&dir.path().join("p.db"), options)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_oldest_and_counts_every_drop() {
        let dir = tempfile::tempdir().unwrap();
        // Room for 10 batches of 1,000 bytes (case C-26: 12,500 produced, cap 10,000).
        let store = store_with(&dir, 10_000, WhenFull::DropOldest).await;
        for cycle in 0..25 {
            let b = [
                sized(&format!("k{cycle}a"), 250, 1_000),
                sized(&format!("k{cycle}b"), 250, 1_000),
            ];
            store.write_cycle(cycle * 1_000, &b, &[]).await.unwrap();
        }
        let backlog = store.backlog().await.unwrap();
        assert_eq!(backlog.samples, 2_500, "{backlog:?}");
        assert_eq!(backlog.bytes, 10_000);
        assert_eq!(
            store.counter("dropped_samples_max_bytes").await.unwrap(),
            10_000
        );
        assert_eq!(
            store.counter("dropped_batches_max_bytes").await.unwrap(),
            40
        );
        // What is left is the newest: cycles 20..24.
        assert_eq!(backlog.oldest_cycle_ms, Some(20_000));
        let taken = store.counter(counter::SAMPLES_TAKEN).await.unwrap();
        assert_eq!(taken, 12_500);
    }

    #[tokio::test]
    async fn drop_newest_keeps_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&dir, 3_000, WhenFull::DropNewest).await;
        for cycle in 0..5 {
            let drops = store
                .write_cycle(cycle, &[sized(&format!("k{cycle}"), 10, 1_000)], &[])
                .await
                .unwrap();
            assert_eq!(drops.samples(), if cycle < 3 { 0 } else { 10 });
        }
        let backlog = store.backlog().await.unwrap();
        assert_eq!(
            (backlog.batches, backlog.samples, backlog.oldest_cycle_ms),
            (3, 30, Some(0))
        );
        assert_eq!(
            store.counter("dropped_samples_max_bytes").await.unwrap(),
            20
        );
    }

    #[tokio::test]
    async fn samples_older_than_max_age_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let options = super::super::StoreOptions {
            max_age: std::time::Duration::from_secs(10),
            min_free_bytes: 0,
            ..Default::default()
        };
        let store = Store::open_with(&dir.path().join("p.db"), options)
            .await
            .unwrap();
        store
            .write_cycle(0, &[sized("old", 5, 10)], &[])
            .await
            .unwrap();
        store
            .write_cycle(5_000, &[sized("mid", 5, 10)], &[])
            .await
            .unwrap();
        let drops = store
            .write_cycle(12_000, &[sized("new", 5, 10)], &[])
            .await
            .unwrap();
        assert_eq!(drops.samples(), 5);
        assert_eq!(store.counter("dropped_samples_max_age").await.unwrap(), 5);
        assert_eq!(store.backlog().await.unwrap().samples, 10);
    }

    #[tokio::test]
    async fn split_and_dead_letter_keep_the_totals_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        store
            .write_cycle(1, &[sized("big", 10, 100)], &[])
            .await
            .unwrap();
        store
            .write_cycle(2, &[sized("next", 3, 10)], &[])
            .await
            .unwrap();
        let big = store.next_batch(None).await.unwrap().unwrap();
        store
            .split_batch(big.id, &[sized("big.1", 5, 50), sized("big.2", 5, 50)])
            .await
            .unwrap();
        // The halves keep the cycle's place ahead of newer cycles.
        let first = store.next_batch(None).await.unwrap().unwrap();
        assert_eq!(
            (first.idempotency_key.as_str(), first.cycle_ms),
            ("big.1", 1)
        );
        store
            .dead_letter(first.id, 400, "bad sample")
            .await
            .unwrap();
        let backlog = store.backlog().await.unwrap();
        assert_eq!(
            (backlog.batches, backlog.samples, backlog.bytes),
            (2, 8, 60)
        );
        assert_eq!(
            store.counter(counter::DEAD_LETTER_SAMPLES).await.unwrap(),
            5
        );
    }

    #[tokio::test]
    async fn live_first_then_oldest_and_ack_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        store
            .write_cycle(1_000, &[batch("a", 2), batch("b", 3)], &[])
            .await
            .unwrap();
        store
            .write_cycle(2_000, &[batch("c", 4)], &[])
            .await
            .unwrap();
        store
            .write_cycle(3_000, &[batch("d", 1)], &[])
            .await
            .unwrap();

        let live = store.next_batch(Some(3_000)).await.unwrap().unwrap();
        assert_eq!(live.idempotency_key, "d");
        store.ack_batch(live.id).await.unwrap();
        // Live cycle done: the backlog drains oldest first.
        let next = store.next_batch(Some(3_000)).await.unwrap().unwrap();
        assert_eq!(next.idempotency_key, "a");
        assert_eq!(next.cycle_ms, 1_000);

        let backlog = store.backlog().await.unwrap();
        assert_eq!(backlog.batches, 3);
        assert_eq!(backlog.samples, 9);
        assert_eq!(backlog.oldest_cycle_ms, Some(1_000));
        assert_eq!(store.counter(counter::SAMPLES_TAKEN).await.unwrap(), 10);
        assert_eq!(store.counter(counter::SAMPLES_UPLOADED).await.unwrap(), 1);
        // Acking twice (a retried ack after a crash) counts once.
        store.ack_batch(live.id).await.unwrap();
        assert_eq!(store.counter(counter::BATCHES_UPLOADED).await.unwrap(), 1);
    }
}
