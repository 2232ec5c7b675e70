//! Which family answered, decided from the `version` reply that every poll already carries, so
//! detection costs no extra round trip.
//!
//! Stock Antminer is recognised positively (`ANTMINER` in the version block) and only when no
//! marker of another firmware is present: Braiins, LuxOS, VNish, Hiveon and friends all run on
//! Antminer hardware and say "Antminer" too, while speaking a different dialect. Keys shared by
//! many forks (`CGMiner`, `BMMiner`, `Description: cgminer 1.0.0`) never decide anything by
//! themselves.

use serde_json::{Map, Value};

use super::reply;
use crate::model::Family;

/// Upper-case markers of firmwares that are not stock Bitmain (reference §3-§8, §11).
const NON_STOCK_MARKERS: &[&str] = &[
    "BOSMINER",
    "BOSER",
    "BRAIINS",
    "BOS_", // Braiins OS, incl. the 2018 bmminer-based bOS
    "LUXMINER",
    "LUXOS", // LuxOS
    "BTMINER",
    "BITMICRO",
    "WHATSMINER", // MicroBT
    "AVALON",
    "CANAAN", // Canaan
    "VNISH",
    "ANTHILL", // VNish / NiceHash image
    "HIVEON",
    "RWGLR", // Hiveon, mskminer
    "KAONSU",
    "MARAFW", // MARA
];

/// Family of the miner that sent this `version` reply.
pub fn family_from_version(version: &Value) -> Family {
    if version.get("DEVDETAILS").is_some() {
        // Braiins lists "Antminer ..." models in devdetails: never stock.
        return Family::Cgminer;
    }
    classify(reply::first_obj(version, "VERSION"), status_text(version))
}

/// Whether a `stats` reply still looks like stock Antminer: its `STATS[0]` repeats the version
/// block (`Type`, `CompileTime`, ...). Used to re-check a cached family without asking `version`.
pub fn stats_look_stock_antminer(stats: &Value) -> bool {
    let block = reply::section(stats, "STATS")
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.contains_key("Type"));
    block.is_some() && classify(block, status_text(stats)) == Family::Antminer
}

fn status_text(reply: &Value) -> [Option<&str>; 2] {
    let status = reply::first_obj(reply, "STATUS");
    [
        status.and_then(|s| reply::field_str(s, "Description")),
        status.and_then(|s| reply::field_str(s, "Msg")),
    ]
}

fn classify(block: Option<&Map<String, Value>>, status: [Option<&str>; 2]) -> Family {
    // One small upper-cased haystack: the version block's keys and string values plus the status
    // description. Key names matter (`BOSminer+`, `LUXminer`, `BOSer` are keys).
    let mut hay = String::with_capacity(256);
    if let Some(block) = block {
        for (k, v) in block {
            hay.push_str(k);
            hay.push('\n');
            if let Some(s) = v.as_str() {
                hay.push_str(s);
                hay.push('\n');
            }
        }
    }
    for s in status.into_iter().flatten() {
        hay.push_str(s);
        hay.push('\n');
    }
    hay.make_ascii_uppercase();
    if NON_STOCK_MARKERS.iter().any(|m| hay.contains(m)) {
        return Family::Cgminer;
    }
    let type_says_antminer = block
        .and_then(|b| reply::field_str(b, "Type"))
        .is_some_and(|t| t.to_ascii_uppercase().contains("ANTMINER"));
    if type_says_antminer || hay.contains("ANTMINER") {
        Family::Antminer
    } else {
        Family::Cgminer
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(block: Value, description: &str) -> Value {
        json!({"STATUS":[{"STATUS":"S","Code":22,"Msg":"versions","Description":description}],
               "VERSION":[block],"id":1})
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
            assert_eq!(family_from_version(&v), Family::Antminer, "{t}");
        }
    }

    #[test]
    fn other_firmware_on_antminer_hardware_is_not_stock() {
        let cases = [
            (
                json!({"BMMiner":"2.0.0 rwglr","Type":"Antminer S9 Hiveon"}),
                "bmminer 1.0.0",
            ),
            (
                json!({"BMMiner":"2.0.0 rwglr","Type":"Antminer S9 Pro (v5.1) "}),
                "bmminer 1.0.0",
            ),
            (
                json!({"CGMiner":"4.11.1","Type":"Antminer S9 (vnish 3.8.6)"}),
                "cgminer 4.11.1",
            ),
            (
                json!({"LUXminer":"2025.4.8","Type":"Antminer S19k Pro"}),
                "LUXminer 2025.4.8",
            ),
            (
                json!({"BMMiner":"bOS_am1-s9-2018","Type":"braiins-am1-s9"}),
                "bmminer bOS_am1",
            ),
            (json!({"BOSminer+":"0.2.0"}), "BOSminer+ 0.2.0"),
            (
                json!({"BMMiner":"4.11.1 rwglr","Type":"Antminer S19JPRO Hiveon"}),
                "bmminer 1.0.0",
            ),
        ];
        for (block, description) in cases {
            let v = version(block.clone(), description);
            assert_eq!(family_from_version(&v), Family::Cgminer, "{block}");
        }
    }

    #[test]
    fn shared_generic_keys_decide_nothing() {
        // Same keys and description as a stock S19, but no Antminer type: generic.
        let v = version(
            json!({"BMMiner":"1.0.0","CGMiner":"4.9.0","Type":"Hammer D10"}),
            "cgminer 1.0.0",
        );
        assert_eq!(family_from_version(&v), Family::Cgminer);
        let v = version(json!({"CGMiner":"4.11.1","API":"3.7"}), "cgminer 4.11.1");
        assert_eq!(family_from_version(&v), Family::Cgminer);
        let mut v = version(json!({"Type":"Antminer S19"}), "BOSer");
        assert_eq!(family_from_version(&v), Family::Cgminer);
        v = version(json!({"Type":"Antminer S19"}), "cgminer 1.0.0");
        v["DEVDETAILS"] = json!([]);
        assert_eq!(family_from_version(&v), Family::Cgminer);
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
}
