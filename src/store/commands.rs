//! The command log and the command-results outbox (C-21).
//!
//! A command id is inserted before anything is sent to a miner, and an id already present is
//! never executed again. A command moves `received` -> `executing` (committed before the
//! first byte goes to the miner) -> `done`; after a restart an `executing` command is only
//! verified, never re-sent. Its start / update / done messages wait in `command_outbox`,
//! written in the same transaction as the state change they report, until Foreman's 2xx.

use sqlx::Row;

use super::{Store, StoreError};

/// States of a command, as stored.
pub mod state {
    pub const RECEIVED: &str = "received";
    pub const EXECUTING: &str = "executing";
    pub const DONE: &str = "done";
}

/// Where a command came from; its results go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Foreman,
    Mqtt,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Foreman => "foreman",
            Source::Mqtt => "mqtt",
        }
    }
}

/// A command as kept in the log.
#[derive(Debug, Clone)]
pub struct CommandRow {
    pub id: String,
    pub command: String,
    pub args: serde_json::Value,
    pub state: String,
    pub miner: Option<String>,
    pub received_ms: i64,
    pub executing_ms: Option<i64>,
    pub baseline: Option<serde_json::Value>,
    pub source: Source,
}

/// One start / update / done waiting for Foreman.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub seq: i64,
    pub command_id: String,
    /// `start`, `update` or `done`.
    pub kind: String,
    pub body: serde_json::Value,
    pub created_ms: i64,
}

/// Counts for `pickaxe status`.
#[derive(Debug, Clone, Default)]
pub struct CommandCounts {
    pub received: i64,
    pub executing: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub results_waiting: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn row_to_command(r: &sqlx::sqlite::SqliteRow) -> CommandRow {
    let args: String = r.get("args_json");
    let baseline: Option<String> = r.get("baseline");
    CommandRow {
        id: r.get("id"),
        command: r.get("command"),
        args: serde_json::from_str(&args).unwrap_or(serde_json::Value::Null),
        state: r.get("state"),
        miner: r.get("miner"),
        received_ms: r.get("received_ms"),
        executing_ms: r.get("executing_ms"),
        baseline: baseline.and_then(|b| serde_json::from_str(&b).ok()),
        source: if r.get::<String, _>("source") == "mqtt" {
            Source::Mqtt
        } else {
            Source::Foreman
        },
    }
}

async fn enqueue(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    kind: &str,
    body: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    // The result goes back the way the command came.
    sqlx::query(
        "INSERT INTO command_outbox (command_id, kind, body, created_ms, channel)
         VALUES (?, ?, ?, ?, COALESCE((SELECT source FROM commands WHERE id = ?), 'foreman'))",
    )
    .bind(id)
    .bind(kind)
    .bind(body.to_string())
    .bind(now_ms())
    .bind(id)
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records a command and queues its start, in one transaction. Returns false (and
    /// changes nothing) when the id is already known: it must not run again.
    pub async fn record_command(
        &self,
        id: &str,
        command: &str,
        args: &serde_json::Value,
        miner: Option<&str>,
        start: &serde_json::Value,
        source: Source,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO commands (id, command, args_json, state, miner, received_ms, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(command)
        .bind(args.to_string())
        .bind(state::RECEIVED)
        .bind(miner)
        .bind(now_ms())
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            enqueue(&mut tx, id, "start", start).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Commits that the action is about to be sent, with what verification compares against.
    /// After this, the command is never sent again.
    pub async fn mark_executing(
        &self,
        id: &str,
        baseline: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE commands SET state = ?, executing_ms = ?, baseline = ? WHERE id = ?")
            .bind(state::EXECUTING)
            .bind(now_ms())
            .bind(baseline.to_string())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records that the miner took the action at `sent_ms` and queues the "sent" update,
    /// in one transaction.
    pub async fn record_sent(
        &self,
        id: &str,
        sent_ms: i64,
        update: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE commands SET sent_ms = ? WHERE id = ?")
            .bind(sent_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        enqueue(&mut tx, id, "update", update).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues a progress update.
    pub async fn queue_update(&self, id: &str, body: &serde_json::Value) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        enqueue(&mut tx, id, "update", body).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the command done and queues its done message, in one transaction. A command
    /// already done keeps its first result.
    pub async fn finish_command(
        &self,
        id: &str,
        success: bool,
        message: Option<&str>,
        done: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let changed = sqlx::query(
            "UPDATE commands SET state = ?, done_ms = ?, status = ?, message = ? WHERE id = ? AND state != ?",
        )
        .bind(state::DONE)
        .bind(now_ms())
        .bind(if success { "success" } else { "failed" })
        .bind(message)
        .bind(id)
        .bind(state::DONE)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            enqueue(&mut tx, id, "done", done).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the log has a command with this id.
    pub async fn command_recorded(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM commands WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    /// Commands not done yet (received or executing), oldest first: resumed at start.
    pub async fn unfinished_commands(&self) -> Result<Vec<CommandRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM commands WHERE state != ? ORDER BY received_ms")
            .bind(state::DONE)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(row_to_command).collect())
    }

    /// When `miner` last took a command of this kind (other than `except`), for cooldowns.
    pub async fn last_sent(
        &self,
        miner: &str,
        command: &str,
        except: &str,
    ) -> Result<Option<i64>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(sent_ms) FROM commands WHERE miner = ? AND command = ? AND id != ?",
        )
        .bind(miner)
        .bind(command)
        .bind(except)
        .fetch_one(&self.reader)
        .await?;
        Ok(v)
    }

    /// The oldest `limit` results waiting to go back over `channel`.
    pub async fn command_outbox(
        &self,
        channel: Source,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, command_id, kind, body, created_ms FROM command_outbox
             WHERE channel = ? ORDER BY seq LIMIT ?",
        )
        .bind(channel.as_str())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let body: String = r.get(3);
                OutboxEntry {
                    seq: r.get(0),
                    command_id: r.get(1),
                    kind: r.get(2),
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                    created_ms: r.get(4),
                }
            })
            .collect())
    }

    /// The channel accepted these results: delete them.
    pub async fn ack_command_results(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for seq in seqs {
            sqlx::query("DELETE FROM command_outbox WHERE seq = ?")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets finished commands of `source` older than `keep_ms` (never fewer than 24 h:
    /// C-21) whose results were delivered, and returns their ids.
    pub async fn prune_commands(
        &self,
        source: Source,
        keep_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let cutoff = now_ms() - keep_ms.max(24 * 3600 * 1000);
        let ids = sqlx::query_scalar(
            "DELETE FROM commands WHERE source = ? AND state = ? AND done_ms < ?
             AND id NOT IN (SELECT command_id FROM command_outbox) RETURNING id",
        )
        .bind(source.as_str())
        .bind(state::DONE)
        .bind(cutoff)
        .fetch_all(&self.writer)
        .await?;
        Ok(ids)
    }

    pub async fn command_counts(&self) -> Result<CommandCounts, StoreError> {
        let row = sqlx::query(
            "SELECT
                COALESCE(SUM(state = 'received'), 0),
                COALESCE(SUM(state = 'executing'), 0),
                COALESCE(SUM(state = 'done' AND status = 'success'), 0),
                COALESCE(SUM(state = 'done' AND status = 'failed'), 0),
                (SELECT COUNT(*) FROM command_outbox)
             FROM commands",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(CommandCounts {
            received: row.get(0),
            executing: row.get(1),
            succeeded: row.get(2),
            failed: row.get(3),
            results_waiting: row.get(4),
        })
    }

    /// Records a successful exchange with Foreman (connection status).
    pub async fn foreman_contact(&self) -> Result<(), StoreError> {
        self.set_meta("foreman_last_contact_ms", &now_ms().to_string())
            .await
    }

    /// Records a failed exchange with Foreman (connection status); the text holds no secret.
    pub async fn foreman_error(&self, error: &str) -> Result<(), StoreError> {
        self.set_meta("foreman_last_error", error).await?;
        self.set_meta("foreman_last_error_ms", &now_ms().to_string())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_command_is_recorded_once_and_its_results_queue_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        let args = json!({"ip": "127.0.0.1"});
        assert!(store
            .record_command(
                "c1",
                "reboot",
                &args,
                Some("127.0.0.1:4028"),
                &json!({"id": "c1"}),
                Source::Foreman,
            )
            .await
            .unwrap());
        assert!(!store
            .record_command(
                "c1",
                "reboot",
                &args,
                Some("127.0.0.1:4028"),
                &json!({"id": "c1"}),
                Source::Foreman,
            )
            .await
            .unwrap());
        store
            .mark_executing("c1", &json!({"uptime": 5}))
            .await
            .unwrap();
        let open = store.unfinished_commands().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].state, state::EXECUTING);
        assert_eq!(open[0].baseline, Some(json!({"uptime": 5})));
        store
            .finish_command("c1", true, None, &json!({"x": 1}))
            .await
            .unwrap();
        store
            .finish_command("c1", false, Some("again"), &json!({"x": 2}))
            .await
            .unwrap();
        let out = store.command_outbox(Source::Foreman, 10).await.unwrap();
        assert!(store
            .command_outbox(Source::Mqtt, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            out.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            vec!["start", "done"]
        );
        store
            .ack_command_results(&out.iter().map(|e| e.seq).collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(store
            .command_outbox(Source::Foreman, 10)
            .await
            .unwrap()
            .is_empty());
        let c = store.command_counts().await.unwrap();
        assert_eq!((c.succeeded, c.failed), (1, 0));
        // Kept at least a day: pruning with a short retention keeps it.
        assert!(store
            .prune_commands(Source::Foreman, 1)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn results_go_back_the_way_the_command_came() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        let args = json!({});
        for (id, source) in [("f1", Source::Foreman), ("mqtt/m1", Source::Mqtt)] {
            assert!(store
                .record_command(id, "blink", &args, None, &args, source)
                .await
                .unwrap());
            store.finish_command(id, true, None, &args).await.unwrap();
        }
        let ids = |entries: Vec<OutboxEntry>| -> Vec<(String, String)> {
            entries
                .into_iter()
                .map(|e| (e.command_id, e.kind))
                .collect()
        };
        let mqtt = ids(store.command_outbox(Source::Mqtt, 10).await.unwrap());
        assert_eq!(
            mqtt,
            vec![
                ("mqtt/m1".to_string(), "start".to_string()),
                ("mqtt/m1".to_string(), "done".to_string())
            ]
        );
        let foreman = ids(store.command_outbox(Source::Foreman, 10).await.unwrap());
        assert!(foreman.iter().all(|(id, _)| id == "f1") && foreman.len() == 2);
        let open = store.unfinished_commands().await.unwrap();
        assert!(open.is_empty());
    }
}
