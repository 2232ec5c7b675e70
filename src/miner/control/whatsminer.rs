//! Whatsminer API v2 writes: `get_token`, then the command encrypted with keys derived from
//! the admin password (miner-dialects §5a). The write API ships disabled: the miner then
//! answers Code 45 "can't access write cmd", reported as such (C-34); a wrong password shows
//! as a token check error (135) or an undecryptable reply, reported as authentication failed.

use serde_json::{json, Map, Value};

use super::wire::{refused, Answer, Wire};
use super::{Action, ControlError, Credentials, Level, Sent};
use crate::miner::reply::check_status;
use whatsminer_crypto::v2 as wm_crypto;

/// The password a new Whatsminer ships with.
const DEFAULT_PASSWORD: &str = "admin";

/// The write command and its parameters for an action.
fn request(action: &Action) -> (&'static str, Map<String, Value>) {
    let mut p = Map::new();
    let cmd = match action {
        Action::Reboot => "reboot",
        Action::Sleep => {
            p.insert("respbefore".into(), json!("true"));
            "power_off"
        }
        Action::Wake => "power_on",
        Action::PowerLevel(Level::Low) => "set_low_power",
        Action::PowerLevel(Level::Normal) => "set_normal_power",
        Action::PowerLevel(Level::High) => "set_high_power",
        Action::Pools(pools) => {
            for (i, pool) in pools.iter().take(3).enumerate() {
                let n = i + 1;
                p.insert(format!("pool{n}"), json!(pool.url));
                p.insert(format!("worker{n}"), json!(pool.user));
                p.insert(format!("passwd{n}"), json!(pool.pass.expose()));
            }
            "update_pools"
        }
        Action::Light(true) => {
            p.insert("color".into(), json!("red"));
            p.insert("period".into(), json!("1000"));
            p.insert("duration".into(), json!("500"));
            p.insert("start".into(), json!("0"));
            "set_led"
        }
        Action::Light(false) => {
            p.insert("param".into(), json!("auto"));
            "set_led"
        }
    };
    (cmd, p)
}

/// `get_token` → (time, salt, newsalt).
async fn token(w: &Wire) -> Result<(String, String, String), ControlError> {
    // `command`, not `cmd`: 2020-05 firmware refuses `cmd` (code 24).
    let reply = match w.command("get_token", None).await? {
        Answer::Reply(v) => v,
        Answer::Dropped => {
            return Err(ControlError::Protocol(
                "get_token: the miner closed the connection without a reply".into(),
            ))
        }
    };
    check_status(&reply).map_err(refused)?;
    let msg = reply.get("Msg").and_then(Value::as_object);
    let field = |k: &str| {
        msg.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ControlError::Protocol(format!("get_token: no `{k}` in the reply")))
    };
    Ok((field("time")?, field("salt")?, field("newsalt")?))
}

pub(super) async fn execute(
    w: &Wire,
    action: &Action,
    creds: &Credentials,
) -> Result<Sent, ControlError> {
    // A token refused (135) may be stale (the miner rebooted between get_token and the write,
    // C-34 c): fetch a new one and try once more. A refused write did nothing, so this is safe.
    match write(w, action, creds).await {
        Err(ControlError::Auth(first)) if first.contains("code 135") => {
            write(w, action, creds).await
        }
        other => other,
    }
}

async fn write(w: &Wire, action: &Action, creds: &Credentials) -> Result<Sent, ControlError> {
    let password = creds
        .password
        .as_ref()
        .map(|p| p.expose())
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PASSWORD);
    let (time, salt, newsalt) = token(w).await?;
    let (sign, key) = wm_crypto::token_keys(password, &salt, &time, &newsalt);
    let (cmd, mut params) = request(action);
    params.insert("cmd".into(), json!(cmd));
    params.insert("token".into(), json!(sign));
    let plain = Value::Object(params).to_string();
    let data = wm_crypto::encrypt(&key, plain.as_bytes());
    let envelope = json!({"enc": 1, "data": data}).to_string();
    let reply = match w.send(envelope.as_bytes()).await? {
        Answer::Dropped if action.may_drop_socket() => return Ok(Sent::Dropped),
        Answer::Dropped => {
            return Err(ControlError::Protocol(format!(
                "`{cmd}`: the miner closed the connection without a reply"
            )))
        }
        Answer::Reply(v) => v,
    };
    // An encrypted answer, or a plain error (bad token, write sent in the clear...).
    let decoded = match reply.get("enc").and_then(Value::as_str) {
        Some(enc) => wm_crypto::decrypt(&key, enc)
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .ok_or_else(|| {
                ControlError::Auth(
                    "the miner's encrypted reply does not decrypt (wrong password?)".into(),
                )
            })?,
        None => reply,
    };
    match check_status(&decoded) {
        Ok(()) => Ok(Sent::Accepted(
            decoded
                .get("Msg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        Err(e) if e.code == Some(45) => Err(ControlError::Refused(format!(
            "write API disabled on the miner ({}, code 45): enable it with WhatsMinerTool",
            e.msg
        ))),
        // Old firmware (2020-05 M30S) does not know the encrypted envelope at all.
        Err(e) if matches!(e.code, Some(14 | 23 | 24)) => Err(ControlError::Unsupported(format!(
            "this Whatsminer firmware does not take API v2 encrypted writes ({}, code {})",
            e.msg,
            e.code.unwrap_or(0)
        ))),
        Err(e) if matches!(e.code, Some(135 | 136)) => Err(ControlError::Auth(format!(
            "{} (code {}): check the miner's admin password",
            e.msg,
            e.code.unwrap_or(0)
        ))),
        Err(e) => Err(refused(e)),
    }
}
