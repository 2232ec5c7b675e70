//! Per-family normalisation: each family's replies → [`MinerStats`].
//!
//! Dispatch is a plain `match` on [`Family`]: one module per dialect, one `normalize` function
//! each, no trait objects. A [`Plan`] per family says which commands a poll sends and which of
//! them travel in one joined request. What several dialects share (pools, temperature
//! plausibility, realtime-rate keys, `FANS`/`TEMPS` sections) lives here.

pub mod antminer;
pub mod avalon;
pub mod braiins;
pub mod cgminer;
pub mod hiveon;
pub mod luxos;
pub mod vnish;
pub mod whatsminer;
pub mod whatsminer_v3;

use serde_json::{Map, Value};

use super::reply::{self, field, field_bool, field_str, field_u64};
use crate::model::{Family, Fan, FanUnit, MinerStats, Pool, PowerMode};

/// The read commands a poll may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Version,
    Summary,
    Pools,
    Stats,
    Devs,
    Edevs,
    Devdetails,
    /// Braiins / LuxOS extensions.
    Temps,
    Fans,
    Tunerstatus,
    /// LuxOS extensions.
    Config,
    Power,
    /// Whatsminer API v2 replies with a bare `STATUS` string and an object in `Msg`; these can
    /// never be joined.
    WmStatus,
    WmGetVersion,
    WmGetMinerInfo,
    WmGetErrorCode,
    /// Whatsminer API v3 (port 4433, length-prefixed), one request per connection.
    V3DeviceInfo,
    V3Summary,
    V3Edevs,
    V3Pools,
}

impl Command {
    pub const COUNT: usize = 20;

    pub const ALL: [Command; Command::COUNT] = [
        Command::Version,
        Command::Summary,
        Command::Pools,
        Command::Stats,
        Command::Devs,
        Command::Edevs,
        Command::Devdetails,
        Command::Temps,
        Command::Fans,
        Command::Tunerstatus,
        Command::Config,
        Command::Power,
        Command::WmStatus,
        Command::WmGetVersion,
        Command::WmGetMinerInfo,
        Command::WmGetErrorCode,
        Command::V3DeviceInfo,
        Command::V3Summary,
        Command::V3Edevs,
        Command::V3Pools,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::Summary => "summary",
            Command::Pools => "pools",
            Command::Stats => "stats",
            Command::Devs => "devs",
            Command::Edevs => "edevs",
            Command::Devdetails => "devdetails",
            Command::Temps => "temps",
            Command::Fans => "fans",
            Command::Tunerstatus => "tunerstatus",
            Command::Config => "config",
            Command::Power => "power",
            Command::WmStatus => "status",
            Command::WmGetVersion => "get_version",
            Command::WmGetMinerInfo => "get_miner_info",
            Command::WmGetErrorCode => "get_error_code",
            Command::V3DeviceInfo => "get.device.info",
            Command::V3Summary => "get.miner.status summary",
            Command::V3Edevs => "get.miner.status edevs",
            Command::V3Pools => "get.miner.status pools",
        }
    }

    /// The request for this command alone (for v3: the JSON inside the length prefix).
    pub const fn request(self) -> &'static [u8] {
        match self {
            Command::Version => br#"{"command":"version"}"#,
            Command::Summary => br#"{"command":"summary"}"#,
            Command::Pools => br#"{"command":"pools"}"#,
            Command::Stats => br#"{"command":"stats"}"#,
            Command::Devs => br#"{"command":"devs"}"#,
            Command::Edevs => br#"{"command":"edevs"}"#,
            Command::Devdetails => br#"{"command":"devdetails"}"#,
            Command::Temps => br#"{"command":"temps"}"#,
            Command::Fans => br#"{"command":"fans"}"#,
            Command::Tunerstatus => br#"{"command":"tunerstatus"}"#,
            Command::Config => br#"{"command":"config"}"#,
            Command::Power => br#"{"command":"power"}"#,
            Command::WmStatus => br#"{"command":"status"}"#,
            Command::WmGetVersion => br#"{"command":"get_version"}"#,
            Command::WmGetMinerInfo => br#"{"command":"get_miner_info"}"#,
            Command::WmGetErrorCode => br#"{"command":"get_error_code"}"#,
            Command::V3DeviceInfo => br#"{"cmd":"get.device.info"}"#,
            Command::V3Summary => br#"{"cmd":"get.miner.status","param":"summary"}"#,
            Command::V3Edevs => br#"{"cmd":"get.miner.status","param":"edevs"}"#,
            Command::V3Pools => br#"{"cmd":"get.miner.status","param":"pools"}"#,
        }
    }

    /// Sent to the Whatsminer API v3 port with a length prefix.
    pub const fn is_v3(self) -> bool {
        matches!(
            self,
            Command::V3DeviceInfo | Command::V3Summary | Command::V3Edevs | Command::V3Pools
        )
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A joined request and the commands it holds, in reply order.
#[derive(Debug, Clone, Copy)]
pub struct Joined {
    /// The joined command as sent, for error messages.
    pub name: &'static str,
    pub request: &'static [u8],
    pub commands: &'static [Command],
}

macro_rules! joined {
    ($name:literal, [$($c:ident),* $(,)?]) => {
        Joined {
            name: $name,
            request: concat!(r#"{"command":""#, $name, r#""}"#).as_bytes(),
            commands: &[$(Command::$c),*],
        }
    };
}

/// What one poll of a family sends.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The data commands, joined into one request when the miner takes joins (otherwise one
    /// connection each).
    pub joined: Option<Joined>,
    /// Commands that always go on their own connection, alongside the join.
    pub separate: &'static [Command],
    /// `stats` repeats the `version` block, so single-command mode may skip `version`.
    pub stats_carry_version: bool,
}

/// The commands a poll of `family` sends.
pub const fn plan(family: Family) -> Plan {
    match family {
        Family::Antminer | Family::Hiveon | Family::Vnish => Plan {
            joined: Some(joined!(
                "version+summary+pools+stats",
                [Version, Summary, Pools, Stats]
            )),
            separate: &[],
            stats_carry_version: true,
        },
        Family::Braiins => Plan {
            joined: Some(joined!(
                "version+summary+pools+devs+temps+fans+tunerstatus",
                [Version, Summary, Pools, Devs, Temps, Fans, Tunerstatus]
            )),
            separate: &[],
            stats_carry_version: false,
        },
        Family::LuxOs => Plan {
            joined: Some(joined!(
                "version+summary+pools+stats+devs+temps+fans+power+config",
                [Version, Summary, Pools, Stats, Devs, Temps, Fans, Power, Config]
            )),
            separate: &[],
            stats_carry_version: true,
        },
        // `status` and `get_error_code` answer in the Whatsminer shape and cannot be joined.
        Family::Whatsminer => Plan {
            joined: Some(joined!("summary+pools+edevs", [Summary, Pools, Edevs])),
            separate: &[Command::WmStatus, Command::WmGetErrorCode],
            stats_carry_version: false,
        },
        Family::WhatsminerV3 => Plan {
            joined: None,
            // Device info carries the error codes: read every poll.
            separate: &[
                Command::V3Summary,
                Command::V3Edevs,
                Command::V3Pools,
                Command::V3DeviceInfo,
            ],
            stats_carry_version: false,
        },
        Family::Avalon => Plan {
            joined: Some(joined!(
                "version+summary+pools+stats",
                [Version, Summary, Pools, Stats]
            )),
            separate: &[],
            stats_carry_version: false,
        },
        Family::Cgminer => Plan {
            joined: Some(joined!(
                "version+summary+pools+devs",
                [Version, Summary, Pools, Devs]
            )),
            separate: &[],
            stats_carry_version: false,
        },
    }
}

/// Successful replies of one poll, one slot per command (a failed command stays `None`).
#[derive(Debug, Default, Clone)]
pub struct Replies {
    slots: [Option<Value>; Command::COUNT],
}

impl Replies {
    pub fn get(&self, command: Command) -> Option<&Value> {
        self.slots[command.index()].as_ref()
    }

    pub fn set(&mut self, command: Command, reply: Value) {
        self.slots[command.index()] = Some(reply);
    }

    /// Whether no command answered at all.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// First object of section `name` in the reply to `command`.
    pub fn first(&self, command: Command, name: &str) -> Option<&Map<String, Value>> {
        self.get(command).and_then(|v| reply::first_obj(v, name))
    }

    /// Section `name` of the reply to `command` (empty when absent).
    pub fn section(&self, command: Command, name: &str) -> &[Value] {
        self.get(command).map_or(&[], |v| reply::section(v, name))
    }
}

/// Turns one poll's replies into the normalized model, in the given family's dialect.
pub fn normalize(family: Family, replies: &Replies) -> MinerStats {
    let mut stats = match family {
        Family::Antminer => antminer::normalize(replies),
        Family::Braiins => braiins::normalize(replies),
        Family::LuxOs => luxos::normalize(replies),
        Family::Whatsminer => whatsminer::normalize(replies),
        Family::WhatsminerV3 => whatsminer_v3::normalize(replies),
        Family::Avalon => avalon::normalize(replies),
        Family::Hiveon => hiveon::normalize(replies),
        Family::Vnish => vnish::normalize(replies),
        Family::Cgminer => cgminer::normalize(replies),
    };
    stats.family = Some(family);
    finish(&mut stats);
    stats
}

/// Rules every dialect shares once its fields are read: hashing is judged on the realtime rate
/// (never the since-boot average, C-17), a sleeping miner is not hashing, and nothing
/// non-finite or negative leaves the dialect.
fn finish(s: &mut MinerStats) {
    let keep = |x: &mut Option<f64>| {
        if x.is_some_and(|v| !v.is_finite() || v < 0.0) {
            *x = None;
        }
    };
    for x in [
        &mut s.hashrate,
        &mut s.hashrate_avg,
        &mut s.hashrate_ideal,
        &mut s.power,
        &mut s.power_limit,
        &mut s.fan_duty,
    ] {
        keep(x);
    }
    for x in [&mut s.inlet_temp, &mut s.outlet_temp] {
        if x.is_some_and(|t| !valid_temp(t)) {
            *x = None;
        }
    }
    for b in &mut s.boards {
        keep(&mut b.hashrate);
        keep(&mut b.hashrate_ideal);
        b.board_temps.retain(|t| valid_temp(*t));
        b.chip_temps.retain(|t| valid_temp(*t));
        for t in [&mut b.temp_max, &mut b.temp_avg] {
            if t.is_some_and(|t| !valid_temp(t)) {
                *t = None;
            }
        }
    }
    s.fans.retain(|f| f.speed.is_finite() && f.speed >= 0.0);
    // A reading below 5 W per TH/s is no power reading: no SHA-256 miner is that efficient
    // (Hiveon S9 prints `chain_power` "34.65 (AB)" while making 11.8 TH/s).
    if let (Some(w), Some(h)) = (s.power, s.hashrate) {
        if h >= 1e12 && w / (h / 1e12) < MIN_WATTS_PER_TH {
            s.power = None;
        }
    }
    s.is_hashing = match (s.hashrate, s.power_mode) {
        (Some(h), _) => Some(h > 0.0),
        (None, Some(PowerMode::Sleeping)) => Some(false),
        // A dialect's own hint (Whatsminer `mineroff`) stands when no rate was read.
        (None, _) => s.is_hashing,
    };
}

/// Least power per TH/s any SHA-256 miner draws (today's best are above 10 J/TH).
const MIN_WATTS_PER_TH: f64 = 5.0;

/// Lowest and highest believable temperature reading, °C. Outside it is a broken sensor (-83 on
/// a hashing S9, C-04) or a placeholder (-273 on Avalon), not a temperature.
pub const TEMP_RANGE: std::ops::RangeInclusive<f64> = -20.0..=150.0;

/// A temperature reading worth passing on. 0 is what firmwares print for "no sensor" (and for a
/// broken one on a live board), so it is never a reading.
pub fn valid_temp(t: f64) -> bool {
    t != 0.0 && TEMP_RANGE.contains(&t)
}

/// A lenient temperature field, when it is a valid reading.
pub fn temp_field(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    field(obj, key).filter(|&t| valid_temp(t))
}

/// Pools from a `pools` reply. Unused slots (empty URL) are left out: they are not pools and
/// not errors (C-10).
pub fn pools(reply: &Value) -> Vec<Pool> {
    reply::section(reply, "POOLS")
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .filter_map(|(i, p)| pool(i, p))
        .collect()
}

fn pool(position: usize, p: &Map<String, Value>) -> Option<Pool> {
    let url = field_str(p, "URL")?.trim();
    if url.is_empty() {
        return None;
    }
    let status = field_str(p, "Status").unwrap_or("").trim();
    let index = |key| field_u64(p, key).and_then(|n| u32::try_from(n).ok());
    Some(Pool {
        url: url.to_string(),
        user: field_str(p, "User").unwrap_or("").trim().to_string(),
        priority: index("Priority")
            .or_else(|| index("POOL"))
            .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX)),
        alive: status.eq_ignore_ascii_case("Alive"),
        enabled: !status.eq_ignore_ascii_case("Disabled"),
        active: field_bool(p, "Stratum Active"),
        accepted: field_u64(p, "Accepted").unwrap_or(0),
        rejected: field_u64(p, "Rejected").unwrap_or(0),
        stale: field_u64(p, "Stale").unwrap_or(0),
    })
}

/// Hashrate keys by window, shortest first, each with its unit in H/s. Realtime is the first
/// window a miner reports; the since-boot average is never used for it (C-17). Whatsminer's
/// `HS RT` ("realtime") is in MH/s despite its name.
const REALTIME_KEYS: &[(&str, f64)] = &[
    ("GHS 5s", 1e9),
    ("MHS 5s", 1e6),
    ("KHS 5s", 1e3),
    ("THS 5s", 1e12),
    ("HS RT", 1e6),
    ("GHS 30s", 1e9),
    ("MHS 30s", 1e6),
    ("KHS 30s", 1e3),
    ("THS 30s", 1e12),
    ("GHS 1m", 1e9),
    ("MHS 1m", 1e6),
    ("KHS 1m", 1e3),
    ("THS 1m", 1e12),
    ("GHS 5m", 1e9),
    ("MHS 5m", 1e6),
    ("KHS 5m", 1e3),
    ("THS 5m", 1e12),
    ("GHS 15m", 1e9),
    ("MHS 15m", 1e6),
    ("KHS 15m", 1e3),
    ("THS 15m", 1e12),
];

const AVERAGE_KEYS: &[(&str, f64)] = &[
    ("GHS av", 1e9),
    ("MHS av", 1e6),
    ("KHS av", 1e3),
    ("THS av", 1e12),
];

/// Realtime hashrate in H/s from keys whose prefix carries the unit (`"MHS 5s"`): the shortest
/// window with a readable value (an unreadable 5 s rate falls back to 30 s, 1 m, ...).
pub fn realtime_rate(obj: &Map<String, Value>) -> Option<f64> {
    rate_by_keys(obj, REALTIME_KEYS)
}

/// Since-boot average hashrate in H/s from `"MHS av"`-style keys.
pub fn average_rate(obj: &Map<String, Value>) -> Option<f64> {
    rate_by_keys(obj, AVERAGE_KEYS)
}

fn rate_by_keys(obj: &Map<String, Value>, keys: &[(&str, f64)]) -> Option<f64> {
    keys.iter()
        .find_map(|&(key, unit)| obj.get(key).and_then(reply::num).map(|x| x * unit))
}

/// Uptime in seconds from an `Elapsed` field.
pub fn elapsed(obj: &Map<String, Value>) -> Option<u64> {
    field(obj, "Elapsed").and_then(reply::to_u64)
}

/// Sum of the boards' rates, when at least one board reports one.
pub fn board_sum(boards: &[crate::model::Board]) -> Option<f64> {
    boards
        .iter()
        .filter_map(|b| b.hashrate)
        .fold(None, |acc: Option<f64>, h| Some(acc.unwrap_or(0.0) + h))
}

/// Fans of a Braiins / LuxOS `FANS` section (`{FAN, ID, RPM, Speed}`), in the order of their
/// `ID`, and the controller duty (`Speed`, %). With `keep_stopped` a 0 RPM entry is a stopped
/// fan (LuxOS lists only the fans it has); without, it is an empty connector (BOSminer lists 4
/// connectors on a 2-fan S9).
pub fn fans_section(reply: &Value, keep_stopped: bool) -> (Vec<Fan>, Option<f64>) {
    let mut duty = None;
    let mut fans: Vec<Fan> = reply::section(reply, "FANS")
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .filter_map(|(i, f)| {
            duty = duty.or_else(|| field(f, "Speed").filter(|d| (0.0..=100.0).contains(d)));
            let slot = field_u64(f, "ID")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(u32::try_from(i).unwrap_or(u32::MAX));
            let rpm = field(f, "RPM").filter(|&r| r >= 0.0)?;
            (rpm > 0.0 || keep_stopped).then_some(Fan {
                slot,
                speed: rpm,
                unit: FanUnit::Rpm,
            })
        })
        .collect();
    fans.sort_by_key(|f| f.slot);
    (fans, duty)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pool_fields() {
        let reply = json!({"STATUS":[{"STATUS":"S"}],"POOLS":[
            {"POOL":0,"URL":"stratum+tcp://a:3333","Status":"Alive","Priority":0,"User":"w.1",
             "Accepted":" 12.0000","Rejected":3,"Stale":"1","Stratum Active":true},
            {"POOL":1,"URL":"b:1","Status":"Disabled","Priority":1,"User":"w.2","Stratum Active":"false"},
            {"POOL":2,"URL":"","Status":"Dead","User":""}]});
        let p = pools(&reply);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            Pool {
                url: "stratum+tcp://a:3333".into(),
                user: "w.1".into(),
                priority: 0,
                alive: true,
                enabled: true,
                active: Some(true),
                accepted: 12,
                rejected: 3,
                stale: 1,
            }
        );
        assert!(!p[1].alive && !p[1].enabled && p[1].active == Some(false) && p[1].priority == 1);
    }

    #[test]
    fn realtime_is_the_shortest_window_present() {
        let o = json!({"MHS av":3900000.0,"MHS 5s":0.0,"MHS 1m":0.0});
        let o = o.as_object().unwrap();
        assert_eq!(realtime_rate(o), Some(0.0));
        assert_eq!(average_rate(o), Some(3.9e12));
        let o = json!({"MHS 5s":"nan","MHS 1m":5.0,"MHS av":"nan"});
        assert_eq!(realtime_rate(o.as_object().unwrap()), Some(5e6));
        assert_eq!(average_rate(o.as_object().unwrap()), None);
        assert_eq!(
            realtime_rate(json!({"GHS 5s":"1.5"}).as_object().unwrap()),
            Some(1.5e9)
        );
    }

    #[test]
    fn temperature_validity() {
        for t in [0.0, -83.0, -273.0, 151.0, f64::NAN] {
            assert!(!valid_temp(t), "{t}");
        }
        for t in [-1.0, 25.5, 85.0, 150.0] {
            assert!(valid_temp(t), "{t}");
        }
    }
}
