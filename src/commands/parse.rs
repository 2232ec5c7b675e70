//! From Foreman's command (name + args, protocol §4.3) to what the agent will do, with a clear
//! reason for everything it will not.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;
use crate::miner::control::{Action, Credentials, Level, PoolSpec};

/// What a command asks for.
#[derive(Debug, Clone)]
pub enum Job {
    /// Act on one miner.
    Control(Control),
    /// Discover miners over a list of addresses.
    Scan(super::scan::ScanJob),
}

#[derive(Debug, Clone)]
pub struct Control {
    pub target: SocketAddr,
    pub kind: ControlKind,
    pub creds: Credentials,
    /// From `deadlineMillis`, when given.
    pub deadline: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum ControlKind {
    Reboot,
    /// `power-mode`: sleeping / low / normal / high.
    Power(PowerTarget),
    Pools(Vec<PoolSpec>),
    /// Blink for this long, then back to normal.
    Blink(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerTarget {
    Sleeping,
    Level(Level),
}

/// Control commands (`C` in protocol §4.3): refused by a monitor-only pickaxe.
pub fn is_control(command: &str) -> bool {
    matches!(
        command,
        "reboot"
            | "power-mode"
            | "change-pools"
            | "factory-reset"
            | "network"
            | "password"
            | "blink"
            | "firmware-upgrade"
            | "terminate"
    )
}

fn text<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// An int sent as a number or a string.
fn int(args: &Value, key: &str) -> Option<i64> {
    match args.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn target(args: &Value) -> Result<SocketAddr, String> {
    let ip: IpAddr = text(args, "ip")
        .ok_or("missing `ip`")?
        .parse()
        .map_err(|_| "`ip` is not an IP address".to_string())?;
    let port = match int(args, "apiPort") {
        None => 4028,
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p != 0)
            .ok_or("`apiPort` is not a port")?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// The login and web port a command carries. Present but unusable is an error: falling back
/// to the factory login or port 80 would act with what the sender did not ask for.
fn credentials(args: &Value) -> Result<Credentials, String> {
    let password = match args.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Secret::new(s.as_str())),
        Some(_) => return Err("`password` is not a string".into()),
    };
    let username = match args.get("username") {
        None | Some(Value::Null) => None,
        Some(Value::String(_)) => text(args, "username").map(str::to_string),
        Some(_) => return Err("`username` is not a string".into()),
    };
    // Foreman's `port` is the miner's web port (its `apiPort` the RPC one).
    let web_port = match args.get("port") {
        None | Some(Value::Null) => None,
        Some(_) => Some(
            int(args, "port")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or("`port` is not a port")?,
        ),
    };
    Ok(Credentials {
        username,
        password,
        web_port,
    })
}

fn pools(args: &Value) -> Result<Vec<PoolSpec>, String> {
    let list = args
        .get("pools")
        .and_then(Value::as_array)
        .ok_or("missing `pools`")?;
    let pools: Vec<PoolSpec> = list
        .iter()
        .filter_map(|p| {
            Some(PoolSpec {
                url: text(p, "url")?.to_string(),
                user: text(p, "user").unwrap_or("").to_string(),
                pass: Secret::new(p.get("pass").and_then(Value::as_str).unwrap_or("")),
            })
        })
        .collect();
    if pools.is_empty() {
        return Err("at least one pool with a `url` is required".into());
    }
    Ok(pools)
}

/// Parses a command. `Err` is the message of its failed done.
pub fn parse(command: &str, args: &Value) -> Result<Job, String> {
    let control = |kind| -> Result<Job, String> {
        Ok(Job::Control(Control {
            target: target(args)?,
            kind,
            creds: credentials(args)?,
            deadline: int(args, "deadlineMillis")
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(ms as u64)),
        }))
    };
    match command {
        "reboot" => control(ControlKind::Reboot),
        "power-mode" => {
            let mode = match text(args, "mode").map(str::to_ascii_lowercase).as_deref() {
                Some("sleeping") => PowerTarget::Sleeping,
                Some("low") => PowerTarget::Level(Level::Low),
                Some("normal") => PowerTarget::Level(Level::Normal),
                Some("high") => PowerTarget::Level(Level::High),
                _ => return Err("Invalid power mode".into()),
            };
            control(ControlKind::Power(mode))
        }
        "change-pools" => control(ControlKind::Pools(pools(args)?)),
        "blink" => {
            let secs = int(args, "blinkDurationInSeconds")
                .unwrap_or(60)
                .clamp(1, 3600);
            control(ControlKind::Blink(Duration::from_secs(secs as u64)))
        }
        "scan" | "scan-ranges" | "targeted-scan" => {
            super::scan::ScanJob::parse(command, args).map(Job::Scan)
        }
        other if is_control(other) => Err(format!("`{other}` is not supported by this pickaxe")),
        other => Err(format!("unknown command `{other}`")),
    }
}

/// What the action is, for the miner's family and current state.
pub fn action(kind: &ControlKind, family: crate::model::Family, hashing: Option<bool>) -> Action {
    match kind {
        ControlKind::Reboot => Action::Reboot,
        ControlKind::Power(PowerTarget::Sleeping) => Action::Sleep,
        // Whatsminer has real power levels; on a sleeping miner (or other families) any
        // non-sleeping mode means "hash again".
        ControlKind::Power(PowerTarget::Level(level)) => {
            if hashing == Some(false) {
                Action::Wake
            } else if family == crate::model::Family::Whatsminer {
                Action::PowerLevel(*level)
            } else if *level == Level::Normal {
                Action::Wake
            } else {
                Action::PowerLevel(*level)
            }
        }
        ControlKind::Pools(p) => Action::Pools(p.clone()),
        ControlKind::Blink(_) => Action::Light(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_foremans_args() {
        let Job::Control(c) = parse(
            "reboot",
            &json!({"type":"asic","ip":"127.1.0.5","apiPort":"4029","deadlineMillis":60000,"password":"pw"}),
        )
        .unwrap() else {
            panic!("control")
        };
        assert_eq!(c.target.to_string(), "127.1.0.5:4029");
        assert_eq!(c.deadline, Some(Duration::from_secs(60)));
        assert!(!format!("{c:?}").contains("pw"), "no password in Debug");
        assert_eq!(
            parse("power-mode", &json!({"ip":"127.0.0.1","mode":"turbo"})).unwrap_err(),
            "Invalid power mode"
        );
        assert!(parse("change-pools", &json!({"ip":"127.0.0.1","pools":[]})).is_err());
        assert!(parse("frobnicate", &json!({}))
            .unwrap_err()
            .contains("unknown"));
        assert!(parse("reboot", &json!({"ip":"miner-7"})).is_err());
    }

    #[test]
    fn a_login_or_web_port_that_cannot_be_used_is_refused_not_replaced() {
        let reboot = |extra: Value| {
            let mut args = json!({"ip": "127.1.0.5"});
            if let (Some(a), Some(e)) = (args.as_object_mut(), extra.as_object()) {
                a.extend(e.clone());
            }
            parse("reboot", &args)
        };
        let Ok(Job::Control(c)) = reboot(json!({"port": "8080", "username": "root"})) else {
            panic!("control")
        };
        assert_eq!(c.creds.web_port, Some(8080));
        assert_eq!(c.creds.username.as_deref(), Some("root"));
        for (bad, why) in [
            (json!({"password": 1234}), "`password` is not a string"),
            (json!({"username": ["root"]}), "`username` is not a string"),
            (json!({"port": 0}), "`port` is not a port"),
            (json!({"port": "http"}), "`port` is not a port"),
            (json!({"port": 70000}), "`port` is not a port"),
        ] {
            assert_eq!(reboot(bad.clone()).err().as_deref(), Some(why), "{bad}");
        }
    }
}
