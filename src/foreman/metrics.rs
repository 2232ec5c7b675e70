//! Foreman's metrics body (protocol §3), built from normalized samples.
//!
//! The shape is the one Foreman's own pickaxe sends, so our uploads are a drop-in: one report
//! per batch of at most 200 miners, `metadata.timestamp` in `yyyy-MM-ddTHH:mm:ss.SSS±HHMM`,
//! `hashRate` a decimal string in H/s, temps as integer °C with invalid readings left out.
//! A miner that did not answer is simply absent: that is how Foreman learns it is offline.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{FanUnit, MinerStats, Pool};

/// One successful poll of one miner.
#[derive(Debug, Clone)]
pub struct Sample {
    pub ip: String,
    pub port: u16,
    pub stats: MinerStats,
}

#[derive(Debug, Serialize)]
pub struct MetricsReport<'a> {
    pub metadata: Metadata,
    pub miners: Vec<MinerEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub timestamp: String,
    pub api_version: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MinerEntry<'a> {
    pub api_ip: &'a str,
    pub api_port: u16,
    pub pools: Vec<PoolEntry<'a>>,
    pub asics: Vec<AsicEntry>,
    pub rigs: [(); 0],
    pub cpus: [(); 0],
}

#[derive(Debug, Serialize)]
pub struct PoolEntry<'a> {
    pub name: String,
    pub worker: &'a str,
    pub enabled: bool,
    pub status: bool,
    pub priority: u32,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AsicEntry {
    pub hash_rate: String,
    pub boards: i64,
    pub fans: Fans,
    pub temps: Vec<i64>,
    pub has_errors: bool,
    pub power_mode: &'static str,
    pub power_state: Option<String>,
    pub attributes: Vec<Attribute>,
    pub raw_stats: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fans {
    pub count: usize,
    pub speeds: Vec<i64>,
    pub speed_units: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Attribute {
    pub key: &'static str,
    pub value: String,
}

/// Foreman's timestamp format. We always write UTC, so the offset is `+0000`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A hashrate in H/s as the decimal string Foreman expects (plain notation, never exponent).
pub fn format_hashrate(hs: f64) -> String {
    if hs.is_finite() && hs >= 0.0 {
        format!("{hs:.10}")
    } else {
        "0".to_string()
    }
}

/// Builds the report for one batch of samples taken at `taken_at`.
pub fn report(taken_at: DateTime<Utc>, samples: &[Sample]) -> MetricsReport<'_> {
    MetricsReport {
        metadata: Metadata {
            timestamp: format_timestamp(taken_at),
            api_version: "1.0.0",
        },
        miners: samples.iter().map(miner_entry).collect(),
    }
}

pub fn miner_entry(sample: &Sample) -> MinerEntry<'_> {
    let stats = &sample.stats;
    MinerEntry {
        api_ip: &sample.ip,
        api_port: sample.port,
        pools: stats.pools.iter().map(pool_entry).collect(),
        asics: vec![asic_entry(stats)],
        rigs: [],
        cpus: [],
    }
}

fn asic_entry(stats: &MinerStats) -> AsicEntry {
    // Foreman takes one fan unit per miner: prefer RPM, fall back to duty percentages.
    let rpm: Vec<i64> = fan_speeds(stats, FanUnit::Rpm);
    let (speeds, unit) = if rpm.is_empty() {
        (fan_speeds(stats, FanUnit::Percent), "%")
    } else {
        (rpm, "RPM")
    };
    let temps = stats
        .board_temps()
        .chain(stats.chip_temps())
        .map(|t| t.round() as i64)
        .filter(|t| *t != 0)
        .collect();
    let mut attributes = Vec::new();
    let miner_type = match (&stats.identity.make, &stats.identity.model) {
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (None, Some(model)) => Some(model.clone()),
        (Some(make), None) => Some(make.clone()),
        (None, None) => None,
    };
    if let Some(value) = miner_type {
        attributes.push(Attribute {
            key: "miner_type",
            value,
        });
    }
    if let Some(value) = &stats.compile_time {
        attributes.push(Attribute {
            key: "compile_time",
            value: value.clone(),
        });
    }
    if let Some(ideal) = stats.hashrate_ideal {
        attributes.push(Attribute {
            key: "hash_rate_ideal",
            value: format!("{ideal:.0}"),
        });
    }
    AsicEntry {
        hash_rate: format_hashrate(stats.hashrate.unwrap_or(0.0)),
        boards: if stats.boards.is_empty() {
            -1
        } else {
            stats.boards.len() as i64
        },
        fans: Fans {
            count: speeds.len(),
            speeds,
            speed_units: unit,
        },
        temps,
        has_errors: stats.has_errors(),
        power_mode: stats.power_mode.map(|m| m.as_str()).unwrap_or("normal"),
        power_state: None,
        attributes,
        raw_stats: serde_json::Map::new(),
    }
}

fn fan_speeds(stats: &MinerStats, unit: FanUnit) -> Vec<i64> {
    stats
        .fans
        .iter()
        .filter(|f| f.unit == unit)
        .map(|f| f.speed.round() as i64)
        .collect()
}

fn pool_entry(pool: &Pool) -> PoolEntry<'_> {
    PoolEntry {
        name: pool_name(&pool.url),
        worker: &pool.user,
        enabled: pool.enabled,
        status: pool.alive,
        priority: pool.priority,
        accepted: pool.accepted,
        rejected: pool.rejected,
        stale: pool.stale,
    }
}

/// Foreman names a pool by its URL without scheme, credentials, `/` or `>`, lower-cased.
pub fn pool_name(url: &str) -> String {
    let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let without_user = without_scheme
        .rsplit_once('@')
        .map(|(_, host)| host)
        .unwrap_or(without_scheme);
    without_user
        .chars()
        .filter(|c| *c != '/' && *c != '>')
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Board, Fan};
    use chrono::TimeZone;

    #[test]
    fn body_has_foreman_shape() {
        let stats = MinerStats {
            hashrate: Some(54_997_010_000_000.0),
            boards: vec![
                Board {
                    slot: 0,
                    board_temps: vec![50.0, 0.0],
                    chip_temps: vec![80.0],
                    ..Default::default()
                },
                Board {
                    slot: 1,
                    ..Default::default()
                },
            ],
            fans: vec![Fan {
                slot: 0,
                speed: 2400.0,
                unit: FanUnit::Rpm,
            }],
            pools: vec![Pool {
                url: "stratum+tcp://Worker@BTC.f2pool.com:3333/".into(),
                user: "acct.w1".into(),
                alive: true,
                enabled: true,
                accepted: 5,
                ..Default::default()
            }],
            ..Default::default()
        };
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 7, 19, 27).unwrap()
            + chrono::Duration::milliseconds(753);
        let samples = vec![Sample {
            ip: "127.1.0.1".into(),
            port: 4028,
            stats,
        }];
        let json = serde_json::to_value(report(at, &samples)).unwrap();
        assert_eq!(
            json["metadata"]["timestamp"],
            "2026-12-03T07:19:27.753+0000"
        );
        assert_eq!(json["metadata"]["apiVersion"], "1.0.0");
        let m = &json["miners"][0];
        assert_eq!(m["apiIp"], "127.1.0.1");
        assert_eq!(m["apiPort"], 4028);
        assert_eq!(m["rigs"], serde_json::json!([]));
        let a = &m["asics"][0];
        assert_eq!(a["hashRate"], "54997010000000.0000000000");
        assert_eq!(a["boards"], 2);
        assert_eq!(a["temps"], serde_json::json!([50, 80]));
        assert_eq!(a["fans"]["speedUnits"], "RPM");
        assert_eq!(a["powerMode"], "normal");
        assert_eq!(a["powerState"], serde_json::Value::Null);
        assert_eq!(m["pools"][0]["name"], "btc.f2pool.com:3333");
        assert_eq!(m["pools"][0]["status"], true);
    }
}
