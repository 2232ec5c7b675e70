//! Avalon `ascset|0,<option>[,<value>]`: soft power off/on at a time, LED, work mode, help,
//! reboot, and `setpool` (pools saved into three slots, applied at the next reboot). Replies
//! are the Avalon Q and A1047 captures with the live time and timestamp.

use super::{cgminer_pools, cgminer_status, Ctx, Handled, Outcome};

/// Pool slots an Avalon keeps.
const SLOTS: usize = 3;
/// The web login user `setpool` checks (the password is the miner's admin password).
const WEB_USER: &str = "root";

/// Replaces the digits after `marker` in `text` with `value`.
fn replace_number(text: &str, marker: &str, value: i64) -> String {
    let Some(p) = text.find(marker) else {
        return text.to_string();
    };
    let start = p + marker.len();
    let end = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |e| start + e);
    format!("{}{value}{}", &text[..start], &text[end..])
}

fn template(ctx: &Ctx<'_>, name: &str) -> Option<String> {
    ctx.miner
        .model
        .reply(name)
        .map(|t| t.render_string(ctx.live))
}

/// `1:<unix ts>` (pyasic and asic-rs send now + 5 s); a missing or bad time means now.
fn when_of(value: &str, now_s: i64) -> i64 {
    value
        .split_once(':')
        .and_then(|(_, t)| t.trim().parse::<i64>().ok())
        .unwrap_or(now_s)
}

pub(super) fn handle(ctx: &Ctx<'_>, cmd: &str, param: Option<&str>) -> Option<Outcome> {
    if cmd != "ascset" {
        return None;
    }
    let param = param.unwrap_or("");
    let mut it = param.splitn(3, ',');
    let dev = it.next().unwrap_or("").trim();
    let opt = it.next().unwrap_or("").trim();
    let value = it.next().unwrap_or("").trim();
    let when = ctx.live.when;
    if dev.is_empty() {
        return Outcome::reply(cgminer_status(
            "E",
            when,
            15,
            "Missing device id parameter",
            ctx.description(),
            "",
        ));
    }
    if dev != "0" {
        let msg = format!("Invalid ASC id {dev} - range is 0 - 0");
        return Outcome::reply(cgminer_status("E", when, 107, &msg, ctx.description(), ""));
    }
    let ok = || template(ctx, "ascset:ok");
    let reply = match opt {
        "" => Some(cgminer_status(
            "E",
            when,
            116,
            "Missing option after ASC number",
            ctx.description(),
            "",
        )),
        "softoff" | "softon" => {
            let on = opt == "softon";
            let at = when_of(value, ctx.now_s());
            {
                let mut d = ctx.miner.dynamic();
                d.pending = Some((at, on));
                d.hashing(ctx.now_s());
            }
            match template(ctx, &format!("ascset:{opt}")) {
                Some(t) => Some(replace_number(&t, &format!("success {opt}:"), at)),
                // No capture of a reply: this build closes without one (asic-rs, C-20).
                None => {
                    return Some(Outcome {
                        handled: Handled::Silent,
                        reboot: false,
                    })
                }
            }
        }
        "led" => {
            ctx.miner.dynamic().led = value.ends_with('1');
            ok()
        }
        "workmode" | "worklevel" => ok(),
        "setpool" => Some(setpool(ctx, value)),
        "help" => template(ctx, "ascset:help"),
        "reboot" => {
            return Some(Outcome {
                handled: Handled::Silent,
                reboot: true,
            })
        }
        other => Some(cgminer_status(
            "E",
            when,
            120,
            &format!("ASC 0 set failed: unknown option {other}"),
            ctx.description(),
            "",
        )),
    };
    reply.and_then(Outcome::reply)
}

/// `setpool,<web user>,<web password>,<slot>,<url>,<worker>,<pass>`, or without `<slot>` on
/// older firmware (slot 0). The firmware answers the bare word `failed` to anything it does
/// not take (the A1047 capture), wrong login included, and echoes the worker password on
/// success (the A1047 capture).
fn setpool(ctx: &Ctx<'_>, value: &str) -> String {
    const FAILED: &str = "failed";
    let fields: Vec<&str> = value.split(',').map(str::trim).collect();
    let mut d = ctx.miner.dynamic();
    let (slot, rest) = match fields.len() {
        6 if !d.legacy_setpool => match fields[2].parse::<usize>() {
            Ok(s) if s < SLOTS => (s, &fields[3..]),
            _ => return FAILED.into(),
        },
        5 => (0, &fields[2..]),
        _ => return FAILED.into(),
    };
    let (url, worker, pass) = (rest[0], rest[1], rest[2]);
    if fields[0] != WEB_USER || fields[1] != d.password || url.is_empty() {
        return FAILED.into();
    }
    let mut slots = match d.saved_pools.take() {
        Some(s) => s,
        None => {
            let shown = cgminer_pools::current(ctx, &d);
            let mut s: Vec<Option<(String, String)>> = shown
                .pools
                .into_iter()
                .map(|p| Some((p.url, p.user)))
                .collect();
            s.resize(SLOTS, None);
            s
        }
    };
    slots.truncate(SLOTS);
    slots.resize(SLOTS, None);
    slots[slot] = Some((url.to_string(), worker.to_string()));
    d.saved_pools = Some(slots);
    let msg = format!(
        "ASC 0 set info:\npool success set to {url}\nworker is {worker}\nworkerpassword is {pass}\nPlease reboot miner to make config work.\n"
    );
    cgminer_status("I", ctx.live.when, 118, &msg, ctx.description(), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_timestamp() {
        assert_eq!(
            replace_number(
                "\"Msg\": \"ASC 0 set info: success softoff:1753434821\",",
                "softoff:",
                7
            ),
            "\"Msg\": \"ASC 0 set info: success softoff:7\","
        );
        assert_eq!(when_of("1:1712570000", 5), 1712570000);
        assert_eq!(when_of("1", 5), 5);
    }
}
