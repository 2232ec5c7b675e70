//! Reply bytes → JSON value: strict parse first, a token-aware repair only when that fails.
//!
//! Why a scanner and not string replaces: the defects (`}{` between objects, bare `nan`, trailing
//! commas, raw newlines in strings, junk after the object, ...) must be fixed *between* tokens
//! only. A global `replace("}{", "},{")` also rewrites string contents (case C-01). The scanner
//! below tracks whether it is inside a string literal and which container it is in, and emits a
//! corrected copy in one pass, O(n) in the reply size (which the transport bounds).
//!
//! It also reads the cgminer plain-text form (`STATUS=S,...|VERSION,CGMiner=4.11.1,...|`) into
//! the JSON shape a JSON request would have produced (case C-11).

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty reply")]
    Empty,
    #[error("invalid JSON (even after repair): {0}")]
    Json(#[from] serde_json::Error),
    #[error("neither JSON nor a cgminer text reply")]
    NotJson,
}

/// Parses one reply. Trailing NULs and whitespace are ignored.
pub fn parse_reply(raw: &[u8]) -> Result<Value, ParseError> {
    let bytes = trim(raw);
    let Some(&first) = bytes.first() else {
        return Err(ParseError::Empty);
    };
    // Fast path: the vast majority of replies are valid JSON.
    let strict = match serde_json::from_slice(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    match first {
        b'{' | b'[' | b',' => {
            let fixed = repair_json(bytes);
            Ok(serde_json::from_slice(&fixed)?)
        }
        _ => parse_text(bytes)
            .or_else(|| parse_ccminer(bytes))
            .or_else(|| parse_bare_word(bytes))
            .ok_or(if first.is_ascii_alphabetic() {
                ParseError::NotJson
            } else {
                ParseError::Json(strict)
            }),
    }
}

fn trim(raw: &[u8]) -> &[u8] {
    let is_pad = |b: &u8| b.is_ascii_whitespace() || *b == 0;
    let start = raw.iter().position(|b| !is_pad(b)).unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i + 1);
    &raw[start..end]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Object just opened: a key or `}`.
    KeyOrEnd,
    /// After a comma in an object: a key (a `}` here means a trailing comma).
    Key,
    /// After a key.
    Colon,
    /// After `:` in an object, or after `[` / `,` in an array.
    Value,
    /// Array just opened: a value or `]`.
    ValueOrEnd,
    /// After a complete member or element.
    CommaOrEnd,
}

#[derive(Debug)]
struct Frame {
    is_obj: bool,
    expect: Expect,
    /// Output position of the opening bracket (to turn a `[` into `{`).
    open: usize,
    /// Output position of the last comma written in this container (to drop a trailing one).
    comma: Option<usize>,
    /// Elements written so far (arrays) and whether the last one was a string.
    items: u32,
    last_was_string: bool,
    /// An array turned into an object (list written like a dict): its `]` closes it as `}`.
    converted: bool,
}

impl Frame {
    fn new(is_obj: bool, open: usize) -> Self {
        Frame {
            is_obj,
            expect: if is_obj {
                Expect::KeyOrEnd
            } else {
                Expect::ValueOrEnd
            },
            open,
            comma: None,
            items: 0,
            last_was_string: false,
            converted: false,
        }
    }
}

/// Rewrites a malformed JSON reply into valid JSON where the defect is one we know. Anything it
/// does not understand is copied as is, so the strict parse after it still reports the error.
pub fn repair_json(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 32);
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut top_done = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.push(b);
                i += 1;
            }
            // End of the reply on the wire; anything after it is not ours.
            0 => break,
            b'{' | b'[' => {
                if !before_value(&mut out, &mut stack, top_done) {
                    break;
                }
                stack.push(Frame::new(b == b'{', out.len()));
                out.push(b);
                i += 1;
            }
            b'}' | b']' => {
                let Some(frame) = stack.last() else {
                    // A closer with nothing open: junk after (or instead of) the value.
                    break;
                };
                let matches = if b == b'}' {
                    frame.is_obj
                } else {
                    !frame.is_obj || frame.converted
                };
                if !matches {
                    // Not a defect we know: keep it, and let the strict parse say so.
                    out.push(b);
                    i += 1;
                    continue;
                }
                match (frame.is_obj, frame.expect) {
                    // `,}` / `,]`: drop the trailing comma (and the blanks after it).
                    (true, Expect::Key) | (false, Expect::Value) => {
                        if let Some(pos) = frame.comma {
                            out.truncate(pos);
                        }
                    }
                    // `"k":}`: a member with no value.
                    (true, Expect::Value) => out.extend_from_slice(b"null"),
                    _ => {}
                }
                // Close with the bracket matching the container (a list-dict became an object).
                out.push(if frame.is_obj { b'}' } else { b']' });
                stack.pop();
                after_value(&mut stack, &mut top_done, false);
                i += 1;
            }
            b',' => {
                i += 1;
                let Some(frame) = stack.last_mut() else {
                    if top_done {
                        break;
                    }
                    // Avalon: a reply that starts `,"id":1}` lost its opening brace. (Nothing
                    // but blanks has been written yet: any value would have opened a frame or
                    // completed the top level.)
                    stack.push(Frame::new(true, out.len()));
                    out.push(b'{');
                    continue;
                };
                match (frame.is_obj, frame.expect) {
                    (_, Expect::CommaOrEnd) => {}
                    // `"k": ,` → `"k": null,`
                    (true, Expect::Value) => out.extend_from_slice(b"null"),
                    // `"k",`: not a defect we know; keep it for the strict parse to report.
                    (true, Expect::Colon) => {
                        out.push(b',');
                        continue;
                    }
                    // `[,{` / `{,` / `,,`: a comma with nothing before it is dropped.
                    _ => continue,
                }
                frame.comma = Some(out.len());
                out.push(b',');
                frame.expect = if frame.is_obj {
                    Expect::Key
                } else {
                    Expect::Value
                };
            }
            b':' => {
                i += 1;
                match stack.last_mut() {
                    Some(f) if f.is_obj && f.expect == Expect::Colon => f.expect = Expect::Value,
                    // Whatsminer `"error_code":["329":"...","2010":"..."]`: a list written
                    // like a dict. Only when the first element is a string followed by `:`.
                    Some(f)
                        if !f.is_obj
                            && f.expect == Expect::CommaOrEnd
                            && f.items == 1
                            && f.last_was_string =>
                    {
                        out[f.open] = b'{';
                        f.is_obj = true;
                        f.converted = true;
                        f.expect = Expect::Value;
                    }
                    _ => {}
                }
                out.push(b':');
            }
            b'"' => {
                let is_key = match stack.last_mut() {
                    None if top_done => break,
                    None => false,
                    Some(f) if f.is_obj => match f.expect {
                        Expect::KeyOrEnd | Expect::Key => true,
                        // `"a":"x""b":1`: missing comma between members.
                        Expect::CommaOrEnd => {
                            f.comma = Some(out.len());
                            out.push(b',');
                            true
                        }
                        _ => false,
                    },
                    Some(_) => false,
                };
                if !is_key {
                    before_value(&mut out, &mut stack, top_done);
                }
                i = copy_string(input, i, &mut out);
                match stack.last_mut() {
                    Some(f) if is_key => f.expect = Expect::Colon,
                    _ => after_value(&mut stack, &mut top_done, true),
                }
            }
            0x01..=0x1f => i += 1, // stray control bytes between tokens carry nothing
            _ => {
                let start = i;
                while i < input.len() && !is_delimiter(input[i]) {
                    i += 1;
                }
                if !before_value(&mut out, &mut stack, top_done) {
                    break;
                }
                let token = &input[start..i];
                if is_non_finite(token) {
                    out.extend_from_slice(b"null");
                } else {
                    out.extend_from_slice(token);
                }
                after_value(&mut stack, &mut top_done, false);
            }
        }
    }
    out
}

/// Prepares the output for a value. Returns false when the top-level value is already complete,
/// i.e. everything from here on is junk to cut (S9k `...,"id":1}"}`).
fn before_value(out: &mut Vec<u8>, stack: &mut [Frame], top_done: bool) -> bool {
    match stack.last_mut() {
        None => !top_done,
        Some(f) => {
            // `}{`, `]{`, `""` inside an array: the missing comma between elements.
            if !f.is_obj && f.expect == Expect::CommaOrEnd {
                f.comma = Some(out.len());
                out.push(b',');
                f.expect = Expect::Value;
            }
            true
        }
    }
}

fn after_value(stack: &mut [Frame], top_done: &mut bool, was_string: bool) {
    match stack.last_mut() {
        None => *top_done = true,
        Some(f) => {
            f.expect = Expect::CommaOrEnd;
            f.items = f.items.saturating_add(1);
            f.last_was_string = was_string;
        }
    }
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' | 0..=0x20)
}

/// Bare `nan`, `inf`, `-inf`, `NaN`, `Infinity`, `-nan` (C printf output) → JSON `null`.
fn is_non_finite(token: &[u8]) -> bool {
    let t = match token.first() {
        Some(b'-' | b'+') => &token[1..],
        _ => token,
    };
    t.eq_ignore_ascii_case(b"nan")
        || t.eq_ignore_ascii_case(b"inf")
        || t.eq_ignore_ascii_case(b"infinity")
}

/// Copies the string literal starting at `input[start] == b'"'`, fixing what strict JSON rejects
/// inside strings: raw control characters are escaped, `\'` becomes `'`, any other invalid escape
/// becomes a literal backslash. Returns the index after the closing quote (or the input length
/// when the string never ends, which the strict parse then reports).
fn copy_string(input: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
    out.push(b'"');
    let mut i = start + 1;
    while i < input.len() {
        let b = input[i];
        match b {
            b'"' => {
                out.push(b'"');
                return i + 1;
            }
            b'\\' => match input.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                    out.extend_from_slice(&input[i..i + 2]);
                    i += 2;
                }
                Some(b'u')
                    if input
                        .get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    out.extend_from_slice(&input[i..i + 6]);
                    i += 6;
                }
                Some(b'\'') => {
                    out.push(b'\'');
                    i += 2;
                }
                _ => {
                    out.extend_from_slice(b"\\\\");
                    i += 1;
                }
            },
            0x00..=0x1f => {
                match b {
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        out.extend_from_slice(b"\\u00");
                        out.push(HEX[usize::from(b >> 4)]);
                        out.push(HEX[usize::from(b & 0xf)]);
                    }
                }
                i += 1;
            }
            _ => {
                // Copy the run of ordinary bytes in one go.
                let run_end = input[i..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                    .map_or(input.len(), |p| i + p);
                out.extend_from_slice(&input[i..run_end]);
                i = run_end;
            }
        }
    }
    i
}

/// Reads the cgminer text form: sections split on `|`, fields on `,`, key and value on the first
/// `=`; `\|`, `\,`, `\=` and `\\` are escapes inside values. The status section comes first
/// (`STATUS=S,...`). A joined text reply (`CMD=summary|STATUS=...|...|CMD=pools|...`) becomes the
/// JSON multicommand shape. Values stay strings (the lenient readers accept numeric strings).
/// `None` when the bytes are not of this form.
pub(crate) fn parse_text(bytes: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    let mut commands: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut current: Map<String, Value> = Map::new();
    let mut first = true;
    for section in split_unescaped(&text, '|') {
        let section = section.trim();
        if section.is_empty() {
            continue;
        }
        let mut fields = split_unescaped(section, ',').into_iter();
        let Some(head) = fields.next() else { continue };
        let (head_key, head_val) = split_pair(head);
        if first {
            // The first section must be a status (or a joined reply's command marker).
            if !(head_val.is_some() && (head_key == "STATUS" || head_key == "CMD")) {
                return None;
            }
            first = false;
        }
        if head_key == "CMD" {
            if let Some(name) = head_val {
                commands.push((name, Map::new()));
            }
            continue;
        }
        let mut obj = Map::new();
        let name = match head_val {
            // `VERSION,CGMiner=...`: the first field is only the section's name.
            None => head_key,
            // `POOL=0,URL=...`: the first pair names the section and stays in the object.
            Some(v) => {
                let name = section_name(&head_key);
                obj.insert(head_key, Value::String(v));
                name
            }
        };
        for field in fields {
            if let (k, Some(v)) = split_pair(field) {
                obj.insert(k, Value::String(v));
            }
        }
        let target = match commands.last_mut() {
            Some((_, reply)) => reply,
            None => &mut current,
        };
        match target
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(Value::Object(obj)),
            _ => return None,
        }
    }
    if first {
        return None;
    }
    let mut top = current;
    for (name, mut reply) in commands {
        reply.insert("id".into(), Value::from(1));
        top.insert(name, Value::Array(vec![Value::Object(reply)]));
    }
    top.insert("id".into(), Value::from(1));
    Some(Value::Object(top))
}

/// ccminer's text form: sections split on `|`, fields on `;` (`NAME=ccminer;VER=2.3;...|`),
/// no status section. The section is named after its first key (`NAME` → `SUMMARY`, `POOL` →
/// `POOLS`, `GPU` → `GPUS`).
fn parse_ccminer(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut top = Map::new();
    for section in text.split('|').map(str::trim).filter(|s| !s.is_empty()) {
        let mut obj = Map::new();
        let mut name = None;
        for field in section.split(';') {
            let (k, v) = field.split_once('=')?;
            let k = k.trim();
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            name.get_or_insert_with(|| match k {
                "NAME" => "SUMMARY".to_string(),
                other => section_name(other),
            });
            obj.insert(k.to_string(), Value::String(v.to_string()));
        }
        match top.entry(name?).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items.push(Value::Object(obj)),
            _ => return None,
        }
    }
    (!top.is_empty()).then_some(Value::Object(top))
}

/// A reply that is one bare word: `RESTART` (cgminer's answer to `restart`) or a firmware's
/// terse error (`failed`, Avalon's refused `setpool`), in the status shape.
fn parse_bare_word(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() || bytes.len() > 32 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let word = String::from_utf8_lossy(bytes).into_owned();
    Some(if word == "RESTART" || word == "BYE" {
        serde_json::json!({ "STATUS": word })
    } else {
        serde_json::json!({ "STATUS": [{ "STATUS": "E", "Msg": word }] })
    })
}

/// JSON section name for a text section whose first pair is `key=n`.
fn section_name(key: &str) -> String {
    match key {
        "STATUS" => "STATUS".into(),
        "ASC" | "PGA" | "GPU" => "DEVS".into(),
        k if k.ends_with('S') => k.to_string(),
        k => format!("{k}S"),
    }
}

fn split_pair(field: &str) -> (String, Option<String>) {
    match find_unescaped(field, '=') {
        Some(pos) => (
            unescape(&field[..pos]).trim().to_string(),
            Some(unescape(&field[pos + 1..])),
        ),
        None => (unescape(field).trim().to_string(), None),
    }
}

fn find_unescaped(s: &str, sep: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            return Some(i);
        }
    }
    None
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(pos) = find_unescaped(rest, sep) {
        parts.push(&rest[..pos]);
        rest = &rest[pos + sep.len_utf8()..];
    }
    parts.push(rest);
    parts
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(s: &str) -> Value {
        parse_reply(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn missing_comma_between_objects_outside_strings_only() {
        let v = fixed(r#"{"STATS":[{"Type":"Antminer S9"}{"STATS":0,"note":"a }{ b"}],"id":1}"#);
        assert_eq!(v["STATS"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["STATS"][1]["note"], "a }{ b");
        let v = fixed(r#"{"a":[[1]{"b":2}]}"#);
        assert_eq!(v, json!({"a":[[1],{"b":2}]}));
    }

    #[test]
    fn commas() {
        assert_eq!(fixed(r#"{"a":[,{"b":1}]}"#), json!({"a":[{"b":1}]}));
        assert_eq!(
            fixed(r#"{"a":[1,2,],"b":{"c":1,},}"#),
            json!({"a":[1,2],"b":{"c":1}})
        );
        assert_eq!(fixed(r#"{"a":[1,,2]}"#), json!({"a":[1,2]}));
        assert_eq!(fixed(r#"{"a" : ,"b":}"#), json!({"a":null,"b":null}));
        assert_eq!(fixed(r#"{"a":"x""b":1}"#), json!({"a":"x","b":1}));
        assert_eq!(fixed(r#","id":1}"#), json!({"id":1}));
        assert_eq!(fixed(r#"{,"id":1}"#), json!({"id":1}));
    }

    #[test]
    fn non_finite_tokens() {
        let v = fixed(
            r#"{"a":nan,"b":inf,"c":-inf,"d":NaN,"e":Infinity,"f":-nan,"g":[nan],"h":"nan","i":1.5}"#,
        );
        for k in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(v[k], Value::Null, "{k}");
        }
        assert_eq!(v["g"], json!([null]));
        // Quoted forms stay strings: the lenient number reader deals with them.
        assert_eq!(v["h"], "nan");
        assert_eq!(v["i"], 1.5);
        // A key that merely contains "nan" is untouched.
        assert_eq!(fixed(r#"{"nan":nan}"#), json!({"nan":null}));
    }

    #[test]
    fn strings() {
        let v = fixed(
            "{\"a\":\"it\\'s\",\"b\":\"line\nbreak\tx\u{1}\",\"c\":\"\\q\",\"d\":\"\\u00e9\"}",
        );
        assert_eq!(v["a"], "it's");
        assert_eq!(v["b"], "line\nbreak\tx\u{1}");
        assert_eq!(v["c"], "\\q");
        assert_eq!(v["d"], "é");
    }

    #[test]
    fn junk_after_the_value_is_cut() {
        assert_eq!(fixed(r#"{"id":1}"}"#), json!({"id":1}));
        assert_eq!(fixed("{\"id\":1}\0garbage"), json!({"id":1}));
        assert_eq!(fixed(r#"{"id":1}}}"#), json!({"id":1}));
        assert_eq!(fixed(r#"{"id":1} {"id":2}"#), json!({"id":1}));
    }

    #[test]
    fn list_written_like_a_dict() {
        let v = fixed(
            r#"{"STATUS":[{"STATUS":"S"}],"Msg":{"error_code":["329":"t0","2010":"t1"]},"id":1}"#,
        );
        assert_eq!(v["Msg"]["error_code"], json!({"329":"t0","2010":"t1"}));
        assert!(v["STATUS"].is_array());
    }

    #[test]
    fn unrepairable_input_is_an_error_not_a_panic() {
        for bad in [
            "{",
            "{\"a\":",
            "{\"a\":\"unterminated",
            "[[[[",
            "}",
            "\0",
            "",
            "  \0 ",
            "{\"a\" 1 2}",
            "\u{1}\u{2}",
            "{]",
            "[}",
            "hello world",
            "STATUS",
            "12 13",
        ] {
            let _ = parse_reply(bad.as_bytes());
        }
        // Defects outside the catalogue are not guessed at.
        for unknown in [
            r#"{"a":[1,2}}"#,
            r#"{"a","b":1}"#,
            r#"{"a" "b"}"#,
            r#"{"a":{"b":1]}"#,
        ] {
            assert!(parse_reply(unknown.as_bytes()).is_err(), "{unknown}");
        }
        assert!(matches!(parse_reply(b""), Err(ParseError::Empty)));
        assert!(matches!(
            parse_reply(b"hello world"),
            Err(ParseError::NotJson)
        ));
        // One bare word is a terse refusal (`failed`), or cgminer's `RESTART`.
        assert_eq!(
            parse_reply(b"failed").unwrap()["STATUS"][0]["Msg"],
            "failed"
        );
        assert_eq!(parse_reply(b"RESTART\n").unwrap()["STATUS"], "RESTART");
        // ccminer's `;`-separated text form.
        let v = parse_reply(b"NAME=ccminer;VER=2.3;KHS=1.5|").unwrap();
        assert_eq!(v["SUMMARY"][0]["KHS"], "1.5");
        assert!(parse_reply(b"{\"a\":").is_err());
    }

    #[test]
    fn text_form() {
        let v = fixed(
            "STATUS=S,When=1742265580,Code=22,Msg=CGMiner versions,Description=cgminer 4.11.1|\
             VERSION,CGMiner=4.11.1,API=3.7,PROD=Avalon Mini3,Device Path=,Note=a\\,b\\|c|",
        );
        assert_eq!(v["STATUS"][0]["STATUS"], "S");
        assert_eq!(v["STATUS"][0]["Code"], "22");
        assert_eq!(v["VERSION"][0]["PROD"], "Avalon Mini3");
        assert_eq!(v["VERSION"][0]["Device Path"], "");
        assert_eq!(v["VERSION"][0]["Note"], "a,b|c");
        let v = fixed("STATUS=S,Code=7|POOL=0,URL=stratum+tcp://a:3333|POOL=1,URL=b|");
        assert_eq!(v["POOLS"][1]["URL"], "b");
        assert_eq!(v["POOLS"][0]["POOL"], "0");
        let v = fixed("CMD=summary|STATUS=S,Code=11|SUMMARY,Elapsed=5|CMD=pools|STATUS=E,Code=14|");
        assert_eq!(v["summary"][0]["SUMMARY"][0]["Elapsed"], "5");
        assert_eq!(v["pools"][0]["STATUS"][0]["STATUS"], "E");
    }
}
