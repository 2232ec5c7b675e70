//! The metrics outbox: upload-ready batches, written one poll cycle per transaction and
//! deleted only after Foreman answered 2xx for them.

use sqlx::Row;

use super::{bump, counter, PollRecord, Store, StoreError};

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
    /// transaction. When this returns, the cycle survives a crash.
    pub async fn write_cycle(
        &self,
        cycle_ms: i64,
        batches: &[CycleBatch],
        polls: &[PollRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut samples = 0i64;
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
        let failures = polls.iter().filter(|p| p.error.is_some()).count() as i64;
        super::miners::record_polls(&mut tx, polls).await?;
        bump(&mut tx, counter::CYCLES, 1).await?;
        bump(&mut tx, counter::SAMPLES_TAKEN, samples).await?;
        bump(&mut tx, counter::POLL_FAILURES, failures).await?;
        bump(&mut tx, counter::BATCHES_WRITTEN, batches.len() as i64).await?;
        tx.commit().await?;
        Ok(())
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
            "SELECT id, cycle_ms, idempotency_key, samples, body_gz FROM outbox ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_batch))
    }

    /// Foreman accepted the batch: delete it and count it, in one transaction.
    pub async fn ack_batch(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = ? RETURNING samples")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            bump(&mut tx, counter::BATCHES_UPLOADED, 1).await?;
            bump(&mut tx, counter::SAMPLES_UPLOADED, row.get::<i64, _>(0)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(samples), 0), COALESCE(SUM(bytes), 0), MIN(cycle_ms) FROM outbox",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(Backlog {
            batches: row.get(0),
            samples: row.get(1),
            bytes: row.get(2),
            oldest_cycle_ms: row.get(3),
        })
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
