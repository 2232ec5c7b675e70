//! Generic cgminer / sgminer: `version`, `summary`, `pools`, `devs`.
//!
//! Units come from the key prefix (`"MHS 5s"`, `"GHS av"`, `"KHS 5s"`), boards from `DEVS[]`
//! (one entry per hash board or device), temperatures from each device's `Temperature` with the
//! placeholders (-273, 0) dropped.

use serde_json::{Map, Value};

use super::{average_rate, board_sum, elapsed, pools, realtime_rate, valid_temp, Command, Replies};
use crate::miner::reply::{self, field, field_str, field_u64};
use crate::model::{Board, Fan, FanUnit, Identity, MinerStats};

pub fn normalize(r: &Replies) -> MinerStats {
    let version = r.first(Command::Version, "VERSION");
    let summary = r.first(Command::Summary, "SUMMARY");
    let devs = if r.get(Command::Devs).is_some() {
        r.section(Command::Devs, "DEVS")
    } else {
        r.section(Command::Edevs, "DEVS")
    };

    let boards: Vec<Board> = devs
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .map(|(i, d)| board(i, d))
        .collect();

    let mut identity = identity(r.get(Command::Version), version);
    fill_from_stats(&mut identity, r);
    MinerStats {
        identity,
        hashrate: summary.and_then(realtime_rate).or(board_sum(&boards)),
        hashrate_avg: summary.and_then(average_rate),
        fans: summary.map(fans).unwrap_or_default(),
        boards,
        uptime: summary.and_then(elapsed),
        pools: r.get(Command::Pools).map(pools).unwrap_or_default(),
        compile_time: compile_time(version),
        ..MinerStats::default()
    }
}

/// Generic builds that write their identity into `STATS[0]` (SealMiner's bdminer: `Model`,
/// `MAC`, `Firmware`); the maker from the miner software's name.
fn fill_from_stats(id: &mut Identity, r: &Replies) {
    let described_as = |needle: &str| {
        [Command::Version, Command::Summary, Command::Stats]
            .iter()
            .filter_map(|&c| r.first(c, "STATUS"))
            .filter_map(|s| field_str(s, "Description"))
            .any(|d| d.to_ascii_lowercase().contains(needle))
    };
    if id.make.is_none() && described_as("bdminer") {
        id.make = Some("SealMiner".into());
    }
    let Some(stats) = r.first(Command::Stats, "STATS") else {
        return;
    };
    let text = |k: &str| {
        field_str(stats, k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if id.model.is_none() {
        id.model = text("Model");
    }
    if id.mac.is_none() {
        id.mac = text("MAC").map(|m| m.to_ascii_lowercase());
    }
}

/// `CompileTime` of a version block, when set.
pub fn compile_time(version: Option<&Map<String, Value>>) -> Option<String> {
    version
        .and_then(|v| field_str(v, "CompileTime"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn board(position: usize, dev: &Map<String, Value>) -> Board {
    // S19 2022 firmware misspells the key; 0 and -273 are placeholders, not readings.
    let temp = ["Temperature", "Tenperature", "temp"]
        .iter()
        .find_map(|k| field(dev, k))
        .filter(|&t| valid_temp(t));
    Board {
        slot: u32::try_from(position).unwrap_or(u32::MAX),
        hashrate: realtime_rate(dev),
        chips: ["ChipNum", "Chips", "chip_count"]
            .iter()
            .find_map(|k| field_u64(dev, k))
            .and_then(|n| u32::try_from(n).ok()),
        board_temps: temp.into_iter().collect(),
        ..Board::default()
    }
}

/// `Fan1`..`FanN` (RPM) in the summary, as some cgminer forks report (StrongU).
pub fn fans(summary: &Map<String, Value>) -> Vec<Fan> {
    let mut fans: Vec<Fan> = summary
        .iter()
        .filter_map(|(k, v)| {
            let n: u32 = k
                .strip_prefix("Fan")
                .or_else(|| k.strip_prefix("fan"))
                .filter(|d| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()))?
                .parse()
                .ok()?;
            let speed = reply::num(v).filter(|&s| s > 0.0)?;
            Some(Fan {
                slot: n.checked_sub(1)?,
                speed,
                unit: FanUnit::Rpm,
            })
        })
        .collect();
    fans.sort_by_key(|f| f.slot);
    fans
}

/// Model from `Type` (or Avalon's `PROD`/`MODEL`), split into make and model when it reads like
/// "Maker Model"; firmware from the status description ("cgminer 4.11.1", "bdminer 4.11.1").
pub fn identity(reply: Option<&Value>, version: Option<&Map<String, Value>>) -> Identity {
    let text = |key: &str| {
        version
            .and_then(|v| field_str(v, key))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let full = text("Type")
        .or_else(|| text("PROD"))
        .or_else(|| text("MODEL"));
    let (make, model) = match full {
        Some(name) => {
            let first_line = name.lines().next().unwrap_or("");
            let name = first_line
                .find(" (")
                .map_or(first_line, |i| &first_line[..i])
                .trim();
            match name.split_once(' ') {
                Some((make, model)) if make.chars().all(char::is_alphabetic) => {
                    (Some(make.to_string()), Some(model.trim().to_string()))
                }
                _ => (None, Some(name.to_string())),
            }
        }
        None => (None, None),
    };
    let description = reply
        .and_then(|r| reply::first_obj(r, "STATUS"))
        .and_then(|s| field_str(s, "Description"))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    Identity {
        make,
        model: model.filter(|m| !m.is_empty()),
        firmware: description.or_else(|| text("Miner")).map(str::to_string),
        ..Identity::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn devices_become_boards() {
        let mut r = Replies::default();
        r.set(
            Command::Devs,
            json!({"STATUS":[{"STATUS":"S"}],"DEVS":[
                {"ASC":0,"ID":6,"Temperature":0,"MHS 5s":4000000.0,"Chips":63},
                {"ASC":1,"ID":7,"Temperature":-273.0,"MHS 5s":"4100000"},
                {"ASC":2,"ID":8,"Temperature":58.5,"MHS 5s":""}]}),
        );
        let s = normalize(&r);
        assert_eq!(s.boards.len(), 3);
        assert_eq!(s.boards[0].slot, 0);
        assert_eq!(s.boards[0].chips, Some(63));
        assert!(s.boards[0].board_temps.is_empty());
        assert!(s.boards[1].board_temps.is_empty());
        assert_eq!(s.boards[2].board_temps, [58.5]);
        assert_eq!(s.boards[2].hashrate, None);
        // No summary: the realtime rate is the sum of the devices that report one.
        assert_eq!(s.hashrate, Some(8.1e12));
    }

    #[test]
    fn identity_from_version() {
        let v = json!({"STATUS":[{"STATUS":"S","Description":"ccminer 2.3.3"}],
                       "VERSION":[{"CGMiner":"2.3.3","Type":"Hammer D10"}]});
        let id = identity(Some(&v), reply::first_obj(&v, "VERSION"));
        assert_eq!(id.make.as_deref(), Some("Hammer"));
        assert_eq!(id.model.as_deref(), Some("D10"));
        assert_eq!(id.firmware.as_deref(), Some("ccminer 2.3.3"));
    }
}
