//! Stateful commands of each family: the ones a canned fixture cannot answer (writes, sessions,
//! tokens). Reads are templates; see `reply.rs`.

pub(crate) mod antminer_web;
mod avalon;
mod braiins;
pub(crate) mod cgminer_pools;
mod luxos;
pub(crate) mod whatsminer;
pub(crate) mod wm_v3;

use serde_json::json;

use super::family::Family;
use super::miner::MinerState;
use super::template::Live;

/// What a stateful command did.
pub(crate) enum Handled {
    /// A complete reply object.
    Reply(String),
    /// Close without a byte of reply (Avalon `softon` on some builds, `ascset ... reboot`).
    Silent,
}

/// A handled command and what follows once the reply is out.
pub(crate) struct Outcome {
    pub handled: Handled,
    /// Reboot after the reply is written.
    pub reboot: bool,
}

impl Outcome {
    fn reply(s: String) -> Option<Outcome> {
        Some(Outcome {
            handled: Handled::Reply(s),
            reboot: false,
        })
    }
}

/// The request context of a stateful command.
pub(crate) struct Ctx<'a> {
    pub miner: &'a MinerState,
    pub live: &'a Live<'a>,
    pub now_ms: i64,
}

impl Ctx<'_> {
    fn now_s(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    fn description(&self) -> &str {
        &self.miner.model.description
    }
}

/// `{"STATUS":[{"STATUS":..,"When":..,"Code":..,"Msg":..,"Description":..}]<,extra>,"id":1}`.
pub(crate) fn cgminer_status(
    letter: &str,
    when: i64,
    code: u32,
    msg: &str,
    description: &str,
    extra: &str,
) -> String {
    format!(
        "{{\"STATUS\":[{{\"STATUS\":{},\"When\":{when},\"Code\":{code},\"Msg\":{},\"Description\":{}}}]{extra},\"id\":1}}",
        json!(letter),
        json!(msg),
        json!(description)
    )
}

/// Handles `cmd` when it is a stateful command of the miner's family. `in_join`: part of a
/// `a+b` request (writes are not joinable and fall through to the caller's code 45).
pub(crate) fn handle(
    ctx: &Ctx<'_>,
    cmd: &str,
    param: Option<&str>,
    in_join: bool,
) -> Option<Outcome> {
    match ctx.miner.model.family {
        Family::Braiins if !in_join => braiins::handle(ctx, cmd),
        Family::Luxos => luxos::handle(ctx, cmd, param, in_join),
        Family::Whatsminer if !in_join => whatsminer::handle(ctx, cmd),
        Family::Avalon if !in_join => avalon::handle(ctx, cmd, param),
        _ => None,
    }
}

/// Whether `cmd` is a stateful command of `family` (for the join rules).
pub(crate) fn is_stateful(family: Family, cmd: &str) -> bool {
    match family {
        Family::Braiins => matches!(cmd, "pause" | "resume"),
        Family::Luxos => matches!(
            cmd,
            "session"
                | "logon"
                | "logoff"
                | "curtail"
                | "rebootdevice"
                | "ledset"
                | "addpool"
                | "switchpool"
                | "removepool"
        ),
        Family::Whatsminer => whatsminer::is_write(cmd) || cmd == "get_token",
        Family::Avalon => cmd == "ascset",
        _ => false,
    }
}

/// A random id of `n` characters from `[A-Za-z0-9]`.
pub(crate) fn random_id(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}
