//! Whatsminer API v3 (firmware from 2024-11, TCP 4433): every message is a 4-byte
//! little-endian length and JSON; replies `{"code":0,"when":..,"msg":{..},"desc":<cmd>}`.
//! Reads only: `get.device.info`, `get.miner.status` (`summary`, `edevs`, `pools`).

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

/// Frames `json` as a v3 message.
pub(crate) fn frame(json: &str) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}
