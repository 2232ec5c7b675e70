//! Per-family normalisation: each family's replies → [`MinerStats`].
//!
//! Dispatch is a plain `match` on [`Family`]: two families, one function each, no trait objects
//! needed. What both share (pools, temperature plausibility, realtime-rate keys) lives here.

pub mod antminer;
pub mod cgminer;

use serde_json::{Map, Value};

use super::reply::{self, field, field_bool, field_str, field_u64};
use crate::model::{Family, MinerStats, Pool};

/// The read commands a poll may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Version,
    Summary,
    Pools,
    Stats,
    Devs,
}

impl Command {
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::Summary => "summary",
            Command::Pools => "pools",
            Command::Stats => "stats",
            Command::Devs => "devs",
        }
    }

    /// The request line for this command alone.
    pub const fn request(self) -> &'static [u8] {
        match self {
            Command::Version => br#"{"command":"version"}"#,
            Command::Summary => br#"{"command":"summary"}"#,
            Command::Pools => br#"{"command":"pools"}"#,
            Command::Stats => br#"{"command":"stats"}"#,
            Command::Devs => br#"{"command":"devs"}"#,
        }
    }
}

/// The command that carries a family's per-board data.
pub const fn board_command(family: Family) -> Command {
    match family {
        Family::Antminer => Command::Stats,
        Family::Cgminer => Command::Devs,
    }
}

/// A joined request and the commands it holds, in reply order.
pub struct Joined {
    /// The joined command as sent, for error messages.
    pub name: &'static str,
    pub request: &'static [u8],
    pub commands: &'static [Command],
}

/// The one request a poll sends when the miner accepts joined commands.
pub const fn joined(family: Family) -> Joined {
    match family {
        Family::Antminer => Joined {
            name: "version+summary+pools+stats",
            request: br#"{"command":"version+summary+pools+stats"}"#,
            commands: &[
                Command::Version,
                Command::Summary,
                Command::Pools,
                Command::Stats,
            ],
        },
        Family::Cgminer => Joined {
            name: "version+summary+pools+devs",
            request: br#"{"command":"version+summary+pools+devs"}"#,
            commands: &[
                Command::Version,
                Command::Summary,
                Command::Pools,
                Command::Devs,
            ],
        },
    }
}

/// Successful replies of one poll, one slot per command (a failed command stays `None`).
#[derive(Debug, Default, Clone)]
pub struct Replies {
    pub version: Option<Value>,
    pub summary: Option<Value>,
    pub pools: Option<Value>,
    pub stats: Option<Value>,
    pub devs: Option<Value>,
}

impl Replies {
    pub fn get(&self, command: Command) -> Option<&Value> {
        self.slot(command).as_ref()
    }

    pub fn set(&mut self, command: Command, reply: Value) {
        *self.slot_mut(command) = Some(reply);
    }

    fn slot(&self, command: Command) -> &Option<Value> {
        match command {
            Command::Version => &self.version,
            Command::Summary => &self.summary,
            Command::Pools => &self.pools,
            Command::Stats => &self.stats,
            Command::Devs => &self.devs,
        }
    }

    fn slot_mut(&mut self, command: Command) -> &mut Option<Value> {
        match command {
            Command::Version => &mut self.version,
            Command::Summary => &mut self.summary,
            Command::Pools => &mut self.pools,
            Command::Stats => &mut self.stats,
            Command::Devs => &mut self.devs,
        }
    }
}

/// Turns one poll's replies into the normalized model, in the given family's dialect.
pub fn normalize(family: Family, replies: &Replies) -> MinerStats {
    let mut stats = match family {
        Family::Antminer => antminer::normalize(replies),
        Family::Cgminer => cgminer::normalize(replies),
    };
    stats.family = Some(family);
    stats.is_hashing = stats.hashrate.map(|h| h > 0.0);
    stats
}

/// Lowest and highest believable temperature reading, °C. Outside it is a broken sensor (-83 on
/// a hashing S9, C-04) or a placeholder (-273 on Avalon), not a temperature.
pub const TEMP_RANGE: std::ops::RangeInclusive<f64> = -20.0..=150.0;

/// A temperature reading worth passing on. 0 is what firmwares print for "no sensor" (and for a
/// broken one on a live board), so it is never a reading.
pub fn valid_temp(t: f64) -> bool {
    t != 0.0 && TEMP_RANGE.contains(&t)
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
/// window a miner reports; the since-boot average is never used for it (C-17).
const REALTIME_KEYS: &[(&str, f64)] = &[
    ("GHS 5s", 1e9),
    ("MHS 5s", 1e6),
    ("KHS 5s", 1e3),
    ("THS 5s", 1e12),
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
