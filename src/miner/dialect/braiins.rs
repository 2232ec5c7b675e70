//! Braiins OS (BOSminer, BOSminer+, BOSer; the 2018 bmminer-based bOS): `version`, `summary`,
//! `pools`, `devs`, `temps`, `fans`, `tunerstatus`, and `devdetails` for the model.
//!
//! * Boards are `DEVS[]` entries whose `ID` is the chain number: 6..8 on an S9, 1..3 (or 0..2)
//!   elsewhere; the slot is the ID minus that base.
//! * `DEVS[].Temperature` is always 0 on BOSminer: the real board and chip temperatures are in
//!   `TEMPS[]`, matched to the boards by `ID` (C-18). A 0 is never a reading.
//! * `FANS[]` lists every connector (4 on an S9 with 2 fans): 0 RPM there is an empty connector.
//! * Power draw and limit come from the autotuner (`TUNERSTATUS`); a chain whose tuner state is
//!   not stable or tuning is reported as an error.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    average_rate, board_sum, cgminer, elapsed, fans_section, pools, realtime_rate, temp_field,
    Command, Replies,
};
use crate::miner::reply::{field, field_str, field_u64};
use crate::model::{Board, FirmwareKind, Identity, MinerStats, PowerMode};

pub fn normalize(r: &Replies) -> MinerStats {
    let summary = r.first(Command::Summary, "SUMMARY");
    let boards = boards(r);
    let tuner = r.first(Command::Tunerstatus, "TUNERSTATUS");
    let (fans, fan_duty) = r
        .get(Command::Fans)
        .map(|f| fans_section(f, false))
        .unwrap_or_default();
    let paused = is_paused(r, tuner);
    MinerStats {
        identity: identity(r),
        hashrate: summary.and_then(realtime_rate).or(board_sum(&boards)),
        hashrate_avg: summary.and_then(average_rate),
        hashrate_ideal: boards
            .iter()
            .filter_map(|b| b.hashrate_ideal)
            .fold(None, |acc: Option<f64>, h| Some(acc.unwrap_or(0.0) + h)),
        boards,
        fans,
        fan_duty,
        power: tuner
            .and_then(|t| field(t, "ApproximateMinerPowerConsumption"))
            .filter(|&w| w > 0.0),
        power_limit: tuner
            .and_then(|t| field(t, "PowerLimit"))
            .filter(|&w| w > 0.0),
        uptime: summary.and_then(elapsed),
        pools: r.get(Command::Pools).map(pools).unwrap_or_default(),
        power_mode: paused.then_some(PowerMode::Sleeping),
        errors: tuner.map(tuner_errors).unwrap_or_default(),
        compile_time: cgminer::compile_time(r.first(Command::Version, "VERSION")),
        ..MinerStats::default()
    }
}

/// One board per chain `ID` seen in `devs` or `temps`.
fn boards(r: &Replies) -> Vec<Board> {
    let mut by_id: BTreeMap<u64, Board> = BTreeMap::new();
    let id_of = |o: &Map<String, Value>| field_u64(o, "ID");
    for dev in r
        .section(Command::Devs, "DEVS")
        .iter()
        .filter_map(Value::as_object)
    {
        let Some(id) = id_of(dev) else { continue };
        let b = by_id.entry(id).or_default();
        b.hashrate = realtime_rate(dev);
        b.hashrate_ideal = field(dev, "Nominal MHS")
            .filter(|&x| x > 0.0)
            .map(|x| x * 1e6);
        // Always 0 on BOSminer (C-18); kept only if some build ever reports it.
        b.board_temps.extend(temp_field(dev, "Temperature"));
    }
    for t in r
        .section(Command::Temps, "TEMPS")
        .iter()
        .filter_map(Value::as_object)
    {
        let Some(id) = id_of(t) else { continue };
        let b = by_id.entry(id).or_default();
        if let Some(board) = temp_field(t, "Board") {
            b.board_temps = vec![board];
        }
        b.chip_temps.extend(temp_field(t, "Chip"));
    }
    for d in r
        .section(Command::Devdetails, "DEVDETAILS")
        .iter()
        .filter_map(Value::as_object)
    {
        if let Some(b) = id_of(d).and_then(|id| by_id.get_mut(&id)) {
            b.expected_chips = field_u64(d, "Chips").and_then(|n| u32::try_from(n).ok());
        }
    }
    let (Some(&lowest), Some(&highest)) = (by_id.keys().next(), by_id.keys().next_back()) else {
        return Vec::new();
    };
    // S9 chains are 6..8; elsewhere numbering starts at 1 (or 0).
    let base = if lowest >= 6 && highest <= 8 {
        6
    } else {
        lowest.min(1)
    };
    by_id
        .into_iter()
        .map(|(id, mut b)| {
            b.slot = u32::try_from(id.saturating_sub(base)).unwrap_or(u32::MAX);
            b
        })
        .collect()
}

/// Paused (`pause` over the API, or from the web UI): every device disabled, or the tuner says so.
fn is_paused(r: &Replies, tuner: Option<&Map<String, Value>>) -> bool {
    let devs = r.section(Command::Devs, "DEVS");
    let all_disabled = !devs.is_empty()
        && devs.iter().filter_map(Value::as_object).all(|d| {
            field_str(d, "Enabled").is_some_and(|e| e.eq_ignore_ascii_case("N"))
                || field_str(d, "Status").is_some_and(|s| {
                    s.eq_ignore_ascii_case("Disabled") || s.eq_ignore_ascii_case("Paused")
                })
        });
    let tuner_paused = tuner.is_some_and(|t| {
        t.values()
            .filter_map(Value::as_str)
            .any(|s| s.to_ascii_lowercase().contains("pause"))
    });
    all_disabled || tuner_paused
}

/// Chains whose tuner state is neither stable nor tuning: an error each (pyasic's rule).
fn tuner_errors(tuner: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(chains)) = tuner.get("TunerChainStatus") else {
        return Vec::new();
    };
    chains
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|c| {
            let status = field_str(c, "Status")?.trim();
            let fine = status.eq_ignore_ascii_case("Stable")
                || status.to_ascii_lowercase().starts_with("tuning");
            (!fine).then(|| {
                let chain = field_u64(c, "HashchainIndex").map_or("?".into(), |i| i.to_string());
                format!("hashchain {chain}: {status}")
            })
        })
        .collect()
}

/// Firmware from the version key (`BOSer`, `BOSminer+`, `BOSminer`, or the old bmminer bOS),
/// model from `devdetails` ("Bitmain Antminer S19 XP" → make Antminer, model "S19 XP").
pub fn identity(r: &Replies) -> Identity {
    let version = r.first(Command::Version, "VERSION");
    let firmware = version
        .and_then(|v| {
            ["BOSer", "BOSminer+", "BOSminer", "BMMiner", "Miner"]
                .iter()
                .find_map(|k| field_str(v, k))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let model_text = r
        .first(Command::Devdetails, "DEVDETAILS")
        .and_then(|d| field_str(d, "Model"))
        .or_else(|| version.and_then(|v| field_str(v, "Type")))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.to_ascii_lowercase().starts_with("braiins"));
    let (make, model) = match model_text {
        Some(m) => split_model(m),
        None => (None, None),
    };
    Identity {
        make,
        model,
        firmware,
        firmware_kind: Some(FirmwareKind::BraiinsOs),
        ..Identity::default()
    }
}

/// "Bitmain Antminer S19XP" → ("Antminer", "S19 XP"). Braiins writes the maker first and glues
/// some suffixes on.
fn split_model(text: &str) -> (Option<String>, Option<String>) {
    let t = text.strip_prefix("Bitmain ").unwrap_or(text).trim();
    let (make, model) = match t.split_once(' ') {
        Some((make, model)) if make.eq_ignore_ascii_case("antminer") => ("Antminer", model.trim()),
        _ => return (None, Some(t.to_string())),
    };
    let model = match model.strip_suffix("XP") {
        Some(head) if !head.ends_with(' ') && !head.is_empty() => format!("{head} XP"),
        _ => model.to_string(),
    };
    (Some(make.to_string()), Some(model))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        let s = |t| split_model(t);
        assert_eq!(
            s("Bitmain Antminer S19 XP"),
            (Some("Antminer".into()), Some("S19 XP".into()))
        );
        assert_eq!(
            s("Bitmain Antminer S19XP"),
            (Some("Antminer".into()), Some("S19 XP".into()))
        );
        assert_eq!(
            s("Antminer S9"),
            (Some("Antminer".into()), Some("S9".into()))
        );
        assert_eq!(s("Whatever 1"), (None, Some("Whatever 1".into())));
    }
}
