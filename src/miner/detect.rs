//! Which family answered: the socket rules of reference §11 on the upper-cased `version` and
//! `devdetails` replies, and the per-poll re-check of a cached family.
//!
//! Order matters because firmwares share generic keys: Braiins `devdetails` lists "Antminer"
//! models, LuxOS says `Type: "Antminer S19k Pro"`, Hiveon and VNish say "Antminer S9 Hiveon" /
//! "Antminer S9 (vnish 3.8.6)". So every firmware's own marker is looked for first, and
//! `ANTMINER` only counts in the `version` reply and only when no other marker is there. Keys
//! shared by many forks (`CGMiner`, `BMMiner`, `Description: cgminer 1.0.0`) never decide
//! anything by themselves.

use serde_json::{Map, Value};

use super::dialect::{Command, Replies};
use super::reply;
use crate::model::{Family, FirmwareKind};

/// Markers, upper-case, in the order they are tried; the first family with a marker wins.
const RULES: &[(&[&str], Family, FirmwareKind)] = &[
    (
        &["BOSMINER", "BOSER", "BRAIINS", "BOS_AM"],
        Family::Braiins,
        FirmwareKind::BraiinsOs,
    ),
    (
        &["BTMINER", "BITMICRO", "WHATSMINER"],
        Family::Whatsminer,
        FirmwareKind::Stock,
    ),
    (&["LUXMINER", "LUXOS"], Family::LuxOs, FirmwareKind::LuxOs),
    (&["HIVEON"], Family::Hiveon, FirmwareKind::Hiveon),
    (&["VNISH", "ANTHILL"], Family::Vnish, FirmwareKind::Vnish),
    // The `rwglr` bmminer fork without the Hiveon name is mskminer: the same dialect.
    (&["RWGLR"], Family::Hiveon, FirmwareKind::Mskminer),
    (&["AVALON", "CANAAN"], Family::Avalon, FirmwareKind::Stock),
];

/// MARA firmware runs on Antminers but speaks its own dialect: never stock, read generically.
const GENERIC_MARKERS: &[&str] = &["KAONSU", "MARAFW"];

/// The family (and firmware build, when the markers tell) of the miner that sent these
/// `version` and `devdetails` replies (either may be missing or an error reply).
pub fn classify(
    version: Option<&Value>,
    devdetails: Option<&Value>,
) -> (Family, Option<FirmwareKind>) {
    let v = version.map(haystack).unwrap_or_default();
    let d = devdetails.map(haystack).unwrap_or_default();
    classify_text(&v, &d)
}

/// [`classify`] on upper-cased reply texts.
pub fn classify_text(version: &str, devdetails: &str) -> (Family, Option<FirmwareKind>) {
    let has = |m: &str| version.contains(m) || devdetails.contains(m);
    for (markers, family, kind) in RULES {
        if markers.iter().any(|m| has(m)) {
            return (*family, Some(*kind));
        }
    }
    if GENERIC_MARKERS.iter().any(|m| has(m)) {
        return (Family::Cgminer, None);
    }
    // Braiins lists "Antminer" models in devdetails: only the version reply may say Antminer.
    if version.contains("ANTMINER") {
        let kind = if version.contains("ASICSEER") {
            FirmwareKind::Asicseer
        } else {
            FirmwareKind::Stock
        };
        return (Family::Antminer, Some(kind));
    }
    (Family::Cgminer, None)
}

/// The upper-cased text of a reply: every key and string value (and numbers, which carry no
/// markers, are skipped). Bounded: replies are bounded by the transport, and only `version` /
/// `devdetails` / a stats version block are ever looked at.
fn haystack(reply: &Value) -> String {
    let mut out = String::with_capacity(256);
    push_text(reply, &mut out, 0);
    out.make_ascii_uppercase();
    out
}

fn push_text(v: &Value, out: &mut String, depth: u32) {
    // Deeper than any real reply nests; the bound keeps hostile input cheap.
    if depth > 8 {
        return;
    }
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| push_text(i, out, depth + 1)),
        Value::Object(map) => {
            for (k, x) in map {
                out.push_str(k);
                out.push('\n');
                push_text(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Whether this poll's replies still look like `family` (a wrong cached family must not stick).
/// `false` only on positive evidence of another family, or on the absence of a marker that the
/// family always shows in a reply we have.
pub fn still_matches(family: Family, r: &Replies) -> bool {
    let from_stats = || {
        r.get(Command::Stats)
            .and_then(stats_version_reply)
            .map(|v| classify(Some(&v), None).0)
    };
    let seen = match r.get(Command::Version).map(|v| classify(Some(v), None).0) {
        // Some builds (asicdip) name themselves only in the stats copy of the version block.
        Some(Family::Cgminer) | None => {
            from_stats().or(r.get(Command::Version).map(|_| Family::Cgminer))
        }
        found => found,
    };
    match family {
        Family::Whatsminer => match r.first(Command::Summary, "SUMMARY") {
            Some(summary) => looks_whatsminer(r.get(Command::Summary), summary),
            None => r
                .get(Command::WmStatus)
                .is_none_or(|s| s["STATUS"].is_string()),
        },
        Family::WhatsminerV3 => [Command::V3Summary, Command::V3DeviceInfo, Command::V3Pools]
            .iter()
            .filter_map(|&c| r.get(c))
            .all(|v| v.get("code").is_some()),
        Family::Avalon => match seen {
            Some(Family::Avalon) => true,
            Some(Family::Cgminer) | None => {
                // Old AUC-attached Avalons may not name themselves in `version`; their stats do.
                r.get(Command::Stats).is_none_or(has_mm_blob)
            }
            Some(_) => false,
        },
        Family::Cgminer => seen.is_none_or(|f| f == Family::Cgminer),
        // Antminer-hardware firmwares and Braiins all name themselves in `version`.
        other => seen.is_none_or(|f| f == other),
    }
}

/// The `version` block that a `stats` reply repeats in `STATS[0]`, wrapped like a `version`
/// reply with the stats status, so [`classify`] reads it.
fn stats_version_reply(stats: &Value) -> Option<Value> {
    let block = reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.contains_key("Type"))?;
    let mut wrapped = Map::new();
    wrapped.insert(
        "VERSION".into(),
        Value::Array(vec![Value::Object(block.clone())]),
    );
    if let Some(status) = stats.get("STATUS") {
        wrapped.insert("STATUS".into(), status.clone());
    }
    Some(Value::Object(wrapped))
}

/// The family named by the version block that a `stats` reply repeats, if it names one.
pub fn family_from_stats(stats: &Value) -> Option<(Family, Option<FirmwareKind>)> {
    stats_version_reply(stats)
        .map(|v| classify(Some(&v), None))
        .filter(|(f, _)| *f != Family::Cgminer)
}

/// Whether a `stats` reply still looks like stock Antminer (its `STATS[0]` repeats the
/// version block). Used to re-check a cached family without asking `version`.
pub fn stats_look_stock_antminer(stats: &Value) -> bool {
    stats_version_reply(stats).is_some_and(|v| classify(Some(&v), None).0 == Family::Antminer)
}

/// Avalon `stats`: an `MM ID<n>` blob in a `STATS` object.
fn has_mm_blob(stats: &Value) -> bool {
    reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
        .any(|o| o.keys().any(|k| k.starts_with("MM ID")))
}

/// A Whatsminer `summary`: `btminer` in the description, or keys only btminer writes.
pub fn looks_whatsminer(reply_value: Option<&Value>, summary: &Map<String, Value>) -> bool {
    let description = reply_value
        .and_then(|v| reply::first_obj(v, "STATUS"))
        .and_then(|s| reply::field_str(s, "Description"))
        .unwrap_or("");
    description.to_ascii_lowercase().contains("btminer")
        || [
            "HS RT",
            "Factory GHS",
            "Fan Speed In",
            "Power Fanspeed",
            "Chip Data",
        ]
        .iter()
        .any(|k| summary.contains_key(*k))
}

/// Whatsminer firmware date from `get_version` (`fw_ver` "20230803.11.REL") or `status`
/// (`FirmwareVersion`, older `'Firmware Version'` with literal quotes), as `yyyymmdd`.
pub fn whatsminer_fw_date(fw: &str) -> Option<u32> {
    let digits: String = fw
        .trim()
        .trim_matches('\'')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.len() != 8 {
        return None;
    }
    digits.parse().ok()
}

/// First firmware date served by Whatsminer API v3 (reference §5: ≥ 2024-11).
pub const WHATSMINER_V3_SINCE: u32 = 20241101;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(block: Value, description: &str) -> Value {
        json!({"STATUS":[{"STATUS":"S","Code":22,"Msg":"versions","Description":description}],
               "VERSION":[block],"id":1})
    }

    fn family_of(v: &Value) -> Family {
        classify(Some(v), None).0
    }

    #[test]
    fn stock_antminer() {
        for t in [
            "Antminer S19 Pro",
            "Antminer S9",
            "Antminer L3+",
            "Antminer S9\nV1.3.58",
        ] {
            let v = version(json!({"BMMiner":"1.0.0","Type":t}), "cgminer 1.0.0");
            assert_eq!(
                classify(Some(&v), None),
                (Family::Antminer, Some(FirmwareKind::Stock)),
                "{t}"
            );
        }
    }

    #[test]
    fn other_firmware_on_antminer_hardware_is_not_stock() {
        let cases = [
            (
                json!({"BMMiner":"2.0.0 rwglr","Type":"Antminer S9 Hiveon"}),
                "bmminer 1.0.0",
                Family::Hiveon,
            ),
            (
                json!({"BMMiner":"2.0.0 rwglr","Type":"Antminer S9 Pro (v5.1) "}),
                "bmminer 1.0.0",
                Family::Hiveon,
            ),
            (
                json!({"CGMiner":"4.11.1","Type":"Antminer S9 (vnish 3.8.6)"}),
                "cgminer 4.11.1",
                Family::Vnish,
            ),
            (
                json!({"LUXminer":"2025.4.8","Type":"Antminer S19k Pro"}),
                "LUXminer 2025.4.8",
                Family::LuxOs,
            ),
            (
                json!({"BMMiner":"bOS_am1-s9-2018","Type":"braiins-am1-s9"}),
                "bmminer bOS_am1",
                Family::Braiins,
            ),
            (
                json!({"BOSminer+":"0.2.0"}),
                "BOSminer+ 0.2.0",
                Family::Braiins,
            ),
            (
                json!({"BMMiner":"4.11.1 rwglr","Type":"Antminer S19JPRO Hiveon"}),
                "bmminer 1.0.0",
                Family::Hiveon,
            ),
            (
                json!({"BMMiner":"1.0","Type":"Antminer S19","MARAFW":"1.0"}),
                "bmminer 1.0.0",
                Family::Cgminer,
            ),
        ];
        for (block, description, family) in cases {
            let v = version(block.clone(), description);
            assert_eq!(family_of(&v), family, "{block}");
        }
    }

    #[test]
    fn shared_generic_keys_decide_nothing() {
        // Same keys and description as a stock S19, but no Antminer type: generic.
        let v = version(
            json!({"BMMiner":"1.0.0","CGMiner":"4.9.0","Type":"Hammer D10"}),
            "cgminer 1.0.0",
        );
        assert_eq!(family_of(&v), Family::Cgminer);
        let v = version(json!({"CGMiner":"4.11.1","API":"3.7"}), "cgminer 4.11.1");
        assert_eq!(family_of(&v), Family::Cgminer);
        let v = version(json!({"Type":"Antminer S19"}), "BOSer");
        assert_eq!(family_of(&v), Family::Braiins);
        // Braiins devdetails lists Antminer models; they never make a miner stock.
        let d = json!({"STATUS":[{"STATUS":"S","Description":"BOSer boser-buildroot"}],
                       "DEVDETAILS":[{"ID":0,"Model":"Bitmain Antminer S19 XP","Chips":110}]});
        assert_eq!(classify(None, Some(&d)).0, Family::Braiins);
        let d = json!({"DEVDETAILS":[{"Model":"Antminer S19"}]});
        assert_eq!(classify(None, Some(&d)).0, Family::Cgminer);
    }

    #[test]
    fn stats_block_recheck() {
        let s = json!({"STATUS":[{"STATUS":"S","Description":"cgminer 1.0.0"}],
                       "STATS":[{"BMMiner":"1.0.0","Type":"Antminer S19"},{"STATS":0}]});
        assert!(stats_look_stock_antminer(&s));
        let s = json!({"STATUS":[{"STATUS":"S","Description":"LUXminer 2025"}],
                       "STATS":[{"Type":"Antminer S19"},{"STATS":0}]});
        assert!(!stats_look_stock_antminer(&s));
        let s = json!({"STATUS":[{"STATUS":"S"}],"STATS":[{"STATS":0,"MM ID0":"Ver[1246]"}]});
        assert!(!stats_look_stock_antminer(&s));
    }

    #[test]
    fn firmware_dates() {
        assert_eq!(whatsminer_fw_date("20230803.11.REL"), Some(20230803));
        assert_eq!(whatsminer_fw_date("'20201202.22.REL'"), Some(20201202));
        assert_eq!(whatsminer_fw_date("20251209.16.Rel2"), Some(20251209));
        assert_eq!(whatsminer_fw_date("whatsminer v1.4.0"), None);
        assert_eq!(whatsminer_fw_date(""), None);
    }
}
