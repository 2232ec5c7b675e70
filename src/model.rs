//! The normalized view of one miner, whatever its dialect.
//!
//! Units are fixed here so that every dialect converts once, at the edge: hashrate in H/s,
//! temperatures in °C, power in W, uptime in seconds. A value the miner did not report (or
//! reported as a sentinel such as -273, 0 on a live board, `nan`) is `None` / absent, never 0.

use serde::{Deserialize, Serialize};

/// Which family of firmware answered, as far as the reading side needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Stock Bitmain firmware (bmminer / Bitmain cgminer builds).
    Antminer,
    /// Any other cgminer-family API that we read with the generic rules.
    Cgminer,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Antminer => "antminer",
            Family::Cgminer => "cgminer",
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
    /// Error codes or messages the miner reports.
    pub errors: Vec<String>,
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

    /// True when any board shows failed chips.
    pub fn has_errors(&self) -> bool {
        self.boards.iter().any(|b| b.has_chip_errors) || !self.errors.is_empty()
    }
}
