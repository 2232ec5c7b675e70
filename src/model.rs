//! The normalized view of one miner, whatever its dialect.
//!
//! Units are fixed here so that every dialect converts once, at the edge: hashrate in H/s,
//! temperatures in °C, power in W, uptime in seconds. A value the miner did not report (or
//! reported as a sentinel such as -273, 0 on a live board, `nan`) is `None` / absent, never 0.

use serde::{Deserialize, Serialize};

/// Which dialect a miner speaks, as far as the reading side needs to know. Each has its own
/// module under `miner::dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Stock Bitmain firmware (bmminer / Bitmain cgminer builds), and Antminer-shaped builds
    /// without a marker of their own (asicseer).
    Antminer,
    /// Braiins OS (BOSminer, BOSminer+, BOSer, and the 2018 bmminer-based bOS).
    Braiins,
    /// LuxOS (LUXminer) on Antminer hardware.
    #[serde(rename = "luxos")]
    LuxOs,
    /// Whatsminer (btminer) API v1/v2 on port 4028.
    Whatsminer,
    /// Whatsminer API v3 (firmware from 2024-11): length-prefixed JSON on port 4433.
    WhatsminerV3,
    /// Canaan Avalon (cgminer 4.x fork, `MM ID` blobs in `stats`).
    Avalon,
    /// Hiveon (and mskminer, the same `rwglr` bmminer fork) on Antminer hardware.
    Hiveon,
    /// VNish (incl. the NiceHash and asicdip images) on Antminer hardware.
    Vnish,
    /// Any other cgminer-family API that we read with the generic rules.
    Cgminer,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Antminer => "antminer",
            Family::Braiins => "braiins",
            Family::LuxOs => "luxos",
            Family::Whatsminer => "whatsminer",
            Family::WhatsminerV3 => "whatsminer-v3",
            Family::Avalon => "avalon",
            Family::Hiveon => "hiveon",
            Family::Vnish => "vnish",
            Family::Cgminer => "cgminer",
        }
    }
}

/// Which firmware build runs on the miner, beyond its dialect (several firmwares share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareKind {
    /// The maker's own firmware (Bitmain, MicroBT, Canaan).
    Stock,
    BraiinsOs,
    LuxOs,
    Hiveon,
    Vnish,
    /// The `rwglr` bmminer fork without the Hiveon name.
    Mskminer,
    Asicseer,
}

impl FirmwareKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareKind::Stock => "stock",
            FirmwareKind::BraiinsOs => "braiinsos",
            FirmwareKind::LuxOs => "luxos",
            FirmwareKind::Hiveon => "hiveon",
            FirmwareKind::Vnish => "vnish",
            FirmwareKind::Mskminer => "mskminer",
            FirmwareKind::Asicseer => "asicseer",
        }
    }
}

/// What a miner is, as detected from its replies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Maker, e.g. "Antminer".
    pub make: Option<String>,
    /// Model, e.g. "S19 Pro".
    pub model: Option<String>,
    /// Firmware or miner software version string.
    pub firmware: Option<String>,
    /// MAC address, lower case with colons.
    pub mac: Option<String>,
    pub hostname: Option<String>,
    /// Which firmware build, when the replies tell.
    pub firmware_kind: Option<FirmwareKind>,
    /// Serial number of the miner (not of a board), where the API reports it.
    pub serial: Option<String>,
}

impl Identity {
    /// Fills every field this identity lacks from `other` (e.g. what detection learned).
    pub fn fill_from(&mut self, other: &Identity) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        fill(&mut self.make, &other.make);
        fill(&mut self.model, &other.model);
        fill(&mut self.firmware, &other.firmware);
        fill(&mut self.mac, &other.mac);
        fill(&mut self.hostname, &other.hostname);
        fill(&mut self.firmware_kind, &other.firmware_kind);
        fill(&mut self.serial, &other.serial);
    }
}

/// Unit of a fan reading: some firmwares report RPM, others a duty percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FanUnit {
    #[serde(rename = "RPM")]
    Rpm,
    #[serde(rename = "%")]
    Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fan {
    /// Position of the fan on the miner (0-based, in the miner's own slot order).
    pub slot: u32,
    pub speed: f64,
    pub unit: FanUnit,
}

/// One hash board (chain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Board {
    /// 0-based position, after removing vendor offsets (e.g. S9 chains 6..8 become 0..2).
    pub slot: u32,
    pub hashrate: Option<f64>,
    pub chips: Option<u32>,
    /// PCB / board sensor readings in °C, invalid readings removed.
    pub board_temps: Vec<f64>,
    /// Chip sensor readings in °C, invalid readings removed.
    pub chip_temps: Vec<f64>,
    /// True when the chip status string shows failed chips (`x`).
    pub has_chip_errors: bool,
    /// Chips the board should have, where the firmware says (Braiins `devdetails`, Whatsminer
    /// v3 board info); compare with `chips` for missing-chip alerts.
    pub expected_chips: Option<u32>,
    /// Hashrate the board should make (nominal / factory), in H/s.
    pub hashrate_ideal: Option<f64>,
    /// Highest and average temperature of the board in °C when the firmware reports only these
    /// aggregates (Avalon `MTmax`/`MTavg`, Whatsminer `Chip Temp Max`/`Avg`), not the readings.
    pub temp_max: Option<f64>,
    pub temp_avg: Option<f64>,
    /// Serial number of the hash board.
    pub serial: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub url: String,
    pub user: String,
    /// Index the miner gives the pool (its priority order).
    pub priority: u32,
    /// `Alive` on cgminer.
    pub alive: bool,
    /// False only when the miner says the pool is disabled.
    pub enabled: bool,
    /// The pool the miner currently mines on (`Stratum Active`), when reported.
    pub active: Option<bool>,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
}

/// An error code the miner reports, with the time it reports for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCode {
    /// The vendor's code, as text (`"329"`, `"NOPIC_PROTECTION"`).
    pub code: String,
    /// When it happened, in the miner's own clock (no time zone is sent).
    pub at: Option<chrono::NaiveDateTime>,
    /// The vendor's explanation, when it sends one.
    pub reason: Option<String>,
}

/// What the miner is doing with its power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerMode {
    Sleeping,
    Low,
    Normal,
    High,
}

impl PowerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerMode::Sleeping => "sleeping",
            PowerMode::Low => "low",
            PowerMode::Normal => "normal",
            PowerMode::High => "high",
        }
    }
}

/// Everything one poll learned about one miner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinerStats {
    pub family: Option<Family>,
    pub identity: Identity,
    /// Realtime hashrate in H/s: the shortest window the miner reports (5 s / 1 m).
    pub hashrate: Option<f64>,
    /// Since-boot average hashrate in H/s, kept apart from the realtime rate (case C-17).
    pub hashrate_avg: Option<f64>,
    /// Hashrate the miner expects of itself (nominal / ideal), in H/s.
    pub hashrate_ideal: Option<f64>,
    pub boards: Vec<Board>,
    pub fans: Vec<Fan>,
    /// Fans the miner says it has (`fan_num`, LuxOS `FANS`): a 0 RPM fan within that count is a
    /// stopped fan, not an empty slot (C-08).
    pub expected_fans: Option<u32>,
    /// Duty the fan controller drives, in % (Avalon `FanR`, Braiins/LuxOS `Speed`). Never RPM.
    pub fan_duty: Option<f64>,
    /// Intake (air or water) and exhaust temperature of the whole miner in °C (Avalon
    /// `Temp`/`OTemp`, Whatsminer `Env Temp`).
    pub inlet_temp: Option<f64>,
    pub outlet_temp: Option<f64>,
    /// Power draw in W.
    pub power: Option<f64>,
    /// Power limit / target in W.
    pub power_limit: Option<f64>,
    /// Uptime of the mining process in seconds.
    pub uptime: Option<u64>,
    pub pools: Vec<Pool>,
    pub power_mode: Option<PowerMode>,
    /// Whether the miner is hashing right now, judged on the realtime rate.
    pub is_hashing: Option<bool>,
    /// Why the miner says it is not mining (Whatsminer `mineroff_reason`, "btminer process off").
    pub stopped_reason: Option<String>,
    /// Error messages the miner reports (tuner states, ...).
    pub errors: Vec<String>,
    /// Error codes with their time (Whatsminer `get_error_code`, Avalon `ECHU`/`ECMM`).
    pub error_codes: Vec<ErrorCode>,
    /// Ideal / compile-time attributes worth forwarding as `attributes` (key, value).
    pub compile_time: Option<String>,
}

impl MinerStats {
    /// Board temperatures of all boards.
    pub fn board_temps(&self) -> impl Iterator<Item = f64> + '_ {
        self.boards
            .iter()
            .flat_map(|b| b.board_temps.iter().copied())
    }

    /// Chip temperatures of all boards.
    pub fn chip_temps(&self) -> impl Iterator<Item = f64> + '_ {
        self.boards
            .iter()
            .flat_map(|b| b.chip_temps.iter().copied())
    }

    /// True when any board shows failed chips, or the miner reports errors.
    pub fn has_errors(&self) -> bool {
        self.boards.iter().any(|b| b.has_chip_errors)
            || !self.errors.is_empty()
            || !self.error_codes.is_empty()
    }

    /// True when fewer fans spin than the miner says it has (C-08). `None` when it does not say.
    pub fn has_fan_failure(&self) -> Option<bool> {
        let expected = usize::try_from(self.expected_fans?).ok()?;
        let spinning = self
            .fans
            .iter()
            .filter(|f| f.unit == FanUnit::Rpm && f.speed > 0.0)
            .count();
        Some(spinning < expected)
    }
}
