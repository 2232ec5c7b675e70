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
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.trim_start()
                .to_ascii_lowercase()
                .starts_with("workerpassword")
        })
        .collect();
    let mut out = scrub(&kept.join(" "), wanted);
    let (_, pass) = login(creds);
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
    if msg.to_ascii_lowercase().contains("success") {
        Ok(SetPool::Saved)
    } else {
        Err(ControlError::Refused(format!(
            "the miner did not confirm the pool: {}",
            clean(&msg, wanted, creds)
        )))
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
            Err(e) => return Err(with_step(e, &step, &so_far(&saved))),
        }
    }
    reboot(w, &saved).await
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
        Ok(SetPool::Saved) => {
            reboot(
                w,
                &[format!("pool {} (older setpool form)", pool.url.trim())],
            )
            .await
        }
        Ok(SetPool::Failed) => Err(ControlError::Refused(format!(
            "`setpool` answered `failed` in both forms: {login_hint}; nothing changed on the miner"
        ))),
        Err(e) => Err(with_step(
            e,
            "`setpool` (older form)",
            "nothing changed on the miner",
        )),
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
    use super::*;
    use crate::config::Secret;
    use crate::miner::repair::parse_reply;

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
}
