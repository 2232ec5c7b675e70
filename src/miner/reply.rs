//! Helpers over a parsed cgminer reply: status check, section lookup, multicommand splitting and
//! lenient field reading.
//!
//! Why lenient: the same field arrives as a number on one firmware and as a string on the next
//! (`"GHS 5s":"54997.01"` beside `"GHS av":54512.07`), with padding (`" 12.0000"`), or as a
//! placeholder (`""`, `"-"`, `"nan"`). A typed deserializer would reject the whole object; here a
//! field that cannot be read is simply unknown (`None`), never 0 and never non-finite.

use serde_json::{Map, Value};

/// A miner's own "not OK" answer (`STATUS` `E`, `W`, `F`, or anything but `S`/`I`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("status {status} code {}: {msg}", code.map_or_else(|| "?".to_string(), |c| c.to_string()))]
pub struct MinerError {
    /// The status letter as sent (`E`, `W`, `F`, ...), or `?` when the reply had no status at all.
    pub status: String,
    pub code: Option<i64>,
    pub msg: String,
}

impl MinerError {
    /// cgminer code 14: the command (or a joined command) is unknown to this firmware.
    pub const INVALID_COMMAND: i64 = 14;
    /// cgminer code 45: the command exists but this client may not run it.
    pub const ACCESS_DENIED: i64 = 45;

    fn missing() -> Self {
        MinerError {
            status: "?".into(),
            code: None,
            msg: "reply has no STATUS".into(),
        }
    }
}

/// Checks `STATUS`: `[{"STATUS":"S",...}]` (cgminer) or a bare string (Whatsminer `get_*`,
/// `{"STATUS":"RESTART"}`). `S` and `I` are success; everything else is the miner saying no.
pub fn check_status(reply: &Value) -> Result<(), MinerError> {
    let Some(status) = reply.get("STATUS") else {
        return Err(MinerError::missing());
    };
    // cgminer puts the fields in the first array element; Whatsminer puts them at top level.
    let (letter, holder) = match status {
        Value::Array(items) => {
            let Some(first) = items.first() else {
                return Err(MinerError::missing());
            };
            (first.get("STATUS").and_then(Value::as_str), first)
        }
        Value::String(s) => (Some(s.as_str()), reply),
        _ => (None, reply),
    };
    match letter {
        Some("S" | "I" | "RESTART") => Ok(()),
        other => Err(MinerError {
            status: other.unwrap_or("?").to_string(),
            code: holder.get("Code").and_then(num).map(|c| c as i64),
            msg: match holder.get("Msg") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                // Whatsminer puts an object in Msg; keep it readable rather than dropping it.
                Some(other) => other.to_string(),
            },
        }),
    }
}

/// Whatsminer API v3: `{"code":0,"msg":{...}}` is success; any other code is the miner saying
/// no, with its reason in `msg`.
pub fn check_v3(reply: &Value) -> Result<(), MinerError> {
    match reply.get("code").and_then(num) {
        Some(0.0) => Ok(()),
        code => Err(MinerError {
            status: "E".into(),
            code: code.map(|c| c as i64),
            msg: match reply.get("msg") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "reply has no code".into(),
            },
        }),
    }
}

/// The array a reply carries under `name` (`SUMMARY`, `STATS`, `POOLS`, `VERSION`, `DEVS`);
/// empty when absent or not an array.
pub fn section<'a>(reply: &'a Value, name: &str) -> &'a [Value] {
    match reply.get(name) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// Object number `n` of section `name`, if it is an object.
pub fn nth_obj<'a>(reply: &'a Value, name: &str, n: usize) -> Option<&'a Map<String, Value>> {
    section(reply, name).get(n).and_then(Value::as_object)
}

/// First object of section `name`.
pub fn first_obj<'a>(reply: &'a Value, name: &str) -> Option<&'a Map<String, Value>> {
    nth_obj(reply, name, 0)
}

/// Splits a joined reply `{"summary":[{..}],"stats":[{..}],...,"id":1}` into one reply per
/// command, in the order of `commands` (`None` where the miner left a command out).
///
/// Returns `Err(reply)` unchanged when the reply carries none of the commands: that is the
/// firmware refusing the join (C-13), not a joined reply. Each sub-reply keeps its own `STATUS`,
/// so one failing sub-command does not discard the others.
pub fn split_multi<'c>(
    reply: Value,
    commands: impl IntoIterator<Item = &'c str>,
) -> Result<Vec<Option<Value>>, Value> {
    let Value::Object(mut map) = reply else {
        return Err(reply);
    };
    let mut found = false;
    let mut parts = Vec::new();
    for command in commands {
        // Exact key first (what cgminer sends back); a case-insensitive match costs a scan and
        // only runs for firmwares that echo the command in another case.
        let key = if map.contains_key(command) {
            Some(command.to_string())
        } else {
            map.keys()
                .find(|k| k.eq_ignore_ascii_case(command))
                .cloned()
        };
        let part = key.and_then(|k| map.remove(&k)).and_then(|v| match v {
            Value::Array(items) => items.into_iter().next(),
            obj @ Value::Object(_) => Some(obj),
            _ => None,
        });
        found |= part.is_some();
        parts.push(part);
    }
    if found {
        Ok(parts)
    } else {
        Err(Value::Object(map))
    }
}

/// Reads a number leniently: a JSON number, or a string holding one (surrounding spaces allowed).
/// `""`, `"-"`, `"nan"`, `"inf"`, non-finite values and anything else are `None`.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::String(s) => num_str(s),
        _ => None,
    }
}

/// [`num`] for a string.
pub fn num_str(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t == "-" {
        return None;
    }
    // Rust's parser also accepts "nan"/"inf"/"infinity": the finiteness filter turns them away.
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The number at the start of a string such as `"3250 W"`, or a plain number.
pub fn leading_num(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            let end = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
                .unwrap_or(t.len());
            num_str(&t[..end])
        }
        other => num(other),
    }
}

/// Field `key` of `obj` as a lenient number.
pub fn field(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(num)
}

/// Field `key` as a non-negative whole number (`" 12.0000"` reads as 12).
pub fn field_u64(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    field(obj, key).and_then(to_u64)
}

/// A lenient number as a non-negative whole number.
pub fn to_u64(x: f64) -> Option<u64> {
    // Float-to-int `as` saturates, so a huge value cannot wrap; negatives are not counts.
    (x >= 0.0).then(|| x.round() as u64)
}

/// Field `key` as a string slice, when it is a string.
pub fn field_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// A boolean that may arrive as `true`, `"true"`, `"Y"`...
pub fn field_bool(obj: &Map<String, Value>, key: &str) -> Option<bool> {
    match obj.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            t if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("y") => Some(true),
            t if t.eq_ignore_ascii_case("false") || t.eq_ignore_ascii_case("n") => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_numbers() {
        assert_eq!(num(&json!(54512.07)), Some(54512.07));
        assert_eq!(num(&json!("54997.01")), Some(54997.01));
        assert_eq!(num(&json!(" 12.0000")), Some(12.0));
        assert_eq!(num(&json!(" 7 ")), Some(7.0));
        for absent in ["", "-", "nan", "NaN", "inf", "-inf", "Infinity", "x", "1-2"] {
            assert_eq!(num(&json!(absent)), None, "{absent:?}");
        }
        assert_eq!(num(&Value::Null), None);
        assert_eq!(num(&json!(true)), None);
        assert_eq!(leading_num(&json!("3250 W")), Some(3250.0));
        assert_eq!(leading_num(&json!(1234.5)), Some(1234.5));
        assert_eq!(leading_num(&json!("W")), None);
        assert_eq!(to_u64(-1.0), None);
        assert_eq!(to_u64(12.4), Some(12));
    }

    #[test]
    fn status_shapes() {
        assert!(check_status(&json!({"STATUS":[{"STATUS":"S","Code":11}]})).is_ok());
        assert!(check_status(&json!({"STATUS":[{"STATUS":"I","Code":118}]})).is_ok());
        // Whatsminer: bare string and an object in Msg.
        assert!(check_status(&json!({"STATUS":"S","Code":131,"Msg":{"a":"b"}})).is_ok());
        assert!(check_status(&json!({"STATUS":"RESTART"})).is_ok());
        let e = check_status(&json!({"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}]}))
            .unwrap_err();
        assert_eq!(
            (e.status.as_str(), e.code, e.msg.as_str()),
            ("E", Some(14), "Invalid command")
        );
        // Code as a string (text form) still reads.
        let e =
            check_status(&json!({"STATUS":[{"STATUS":"W","Code":"45","Msg":"no"}]})).unwrap_err();
        assert_eq!(e.code, Some(45));
        let e = check_status(&json!({"STATUS":"E","Code":23,"Msg":{"x":1}})).unwrap_err();
        assert_eq!(e.msg, r#"{"x":1}"#);
        assert!(check_status(&json!({"id":1})).is_err());
        assert!(check_status(&json!({"STATUS":[]})).is_err());
        assert!(check_status(&json!([1, 2])).is_err());
    }

    #[test]
    fn split_keeps_good_parts_beside_a_failed_one() {
        let joined = json!({
            "summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5}],"id":1}],
            "stats":[{"STATUS":[{"STATUS":"E","Code":45,"Msg":"Access denied"}],"id":1}],
            "id":1
        });
        let parts = split_multi(joined, ["version", "summary", "stats"]).unwrap();
        assert!(parts[0].is_none());
        let summary = parts[1].as_ref().unwrap();
        assert!(check_status(summary).is_ok());
        assert_eq!(
            first_obj(summary, "SUMMARY").and_then(|o| field(o, "Elapsed")),
            Some(5.0)
        );
        assert_eq!(
            check_status(parts[2].as_ref().unwrap()).unwrap_err().code,
            Some(45)
        );
    }

    #[test]
    fn split_rejects_a_plain_reply() {
        let rejected = json!({"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}],"id":1});
        let back = split_multi(rejected.clone(), ["summary", "stats"]).unwrap_err();
        assert_eq!(back, rejected);
    }
}
