//! cgminer request parsing and reply building for a stock Antminer.

use serde_json::Value;

use super::fixtures::{Model, REPORT_COMMANDS};
use super::template::{round_to, Live};

/// Commands a cgminer/bmminer build knows. Those outside API group A (the five report
/// commands) are answered with code 45 "Access denied" by a stock Antminer.
const KNOWN_COMMANDS: &[&str] = &[
    "version",
    "config",
    "devs",
    "edevs",
    "pools",
    "summary",
    "stats",
    "estats",
    "devdetails",
    "coin",
    "lcd",
    "litestats",
    "check",
    "privileged",
    "notify",
    "switchpool",
    "enablepool",
    "disablepool",
    "addpool",
    "removepool",
    "poolpriority",
    "poolquota",
    "save",
    "quit",
    "restart",
    "failover-only",
    "zero",
    "debug",
    "setconfig",
    "usbstats",
    "hotplug",
    "lockstats",
    "asc",
    "ascenable",
    "ascdisable",
    "ascidentify",
    "asccount",
    "ascset",
    "pga",
    "pgaenable",
    "pgadisable",
    "pgaidentify",
    "pgacount",
    "pgaset",
    "gpu",
    "gpucount",
];

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// A command string (possibly a join `a+b`), parameter ignored.
    Command(String),
    /// A JSON request that cgminer rejects: (code, message).
    Bad(u32, &'static str),
}

/// Parses one request: JSON `{"command":..,"parameter":..}` when the first byte is `{`, else
/// text `command|parameter`.
pub(crate) fn parse_request(buf: &[u8]) -> Request {
    if buf.first() == Some(&b'{') {
        let end = json_object_end(buf).unwrap_or(buf.len());
        let Ok(v) = serde_json::from_slice::<Value>(&buf[..end]) else {
            return Request::Bad(23, "Invalid JSON");
        };
        return match v.get("command") {
            None => Request::Bad(24, "Missing JSON 'command'"),
            Some(Value::String(c)) => Request::Command(c.clone()),
            Some(_) => Request::Bad(14, "Invalid command"),
        };
    }
    let text = String::from_utf8_lossy(buf);
    let text = text.trim_end_matches(['\0', '\r', '\n']);
    let cmd = text.split_once('|').map_or(text, |(c, _)| c);
    Request::Command(cmd.to_string())
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

/// A built reply (without the trailing NUL) and what it served.
#[derive(Debug)]
pub(crate) struct Reply {
    pub text: String,
    /// Increments per command: version, summary, pools, stats, devs, other (denied or invalid
    /// commands, bad requests).
    pub served: [u32; 6],
    /// Realtime hashrate (GH/s) in the `stats` reply, when one was served.
    pub stats_ghs: Option<f64>,
}

enum Class {
    Report(usize),
    Denied,
    Invalid,
}

fn classify(cmd: &str) -> Class {
    if let Some(i) = REPORT_COMMANDS.iter().position(|c| *c == cmd) {
        Class::Report(i)
    } else if KNOWN_COMMANDS.contains(&cmd) {
        Class::Denied
    } else {
        Class::Invalid
    }
}

fn status_error(out: &mut String, live: &Live, code: u32, msg: &str, description: &str) {
    out.push_str(&format!(
        "{{\"STATUS\":[{{\"STATUS\":\"E\",\"When\":{},\"Code\":{code},\"Msg\":{},\"Description\":{}}}],\"id\":1}}",
        live.when,
        json_str(msg),
        json_str(description)
    ));
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Builds the reply of `model` to `req` with the live values `live`.
pub(crate) fn build_reply(model: &Model, req: &Request, live: &Live) -> Reply {
    let mut r = Reply {
        text: String::with_capacity(4096),
        served: [0; 6],
        stats_ghs: None,
    };
    let cmd = match req {
        Request::Bad(code, msg) => {
            status_error(&mut r.text, live, *code, msg, &model.description);
            r.served[5] += 1;
            return r;
        }
        Request::Command(c) => c.as_str(),
    };
    if cmd.contains('+') {
        if !model.joins {
            status_error(&mut r.text, live, 14, "Invalid command", &model.description);
            r.served[5] += 1;
            return r;
        }
        let mut seen: Vec<&str> = Vec::new();
        for part in cmd.split('+').filter(|p| !p.is_empty()) {
            if !seen.contains(&part) {
                seen.push(part);
            }
        }
        if seen.is_empty() {
            status_error(&mut r.text, live, 14, "Invalid command", &model.description);
            r.served[5] += 1;
            return r;
        }
        r.text.push('{');
        for (n, part) in seen.iter().enumerate() {
            if n > 0 {
                r.text.push(',');
            }
            r.text.push_str(&json_str(part));
            r.text.push_str(":[");
            single(model, part, live, &mut r);
            r.text.push(']');
        }
        r.text.push_str(",\"id\":1}");
        return r;
    }
    single(model, cmd, live, &mut r);
    r
}

fn single(model: &Model, cmd: &str, live: &Live, r: &mut Reply) {
    match classify(cmd) {
        Class::Report(i) => {
            model.templates[i].render(live, &mut r.text);
            r.served[i] += 1;
            if i == 3 {
                r.stats_ghs = Some(round_to(live.ghs, model.ghs_decimals));
            }
        }
        Class::Denied => {
            let msg = format!("Access denied to '{cmd}' command");
            status_error(&mut r.text, live, 45, &msg, &model.description);
            r.served[5] += 1;
        }
        Class::Invalid => {
            status_error(&mut r.text, live, 14, "Invalid command", &model.description);
            r.served[5] += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{model_index, models};
    use super::*;

    fn live(m: &Model) -> Live {
        Live {
            when: 1_800_000_000,
            elapsed: 100,
            ghs: m.base_ghs,
        }
    }

    #[test]
    fn parses_json_and_text_requests() {
        assert_eq!(
            parse_request(br#"{"command":"stats","parameter":"0"}"#),
            Request::Command("stats".into())
        );
        assert_eq!(
            parse_request(b"{\"command\":\"summary+pools\"}\n"),
            Request::Command("summary+pools".into())
        );
        assert_eq!(
            parse_request(b"pools|0\n"),
            Request::Command("pools".into())
        );
        assert_eq!(
            parse_request(b"version"),
            Request::Command("version".into())
        );
        assert_eq!(
            parse_request(b"{\"x\":1}"),
            Request::Bad(24, "Missing JSON 'command'")
        );
        assert_eq!(parse_request(b"{nope"), Request::Bad(23, "Invalid JSON"));
        assert_eq!(
            parse_request(b"{\"command\":5}"),
            Request::Bad(14, "Invalid command")
        );
        assert_eq!(json_object_end(br#"{"a":"}"}xx"#), Some(9));
        assert_eq!(json_object_end(br#"{"a":"#), None);
    }

    #[test]
    fn join_envelope_on_old_builds_and_rejected_on_s19() {
        let s17 = &models()[model_index("s17").unwrap()];
        let r = build_reply(
            s17,
            &Request::Command("summary+stats+devdetails+bogus".into()),
            &live(s17),
        );
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
        assert_eq!(v["stats"][0]["STATUS"][0]["Code"], 70);
        assert_eq!(v["devdetails"][0]["STATUS"][0]["Code"], 45);
        assert_eq!(v["bogus"][0]["STATUS"][0]["Code"], 14);
        assert_eq!(r.served, [0, 1, 0, 1, 0, 2]);
        assert!(r.stats_ghs.is_some());

        let s19 = &models()[model_index("s19pro").unwrap()];
        let r = build_reply(
            s19,
            &Request::Command("summary+stats+pools".into()),
            &live(s19),
        );
        assert_eq!(
            r.text,
            r#"{"STATUS":[{"STATUS":"E","When":1800000000,"Code":14,"Msg":"Invalid command","Description":"cgminer 1.0.0"}],"id":1}"#
        );
        assert!(r.stats_ghs.is_none());
    }

    #[test]
    fn denied_and_invalid() {
        let s19 = &models()[model_index("s19pro").unwrap()];
        let r = build_reply(s19, &Request::Command("devdetails".into()), &live(s19));
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(v["STATUS"][0]["Code"], 45);
        assert_eq!(
            v["STATUS"][0]["Msg"],
            "Access denied to 'devdetails' command"
        );
        assert_eq!(v["STATUS"][0]["STATUS"], "E");
        let r = build_reply(s19, &Request::Command("frobnicate".into()), &live(s19));
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(v["STATUS"][0]["Code"], 14);
    }
}
