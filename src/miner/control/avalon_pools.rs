//! Avalon pool changes (miner-dialects §6b): the firmware keeps three pool slots and changes
//! them only through `ascset|0,setpool,<web user>,<web password>,<slot>,<url>,<worker>,<pass>`,
//! one slot per request, each answered "pool success set to ..."; the new pools take effect
//! after a reboot. Older firmware answers the bare word `failed` to that form and takes
//! `setpool` without the slot, which sets the first pool only.
//!
//! The web login comes from the command (`username`/`password`), else the factory `root`/
//! `root`. The miner echoes the worker password in its answer: every message that leaves
//! here is scrubbed of both passwords.

use serde_json::Value;

use super::cgminer_pools::scrub;
use super::wire::{outcome, refused, Answer, Wire};
use super::{ControlError, Credentials, PoolSpec, Sent};
use crate::miner::reply::{check_status, first_obj};

/// Pool slots an Avalon keeps.
pub(super) const SLOTS: usize = 3;
/// The factory login of the Avalon web interface, which `setpool` checks.
const FACTORY_LOGIN: &str = "root";

/// How a `setpool` request went.
enum SetPool {
    /// "pool success set to ...".
    Saved,
    /// The bare `failed`: older firmware that wants no slot, or a wrong web login.
    Failed,
}

/// Why a value cannot go into a `setpool` parameter (the firmware splits it on commas and
/// has no escape).
fn unfit(what: &str, value: &str) -> Option<String> {
    if value.contains([',', '|']) || value.chars().any(char::is_control) {
        Some(format!(
            "{what} contains a comma, `|` or a control character, which Avalon's setpool cannot carry"
        ))
    } else {
        None
    }
}

/// The login `setpool` is sent with.
fn login(creds: &Credentials) -> (String, String) {
    let user = creds.username.clone().filter(|u| !u.is_empty());
    let pass = creds.password.as_ref().map(|p| p.expose().to_string());
    (
        user.unwrap_or_else(|| FACTORY_LOGIN.into()),
        pass.filter(|p| !p.is_empty())
            .unwrap_or_else(|| FACTORY_LOGIN.into()),
    )
}

/// Refuses what the firmware cannot take, before anything is sent.
pub(super) fn check(wanted: &[PoolSpec], creds: &Credentials) -> Result<(), ControlError> {
    let nothing = "; nothing changed on the miner";
    if wanted.len() > SLOTS {
        return Err(ControlError::Unsupported(format!(
            "Avalon keeps {SLOTS} pools; the command has {}{nothing}",
            wanted.len()
        )));
    }
    let (user, pass) = login(creds);
    let fields = wanted
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            [
                (format!("pool {i} url"), p.url.clone()),
                (format!("pool {i} user"), p.user.clone()),
                (format!("pool {i} password"), p.pass.expose().to_string()),
            ]
        })
        .chain([
            ("the web username".to_string(), user),
            ("the web password".to_string(), pass),
        ]);
    for (what, value) in fields {
        if let Some(why) = unfit(&what, &value) {
            return Err(ControlError::Unsupported(format!("{why}{nothing}")));
        }
    }
    if let Some((i, _)) = wanted
        .iter()
        .enumerate()
        .find(|(_, p)| p.url.trim().is_empty())
    {
        return Err(ControlError::Unsupported(format!(
            "pool {i} has no url{nothing}"
        )));
    }
    Ok(())
}

/// The `ascset` parameter that saves `pool` in `slot` (`None`: the older form, no slot).
pub(super) fn setpool_parameter(
    creds: &Credentials,
    slot: Option<usize>,
    pool: &PoolSpec,
) -> String {
    let (user, pass) = login(creds);
    // An empty pool password is sent as the customary `x`, as with cgminer's addpool.
    let pool_pass = match pool.pass.expose() {
        "" => "x",
        p => p,
    };
    let slot = slot.map(|s| format!("{s},")).unwrap_or_default();
    format!(
        "0,setpool,{user},{pass},{slot}{},{},{pool_pass}",
        pool.url.trim(),
        pool.user.trim()
    )
}

/// `text` without the worker password line the firmware echoes, and without any password
/// of the command.
fn clean(text: &str, wanted: &[PoolSpec], creds: &Credentials) -> String {
    // Each line up to the echo, wherever it starts (a one-line answer has it mid-line).
    let kept: Vec<&str> = text
        .lines()
        .map(|l| match l.to_ascii_lowercase().find("workerpassword") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect();
    let mut out = scrub(&kept.join(" "), wanted);
    let (_, pass) = login(creds);
    // As in the parameter (after a comma) whatever its length; elsewhere from 4 characters,
    // as a shorter one would match inside ordinary words.
    out = out.replace(&format!(",{pass}"), ",***");
    if pass.chars().count() >= 4 {
        out = out.replace(&pass, "***");
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn message(reply: &Value) -> String {
    first_obj(reply, "STATUS")
        .and_then(|s| s.get("Msg"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

async fn setpool(
    w: &Wire,
    wanted: &[PoolSpec],
    creds: &Credentials,
    slot: Option<usize>,
    pool: &PoolSpec,
) -> Result<SetPool, ControlError> {
    let param = setpool_parameter(creds, slot, pool);
    let reply = match w.command("ascset", Some(&param)).await? {
        Answer::Reply(v) => v,
        Answer::Dropped => {
            return Err(ControlError::Protocol(
                "the miner closed the connection without a reply".into(),
            ))
        }
    };
    let msg = message(&reply);
    if let Err(e) = check_status(&reply) {
        if e.msg.trim().eq_ignore_ascii_case("failed") && e.code.is_none() {
            return Ok(SetPool::Failed);
        }
        return Err(match refused(e) {
            ControlError::Refused(m) => ControlError::Refused(clean(&m, wanted, creds)),
            other => other,
        });
    }
    let lower = msg.to_ascii_lowercase();
    if lower.contains("success") && !lower.contains("unsuccess") {
        Ok(SetPool::Saved)
    } else {
        Err(ControlError::Refused(format!(
            "the miner did not confirm the pool: {}",
            clean(&msg, wanted, creds)
        )))
    }
}

/// What was saved when the setpool of `slot` failed with `e`: a request that went out and
/// got no readable answer may have been saved.
fn after(slot: usize, e: &ControlError, saved: &[String]) -> String {
    match e {
        ControlError::Protocol(_) if saved.is_empty() => {
            format!("whether slot {slot} was saved is unknown; not rebooted")
        }
        ControlError::Protocol(_) => format!(
            "whether slot {slot} was saved is unknown; {}",
            so_far(saved)
        ),
        _ => so_far(saved),
    }
}

/// What was saved so far, for an error.
fn so_far(saved: &[String]) -> String {
    if saved.is_empty() {
        "nothing changed on the miner".into()
    } else {
        format!(
            "saved {} (applied only at the next reboot; not rebooted)",
            saved.join(", ")
        )
    }
}

/// Saves `wanted` into the miner's slots, first pool first, then reboots it to apply them.
/// Slots past `wanted` keep what they had: setpool cannot empty a slot.
pub(super) async fn replace(
    w: &Wire,
    wanted: &[PoolSpec],
    creds: &Credentials,
) -> Result<Sent, ControlError> {
    check(wanted, creds)?;
    let mut saved: Vec<String> = Vec::new();
    for (slot, pool) in wanted.iter().enumerate() {
        let step = format!("`setpool` of slot {slot} ({})", pool.url.trim());
        match setpool(w, wanted, creds, Some(slot), pool).await {
            Ok(SetPool::Saved) => saved.push(format!("slot {slot} ({})", pool.url.trim())),
            Ok(SetPool::Failed) if slot == 0 => return older_firmware(w, wanted, creds).await,
            Ok(SetPool::Failed) => {
                return Err(ControlError::Refused(format!(
                    "{step}: the miner answered `failed`; {}",
                    so_far(&saved)
                )))
            }
            Err(e) => {
                let done = after(slot, &e, &saved);
                return Err(with_step(e, &step, &done));
            }
        }
    }
    // The miner will still serve the pools of the slots not written: say so.
    let kept = match SLOTS - wanted.len() {
        0 => String::new(),
        1 => format!(
            "; slot {} keeps the pool it had (setpool cannot empty a slot)",
            SLOTS - 1
        ),
        _ => format!(
            "; slots {}-{} keep the pools they had (setpool cannot empty a slot)",
            wanted.len(),
            SLOTS - 1
        ),
    };
    with_note(reboot(w, &saved).await, &kept)
}

/// A success message with `note` appended.
fn with_note(sent: Result<Sent, ControlError>, note: &str) -> Result<Sent, ControlError> {
    match sent {
        Ok(Sent::Accepted(m)) => Ok(Sent::Accepted(format!("{m}{note}"))),
        other => other,
    }
}

/// The miner refused the slot form: older firmware (one pool, no slot) or a wrong login.
async fn older_firmware(
    w: &Wire,
    wanted: &[PoolSpec],
    creds: &Credentials,
) -> Result<Sent, ControlError> {
    // Foreman cuts messages at 255 characters: these stay well under.
    let login_hint = "wrong web login? (command username/password; factory root/root)";
    if wanted.len() > 1 {
        return Err(ControlError::Refused(format!(
            "`setpool` with a slot answered `failed`: older Avalon firmware takes only one pool \
             (send one), or {login_hint}; nothing changed on the miner"
        )));
    }
    let pool = &wanted[0];
    match setpool(w, wanted, creds, None, pool).await {
        Ok(SetPool::Saved) => with_note(
            reboot(
                w,
                &[format!("pool {} (older setpool form)", pool.url.trim())],
            )
            .await,
            "; the other pools stay as they were (the older form sets the first pool only)",
        ),
        Ok(SetPool::Failed) => Err(ControlError::Refused(format!(
            "`setpool` answered `failed` in both forms: {login_hint}; nothing changed on the miner"
        ))),
        Err(e) => {
            let done = match e {
                ControlError::Protocol(_) => {
                    "whether the first pool was saved is unknown; not rebooted"
                }
                _ => "nothing changed on the miner",
            };
            Err(with_step(e, "`setpool` (older form)", done))
        }
    }
}

/// Reboots to apply what was saved; the caller confirms the pools once the miner is back.
async fn reboot(w: &Wire, saved: &[String]) -> Result<Sent, ControlError> {
    let done = format!("saved {}", saved.join(", "));
    let answer = w.command("ascset", Some("0,reboot,0")).await.map_err(|e| {
        with_step(
            e,
            "reboot to apply the pools",
            &format!("{done}; not rebooted"),
        )
    })?;
    match outcome(answer, true, "ascset") {
        // The reboot usually closes without a reply; either way it was sent, and the caller
        // confirms the pools once the miner is back.
        Ok(_) => Ok(Sent::Accepted(format!("{done}; reboot sent to apply them"))),
        Err(e) => Err(with_step(
            e,
            "reboot to apply the pools",
            &format!("{done} (applied only at the next reboot)"),
        )),
    }
}

fn with_step(e: ControlError, step: &str, done: &str) -> ControlError {
    let changed = !done.starts_with("nothing");
    e.in_step(changed, |m| format!("{step}: {m}; {done}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fake_miner::{scripted, Reply};
    use super::*;
    use crate::config::Secret;
    use crate::miner::repair::parse_reply;
    use serde_json::json;

    fn spec(url: &str, user: &str, pass: &str) -> PoolSpec {
        PoolSpec::new(url, user, pass)
    }

    fn creds(user: Option<&str>, pass: Option<&str>) -> Credentials {
        Credentials {
            username: user.map(str::to_string),
            password: pass.map(Secret::new),
            ..Credentials::default()
        }
    }

    #[test]
    fn setpool_carries_the_login_the_slot_and_the_pool() {
        // The request Foreman's Avalon action sends (foreman-apps AvalonChangePoolsITest).
        let p = spec(
            "stratum+tcp://my-test-pool1.com:5588",
            "my-test-username1",
            "pw1",
        );
        let c = creds(Some("my-auth-username"), Some("my-auth-password"));
        assert_eq!(
            setpool_parameter(&c, Some(0), &p),
            "0,setpool,my-auth-username,my-auth-password,0,stratum+tcp://my-test-pool1.com:5588,my-test-username1,pw1"
        );
        // The older form has no slot; no login in the command means the factory root/root;
        // an empty pool password goes as `x`.
        assert_eq!(
            setpool_parameter(
                &creds(None, Some("")),
                None,
                &spec("stratum+tcp://a:3333", "w", "")
            ),
            "0,setpool,root,root,stratum+tcp://a:3333,w,x"
        );
    }

    #[test]
    fn what_the_firmware_cannot_take_is_refused_before_sending() {
        let ok = spec("stratum+tcp://a:3333", "w", "p");
        assert!(check(&[ok.clone(), ok.clone(), ok.clone()], &creds(None, None)).is_ok());
        let four = vec![ok.clone(); 4];
        let e = check(&four, &creds(None, None)).unwrap_err().to_string();
        assert!(
            e.contains("keeps 3 pools") && e.contains("nothing changed"),
            "{e}"
        );
        for bad in [
            spec("stratum+tcp://a:3333", "w,1", "p"),
            spec("stratum+tcp://a:3333", "w", "p|q"),
            spec("", "w", "p"),
        ] {
            let e = check(&[bad], &creds(None, None)).unwrap_err().to_string();
            assert!(e.contains("nothing changed"), "{e}");
        }
        let e = check(&[ok], &creds(None, Some("a,b")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("web password") && !e.contains("a,b"), "{e}");
    }

    #[test]
    fn the_echoed_worker_password_never_leaves() {
        // The A1047's answer to the older setpool form, as captured: it echoes the worker
        // password ("123") on its own line.
        let v = parse_reply(&crate::miner::tests::raw(
            "fixtures/avalon/Avalon1047-old_ascset_0_setpool_v2.json",
        ))
        .unwrap();
        let msg = message(&v);
        assert!(msg.contains("workerpassword is 123"), "{msg}");
        assert!(msg.to_ascii_lowercase().contains("success"));
        let wanted = [spec(
            "stratum+tcp://btc.ss.poolin.com:443",
            "cctrix.001",
            "123",
        )];
        let cleaned = clean(&msg, &wanted, &creds(None, None));
        assert!(!cleaned.contains("123"), "{cleaned}");
        assert!(cleaned.contains("pool success set to stratum+tcp://btc.ss.poolin.com:443"));
        // A longer password is hidden wherever it appears, and so is the web password.
        let wanted = [spec("stratum+tcp://a:3333", "w", "s3cret-pool")];
        let c = creds(None, Some("web-s3cret"));
        let cleaned = clean("bad s3cret-pool and web-s3cret", &wanted, &c);
        assert_eq!(cleaned, "bad *** and ***");
    }

    #[test]
    fn the_bare_failed_of_older_firmware_reads_as_a_refusal_without_a_code() {
        // The A1047's answer to the slot form, as captured: the bare word `failed`.
        let v = parse_reply(&crate::miner::tests::raw(
            "fixtures/avalon/Avalon1047-old_ascset_0_setpool.json",
        ))
        .unwrap();
        let e = check_status(&v).unwrap_err();
        assert_eq!((e.msg.as_str(), e.code), ("failed", None));
    }

    fn saved_reply() -> Reply {
        Reply::Text(
            String::from_utf8(crate::miner::tests::raw(
                "fixtures/avalon/Avalon1047-old_ascset_0_setpool_v2.json",
            ))
            .unwrap(),
        )
    }

    fn two() -> Vec<PoolSpec> {
        vec![
            spec("stratum+tcp://a:3333", "w.1", "s3cret-pool-pw"),
            spec("stratum+tcp://b:3333", "w.2", "s3cret-pool-pw"),
        ]
    }

    /// `replace` against an Avalon answering request `n` with `answer(n, parameter)`; the
    /// `ascset` parameters it saw.
    async fn run(
        answer: impl Fn(usize, &str) -> Reply + Send + Sync + 'static,
        wanted: &[PoolSpec],
        c: &Credentials,
    ) -> (Result<Sent, ControlError>, Vec<String>) {
        let (addr, seen) = scripted(move |n, _, param| answer(n, param)).await;
        let w = Wire::new(addr, std::time::Duration::from_millis(500));
        let r = replace(&w, wanted, c).await;
        let params = seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.split_once('|').map_or(s.as_str(), |(_, p)| p).to_string())
            .collect();
        (r, params)
    }

    #[tokio::test]
    async fn slot_0_saved_then_slot_1_failed_says_what_was_saved_and_does_not_reboot() {
        let (r, seen) = run(
            |n, _| match n {
                0 => saved_reply(),
                _ => Reply::Text("failed".into()),
            },
            &two(),
            &creds(None, Some("web-s3cret")),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert_eq!(
            e,
            "miner refused: `setpool` of slot 1 (stratum+tcp://b:3333): the miner answered \
             `failed`; saved slot 0 (stratum+tcp://a:3333) (applied only at the next reboot; \
             not rebooted)"
        );
        assert_eq!(seen.len(), 2, "no reboot: {seen:?}");
    }

    #[tokio::test]
    async fn a_setpool_without_an_answer_is_not_told_as_nothing_changed() {
        for (n_drop, hang) in [(0, false), (0, true), (1, false)] {
            let (r, seen) = run(
                move |n, _| match n {
                    n if n == n_drop && hang => Reply::Hang,
                    n if n == n_drop => Reply::Close,
                    _ => saved_reply(),
                },
                &two(),
                &creds(None, None),
            )
            .await;
            let e = r.unwrap_err().to_string();
            assert!(!e.contains("nothing changed"), "{e}");
            assert!(
                e.contains(&format!("whether slot {n_drop} was saved is unknown")),
                "{e}"
            );
            if n_drop == 1 {
                assert!(e.contains("saved slot 0 (stratum+tcp://a:3333)"), "{e}");
            }
            assert!(e.contains("not rebooted"), "{e}");
            assert_eq!(seen.len(), n_drop + 1, "stopped at the drop: {seen:?}");
        }
        // The older form, same.
        let (r, _) = run(
            |n, _| match n {
                0 => Reply::Text("failed".into()),
                _ => Reply::Close,
            },
            &two()[..1],
            &creds(None, None),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("whether the first pool was saved is unknown")
                && !e.contains("nothing changed"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn short_passwords_echoed_mid_line_never_leave() {
        // A one-line refusal quoting the parameter: web password "pw1", pool password "123".
        let wanted = [spec("stratum+tcp://a:3333", "w.1", "123")];
        let (r, _) = run(
            |_, param| {
                Reply::Text(
                    json!({"STATUS": [{"STATUS": "E", "When": 1, "Code": 14,
                        "Msg": format!("bad setpool {param} worker w.1 workerpassword is 123")}]})
                    .to_string(),
                )
            },
            &wanted,
            &creds(Some("root"), Some("pw1")),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("miner refused: `setpool` of slot 0"), "{e}");
        assert!(!e.contains("pw1") && !e.contains("123"), "{e}");
        assert!(e.contains("bad setpool 0,setpool,root,***"), "{e}");
    }

    #[tokio::test]
    async fn unsuccessful_is_not_success() {
        let (r, seen) = run(
            |_, _| {
                Reply::Text(
                    json!({"STATUS": [{"STATUS": "I", "When": 1, "Code": 118,
                        "Msg": "ASC 0 set info: pool set unsuccessful"}]})
                    .to_string(),
                )
            },
            &two()[..1],
            &creds(None, None),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("did not confirm the pool: ASC 0 set info: pool set unsuccessful")
                && e.contains("nothing changed"),
            "{e}"
        );
        assert_eq!(seen.len(), 1, "no reboot");
    }

    #[tokio::test]
    async fn success_says_which_slots_keep_their_old_pools() {
        let ok = |n: usize, _: &str| match n {
            // setpools, then the reboot closing without a reply.
            n if n < 3 => saved_reply(),
            _ => Reply::Close,
        };
        let (r, seen) = run(ok, &two(), &creds(None, None)).await;
        assert_eq!(
            r.unwrap(),
            Sent::Accepted(
                "saved slot 0 (stratum+tcp://a:3333), slot 1 (stratum+tcp://b:3333); reboot \
                 sent to apply them; slot 2 keeps the pool it had (setpool cannot empty a slot)"
                    .into()
            )
        );
        assert_eq!(seen.last().unwrap(), "0,reboot,0");
        let (r, _) = run(ok, &two()[..1], &creds(None, None)).await;
        let Ok(Sent::Accepted(m)) = r else {
            panic!("{r:?}")
        };
        assert!(
            m.ends_with("; slots 1-2 keep the pools they had (setpool cannot empty a slot)"),
            "{m}"
        );
        // Older firmware sets the first pool only.
        let (r, _) = run(
            |n, _| match n {
                0 => Reply::Text("failed".into()),
                1 => saved_reply(),
                _ => Reply::Close,
            },
            &two()[..1],
            &creds(None, None),
        )
        .await;
        let Ok(Sent::Accepted(m)) = r else {
            panic!("{r:?}")
        };
        assert!(m.contains("other pools stay as they were"), "{m}");
    }
}
