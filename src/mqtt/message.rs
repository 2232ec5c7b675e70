//! The compact per-miner metrics message: the normalized values of the Foreman upload, flat
//! and in plain units, so a dashboard or Home Assistant reads them without parsing Foreman's
//! body. Pool workers and raw replies stay out: the broker is shared with other site systems.

use serde::Serialize;

use crate::foreman::metrics::Sample;
use crate::model::FanUnit;

const TERA: f64 = 1e12;

#[derive(Debug, Serialize)]
pub struct MetricsMessage<'a> {
    /// When the cycle was taken (RFC 3339, UTC).
    pub timestamp: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub family: Option<&'static str>,
    pub make: Option<&'a str>,
    pub model: Option<&'a str>,
    pub firmware: Option<&'a str>,
    pub mac: Option<&'a str>,
    /// Realtime hashrate in TH/s.
    pub hashrate_ths: Option<f64>,
    /// Since-boot average in TH/s.
    pub hashrate_avg_ths: Option<f64>,
    /// What the miner expects of itself, in TH/s.
    pub hashrate_ideal_ths: Option<f64>,
    pub power_w: Option<f64>,
    /// Hottest board or chip sensor, in °C.
    pub temp_max_c: Option<f64>,
    pub temp_inlet_c: Option<f64>,
    pub temp_outlet_c: Option<f64>,
    pub fans_rpm: Vec<f64>,
    pub fan_duty_pct: Option<f64>,
    pub boards: usize,
    pub uptime_s: Option<u64>,
    pub power_mode: Option<&'static str>,
    pub hashing: Option<bool>,
    pub pools: Vec<PoolState<'a>>,
    pub errors: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct PoolState<'a> {
    pub url: &'a str,
    pub alive: bool,
    pub active: Option<bool>,
    pub accepted: u64,
    pub rejected: u64,
}

/// Rounds to 3 decimals: TH/s to the GH/s, what any dashboard shows.
fn ths(hs: Option<f64>) -> Option<f64> {
    hs.map(|h| (h / TERA * 1000.0).round() / 1000.0)
}

pub fn metrics_message<'a>(timestamp: &'a str, sample: &'a Sample) -> MetricsMessage<'a> {
    let s = &sample.stats;
    let id = &s.identity;
    let temp_max = s
        .board_temps()
        .chain(s.chip_temps())
        .filter(|t| *t != 0.0)
        .fold(None, |max: Option<f64>, t| {
            Some(max.map_or(t, |m| m.max(t)))
        });
    MetricsMessage {
        timestamp,
        ip: &sample.ip,
        port: sample.port,
        family: s.family.map(|f| f.as_str()),
        make: id.make.as_deref(),
        model: id.model.as_deref(),
        firmware: id.firmware.as_deref(),
        mac: id.mac.as_deref(),
        hashrate_ths: ths(s.hashrate),
        hashrate_avg_ths: ths(s.hashrate_avg),
        hashrate_ideal_ths: ths(s.hashrate_ideal),
        power_w: s.power,
        temp_max_c: temp_max,
        temp_inlet_c: s.inlet_temp,
        temp_outlet_c: s.outlet_temp,
        fans_rpm: s
            .fans
            .iter()
            .filter(|f| f.unit == FanUnit::Rpm)
            .map(|f| f.speed)
            .collect(),
        fan_duty_pct: s.fan_duty,
        boards: s.boards.len(),
        uptime_s: s.uptime,
        power_mode: s.power_mode.map(|m| m.as_str()),
        hashing: s.is_hashing,
        pools: s
            .pools
            .iter()
            .map(|p| PoolState {
                url: &p.url,
                alive: p.alive,
                active: p.active,
                accepted: p.accepted,
                rejected: p.rejected,
            })
            .collect(),
        errors: &s.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Board, Fan, MinerStats, Pool};

    #[test]
    fn units_are_plain_and_worker_names_stay_out() {
        let sample = Sample {
            ip: "127.1.0.5".into(),
            port: 4028,
            stats: MinerStats {
                hashrate: Some(110.123_456e12),
                boards: vec![
                    Board {
                        board_temps: vec![61.0, 0.0],
                        chip_temps: vec![77.5],
                        ..Board::default()
                    },
                    Board::default(),
                ],
                fans: vec![Fan {
                    slot: 0,
                    speed: 5400.0,
                    unit: FanUnit::Rpm,
                }],
                pools: vec![Pool {
                    url: "stratum+tcp://pool.example:3333".into(),
                    user: "account.worker7".into(),
                    alive: true,
                    ..Pool::default()
                }],
                ..MinerStats::default()
            },
        };
        let json = serde_json::to_value(metrics_message("t", &sample)).unwrap();
        assert_eq!(json["hashrate_ths"], 110.123);
        assert_eq!(json["temp_max_c"], 77.5);
        assert_eq!(json["boards"], 2);
        assert_eq!(json["fans_rpm"][0], 5400.0);
        assert_eq!(json["pools"][0]["url"], "stratum+tcp://pool.example:3333");
        assert!(!json.to_string().contains("worker7"));
    }
}
