//! cgminer's pool list commands, as its api.c answers them: `addpool|url,user,pass`,
//! `switchpool|N`, `removepool|N` (LuxOS takes them without a session, miner-dialects §4b).
//! The list starts as the miner's `pools` reply shows it; once a command changed it, `pools`
//! is built from it ([`serve`]). Like cgminer, a removed pool's slot is taken by the last pool,
//! so indices move: clients must read `pools` again between removals.

use serde_json::{json, Value};

use super::{cgminer_status, Ctx, Outcome};
use crate::fleet::miner::Dynamic;
use crate::fleet::template::Template;

/// A pool of a changed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pool {
    pub url: String,
    pub user: String,
    /// `Priority`: 0 is the first choice.
    pub prio: usize,
}

/// The pool list once a command changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolList {
    /// In `POOL` index order.
    pub pools: Vec<Pool>,
    /// Index of the pool mined on.
    pub current: usize,
}

/// Splits a cgminer parameter on `,`; a backslash takes the next character literally.
pub(crate) fn split_param(param: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = param.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ',' => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// C `atoi`: leading whitespace, a sign, digits; anything else reads as 0.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let n = digits[..end].parse::<i64>().unwrap_or(0);
    if neg {
        -n
    } else {
        n
    }
}

impl PoolList {
    /// The list a reboot loads from saved slots (Avalon `setpool`): filled slots in order
    /// (a slot without a URL is unused), the first one mined on.
    pub(crate) fn from_slots(slots: &[Option<(String, String)>]) -> PoolList {
        let pools = slots
            .iter()
            .flatten()
            .filter(|(url, _)| !url.is_empty())
            .enumerate()
            .map(|(prio, (url, user))| Pool {
                url: url.clone(),
                user: user.clone(),
                prio,
            })
            .collect();
        PoolList { pools, current: 0 }
    }
}

/// The list the miner shows now: changed by commands, else its `pools` fixture.
pub(crate) fn current(ctx: &Ctx<'_>, d: &Dynamic) -> PoolList {
    match &d.cg_pools {
        Some(l) => l.clone(),
        None => from_reply(
            &ctx.miner
                .model
                .reply("pools")
                .map(|t| t.render_string(ctx.live))
                .unwrap_or_default(),
        ),
    }
}

/// The list as the miner's `pools` reply shows it now (the fixture, with configured pools).
fn from_reply(text: &str) -> PoolList {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let entries = v["POOLS"].as_array().cloned().unwrap_or_default();
    let pools = entries
        .iter()
        .enumerate()
        .map(|(i, p)| Pool {
            url: p["URL"].as_str().unwrap_or("").to_string(),
            user: p["User"].as_str().unwrap_or("").to_string(),
            prio: p["Priority"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(i),
        })
        .collect();
    let current = entries
        .iter()
        .position(|p| p["Stratum Active"] == json!(true))
        .unwrap_or(0);
    PoolList { pools, current }
}

fn status(ctx: &Ctx<'_>, letter: &str, code: u32, msg: &str) -> Option<Outcome> {
    Outcome::reply(cgminer_status(
        letter,
        ctx.live.when,
        code,
        msg,
        ctx.description(),
        "",
    ))
}

/// The pool a `switchpool`/`removepool` parameter names, or the error reply.
fn pool_id(ctx: &Ctx<'_>, list: &PoolList, param: Option<&str>) -> Result<usize, Option<Outcome>> {
    if list.pools.is_empty() {
        return Err(status(ctx, "E", 8, "No pools"));
    }
    let Some(p) = param.filter(|p| !p.is_empty()) else {
        return Err(status(ctx, "E", 25, "Missing pool id parameter"));
    };
    let id = atoi(p);
    match usize::try_from(id).ok().filter(|&i| i < list.pools.len()) {
        Some(i) => Ok(i),
        None => Err(status(
            ctx,
            "E",
            26,
            &format!(
                "Invalid pool id {id} - range is 0 - {}",
                list.pools.len() - 1
            ),
        )),
    }
}

/// Handles `addpool`, `switchpool` and `removepool` (`d` is the miner's locked state).
pub(super) fn handle(
    ctx: &Ctx<'_>,
    d: &mut Dynamic,
    cmd: &str,
    param: Option<&str>,
) -> Option<Outcome> {
    if !matches!(cmd, "addpool" | "switchpool" | "removepool") {
        return None;
    }
    let mut list = current(ctx, d);
    let reply = match cmd {
        "addpool" => {
            let Some(p) = param.filter(|p| !p.is_empty()) else {
                return status(ctx, "E", 52, "Missing addpool details");
            };
            let fields = split_param(p);
            // url, user and a non-empty password; LuxOS takes a group id after them.
            if fields.len() < 3 || fields[0].is_empty() || fields[2].is_empty() {
                // cgminer echoes the parameter, password included.
                return status(ctx, "E", 53, &format!("Invalid addpool details '{p}'"));
            }
            let n = list.pools.len();
            list.pools.push(Pool {
                url: fields[0].clone(),
                user: fields[1].clone(),
                prio: n,
            });
            status(ctx, "S", 55, &format!("Added pool {n}: '{}'", fields[0]))
        }
        "switchpool" => {
            let id = match pool_id(ctx, &list, param) {
                Ok(i) => i,
                Err(reply) => return reply,
            };
            // cgminer `switch_pools`: the chosen pool goes first, the ones before it move down.
            let prio = list.pools[id].prio;
            for p in &mut list.pools {
                if p.prio < prio {
                    p.prio += 1;
                }
            }
            list.pools[id].prio = 0;
            list.current = id;
            let msg = format!("Switching to pool {id}:'{}'", list.pools[id].url);
            status(ctx, "S", 27, &msg)
        }
        _ => {
            let id = match pool_id(ctx, &list, param) {
                Ok(i) => i,
                Err(reply) => return reply,
            };
            let url = list.pools[id].url.clone();
            if list.pools.len() <= 1 {
                return status(
                    ctx,
                    "E",
                    66,
                    &format!("Cannot remove last pool {id}:'{url}'"),
                );
            }
            if id == list.current {
                return status(
                    ctx,
                    "E",
                    67,
                    &format!("Cannot remove active pool {id}:'{url}'"),
                );
            }
            // cgminer `remove_pool`: lower priorities move up, the last pool takes the slot.
            let gone = list.pools.swap_remove(id);
            for p in &mut list.pools {
                if p.prio > gone.prio {
                    p.prio -= 1;
                }
            }
            if list.current == list.pools.len() {
                list.current = id;
            }
            status(ctx, "S", 68, &format!("Removed pool {id}:'{url}'"))
        }
    };
    d.cg_pools = Some(list);
    reply
}

/// The `pools` reply once a command changed the list (`None`: the fixture as it is). Each
/// pool is the fixture's first pool with this pool's identity and state.
pub(crate) fn serve(ctx: &Ctx<'_>, fixture: &Template) -> Option<String> {
    let list = ctx.miner.dynamic().cg_pools.clone()?;
    let mut v: Value = serde_json::from_str(&fixture.render_string(ctx.live)).ok()?;
    let proto = match v.pointer("/POOLS/0") {
        Some(p @ Value::Object(_)) => p.clone(),
        _ => json!({}),
    };
    // LuxOS shows the stratum endpoint without its scheme, cgminer with it.
    let bare = proto["Stratum URL"]
        .as_str()
        .is_some_and(|s| !s.is_empty() && !s.contains("://"));
    let pools: Vec<Value> = list
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut o = proto.clone();
            let active = i == list.current;
            o["POOL"] = json!(i);
            o["URL"] = json!(p.url);
            o["User"] = json!(p.user);
            o["Priority"] = json!(p.prio);
            o["Status"] = json!("Alive");
            o["Stratum Active"] = json!(active);
            if o.get("Stratum URL").is_some() {
                let endpoint = match p.url.split_once("://") {
                    Some((_, rest)) if bare => rest,
                    _ => p.url.as_str(),
                };
                o["Stratum URL"] = json!(if active { endpoint } else { "" });
            }
            if !active {
                for k in ["Accepted", "Rejected", "Stale"] {
                    if o.get(k).is_some() {
                        o[k] = json!(0);
                    }
                }
            }
            o
        })
        .collect();
    let n = pools.len();
    v["POOLS"] = Value::Array(pools);
    if let Some(st) = v.pointer_mut("/STATUS/0") {
        st["Msg"] = json!(format!("{n} Pool(s)"));
    }
    Some(v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_split_on_unescaped_commas() {
        assert_eq!(
            split_param("stratum+tcp://a:3333,w\\,1,pa\\\\ss"),
            vec!["stratum+tcp://a:3333", "w,1", "pa\\ss"]
        );
        assert_eq!(split_param("a,b,"), vec!["a", "b", ""]);
        assert_eq!(atoi(" 12x"), 12);
        assert_eq!(atoi("-1"), -1);
        assert_eq!(atoi("x"), 0);
    }
}
