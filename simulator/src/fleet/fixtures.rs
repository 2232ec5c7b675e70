//! Simulated Antminer models, built from real fixture replies embedded in the binary.
//!
//! Fixtures are copies of `shared/fixtures/antminer/*` (see `simulator/fixtures/README.md`).
//! Replies a fixture set lacks (`summary` on all but the S19 Pro 2022 firmware, `devs` on all but
//! that one) are synthesized in the same cgminer shape from the model's own `stats` and `pools`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::Value;

use super::template::{find_all, find_raw, raw_number, raw_string, Template};

/// The five report commands a stock Antminer serves (API group A).
pub const REPORT_COMMANDS: [&str; 5] = ["version", "summary", "pools", "stats", "devs"];

struct Spec {
    key: &'static str,
    aliases: &'static [&'static str],
    fixture: &'static str,
    version: &'static str,
    summary: Option<&'static str>,
    pools: &'static str,
    stats: &'static str,
    devs: Option<&'static str>,
}

macro_rules! fx {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/antminer/",
            $name
        ))
    };
}

static SPECS: &[Spec] = &[
    Spec {
        key: "s19pro",
        aliases: &["s19", "s19-pro", "s19pro-2022fw"],
        fixture: "S19Pro-2022fw",
        version: fx!("S19Pro-2022fw_version.json"),
        summary: Some(fx!("S19Pro-2022fw_summary.json")),
        pools: fx!("S19Pro-2022fw_pools.json"),
        stats: fx!("S19Pro-2022fw_stats.json"),
        devs: Some(fx!("S19Pro-2022fw_devs.json")),
    },
    Spec {
        key: "s19-overheating",
        aliases: &["s19hot", "s19-hot", "s19overheating"],
        fixture: "S19-overheating",
        version: fx!("S19-overheating_version.json"),
        summary: None,
        pools: fx!("S19-overheating_pools.json"),
        stats: fx!("S19-overheating_stats.json"),
        devs: None,
    },
    Spec {
        key: "s17",
        aliases: &[],
        fixture: "S17",
        version: fx!("S17_version.json"),
        summary: None,
        pools: fx!("S17_pools.json"),
        stats: fx!("S17_stats.json"),
        devs: None,
    },
    Spec {
        key: "t15",
        aliases: &[],
        fixture: "T15",
        version: fx!("T15_version.json"),
        summary: None,
        pools: fx!("T15_pools.json"),
        stats: fx!("T15_stats.json"),
        devs: None,
    },
    Spec {
        key: "s9k",
        aliases: &[],
        fixture: "S9k",
        version: fx!("S9k_version.json"),
        summary: None,
        pools: fx!("S9k_pools.json"),
        stats: fx!("S9k_stats.json"),
        devs: None,
    },
    Spec {
        key: "s9",
        aliases: &["s9-bad-temps", "s9badtemps"],
        fixture: "S9-bad-temps",
        version: fx!("S9-bad-temps_version.json"),
        summary: None,
        pools: fx!("S9-bad-temps_pools.json"),
        stats: fx!("S9-bad-temps_stats.json"),
        devs: None,
    },
];

/// The default fleet mix (model key, weight).
pub const DEFAULT_MIX: &[(&str, u32)] = &[
    ("s19pro", 40),
    ("s19-overheating", 5),
    ("s17", 20),
    ("t15", 10),
    ("s9k", 10),
    ("s9", 15),
];

/// A simulated model: its identity and one reply template per report command.
#[derive(Debug)]
pub struct Model {
    /// Short key used in `--mix` (`s19pro`, `s17`, ...).
    pub key: &'static str,
    /// Fixture set the replies come from (`S19Pro-2022fw`, ...).
    pub fixture: &'static str,
    /// `VERSION[0].Type` as served, e.g. `Antminer S19 Pro`.
    pub type_name: String,
    /// `STATUS[0].Description` of the model's `version` reply, used in synthesized replies.
    pub description: String,
    /// Whether `a+b+c` joins are served (`false` on `cgminer 1.0.0` builds, the S19s).
    pub joins: bool,
    /// Templates in [`REPORT_COMMANDS`] order.
    pub(crate) templates: [Template; 5],
    /// Realtime hashrate of the fixture (GH/s), the centre of the per-reply jitter.
    pub base_ghs: f64,
    /// Decimals `GHS 5s` is printed with in `stats`.
    pub ghs_decimals: usize,
}

/// All simulated models, built once.
pub fn models() -> &'static [Model] {
    static MODELS: OnceLock<Vec<Model>> = OnceLock::new();
    MODELS.get_or_init(|| SPECS.iter().map(build_model).collect())
}

/// Looks a model up by key, alias or fixture name (case-insensitive).
pub fn model_index(name: &str) -> Option<usize> {
    let n = name.trim().to_ascii_lowercase();
    SPECS.iter().position(|s| {
        s.key == n || s.aliases.contains(&n.as_str()) || s.fixture.to_ascii_lowercase() == n
    })
}

/// Keys of all models, for error messages.
pub fn model_keys() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.key).collect()
}

fn build_model(spec: &Spec) -> Model {
    let description = find_raw(spec.version, "Description")
        .and_then(raw_string)
        .unwrap_or("cgminer 1.0.0")
        .to_string();
    let type_name = find_raw(spec.version, "Type")
        .and_then(raw_string)
        .map(|t| t.split("\\n").next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "Antminer".to_string());
    let totals = PoolTotals::from_pools(spec.pools);
    let summary = match spec.summary {
        Some(s) => s.to_string(),
        None => synth_summary(spec.stats, &totals, &description),
    };
    let devs = match spec.devs {
        Some(d) => d.to_string(),
        None => synth_devs(spec.stats, &totals, &description),
    };
    let templates = [
        Template::parse(spec.version),
        Template::parse(&summary),
        Template::parse(spec.pools),
        Template::parse(spec.stats),
        Template::parse(&devs),
    ];
    let (base_ghs, ghs_decimals) = templates[3].ghs.unwrap_or((0.0, 2));
    Model {
        key: spec.key,
        fixture: spec.fixture,
        type_name,
        joins: description != "cgminer 1.0.0",
        description,
        templates,
        base_ghs,
        ghs_decimals,
    }
}

/// Totals over a `pools` reply, for synthesized `summary` and `devs` replies.
#[derive(Default, Debug)]
struct PoolTotals {
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
    fn from_pools(text: &str) -> PoolTotals {
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
fn synth_summary(stats: &str, t: &PoolTotals, description: &str) -> String {
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
fn synth_devs(stats: &str, t: &PoolTotals, description: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::template::Live;
    use super::*;

    fn render(m: &Model, cmd: usize) -> String {
        let mut s = String::new();
        m.templates[cmd].render(
            &Live {
                when: 1,
                elapsed: 2,
                ghs: m.base_ghs,
            },
            &mut s,
        );
        s
    }

    #[test]
    fn all_models_build_and_synthesized_replies_are_valid_json() {
        assert_eq!(models().len(), SPECS.len());
        for m in models() {
            assert!(m.base_ghs >= 0.0, "{}", m.key);
            for cmd in [1, 4] {
                let text = render(m, cmd);
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{} {}: {e}: {text}", m.key, REPORT_COMMANDS[cmd]));
                assert_eq!(v["STATUS"][0]["Description"], m.description.as_str());
                assert_eq!(v["STATUS"][0]["When"], 1);
            }
        }
    }

    #[test]
    fn joins_follow_description() {
        let joins: Vec<(&str, bool)> = models().iter().map(|m| (m.key, m.joins)).collect();
        assert_eq!(
            joins,
            vec![
                ("s19pro", false),
                ("s19-overheating", false),
                ("s17", true),
                ("t15", true),
                ("s9k", true),
                ("s9", true)
            ]
        );
    }

    #[test]
    fn synthesized_summary_uses_stats_values() {
        let s17 = &models()[model_index("s17").unwrap_or(0)];
        let v: Value = serde_json::from_str(&render(s17, 1)).unwrap_or(Value::Null);
        let sum = &v["SUMMARY"][0];
        assert_eq!(sum["GHS av"], 54512.07);
        assert_eq!(sum["GHS 5s"], "54997.01");
        assert_eq!(sum["Elapsed"], 2);
        assert_eq!(sum["Accepted"], 86241 + 63 + 196);
        assert_eq!(sum["Hardware Errors"], 731 + 1074 + 1080);
    }

    #[test]
    fn malformed_fixtures_stay_malformed() {
        let s9 = &models()[model_index("s9").unwrap_or(0)];
        assert!(render(s9, 3).contains("V1.3.58\"}{\"STATS\":0"));
        let s9k = &models()[model_index("s9k").unwrap_or(0)];
        assert!(render(s9k, 0).ends_with(",\"id\":1}\"}"));
        assert_eq!(s9.base_ghs, 13883.81);
    }
}
