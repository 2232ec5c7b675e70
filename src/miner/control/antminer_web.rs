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
    match action {
        Action::Reboot => reboot(&mut client).await,
        Action::Sleep => set_conf(&mut client, |c| set_mode(c, MODE_SLEEP), &[]).await,
        Action::Wake => set_conf(&mut client, |c| set_mode(c, MODE_NORMAL), &[]).await,
        Action::Pools(wanted) => set_conf(&mut client, |c| set_pools(c, wanted), wanted).await,
        Action::Light(on) => blink(&mut client, *on).await,
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

async fn reboot(client: &mut DigestClient) -> Result<Sent, ControlError> {
    match client.request(Method::GET, REBOOT, None).await {
        Ok((status, _)) if status.is_success() => Ok(Sent::Accepted("reboot.cgi accepted".into())),
        Ok((status, body)) => Err(ControlError::Refused(format!(
            "reboot.cgi answered HTTP {status}: {}",
            snippet(&body, &[])
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
    wanted: &[PoolSpec],
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
        .map_err(|e| e.into_control("set_miner_conf.cgi"))?;
    match conf_answer(status, &body) {
        Ok(()) => Ok(Sent::Accepted(done)),
        Err(why) => Err(ControlError::Refused(format!(
            "set_miner_conf.cgi: {}",
            scrub(&why, wanted)
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

/// Success is `{"stats":"success"}` / code `M000` on newer firmware, the bare `ok` on older.
fn conf_answer(status: StatusCode, body: &[u8]) -> Result<(), String> {
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
        Err(_) => Err(format!("unexpected answer: {}", snippet(body, &[]))),
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

async fn blink(client: &mut DigestClient, on: bool) -> Result<Sent, ControlError> {
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
            snippet(&answer, &[])
        ))),
    }
}

/// The start of a body, for an error message, without pool passwords.
fn snippet(body: &[u8], wanted: &[PoolSpec]) -> String {
    let text: String = String::from_utf8_lossy(body).chars().take(120).collect();
    scrub(text.trim(), wanted)
}

fn scrub(text: &str, wanted: &[PoolSpec]) -> String {
    let mut out = text.to_string();
    for p in wanted {
        let pass = p.pass.expose();
        if !pass.is_empty() {
            out = out.replace(pass, "***");
        }
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
        assert_eq!(conf_answer(StatusCode::OK, &ok), Ok(()));
        assert_eq!(
            conf_answer(
                StatusCode::OK,
                br#"{"stats":"success","code":"M000","msg":"OK!"}"#
            ),
            Ok(())
        );
        let e = conf_answer(
            StatusCode::OK,
            br#"{"stats":"error","code":"M001","msg":"bad"}"#,
        )
        .unwrap_err();
        assert_eq!(e, "bad (code M001)");
        assert!(conf_answer(StatusCode::INTERNAL_SERVER_ERROR, b"ok").is_err());
        assert!(conf_answer(StatusCode::OK, b"<html>").is_err());
    }

    #[test]
    fn a_conf_without_pools_is_not_written_back() {
        assert!(parse_conf(b"\n\n{\"pools\":[]}").is_ok());
        for bad in [&b"ok"[..], b"{}", b"[1]", b"{\"pools\":1}"] {
            let e = parse_conf(bad).unwrap_err().to_string();
            assert!(e.contains("nothing changed"), "{e}");
        }
    }
}
