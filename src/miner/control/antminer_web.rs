//! Stock Antminer writes, which its firmware takes only through the web interface (CGI over
//! HTTP with Digest auth, realm `antMiner Configuration`, factory login root/root;
//! miner-dialects §2b): `reboot.cgi`; sleep / normal and pools by reading
//! `get_miner_conf.cgi` and posting the whole conf back to `set_miner_conf.cgi` with the one
//! change; the fault light with `blink.cgi`. The web port is the command's `port` (80 when
//! absent); the RPC port stays the one that is polled.
//!
//! Two generations of `set_miner_conf.cgi`: firmware whose conf has a work mode takes the
//! conf back as JSON; older firmware is a shell script that reads `_ant_*` form fields by
//! position (pools, beeper, temperature control, fan, frequency, voltage) and would write a
//! JSON body into its config as garbage, so it gets the form, and has no sleep mode.
//!
//! Power levels are refused: sources disagree on which `bitmain-work-mode` value is low and
//! which high, and a wrong guess would change a farm's power draw the wrong way.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{unsupported, Action, ControlError, Credentials, PoolSpec, Sent};
use crate::miner::web_digest::{DigestClient, WebError};

/// The web port when the command names none.
pub const DEFAULT_WEB_PORT: u16 = 80;
/// The factory login of the Antminer web interface.
const FACTORY_LOGIN: &str = "root";
/// Pool entries the conf holds.
const POOLS: usize = 3;

const CONF_GET: &str = "/cgi-bin/get_miner_conf.cgi";
const CONF_SET: &str = "/cgi-bin/set_miner_conf.cgi";
const REBOOT: &str = "/cgi-bin/reboot.cgi";
const BLINK: &str = "/cgi-bin/blink.cgi";

/// The conf keys of the work mode: newer firmware, then older.
const MODE_KEYS: [&str; 2] = ["bitmain-work-mode", "miner-mode"];
const MODE_NORMAL: &str = "0";
const MODE_SLEEP: &str = "1";

pub(super) async fn execute(
    rpc: SocketAddr,
    action: &Action,
    creds: &Credentials,
    timeout: Duration,
) -> Result<Sent, ControlError> {
    if let Action::PowerLevel(_) = action {
        return Err(unsupported("stock Antminer", action));
    }
    if let Action::Pools(wanted) = action {
        check_pools(wanted)?;
    }
    let web = SocketAddr::new(rpc.ip(), creds.web_port.unwrap_or(DEFAULT_WEB_PORT));
    let user = creds
        .username
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| FACTORY_LOGIN.into());
    let pass = creds
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| FACTORY_LOGIN.into());
    let mut client = DigestClient::new(web, &user, &pass, timeout)?;
    // What no message may carry: the web password and the command's pool passwords (the
    // conf's own pool passwords join once it is read).
    let mut secrets = vec![pass];
    if let Action::Pools(wanted) = action {
        secrets.extend(wanted.iter().map(|p| p.pass.expose().to_string()));
    }
    match action {
        Action::Reboot => reboot(&mut client, &secrets).await,
        Action::Sleep => set_conf(&mut client, |c| set_mode(c, MODE_SLEEP), secrets).await,
        Action::Wake => set_conf(&mut client, |c| set_mode(c, MODE_NORMAL), secrets).await,
        Action::Pools(wanted) => set_conf(&mut client, |c| set_pools(c, wanted), secrets).await,
        Action::Light(on) => blink(&mut client, *on, &secrets).await,
        Action::PowerLevel(_) => Err(unsupported("stock Antminer", action)),
    }
}

/// Refuses what the conf cannot hold, before anything is sent.
fn check_pools(wanted: &[PoolSpec]) -> Result<(), ControlError> {
    if wanted.len() > POOLS {
        return Err(ControlError::Unsupported(format!(
            "a stock Antminer keeps {POOLS} pools; the command has {}; nothing changed on the miner",
            wanted.len()
        )));
    }
    Ok(())
}

async fn reboot(client: &mut DigestClient, secrets: &[String]) -> Result<Sent, ControlError> {
    match client.request(Method::GET, REBOOT, None).await {
        Ok((status, _)) if status.is_success() => Ok(Sent::Accepted("reboot.cgi accepted".into())),
        Ok((status, body)) => Err(ControlError::Refused(format!(
            "reboot.cgi answered HTTP {status}: {}",
            snippet(&body, secrets)
        ))),
        // The miner goes down under the request: expected, confirmed by its uptime later.
        Err(WebError::Dropped(_)) => Ok(Sent::Dropped),
        Err(e) => Err(e.into_control("reboot.cgi")),
    }
}

/// Reads the conf, applies `change`, posts the whole conf back.
async fn set_conf(
    client: &mut DigestClient,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<String, ControlError>,
    mut secrets: Vec<String>,
) -> Result<Sent, ControlError> {
    let (status, body) = client
        .request(Method::GET, CONF_GET, None)
        .await
        .map_err(|e| e.into_control("get_miner_conf.cgi"))?;
    if !status.is_success() {
        return Err(ControlError::Refused(format!(
            "get_miner_conf.cgi answered HTTP {status}; nothing changed on the miner"
        )));
    }
    let mut conf = parse_conf(&body)?;
    // The pool passwords the miner holds, which an answer may echo.
    secrets.extend(conf_passwords(&conf));
    let done = change(&mut conf)?;
    let (out, content_type) = if has_work_mode(&conf) {
        let json = serde_json::to_vec(&Value::Object(conf))
            .map_err(|e| ControlError::Protocol(format!("conf: {e}")))?;
        (json, "application/json")
    } else {
        (
            form_body(&conf).into_bytes(),
            "application/x-www-form-urlencoded",
        )
    };
    let (status, body) = client
        .request(Method::POST, CONF_SET, Some((&out, content_type)))
        .await
        .map_err(|e| match e {
            // Nothing reached the miner, or it refused the login: nothing changed.
            WebError::Unreachable(_) | WebError::Other(ControlError::Auth(_)) => {
                e.into_control("set_miner_conf.cgi")
            }
            // The conf went out; the answer did not come back whole.
            e => e.into_control("set_miner_conf.cgi").in_step(true, |m| {
                format!("{m}; the conf was sent, whether the miner saved it is unknown")
            }),
        })?;
    match conf_answer(status, &body, &secrets) {
        Ok(()) => Ok(Sent::Accepted(done)),
        Err(why) => Err(ControlError::Refused(format!(
            "set_miner_conf.cgi: {}",
            scrub(&why, &secrets)
        ))),
    }
}

/// The conf object; CGI answers often start with blank lines.
fn parse_conf(body: &[u8]) -> Result<Map<String, Value>, ControlError> {
    match serde_json::from_slice::<Value>(body.trim_ascii()) {
        Ok(Value::Object(conf)) if conf.get("pools").is_some_and(Value::is_array) => Ok(conf),
        _ => Err(ControlError::Protocol(
            "get_miner_conf.cgi did not answer a conf with pools; nothing changed on the miner"
                .into(),
        )),
    }
}

/// The non-empty pool passwords of a conf.
fn conf_passwords(conf: &Map<String, Value>) -> Vec<String> {
    conf.get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("pass")?.as_str())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Success is `{"stats":"success"}` / code `M000` on newer firmware, the bare `ok` on older.
fn conf_answer(status: StatusCode, body: &[u8], secrets: &[String]) -> Result<(), String> {
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.eq_ignore_ascii_case("ok") {
        return Ok(());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v["stats"] == "success" || v["code"] == "M000" => Ok(()),
        Ok(v) => Err(format!(
            "{} (code {})",
            v["msg"].as_str().unwrap_or("refused"),
            v["code"].as_str().unwrap_or("?")
        )),
        Err(_) => Err(format!("unexpected answer: {}", snippet(body, secrets))),
    }
}

fn has_work_mode(conf: &Map<String, Value>) -> bool {
    MODE_KEYS.iter().any(|k| conf.contains_key(*k))
}

fn set_mode(conf: &mut Map<String, Value>, mode: &str) -> Result<String, ControlError> {
    // The key this firmware uses; older firmware has none and no sleep mode.
    let Some(key) = MODE_KEYS.iter().find(|k| conf.contains_key(**k)) else {
        return Err(ControlError::Unsupported(
            "this Antminer's conf has no work mode (older firmware): sleeping is not \
             available through its web interface; nothing changed on the miner"
                .into(),
        ));
    };
    conf.insert(key.to_string(), json!(mode));
    Ok(format!("{key} set to {mode}"))
}

/// The `_ant_*` form older firmware reads, in the order its script expects, from the conf.
fn form_body(conf: &Map<String, Value>) -> String {
    let text = |key: &str, default: &str| match conf.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    };
    let pools = conf.get("pools").and_then(Value::as_array);
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for i in 0..POOLS {
        let pool = pools.and_then(|p| p.get(i));
        let field = |k: &str| {
            pool.and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let n = i + 1;
        form.append_pair(&format!("_ant_pool{n}url"), field("url"));
        form.append_pair(&format!("_ant_pool{n}user"), field("user"));
        form.append_pair(&format!("_ant_pool{n}pw"), field("pass"));
    }
    form.append_pair("_ant_nobeeper", &text("bitmain-nobeeper", "false"));
    form.append_pair(
        "_ant_notempoverctrl",
        &text("bitmain-notempoverctrl", "false"),
    );
    form.append_pair(
        "_ant_fan_customize_switch",
        &text("bitmain-fan-ctrl", "false"),
    );
    form.append_pair("_ant_fan_customize_value", &text("bitmain-fan-pwm", ""));
    form.append_pair("_ant_freq", &text("bitmain-freq", ""));
    if conf.contains_key("bitmain-voltage") {
        form.append_pair("_ant_voltage", &text("bitmain-voltage", ""));
    }
    form.finish()
}

fn set_pools(conf: &mut Map<String, Value>, wanted: &[PoolSpec]) -> Result<String, ControlError> {
    let mut pools: Vec<Value> = wanted
        .iter()
        .map(|p| {
            let pass = match p.pass.expose() {
                "" => "x",
                s => s,
            };
            json!({"url": p.url.trim(), "user": p.user.trim(), "pass": pass})
        })
        .collect();
    // The firmware expects all three entries; unused ones are empty.
    pools.resize(POOLS, json!({"url": "", "user": "", "pass": ""}));
    conf.insert("pools".into(), Value::Array(pools));
    let urls: Vec<&str> = wanted.iter().map(|p| p.url.trim()).collect();
    Ok(format!("conf saved with pools {}", urls.join(", ")))
}

async fn blink(
    client: &mut DigestClient,
    on: bool,
    secrets: &[String],
) -> Result<Sent, ControlError> {
    let body = json!({"blink": if on { "true" } else { "false" }}).to_string();
    let (status, answer) = client
        .request(
            Method::POST,
            BLINK,
            Some((body.as_bytes(), "application/json")),
        )
        .await
        .map_err(|e| e.into_control("blink.cgi"))?;
    if status == StatusCode::NOT_FOUND {
        return Err(ControlError::Unsupported(
            "this Antminer has no blink.cgi (older generation, form-based blink not supported)"
                .into(),
        ));
    }
    let want = if on { "B000" } else { "B100" };
    match serde_json::from_slice::<Value>(answer.trim_ascii()) {
        Ok(v) if status.is_success() && v["code"] == want => {
            Ok(Sent::Accepted(format!("blink.cgi {want}")))
        }
        _ => Err(ControlError::Refused(format!(
            "blink.cgi answered HTTP {status}: {}",
            snippet(&answer, secrets)
        ))),
    }
}

/// The start of a body, for an error message, without a secret. Scrubbed before it is cut:
/// a password across the cut would otherwise show its first characters.
fn snippet(body: &[u8], secrets: &[String]) -> String {
    let text = scrub(String::from_utf8_lossy(body).trim(), secrets);
    text.chars()
        .take(120)
        .collect::<String>()
        .trim()
        .to_string()
}

/// `text` without any of `secrets` (longest first, so that one password inside another
/// leaves nothing of the longer one). The customary pool password `x` is no secret.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty() && *s != "x")
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s, "***");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conf_of(path: &str) -> Map<String, Value> {
        parse_conf(&crate::miner::tests::raw(&format!("fixtures/{path}"))).unwrap()
    }

    fn conf(name: &str) -> Map<String, Value> {
        parse_conf(&crate::miner::tests::raw(&format!(
            "fixtures/antminer/{name}"
        )))
        .unwrap()
    }

    #[test]
    fn sleep_and_wake_change_only_the_work_mode() {
        // The S19 Pro conf as captured: sleeping sets "1" and keeps everything else.
        let before = conf("S19-Pro_get_miner_conf.json");
        let mut c = before.clone();
        assert_eq!(
            set_mode(&mut c, MODE_SLEEP).unwrap(),
            "bitmain-work-mode set to 1"
        );
        assert_eq!(c["bitmain-work-mode"], "1");
        c.insert(
            "bitmain-work-mode".into(),
            before["bitmain-work-mode"].clone(),
        );
        assert_eq!(c, before);
        // Firmware that names the key `miner-mode`: that one changes.
        let mut old = Map::new();
        old.insert("pools".into(), json!([]));
        old.insert("miner-mode".into(), json!("1"));
        set_mode(&mut old, MODE_NORMAL).unwrap();
        assert_eq!(old["miner-mode"], "0");
        assert!(!old.contains_key("bitmain-work-mode"));
        // A conf without a work mode (the captured S17 conf): refused, unchanged.
        let mut s17 = conf_of("antminer_altfw/S17-asicdip_get_miner_conf.json");
        let before = s17.clone();
        let e = set_mode(&mut s17, MODE_SLEEP).unwrap_err().to_string();
        assert!(
            e.contains("no work mode") && e.contains("nothing changed"),
            "{e}"
        );
        assert_eq!(s17, before);
    }

    #[test]
    fn older_firmware_gets_the_positional_form_with_its_own_settings() {
        let mut s17 = conf_of("antminer_altfw/S17-asicdip_get_miner_conf.json");
        assert!(!has_work_mode(&s17));
        set_pools(
            &mut s17,
            &[PoolSpec::new(
                "stratum+tcp://pool.example:3333",
                "farm.w1",
                "p&w=1",
            )],
        )
        .unwrap();
        assert_eq!(
            form_body(&s17),
            "_ant_pool1url=stratum%2Btcp%3A%2F%2Fpool.example%3A3333&_ant_pool1user=farm.w1\
             &_ant_pool1pw=p%26w%3D1&_ant_pool2url=&_ant_pool2user=&_ant_pool2pw=\
             &_ant_pool3url=&_ant_pool3user=&_ant_pool3pw=&_ant_nobeeper=false\
             &_ant_notempoverctrl=false&_ant_fan_customize_switch=false\
             &_ant_fan_customize_value=&_ant_freq=565&_ant_voltage=1930"
        );
        // The S19 Pro's conf has a work mode: it goes back as JSON.
        assert!(has_work_mode(&conf("S19-Pro_get_miner_conf.json")));
    }

    #[test]
    fn pools_fill_the_three_entries_and_keep_the_rest_of_the_conf() {
        let before = conf("S19-Pro_get_miner_conf.json");
        let mut c = before.clone();
        let wanted = [
            PoolSpec::new("stratum+tcp://pool.example:3333", "farm.w1", "pw"),
            PoolSpec::new("stratum+tcp://backup.example:3333", "farm.w2", ""),
        ];
        set_pools(&mut c, &wanted).unwrap();
        assert_eq!(
            c["pools"],
            json!([
                {"url": "stratum+tcp://pool.example:3333", "user": "farm.w1", "pass": "pw"},
                {"url": "stratum+tcp://backup.example:3333", "user": "farm.w2", "pass": "x"},
                {"url": "", "user": "", "pass": ""},
            ])
        );
        assert_eq!(c["bitmain-freq"], before["bitmain-freq"]);
        assert_eq!(c.len(), before.len());
        assert!(check_pools(&[wanted[0].clone(), wanted[0].clone(), wanted[0].clone()]).is_ok());
        let e = check_pools(&vec![wanted[0].clone(); 4])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keeps 3 pools") && e.contains("nothing changed"),
            "{e}"
        );
    }

    #[test]
    fn set_conf_answers_of_both_generations() {
        // Older firmware answers the bare `ok` (the S19 Pro capture).
        let ok = crate::miner::tests::raw("fixtures/antminer/S19-Pro_set_miner_conf.json");
        assert_eq!(conf_answer(StatusCode::OK, &ok, &[]), Ok(()));
        assert_eq!(
            conf_answer(
                StatusCode::OK,
                br#"{"stats":"success","code":"M000","msg":"OK!"}"#,
                &[]
            ),
            Ok(())
        );
        let e = conf_answer(
            StatusCode::OK,
            br#"{"stats":"error","code":"M001","msg":"bad"}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e, "bad (code M001)");
        assert!(conf_answer(StatusCode::INTERNAL_SERVER_ERROR, b"ok", &[]).is_err());
        assert!(conf_answer(StatusCode::OK, b"<html>", &[]).is_err());
    }

    #[test]
    fn a_conf_without_pools_is_not_written_back() {
        assert!(parse_conf(b"\n\n{\"pools\":[]}").is_ok());
        for bad in [&b"ok"[..], b"{}", b"[1]", b"{\"pools\":1}"] {
            let e = parse_conf(bad).unwrap_err().to_string();
            assert!(e.contains("nothing changed"), "{e}");
        }
    }

    mod hostile {
        use super::*;
        use crate::config::Secret;
        use crate::miner::web_digest::fake::{challenge, http, server, Reply};

        const WEB_PASS: &str = "web-s3cret-pw";
        const OLD_POOL_PASS: &str = "old-pool-s3cret-password";
        const NEW_POOL_PASS: &str = "new-pool-s3cret-password";

        fn creds(user: &str, port: u16) -> Credentials {
            Credentials {
                username: Some(user.into()),
                password: Some(Secret::new(WEB_PASS)),
                web_port: Some(port),
            }
        }

        /// A conf holding a pool whose password is `OLD_POOL_PASS`.
        fn conf_body() -> String {
            format!(
                "\n\n{{\n  \"pools\": [\n    {{\"url\": \"stratum+tcp://old:3333\", \"user\": \"w\", \"pass\": \"{OLD_POOL_PASS}\"}}\n  ],\n  \"bitmain-work-mode\": \"0\"\n}}\n"
            )
        }

        /// A stock Antminer: challenge first, then `conf` for get_miner_conf and `set` for
        /// everything else.
        async fn antminer(
            set: impl Fn(&str) -> Reply + Send + Sync + 'static,
        ) -> (SocketAddr, crate::miner::web_digest::fake::Seen) {
            server(move |_, req| {
                if !req.contains("[auth]") {
                    challenge("")
                } else if req.contains(CONF_GET) {
                    http("200 OK", &[], &conf_body())
                } else {
                    set(req)
                }
            })
            .await
        }

        async fn run(addr: SocketAddr, action: Action) -> Result<Sent, ControlError> {
            let rpc = SocketAddr::new(addr.ip(), 4028);
            execute(
                rpc,
                &action,
                &creds("root", addr.port()),
                Duration::from_secs(1),
            )
            .await
        }

        fn no_secret(text: &str) {
            for s in [WEB_PASS, OLD_POOL_PASS, NEW_POOL_PASS] {
                // Not even the start of one.
                assert!(!text.contains(&s[..8]), "{s} in {text}");
            }
        }

        fn pools() -> Action {
            Action::Pools(vec![PoolSpec::new(
                "stratum+tcp://new:3333",
                "farm.w1",
                NEW_POOL_PASS,
            )])
        }

        #[tokio::test]
        async fn a_refusal_echoing_the_conf_carries_no_pool_password() {
            // Sleeping posts the conf back with the miner's own pool password; the answer
            // quotes what it got.
            let (addr, seen) = antminer(|req| {
                let body = req.split_once("\n\n").unwrap().1.to_string();
                let answer =
                    json!({"stats": "error", "code": "M001", "msg": format!("bad conf {body}")});
                http("200 OK", &[], &answer.to_string())
            })
            .await;
            let e = run(addr, Action::Sleep).await.unwrap_err().to_string();
            assert!(
                e.starts_with("miner refused: set_miner_conf.cgi: bad conf"),
                "{e}"
            );
            no_secret(&e);
            // The password did go to the miner, in the conf.
            assert!(seen
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.contains(OLD_POOL_PASS)));
        }

        #[tokio::test]
        async fn a_password_across_the_cut_of_an_html_page_does_not_show() {
            // An HTML error page quoting the posted conf, the new password across the
            // 120-character cut of the snippet.
            let (addr, _) = antminer(|_| {
                let page = format!(
                    "<html><body>{}{NEW_POOL_PASS} {WEB_PASS}</body></html>",
                    "e".repeat(100)
                );
                http("200 OK", &[], &page)
            })
            .await;
            let e = run(addr, pools()).await.unwrap_err().to_string();
            assert!(e.contains("unexpected answer: <html>"), "{e}");
            no_secret(&e);
        }

        #[tokio::test]
        async fn a_conf_post_without_an_answer_is_not_told_as_nothing_changed() {
            for reply in [
                || Reply::Close,
                || Reply::Hang,
                || Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"st".to_vec()),
            ] {
                let (addr, seen) = antminer(move |_| reply()).await;
                let e = run(addr, pools()).await.unwrap_err();
                let t = e.to_string();
                assert!(
                    t.starts_with("set_miner_conf.cgi: the miner gave no answer"),
                    "{t}"
                );
                assert!(t.contains("whether the miner saved it is unknown"), "{t}");
                no_secret(&t);
                assert!(seen
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|r| r.starts_with("POST /cgi-bin/set_miner_conf.cgi HTTP/1.1 [auth]")));
            }
        }

        #[tokio::test]
        async fn odd_confs_are_not_written_back() {
            for conf in [
                r#"{"pools": {"url": "a"}}"#,
                r#"{"pools": null}"#,
                "<html>500 Internal Server Error</html>",
                "",
                "\u{feff}{\"pools\": []}",
            ] {
                let (addr, seen) = server(move |_, req| {
                    if req.contains("[auth]") {
                        http("200 OK", &[], conf)
                    } else {
                        challenge("")
                    }
                })
                .await;
                let e = run(addr, Action::Sleep).await.unwrap_err().to_string();
                assert!(e.contains("nothing changed"), "{conf}: {e}");
                assert!(
                    !seen.lock().unwrap().iter().any(|r| r.contains(CONF_SET)),
                    "{conf}: nothing posted"
                );
            }
            // Pool entries of any shape, extra keys: kept as they were, mode changed.
            let odd =
                r#"{"pools":[{"url":1,"pass":null},"x"],"extra":{"a":[1,2]},"miner-mode":"0"}"#;
            let (addr, seen) = server(move |_, req| {
                if !req.contains("[auth]") {
                    challenge("")
                } else if req.contains(CONF_GET) {
                    http("200 OK", &[], odd)
                } else {
                    http("200 OK", &[], "ok")
                }
            })
            .await;
            assert_eq!(
                run(addr, Action::Sleep).await.unwrap(),
                Sent::Accepted("miner-mode set to 1".into())
            );
            let posted = seen.lock().unwrap().last().unwrap().clone();
            let posted: Value = serde_json::from_str(posted.split_once("\n\n").unwrap().1).unwrap();
            assert_eq!(
                posted,
                json!({"pools":[{"url":1,"pass":null},"x"],"extra":{"a":[1,2]},"miner-mode":"1"})
            );
        }

        #[tokio::test]
        async fn a_reboot_login_no_header_can_carry_is_not_reported_as_sent() {
            let (addr, seen) = server(|_, _| challenge("")).await;
            let rpc = SocketAddr::new(addr.ip(), 4028);
            let r = execute(
                rpc,
                &Action::Reboot,
                &creds("ro\not", addr.port()),
                Duration::from_secs(1),
            )
            .await;
            let e = r.unwrap_err().to_string();
            assert!(e.contains("nothing was sent"), "{e}");
            assert_eq!(seen.lock().unwrap().len(), 1);
        }
    }
}
