//! Replies a fixture set lacks, synthesized in the firmware's own shape from the model's other
//! fixtures (so the numbers agree with what the real replies show).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::template::{find_all, find_raw, raw_number, raw_string};

/// Totals over a `pools` reply, for synthesized `summary` and `devs` replies.
#[derive(Default, Debug)]
pub(crate) struct PoolTotals {
    getworks: u64,
    accepted: u64,
    rejected: u64,
    discarded: u64,
    stale: u64,
    get_failures: u64,
    remote_failures: u64,
    diff_accepted: f64,
    diff_rejected: f64,
    diff_stale: f64,
    best_share: f64,
}

impl PoolTotals {
    pub(crate) fn from_pools(text: &str) -> PoolTotals {
        let mut t = PoolTotals::default();
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return t;
        };
        let num = |p: &Value, k: &str| -> f64 {
            match p.get(k) {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
                _ => 0.0,
            }
        };
        for p in v["POOLS"].as_array().into_iter().flatten() {
            t.getworks += num(p, "Getworks") as u64;
            t.accepted += num(p, "Accepted") as u64;
            t.rejected += num(p, "Rejected") as u64;
            t.discarded += num(p, "Discarded") as u64;
            t.stale += num(p, "Stale") as u64;
            t.get_failures += num(p, "Get Failures") as u64;
            t.remote_failures += num(p, "Remote Failures") as u64;
            t.diff_accepted += num(p, "Difficulty Accepted");
            t.diff_rejected += num(p, "Difficulty Rejected");
            t.diff_stale += num(p, "Difficulty Stale");
            t.best_share = t.best_share.max(num(p, "Best Share"));
        }
        t
    }

    fn pct(&self, part: f64) -> f64 {
        let all = self.diff_accepted + self.diff_rejected + self.diff_stale;
        if all > 0.0 {
            part * 100.0 / all
        } else {
            0.0
        }
    }
}

fn stat_num(stats: &str, key: &str) -> f64 {
    find_raw(stats, key).and_then(raw_number).unwrap_or(0.0)
}

fn chain_hw(stats: &str) -> u64 {
    find_all(stats, |k| {
        k.strip_prefix("chain_hw")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
    })
    .iter()
    .filter_map(|(_, v)| raw_number(v))
    .sum::<f64>() as u64
}

/// A `summary` reply in the shape of older bmminer/cgminer 4.9 builds, from `stats` + `pools`.
pub(crate) fn antminer_summary(stats: &str, t: &PoolTotals, description: &str) -> String {
    let elapsed = stat_num(stats, "Elapsed");
    let ghs5s = find_raw(stats, "GHS 5s").unwrap_or("0.00");
    let ghsav = find_raw(stats, "GHS av").unwrap_or("0.00");
    let ghs30m = find_raw(stats, "GHS 30m").or_else(|| find_raw(stats, "rate_30m"));
    let dev_hw = find_raw(stats, "Device Hardware%").unwrap_or("0.0000");
    let hw = chain_hw(stats);
    let minutes = (elapsed / 60.0).max(1.0);
    let total_mh = raw_number(ghsav).unwrap_or(0.0) * 1000.0 * elapsed;
    let elapsed_s = elapsed as u64;
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"STATUS\":[{{\"STATUS\":\"S\",\"When\":0,\"Code\":11,\"Msg\":\"Summary\",\"Description\":\"{description}\"}}],\
         \"SUMMARY\":[{{\"Elapsed\":{elapsed_s},\"GHS 5s\":{ghs5s},\"GHS av\":{ghsav},"
    );
    if let Some(g) = ghs30m {
        let _ = write!(s, "\"GHS 30m\":{g},");
    }
    let _ = write!(
        s,
        "\"Found Blocks\":0,\"Getworks\":{gw},\"Accepted\":{acc},\"Rejected\":{rej},\"Hardware Errors\":{hw},\
         \"Utility\":{util:.2},\"Discarded\":{disc},\"Stale\":{stale},\"Get Failures\":{gf},\"Local Work\":{lw},\
         \"Remote Failures\":{rf},\"Network Blocks\":0,\"Total MH\":{total_mh:.4},\"Work Utility\":{wu:.2},\
         \"Difficulty Accepted\":{da:.8},\"Difficulty Rejected\":{dr:.8},\"Difficulty Stale\":{ds:.8},\
         \"Best Share\":{best},\"Device Hardware%\":{dev_hw},\"Device Rejected%\":{rejp:.4},\
         \"Pool Rejected%\":{rejp:.4},\"Pool Stale%\":{stalep:.4},\"Last getwork\":0}}],\"id\":1}}",
        gw = t.getworks,
        acc = t.accepted,
        rej = t.rejected,
        util = t.accepted as f64 / minutes,
        disc = t.discarded,
        stale = t.stale,
        gf = t.get_failures,
        lw = t.getworks + t.discarded,
        rf = t.remote_failures,
        wu = t.diff_accepted / minutes,
        da = t.diff_accepted,
        dr = t.diff_rejected,
        ds = t.diff_stale,
        best = t.best_share as u64,
        rejp = t.pct(t.diff_rejected),
        stalep = t.pct(t.diff_stale),
    );
    s
}

/// A `devs` reply as bmminer builds give it: one pseudo device `BTM_SOC` with share totals and
/// zero hashrate (the S19 2022 firmware's shape, including its `Tenperature` typo there).
pub(crate) fn antminer_devs(stats: &str, t: &PoolTotals, description: &str) -> String {
    let elapsed = stat_num(stats, "Elapsed") as u64;
    let temp_key = if description == "cgminer 1.0.0" {
        "Tenperature"
    } else {
        "Temperature"
    };
    let minutes = (elapsed as f64 / 60.0).max(1.0);
    format!(
        "{{\"STATUS\":[{{\"STATUS\":\"S\",\"When\":0,\"Code\":9,\"Msg\":\"1 ASC(s)\",\"Description\":\"{description}\"}}],\
         \"DEVS\":[{{\"ASC\":0,\"Name\":\"BTM_SOC\",\"ID\":0,\"Enabled\":\"Y\",\"Status\":\"Alive\",\"{temp_key}\":0.00,\
         \"MHS av\":0.00,\"MHS 5s\":0.00,\"Accepted\":{acc},\"Rejected\":{rej},\"Hardware Errors\":{hw},\
         \"Utility\":{util:.2},\"Last Share Pool\":0,\"Last Share Time\":0,\"Total MH\":0.0000,\"Diff1 Work\":0,\
         \"Difficulty Accepted\":{da:.8},\"Difficulty Rejected\":{dr:.8},\"Last Share Difficulty\":0.00000000,\
         \"Last Valid Work\":0,\"Device Hardware%\":0.0000,\"Device Rejected%\":0.0000,\"Device Elapsed\":{elapsed}}}],\"id\":1}}",
        acc = t.accepted,
        rej = t.rejected,
        hw = chain_hw(stats),
        util = t.accepted as f64 / minutes,
        da = t.diff_accepted,
        dr = t.diff_rejected,
    )
}

fn status(code: u32, msg: &str, description: &str) -> Value {
    json!([{"STATUS": "S", "When": 0, "Code": code, "Msg": msg, "Description": description}])
}

fn num(v: &Value, k: &str) -> f64 {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// BOSminer `devs` for an S9 whose capture lacks it: three chains, IDs 6..8 (as on every S9
/// build), each a third of the summary rates, `Temperature` 0 as BOSminer reports it (C-18).
pub(crate) fn bos_devs(summary: &str, description: &str) -> String {
    let s: Value = serde_json::from_str(summary).unwrap_or(Value::Null);
    let s = &s["SUMMARY"][0];
    let third = |k: &str| num(s, k) / 3.0;
    let elapsed = num(s, "Elapsed") as u64;
    let devs: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "ASC": i, "Accepted": (num(s, "Accepted") / 3.0).round() as u64,
                "Device Elapsed": elapsed, "Device Hardware%": 0.0, "Device Rejected%": 0.0,
                "Diff1 Work": 0, "Difficulty Accepted": 0.0, "Difficulty Rejected": 0.0,
                "Enabled": "Y", "Hardware Error MHS 15m": 0.0, "Hardware Errors": 0, "ID": 6 + i,
                "Last Share Difficulty": 0.0, "Last Share Pool": -1, "Last Share Time": 0,
                "Last Valid Work": 0, "MHS 15m": third("MHS 15m"), "MHS 1m": third("MHS 1m"),
                "MHS 5m": third("MHS 5m"), "MHS 5s": third("MHS 5s"), "MHS av": third("MHS av"),
                "Name": "", "Nominal MHS": 4668300.0, "Rejected": 0, "Status": "Alive",
                "Temperature": 0.0, "Total MH": third("Total MH"), "Utility": 0.0
            })
        })
        .collect();
    let n = devs.len();
    json!({"STATUS": status(9, &format!("{n} ASC(s)"), description), "DEVS": devs, "id": 1})
        .to_string()
}

/// BOSminer `devdetails` (fields of its cgminer API: `DevDetail` + S9 chip info), one per chain.
pub(crate) fn bos_devdetails(description: &str, model: &str) -> String {
    let list: Vec<Value> = (0..3)
        .map(|i| {
            json!({"DEVDETAILS": i, "Name": "", "ID": 6 + i, "Driver": "", "Kernel": "",
                   "Model": model, "Device Path": "", "Voltage": 8.8, "Frequency": 650,
                   "Chips": 63, "Cores": 114})
        })
        .collect();
    json!({"STATUS": status(69, "Device Details", description), "DEVDETAILS": list, "id": 1})
        .to_string()
}

/// BOSminer `stats`: one header per chain (`STATS`, `ID`, `Elapsed`, `Calls`, `Wait`, `Max`,
/// `Min`), as its API defines them; no Antminer-style `STATS[1]` blob.
pub(crate) fn bos_stats(summary: &str, description: &str, signature: &str) -> String {
    let elapsed = find_raw(summary, "Elapsed")
        .and_then(raw_number)
        .unwrap_or(0.0) as u64;
    let list: Vec<Value> = (0..3)
        .map(|i| {
            json!({"STATS": i, "ID": format!("ASC{}", 6 + i), "Elapsed": elapsed, "Calls": 0,
                   "Wait": 0.0, "Max": 0.0, "Min": 99999999.0})
        })
        .collect();
    json!({"STATUS": status(70, &format!("{signature} stats"), description), "STATS": list, "id": 1})
        .to_string()
}

/// BOSminer+ `tunerstatus` (pyasic reads `PowerLimit`, `ApproximateMinerPowerConsumption` and
/// `TunerChainStatus[].Status`). Code 203 is inferred (fans 202, temps 201).
pub(crate) fn bos_tunerstatus(description: &str) -> String {
    let chains: Vec<Value> = (0..3)
        .map(|i| {
            json!({"HashchainIndex": 6 + i, "Iteration": 0, "LoadedProfile": true,
                   "PowerLimitWatt": 440, "StageElapsed": 0, "Status": "Stable",
                   "TunerRunning": false})
        })
        .collect();
    json!({"STATUS": status(203, "Tuner Status", description),
           "TUNERSTATUS": [{"PowerLimit": 1420, "DynamicPowerScaling": "Disabled",
                            "ApproximateChainPowerConsumption": 1320,
                            "ApproximateMinerPowerConsumption": 1386,
                            "TunerChainStatus": chains, "TunerRunning": false}],
           "id": 1})
    .to_string()
}

/// Whatsminer `devdetails` (Driver `bitmicro`, `Model` as btminer prints it), one per board.
pub(crate) fn wm_devdetails(edevs: &str, description: &str, model: &str) -> String {
    let v: Value = serde_json::from_str(edevs).unwrap_or(Value::Null);
    let n = v["DEVS"].as_array().map_or(3, Vec::len);
    let list: Vec<Value> = (0..n)
        .map(|i| {
            json!({"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "",
                   "Model": model, "Device Path": ""})
        })
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "{}",
        json!({"STATUS": status(69, "Device Details", description), "DEVDETAILS": list, "id": 1})
    );
    s
}

/// A Whatsminer-shaped reply: `STATUS` a bare string, `Msg` an object (key order of the
/// M31S captures: STATUS, When, Code, Msg, Description).
pub(crate) fn wm_shaped(msg: &Value, description: &str) -> String {
    format!(
        "{{\"STATUS\":\"S\",\"When\":0,\"Code\":131,\"Msg\":{msg},\"Description\":{}}}",
        json!(description)
    )
}

/// `get_version` of a btminer build.
pub(crate) fn wm_get_version(api_ver: &str, fw_ver: &str, platform: &str, desc: &str) -> String {
    wm_shaped(
        &json!({"api_ver": api_ver, "fw_ver": fw_ver, "platform": platform}),
        desc,
    )
}

/// `get_miner_info` (the MAC becomes the miner's own when rendered).
pub(crate) fn wm_get_miner_info(mac: &str, desc: &str) -> String {
    let msg = format!(
        "{{\"ip\":\"127.0.0.1\",\"proto\":\"dhcp\",\"netmask\":\"255.0.0.0\",\"gateway\":\"127.0.0.1\",\
         \"dns\":\"127.0.0.1\",\"hostname\":\"WhatsMiner\",\"mac\":{},\"ledstat\":\"auto\"}}",
        json!(mac)
    );
    format!(
        "{{\"STATUS\":\"S\",\"When\":0,\"Code\":131,\"Msg\":{msg},\"Description\":{}}}",
        json!(desc)
    )
}

/// `status` in the 2021 shape (`btmineroff`, quoted `Firmware Version`).
pub(crate) fn wm_status_old(firmware: &str, desc: &str) -> String {
    let msg = format!(
        "{{\"btmineroff\":\"false\",\"Firmware Version\":{}}}",
        json!(format!("'{firmware}'"))
    );
    format!(
        "{{\"STATUS\":\"S\",\"When\":0,\"Code\":131,\"Msg\":{msg},\"Description\":{}}}",
        json!(desc)
    )
}

/// `status` in the 2023+ shape (`mineroff`, `FirmwareVersion`).
pub(crate) fn wm_status_new(firmware: &str, desc: &str) -> String {
    let msg = format!(
        "{{\"mineroff\":\"false\",\"mineroff_reason\":\"\",\"mineroff_time\":\"\",\
         \"FirmwareVersion\":{},\"power_mode\":\"\",\"hash_percent\":\"\"}}",
        json!(firmware)
    );
    format!(
        "{{\"STATUS\":\"S\",\"When\":0,\"Code\":131,\"Msg\":{msg},\"Description\":{}}}",
        json!(desc)
    )
}

/// `get_error_code` listing the summary's `Error Code N` values (no times in the summary).
pub(crate) fn wm_get_error_code(summary: &str, desc: &str) -> String {
    let codes: Vec<Value> = find_all(summary, |k| {
        k.strip_prefix("Error Code ")
            .is_some_and(|n| n.bytes().all(|c| c.is_ascii_digit()))
    })
    .iter()
    .filter_map(|(_, v)| raw_number(v))
    .map(|c| json!({ format!("{}", c as i64): "" }))
    .collect();
    wm_shaped(&json!({ "error_code": codes }), desc)
}

/// Avalon `summary` from its `devs` (one ASC device carries the whole miner).
pub(crate) fn avalon_summary(devs: &str, pools: &str, description: &str) -> String {
    let d: Value = serde_json::from_str(devs).unwrap_or(Value::Null);
    let d = &d["DEVS"][0];
    let t = PoolTotals::from_pools(pools);
    let elapsed = num(d, "Device Elapsed") as u64;
    let minutes = (elapsed as f64 / 60.0).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"STATUS\":[{{\"STATUS\":\"S\",\"When\":0,\"Code\":11,\"Msg\":\"Summary\",\"Description\":{}}}],\
         \"SUMMARY\":[{{\"Elapsed\":{elapsed},\"MHS av\":{:.2},\"MHS 30s\":{:.2},\"MHS 1m\":{:.2},\
         \"MHS 5m\":{:.2},\"MHS 15m\":{:.2},\"Found Blocks\":0,\"Getworks\":{},\"Accepted\":{},\
         \"Rejected\":{},\"Hardware Errors\":{},\"Utility\":{:.2},\"Discarded\":{},\"Stale\":{},\
         \"Get Failures\":{},\"Local Work\":{},\"Remote Failures\":{},\"Network Blocks\":0,\
         \"Total MH\":{:.1},\"Work Utility\":{:.2},\"Difficulty Accepted\":{:.1},\
         \"Difficulty Rejected\":{:.1},\"Difficulty Stale\":{:.1},\"Best Share\":{},\
         \"Device Hardware%\":{:.4},\"Device Rejected%\":{:.4},\"Pool Rejected%\":{:.4},\
         \"Pool Stale%\":{:.4},\"Last getwork\":0}}],\"id\":1}}",
        json!(description),
        num(d, "MHS av"),
        num(d, "MHS 30s"),
        num(d, "MHS 1m"),
        num(d, "MHS 5m"),
        num(d, "MHS 15m"),
        t.getworks,
        t.accepted,
        t.rejected,
        num(d, "Hardware Errors") as u64,
        t.accepted as f64 / minutes,
        t.discarded,
        t.stale,
        t.get_failures,
        t.getworks + t.discarded,
        t.remote_failures,
        num(d, "Total MH"),
        t.diff_accepted / minutes,
        t.diff_accepted,
        t.diff_rejected,
        t.diff_stale,
        t.best_share as u64,
        num(d, "Device Hardware%"),
        num(d, "Device Rejected%"),
        t.pct(t.diff_rejected),
        t.pct(t.diff_stale),
    );
    s
}

/// Avalon `litestats`: the `MM ID` strings of `stats` alone (raw pair text kept).
pub(crate) fn avalon_litestats(stats: &str, description: &str) -> String {
    let mut pairs = String::new();
    for (k, v) in find_all(stats, |k| k.starts_with("MM ID")) {
        if !pairs.is_empty() {
            pairs.push(',');
        }
        let _ = write!(pairs, "{}:{v}", json!(k));
    }
    format!(
        "{{\"STATUS\":[{{\"STATUS\":\"S\",\"When\":0,\"Code\":70,\"Msg\":\"CGMiner stats\",\
         \"Description\":{}}}],\"STATS\":[{{{pairs}}}],\"id\":1}}",
        json!(description)
    )
}

/// The `Description` of a reply text.
pub(crate) fn description_of(text: &str) -> Option<&str> {
    find_raw(text, "Description").and_then(raw_string)
}
