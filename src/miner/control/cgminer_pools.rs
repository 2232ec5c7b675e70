//! Replacing a miner's pools with the plain cgminer commands (miner-dialects §1e, §4b): one
//! `addpool|url,user,pass` per wanted pool the miner does not list yet, `switchpool|N` to the
//! first wanted pool, then `removepool|N` for every listed pool that is not wanted, highest
//! index first, never the pool it still mines on. `pools` is read again before every switch
//! and removal: indices are learnt, never guessed (cgminer moves its last pool into the slot
//! of a removed one).
//!
//! A step the miner refuses stops the sequence with an error naming the step and what was
//! already done. Pool passwords go to the miner only: never into a message or an error.

use std::time::Duration;

use serde_json::Value;

use super::wire::{Answer, Wire};
use super::{ControlError, PoolSpec, Sent};
use crate::miner::reply::{check_status, field_bool, field_str, field_u64, section, MinerError};

/// cgminer "No pools" (an error status, yet a fine answer to `pools`).
const NO_POOLS: i64 = 8;
/// cgminer "Cannot remove active pool".
const ACTIVE_POOL: i64 = 67;
/// How long the old pool may stay the active one after the switch (the miner switches once
/// the new pool is up).
const ACTIVE_WAIT: Duration = Duration::from_secs(10);
const ACTIVE_POLL: Duration = Duration::from_millis(500);

/// A pool as the miner lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    /// `POOL`: the index `switchpool`/`removepool` take.
    pub index: u64,
    pub url: String,
    pub user: String,
    /// `Stratum Active`.
    pub active: bool,
}

/// `stratum+tcp://Pool.Example:3333/` and `pool.example:3333` are the same pool (as
/// verification sees it).
fn normalize_url(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    rest.trim_end_matches('/').to_string()
}

fn same(want: &PoolSpec, have: &Listed) -> bool {
    normalize_url(&want.url) == normalize_url(&have.url) && want.user.trim() == have.user.trim()
}

/// The pools of a `pools` reply ("No pools" is an empty list).
pub(super) fn listed(reply: &Value) -> Result<Vec<Listed>, MinerError> {
    match check_status(reply) {
        Ok(()) => {}
        Err(e) if e.code == Some(NO_POOLS) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    Ok(section(reply, "POOLS")
        .iter()
        .filter_map(Value::as_object)
        .enumerate()
        .map(|(i, p)| Listed {
            index: field_u64(p, "POOL").unwrap_or(i as u64),
            url: field_str(p, "URL").unwrap_or("").trim().to_string(),
            user: field_str(p, "User").unwrap_or("").trim().to_string(),
            active: field_bool(p, "Stratum Active").unwrap_or(false),
        })
        .collect())
}

/// The listed pool kept for each wanted pool (`None`: not listed): the active copy when the
/// miner lists it twice, else the lowest index.
fn kept<'l>(wanted: &[PoolSpec], listed: &'l [Listed]) -> Vec<Option<&'l Listed>> {
    wanted
        .iter()
        .map(|w| {
            let mut copies: Vec<&Listed> = listed.iter().filter(|l| same(w, l)).collect();
            copies.sort_by_key(|l| (!l.active, l.index));
            copies.first().copied()
        })
        .collect()
}

/// Wanted pools the miner does not list yet, in order, each once.
pub(super) fn to_add<'w>(wanted: &'w [PoolSpec], listed: &[Listed]) -> Vec<&'w PoolSpec> {
    let mut out: Vec<&PoolSpec> = Vec::new();
    for (w, k) in wanted.iter().zip(kept(wanted, listed)) {
        let twice = out
            .iter()
            .any(|o| normalize_url(&o.url) == normalize_url(&w.url) && o.user == w.user);
        if k.is_none() && !twice {
            out.push(w);
        }
    }
    out
}

/// The listed pool to switch to: the first wanted one.
pub(super) fn switch_target<'l>(wanted: &[PoolSpec], listed: &'l [Listed]) -> Option<&'l Listed> {
    kept(wanted, listed).first().copied().flatten()
}

/// Listed pools to remove, in the order to remove them: highest index first; the ones the
/// miner still mines on last.
pub(super) fn removals<'l>(wanted: &[PoolSpec], listed: &'l [Listed]) -> Vec<&'l Listed> {
    let keep: Vec<u64> = kept(wanted, listed)
        .into_iter()
        .flatten()
        .map(|l| l.index)
        .collect();
    let mut out: Vec<&Listed> = listed.iter().filter(|l| !keep.contains(&l.index)).collect();
    out.sort_by_key(|l| (l.active, std::cmp::Reverse(l.index)));
    out
}

/// `\` and `,` are escaped with a backslash inside a cgminer parameter.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `addpool` parameter. cgminer refuses an empty password (it needs three fields), so
/// none is sent as the customary `x`.
pub(super) fn addpool_parameter(pool: &PoolSpec) -> String {
    let pass = match pool.pass.expose() {
        "" => "x",
        p => p,
    };
    format!(
        "{},{},{}",
        escape(&pool.url),
        escape(&pool.user),
        escape(pass)
    )
}

/// `text` without any pool password of `wanted` (a miner may echo the `addpool` parameter,
/// cgminer does in "Invalid addpool details").
pub(super) fn scrub(text: &str, wanted: &[PoolSpec]) -> String {
    let mut out = text.to_string();
    for p in wanted {
        let param = addpool_parameter(p);
        let hidden = format!("{},{},***", escape(&p.url), escape(&p.user));
        out = out.replace(&param, &hidden);
        let pass = p.pass.expose();
        if pass.is_empty() {
            continue;
        }
        for form in [pass.to_string(), escape(pass)] {
            out = out.replace(&format!(",{form}"), ",***");
            // A very short password would match inside ordinary words: those go only where
            // they follow a comma, as in the parameter.
            if form.chars().count() >= 4 {
                out = out.replace(&form, "***");
            }
        }
    }
    out
}

/// What the sequence did so far, for the final message or an error.
#[derive(Debug, Default)]
struct Progress {
    added: Vec<String>,
    switched: Option<(u64, String)>,
    removed: Vec<String>,
}

impl Progress {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.switched.is_none() && self.removed.is_empty()
    }

    fn summary(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join(", "))
            }
        };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let switched = match &self.switched {
            Some((n, url)) => format!("switched to pool {n} ({url})"),
            None => "not switched".to_string(),
        };
        format!(
            "added {} pool{}{}, {switched}, removed {} old pool{}{}",
            self.added.len(),
            plural(self.added.len()),
            list(&self.added),
            self.removed.len(),
            plural(self.removed.len()),
            list(&self.removed),
        )
    }

    /// `e` for `step`, with what was already done.
    fn fail(&self, step: &str, e: ControlError, wanted: &[PoolSpec]) -> ControlError {
        let done = if self.is_empty() {
            "nothing changed on the miner".to_string()
        } else {
            format!("so far {}", self.summary())
        };
        e.in_step(!self.is_empty(), |m| {
            scrub(&format!("{step}: {m}; {done}"), wanted)
        })
    }
}

fn refused(e: &MinerError) -> ControlError {
    ControlError::Refused(match e.code {
        Some(c) => format!("{} (code {c})", e.msg),
        None => e.msg.clone(),
    })
}

/// A failed write as an error: the miner's refusal, or the exchange failing.
fn why(e: Result<MinerError, ControlError>) -> ControlError {
    match e {
        Ok(m) => refused(&m),
        Err(c) => c,
    }
}

async fn read(w: &Wire) -> Result<Vec<Listed>, ControlError> {
    match w.command("pools", None).await? {
        Answer::Reply(v) => listed(&v).map_err(|e| refused(&e)),
        Answer::Dropped => Err(ControlError::Protocol(
            "the miner closed the connection without a reply".into(),
        )),
    }
}

/// One write; the miner's refusal as is (`Err(Ok(e))`), or the exchange failing.
async fn write(w: &Wire, cmd: &str, param: &str) -> Result<(), Result<MinerError, ControlError>> {
    match w.command(cmd, Some(param)).await.map_err(Err)? {
        Answer::Reply(v) => check_status(&v).map_err(Ok),
        Answer::Dropped => Err(Err(ControlError::Protocol(
            "the miner closed the connection without a reply".into(),
        ))),
    }
}

/// Replaces the miner's pools with `wanted` (in priority order).
pub(super) async fn replace(w: &Wire, wanted: &[PoolSpec]) -> Result<Sent, ControlError> {
    let mut done = Progress::default();
    let fail = |done: &Progress, step: &str, e| done.fail(step, e, wanted);
    let listed = read(w).await.map_err(|e| fail(&done, "`pools`", e))?;
    let before = listed.len();
    for pool in to_add(wanted, &listed) {
        let step = format!("`addpool` of {}", pool.url);
        write(w, "addpool", &addpool_parameter(pool))
            .await
            .map_err(|e| fail(&done, &step, why(e)))?;
        done.added.push(pool.url.clone());
    }

    let listed = read(w).await.map_err(|e| fail(&done, "`pools`", e))?;
    let Some(target) = switch_target(wanted, &listed).cloned() else {
        let e = ControlError::Protocol(format!(
            "the miner does not list {} after accepting it",
            wanted[0].url
        ));
        return Err(fail(&done, "`pools`", e));
    };
    let step = format!("`switchpool|{}` ({})", target.index, target.url);
    write(w, "switchpool", &target.index.to_string())
        .await
        .map_err(|e| fail(&done, &step, why(e)))?;
    done.switched = Some((target.index, target.url.clone()));

    // Each removal can move another pool to a new index: read, remove one, read again.
    // At most every pool listed after the adds goes; more removals mean the miner says
    // "removed" and keeps listing the pool.
    let most = before + wanted.len();
    let mut waited = Duration::ZERO;
    loop {
        let listed = read(w).await.map_err(|e| fail(&done, "`pools`", e))?;
        let Some(next) = removals(wanted, &listed).first().copied().cloned() else {
            break;
        };
        if done.removed.len() >= most {
            let e = ControlError::Protocol(format!(
                "pool {} ({}) is still listed after {} removals",
                next.index,
                next.url,
                done.removed.len()
            ));
            return Err(fail(&done, "`removepool`", e));
        }
        let step = format!("`removepool|{}` ({})", next.index, next.url);
        let still_active = if next.active {
            true
        } else {
            match write(w, "removepool", &next.index.to_string()).await {
                Ok(()) => {
                    done.removed.push(if next.url.is_empty() {
                        format!("empty pool {}", next.index)
                    } else {
                        next.url.clone()
                    });
                    false
                }
                Err(Ok(m)) if m.code == Some(ACTIVE_POOL) => true,
                Err(e) => return Err(fail(&done, &step, why(e))),
            }
        };
        if still_active {
            // The miner moves to the new pool once that one is up.
            if waited >= ACTIVE_WAIT {
                let e = ControlError::Refused(format!(
                    "the miner still mines on this pool {}s after the switch; it was left in place",
                    ACTIVE_WAIT.as_secs()
                ));
                return Err(fail(&done, &step, e));
            }
            tokio::time::sleep(ACTIVE_POLL).await;
            waited += ACTIVE_POLL;
        }
    }
    Ok(Sent::Accepted(done.summary()))
}

#[cfg(test)]
mod tests {
    use super::super::fake_miner::{scripted, Reply};
    use super::*;

    fn spec(url: &str, user: &str, pass: &str) -> PoolSpec {
        PoolSpec::new(url, user, pass)
    }

    fn l(index: u64, url: &str, user: &str, active: bool) -> Listed {
        Listed {
            index,
            url: url.into(),
            user: user.into(),
            active,
        }
    }

    fn indices(v: &[&Listed]) -> Vec<u64> {
        v.iter().map(|l| l.index).collect()
    }

    #[test]
    fn reads_pool_indices_and_the_active_pool() {
        let reply = serde_json::json!({
            "STATUS": [{"STATUS": "S", "Code": 7, "Msg": "2 Pool(s)"}],
            "POOLS": [
                {"POOL": 0, "URL": "stratum+tcp://a:3333", "User": "w.1", "Stratum Active": true},
                {"POOL": 3, "URL": " b:1 ", "User": "w.2", "Stratum Active": "false"},
            ]
        });
        assert_eq!(
            listed(&reply).unwrap(),
            vec![
                l(0, "stratum+tcp://a:3333", "w.1", true),
                l(3, "b:1", "w.2", false)
            ]
        );
        let none = serde_json::json!({"STATUS": [{"STATUS": "E", "Code": 8, "Msg": "No pools"}]});
        assert_eq!(listed(&none).unwrap(), vec![]);
        let denied =
            serde_json::json!({"STATUS": [{"STATUS": "E", "Code": 45, "Msg": "Access denied"}]});
        assert_eq!(listed(&denied).unwrap_err().code, Some(45));
    }

    #[test]
    fn plans_adds_the_switch_and_removals_highest_index_first() {
        let wanted = vec![
            spec("stratum+tcp://new.example:3333", "farm.w1", "pw"),
            spec("stratum+tcp://backup.example:3333", "farm.w1", "pw"),
        ];
        // Four old pools (pool 0 active), the backup already there as pool 2.
        let old = vec![
            l(0, "stratum+tcp://old.example:3333", "w", true),
            l(1, "stratum+tcp://old2.example:3333", "w", false),
            l(2, "backup.example:3333/", "farm.w1", false),
            l(3, "", "", false),
        ];
        let add = to_add(&wanted, &old);
        assert_eq!(add.len(), 1);
        assert_eq!(add[0].url, "stratum+tcp://new.example:3333");
        assert!(switch_target(&wanted, &old).is_none(), "not added yet");
        // Before the switch the active pool goes last, whatever its index.
        assert_eq!(indices(&removals(&wanted, &old)), vec![3, 1, 0]);

        // Added as pool 4, switched to: the old active pool is removed like the others.
        let mut after = old.clone();
        after[0].active = false;
        after.push(l(4, "stratum+tcp://new.example:3333", "farm.w1", true));
        assert_eq!(switch_target(&wanted, &after).unwrap().index, 4);
        assert!(to_add(&wanted, &after).is_empty());
        assert_eq!(indices(&removals(&wanted, &after)), vec![3, 1, 0]);

        // A user differing is another pool; a wanted pool listed twice is kept once (the
        // active copy).
        let twice = vec![
            l(0, "stratum+tcp://new.example:3333", "farm.w1", false),
            l(1, "stratum+tcp://new.example:3333", "farm.w1", true),
            l(2, "stratum+tcp://backup.example:3333", "other", false),
            l(3, "stratum+tcp://backup.example:3333", "farm.w1", false),
        ];
        assert_eq!(switch_target(&wanted, &twice).unwrap().index, 1);
        assert_eq!(indices(&removals(&wanted, &twice)), vec![2, 0]);

        // The same pool wanted twice is added once.
        let dup = vec![wanted[0].clone(), wanted[0].clone()];
        assert_eq!(to_add(&dup, &[]).len(), 1);
    }

    #[test]
    fn parameters_escape_commas_and_errors_never_carry_the_password() {
        let p = spec("stratum+tcp://a:3333", "w,1", "pa\\ss,word");
        assert_eq!(
            addpool_parameter(&p),
            "stratum+tcp://a:3333,w\\,1,pa\\\\ss\\,word"
        );
        assert_eq!(
            addpool_parameter(&spec("u", "w", "")),
            "u,w,x",
            "cgminer needs a password"
        );
        let wanted = vec![p.clone(), spec("stratum+tcp://b:1", "w", "x")];
        let echoed = format!("Invalid addpool details '{}'", addpool_parameter(&p));
        let clean = scrub(&echoed, &wanted);
        assert!(!clean.contains("word"), "{clean}");
        assert!(clean.contains("stratum+tcp://a:3333"), "{clean}");
        // A short password is hidden where it follows a comma, ordinary words stay.
        let clean = scrub(
            "Invalid addpool details 'stratum+tcp://b:1,w,x' on box",
            &wanted,
        );
        assert_eq!(
            clean,
            "Invalid addpool details 'stratum+tcp://b:1,w,***' on box"
        );
        let mut progress = Progress::default();
        progress.added.push("stratum+tcp://a:3333".into());
        let e = progress.fail(
            "`switchpool|4`",
            ControlError::Refused("bad pa\\ss,word".into()),
            &wanted,
        );
        let text = e.to_string();
        assert!(!text.contains("pa\\ss,word"), "{text}");
        assert!(
            text.contains("so far added 1 pool (stratum+tcp://a:3333)"),
            "{text}"
        );
        assert!(
            text.starts_with("miner refused: `switchpool|4`: "),
            "{text}"
        );
    }

    /// A miner answering each request with `answer(command, parameter)`; records
    /// `command|parameter` of each request.
    async fn miner(
        answer: impl Fn(&str, &str) -> Value + Send + Sync + 'static,
    ) -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        scripted(move |_, cmd, param| Reply::from(answer(cmd, param))).await
    }

    fn st(letter: &str, code: i64, msg: &str) -> Value {
        serde_json::json!({"STATUS": [{"STATUS": letter, "Code": code, "Msg": msg}]})
    }

    #[tokio::test]
    async fn a_refused_step_is_named_with_what_was_done_and_no_password() {
        let wanted = vec![spec("stratum+tcp://new:3333", "w.1", "s3cret-pool-pw")];
        // One old pool; the new one lists as pool 1 once added; switching is denied.
        let added = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = added.clone();
        let (addr, seen) = miner(move |cmd, _| match cmd {
            "pools" => {
                let mut v = st("S", 7, "Pools");
                let mut pools = vec![serde_json::json!(
                    {"POOL": 0, "URL": "stratum+tcp://old:1", "User": "w", "Stratum Active": true}
                )];
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    pools.push(serde_json::json!(
                        {"POOL": 1, "URL": "stratum+tcp://new:3333", "User": "w.1", "Stratum Active": false}
                    ));
                }
                v["POOLS"] = Value::Array(pools);
                v
            }
            "addpool" => {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                st("S", 55, "Added pool 1: 'stratum+tcp://new:3333'")
            }
            _ => st("E", 45, &format!("Access denied to '{cmd}' command")),
        })
        .await;
        let w = Wire::new(addr, Duration::from_secs(2));
        let e = replace(&w, &wanted).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ControlError::Refused(_)), "{text}");
        assert_eq!(
            text,
            "miner refused: `switchpool|1` (stratum+tcp://new:3333): Access denied to \
             'switchpool' command (code 45); so far added 1 pool (stratum+tcp://new:3333), \
             not switched, removed 0 old pools"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                "pools|",
                "addpool|stratum+tcp://new:3333,w.1,s3cret-pool-pw",
                "pools|",
                "switchpool|1"
            ],
            "the password goes to the miner, nowhere else"
        );
    }

    #[tokio::test]
    async fn an_echoed_addpool_parameter_is_scrubbed() {
        let wanted = vec![spec("stratum+tcp://new:3333", "w.1", "s3cret-pool-pw")];
        let (addr, _) = miner(|cmd, param| match cmd {
            "pools" => st("E", 8, "No pools"),
            _ => st("E", 53, &format!("Invalid addpool details '{param}'")),
        })
        .await;
        let e = replace(&Wire::new(addr, Duration::from_secs(2)), &wanted)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "miner refused: `addpool` of stratum+tcp://new:3333: Invalid addpool details \
             'stratum+tcp://new:3333,w.1,***' (code 53); nothing changed on the miner"
        );
    }

    #[tokio::test]
    async fn the_old_active_pool_waits_for_the_switch_to_take() {
        // After the switch the miner keeps mining on pool 0 for a moment, refusing its removal.
        let tries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = tries.clone();
        let (addr, seen) = miner(move |cmd, _| match cmd {
            "pools" => {
                let mut v = st("S", 7, "Pools");
                let gone = t.load(std::sync::atomic::Ordering::SeqCst) >= 3;
                let mut pools = Vec::new();
                if !gone {
                    pools.push(serde_json::json!({"POOL": 0, "URL": "old:1", "User": "w"}));
                }
                pools.push(serde_json::json!(
                    {"POOL": if gone { 0 } else { 1 }, "URL": "new:1", "User": "w", "Stratum Active": gone}
                ));
                v["POOLS"] = Value::Array(pools);
                v
            }
            "removepool" => {
                if t.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                    st("E", 67, "Cannot remove active pool 0:'old:1'")
                } else {
                    st("S", 68, "Removed pool 0:'old:1'")
                }
            }
            _ => st("S", 27, "Switching to pool 1:'new:1'"),
        })
        .await;
        let wanted = vec![spec("new:1", "w", "x")];
        let sent = replace(&Wire::new(addr, Duration::from_secs(2)), &wanted)
            .await
            .unwrap();
        assert_eq!(
            sent,
            Sent::Accepted(
                "added 0 pools, switched to pool 1 (new:1), removed 1 old pool (old:1)".into()
            )
        );
        let removes = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("removepool|0"))
            .count();
        assert_eq!(removes, 3);
    }
}
