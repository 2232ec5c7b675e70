//! Simulated models of every family, built from real fixture replies embedded in the binary.
//!
//! Fixtures are copies of `shared/fixtures/<vendor>/*` (see `simulator/fixtures/README.md`).
//! Replies a fixture set lacks are synthesized in the same shape from the model's own other
//! replies (`synth.rs`); which ones is listed per model in the README.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::family::Family;
use super::synth;
use super::template::{find_raw, rate_key, raw_number, raw_string, MacStyle, ParseOpts, Template};

/// The five report commands a stock Antminer serves (API group A).
pub const REPORT_COMMANDS: [&str; 5] = ["version", "summary", "pools", "stats", "devs"];

/// Commands whose miner-wide realtime rates are pinned to the model's one reported value.
const NORMALIZED: &[&str] = &["summary", "stats", "litestats", "v3:summary"];

struct Spec {
    key: &'static str,
    aliases: &'static [&'static str],
    family: Family,
    fixture: &'static str,
    make: &'static str,
    /// Model as a client would normalize it (`S19 Pro`, `M31S`, `Q`).
    model_name: &'static str,
    /// Firmware identification (where it appears in the replies: see the README).
    firmware: &'static str,
    /// (command, fixture text); `v3:` commands are Whatsminer API v3 replies.
    files: &'static [(&'static str, &'static str)],
    /// Where the reported realtime hashrate is read: (command, key).
    primary: (&'static str, &'static str),
    /// Nominal GH/s of a fixture captured while idle (used for its zero rates).
    idle_fill: Option<f64>,
    /// Whatsminer: `{"cmd":..}` accepted besides `{"command":..}`.
    cmd_key: bool,
}

macro_rules! fx {
    ($dir:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/",
            $dir,
            "/",
            $name
        ))
    };
}

macro_rules! ant {
    ($key:literal, $aliases:expr, $fixture:literal, $model:literal, [$($cmd:literal),*]) => {
        Spec {
            key: $key,
            aliases: $aliases,
            family: Family::Antminer,
            fixture: $fixture,
            make: "Antminer",
            model_name: $model,
            firmware: "",
            files: &[$(($cmd, include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/fixtures/antminer/", $fixture, "_", $cmd, ".json"
            )))),*],
            primary: ("stats", "GHS 5s"),
            idle_fill: None,
            cmd_key: false,
        }
    };
}

static SPECS: &[Spec] = &[
    ant!(
        "s19pro",
        &["s19", "s19-pro", "s19pro-2022fw"],
        "S19Pro-2022fw",
        "S19 Pro",
        ["version", "summary", "pools", "stats", "devs"]
    ),
    ant!(
        "s19-overheating",
        &["s19hot", "s19-hot", "s19overheating"],
        "S19-overheating",
        "S19 Pro",
        ["version", "pools", "stats"]
    ),
    ant!("s17", &[], "S17", "S17", ["version", "pools", "stats"]),
    ant!("t15", &[], "T15", "T15", ["version", "pools", "stats"]),
    ant!("s9k", &[], "S9k", "S9k", ["version", "pools", "stats"]),
    ant!(
        "s9",
        &["s9-bad-temps", "s9badtemps"],
        "S9-bad-temps",
        "S9",
        ["version", "pools", "stats"]
    ),
    Spec {
        key: "bos-s9",
        aliases: &["bosminer-s9", "s9-bos"],
        family: Family::Braiins,
        fixture: "S9-bOS",
        make: "Antminer",
        model_name: "S9",
        firmware: "BOSminer 0.2.0-d360818",
        files: &[
            ("version", fx!("braiins", "S9-bOS_version.json")),
            ("summary", fx!("braiins", "S9-bOS_summary.json")),
            ("pools", fx!("braiins", "S9-bOS_pools.json")),
            ("fans", fx!("braiins", "S9-bOS_fans.json")),
            ("temps", fx!("braiins", "S9-bOS_temps.json")),
        ],
        primary: ("summary", "MHS 1m"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "bosplus-s9",
        aliases: &["bos+-s9", "s9-bosplus"],
        family: Family::Braiins,
        fixture: "S9-bOSplus",
        make: "Antminer",
        model_name: "S9",
        firmware: "BOSminer+ 0.2.0-36c56a9363",
        files: &[
            ("version", fx!("braiins", "S9-bOSplus_version.json")),
            ("summary", fx!("braiins", "S9-bOSplus_summary.json")),
            ("pools", fx!("braiins", "S9-bOSplus_pools.json")),
            ("devs", fx!("braiins", "S9-bOSplus_devs.json")),
            ("fans", fx!("braiins", "S9-bOSplus_fans.json")),
            ("temps", fx!("braiins", "S9-bOSplus_temps.json")),
        ],
        primary: ("summary", "MHS 1m"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "luxos-s19kpro",
        aliases: &["luxos-s19k", "s19kpro-luxos"],
        family: Family::Luxos,
        fixture: "S19kPro-2025.4",
        make: "Antminer",
        model_name: "S19k Pro",
        firmware: "2025.4.8.220305",
        files: &[
            ("version", fx!("luxos", "S19kPro-2025.4_version.json")),
            ("summary", fx!("luxos", "S19kPro-2025.4_summary.json")),
            ("pools", fx!("luxos", "S19kPro-2025.4_pools.json")),
            ("stats", fx!("luxos", "S19kPro-2025.4_stats.json")),
            ("devs", fx!("luxos", "S19kPro-2025.4_devs.json")),
            ("config", fx!("luxos", "S19kPro-2025.4_config.json")),
            ("power", fx!("luxos", "S19kPro-2025.4_power.json")),
            ("fans", fx!("luxos", "S19kPro-2025.4_fans.json")),
            ("temps", fx!("luxos", "S19kPro-2025.4_temps.json")),
        ],
        primary: ("summary", "GHS 5s"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "m31s",
        aliases: &["whatsminer-m31s"],
        family: Family::Whatsminer,
        fixture: "M31S-new-firmware",
        make: "Whatsminer",
        model_name: "M31S",
        firmware: "20201202.22.REL",
        files: &[
            (
                "summary",
                fx!("whatsminer", "M31S-new-firmware_summary.json"),
            ),
            ("edevs", fx!("whatsminer", "M31S-new-firmware_edevs.json")),
            ("pools", fx!("whatsminer", "M31S-new-firmware_pools.json")),
            (
                "wm:get_token",
                fx!("whatsminer", "M31S-new-firmware_get_token.json"),
            ),
            ("wm:status", fx!("whatsminer", "M31S-sleeping_status.json")),
        ],
        primary: ("summary", "MHS 1m"),
        idle_fill: None,
        cmd_key: true,
    },
    Spec {
        key: "m30s",
        aliases: &["whatsminer-m30s"],
        family: Family::Whatsminer,
        fixture: "M30S-new-firmware",
        make: "Whatsminer",
        model_name: "M30S",
        firmware: "20200512.13.REL",
        files: &[
            (
                "summary",
                fx!("whatsminer", "M30S-new-firmware_summary.json"),
            ),
            ("edevs", fx!("whatsminer", "M30S-new-firmware_edevs.json")),
            ("pools", fx!("whatsminer", "M30S-new-firmware_pools.json")),
            (
                "wm:get_token",
                fx!("whatsminer", "M31S-new-firmware_get_token.json"),
            ),
            ("wm:status", fx!("whatsminer", "M31S-sleeping_status.json")),
        ],
        primary: ("summary", "MHS 1m"),
        idle_fill: None,
        // This 2020-05 firmware answered `{"cmd":..}` with code 24 (fixture).
        cmd_key: false,
    },
    Spec {
        key: "m60s",
        aliases: &["whatsminer-m60s", "m60s-v3"],
        family: Family::Whatsminer,
        fixture: "apiv3-M60S-20251209",
        make: "Whatsminer",
        model_name: "M60S",
        firmware: "20251209.16.Rel2",
        files: &[
            (
                "wm:get_token",
                fx!("whatsminer", "M31S-new-firmware_get_token.json"),
            ),
            (
                "v3:get.device.info",
                fx!("whatsminer", "apiv3-M60S-20251209_get_device_info.json"),
            ),
            (
                "v3:summary",
                fx!(
                    "whatsminer",
                    "apiv3-M60S-20251209_get_miner_status_summary.json"
                ),
            ),
            (
                "v3:edevs",
                fx!(
                    "whatsminer",
                    "apiv3-M60S-20251209_get_miner_status_edevs.json"
                ),
            ),
            (
                "v3:pools",
                fx!(
                    "whatsminer",
                    "apiv3-M60S-20251209_get_miner_status_pools.json"
                ),
            ),
        ],
        primary: ("v3:summary", "hash-realtime"),
        idle_fill: None,
        cmd_key: true,
    },
    Spec {
        key: "avalonq",
        aliases: &["avalon-q"],
        family: Family::Avalon,
        fixture: "AvalonQ-25052801",
        make: "Avalon",
        model_name: "Q",
        firmware: "25052801_14a19a2",
        files: &[
            ("version", fx!("avalon", "AvalonQ-25052801_version.json")),
            ("summary", fx!("avalon", "AvalonQ-25052801_summary.json")),
            ("pools", fx!("avalon", "AvalonQ-25052801_pools.json")),
            ("devs", fx!("avalon", "AvalonQ-25052801_devs.json")),
            ("stats", fx!("avalon", "AvalonQ-25052801_stats.json")),
            (
                "litestats",
                fx!("avalon", "AvalonQ-25052801_litestats.json"),
            ),
            (
                "devdetails",
                fx!("avalon", "AvalonQ-25052801_devdetails.json"),
            ),
            ("config", fx!("avalon", "AvalonQ-25052801_config.json")),
            (
                "ascset:softoff",
                fx!("avalon", "AvalonQ-25052801_ascset_softoff.json"),
            ),
            (
                "ascset:softon",
                fx!("avalon", "AvalonQ-25052801_ascset_softon.json"),
            ),
            (
                "ascset:ok",
                fx!("avalon", "AvalonQ-25052801_ascset_workmode.json"),
            ),
            (
                "ascset:help",
                fx!("avalon", "AvalonQ-25052801_ascset_help.json"),
            ),
        ],
        primary: ("summary", "MHS 1m"),
        // Captured soft-off (GHSspd 0); hashing, it runs at its since-boot average GHSavg.
        idle_fill: Some(44499.41),
        cmd_key: false,
    },
    Spec {
        key: "avalon1566",
        aliases: &["avalon-1566", "avalonminer-1566"],
        family: Family::Avalon,
        fixture: "Avalon1566-24102401",
        make: "Avalon",
        model_name: "15-194",
        firmware: "24102401_25462b2_9ddf522",
        files: &[
            (
                "version",
                fx!("avalon", "Avalon1566-24102401_rpc_version.json"),
            ),
            ("pools", fx!("avalon", "Avalon1566-24102401_rpc_pools.json")),
            ("devs", fx!("avalon", "Avalon1566-24102401_rpc_devs.json")),
            ("stats", fx!("avalon", "Avalon1566-24102401_rpc_stats.json")),
            (
                "ascset:softoff",
                fx!("avalon", "AvalonQ-25052801_ascset_softoff.json"),
            ),
            (
                "ascset:ok",
                fx!("avalon", "AvalonQ-25052801_ascset_workmode.json"),
            ),
            (
                "ascset:help",
                fx!("avalon", "AvalonQ-25052801_ascset_help.json"),
            ),
        ],
        primary: ("devs", "MHS 1m"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "hiveon-s9",
        aliases: &["s9-hiveon"],
        family: Family::Hiveon,
        fixture: "S9-Hiveon",
        make: "Antminer",
        model_name: "S9",
        firmware: "2.0.0 rwglr",
        files: &[
            ("version", fx!("hiveon", "S9-Hiveon_version.json")),
            ("pools", fx!("hiveon", "S9-Hiveon_pools.json")),
            ("stats", fx!("hiveon", "S9-Hiveon_stats.json")),
        ],
        primary: ("stats", "GHS 5s"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "vnish-s9",
        aliases: &["s9-vnish", "s9-nicehash"],
        family: Family::Vnish,
        fixture: "S9-NiceHash",
        make: "Antminer",
        model_name: "S9",
        firmware: "vnish 3.8.6",
        files: &[
            ("version", fx!("vnish", "S9-NiceHash_version.json")),
            ("pools", fx!("vnish", "S9-NiceHash_pools.json")),
            ("stats", fx!("vnish", "S9-NiceHash_stats.json")),
        ],
        primary: ("stats", "GHS 5s"),
        idle_fill: None,
        cmd_key: false,
    },
    Spec {
        key: "sealminer-a2",
        aliases: &["sealminer", "bdminer"],
        family: Family::Cgminer,
        fixture: "SealMiner-bdminer-2025",
        make: "SealMiner",
        model_name: "A2",
        firmware: "2025091001",
        files: &[
            (
                "version",
                fx!("cgminer_generic", "SealMiner-bdminer-2025_version.json"),
            ),
            (
                "summary",
                fx!("cgminer_generic", "SealMiner-bdminer-2025_summary.json"),
            ),
            (
                "pools",
                fx!("cgminer_generic", "SealMiner-bdminer-2025_pools.json"),
            ),
            (
                "stats",
                fx!("cgminer_generic", "SealMiner-bdminer-2025_stats.json"),
            ),
        ],
        primary: ("summary", "MHS 1m"),
        idle_fill: None,
        cmd_key: false,
    },
];

/// The default fleet mix (model key, weight): stock Antminers only, as the first simulator
/// had it (the daemon's demo and tests start from it). Families are opt-in via `--mix`.
pub const DEFAULT_MIX: &[(&str, u32)] = &[
    ("s19pro", 40),
    ("s19-overheating", 5),
    ("s17", 20),
    ("t15", 10),
    ("s9k", 10),
    ("s9", 15),
];

/// A simulated model: its identity and one reply template per command it answers.
#[derive(Debug)]
pub struct Model {
    /// Short key used in `--mix` (`s19pro`, `m31s`, ...).
    pub key: &'static str,
    pub family: Family,
    /// Fixture set the replies come from (`S19Pro-2022fw`, ...).
    pub fixture: &'static str,
    /// Maker as a client reports it (`Antminer`, `Whatsminer`, `Avalon`, `SealMiner`).
    pub make: &'static str,
    /// Model as a client normalizes it (`S19 Pro`, `M31S`, `Q`, `15-194`).
    pub model_name: &'static str,
    /// `VERSION[0].Type` as served (or the maker's product name where there is no `Type`).
    pub type_name: String,
    /// Firmware identification.
    pub firmware: String,
    /// `STATUS[0].Description` of the model's replies.
    pub description: String,
    /// Whether `a+b+c` joins are served (`false` on `cgminer 1.0.0` builds, the S19s).
    pub joins: bool,
    /// Realtime hashrate of the fixture (GH/s), the centre of the per-reply jitter.
    pub base_ghs: f64,
    /// Decimals the reported hashrate has when printed in GH/s.
    pub ghs_decimals: usize,
    /// (command, key) the reported hashrate is read from.
    pub primary: (&'static str, &'static str),
    /// Whether it serves a MAC address (and its first three bytes).
    pub(crate) oui: Option<[u8; 3]>,
    pub(crate) cmd_key: bool,
    replies: HashMap<&'static str, Template>,
}

impl Model {
    /// The template answering `cmd` (`wm:`/`v3:`/`ascset:` prefixes for non-cgminer shapes).
    pub(crate) fn reply(&self, cmd: &str) -> Option<&Template> {
        self.replies.get(cmd)
    }

    /// Whether this model serves Whatsminer API v3 on port 4433.
    pub fn serves_v3(&self) -> bool {
        self.replies.contains_key("v3:summary")
    }

    /// GH/s printed as the reply prints the reported rate, for a factor (jitter x on/off).
    pub(crate) fn served_ghs(&self, factor: f64) -> f64 {
        let unit = rate_key(self.primary.1).map_or(1.0, |(u, _)| u);
        let printed =
            super::template::round_to(self.base_ghs * factor * unit, self.primary_decimals());
        super::template::round_to(printed / unit, self.ghs_decimals)
    }

    fn primary_decimals(&self) -> usize {
        let unit = rate_key(self.primary.1).map_or(1.0, |(u, _)| u);
        let shift = unit.log10().round() as i64;
        usize::try_from(self.ghs_decimals as i64 - shift).unwrap_or(0)
    }
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

/// Indexes of a family's models, in catalog order.
pub fn family_models(family: Family) -> Vec<usize> {
    (0..SPECS.len())
        .filter(|&i| SPECS[i].family == family)
        .collect()
}

/// Keys of all models, for error messages.
pub fn model_keys() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.key).collect()
}

fn text<'a>(files: &'a [(&'static str, String)], cmd: &str) -> Option<&'a str> {
    files
        .iter()
        .find(|(c, _)| *c == cmd)
        .map(|(_, t)| t.as_str())
}

/// Adds the replies the fixture set lacks, per family.
fn synthesize(spec: &Spec, files: &mut Vec<(&'static str, String)>, description: &str) {
    let has = |files: &Vec<(&str, String)>, c: &str| files.iter().any(|(k, _)| *k == c);
    match spec.family {
        Family::Antminer | Family::Hiveon | Family::Vnish => {
            let stats = text(files, "stats").unwrap_or("").to_string();
            let totals = synth::PoolTotals::from_pools(text(files, "pools").unwrap_or(""));
            if !has(files, "summary") {
                files.push((
                    "summary",
                    synth::antminer_summary(&stats, &totals, description),
                ));
            }
            if !has(files, "devs") {
                files.push(("devs", synth::antminer_devs(&stats, &totals, description)));
            }
        }
        Family::Braiins => {
            let summary = text(files, "summary").unwrap_or("").to_string();
            if !has(files, "devs") {
                files.push(("devs", synth::bos_devs(&summary, description)));
            }
            let devs = text(files, "devs").unwrap_or("").to_string();
            let signature = if description.starts_with("BOSminer+") {
                "BOSminer+"
            } else {
                "BOSminer"
            };
            files.push(("edevs", devs));
            files.push((
                "devdetails",
                synth::bos_devdetails(description, "Bitmain Antminer S9"),
            ));
            files.push(("stats", synth::bos_stats(&summary, description, signature)));
            files.push(("tunerstatus", synth::bos_tunerstatus(description)));
        }
        Family::Luxos => {
            if let Some(d) = text(files, "devs").map(str::to_string) {
                files.push(("edevs", d));
            }
        }
        Family::Whatsminer => synth_whatsminer(spec, files, description),
        Family::Avalon => {
            let devs = text(files, "devs").unwrap_or("").to_string();
            let stats = text(files, "stats").unwrap_or("").to_string();
            if !has(files, "summary") {
                let pools = text(files, "pools").unwrap_or("").to_string();
                files.push(("summary", synth::avalon_summary(&devs, &pools, description)));
            }
            if !has(files, "litestats") {
                files.push(("litestats", synth::avalon_litestats(&stats, description)));
            }
            files.push(("edevs", devs));
            files.push(("estats", stats));
        }
        Family::Cgminer => {}
    }
}

fn synth_whatsminer(spec: &Spec, files: &mut Vec<(&'static str, String)>, description: &str) {
    let wm_desc = text(files, "wm:status")
        .and_then(synth::description_of)
        .unwrap_or("whatsminer v1.3")
        .to_string();
    if spec.key == "m60s" {
        // API v3 firmware: on 4028 only what clients use to detect it and pick API v3.
        let info = text(files, "v3:get.device.info").unwrap_or("").to_string();
        let mac = find_raw(&info, "mac")
            .and_then(raw_string)
            .unwrap_or("")
            .to_string();
        let model = find_raw(&info, "type")
            .and_then(raw_string)
            .unwrap_or("M60S")
            .to_string();
        let edevs = text(files, "v3:edevs").unwrap_or("").to_string();
        let n = edevs.matches("\"id\"").count().max(1);
        let fake_devs = format!("{{\"DEVS\":[{}]}}", vec!["{}"; n].join(","));
        files.push((
            "devdetails",
            synth::wm_devdetails(&fake_devs, "btminer", &model),
        ));
        files.push((
            "wm:get_version",
            synth::wm_get_version("3.0.2", spec.firmware, "H616", ""),
        ));
        files.push(("wm:get_miner_info", synth::wm_get_miner_info(&mac, "")));
        files.push(("wm:status", synth::wm_status_new(spec.firmware, "")));
        return;
    }
    let summary = text(files, "summary").unwrap_or("").to_string();
    let edevs = text(files, "edevs").unwrap_or("").to_string();
    let mac = find_raw(&summary, "MAC")
        .and_then(raw_string)
        .unwrap_or("")
        .to_string();
    files.push(("devs", edevs.clone()));
    files.push((
        "devdetails",
        synth::wm_devdetails(&edevs, description, &format!("{}V10", spec.model_name)),
    ));
    files.push((
        "wm:get_version",
        synth::wm_get_version(&wm_desc, spec.firmware, "H6OS", &wm_desc),
    ));
    files.push((
        "wm:get_miner_info",
        synth::wm_get_miner_info(&mac, &wm_desc),
    ));
    files.push((
        "wm:get_error_code",
        synth::wm_get_error_code(&summary, &wm_desc),
    ));
    // The captured `status` is of a sleeping miner; its shape with this model's firmware.
    files.retain(|(c, _)| *c != "wm:status");
    files.push(("wm:status", synth::wm_status_old(spec.firmware, &wm_desc)));
}

fn build_model(spec: &Spec) -> Model {
    let mut files: Vec<(&'static str, String)> = spec
        .files
        .iter()
        .map(|(c, t)| (*c, (*t).to_string()))
        .collect();
    let description = files
        .iter()
        .find(|(c, _)| !c.contains(':'))
        .and_then(|(_, t)| synth::description_of(t))
        .unwrap_or(match spec.family {
            // API v3 firmware: its 4028 replies say btminer.
            Family::Whatsminer => "btminer",
            _ => "cgminer 1.0.0",
        })
        .to_string();
    synthesize(spec, &mut files, &description);

    let primary_raw = text(&files, spec.primary.0)
        .and_then(|t| find_raw(t, spec.primary.1))
        .unwrap_or("0");
    let unit = rate_key(spec.primary.1).map_or(1.0, |(u, _)| u);
    let raw_decimals = primary_raw
        .trim_matches('"')
        .split_once('.')
        .map_or(0, |(_, d)| d.len());
    // Printed in MH/s with 2 decimals = GH/s with 5; in TH/s with 3 = GH/s with 0.
    let ghs_decimals =
        usize::try_from(raw_decimals as i64 + unit.log10().round() as i64).unwrap_or(0);
    let base_ghs = spec.idle_fill.unwrap_or_else(|| {
        super::template::round_to(raw_number(primary_raw).unwrap_or(0.0) / unit, ghs_decimals)
    });

    let version = text(&files, "version").unwrap_or("");
    let type_name = find_raw(version, "Type")
        .or_else(|| find_raw(version, "PROD"))
        .and_then(raw_string)
        .map(|t| t.split("\\n").next().unwrap_or(t).to_string())
        .unwrap_or_else(|| format!("{} {}", spec.make, spec.model_name));
    let firmware = if spec.firmware.is_empty() {
        find_raw(version, "CompileTime")
            .and_then(raw_string)
            .unwrap_or("")
            .to_string()
    } else {
        spec.firmware.to_string()
    };
    let oui = files.iter().find_map(|(_, t)| {
        super::template::find_all(t, |k| matches!(k, "MAC" | "MACAddr" | "mac" | "miner_id"))
            .iter()
            .filter_map(|(_, v)| raw_string(v))
            .find(|v| MacStyle::detect(v).is_some())
            .and_then(MacStyle::parse)
            .map(|m| [m[0], m[1], m[2]])
    });
    let replies = files
        .iter()
        .map(|(cmd, t)| {
            let opts = ParseOpts {
                normalize_ghs: NORMALIZED.contains(cmd).then_some(base_ghs),
                fill_ghs: spec.idle_fill,
                pools: *cmd == "pools" || *cmd == "v3:pools",
            };
            (*cmd, Template::parse_with(t, &opts))
        })
        .collect();
    Model {
        key: spec.key,
        family: spec.family,
        fixture: spec.fixture,
        make: spec.make,
        model_name: spec.model_name,
        type_name,
        firmware,
        joins: description != "cgminer 1.0.0",
        description,
        base_ghs,
        ghs_decimals,
        primary: spec.primary,
        oui,
        cmd_key: spec.cmd_key,
        replies,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::template::Live;
    use super::*;
    use serde_json::Value;

    fn render(m: &Model, cmd: &str) -> String {
        m.reply(cmd)
            .unwrap_or_else(|| panic!("{} has no {cmd}", m.key))
            .render_string(&Live::fixed(1, 2))
    }

    fn model(key: &str) -> &'static Model {
        &models()[model_index(key).unwrap()]
    }

    #[test]
    fn all_models_build_and_synthesized_replies_are_valid_json() {
        assert_eq!(models().len(), SPECS.len());
        for m in models() {
            // The overheated S19 was captured not hashing (`GHS 5s` 0.0), as C-17 describes.
            assert_eq!(m.base_ghs > 0.0, m.key != "s19-overheating", "{}", m.key);
            for (cmd, _) in m.replies.iter() {
                let text = render(m, cmd);
                // Malformed captures stay malformed on purpose.
                let known_bad = matches!(
                    (m.key, *cmd),
                    ("s9", "stats")
                        | ("s9k", "version")
                        | ("hiveon-s9", "stats")
                        | ("vnish-s9", "stats")
                );
                let parsed = serde_json::from_str::<Value>(&text);
                assert_eq!(parsed.is_err(), known_bad, "{} {cmd}: {text}", m.key);
            }
        }
        for m in models().iter().filter(|m| m.family != Family::Whatsminer) {
            let v: Value = serde_json::from_str(&render(m, "summary")).unwrap();
            assert_eq!(
                v["STATUS"][0]["Description"],
                m.description.as_str(),
                "{}",
                m.key
            );
            assert_eq!(v["STATUS"][0]["When"], 1, "{}", m.key);
        }
    }

    #[test]
    fn joins_follow_description() {
        let joins: Vec<(&str, bool)> = models().iter().take(6).map(|m| (m.key, m.joins)).collect();
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
        assert!(models().iter().skip(6).all(|m| m.joins));
    }

    #[test]
    fn synthesized_summary_uses_stats_values() {
        let v: Value = serde_json::from_str(&render(model("s17"), "summary")).unwrap();
        let sum = &v["SUMMARY"][0];
        assert_eq!(sum["GHS av"], 54512.07);
        assert_eq!(sum["GHS 5s"], "54997.01");
        assert_eq!(sum["Elapsed"], 2);
        assert_eq!(sum["Accepted"], 86241 + 63 + 196);
        assert_eq!(sum["Hardware Errors"], 731 + 1074 + 1080);
    }

    #[test]
    fn malformed_fixtures_stay_malformed() {
        assert!(render(model("s9"), "stats").contains("V1.3.58\"}{\"STATS\":0"));
        assert!(render(model("s9k"), "version").ends_with(",\"id\":1}\"}"));
        assert_eq!(model("s9").base_ghs, 13883.81);
    }

    #[test]
    fn identities_and_rates_of_every_family() {
        let m = model("m31s");
        assert_eq!(
            (m.family, m.make, m.model_name),
            (Family::Whatsminer, "Whatsminer", "M31S")
        );
        assert_eq!(m.base_ghs, 77909.4486);
        assert_eq!(m.ghs_decimals, 5);
        assert_eq!(m.served_ghs(1.0), 77909.4486);
        // Every miner-wide realtime rate of the summary agrees with the reported one.
        let v: Value = serde_json::from_str(&render(m, "summary")).unwrap();
        assert_eq!(v["SUMMARY"][0]["MHS 5s"], 77909448.6);
        assert_eq!(v["SUMMARY"][0]["HS RT"], 77909448.6);
        assert_eq!(m.oui, Some([0xc6, 0x06, 0x12]));
        let v: Value = serde_json::from_str(&render(m, "devdetails")).unwrap();
        assert_eq!(v["DEVDETAILS"][0]["Driver"], "bitmicro");
        let m = model("m60s");
        assert!(m.serves_v3());
        assert_eq!(m.base_ghs, 171259.0);
        let m = model("avalonq");
        assert_eq!(m.type_name, "Avalon Q");
        let v: Value = serde_json::from_str(&render(m, "devs")).unwrap();
        assert_eq!(v["DEVS"][0]["MHS 1m"], 44499410.0);
        let m = model("luxos-s19kpro");
        assert_eq!(
            (m.type_name.as_str(), m.base_ghs),
            ("Antminer S19k Pro", 59756.06)
        );
        assert_eq!(m.oui, Some([0x62, 0xf7, 0x5e]));
        let m = model("bos-s9");
        let v: Value = serde_json::from_str(&render(m, "devs")).unwrap();
        assert_eq!(v["DEVS"][2]["ID"], 8);
        assert_eq!(family_models(Family::Braiins).len(), 2);
        let sum: Value = serde_json::from_str(&render(model("avalon1566"), "summary")).unwrap();
        assert_eq!(sum["SUMMARY"][0]["MHS 1m"], 197266944.16);
    }
}
