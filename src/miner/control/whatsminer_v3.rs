//! Whatsminer API v3 writes (port 4433, length-prefixed JSON): `set.system.reboot`,
//! `set.miner.service` stop/start, `set.system.led`, signed with `ts`, `account` and `token` =
//! the first 8 characters of base64(SHA-256(cmd + password + salt + ts)), the salt read from
//! `get.device.info` just before (miner-dialects §5a'/b'/c').

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use whatsminer_crypto::v3::token;

use super::{unsupported, Action, ControlError, Credentials, Sent};
use crate::miner::repair::parse_reply;
use crate::miner::reply::check_v3;
use crate::miner::transport::{exchange_prefixed, TransportError};
use crate::miner::{Limits, WHATSMINER_V3_PORT};

/// The v3 `super` account's factory password.
const DEFAULT_PASSWORD: &str = "super";

/// One framed request; `None` when the miner dropped the connection without a reply.
async fn ask(
    addr: SocketAddr,
    req: &Value,
    timeout: Duration,
) -> Result<Option<Value>, ControlError> {
    let limits = Limits {
        connect_timeout: timeout.min(Duration::from_secs(3)),
        read_timeout: timeout,
        max_reply_bytes: 256 * 1024,
    };
    let deadline = Instant::now() + timeout + limits.connect_timeout;
    match exchange_prefixed(addr, req.to_string().as_bytes(), &limits, deadline).await {
        Ok(raw) => parse_reply(&raw)
            .map(Some)
            .map_err(|e| ControlError::Protocol(format!("unreadable reply: {e}"))),
        Err(TransportError::Connect(e)) => Err(ControlError::Unreachable(e.to_string())),
        Err(TransportError::Timeout("connect")) => {
            Err(ControlError::Unreachable("connect timed out".into()))
        }
        Err(TransportError::TooLarge(n)) => Err(ControlError::Protocol(format!(
            "reply larger than {n} bytes"
        ))),
        Err(_) => Ok(None),
    }
}

pub(super) async fn execute(
    addr: SocketAddr,
    action: &Action,
    creds: &Credentials,
    timeout: Duration,
) -> Result<Sent, ControlError> {
    let v3 = SocketAddr::new(addr.ip(), WHATSMINER_V3_PORT);
    let (cmd, param) = match action {
        Action::Reboot => ("set.system.reboot", Value::Null),
        Action::Sleep => ("set.miner.service", json!("stop")),
        Action::Wake => ("set.miner.service", json!("start")),
        Action::Light(true) => (
            "set.system.led",
            json!([{"color": "red", "period": 1000, "duration": 500, "start": 0}]),
        ),
        Action::Light(false) => ("set.system.led", json!("auto")),
        other => return Err(unsupported("Whatsminer API v3", other)),
    };
    let info = ask(
        v3,
        &json!({"cmd": "get.device.info", "param": "salt"}),
        timeout,
    )
    .await?
    .ok_or_else(|| ControlError::Protocol("get.device.info: no reply".into()))?;
    check_v3(&info).map_err(super::wire::refused)?;
    let salt = info
        .pointer("/msg/salt")
        .and_then(Value::as_str)
        .ok_or_else(|| ControlError::Protocol("get.device.info: no salt".into()))?;
    let password = creds
        .password
        .as_ref()
        .map(|p| p.expose())
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PASSWORD);
    let ts = chrono::Utc::now().timestamp();
    let req = json!({
        "cmd": cmd,
        "param": param,
        "ts": ts,
        "account": "super",
        "token": token(cmd, password, salt, ts),
    });
    match ask(v3, &req, timeout).await? {
        None if action.may_drop_socket() => Ok(Sent::Dropped),
        None => Err(ControlError::Protocol(format!(
            "`{cmd}`: the miner closed the connection without a reply"
        ))),
        Some(reply) => match check_v3(&reply) {
            Ok(()) => Ok(Sent::Accepted(
                reply["msg"].as_str().unwrap_or("").to_string(),
            )),
            Err(e) if e.msg.contains("token") => Err(ControlError::Auth(format!(
                "{} (code {}): check the miner's super password",
                e.msg,
                e.code.unwrap_or(0)
            ))),
            Err(e) => Err(super::wire::refused(e)),
        },
    }
}
