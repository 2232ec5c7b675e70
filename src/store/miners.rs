//! The assigned miner list and what the last polls said about each miner.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{Store, StoreError};

/// A miner Foreman asked us to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedMiner {
    pub ip: String,
    pub port: u16,
    pub api_type: Option<i64>,
}

/// The outcome of one miner's poll, as kept for status.
#[derive(Debug, Clone)]
pub struct PollRecord {
    pub ip: String,
    pub port: u16,
    pub at_ms: i64,
    pub family: Option<String>,
    pub model: Option<String>,
    pub mac: Option<String>,
    pub hashrate: Option<f64>,
    /// `None` when the poll succeeded.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MinerStatusRow {
    pub ip: String,
    pub port: u16,
    pub family: Option<String>,
    pub model: Option<String>,
    pub mac: Option<String>,
    pub hashrate: Option<f64>,
    pub last_seen_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

/// SQLite allows 32,766 bound parameters per statement; 8 per row keeps well under it.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Upserts poll outcomes with multi-row statements (one per 1,000 miners): per-statement
/// overhead, not SQLite, is what costs at 10,000 miners a cycle.
pub(super) async fn record_polls(
    tx: &mut SqliteConnection,
    polls: &[PollRecord],
) -> Result<(), sqlx::Error> {
    let (ok, failed): (Vec<&PollRecord>, Vec<&PollRecord>) =
        polls.iter().partition(|p| p.error.is_none());
    for chunk in ok.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO miner_status (ip, port, family, model, mac, hashrate, last_seen_ms) ",
        );
        q.push_values(chunk, |mut row, p| {
            row.push_bind(&p.ip)
                .push_bind(i64::from(p.port))
                .push_bind(&p.family)
                .push_bind(&p.model)
                .push_bind(&p.mac)
                .push_bind(p.hashrate)
                .push_bind(p.at_ms);
        });
        q.push(
            " ON CONFLICT(ip, port) DO UPDATE SET family = excluded.family, model = excluded.model, \
             mac = COALESCE(excluded.mac, mac), hashrate = excluded.hashrate, last_seen_ms = excluded.last_seen_ms",
        );
        q.build().execute(&mut *tx).await?;
    }
    for chunk in failed.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO miner_status (ip, port, last_error, last_error_ms) ");
        q.push_values(chunk, |mut row, p| {
            row.push_bind(&p.ip)
                .push_bind(i64::from(p.port))
                .push_bind(&p.error)
                .push_bind(p.at_ms);
        });
        q.push(
            " ON CONFLICT(ip, port) DO UPDATE SET last_error = excluded.last_error, last_error_ms = excluded.last_error_ms",
        );
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

impl Store {
    /// Replaces the assigned miner list.
    pub async fn set_assigned(&self, miners: &[AssignedMiner]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM assigned_miners")
            .execute(&mut *tx)
            .await?;
        for chunk in miners.chunks(ROWS_PER_STATEMENT) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT OR REPLACE INTO assigned_miners (ip, port, api_type) ");
            q.push_values(chunk, |mut row, m| {
                row.push_bind(&m.ip)
                    .push_bind(i64::from(m.port))
                    .push_bind(m.api_type);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn assigned(&self) -> Result<Vec<AssignedMiner>, StoreError> {
        let rows = sqlx::query("SELECT ip, port, api_type FROM assigned_miners ORDER BY ip, port")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AssignedMiner {
                ip: r.get(0),
                port: u16::try_from(r.get::<i64, _>(1)).unwrap_or(0),
                api_type: r.get(2),
            })
            .collect())
    }

    pub async fn miner_status(&self) -> Result<Vec<MinerStatusRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT ip, port, family, model, mac, hashrate, last_seen_ms, last_error, last_error_ms FROM miner_status ORDER BY ip, port",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MinerStatusRow {
                ip: r.get(0),
                port: u16::try_from(r.get::<i64, _>(1)).unwrap_or(0),
                family: r.get(2),
                model: r.get(3),
                mac: r.get(4),
                hashrate: r.get(5),
                last_seen_ms: r.get(6),
                last_error: r.get(7),
                last_error_ms: r.get(8),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn assigned_list_survives_reopen_and_status_keeps_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store = Store::open(&path).await.unwrap();
        let list = vec![
            AssignedMiner {
                ip: "127.1.0.1".into(),
                port: 4028,
                api_type: Some(19),
            },
            AssignedMiner {
                ip: "127.1.0.2".into(),
                port: 4028,
                api_type: None,
            },
        ];
        store.set_assigned(&list).await.unwrap();
        let ok = PollRecord {
            ip: "127.1.0.1".into(),
            port: 4028,
            at_ms: 10,
            family: Some("antminer".into()),
            model: Some("S19 Pro".into()),
            mac: None,
            hashrate: Some(1e14),
            error: None,
        };
        store
            .write_cycle(10, &[], std::slice::from_ref(&ok))
            .await
            .unwrap();
        let failed = PollRecord {
            at_ms: 20,
            error: Some("timeout".into()),
            ..ok
        };
        store.write_cycle(20, &[], &[failed]).await.unwrap();
        store.close().await;

        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.assigned().await.unwrap(), list);
        let status = store.miner_status().await.unwrap();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].last_seen_ms, Some(10));
        assert_eq!(status[0].last_error.as_deref(), Some("timeout"));
        assert_eq!(status[0].model.as_deref(), Some("S19 Pro"));
    }
}
