//! LuxOS: privileged commands take a session id as their first parameter. Reuse the open
//! session (`session`), else `logon`; then `curtail|sid,sleep|wakeup`, `rebootdevice|sid`,
//! `ledset|sid,red,blink|off`. Pools change with the plain cgminer `addpool` / `switchpool` /
//! `removepool`, which LuxOS takes without a session (miner-dialects §4b).

use serde_json::Value;

use super::wire::{outcome, Answer, Wire};
use super::{cgminer_pools, unsupported, Action, ControlError, Sent};
use crate::miner::reply::first_obj;

async fn session(w: &Wire) -> Result<String, ControlError> {
    let current = w.expect_ok("session", None).await?;
    let id = first_obj(&current, "SESSION")
        .and_then(|s| s.get("SessionID"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !id.is_empty() {
        return Ok(id.to_string());
    }
    let logon = w.expect_ok("logon", None).await?;
    first_obj(&logon, "SESSION")
        .and_then(|s| s.get("SessionID"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ControlError::Protocol("logon answered without a session id".into()))
}

pub(super) async fn execute(w: &Wire, action: &Action) -> Result<Sent, ControlError> {
    let (cmd, rest) = match action {
        Action::Sleep => ("curtail", ",sleep"),
        Action::Wake => ("curtail", ",wakeup"),
        Action::Reboot => ("rebootdevice", ""),
        Action::Light(true) => ("ledset", ",red,blink"),
        Action::Light(false) => ("ledset", ",red,off"),
        Action::Pools(pools) => return cgminer_pools::replace(w, pools).await,
        other => return Err(unsupported("LuxOS", other)),
    };
    let sid = session(w).await?;
    let answer: Answer = w.command(cmd, Some(&format!("{sid}{rest}"))).await?;
    outcome(answer, action.may_drop_socket(), cmd)
}
