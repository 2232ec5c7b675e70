//! Whatsminer (MicroBT btminer) API v1/v2 on port 4028.
//!
//! Two reply shapes: cgminer-shaped `summary`, `pools`, `edevs`/`devs`, `devdetails` (joined in
//! one request), and the Whatsminer shape of `status`, `get_version`, `get_miner_info`,
//! `get_error_code`, where `STATUS` is a bare string and `Msg` an object (C-14); those cannot be
//! joined and go on their own connections. Units: every `MHS` key is MH/s, and so is `HS RT`
//! (the "realtime" rate) despite its name; `Factory GHS` is GH/s.
//!
//! Errors come as `get_error_code` (a list of `{"code":"time"}` objects, plain codes, or on API
//! 2.0.4 a list written like a dict, C-05) and as `Error Code N` fields in the summary of older
//! firmware.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::{average_rate, board_sum, pools, realtime_rate, temp_field, Command, Replies};
use crate::miner::reply::{self, field, field_bool, field_str, field_u64};
use crate::model::{Board, ErrorCode, Fan, FanUnit, FirmwareKind, Identity, MinerStats, PowerMode};

pub fn normalize(r: &Replies) -> MinerStats {
    let summary = r.first(Command::Summary, "SUMMARY");
    let devs = if r.get(Command::Edevs).is_some() {
        r.section(Command::Edevs, "DEVS")
    } else {
        r.section(Command::Devs, "DEVS")
    };
    let boards: Vec<Board> = devs
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .map(|(i, d)| board(i, d))
        .collect();
    let status = r.get(Command::WmStatus).and_then(msg);
    let mut s = MinerStats {
        identity: identity(r),
        hashrate: summary.and_then(realtime_rate).or(board_sum(&boards)),
        hashrate_avg: summary.and_then(average_rate),
        hashrate_ideal: summary
            .and_then(|s| field(s, "Factory GHS"))
            .filter(|&x| x > 0.0)
            .map(|x| x * 1e9),
        boards,
        fans: summary.map(fans).unwrap_or_default(),
        inlet_temp: summary.and_then(|s| temp_field(s, "Env Temp")),
        power: summary
            .and_then(|s| field(s, "Power_RT").or_else(|| field(s, "Power")))
            .filter(|&w| w > 0.0),
        power_limit: summary
            .and_then(|s| field(s, "Power Limit"))
            .or_else(|| status.and_then(|m| field(m, "power_limit_set")))
            .filter(|&w| w > 0.0),
        uptime: summary.and_then(super::elapsed),
        pools: r.get(Command::Pools).map(pools).unwrap_or_default(),
        power_mode: summary
            .and_then(|s| field_str(s, "Power Mode"))
            .or_else(|| status.and_then(|m| field_str(m, "power_mode")))
            .and_then(power_mode),
        ..MinerStats::default()
    };
    if let Some(m) = status {
        apply_status(&mut s, m);
    }
    s.error_codes = summary.map(summary_errors).unwrap_or_default();
    if let Some(list) = r.get(Command::WmGetErrorCode).and_then(msg) {
        let from_api = error_codes(list.get("error_code").unwrap_or(&Value::Null));
        // The dedicated command is the complete list; the summary fields are its older form.
        if !from_api.is_empty() || s.error_codes.is_empty() {
            s.error_codes = from_api;
        }
    }
    s
}

/// `Msg` of a Whatsminer-shaped reply, when it is an object.
pub fn msg(reply: &Value) -> Option<&Map<String, Value>> {
    reply.get("Msg").and_then(Value::as_object)
}

/// `status`: `mineroff` (miner powered down by `power_off`) or, on older firmware,
/// `btmineroff` (the btminer process is not running). Booleans arrive as "true"/"false".
fn apply_status(s: &mut MinerStats, m: &Map<String, Value>) {
    let mineroff = field_bool(m, "mineroff");
    let btmineroff = field_bool(m, "btmineroff");
    if mineroff == Some(true) {
        s.power_mode = Some(PowerMode::Sleeping);
        s.stopped_reason = field_str(m, "mineroff_reason")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map_or_else(|| Some("miner off".to_string()), |r| Some(r.to_string()));
    }
    if btmineroff == Some(true) {
        s.stopped_reason = Some("btminer process off".to_string());
    }
    // A hint for when no rate was read; the realtime rate decides otherwise (C-17).
    s.is_hashing = match (mineroff, btmineroff) {
        (Some(true), _) | (_, Some(true)) => Some(false),
        (Some(false), _) | (_, Some(false)) => Some(true),
        _ => None,
    };
    if s.identity.firmware.is_none() {
        s.identity.firmware = firmware_text(m, &["FirmwareVersion", "Firmware Version"]);
    }
}

fn power_mode(text: &str) -> Option<PowerMode> {
    match text.trim().to_ascii_lowercase().as_str() {
        "low" => Some(PowerMode::Low),
        "normal" => Some(PowerMode::Normal),
        "high" => Some(PowerMode::High),
        _ => None,
    }
}

fn board(position: usize, d: &Map<String, Value>) -> Board {
    let slot = field_u64(d, "Slot")
        .or_else(|| field_u64(d, "ID"))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
    Board {
        slot,
        hashrate: realtime_rate(d).or_else(|| average_rate(d)),
        hashrate_ideal: field(d, "Factory GHS")
            .filter(|&x| x > 0.0)
            .map(|x| x * 1e9),
        chips: field_u64(d, "Effective Chips").and_then(|n| u32::try_from(n).ok()),
        board_temps: temp_field(d, "Temperature").into_iter().collect(),
        temp_max: temp_field(d, "Chip Temp Max"),
        temp_avg: temp_field(d, "Chip Temp Avg"),
        serial: field_str(d, "PCB SN")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ..Board::default()
    }
}

/// Intake and exhaust fans (RPM). A 0 is an absent reading (the exhaust of an immersion unit).
fn fans(summary: &Map<String, Value>) -> Vec<Fan> {
    ["Fan Speed In", "Fan Speed Out"]
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

/// `Error Code N` (and `Error N Time`) fields of an older summary.
fn summary_errors(summary: &Map<String, Value>) -> Vec<ErrorCode> {
    let count = field_u64(summary, "Error Code Count").unwrap_or(0).min(64);
    (0..count)
        .filter_map(|i| {
            let code = summary.get(&format!("Error Code {i}"))?;
            let code = match code {
                Value::String(s) => s.trim().to_string(),
                other => reply::num(other).map(|n| format!("{n}"))?,
            };
            let at = field_str(summary, &format!("Error {i} Time")).and_then(parse_time);
            (!code.is_empty()).then_some(ErrorCode {
                code,
                at,
                reason: None,
            })
        })
        .collect()
}

/// Error codes in every form a Whatsminer writes them: `[{"329":"2023-01-01 00:00:00"}]`,
/// `["329"]`, `[329]`, a dict (what the repaired list-dict of API 2.0.4 becomes, C-05), and
/// API v3's `[{"264":"time","reason":"..."}]`.
pub fn error_codes(v: &Value) -> Vec<ErrorCode> {
    let mut out = Vec::new();
    match v {
        Value::Array(items) => {
            for item in items.iter().take(256) {
                match item {
                    Value::Object(map) => out.extend(pairs(map)),
                    Value::String(code) if !code.trim().is_empty() => out.push(ErrorCode {
                        code: code.trim().to_string(),
                        at: None,
                        reason: None,
                    }),
                    Value::Number(n) => out.push(ErrorCode {
                        code: n.to_string(),
                        at: None,
                        reason: None,
                    }),
                    _ => {}
                }
            }
        }
        Value::Object(map) => out.extend(pairs(map)),
        _ => {}
    }
    out
}

/// `{"329":"2023-01-01 00:00:00","reason":"..."}`: one code per key. An object does not keep
/// the miner's order, so its codes come in time order.
fn pairs(map: &Map<String, Value>) -> Vec<ErrorCode> {
    let reason = field_str(map, "reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let mut list: Vec<ErrorCode> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "reason")
        .take(256)
        .map(|(k, time)| ErrorCode {
            code: k.trim().to_string(),
            at: time.as_str().and_then(parse_time),
            reason: reason.clone(),
        })
        .collect();
    list.sort_by(|a, b| {
        (a.at, a.code.parse::<u64>().ok()).cmp(&(b.at, b.code.parse::<u64>().ok()))
    });
    list
}

/// "2023-01-01 00:00:00" in the miner's clock; anything else is no time.
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()
}

/// A firmware string, without the literal single quotes btminer puts around it.
fn firmware_text(m: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| field_str(m, k))
        .map(|f| f.trim().trim_matches('\'').trim())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

/// Model from `devdetails` (`M30S++V40` → `M30S++ V40`), firmware from `get_version` or the
/// summary, MAC and hostname from `get_miner_info` or the summary.
pub fn identity(r: &Replies) -> Identity {
    let summary = r.first(Command::Summary, "SUMMARY");
    let version = r.get(Command::WmGetVersion).and_then(msg);
    let info = r.get(Command::WmGetMinerInfo).and_then(msg);
    let model = r
        .first(Command::Devdetails, "DEVDETAILS")
        .and_then(|d| field_str(d, "Model"))
        .map(model_name)
        .filter(|m| !m.is_empty());
    let mac = info
        .and_then(|i| field_str(i, "mac"))
        .or_else(|| summary.and_then(|s| field_str(s, "MAC")))
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty());
    Identity {
        make: Some("WhatsMiner".into()),
        model,
        firmware: version
            .and_then(|v| firmware_text(v, &["fw_ver"]))
            .or_else(|| summary.and_then(|s| firmware_text(s, &["Firmware Version"]))),
        mac,
        hostname: info
            .and_then(|i| field_str(i, "hostname"))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        firmware_kind: Some(FirmwareKind::Stock),
        serial: None,
    }
}

/// `M30S++V40` → `M30S++ V40`; `M60S_VK40` → `M60S VK40`: the hardware revision after a space.
pub fn model_name(raw: &str) -> String {
    let t = raw.trim().replace('_', "");
    // The revision starts at the last `V` that follows the series name.
    match t.rfind('V').filter(|&i| i > 1) {
        Some(i) => format!("{} {}", t[..i].trim_end(), &t[i..]),
        None => t,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn models() {
        assert_eq!(model_name("M30S++V40"), "M30S++ V40");
        assert_eq!(model_name("M60S_VK40"), "M60S VK40");
        assert_eq!(model_name("M20S"), "M20S");
        assert_eq!(model_name(""), "");
    }

    #[test]
    fn error_code_forms() {
        let at = parse_time("2023-01-01 00:00:00");
        let codes = |v| {
            error_codes(&v)
                .into_iter()
                .map(|e| (e.code, e.at))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(json!([{"329":"2023-01-01 00:00:00"}])),
            [("329".into(), at)]
        );
        assert_eq!(codes(json!(["329"])), [("329".into(), None)]);
        assert_eq!(codes(json!([329])), [("329".into(), None)]);
        assert_eq!(
            codes(json!({"329":"2023-01-01 00:00:00"})),
            [("329".into(), at)]
        );
        assert!(codes(json!([])).is_empty());
        assert!(codes(json!(null)).is_empty());
        let v3 = error_codes(&json!([{"264":"2026-05-23 09:19:10","reason":"Power xfer error."}]));
        assert_eq!(v3[0].reason.as_deref(), Some("Power xfer error."));
    }
}
