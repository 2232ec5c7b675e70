//! Whatsminer API v3 (firmware from 2024-11, TCP 4433): every message is a 4-byte
//! little-endian length and JSON; replies `{"code":0,"when":..,"msg":{..},"desc":<cmd>}`.
//! Reads: `get.device.info`, `get.miner.status` (`summary`, `edevs`, `pools`). Writes carry
//! `ts`, `account` "super" and `token` (the first 8 chars of base64 of SHA-256 of cmd, password,
//! salt and ts concatenated; password `super`): `set.system.reboot`, `set.miner.service`
//! `stop`/`start`, `set.system.led`. A bad token is code -1 "token error".

use serde_json::{json, Value};

use super::Ctx;

/// Largest request accepted (a v3 request is a few hundred bytes).
pub(crate) const MAX_V3_REQUEST: u32 = 64 * 1024;

/// The reply JSON to one v3 request, and the template name it served (for the record).
pub(crate) fn reply(ctx: &Ctx<'_>, req: &[u8]) -> (String, Option<&'static str>) {
    let when = ctx.live.when;
    let err = |code: i64, msg: &str, desc: &str| {
        json!({"code": code, "when": when, "msg": msg, "desc": desc}).to_string()
    };
    let Ok(v) = serde_json::from_slice::<Value>(req) else {
        return (err(-1, "invalid json", ""), None);
    };
    let cmd = v["cmd"].as_str().unwrap_or("");
    let param = match &v["param"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or("").to_string(),
        _ => String::new(),
    };
    if cmd.starts_with("set.") {
        return (write(ctx, &v, cmd, &param), None);
    }
    let name: &'static str = match (cmd, param.as_str()) {
        ("get.device.info", _) => "v3:get.device.info",
        ("get.miner.status", "summary" | "") => "v3:summary",
        ("get.miner.status", "edevs") => "v3:edevs",
        ("get.miner.status", "pools") => "v3:pools",
        ("get.miner.status", _) => return (err(-1, "invalid param", cmd), None),
        _ => return (err(-1, "invalid cmd", cmd), None),
    };
    match ctx.miner.model.reply(name) {
        Some(t) => (t.render_string(ctx.live), Some(name)),
        None => (err(-1, "invalid cmd", cmd), None),
    }
}

/// The password of the v3 `super` account (the firmware default).
pub(crate) const V3_PASSWORD: &str = "super";

/// The miner's salt, as its `get.device.info` serves it.
fn salt(ctx: &Ctx<'_>) -> String {
    ctx.miner
        .model
        .reply("v3:get.device.info")
        .map(|t| t.render_string(ctx.live))
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| {
            v.pointer("/msg/salt")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn write(ctx: &Ctx<'_>, v: &Value, cmd: &str, param: &str) -> String {
    let when = ctx.live.when;
    let answer = |code: i64, msg: &str| {
        json!({"code": code, "when": when, "msg": msg, "desc": cmd}).to_string()
    };
    let ts = v["ts"].as_i64().unwrap_or(0);
    let expected = whatsminer_crypto::v3::token(cmd, V3_PASSWORD, &salt(ctx), ts);
    if v["account"].as_str() != Some("super") || v["token"].as_str() != Some(expected.as_str()) {
        return answer(-1, "token error");
    }
    match (cmd, param) {
        ("set.system.reboot", _) => {
            ctx.miner.reboot(ctx.now_ms);
            answer(0, "ok")
        }
        ("set.miner.service", "stop") => {
            ctx.miner.dynamic().switch(false, ctx.now_ms);
            answer(0, "ok")
        }
        ("set.miner.service", "start" | "restart") => {
            ctx.miner.dynamic().switch(true, ctx.now_ms);
            answer(0, "ok")
        }
        ("set.system.led", p) => {
            ctx.miner.dynamic().led = p != "auto";
            answer(0, "ok")
        }
        _ => answer(-1, "invalid cmd"),
    }
}

/// Frames `json` as a v3 message.
pub(crate) fn frame(json: &str) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}
