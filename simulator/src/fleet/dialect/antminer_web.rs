//! The stock Antminer CGI scripts (miner-dialects §2b) as functions of the miner's state:
//! `get_system_info.cgi`, `get_miner_conf.cgi`, `set_miner_conf.cgi` (pools, work mode = sleep
//! and wake), `blink.cgi`, `get_blink_status.cgi`. HTTP, auth and reboot are `fleet/web.rs`.
//! Replies keep the captured byte layout; only the values that live change are replaced.

use serde_json::{json, Value};

use super::cgminer_pools::{self, PoolList};
use super::Ctx;

/// The S19 Pro's `get_system_info.cgi` (foreman-apps capture; its LAN address replaced by a
/// documentation address).
const SYSTEM_INFO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/antminer/S19_get_system_info.json"
));
/// The S19 Pro's `get_miner_conf.cgi` (foreman-apps capture, pools masked as `xxx` there).
const MINER_CONF: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/antminer/S19-Pro_get_miner_conf.json"
));
/// Pool slots of the conf.
const SLOTS: usize = 3;

/// `set_miner_conf.cgi` took the conf (new firmware; older firmware prints a bare `ok`).
pub(crate) const CONF_OK: &str = r#"{"stats":"success","code":"M000","msg":"OK!"}"#;
/// `set_miner_conf.cgi` refused the conf. No capture shows a refusal: this is the success
/// reply's shape with an error code of ours.
pub(crate) const CONF_INVALID: &str = r#"{"stats":"error","code":"M001","msg":"invalid conf"}"#;

/// Replaces the JSON string value of the first `"key"` in `text` (keeping the layout around
/// it); `text` unchanged when the key or its string value is not there.
fn set_string(text: &str, key: &str, value: &str) -> String {
    let quoted = format!("\"{key}\"");
    let Some(k) = text.find(&quoted) else {
        return text.to_string();
    };
    let after_key = k + quoted.len();
    let rest = &text[after_key..];
    let Some(colon) = rest.find(':') else {
        return text.to_string();
    };
    let after = &rest[colon + 1..];
    let ws = after.len() - after.trim_start().len();
    if !after[ws..].starts_with('"') {
        return text.to_string();
    }
    let open = after_key + colon + 1 + ws;
    // The closing quote: the next one not escaped by a backslash.
    let bytes = text.as_bytes();
    let mut i = open + 1;
    while i < bytes.len() && bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    if i >= bytes.len() {
        return text.to_string();
    }
    format!("{}{}{}", &text[..open], json!(value), &text[i + 1..])
}

/// `get_system_info.cgi`: the capture with this miner's MAC (upper case, colons, as there),
/// address and model.
pub(crate) fn system_info(ctx: &Ctx<'_>) -> String {
    let m = ctx.miner;
    // `Type` of the model's `version` (the S9 build appends its version on a second line).
    let model = m.model.type_name.lines().next().unwrap_or_default();
    let mac = m.web_mac().unwrap_or_default();
    let text = set_string(SYSTEM_INFO, "macaddr", &mac);
    let text = set_string(&text, "ipaddress", &m.addr.ip().to_string());
    set_string(&text, "minertype", model)
}

/// The conf's pools: what the miner's RPC `pools` shows (or the last web conf set), three
/// slots, unused ones empty. A pool the web did not set has the conventional password `x`.
fn conf_pools(ctx: &Ctx<'_>) -> Vec<(String, String, String)> {
    let d = ctx.miner.dynamic();
    let list = cgminer_pools::current(ctx, &d);
    let mut out: Vec<(String, String, String)> = list
        .pools
        .into_iter()
        .filter(|p| !p.url.is_empty())
        .take(SLOTS)
        .enumerate()
        .map(|(i, p)| {
            let pass = d.pool_pass.get(i).cloned().unwrap_or_else(|| "x".into());
            (p.url, p.user, pass)
        })
        .collect();
    out.resize(SLOTS, Default::default());
    out
}

/// `get_miner_conf.cgi`: the S19 Pro conf with the miner's pools and work mode (`"1"` while
/// it does not hash, whatever put it to sleep).
pub(crate) fn miner_conf(ctx: &Ctx<'_>) -> String {
    let pools = conf_pools(ctx);
    let mode = {
        let d = ctx.miner.dynamic();
        if !ctx.live.hashing {
            "1".to_string()
        } else if d.work_mode == "1" {
            // Woken by other means (admin): normal mode.
            "0".to_string()
        } else {
            d.work_mode.clone()
        }
    };
    let entries: Vec<String> = pools
        .iter()
        .map(|(url, user, pass)| {
            format!(
                "{{\n\"url\" : {},\n\"user\" : {},\n\"pass\" : {}\n}}",
                json!(url),
                json!(user),
                json!(pass)
            )
        })
        .collect();
    let block = format!("[\n{}\n]", entries.join(",\n"));
    // The capture's pools array (masked values without brackets) is swapped whole.
    let text = match (MINER_CONF.find('['), MINER_CONF.find(']')) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &MINER_CONF[..a], &MINER_CONF[b + 1..])
        }
        _ => MINER_CONF.to_string(),
    };
    set_string(&text, "bitmain-work-mode", &mode)
}

/// A conf value sent as a string or a number.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `set_miner_conf.cgi` with the whole conf as JSON: applies `pools` (the non-empty ones, in
/// order, the first mined on) and `bitmain-work-mode` (or the older `miner-mode`): `1` sleeps,
/// `0`, `2`, `3` hash. A body that is not such a conf changes nothing.
pub(crate) fn set_miner_conf(ctx: &Ctx<'_>, body: &[u8]) -> &'static str {
    let Ok(conf) = serde_json::from_slice::<Value>(body) else {
        return CONF_INVALID;
    };
    let Some(entries) = conf.get("pools").and_then(Value::as_array) else {
        return CONF_INVALID;
    };
    let mut slots = Vec::new();
    let mut pass = Vec::new();
    for p in entries.iter().take(SLOTS) {
        let Some(p) = p.as_object() else {
            return CONF_INVALID;
        };
        let field = |k: &str| p.get(k).and_then(text_of).unwrap_or_default();
        let url = field("url");
        if url.is_empty() {
            continue;
        }
        slots.push(Some((url, field("user"))));
        pass.push(field("pass"));
    }
    let mode = match conf
        .get("bitmain-work-mode")
        .or_else(|| conf.get("miner-mode"))
    {
        None | Some(Value::Null) => None,
        Some(v) => match text_of(v).as_deref() {
            Some(m @ ("0" | "1" | "2" | "3")) => Some(m.to_string()),
            _ => return CONF_INVALID,
        },
    };
    let urls: Vec<&str> = slots.iter().flatten().map(|(u, _)| u.as_str()).collect();
    // Pool passwords stay out of the log.
    tracing::info!(addr = %ctx.miner.addr, pools = ?urls, mode = ?mode, "web conf applied");
    let mut d = ctx.miner.dynamic();
    d.cg_pools = Some(PoolList::from_slots(&slots));
    d.pool_pass = pass;
    if let Some(m) = mode {
        d.switch(m != "1", ctx.now_ms);
        d.work_mode = m;
    }
    CONF_OK
}

/// `blink.cgi` with `{"blink":"true"|"false"}`: `B000` (blinking) / `B100` (stopped). Another
/// body changes nothing and gets `B100` if the light is off, else `B000` (no capture shows
/// what the firmware does then).
pub(crate) fn blink(ctx: &Ctx<'_>, body: &[u8]) -> String {
    let want = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match v.get("blink") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            _ => None,
        });
    let mut d = ctx.miner.dynamic();
    if let Some(on) = want {
        d.led = on;
    }
    let code = if d.led { "B000" } else { "B100" };
    json!({ "code": code }).to_string()
}

/// `get_blink_status.cgi`: `{"blink":bool}`.
pub(crate) fn blink_status(ctx: &Ctx<'_>) -> String {
    json!({ "blink": ctx.miner.dynamic().led }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn string_values_are_replaced_in_place() {
        assert_eq!(
            set_string("{\n\"a\" : \"x\\\"y\",\n\"b\":\"2\"}", "a", "n\"ew"),
            "{\n\"a\" : \"n\\\"ew\",\n\"b\":\"2\"}"
        );
        assert_eq!(
            set_string("{\"a\":1,\"b\":\"x\"}", "a", "v"),
            "{\"a\":1,\"b\":\"x\"}"
        );
        assert_eq!(set_string("{\"a\":\"open", "a", "v"), "{\"a\":\"open");
        assert_eq!(set_string("{}", "a", "v"), "{}");
    }

    #[test]
    fn captures_parse() {
        let info: Value = serde_json::from_str(SYSTEM_INFO).unwrap();
        assert_eq!(info["minertype"], "Antminer S19 Pro");
        let conf: Value = serde_json::from_str(MINER_CONF).unwrap();
        assert_eq!(conf["pools"].as_array().unwrap().len(), 3);
        assert_eq!(conf["bitmain-work-mode"], "0");
    }
}
