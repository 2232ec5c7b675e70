//! Miner families (firmware dialects) and their per-dialect knobs: framing, command tables.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A firmware family: which dialect of the cgminer-style API a miner speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Stock Bitmain firmware (bmminer / cgminer 1.0.0 builds).
    Antminer,
    /// Braiins OS (BOSminer, BOSminer+).
    Braiins,
    /// LuxOS (LUXminer).
    Luxos,
    /// MicroBT Whatsminer (btminer, API v2 on 4028, v3 on 4433).
    Whatsminer,
    /// Canaan Avalon (cgminer 4.11 fork).
    Avalon,
    /// Hiveon firmware on Antminers (bmminer, `rwglr` marker).
    Hiveon,
    /// VNish firmware on Antminers (`vnish` in `Type`).
    Vnish,
    /// A plain cgminer derivative (SealMiner bdminer).
    Cgminer,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: [Family; 8] = [
        Family::Antminer,
        Family::Braiins,
        Family::Luxos,
        Family::Whatsminer,
        Family::Avalon,
        Family::Hiveon,
        Family::Vnish,
        Family::Cgminer,
    ];

    /// Lower-case name as used in `--mix` and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Family::Antminer => "antminer",
            Family::Braiins => "braiins",
            Family::Luxos => "luxos",
            Family::Whatsminer => "whatsminer",
            Family::Avalon => "avalon",
            Family::Hiveon => "hiveon",
            Family::Vnish => "vnish",
            Family::Cgminer => "cgminer",
        }
    }

    /// Looks a family up by name or a common alias (case-insensitive).
    pub fn from_name(name: &str) -> Option<Family> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "antminer" | "bitmain" | "stock" => Family::Antminer,
            "braiins" | "bos" | "bosminer" | "braiins-os" => Family::Braiins,
            "luxos" | "luxminer" => Family::Luxos,
            "whatsminer" | "wm" | "btminer" | "microbt" => Family::Whatsminer,
            "avalon" | "canaan" => Family::Avalon,
            "hiveon" => Family::Hiveon,
            "vnish" => Family::Vnish,
            "cgminer" | "generic" => Family::Cgminer,
            _ => return None,
        })
    }

    /// The Foreman `apiType` a site would assign (protocol §4.2): 28 Whatsminer, 29 Avalon,
    /// 19 (ANTMINER_GHS) for the Antminer-based firmwares and the generic cgminer.
    pub fn api_type(self) -> u32 {
        match self {
            Family::Whatsminer => 28,
            Family::Avalon => 29,
            _ => 19,
        }
    }

    /// Whether a text request (`cmd|param`) gets a cgminer text reply. Bitmain-derived builds
    /// answer JSON here (kept from the first simulator, which clients already rely on).
    pub(crate) fn text_replies(self) -> bool {
        matches!(self, Family::Avalon | Family::Luxos | Family::Cgminer)
    }

    /// Antminer-style API groups: the known cgminer commands outside the report set are
    /// answered with code 45 "Access denied" rather than code 14 "Invalid command".
    pub(crate) fn denies_known(self) -> bool {
        matches!(
            self,
            Family::Antminer | Family::Hiveon | Family::Vnish | Family::Cgminer | Family::Braiins
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Family, String> {
        Family::from_name(s).ok_or_else(|| {
            format!(
                "unknown family '{s}' (known: {})",
                Family::ALL.map(Family::name).join(", ")
            )
        })
    }
}

/// What ends a reply on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Terminator {
    /// One NUL byte (cgminer: `strlen + 1` bytes).
    #[default]
    Nul,
    /// Nothing: the reply ends where the JSON ends.
    None,
    /// A line feed.
    Newline,
}

impl Terminator {
    pub(crate) fn bytes(self) -> &'static [u8] {
        match self {
            Terminator::Nul => b"\0",
            Terminator::None => b"",
            Terminator::Newline => b"\n",
        }
    }

    /// Parses `nul`, `none`, `newline` (or `lf`).
    pub fn from_name(s: &str) -> Result<Terminator, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nul" | "null" | "0" => Ok(Terminator::Nul),
            "none" | "" => Ok(Terminator::None),
            "newline" | "lf" | "nl" => Ok(Terminator::Newline),
            other => Err(format!(
                "unknown terminator '{other}' (expected nul, none, newline)"
            )),
        }
    }
}

/// How a miner frames its replies: the per-dialect knob of `reference/miner-dialects.md` §14.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Framing {
    pub terminator: Terminator,
    /// Keep the socket open after the reply (until the client closes, at most 60 s) instead of
    /// closing it at once.
    pub keep_open: bool,
}

/// The cgminer commands a bmminer/cgminer build knows (for the 45-versus-14 distinction).
pub(crate) const KNOWN_COMMANDS: &[&str] = &[
    "version",
    "config",
    "devs",
    "edevs",
    "pools",
    "summary",
    "stats",
    "estats",
    "devdetails",
    "coin",
    "lcd",
    "litestats",
    "check",
    "privileged",
    "notify",
    "switchpool",
    "enablepool",
    "disablepool",
    "addpool",
    "removepool",
    "poolpriority",
    "poolquota",
    "save",
    "quit",
    "restart",
    "failover-only",
    "zero",
    "debug",
    "setconfig",
    "usbstats",
    "hotplug",
    "lockstats",
    "asc",
    "ascenable",
    "ascdisable",
    "ascidentify",
    "asccount",
    "ascset",
    "pga",
    "pgaenable",
    "pgadisable",
    "pgaidentify",
    "pgacount",
    "pgaset",
    "gpu",
    "gpucount",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().unwrap(), f);
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
        }
        assert_eq!(Family::from_name("BOS"), Some(Family::Braiins));
        assert!("asicmax".parse::<Family>().is_err());
        assert_eq!(Terminator::from_name("LF"), Ok(Terminator::Newline));
    }
}
