//! Braiins OS (BOSminer) `pause` / `resume`: reply sections `PAUSE` / `RESUME` (pyasic checks
//! that `PAUSE[0]` is truthy); paused = zero hashrate. No fixture holds these replies: the
//! shape follows BOSminer's cgminer API, the section contents are ours.

use super::{cgminer_status, Ctx, Outcome};

pub(super) fn handle(ctx: &Ctx<'_>, cmd: &str) -> Option<Outcome> {
    let (on, msg, section) = match cmd {
        "pause" => (false, "Pause", "\"PAUSE\":[{\"Paused\":true}]"),
        "resume" => (true, "Resume", "\"RESUME\":[{\"Resumed\":true}]"),
        _ => return None,
    };
    ctx.miner.dynamic().switch(on, ctx.now_ms);
    Outcome::reply(cgminer_status(
        "S",
        ctx.live.when,
        if on { 206 } else { 205 },
        msg,
        ctx.description(),
        &format!(",{section}"),
    ))
}
