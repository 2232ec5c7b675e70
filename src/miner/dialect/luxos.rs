//! LuxOS (LUXminer on Antminer hardware): `version`, `summary`, `pools`, `stats`, `devs`,
//! `temps`, `fans`, `power`, `config`, all in one joined request.
//!
//! The Antminer-shaped `stats` gives chips and chip status per chain (chains 1..3); the richer
//! LuxOS sections win where they exist: `DEVS[]` (boards `ID` 0..2, 5 s rate, nominal rate,
//! serial), `TEMPS[]` (four labelled board sensors), `FANS[]` (RPM and duty; LuxOS lists only
//! fitted fans, so 0 RPM is a stopped fan), `POWER[0].Watts`, and `CONFIG[0]` (MAC, hostname,
//! serial, `CurtailMode` for sleep).

use serde_json::Value;

use super::{antminer, board_sum, fans_section, realtime_rate, temp_field, Command, Replies};
use crate::miner::reply::{field, field_str, field_u64};
use crate::model::{Board, FirmwareKind, MinerStats, PowerMode};

pub fn normalize(r: &Replies) -> MinerStats {
    let mut s = antminer::read(r);
    let devs = r.section(Command::Devs, "DEVS");
    if !devs.is_empty() {
        let from_stats = std::mem::take(&mut s.boards);
        let mut boards: Vec<Board> = devs
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| {
                let slot = u32::try_from(field_u64(d, "ID")?).ok()?;
                let stats_board = from_stats.iter().find(|b| b.slot == slot);
                Some(Board {
                    slot,
                    hashrate: realtime_rate(d),
                    hashrate_ideal: field(d, "Nominal MHS")
                        .filter(|&x| x > 0.0)
                        .map(|x| x * 1e6),
                    chips: stats_board.and_then(|b| b.chips),
                    has_chip_errors: stats_board.is_some_and(|b| b.has_chip_errors),
                    board_temps: temp_field(d, "Temperature").into_iter().collect(),
                    chip_temps: stats_board
                        .map(|b| b.chip_temps.clone())
                        .unwrap_or_default(),
                    serial: field_str(d, "SerialNumber")
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    ..Board::default()
                })
            })
            .collect();
        boards.sort_by_key(|b| b.slot);
        s.boards = boards;
    }
    // Four labelled sensors per board (intake and exhaust, top and bottom).
    for t in r
        .section(Command::Temps, "TEMPS")
        .iter()
        .filter_map(Value::as_object)
    {
        let Some(slot) = field_u64(t, "ID").and_then(|n| u32::try_from(n).ok()) else {
            continue;
        };
        let readings: Vec<f64> = ["TopLeft", "TopRight", "BottomLeft", "BottomRight"]
            .iter()
            .filter_map(|k| temp_field(t, k))
            .collect();
        if let Some(b) = s.boards.iter_mut().find(|b| b.slot == slot) {
            if !readings.is_empty() {
                b.board_temps = readings;
            }
        }
    }
    if devs.iter().any(|d| d.get("MHS 5s").is_some()) && s.hashrate.is_none() {
        s.hashrate = board_sum(&s.boards);
    }
    if let Some(fans) = r.get(Command::Fans) {
        let (list, duty) = fans_section(fans, true);
        if !list.is_empty() {
            s.expected_fans = u32::try_from(list.len()).ok();
            s.fans = list;
        }
        s.fan_duty = duty.or(s.fan_duty);
    }
    if let Some(w) = r
        .first(Command::Power, "POWER")
        .and_then(|p| field(p, "Watts"))
        .filter(|&w| w > 0.0)
    {
        s.power = Some(w);
    }
    if let Some(config) = r.first(Command::Config, "CONFIG") {
        let text = |k: &str| {
            field_str(config, k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        s.identity.mac = text("MACAddr").map(|m| m.to_ascii_lowercase());
        s.identity.hostname = text("Hostname");
        s.identity.serial = text("SerialNumber");
        if s.identity.model.is_none() {
            s.identity.model = text("Model").map(|m| antminer::model_from_type(&m));
        }
        // "None" when mining; "Sleep" (any spelling) after `curtail sleep`.
        if text("CurtailMode").is_some_and(|m| m.to_ascii_lowercase().contains("sleep")) {
            s.power_mode = Some(PowerMode::Sleeping);
        }
    }
    s.identity.firmware = r
        .first(Command::Version, "VERSION")
        .and_then(|v| field_str(v, "LUXminer").or_else(|| field_str(v, "Miner")))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or(s.identity.firmware.take());
    s.identity.firmware_kind = Some(FirmwareKind::LuxOs);
    s
}
