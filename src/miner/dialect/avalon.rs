//! Canaan Avalon (cgminer 4.x fork): `version`, `summary`, `pools`, `stats`, joined.
//!
//! Everything about the hardware sits in one string per module, `STATS[n]["MM ID<k>"]`, made
//! of `Key[value]` tokens: `GHSspd[2630.98] FanR[41%] PVT_T0[ 86  87 ...]` (C-06). Values can
//! be lists (space separated, padded), carry `%`, or be prose (`SYSTEMSTATU[Work: In Work,
//! Hash Board: 3 ]`); keys can hold a space (`Nonce Mask[25]`) and a token may follow `]`
//! without a blank. Avalon Q / nano write the blob as `'STATS':{...}` under `"MM ID0:Summary"`
//! and the per-board chip data as `'HB0':{...}` under `"HBinfo"` (C-09: an `HB` entry may be
//! empty). The same quantity appears several times; the choice:
//! * realtime: the summary's shortest window, else `GHSspd`; average `GHSavg`; expected
//!   `GHSmm`; per board `MGHS[b0 b1 ..]` (all GH/s);
//! * temperatures: `Temp`/`ITemp` intake, `OTemp`/`HBOTemp` exhaust, `MTmax`/`MTavg` per board
//!   (or `TMax`/`TAvg` for a one-board unit), `PVT_T<n>` per chip; -273 and 0 are no readings;
//! * fans `Fan1..N` in RPM and `FanR` the duty in % (never RPM);
//! * power `WALLPOWER`, else the PSU report `PS[...]`; limit `MPO`;
//! * sleeping: `SoftOFF` non-zero or `SYSTEMSTATU` "In Idle"; error codes `ECHU[..]`, `ECMM`.
//!
//! Older controllers (Avalon 7/8/9 behind an AUC) report several modules, `MM ID1..5` per
//! device: each module is one board here.

use serde_json::Value;

use super::{average_rate, board_sum, elapsed, pools, realtime_rate, valid_temp, Command, Replies};
use crate::miner::reply::{self, field_str, num_str};
use crate::model::{Board, ErrorCode, Fan, FanUnit, FirmwareKind, Identity, MinerStats, PowerMode};

const GH: f64 = 1e9;

/// One parsed `MM ID` blob (plus its `HBinfo`, if any): the `Key[value]` pairs, in order.
#[derive(Debug, Default)]
pub struct Blob<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    /// `HBinfo` boards: index → pairs of that board.
    boards: Vec<(u32, Vec<(&'a str, &'a str)>)>,
}

impl<'a> Blob<'a> {
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// `key` as one number (`"2630.98"`, `"41%"`, `" 38 "`).
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(scalar)
    }

    /// `key` as a list of numbers (`"[ 86  87 ]"` → 86, 87).
    pub fn list(&self, key: &str) -> Vec<f64> {
        self.get(key).map(list).unwrap_or_default()
    }

    /// `key` looked up in the `HBinfo` entry of board `n`, then in the blob itself.
    fn board_list(&self, n: u32, key: &str) -> Vec<f64> {
        self.boards
            .iter()
            .find(|(i, _)| *i == n)
            .and_then(|(_, pairs)| pairs.iter().find(|(k, _)| *k == key))
            .map(|(_, v)| list(v))
            .unwrap_or_else(|| self.list(key))
    }
}

/// A value as one number: leading number of the trimmed text, `%` and units allowed.
fn scalar(v: &str) -> Option<f64> {
    let t = v.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(t.len());
    num_str(&t[..end])
}

fn list(v: &str) -> Vec<f64> {
    v.split_ascii_whitespace().filter_map(scalar).collect()
}

/// Parses `Key[value] Key2[v a l] ...`. Never fails: text it cannot read is skipped.
pub fn parse_pairs(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let key = rest[..open]
            .trim()
            .trim_start_matches(['{', '}', ',', '\''])
            .trim();
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let value = &after[..close];
        // A key is the last word-ish run before `[` (prose before it is not part of the key).
        let key = key.rsplit(['{', '}', '\'']).next().unwrap_or(key).trim();
        if !key.is_empty() {
            out.push((key, value));
        }
        rest = &after[close + 1..];
    }
    out
}

/// One module: the `MM ID` text (Avalon Q wraps it as `'STATS':{...}`) and the device's
/// `HBinfo` text (`'HB0':{...} 'HB1':{...}`).
pub fn parse_blob<'a>(mm: &'a str, hbinfo: Option<&'a str>) -> Blob<'a> {
    let mut blob = Blob {
        pairs: parse_pairs(mm),
        boards: Vec::new(),
    };
    if let Some(hb) = hbinfo {
        let mut rest = hb;
        while let Some(start) = rest.find("'HB") {
            let tail = &rest[start + 3..];
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            let body_start = tail.find('{').map_or(tail.len(), |i| i + 1);
            let body_end = tail[body_start..]
                .find('}')
                .map_or(tail.len(), |i| body_start + i);
            if let Ok(n) = digits.parse::<u32>() {
                blob.boards
                    .push((n, parse_pairs(&tail[body_start..body_end])));
            }
            rest = &tail[body_end..];
        }
    }
    blob
}

/// The modules of a `stats` reply, in order: `(MM text, HBinfo text)`.
fn modules(stats: &Value) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    for device in reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
    {
        let hbinfo = device.get("HBinfo").and_then(Value::as_str);
        let mut keys: Vec<(&String, &str)> = device
            .iter()
            .filter(|(k, _)| k.starts_with("MM ID"))
            .filter_map(|(k, v)| Some((k, v.as_str()?)))
            .collect();
        keys.sort_by_key(|(k, _)| mm_index(k));
        out.extend(keys.into_iter().map(|(_, v)| (v, hbinfo)));
    }
    out
}

/// `"MM ID3"` → 3, `"MM ID0:Summary"` → 0.
fn mm_index(key: &str) -> u32 {
    key.trim_start_matches("MM ID")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(u32::MAX)
}

pub fn normalize(r: &Replies) -> MinerStats {
    let summary = r.first(Command::Summary, "SUMMARY");
    let stats = r.get(Command::Stats);
    let raw_modules = stats.map(modules).unwrap_or_default();
    let blobs: Vec<Blob> = raw_modules
        .iter()
        .map(|(mm, hb)| parse_blob(mm, *hb))
        .collect();

    let boards = if blobs.len() == 1 {
        one_module_boards(&blobs[0])
    } else {
        blobs
            .iter()
            .zip(0u32..)
            .map(|(b, slot)| module_board(b, slot))
            .collect()
    };
    let sum = |key: &str| {
        blobs
            .iter()
            .filter_map(|b| b.num(key))
            .fold(None, |acc: Option<f64>, x| Some(acc.unwrap_or(0.0) + x))
    };
    let first = |key: &str| blobs.iter().find_map(|b| b.num(key));
    let fans = blobs.first().map(fans).unwrap_or_default();
    let sleeping = blobs.iter().any(|b| {
        b.num("SoftOFF").is_some_and(|x| x != 0.0)
            || b.get("SYSTEMSTATU").is_some_and(|s| s.contains("In Idle"))
    });
    let stats_elapsed = stats
        .and_then(|s| reply::first_obj(s, "STATS"))
        .and_then(elapsed);
    MinerStats {
        identity: identity(r, blobs.first()),
        hashrate: summary
            .and_then(realtime_rate)
            .or_else(|| sum("GHSspd").map(|x| x * GH))
            .or(board_sum(&boards)),
        hashrate_avg: summary
            .and_then(average_rate)
            .or_else(|| sum("GHSavg").map(|x| x * GH)),
        hashrate_ideal: sum("GHSmm").filter(|&x| x > 0.0).map(|x| x * GH),
        boards,
        fans,
        expected_fans: None,
        fan_duty: first("FanR").filter(|d| (0.0..=100.0).contains(d)),
        inlet_temp: ["Temp", "ITemp", "HBITemp"]
            .iter()
            .find_map(|k| first(k).filter(|&t| valid_temp(t))),
        outlet_temp: ["OTemp", "HBOTemp"]
            .iter()
            .find_map(|k| first(k).filter(|&t| valid_temp(t))),
        power: blobs
            .iter()
            .filter_map(power)
            .fold(None, |acc: Option<f64>, w| Some(acc.unwrap_or(0.0) + w)),
        power_limit: sum("MPO").filter(|&w| w > 0.0),
        uptime: summary
            .and_then(elapsed)
            .or(stats_elapsed)
            .or_else(|| first("Elapsed").and_then(reply::to_u64)),
        pools: r.get(Command::Pools).map(pools).unwrap_or_default(),
        power_mode: sleeping.then_some(PowerMode::Sleeping),
        error_codes: blobs.iter().flat_map(error_codes).collect(),
        ..MinerStats::default()
    }
}

/// A one-module miner: boards from the per-board lists (`MGHS`, `MTmax`, `MTavg`, `PVT_T<n>`),
/// as many as the longest list or the `HBinfo` entries say.
fn one_module_boards(b: &Blob) -> Vec<Board> {
    let rates = b.list("MGHS");
    let tmax = b.list("MTmax");
    let tavg = b.list("MTavg");
    let count = [rates.len(), tmax.len(), tavg.len(), b.boards.len()]
        .into_iter()
        .max()
        .unwrap_or(0)
        .min(64);
    let count = if count == 0 && (b.get("GHSavg").is_some() || b.get("PVT_T0").is_some()) {
        1
    } else {
        count
    };
    (0..count)
        .map(|i| {
            let n = u32::try_from(i).unwrap_or(u32::MAX);
            let chip_temps: Vec<f64> = b
                .board_list(n, &format!("PVT_T{i}"))
                .into_iter()
                .filter(|&t| valid_temp(t))
                .collect();
            let mw = b.board_list(n, &format!("MW{i}"));
            // One-board units print their aggregates without the per-board `M` prefix.
            let single = |list: &[f64], key: &str| {
                list.get(i)
                    .copied()
                    .or_else(|| (count == 1).then(|| b.num(key)).flatten())
                    .filter(|&t| valid_temp(t))
            };
            Board {
                slot: n,
                hashrate: rates.get(i).map(|x| x * GH),
                chips: (!mw.is_empty())
                    .then(|| u32::try_from(mw.len()).ok())
                    .flatten(),
                chip_temps,
                temp_max: single(&tmax, "TMax"),
                temp_avg: single(&tavg, "TAvg"),
                ..Board::default()
            }
        })
        .collect()
}

/// A module of an AUC-attached controller, as one board.
fn module_board(b: &Blob, slot: u32) -> Board {
    Board {
        slot,
        hashrate: b.num("GHSavg").map(|x| x * GH),
        hashrate_ideal: b.num("GHSmm").filter(|&x| x > 0.0).map(|x| x * GH),
        temp_max: b.num("TMax").filter(|&t| valid_temp(t)),
        temp_avg: b.num("TAvg").filter(|&t| valid_temp(t)),
        ..Board::default()
    }
}

fn fans(b: &Blob) -> Vec<Fan> {
    let mut fans: Vec<Fan> = b
        .pairs
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("Fan")?;
            // `Fan` alone (one-fan modules) is fan 1; `FanR` is the duty, `FanErr` a counter.
            let n: u32 = if n.is_empty() { 1 } else { n.parse().ok()? };
            let rpm = scalar(v).filter(|&r| r > 0.0)?;
            Some(Fan {
                slot: n.checked_sub(1)?,
                speed: rpm,
                unit: FanUnit::Rpm,
            })
        })
        .collect();
    fans.sort_by_key(|f| f.slot);
    fans.dedup_by_key(|f| f.slot);
    fans
}

/// Wall power: `WALLPOWER`, else the PSU report `PS[...]` (7 values: the last is the input
/// power; the older 6-value form has the output power fifth).
fn power(b: &Blob) -> Option<f64> {
    let w = b.num("WALLPOWER").or_else(|| {
        let ps = b.list("PS");
        match ps.len() {
            7.. => ps.last().copied(),
            5 | 6 => ps.get(4).copied(),
            _ => None,
        }
    });
    w.filter(|&w| w > 0.0)
}

/// Non-zero `ECHU` (per hash board) and `ECMM` (controller) codes.
fn error_codes(b: &Blob) -> Vec<ErrorCode> {
    let mut out = Vec::new();
    for (i, code) in b.list("ECHU").into_iter().enumerate() {
        if code != 0.0 {
            out.push(ErrorCode {
                code: format!("{code}"),
                at: None,
                reason: Some(format!("hash board {i} (ECHU)")),
            });
        }
    }
    for code in b.list("ECMM") {
        if code != 0.0 {
            out.push(ErrorCode {
                code: format!("{code}"),
                at: None,
                reason: Some("controller (ECMM)".into()),
            });
        }
    }
    out
}

/// Make "Avalon"; model from `VERSION[0]` (`PROD` "AvalonMiner 15-194" / "Avalon Q", `MODEL`)
/// or from the blob's `Ver[1246-83-21072802_...]`; MAC from `VERSION[0].MAC` (with or without
/// separators); firmware `VERSION` / `CGVERSION`, or the `Ver` tail.
pub fn identity(r: &Replies, blob: Option<&Blob>) -> Identity {
    let version = r.first(Command::Version, "VERSION");
    let text = |key: &str| {
        version
            .and_then(|v| field_str(v, key))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let ver = blob.and_then(|b| b.get("Ver")).map(str::trim);
    let (ver_model, ver_fw) = ver.map(split_ver).unwrap_or((None, None));
    let model = text("PROD")
        .map(|p| {
            p.strip_prefix("AvalonMiner")
                .or_else(|| p.strip_prefix("Avalon"))
                .unwrap_or(p)
                .trim()
                .to_string()
        })
        .filter(|m| !m.is_empty())
        .or_else(|| text("MODEL").map(str::to_string))
        .or(ver_model);
    Identity {
        make: Some("Avalon".into()),
        model,
        firmware: text("VERSION")
            .or_else(|| text("CGVERSION"))
            .map(str::to_string)
            .or(ver_fw),
        mac: text("MAC").and_then(mac),
        firmware_kind: Some(FirmwareKind::Stock),
        ..Identity::default()
    }
}

/// `Ver[1246-83-21072802_4ec6bb0_211fc46]` → model "1246-83", firmware "21072802_4ec6bb0_211fc46";
/// `Ver[nano3-24071801_42c628d]` → "nano3", "24071801_42c628d".
fn split_ver(ver: &str) -> (Option<String>, Option<String>) {
    let parts: Vec<&str> = ver.split('-').collect();
    let date_at = parts.iter().position(|p| {
        let digits = p.chars().take_while(char::is_ascii_digit).count();
        digits >= 7
    });
    match date_at {
        Some(0) | None => (None, Some(ver.to_string()).filter(|v| !v.is_empty())),
        Some(i) => (Some(parts[..i].join("-")), Some(parts[i..].join("-"))),
    }
}

/// "123456789012" / "AA:BB:CC:DD:EE:FF" → "12:34:56:78:90:12" / "aa:bb:cc:dd:ee:ff".
fn mac(raw: &str) -> Option<String> {
    let hex: String = raw.chars().filter(char::is_ascii_hexdigit).collect();
    if hex.len() != 12 {
        return None;
    }
    let lower = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).filter_map(|i| lower.get(i * 2..i * 2 + 2)).collect();
    Some(pairs.join(":"))
}

/// Identity straight from a `version` reply (detection).
pub fn identity_from_version(version: &Value) -> Identity {
    let mut r = Replies::default();
    r.set(Command::Version, version.clone());
    identity(&r, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bracket_tokens() {
        let p = parse_pairs(
            "Ver[1047-x] SYSTEMSTATU[Work: In Work, Hash Board: 2 ] Elapsed[103840]BOOTBY[1] \
             DH[6.118%] Nonce Mask[25] PVT_T0[ 56  56  54] FanR[31%] NETFAIL[0 0]",
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "Ver",
                "SYSTEMSTATU",
                "Elapsed",
                "BOOTBY",
                "DH",
                "Nonce Mask",
                "PVT_T0",
                "FanR",
                "NETFAIL"
            ]
        );
        let b = parse_blob("Temp[38] FanR[41%] PVT_T0[ 86  87] MGHS[1 2]", None);
        assert_eq!(b.num("FanR"), Some(41.0));
        assert_eq!(b.list("PVT_T0"), [86.0, 87.0]);
        assert_eq!(b.num("Missing"), None);
        // Unclosed and odd text never panics.
        for t in ["", "[", "]", "a[", "[]", "x[1", "'STATS':{", "é[ü]", "'HB"] {
            let _ = parse_blob(t, Some(t));
        }
    }

    #[test]
    fn ver_and_mac() {
        assert_eq!(
            split_ver("1246-83-21072802_4ec6bb0_211fc46"),
            (
                Some("1246-83".into()),
                Some("21072802_4ec6bb0_211fc46".into())
            )
        );
        assert_eq!(
            split_ver("nano3-24071801_42c628d"),
            (Some("nano3".into()), Some("24071801_42c628d".into()))
        );
        assert_eq!(mac("123456789012").as_deref(), Some("12:34:56:78:90:12"));
        assert_eq!(
            mac("AA:BB:CC:DD:EE:FF").as_deref(),
            Some("aa:bb:cc:dd:ee:ff")
        );
        assert_eq!(mac("xyz"), None);
    }
}
