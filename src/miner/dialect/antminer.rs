//! Stock Antminer (Bitmain bmminer / cgminer builds): `version`, `summary`, `pools`, `stats`.
//!
//! Most of the data sits in `STATS[1]`, a flat object of numbered keys (`chain_rate6`,
//! `temp2_7`, `fan3`...) whose numbering, units and placeholders vary by model and firmware age.
//! The rules, with the case that motivates each:
//! * chain numbers are 1..N or 6..8 (S9); boards keep their physical slot after removing the
//!   offset, and a chain with no chips and an empty rate (`""`) is an empty slot, not a dead
//!   board (C-03);
//! * `GHS` fields are GH/s on SHA-256 models but MH/s (L3/D3/E3) or kSol/s (Z9/Z11) on others;
//!   `rate_unit` wins where present (C-07);
//! * temperatures come as numbers or dash-joined strings (`"29-54-30-55"`, `"2--1-20-22"` holds
//!   a -1), `"-"` and 0 mean "no reading", and implausible values are dropped (C-04);
//! * fan slots are zero-filled and the real fans sit anywhere (S9: slots 3 and 6, C-08).
//!
//! Newer builds answer `stats` with `"new_api":true` in the structured form instead:
//! `STATS[0].chain[]` objects (`rate_real` GH/s, `asic_num`, `temp_pcb[]`, `temp_chip[]`) and
//! a `fan[]` list; both forms are read.
//!
//! Hiveon, VNish and LuxOS keep this stats layout: their modules reuse [`read`].

use serde_json::{Map, Value};

use super::{board_sum, elapsed, pools, valid_temp, Command, Replies};
use crate::miner::reply::{self, field, field_str, leading_num, num};
use crate::model::{Board, Fan, FanUnit, FirmwareKind, Identity, MinerStats, PowerMode};

/// Highest chain / fan number we look at. Real firmwares stop at 16; the bound keeps the
/// per-index tables small and fixed whatever a reply claims.
const MAX_INDEX: usize = 32;

const GH: f64 = 1e9;

pub fn normalize(r: &Replies) -> MinerStats {
    let mut stats = read(r);
    let kind = version_block(r)
        .and_then(|v| field_str(v, "BMMiner"))
        .is_some_and(|m| m.to_ascii_lowercase().contains("asicseer"));
    stats.identity.firmware_kind = Some(if kind {
        FirmwareKind::Asicseer
    } else {
        FirmwareKind::Stock
    });
    stats
}

/// The version block: `VERSION[0]`, or (singles mode skips `version`) the same block that
/// `STATS[0]` repeats.
pub fn version_block(r: &Replies) -> Option<&Map<String, Value>> {
    let from_stats = || r.get(Command::Stats).and_then(stats_version_block);
    match r.first(Command::Version, "VERSION") {
        // asicdip's `version` has no `Type`; its stats copy does.
        Some(v) if !v.contains_key("Type") => from_stats().or(Some(v)),
        Some(v) => Some(v),
        None => from_stats(),
    }
}

/// Everything the Antminer-shaped replies hold, with the make "Antminer" and the model from
/// `Type`. Alternative firmwares adjust the identity afterwards.
pub fn read(r: &Replies) -> MinerStats {
    let version = version_block(r);
    let stats_reply = r.get(Command::Stats);
    let data = stats_reply.and_then(stats_data);
    let structured = stats_reply.and_then(new_api_data);
    let summary = r.first(Command::Summary, "SUMMARY");

    let identity = identity(version);
    let unit = data
        .or(structured)
        .and_then(|d| field_str(d, "rate_unit"))
        .and_then(unit_from_label)
        .or_else(|| identity.model.as_deref().and_then(unit_from_model))
        .unwrap_or(GH);

    let boards = match (data, structured) {
        (_, Some(s)) => new_api_boards(s, unit),
        (Some(d), None) => boards(d, unit),
        (None, None) => Vec::new(),
    };
    let chain_sum = board_sum(&boards);
    let data = data.or(structured);

    // Summary first, STATS[1] as fallback (the summary command may have failed on its own).
    let pick = |key: &str| {
        summary
            .and_then(|s| field(s, key))
            .or_else(|| data.and_then(|d| field(d, key)))
    };
    let mut realtime = pick("GHS 5s").or_else(|| pick("rate_5s")).map(|x| x * unit);
    let mut average = pick("GHS av")
        .or_else(|| pick("rate_avg"))
        .or_else(|| pick("rate_30m"))
        .or_else(|| pick("GHS 30m"))
        .map(|x| x * unit);
    if let (Some(rt), Some(sum)) = (realtime, chain_sum) {
        // Some custom Z11 builds print the totals in Sol/s but the chains in kSol/s: the chains
        // are the consistent ones, so bring the totals to their unit.
        let ratio = rt / sum;
        if sum > 0.0 && (900.0..=1100.0).contains(&ratio) {
            realtime = Some(rt / 1000.0);
            average = average.map(|a| a / 1000.0);
        }
    }
    let realtime = realtime.or(chain_sum);

    MinerStats {
        family: None,
        hashrate: realtime,
        hashrate_avg: average,
        hashrate_ideal: data
            .and_then(|d| field(d, "total_rateideal").or_else(|| field(d, "rate_ideal")))
            .filter(|&x| x > 0.0)
            .map(|x| x * unit),
        boards,
        fans: data.map(fans).unwrap_or_default(),
        expected_fans: data
            .and_then(|d| field(d, "fan_num"))
            .and_then(reply::to_u64)
            .and_then(|n| u32::try_from(n).ok()),
        fan_duty: data
            .and_then(|d| field(d, "fan_pwm"))
            .filter(|p| (0.0..=100.0).contains(p)),
        inlet_temp: None,
        outlet_temp: None,
        power: data.and_then(power),
        power_limit: None,
        uptime: summary
            .and_then(elapsed)
            .or_else(|| data.and_then(elapsed))
            .or_else(|| {
                data.and_then(|d| field(d, "elapsed"))
                    .and_then(reply::to_u64)
            }),
        pools: r.get(Command::Pools).map(pools).unwrap_or_default(),
        power_mode: data.and_then(power_mode),
        is_hashing: None,
        stopped_reason: None,
        errors: Vec::new(),
        error_codes: Vec::new(),
        compile_time: version
            .and_then(|v| field_str(v, "CompileTime"))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        identity,
    }
}

/// STATS[0]: the version block (`Type`, `CompileTime`, `BMMiner`/`CGMiner`, `Miner`).
fn stats_version_block(stats: &Value) -> Option<&Map<String, Value>> {
    reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.contains_key("Type"))
}

/// The data block (legacy `STATS[1]`): the object that is not the version block.
fn stats_data(stats: &Value) -> Option<&Map<String, Value>> {
    let objects = || {
        reply::section(stats, "STATS")
            .iter()
            .filter_map(Value::as_object)
    };
    objects()
        .find(|o| {
            !o.contains_key("Type")
                && !o.contains_key("chain")
                && ["STATS", "ID", "Elapsed", "miner_count"]
                    .iter()
                    .any(|k| o.contains_key(*k))
        })
        .or_else(|| reply::nth_obj(stats, "STATS", 1).filter(|o| !o.contains_key("chain")))
}

/// The `new_api` data block: the `STATS` object holding a `chain` array.
fn new_api_data(stats: &Value) -> Option<&Map<String, Value>> {
    reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.get("chain").is_some_and(Value::is_array))
}

/// Boards of the `new_api` form: one `chain[]` object per board, `index` 0-based.
fn new_api_boards(data: &Map<String, Value>, unit: f64) -> Vec<Board> {
    let Some(Value::Array(chains)) = data.get("chain") else {
        return Vec::new();
    };
    let list = |c: &Map<String, Value>, key: &str| -> Vec<f64> {
        let mut raw = Vec::new();
        match c.get(key) {
            Some(Value::Array(items)) => items.iter().for_each(|v| readings(v, &mut raw)),
            Some(v) => readings(v, &mut raw),
            None => {}
        }
        raw.retain(|&t| valid_temp(t));
        raw
    };
    chains
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .filter_map(|(i, c)| {
            let rate = field(c, "rate_real").or_else(|| field(c, "hashrate"));
            let chips = field(c, "asic_num").and_then(reply::to_u64);
            if rate.is_none() && chips.is_none_or(|n| n == 0) {
                return None;
            }
            let slot = field(c, "index")
                .and_then(reply::to_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(u32::try_from(i).unwrap_or(u32::MAX));
            Some(Board {
                slot,
                hashrate: rate.map(|r| r * unit),
                hashrate_ideal: field(c, "rate_ideal")
                    .filter(|&x| x > 0.0)
                    .map(|x| x * unit),
                chips: chips.and_then(|n| u32::try_from(n).ok()),
                board_temps: list(c, "temp_pcb"),
                chip_temps: list(c, "temp_chip"),
                has_chip_errors: field_str(c, "asic").is_some_and(|s| s.contains('x')),
                serial: field_str(c, "sn")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                ..Board::default()
            })
        })
        .collect()
}

fn identity(version: Option<&Map<String, Value>>) -> Identity {
    let text = |key: &str| {
        version
            .and_then(|v| field_str(v, key))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    Identity {
        make: Some("Antminer".into()),
        model: text("Type").map(model_from_type).filter(|m| !m.is_empty()),
        // Bitmain's web UI shows the build date as "Firmware Version"; the miner version numbers
        // are the fallback for builds without one.
        firmware: ["CompileTime", "Miner", "BMMiner", "CGMiner"]
            .iter()
            .find_map(|k| text(k))
            .map(str::to_string),
        ..Identity::default()
    }
}

/// "Antminer S19 Pro" → "S19 Pro"; "Antminer S17+ (vnish 2.0.3)" → "S17+";
/// "Antminer S9\nV1.3.58" → "S9".
pub fn model_from_type(ty: &str) -> String {
    let first_line = ty.lines().next().unwrap_or("");
    let no_suffix = first_line
        .find(" (")
        .map_or(first_line, |i| &first_line[..i]);
    let trimmed = no_suffix.trim();
    let without_make = match trimmed.get(..8) {
        Some(prefix) if prefix.eq_ignore_ascii_case("antminer") => trimmed[8..].trim_start(),
        _ => trimmed,
    };
    without_make.to_string()
}

/// `rate_unit` label → H/s multiplier ("GH", "MH/s", "TH"...).
fn unit_from_label(label: &str) -> Option<f64> {
    let l = label.trim();
    let l = l
        .strip_suffix("/s")
        .or_else(|| l.strip_suffix("/S"))
        .unwrap_or(l);
    Some(match l.to_ascii_uppercase().as_str() {
        "H" => 1.0,
        "KH" => 1e3,
        "MH" => 1e6,
        "GH" => 1e9,
        "TH" => 1e12,
        "PH" => 1e15,
        _ => return None,
    })
}

/// The unit the `GHS` fields really have on non-SHA-256 models without `rate_unit`:
/// scrypt (L3), X11 (D3) and ethash (E3) report MH/s, equihash (Z9/Z11) kSol/s.
fn unit_from_model(model: &str) -> Option<f64> {
    let m = model.trim().to_ascii_uppercase();
    let series: String = m.chars().take_while(char::is_ascii_alphanumeric).collect();
    let letter = series.chars().next()?;
    match letter {
        'L' | 'E' => Some(1e6),
        'D' if series == "D3" => Some(1e6),
        'Z' => Some(1e3),
        _ => None,
    }
}

/// Values of one chain's numbered keys in `STATS[1]`.
#[derive(Debug, Clone, Copy, Default)]
struct ChainKeys<'a> {
    rate: Option<&'a Value>,
    chips: Option<&'a Value>,
    chip_status: Option<&'a Value>,
    /// `chain_rateidealN`: expected rate.
    ideal: Option<&'a Value>,
    /// `tempN`: board sensor.
    temp: Option<&'a Value>,
    /// `temp2_N`: chip sensor.
    temp2: Option<&'a Value>,
    /// `temp_pcbN`: dash-joined board sensors.
    pcb: Option<&'a Value>,
    /// `temp_chipN`: dash-joined chip sensors.
    chip: Option<&'a Value>,
}

impl ChainKeys<'_> {
    fn has_chain_keys(&self) -> bool {
        self.rate.is_some() || self.chips.is_some() || self.chip_status.is_some()
    }

    /// A chain is there when it has chips, a chip map, or a rate. An empty rate with zero chips
    /// is an empty slot (C-03), not a dead board.
    fn is_present(&self) -> bool {
        let chips = self.chips.and_then(num).unwrap_or(0.0);
        let status = self
            .chip_status
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains(['o', 'x']));
        let rate = self.rate.and_then(num);
        chips > 0.0 || status || rate.is_some_and(|r| r > 0.0 || self.chips.is_none())
    }

    /// For replies with no chain keys at all: a chain is there when it reports any temperature.
    fn has_temperature(&self) -> bool {
        let mut raw = Vec::new();
        for v in [self.temp, self.temp2, self.pcb, self.chip]
            .into_iter()
            .flatten()
        {
            readings(v, &mut raw);
        }
        raw.iter().any(|&t| t != 0.0)
    }
}

/// `digits` → index, when it is a small decimal number.
fn index(digits: &str) -> Option<usize> {
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n <= MAX_INDEX)
}

fn boards(data: &Map<String, Value>, unit: f64) -> Vec<Board> {
    let mut chains = [ChainKeys::default(); MAX_INDEX + 1];
    // One pass over the keys; every numbered key lands in its chain's slot.
    for (key, value) in data {
        let v = Some(value);
        if let Some(rest) = key.strip_prefix("chain_") {
            if let Some(n) = rest.strip_prefix("rate").and_then(index) {
                chains[n].rate = v;
            } else if let Some(n) = rest.strip_prefix("acn").and_then(index) {
                chains[n].chips = v;
            } else if let Some(n) = rest.strip_prefix("acs").and_then(index) {
                chains[n].chip_status = v;
            } else if let Some(n) = rest.strip_prefix("rateideal").and_then(index) {
                chains[n].ideal = v;
            }
        } else if let Some(rest) = key.strip_prefix("temp") {
            if let Some(n) = index(rest) {
                chains[n].temp = v;
            } else if let Some(n) = rest.strip_prefix("2_").and_then(index) {
                chains[n].temp2 = v;
            } else if let Some(n) = rest.strip_prefix("_pcb").and_then(index) {
                chains[n].pcb = v;
            } else if let Some(n) = rest.strip_prefix("_chip").and_then(index) {
                chains[n].chip = v;
            }
        }
    }

    let by_chain_keys = chains.iter().any(ChainKeys::has_chain_keys);
    let present: Vec<usize> = (0..=MAX_INDEX)
        .filter(|&i| {
            if by_chain_keys {
                chains[i].is_present()
            } else {
                chains[i].has_temperature()
            }
        })
        .collect();
    let (Some(&lowest), Some(&highest)) = (present.first(), present.last()) else {
        return Vec::new();
    };
    // S9-era builds number their three chains 6..8; everything else counts from 1.
    let base = if lowest >= 6 && highest <= 8 {
        6
    } else {
        lowest.min(1)
    };

    present
        .into_iter()
        .map(|i| {
            let c = &chains[i];
            let mut board_temps = valid_readings(i, "temp_pcb", c.pcb);
            if board_temps.is_empty() {
                board_temps = valid_readings(i, "temp", c.temp);
            }
            let mut chip_temps = valid_readings(i, "temp_chip", c.chip);
            if chip_temps.is_empty() {
                chip_temps = valid_readings(i, "temp2_", c.temp2);
            }
            Board {
                slot: u32::try_from(i - base).unwrap_or(u32::MAX),
                hashrate: c.rate.and_then(num).map(|r| r * unit),
                chips: c
                    .chips
                    .and_then(num)
                    .and_then(reply::to_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                board_temps,
                chip_temps,
                has_chip_errors: c
                    .chip_status
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.contains('x')),
                hashrate_ideal: c.ideal.and_then(num).filter(|&x| x > 0.0).map(|x| x * unit),
                ..Board::default()
            }
        })
        .collect()
}

/// Raw temperature readings of one key: a number, a numeric string, or a dash-joined list in
/// which a dash right after a separator (or at the start) is a minus sign:
/// `"51-85"` → 51, 85; `"-83"` → -83; `"2--1-20-22"` → 2, -1, 20, 22; `"-"` → nothing.
pub fn readings(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::String(s) => {
            let mut negative = false;
            for token in s.split('-') {
                let t = token.trim();
                if t.is_empty() {
                    negative = true;
                    continue;
                }
                if let Some(x) = reply::num_str(t) {
                    out.push(if negative { -x } else { x });
                }
                negative = false;
            }
        }
        other => out.extend(num(other)),
    }
}

fn valid_readings(chain: usize, key: &str, v: Option<&Value>) -> Vec<f64> {
    let Some(v) = v else { return Vec::new() };
    let mut raw = Vec::new();
    readings(v, &mut raw);
    raw.retain(|&t| {
        let ok = valid_temp(t);
        if !ok {
            // Kept out of the model but visible for diagnostics (C-04: -83 on a hashing chain,
            // 0 from a dead sensor).
            tracing::debug!(
                chain,
                key,
                reading = t,
                "temperature reading dropped as invalid"
            );
        }
        ok
    });
    raw
}

/// Fans with a non-zero reading. Zero-filled slots are absent (an S9 reports 8 slots for its 2
/// fans), except when `fan_num` says more fans exist than read non-zero and the fans are
/// numbered from 1 (S17/S19): then the zero slots within `fan_num` are stopped fans.
fn fans(data: &Map<String, Value>) -> Vec<Fan> {
    let mut readings = [None; MAX_INDEX + 1];
    if let Some(Value::Array(list)) = data.get("fan") {
        // `new_api`: a plain list, first fan first.
        for (i, v) in list.iter().take(MAX_INDEX).enumerate() {
            readings[i + 1] = num(v);
        }
    }
    for (key, value) in data {
        if let Some(n) = key.strip_prefix("fan").and_then(index) {
            readings[n] = num(value);
        }
    }
    let fan = |i: usize, speed: f64| Fan {
        slot: u32::try_from(i.saturating_sub(1)).unwrap_or(u32::MAX),
        speed,
        unit: FanUnit::Rpm,
    };
    // Fans are numbered from 1 (`fan0` is not a fan).
    let mut fans: Vec<Fan> = (1..=MAX_INDEX)
        .filter_map(|i| readings[i].filter(|&s| s > 0.0).map(|s| fan(i, s)))
        .collect();
    let expected = field(data, "fan_num")
        .and_then(reply::to_u64)
        .map_or(0, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).min(MAX_INDEX)
        });
    if expected > fans.len() && fans.iter().all(|f| (f.slot as usize) < expected) {
        for (i, reading) in readings.iter().enumerate().take(expected + 1).skip(1) {
            if *reading == Some(0.0) {
                fans.push(fan(i, 0.0));
            }
        }
        fans.sort_by_key(|f| f.slot);
    }
    fans
}

/// Power draw in W where the firmware reports it (`chain_power` "3250 W", or `power`, `Power`,
/// `watt` depending on the model, else the sum of per-chain `chain_powerN`); older Antminers
/// report none.
fn power(data: &Map<String, Value>) -> Option<f64> {
    ["chain_power", "power", "Power", "watt"]
        .iter()
        .find_map(|k| data.get(*k).and_then(leading_num))
        .or_else(|| {
            let per_chain = data
                .iter()
                .filter(|(k, _)| k.strip_prefix("chain_power").and_then(index).is_some())
                .filter_map(|(_, v)| leading_num(v))
                .filter(|&w| w > 0.0);
            per_chain.fold(None, |acc: Option<f64>, w| Some(acc.unwrap_or(0.0) + w))
        })
        .filter(|&w| w > 0.0)
}

/// Sleeping is visible as `Mode` 254 (S17+/T17+), or as the work mode when a firmware copies
/// its config key into stats.
fn power_mode(data: &Map<String, Value>) -> Option<PowerMode> {
    let work_mode = ["bitmain-work-mode", "miner-mode"]
        .iter()
        .find_map(|k| field(data, k));
    // Bitmain's `bitmain-work-mode`: 0 normal, 1 sleep, 2 high, 3 low.
    match work_mode.and_then(reply::to_u64) {
        Some(0) => return Some(PowerMode::Normal),
        Some(1) => return Some(PowerMode::Sleeping),
        Some(2) => return Some(PowerMode::High),
        Some(3) => return Some(PowerMode::Low),
        _ => {}
    }
    (field(data, "Mode") == Some(254.0)).then_some(PowerMode::Sleeping)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temps(v: Value) -> Vec<f64> {
        let mut out = Vec::new();
        readings(&v, &mut out);
        out
    }

    #[test]
    fn temperature_encodings() {
        assert_eq!(temps(json!("51-85")), [51.0, 85.0]);
        assert_eq!(temps(json!("29-54-30-55")), [29.0, 54.0, 30.0, 55.0]);
        assert_eq!(temps(json!("-83")), [-83.0]);
        assert_eq!(temps(json!(-83)), [-83.0]);
        assert_eq!(temps(json!("2--1-20-22")), [2.0, -1.0, 20.0, 22.0]);
        assert_eq!(temps(json!("-8--11-10-12")), [-8.0, -11.0, 10.0, 12.0]);
        assert!(temps(json!("-")).is_empty());
        assert!(temps(json!("")).is_empty());
        assert_eq!(temps(json!("0-0-0-0")), [0.0; 4]);
        assert_eq!(temps(json!(" 54.5 ")), [54.5]);
    }

    #[test]
    fn model_names() {
        assert_eq!(model_from_type("Antminer S19 Pro"), "S19 Pro");
        assert_eq!(model_from_type("Antminer S17+ (vnish 2.0.3)"), "S17+");
        assert_eq!(model_from_type("Antminer S9\nV1.3.58"), "S9");
        assert_eq!(model_from_type("Antminer S9 Pro (v5.1) "), "S9 Pro");
        assert_eq!(model_from_type("antminer L3+"), "L3+");
        assert_eq!(model_from_type("Antminer"), "");
    }

    #[test]
    fn units() {
        assert_eq!(unit_from_label("GH"), Some(1e9));
        assert_eq!(unit_from_label("MH/s"), Some(1e6));
        assert_eq!(unit_from_label("th"), Some(1e12));
        assert_eq!(unit_from_label("??"), None);
        assert_eq!(unit_from_model("L3+"), Some(1e6));
        assert_eq!(unit_from_model("D3 Blissz v2.06 beta"), Some(1e6));
        assert_eq!(unit_from_model("E3"), Some(1e6));
        assert_eq!(unit_from_model("Z11"), Some(1e3));
        assert_eq!(unit_from_model("S19 Pro"), None);
        assert_eq!(unit_from_model("D7"), None);
        assert_eq!(unit_from_model(""), None);
    }

    #[test]
    fn fans_with_a_stopped_one() {
        let d = json!({"fan_num":4,"fan1":6000,"fan2":5880,"fan3":5040,"fan4":0,"fan5":0});
        let f = fans(d.as_object().unwrap());
        let got: Vec<(u32, f64)> = f.iter().map(|f| (f.slot, f.speed)).collect();
        assert_eq!(got, [(0, 6000.0), (1, 5880.0), (2, 5040.0), (3, 0.0)]);
        // S9: offset slots, fan_num satisfied: zero slots stay absent.
        let d = json!({"fan_num":2,"fan1":0,"fan3":6000,"fan6":5640,"fan8":0});
        let got: Vec<(u32, f64)> = fans(d.as_object().unwrap())
            .iter()
            .map(|f| (f.slot, f.speed))
            .collect();
        assert_eq!(got, [(2, 6000.0), (5, 5640.0)]);
        // Sleeping: no fan spins, none expected.
        let d = json!({"fan_num":0,"fan1":0,"fan2":0});
        assert!(fans(d.as_object().unwrap()).is_empty());
    }

    #[test]
    fn power_fields() {
        let p = |v: Value| power(v.as_object().unwrap());
        assert_eq!(p(json!({"chain_power":"3250 W"})), Some(3250.0));
        assert_eq!(p(json!({"power":3100})), Some(3100.0));
        assert_eq!(p(json!({"watt":"3300"})), Some(3300.0));
        assert_eq!(p(json!({"Power":0})), None);
        assert_eq!(p(json!({})), None);
    }

    #[test]
    fn sleeping() {
        let m = |v: Value| power_mode(v.as_object().unwrap());
        assert_eq!(m(json!({"Mode":254})), Some(PowerMode::Sleeping));
        assert_eq!(m(json!({"Mode":2})), None);
        assert_eq!(
            m(json!({"bitmain-work-mode":"1","Mode":2})),
            Some(PowerMode::Sleeping)
        );
        assert_eq!(m(json!({"bitmain-work-mode":"0"})), Some(PowerMode::Normal));
    }
}
