//! Whatsminer API v3 (firmware from 2024-11; port 4433, 4-byte little-endian length + JSON):
//! `get.device.info` and `get.miner.status` with `summary`, `edevs`, `pools`, one request per
//! connection (v3 has no joined form). Replies are `{"code":0,"msg":{...}}`; rates are TH/s.

use serde_json::{Map, Value};

use super::{board_sum, temp_field, whatsminer, Command, Replies};
use crate::miner::reply::{field, field_bool, field_str, field_u64};
use crate::model::{Board, Fan, FanUnit, FirmwareKind, Identity, MinerStats, Pool};

const TH: f64 = 1e12;

pub fn normalize(r: &Replies) -> MinerStats {
    let summary = msg(r, Command::V3Summary).and_then(|m| obj(m, "summary"));
    let info = msg(r, Command::V3DeviceInfo);
    let board_temps: &[Value] = summary
        .and_then(|s| s.get("board-temperature"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let boards: Vec<Board> = msg(r, Command::V3Edevs)
        .and_then(|m| m.get("edevs"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .map(|(i, d)| board(i, d, board_temps))
        .collect();
    let rate = |key: &str| summary.and_then(|s| field(s, key)).map(|x| x * TH);
    MinerStats {
        identity: info.map(identity).unwrap_or_default(),
        hashrate: rate("hash-realtime")
            .or_else(|| rate("hash-1min"))
            .or(board_sum(&boards)),
        hashrate_avg: rate("hash-average"),
        hashrate_ideal: rate("factory-hash").filter(|&x| x > 0.0),
        boards,
        fans: summary.map(fans).unwrap_or_default(),
        inlet_temp: summary.and_then(|s| temp_field(s, "environment-temperature")),
        power: summary
            .and_then(|s| field(s, "power-realtime"))
            .filter(|&w| w > 0.0),
        power_limit: summary
            .and_then(|s| field(s, "power-limit"))
            .filter(|&w| w > 0.0),
        uptime: summary.and_then(|s| field_u64(s, "elapsed")),
        pools: msg(r, Command::V3Pools).map(pools).unwrap_or_default(),
        // `working` is the service state; the rate decides when it was read.
        is_hashing: info
            .and_then(|i| obj(i, "miner"))
            .and_then(|m| field_bool(m, "working")),
        error_codes: info
            .and_then(|i| i.get("error-code"))
            .map(whatsminer::error_codes)
            .unwrap_or_default(),
        ..MinerStats::default()
    }
}

/// `msg` of a successful (`code` 0) v3 reply to `command`.
fn msg(r: &Replies, command: Command) -> Option<&Map<String, Value>> {
    let v = r.get(command)?;
    if v.get("code").and_then(Value::as_i64) != Some(0) {
        return None;
    }
    v.get("msg").and_then(Value::as_object)
}

fn obj<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

fn board(position: usize, d: &Map<String, Value>, board_temps: &[Value]) -> Board {
    let slot = field_u64(d, "id")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
    let temp = board_temps
        .get(slot as usize)
        .and_then(crate::miner::reply::num)
        .filter(|&t| super::valid_temp(t));
    Board {
        slot,
        hashrate: field(d, "hash-realtime")
            .or_else(|| field(d, "hash-average"))
            .map(|x| x * TH),
        hashrate_ideal: field(d, "factory-hash")
            .filter(|&x| x > 0.0)
            .map(|x| x * TH),
        chips: field_u64(d, "effective-chips").and_then(|n| u32::try_from(n).ok()),
        board_temps: temp.into_iter().collect(),
        temp_max: temp_field(d, "chip-temp-max"),
        temp_avg: temp_field(d, "chip-temp-avg"),
        ..Board::default()
    }
}

fn fans(summary: &Map<String, Value>) -> Vec<Fan> {
    ["fan-speed-in", "fan-speed-out"]
        .iter()
        .zip(0u32..)
        .filter_map(|(k, slot)| {
            let rpm = field(summary, k).filter(|&r| r > 0.0)?;
            Some(Fan {
                slot,
                speed: rpm,
                unit: FanUnit::Rpm,
            })
        })
        .collect()
}

fn pools(m: &Map<String, Value>) -> Vec<Pool> {
    let Some(Value::Array(list)) = m.get("pools") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_object)
        .enumerate()
        .filter_map(|(i, p)| {
            let url = field_str(p, "url")?.trim();
            if url.is_empty() {
                return None;
            }
            let status = field_str(p, "status").unwrap_or("").trim();
            Some(Pool {
                url: url.to_string(),
                user: field_str(p, "account").unwrap_or("").trim().to_string(),
                priority: field_u64(p, "pool-priority")
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
                alive: status.eq_ignore_ascii_case("alive"),
                enabled: !status.eq_ignore_ascii_case("disabled"),
                active: field_bool(p, "stratum-active"),
                ..Pool::default()
            })
        })
        .collect()
}

/// From `get.device.info`: model (`miner.type`), firmware (`system.fwversion`), MAC and
/// hostname (`network`), serial (`miner.miner-sn`).
pub fn identity(info: &Map<String, Value>) -> Identity {
    let text = |section: &str, key: &str| {
        obj(info, section)
            .and_then(|s| field_str(s, key))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Identity {
        make: Some("WhatsMiner".into()),
        model: text("miner", "type").map(|t| whatsminer::model_name(&t)),
        firmware: text("system", "fwversion"),
        mac: text("network", "mac").map(|m| m.to_ascii_lowercase()),
        hostname: text("network", "hostname"),
        firmware_kind: Some(FirmwareKind::Stock),
        serial: text("miner", "miner-sn"),
    }
}
