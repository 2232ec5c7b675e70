//! LuxOS sessions and curtailment: one session at a time, 60 s idle expiry (refreshed on use),
//! the session id as the first parameter of privileged commands. Pool commands take no
//! session (see `cgminer_pools`). Replies are the shapes of the
//! LuxOS documentation examples, with this miner's `Description`.

use std::time::Instant;

use serde_json::Value;

use super::{cgminer_status, random_id, Ctx, Outcome};
use crate::fleet::miner::Dynamic;

const LOGON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/luxos/docexample-0.1.0_logon.json"
));
const SESSION: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/luxos/docexample-0.1.0_session_none.json"
));
const SLEEP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/luxos/docexample-0.1.0_curtail_sleep.json"
));
const WAKEUP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/luxos/docexample-0.1.0_curtail_wakeup.json"
));

/// A doc example with this miner's `When`, `Description` and session id. Its keys are in
/// alphabetical order, so serde_json's sorted maps keep the layout.
fn doc(example: &str, ctx: &Ctx<'_>, sid: Option<&str>) -> String {
    let mut v: Value = serde_json::from_str(example).unwrap_or(Value::Null);
    if let Some(st) = v.pointer_mut("/STATUS/0") {
        st["When"] = ctx.live.when.into();
        st["Description"] = ctx.description().into();
    }
    if let (Some(sid), Some(s)) = (sid, v.pointer_mut("/SESSION/0")) {
        s["SessionID"] = sid.into();
    }
    v.to_string()
}

fn error(ctx: &Ctx<'_>, msg: &str) -> Option<Outcome> {
    Outcome::reply(cgminer_status(
        "E",
        ctx.live.when,
        45,
        msg,
        ctx.description(),
        "",
    ))
}

/// Drops an idle session; returns the live one's id.
fn live_session(d: &mut Dynamic, now: Instant, idle: std::time::Duration) -> Option<String> {
    if d.session
        .as_ref()
        .is_some_and(|s| now.duration_since(s.last_used) > idle)
    {
        d.session = None;
    }
    d.session.as_ref().map(|s| s.id.clone())
}

/// Checks (and refreshes) the session id given as the first parameter.
fn use_session(d: &mut Dynamic, sid: &str, now: Instant, idle: std::time::Duration) -> bool {
    match live_session(d, now, idle) {
        Some(id) if id == sid => {
            if let Some(s) = d.session.as_mut() {
                s.last_used = now;
            }
            true
        }
        _ => false,
    }
}

pub(super) fn handle(
    ctx: &Ctx<'_>,
    cmd: &str,
    param: Option<&str>,
    in_join: bool,
) -> Option<Outcome> {
    let now = Instant::now();
    let idle = ctx.miner.session_idle;
    let mut d = ctx.miner.dynamic();
    match cmd {
        "session" => {
            let sid = live_session(&mut d, now, idle).unwrap_or_default();
            Outcome::reply(doc(SESSION, ctx, Some(&sid)))
        }
        _ if in_join => None,
        "addpool" | "switchpool" | "removepool" => {
            super::cgminer_pools::handle(ctx, &mut d, cmd, param)
        }
        "logon" => {
            if live_session(&mut d, now, idle).is_some() {
                return error(ctx, "Another session is active");
            }
            let sid = random_id(8);
            d.session = Some(crate::fleet::miner::Session {
                id: sid.clone(),
                last_used: now,
            });
            Outcome::reply(doc(LOGON, ctx, Some(&sid)))
        }
        "logoff" => {
            let sid = param.unwrap_or("").split(',').next().unwrap_or("");
            if !use_session(&mut d, sid, now, idle) {
                return error(ctx, "Invalid session id");
            }
            d.session = None;
            Outcome::reply(cgminer_status(
                "S",
                ctx.live.when,
                317,
                "Session closed",
                ctx.description(),
                "",
            ))
        }
        "curtail" => {
            let mut it = param.unwrap_or("").split(',');
            let sid = it.next().unwrap_or("");
            let action = it.next().unwrap_or("").trim();
            if !use_session(&mut d, sid, now, idle) {
                return error(ctx, "Invalid session id");
            }
            match action {
                "sleep" => {
                    d.switch(false, ctx.now_ms);
                    Outcome::reply(doc(SLEEP, ctx, None))
                }
                "wakeup" => {
                    d.switch(true, ctx.now_ms);
                    Outcome::reply(doc(WAKEUP, ctx, None))
                }
                _ => error(ctx, "Invalid curtail action"),
            }
        }
        // Fault light: `ledset|sid,red,on|off|blink`.
        "ledset" => {
            let mut it = param.unwrap_or("").split(',');
            let sid = it.next().unwrap_or("");
            if !use_session(&mut d, sid, now, idle) {
                return error(ctx, "Invalid session id");
            }
            let _color = it.next();
            match it.next().map(str::trim) {
                Some(state @ ("on" | "off" | "blink")) => {
                    d.led = state != "off";
                    Outcome::reply(cgminer_status(
                        "S",
                        ctx.live.when,
                        340,
                        "LED set",
                        ctx.description(),
                        "",
                    ))
                }
                _ => error(ctx, "Invalid LED state"),
            }
        }
        // Reboots the whole miner (after the reply, or as its reboot-reply quirk says).
        "rebootdevice" => {
            let sid = param.unwrap_or("").split(',').next().unwrap_or("");
            if !use_session(&mut d, sid, now, idle) {
                return error(ctx, "Invalid session id");
            }
            Some(Outcome {
                handled: super::Handled::Reply(cgminer_status(
                    "S",
                    ctx.live.when,
                    305,
                    "Reboot Scheduled",
                    ctx.description(),
                    "",
                )),
                reboot: true,
            })
        }
        _ => None,
    }
}
