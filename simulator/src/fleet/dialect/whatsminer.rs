//! Whatsminer API v2 stateful commands: `get_token`, and the encrypted write path
//! (`{"enc":1,"data":..}`): token check, write-API flag, `reboot`, `power_off`/`power_on`,
//! `update_pools`, `set_led`, `update_pwd`.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use super::{Ctx, Handled, Outcome};
use crate::fleet::miner::Token;
use whatsminer_crypto::v2 as wm_crypto;

/// A token is good this long ([doc]: 30 min).
const TOKEN_LIFE: Duration = Duration::from_secs(30 * 60);
/// Tokens kept per miner ([doc]: 32 per client IP).
const MAX_TOKENS: usize = 32;

const OK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/whatsminer/M31S-20201220_write-ok_enc-response_decrypted.json"
));
const DISABLED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/whatsminer/M31S-20201220_write-writeapi-disabled_enc-response_decrypted.json"
));

/// The write commands of API v2 (encrypted only).
pub(crate) fn is_write(cmd: &str) -> bool {
    matches!(
        cmd,
        "reboot"
            | "restart_btminer"
            | "power_off"
            | "power_on"
            | "update_pools"
            | "set_led"
            | "set_low_power"
            | "set_normal_power"
            | "set_high_power"
            | "factory_reset"
            | "update_pwd"
            | "net_config"
            | "set_target_freq"
            | "enable_btminer_fast_boot"
            | "disable_btminer_fast_boot"
            | "enable_web_pools"
            | "disable_web_pools"
            | "set_hostname"
            | "set_power_pct"
            | "pre_power_on"
            | "set_power_pct_v2"
            | "set_temp_offset"
            | "adjust_power_limit"
            | "adjust_upfreq_speed"
            | "set_poweroff_cool"
            | "set_fan_zero_speed"
    )
}

/// A Whatsminer-shaped reply (`STATUS` a bare string), in the key order of the captures.
fn wm(letter: &str, when: i64, code: u32, msg: &Value, description: &str) -> String {
    format!(
        "{{\"STATUS\":{},\"When\":{when},\"Code\":{code},\"Msg\":{msg},\"Description\":{}}}",
        json!(letter),
        json!(description)
    )
}

/// The description the write-path captures carry (`whatsminer v1.1`).
fn write_description() -> String {
    serde_json::from_str::<Value>(OK)
        .ok()
        .and_then(|v| v["Description"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A capture with the live `When`.
fn capture(text: &str, when: i64) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    v["When"] = when.into();
    wm(
        v["STATUS"].as_str().unwrap_or("S"),
        when,
        v["Code"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(131),
        &v["Msg"],
        v["Description"].as_str().unwrap_or(""),
    )
}

fn plain_error(ctx: &Ctx<'_>, code: u32, msg: &str) -> Option<Outcome> {
    Outcome::reply(wm(
        "E",
        ctx.live.when,
        code,
        &json!(msg),
        &write_description(),
    ))
}

pub(super) fn handle(ctx: &Ctx<'_>, cmd: &str) -> Option<Outcome> {
    if cmd == "get_token" {
        return Outcome::reply(get_token(ctx));
    }
    if is_write(cmd) {
        // Privileged commands are only taken encrypted.
        return plain_error(ctx, 45, "can't access write cmd");
    }
    None
}

fn get_token(ctx: &Ctx<'_>) -> String {
    let time = format!("{:04}", ctx.now_s().rem_euclid(10_000));
    let newsalt: String = {
        const ITOA: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        (0..8)
            .map(|_| char::from(ITOA[rng.random_range(0..ITOA.len())]))
            .collect()
    };
    {
        let mut d = ctx.miner.dynamic();
        while d.tokens.len() >= MAX_TOKENS {
            d.tokens.pop_front();
        }
        d.tokens.push_back(Token {
            time: time.clone(),
            newsalt: newsalt.clone(),
            issued: Instant::now(),
        });
    }
    let description = ctx
        .miner
        .model
        .reply("wm:get_token")
        .map(|t| t.render_string(ctx.live))
        .and_then(|s| crate::fleet::synth::description_of(&s).map(str::to_string))
        .unwrap_or_default();
    wm(
        "S",
        ctx.live.when,
        134,
        &json!({"time": time, "salt": ctx.miner.salt, "newsalt": newsalt}),
        &description,
    )
}

/// Handles `{"enc":1,"data":<b64>}`.
pub(crate) fn encrypted(ctx: &Ctx<'_>, data: &str) -> Outcome {
    let fallback = Outcome {
        handled: Handled::Silent,
        reboot: false,
    };
    let (password, write_api) = {
        let d = ctx.miner.dynamic();
        (d.password.clone(), d.write_api)
    };
    let key = wm_crypto::aes_key(&password, &ctx.miner.salt);
    if !wm_crypto::is_base64(data) {
        return plain_error(ctx, 137, "base64 decode error").unwrap_or(fallback);
    }
    let req: Option<Value> =
        wm_crypto::decrypt(&key, data).and_then(|p| serde_json::from_slice(&p).ok());
    let Some(req) = req else {
        // Another password gives another key: the plaintext is noise.
        return plain_error(ctx, 135, "token check error").unwrap_or(fallback);
    };
    let token = req["token"].as_str().unwrap_or("");
    let valid = {
        let mut d = ctx.miner.dynamic();
        d.tokens.retain(|t| t.issued.elapsed() < TOKEN_LIFE);
        d.tokens.iter().any(|t| {
            wm_crypto::token_keys(&password, &ctx.miner.salt, &t.time, &t.newsalt).0 == token
        })
    };
    if !valid {
        return plain_error(ctx, 135, "token check error").unwrap_or(fallback);
    }
    let when = ctx.live.when;
    let seal =
        |plain: String| json!({ "enc": wm_crypto::encrypt(&key, plain.as_bytes()) }).to_string();
    if !write_api {
        return Outcome {
            handled: Handled::Reply(seal(capture(DISABLED, when))),
            reboot: false,
        };
    }
    let cmd = req["cmd"].as_str().unwrap_or("");
    let s = |k: &str| {
        req[k]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| req[k].to_string())
    };
    let mut reboot = false;
    let reply = {
        let mut d = ctx.miner.dynamic();
        match cmd {
            "reboot" => {
                reboot = true;
                capture(OK, when)
            }
            "power_off" => {
                d.switch(false, ctx.now_ms);
                capture(OK, when)
            }
            "power_on" => {
                d.switch(true, ctx.now_ms);
                capture(OK, when)
            }
            "update_pools" => {
                d.pools = (1..=3)
                    .filter_map(|i| {
                        let url = req[format!("pool{i}")].as_str()?;
                        let user = req[format!("worker{i}")].as_str().unwrap_or("");
                        Some((url.to_string(), user.to_string()))
                    })
                    .collect();
                capture(OK, when)
            }
            "set_led" => {
                d.led = s("param") != "auto";
                capture(OK, when)
            }
            "update_pwd" => {
                let new = s("new");
                if s("old") == d.password && !new.is_empty() && new.len() <= 8 {
                    d.password = new;
                    d.tokens.clear();
                    capture(OK, when)
                } else {
                    wm(
                        "E",
                        when,
                        132,
                        &json!("command error"),
                        &write_description(),
                    )
                }
            }
            c if is_write(c) => capture(OK, when),
            _ => wm("E", when, 14, &json!("invalid cmd"), &write_description()),
        }
    };
    Outcome {
        handled: Handled::Reply(seal(reply)),
        reboot,
    }
}
