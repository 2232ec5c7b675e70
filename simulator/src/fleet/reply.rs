//! cgminer request parsing and reply building for every family: templates for reads, the
//! family's stateful commands, joins, codes 14/23/24/45, text replies for text requests.

use serde_json::Value;

use super::dialect::{self, cgminer_status, whatsminer, Ctx, Handled};
use super::family::{Family, KNOWN_COMMANDS};
use super::fixtures::REPORT_COMMANDS;
use super::text;

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// A command string (possibly a join `a+b`) and its parameter.
    Command {
        cmd: String,
        param: Option<String>,
        /// Sent as text `cmd|param` (a cgminer answers text in text).
        text: bool,
    },
    /// A Whatsminer encrypted write: the base64 `data`.
    Encrypted(String),
    /// A JSON request that cgminer rejects: (code, message).
    Bad(u32, &'static str),
}

impl Request {
    #[cfg(test)]
    pub(crate) fn cmd(c: &str) -> Request {
        Request::Command {
            cmd: c.to_string(),
            param: None,
            text: false,
        }
    }
}

/// A JSON value as a cgminer parameter (strings as is, numbers as text).
fn param_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses one request: JSON `{"command":..,"parameter":..}` when the first byte is `{`, else
/// text `command|parameter`. `cmd_key`: `{"cmd":..}` is accepted too (Whatsminer).
pub(crate) fn parse_request(buf: &[u8], cmd_key: bool) -> Request {
    if buf.first() == Some(&b'{') {
        let end = json_object_end(buf).unwrap_or(buf.len());
        let Ok(v) = serde_json::from_slice::<Value>(&buf[..end]) else {
            return Request::Bad(23, "Invalid JSON");
        };
        if !v.is_object() {
            return Request::Bad(23, "Invalid JSON");
        }
        if cmd_key && v.get("enc").is_some() {
            return Request::Encrypted(v["data"].as_str().unwrap_or("").to_string());
        }
        let command = match (v.get("command"), v.get("cmd")) {
            (Some(c), _) => c,
            (None, Some(c)) if cmd_key => c,
            _ => return Request::Bad(24, "Missing JSON 'command'"),
        };
        let Value::String(c) = command else {
            return Request::Bad(14, "Invalid command");
        };
        // Whatsminer reads carry their parameter as `param`.
        let param = v
            .get("parameter")
            .or_else(|| v.get("param"))
            .and_then(param_text);
        return Request::Command {
            cmd: c.clone(),
            param,
            text: false,
        };
    }
    let text = String::from_utf8_lossy(buf);
    let text = text.trim_end_matches(['\0', '\r', '\n']);
    let (cmd, param) = match text.split_once('|') {
        Some((c, p)) => (c, Some(p.to_string())),
        None => (text, None),
    };
    Request::Command {
        cmd: cmd.to_string(),
        param,
        text: true,
    }
}

/// End (exclusive) of the JSON object that starts at `buf[0]`, once it is complete.
pub(crate) fn json_object_end(buf: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in buf.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A built reply (without the terminator) and what it served.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub text: String,
    /// Increments per command: version, summary, pools, stats, devs, other (denied or invalid
    /// commands, bad requests).
    pub served: [u32; 6],
    /// Every command answered successfully (for per-command counts).
    pub commands: Vec<String>,
    /// Realtime hashrate (GH/s) of the hashrate-bearing reply, when one was served.
    pub stats_ghs: Option<f64>,
    /// Close without a reply.
    pub silent: bool,
    /// Reboot once the reply is out.
    pub reboot: bool,
}

fn status_error(ctx: &Ctx<'_>, code: u32, msg: &str, r: &mut Reply) {
    r.text.push_str(&cgminer_status(
        "E",
        ctx.live.when,
        code,
        msg,
        &ctx.miner.model.description,
        "",
    ));
    r.served[5] += 1;
}

/// Builds the miner's reply to `req`.
pub(crate) fn build_reply(ctx: &Ctx<'_>, req: &Request) -> Reply {
    let mut r = Reply {
        text: String::with_capacity(4096),
        ..Reply::default()
    };
    let model = ctx.miner.model;
    let (cmd, param, as_text) = match req {
        Request::Bad(code, msg) => {
            status_error(ctx, *code, msg, &mut r);
            return r;
        }
        Request::Encrypted(data) => {
            let out = whatsminer::encrypted(ctx, data);
            r.reboot = out.reboot;
            match out.handled {
                Handled::Reply(s) => r.text = s,
                Handled::Silent => r.silent = true,
            }
            r.commands.push("enc".to_string());
            return r;
        }
        Request::Command { cmd, param, text } => (cmd.as_str(), param.as_deref(), *text),
    };
    if cmd.contains('+') {
        join(ctx, cmd, &mut r);
    } else {
        single(ctx, cmd, param, false, &mut r);
    }
    if as_text && model.family.text_replies() && !r.silent {
        if let Some(t) = text::to_text(&r.text) {
            r.text = t;
        }
    }
    r
}

fn join(ctx: &Ctx<'_>, cmd: &str, r: &mut Reply) {
    if !ctx.miner.model.joins {
        status_error(ctx, 14, "Invalid command", r);
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    for part in cmd.split('+').filter(|p| !p.is_empty()) {
        if !seen.contains(&part) {
            seen.push(part);
        }
    }
    if seen.is_empty() {
        status_error(ctx, 14, "Invalid command", r);
        return;
    }
    r.text.push('{');
    for (n, part) in seen.iter().enumerate() {
        if n > 0 {
            r.text.push(',');
        }
        r.text
            .push_str(&serde_json::to_string(part).unwrap_or_default());
        r.text.push_str(":[");
        single(ctx, part, None, true, r);
        r.text.push(']');
    }
    r.text.push_str(",\"id\":1}");
}

fn single(ctx: &Ctx<'_>, cmd: &str, param: Option<&str>, in_join: bool, r: &mut Reply) {
    let model = ctx.miner.model;
    if let Some(out) = dialect::handle(ctx, cmd, param, in_join) {
        r.reboot |= out.reboot;
        match out.handled {
            Handled::Reply(s) => r.text.push_str(&s),
            Handled::Silent => r.silent = true,
        }
        r.commands.push(cmd.to_string());
        return;
    }
    let stateful = dialect::is_stateful(model.family, cmd);
    // Whatsminer-shaped replies (`STATUS` a bare string) cannot be joined.
    let wm_shaped = model.family == Family::Whatsminer
        && !cmd.contains(':')
        && model.reply(&format!("wm:{cmd}")).is_some();
    let template = if wm_shaped {
        model.reply(&format!("wm:{cmd}"))
    } else if cmd.contains(':') {
        None
    } else {
        model.reply(cmd)
    };
    match template {
        Some(t) if !(in_join && wm_shaped) => {
            // A pool list changed by pool commands replaces the fixture's.
            match (cmd == "pools")
                .then(|| dialect::cgminer_pools::serve(ctx, t))
                .flatten()
            {
                Some(pools) => r.text.push_str(&pools),
                None => t.render(ctx.live, &mut r.text),
            }
            if let Some(i) = REPORT_COMMANDS.iter().position(|c| *c == cmd) {
                r.served[i] += 1;
            }
            if cmd == model.primary.0 {
                r.stats_ghs = Some(model.served_ghs(ctx.live.factor));
            }
            r.commands.push(cmd.to_string());
        }
        Some(_) => denied(ctx, cmd, r),
        None if stateful => denied(ctx, cmd, r),
        None if model.family.denies_known() && KNOWN_COMMANDS.contains(&cmd) => denied(ctx, cmd, r),
        None => status_error(ctx, 14, "Invalid command", r),
    }
}

fn denied(ctx: &Ctx<'_>, cmd: &str, r: &mut Reply) {
    let msg = format!("Access denied to '{cmd}' command");
    status_error(ctx, 45, &msg, r);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::family::Framing;
    use super::super::fault::Fault;
    use super::super::fixtures::{model_index, models};
    use super::super::miner::{MinerSetup, MinerState};
    use super::super::template::Live;
    use super::*;

    fn miner(key: &str) -> MinerState {
        MinerState::new(
            "127.0.0.1:4028".parse().unwrap(),
            &models()[model_index(key).unwrap()],
            MinerSetup {
                boot_ms: 0,
                fault: Fault::None,
                mac: [2, 0, 0, 0, 0, 1],
                history: 10,
                framing: Framing::default(),
                write_api: true,
                password: "admin".into(),
                reboot_secs: 0.0,
                session_idle: std::time::Duration::from_secs(60),
            },
        )
    }

    fn reply(m: &MinerState, req: &Request) -> Reply {
        let live = Live::fixed(1_800_000_000, 100);
        let ctx = Ctx {
            miner: m,
            live: &live,
            now_ms: 1_800_000_000_000,
        };
        build_reply(&ctx, req)
    }

    #[test]
    fn parses_json_and_text_requests() {
        let c = |s: &str, p: Option<&str>, text| Request::Command {
            cmd: s.into(),
            param: p.map(str::to_string),
            text,
        };
        assert_eq!(
            parse_request(br#"{"command":"stats","parameter":"0"}"#, false),
            c("stats", Some("0"), false)
        );
        assert_eq!(
            parse_request(b"{\"command\":\"summary+pools\"}\n", false),
            c("summary+pools", None, false)
        );
        assert_eq!(
            parse_request(b"ascset|0,led,1-1\n", false),
            c("ascset", Some("0,led,1-1"), true)
        );
        assert_eq!(parse_request(b"version", false), c("version", None, true));
        assert_eq!(
            parse_request(b"{\"x\":1}", false),
            Request::Bad(24, "Missing JSON 'command'")
        );
        assert_eq!(
            parse_request(br#"{"cmd":"summary"}"#, false),
            Request::Bad(24, "Missing JSON 'command'")
        );
        assert_eq!(
            parse_request(br#"{"cmd":"summary"}"#, true),
            c("summary", None, false)
        );
        assert_eq!(
            parse_request(br#"{"enc":1,"data":"QUJD"}"#, true),
            Request::Encrypted("QUJD".into())
        );
        assert_eq!(
            parse_request(b"{nope", false),
            Request::Bad(23, "Invalid JSON")
        );
        assert_eq!(
            parse_request(b"{\"command\":5}", false),
            Request::Bad(14, "Invalid command")
        );
        assert_eq!(json_object_end(br#"{"a":"}"}xx"#), Some(9));
        assert_eq!(json_object_end(br#"{"a":"#), None);
    }

    #[test]
    fn join_envelope_on_old_builds_and_rejected_on_s19() {
        let s17 = miner("s17");
        let r = reply(&s17, &Request::cmd("summary+stats+devdetails+bogus"));
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
        assert_eq!(v["stats"][0]["STATUS"][0]["Code"], 70);
        assert_eq!(v["devdetails"][0]["STATUS"][0]["Code"], 45);
        assert_eq!(v["bogus"][0]["STATUS"][0]["Code"], 14);
        assert_eq!(r.served, [0, 1, 0, 1, 0, 2]);
        assert!(r.stats_ghs.is_some());

        let s19 = miner("s19pro");
        let r = reply(&s19, &Request::cmd("summary+stats+pools"));
        assert_eq!(
            r.text,
            r#"{"STATUS":[{"STATUS":"E","When":1800000000,"Code":14,"Msg":"Invalid command","Description":"cgminer 1.0.0"}],"id":1}"#
        );
        assert!(r.stats_ghs.is_none());
    }

    #[test]
    fn denied_and_invalid() {
        let s19 = miner("s19pro");
        let v: Value =
            serde_json::from_str(&reply(&s19, &Request::cmd("devdetails")).text).unwrap();
        assert_eq!(v["STATUS"][0]["Code"], 45);
        assert_eq!(
            v["STATUS"][0]["Msg"],
            "Access denied to 'devdetails' command"
        );
        assert_eq!(v["STATUS"][0]["STATUS"], "E");
        let v: Value =
            serde_json::from_str(&reply(&s19, &Request::cmd("frobnicate")).text).unwrap();
        assert_eq!(v["STATUS"][0]["Code"], 14);
    }

    #[test]
    fn whatsminer_shapes_cannot_be_joined() {
        let m = miner("m31s");
        let v: Value = serde_json::from_str(&reply(&m, &Request::cmd("get_version")).text).unwrap();
        assert_eq!(v["STATUS"], "S");
        assert_eq!(v["Msg"]["fw_ver"], "20201202.22.REL");
        let v: Value =
            serde_json::from_str(&reply(&m, &Request::cmd("summary+get_version")).text).unwrap();
        assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
        assert_eq!(v["get_version"][0]["STATUS"][0]["Code"], 45);
    }

    #[test]
    fn text_requests_get_text_on_avalon() {
        let m = miner("avalon1566");
        let r = reply(
            &m,
            &Request::Command {
                cmd: "version".into(),
                param: None,
                text: true,
            },
        );
        assert!(
            r.text.starts_with("STATUS=S,When=1800000000,Code=22,Msg=CGMiner versions,Description=cgminer 4.11.1|VERSION,CGMiner=4.11.1,"),
            "{}",
            r.text
        );
        assert!(r.text.ends_with('|'));
    }

    #[test]
    fn luxos_config_says_sleep_while_curtailed() {
        let m = miner("luxos-s19kpro");
        let call = |cmd: &str, param: Option<String>| -> Value {
            let req = Request::Command {
                cmd: cmd.into(),
                param,
                text: false,
            };
            // The miner's own on/off state, not the fixed "hashing" of `reply`.
            let mut live = Live::fixed(1_800_000_000, 100);
            live.hashing = m.dynamic().hashing(1_800_000_000);
            let ctx = Ctx {
                miner: &m,
                live: &live,
                now_ms: 1_800_000_000_000,
            };
            serde_json::from_str(&build_reply(&ctx, &req).text).unwrap()
        };
        let mode = || call("config", None)["CONFIG"][0]["CurtailMode"].clone();
        assert_eq!(mode(), "None");
        let sid = call("logon", None)["SESSION"][0]["SessionID"]
            .as_str()
            .unwrap()
            .to_string();
        call("curtail", Some(format!("{sid},sleep")));
        assert_eq!(mode(), "Sleep");
        call("curtail", Some(format!("{sid},wakeup")));
        assert_eq!(mode(), "None");
    }

    #[test]
    fn luxos_pool_commands_change_what_pools_serves() {
        let m = miner("luxos-s19kpro");
        let call = |cmd: &str, param: Option<&str>| -> Value {
            let req = Request::Command {
                cmd: cmd.into(),
                param: param.map(str::to_string),
                text: false,
            };
            serde_json::from_str(&reply(&m, &req).text).unwrap()
        };
        let status = |v: &Value| {
            (
                v["STATUS"][0]["STATUS"].as_str().unwrap().to_string(),
                v["STATUS"][0]["Code"].as_u64().unwrap(),
                v["STATUS"][0]["Msg"].as_str().unwrap().to_string(),
            )
        };
        let listed = |v: &Value| -> Vec<(u64, String, String, bool, u64)> {
            v["POOLS"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["POOL"].as_u64().unwrap(),
                        p["URL"].as_str().unwrap().to_string(),
                        p["User"].as_str().unwrap().to_string(),
                        p["Stratum Active"].as_bool().unwrap(),
                        p["Priority"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        // The fixture's four slots (no pools configured: empty URLs), pool 0 mined on.
        assert_eq!(listed(&call("pools", None)).len(), 4);
        let ok = |code: u64, msg: &str| ("S".to_string(), code, msg.to_string());
        let err = |code: u64, msg: &str| ("E".to_string(), code, msg.to_string());
        assert_eq!(
            status(&call(
                "addpool",
                Some("stratum+tcp://new.example:3333,farm.w1,s3cret")
            )),
            ok(55, "Added pool 4: 'stratum+tcp://new.example:3333'")
        );
        assert_eq!(
            status(&call(
                "addpool",
                Some("stratum+tcp://b.example:3333,farm\\,w2,s3cret")
            )),
            ok(55, "Added pool 5: 'stratum+tcp://b.example:3333'")
        );
        assert_eq!(
            status(&call("addpool", None)),
            err(52, "Missing addpool details")
        );
        assert_eq!(
            status(&call("addpool", Some("stratum+tcp://c:1,w,"))),
            err(53, "Invalid addpool details 'stratum+tcp://c:1,w,'")
        );
        assert_eq!(
            status(&call("removepool", Some("0"))),
            err(67, "Cannot remove active pool 0:''")
        );
        assert_eq!(
            status(&call("switchpool", Some("6"))),
            err(26, "Invalid pool id 6 - range is 0 - 5")
        );
        assert_eq!(
            status(&call("removepool", None)),
            err(25, "Missing pool id parameter")
        );
        assert_eq!(
            status(&call("switchpool", Some("4"))),
            ok(27, "Switching to pool 4:'stratum+tcp://new.example:3333'")
        );
        let v = call("pools", None);
        assert_eq!(status(&v), ok(7, "6 Pool(s)"));
        let l = listed(&v);
        assert_eq!(
            l[4],
            (
                4,
                "stratum+tcp://new.example:3333".into(),
                "farm.w1".into(),
                true,
                0
            )
        );
        assert_eq!(l[5].2, "farm,w2", "escaped comma");
        assert_eq!(l[0].4, 1, "the old first choice moved down");
        assert_eq!(v["POOLS"][4]["Stratum URL"], "new.example:3333");
        assert_eq!(v["POOLS"][0]["Stratum URL"], "");
        // The last pool takes a removed pool's slot.
        assert_eq!(
            status(&call("removepool", Some("0"))),
            ok(68, "Removed pool 0:''")
        );
        let l = listed(&call("pools", None));
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].1, "stratum+tcp://b.example:3333");
        assert_eq!(l[4].1, "stratum+tcp://new.example:3333");
        for id in ["3", "2", "1"] {
            assert_eq!(status(&call("removepool", Some(id))).1, 68);
        }
        let l = listed(&call("pools", None));
        assert_eq!(
            l.iter()
                .map(|p| (p.0, p.1.as_str(), p.3))
                .collect::<Vec<_>>(),
            vec![
                (0, "stratum+tcp://b.example:3333", false),
                (1, "stratum+tcp://new.example:3333", true)
            ]
        );
        assert_eq!(
            status(&call("removepool", Some("1"))),
            err(
                67,
                "Cannot remove active pool 1:'stratum+tcp://new.example:3333'"
            )
        );
        assert_eq!(status(&call("removepool", Some("0"))).1, 68);
        assert_eq!(
            status(&call("removepool", Some("0"))),
            err(
                66,
                "Cannot remove last pool 0:'stratum+tcp://new.example:3333'"
            )
        );
        // Served in joins too; writes are not joinable.
        let j: Value =
            serde_json::from_str(&reply(&m, &Request::cmd("pools+addpool")).text).unwrap();
        assert_eq!(
            j["pools"][0]["POOLS"][0]["URL"],
            "stratum+tcp://new.example:3333"
        );
        assert_eq!(j["addpool"][0]["STATUS"][0]["Code"], 45);
        // Avalon's cgminer fork has no addpool.
        let a = miner("avalonq");
        let v: Value = serde_json::from_str(
            &reply(
                &a,
                &Request::Command {
                    cmd: "addpool".into(),
                    param: Some("u,w,p".into()),
                    text: false,
                },
            )
            .text,
        )
        .unwrap();
        assert_eq!(v["STATUS"][0]["Code"], 14);
    }
}
