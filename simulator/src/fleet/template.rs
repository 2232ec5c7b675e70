//! Reply templates: fixture text with a few live fields punched out.
//!
//! The fixture text is scanned once, string-aware but without parsing it as JSON, so malformed
//! fixtures (`}{` between objects, trailing junk) stay byte-for-byte malformed. Only the values
//! of known keys are replaced on every reply: the time (`When`), uptimes (`Elapsed`, `Device
//! Elapsed`, ...), realtime hashrates (scaled by the per-reply jitter and the on/off state), the
//! miner's own MAC, on/off flags (`mineroff`, Avalon `SoftOFF[..]`), and pool URLs/users. Inside
//! Avalon `MM ID` strings the `Key[value]` tokens are punched out the same way.

use std::fmt::Write as _;

/// How a MAC address is printed in a fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacStyle {
    UpperColon,
    LowerColon,
    /// 12 hex digits, no separators (LuxOS `miner_id`, Avalon `MAC` on some builds).
    LowerHex,
    UpperHex,
}

impl MacStyle {
    /// The style of `s` when it is a MAC address.
    pub fn detect(s: &str) -> Option<MacStyle> {
        let b = s.as_bytes();
        let upper = s.bytes().any(|c| c.is_ascii_uppercase());
        if b.len() == 17 {
            let ok = b.iter().enumerate().all(|(i, c)| {
                if i % 3 == 2 {
                    *c == b':'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
            return ok.then_some(if upper || !s.bytes().any(|c| c.is_ascii_lowercase()) {
                MacStyle::UpperColon
            } else {
                MacStyle::LowerColon
            });
        }
        if b.len() == 12 && b.iter().all(u8::is_ascii_hexdigit) {
            return Some(if upper {
                MacStyle::UpperHex
            } else {
                MacStyle::LowerHex
            });
        }
        None
    }

    pub fn format(self, mac: [u8; 6]) -> String {
        let mut s = String::with_capacity(17);
        for (i, b) in mac.iter().enumerate() {
            let _ = match self {
                MacStyle::UpperColon | MacStyle::UpperHex => write!(s, "{b:02X}"),
                MacStyle::LowerColon | MacStyle::LowerHex => write!(s, "{b:02x}"),
            };
            if i < 5 && matches!(self, MacStyle::UpperColon | MacStyle::LowerColon) {
                s.push(':');
            }
        }
        s
    }

    /// Parses a MAC in any of the styles.
    pub fn parse(s: &str) -> Option<[u8; 6]> {
        let hex: String = s.chars().filter(|c| *c != ':').collect();
        if hex.len() != 12 {
            return None;
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

/// What a boolean hole follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagOf {
    /// Hashing (not paused, asleep, powered off, soft-off).
    Hashing,
    /// The fault / locate LED.
    Led,
}

/// A live field substituted into the fixture text on every reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Field {
    /// `When`: the reply time (unix seconds).
    When,
    /// `Elapsed` / `Device Elapsed` / `Uptime`: seconds since the simulated boot.
    Elapsed,
    /// `Last getwork`: unix seconds, same as `When`.
    LastGetwork,
    /// A realtime hashrate in the key's own unit: `base` times the reply's factor.
    Rate {
        base: f64,
    },
    /// The miner's MAC address.
    Mac(MacStyle),
    /// Text chosen by a boolean of the miner's state.
    Flag {
        of: FlagOf,
        on: &'static str,
        off: &'static str,
    },
    /// URL / user of the n-th pool (changed by Whatsminer `update_pools`).
    PoolUrl(usize),
    PoolUser(usize),
}

/// Per-model choices made while punching holes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ParseOpts {
    /// Summary-level realtime rates render this (GH/s, converted to the key's unit), so every
    /// realtime field of the model agrees with the one value the simulator reports.
    pub normalize_ghs: Option<f64>,
    /// Rates that are 0 in the fixture render this (GH/s): fixtures captured while idle.
    pub fill_ghs: Option<f64>,
    /// `URL`/`User` (`url`/`account`) become pool holes.
    pub pools: bool,
}

/// The unit of a realtime-hashrate key (multiplier from GH/s) and whether it is miner-wide
/// ("summary level") rather than per board.
pub(crate) fn rate_key(key: &str) -> Option<(f64, bool)> {
    Some(match key {
        "GHS 5s" | "GHS 1m" | "GHS 30s" => (1.0, true),
        "MHS 5s" | "MHS 1m" | "MHS 30s" | "HS RT" | "MHS(30s)" | "MHS(1m)" | "MHS(Sample)" => {
            (1e3, true)
        }
        "hash-realtime" => (1e-3, true),
        "GHSspd" => (1.0, true),
        "MGHS" => (1.0, false),
        k if k.starts_with("chain_rate")
            && k.len() > 10
            && k[10..].bytes().all(|c| c.is_ascii_digit()) =>
        {
            (1.0, false)
        }
        k if k.ends_with(" MHS(Sample)") => (1e3, false),
        _ => return None,
    })
}

const TIME_KEYS: &[(&str, Field)] = &[
    ("When", Field::When),
    ("when", Field::When),
    ("Elapsed", Field::Elapsed),
    ("Device Elapsed", Field::Elapsed),
    ("elapsed", Field::Elapsed),
    ("Uptime", Field::Elapsed),
    ("System Uptime", Field::Elapsed),
    ("Last getwork", Field::LastGetwork),
];

fn hashing_flag(key: &str) -> Option<Field> {
    let (on, off) = match key {
        "mineroff" | "btmineroff" => ("false", "true"),
        "working" => ("true", "false"),
        // LuxOS `config`: "Sleep" after `curtail sleep`.
        "CurtailMode" => ("None", "Sleep"),
        _ => return None,
    };
    Some(Field::Flag {
        of: FlagOf::Hashing,
        on,
        off,
    })
}

/// One `"key": value` pair found by [`scan_pairs`], as byte ranges into the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    /// Key contents (between the quotes).
    pub key: (usize, usize),
    /// The raw value token: a quoted string (quotes included) or a bare scalar.
    pub value: (usize, usize),
}

/// Finds every `"key": scalar` pair in `text`, skipping string contents, without requiring the
/// text to be valid JSON. Values that are objects or arrays are not reported (their insides are).
pub(crate) fn scan_pairs(text: &str) -> Vec<Pair> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let key_start = i + 1;
        let key_end = string_end(b, key_start);
        i = key_end + 1;
        // A key is a string followed by optional whitespace and a colon.
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b':' {
            continue;
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() {
            break;
        }
        let v_start = j;
        let v_end = if b[j] == b'"' {
            (string_end(b, j + 1) + 1).min(b.len())
        } else {
            let mut k = j;
            while k < b.len()
                && (b[k].is_ascii_alphanumeric() || matches!(b[k], b'-' | b'+' | b'.'))
            {
                k += 1;
            }
            k
        };
        if v_end > v_start {
            out.push(Pair {
                key: (key_start, key_end.min(b.len())),
                value: (v_start, v_end),
            });
        }
        // Continue scanning at the value: a quoted value is skipped as a whole (it is a string,
        // not a key); a bare one is skipped too.
        i = v_end;
    }
    out
}

/// Index of the closing quote of a string whose contents start at `start` (or `b.len()`).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut k = start;
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            b'"' => return k,
            _ => k += 1,
        }
    }
    b.len()
}

/// The raw value token of the first `"key": scalar` pair in `text`.
pub(crate) fn find_raw<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    scan_pairs(text)
        .into_iter()
        .find(|p| &text[p.key.0..p.key.1] == key)
        .map(|p| &text[p.value.0..p.value.1])
}

/// All raw values of `"key": scalar` pairs whose key matches `pred`.
pub(crate) fn find_all(text: &str, pred: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
    scan_pairs(text)
        .into_iter()
        .filter(|p| pred(&text[p.key.0..p.key.1]))
        .map(|p| (&text[p.key.0..p.key.1], &text[p.value.0..p.value.1]))
        .collect()
}

/// A raw scalar token as a number: bare numbers and numbers inside quotes (`"54997.01"`).
pub(crate) fn raw_number(raw: &str) -> Option<f64> {
    raw.trim_matches('"')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// A raw string token's contents (without quotes), `None` when it is not a quoted string.
pub(crate) fn raw_string(raw: &str) -> Option<&str> {
    raw.strip_prefix('"')?.strip_suffix('"')
}

#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    Hole {
        field: Field,
        quoted: bool,
        decimals: usize,
    },
}

/// Values substituted into one reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Live<'a> {
    pub when: i64,
    pub elapsed: i64,
    /// Multiplier of every realtime hashrate: the per-reply jitter, 0 when not hashing.
    pub factor: f64,
    pub hashing: bool,
    pub led: bool,
    pub mac: [u8; 6],
    /// Pools set by a write command (url, user), replacing the fixture's in order.
    pub pools: &'a [(String, String)],
}

#[cfg(test)]
impl Live<'static> {
    /// Fixed values for unit tests: hashing, factor 1.
    pub fn fixed(when: i64, elapsed: i64) -> Live<'static> {
        Live {
            when,
            elapsed,
            factor: 1.0,
            hashing: true,
            led: false,
            mac: [0x02, 0, 0, 0, 0, 1],
            pools: &[],
        }
    }
}

/// A fixture reply split into literal text and live-field holes.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Builds the parts of a template while scanning.
struct Builder<'t> {
    text: &'t str,
    parts: Vec<Part>,
    pos: usize,
}

impl Builder<'_> {
    /// Replaces `text[start..end]` with a hole.
    fn hole(&mut self, start: usize, end: usize, field: Field, quoted: bool, decimals: usize) {
        if start < self.pos {
            return;
        }
        self.parts
            .push(Part::Lit(self.text[self.pos..start].to_string()));
        self.parts.push(Part::Hole {
            field,
            quoted,
            decimals,
        });
        self.pos = end;
    }
}

fn decimals_of(raw: &str) -> usize {
    raw.trim_matches('"')
        .split_once('.')
        .map_or(0, |(_, d)| d.len())
}

fn rate_field(value: f64, unit: f64, summary: bool, opts: &ParseOpts) -> Field {
    let base = match (opts.normalize_ghs, opts.fill_ghs) {
        (Some(g), _) if summary => g * unit,
        (_, Some(g)) if value == 0.0 => g * unit,
        _ => value,
    };
    Field::Rate { base }
}

impl Template {
    /// A template with the default options (no normalization, no pool holes).
    #[cfg(test)]
    pub fn parse(text: &str) -> Template {
        Template::parse_with(text, &ParseOpts::default())
    }

    /// Builds a template from fixture text. Trailing whitespace is dropped (re-serialized
    /// fixtures end with a newline a miner would not send); everything else is kept.
    pub fn parse_with(text: &str, opts: &ParseOpts) -> Template {
        let text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        let mut b = Builder {
            text,
            parts: Vec::new(),
            pos: 0,
        };
        let (mut urls, mut users) = (0usize, 0usize);
        for pair in scan_pairs(text) {
            let key = &text[pair.key.0..pair.key.1];
            let raw = &text[pair.value.0..pair.value.1];
            let quoted = raw.starts_with('"');
            let (vs, ve) = pair.value;
            if let Some((_, f)) = TIME_KEYS.iter().find(|(k, _)| *k == key) {
                if raw_number(raw).is_some() {
                    b.hole(vs, ve, f.clone(), quoted, 0);
                }
            } else if let Some((unit, summary)) = rate_key(key) {
                if let Some(v) = raw_number(raw) {
                    b.hole(
                        vs,
                        ve,
                        rate_field(v, unit, summary, opts),
                        quoted,
                        decimals_of(raw),
                    );
                }
            } else if let Some(f) = hashing_flag(key).filter(|_| quoted) {
                b.hole(vs, ve, f, true, 0);
            } else if matches!(key, "MAC" | "MACAddr" | "mac" | "miner_id") {
                if let Some(style) = raw_string(raw).and_then(MacStyle::detect) {
                    b.hole(vs, ve, Field::Mac(style), true, 0);
                }
            } else if opts.pools && quoted && matches!(key, "URL" | "url") {
                b.hole(vs, ve, Field::PoolUrl(urls), true, 0);
                urls += 1;
            } else if opts.pools && quoted && matches!(key, "User" | "account") {
                b.hole(vs, ve, Field::PoolUser(users), true, 0);
                users += 1;
            } else if key.starts_with("MM ID") && quoted {
                mm_holes(&mut b, vs + 1, ve.saturating_sub(1), opts);
            }
        }
        b.parts.push(Part::Lit(text[b.pos..].to_string()));
        Template { parts: b.parts }
    }

    /// Appends the reply text with the live values to `out`.
    pub fn render(&self, live: &Live<'_>, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Hole {
                    field,
                    quoted,
                    decimals,
                } => {
                    if *quoted {
                        out.push('"');
                    }
                    render_field(field, *decimals, live, out);
                    if *quoted {
                        out.push('"');
                    }
                }
            }
        }
    }

    /// The template rendered with `live` (handy for synthesized replies and tests).
    pub fn render_string(&self, live: &Live<'_>) -> String {
        let mut s = String::new();
        self.render(live, &mut s);
        s
    }
}

fn render_field(field: &Field, decimals: usize, live: &Live<'_>, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = match field {
        Field::When | Field::LastGetwork => write!(out, "{}", live.when),
        Field::Elapsed => write!(out, "{}", live.elapsed),
        Field::Rate { base } => write!(out, "{:.*}", decimals, base * live.factor),
        Field::Mac(style) => {
            out.push_str(&style.format(live.mac));
            Ok(())
        }
        Field::Flag { of, on, off } => {
            let v = match of {
                FlagOf::Hashing => live.hashing,
                FlagOf::Led => live.led,
            };
            out.push_str(if v { on } else { off });
            Ok(())
        }
        Field::PoolUrl(i) | Field::PoolUser(i) => {
            if let Some((url, user)) = live.pools.get(*i) {
                let v = if matches!(field, Field::PoolUrl(_)) {
                    url
                } else {
                    user
                };
                // The value sits inside quotes: escape it as JSON string contents.
                let quoted = serde_json::to_string(v).unwrap_or_default();
                out.push_str(quoted.trim_matches('"'));
            }
            Ok(())
        }
    };
}

/// Holes inside an Avalon `MM ID` string (`text[start..end]` = the string contents): the
/// `Key[value]` tokens that change with time and state.
fn mm_holes(b: &mut Builder<'_>, start: usize, end: usize, opts: &ParseOpts) {
    let bytes = b.text.as_bytes();
    let mut i = start;
    while i < end {
        if bytes[i] != b'[' {
            i += 1;
            continue;
        }
        let mut k = i;
        while k > start && (bytes[k - 1].is_ascii_alphanumeric() || bytes[k - 1] == b'_') {
            k -= 1;
        }
        let name = &b.text[k..i];
        let Some(close) = b.text[i..end].find(']').map(|c| i + c) else {
            return;
        };
        let (vs, ve) = (i + 1, close);
        let inner = &b.text[vs..ve];
        match name {
            "Elapsed" if inner.parse::<i64>().is_ok() => b.hole(vs, ve, Field::Elapsed, false, 0),
            "GHSspd" => {
                if let Ok(v) = inner.trim().parse::<f64>() {
                    let f = rate_field(v, 1.0, true, opts);
                    b.hole(vs, ve, f, false, decimals_of(inner.trim()));
                }
            }
            "MGHS" => {
                // One hole per board value, the spacing between them kept literally.
                let mut off = vs;
                for tok in inner.split(' ') {
                    if let Ok(v) = tok.parse::<f64>() {
                        let f = rate_field(v, 1.0, false, opts);
                        b.hole(off, off + tok.len(), f, false, decimals_of(tok));
                    }
                    off += tok.len() + 1;
                }
            }
            "SoftOFF" => b.hole(
                vs,
                ve,
                Field::Flag {
                    of: FlagOf::Hashing,
                    on: "0",
                    off: "4",
                },
                false,
                0,
            ),
            "Led" => b.hole(
                vs,
                ve,
                Field::Flag {
                    of: FlagOf::Led,
                    on: "1",
                    off: "0",
                },
                false,
                0,
            ),
            "SYSTEMSTATU" => {
                for word in ["In Work", "In Idle"] {
                    if let Some(p) = inner.find(word) {
                        let f = Field::Flag {
                            of: FlagOf::Hashing,
                            on: "In Work",
                            off: "In Idle",
                        };
                        b.hole(vs + p, vs + p + word.len(), f, false, 0);
                        break;
                    }
                }
            }
            _ => {}
        }
        i = close + 1;
    }
}

/// Rounds `v` to `decimals` places the way the reply prints it.
pub(crate) fn round_to(v: f64, decimals: usize) -> f64 {
    format!("{v:.decimals$}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live<'static> {
        Live {
            factor: 0.5,
            ..Live::fixed(1_800_000_000, 42)
        }
    }

    #[test]
    fn substitutes_live_fields_and_keeps_types() {
        let t = Template::parse(
            r#"{"STATUS":[{"STATUS":"S","When":1526315502,"Code":70}],"STATS":[{"Elapsed":253447,"GHS 5s":"54997.01","GHS av":54512.07,"chain_rate1":"","chain_rate2":"10.00"}],"id":1}"#,
        );
        assert_eq!(
            t.render_string(&live()),
            r#"{"STATUS":[{"STATUS":"S","When":1800000000,"Code":70}],"STATS":[{"Elapsed":42,"GHS 5s":"27498.51","GHS av":54512.07,"chain_rate1":"","chain_rate2":"5.00"}],"id":1}"#
        );
    }

    #[test]
    fn normalize_fill_mac_flags_and_pools() {
        let opts = ParseOpts {
            normalize_ghs: Some(100.0),
            fill_ghs: None,
            pools: true,
        };
        let t = Template::parse_with(
            r#"{"MHS 5s":1.0,"MHS 1m":2.00,"MAC":"C6:06:12:00:2D:63","miner_id":"62f75eb71046","mineroff":"false","URL":"a","User":"b"}"#,
            &opts,
        );
        let pools = [("stratum+tcp://x:1".to_string(), "w\"1".to_string())];
        let l = Live {
            hashing: false,
            pools: &pools,
            mac: [0xc6, 0x06, 0x12, 0xab, 0xcd, 0xef],
            ..live()
        };
        assert_eq!(
            t.render_string(&l),
            r#"{"MHS 5s":50000.0,"MHS 1m":50000.00,"MAC":"C6:06:12:AB:CD:EF","miner_id":"c60612abcdef","mineroff":"true","URL":"stratum+tcp://x:1","User":"w\"1"}"#
        );
        let fill = ParseOpts {
            fill_ghs: Some(10.0),
            ..ParseOpts::default()
        };
        let t = Template::parse_with(r#"{"MHS 5s":0.0,"MHS av":0.0}"#, &fill);
        assert_eq!(
            t.render_string(&Live::fixed(1, 1)),
            r#"{"MHS 5s":10000.0,"MHS av":0.0}"#
        );
    }

    #[test]
    fn avalon_mm_tokens() {
        let t = Template::parse(
            r#"{"MM ID0":"Ver[1] SYSTEMSTATU[Work: In Idle, Hash Board: 3 ] Elapsed[975] GHSspd[199241.07] Led[0] MGHS[59459.52 61407.83] SoftOFF[4] Nonce Mask[25]"}"#,
        );
        let on = Live {
            led: true,
            ..Live::fixed(1, 7)
        };
        assert_eq!(
            t.render_string(&on),
            r#"{"MM ID0":"Ver[1] SYSTEMSTATU[Work: In Work, Hash Board: 3 ] Elapsed[7] GHSspd[199241.07] Led[1] MGHS[59459.52 61407.83] SoftOFF[0] Nonce Mask[25]"}"#
        );
        let off = Live {
            hashing: false,
            factor: 0.0,
            ..Live::fixed(1, 7)
        };
        assert_eq!(
            t.render_string(&off),
            r#"{"MM ID0":"Ver[1] SYSTEMSTATU[Work: In Idle, Hash Board: 3 ] Elapsed[7] GHSspd[0.00] Led[0] MGHS[0.00 0.00] SoftOFF[4] Nonce Mask[25]"}"#
        );
    }

    #[test]
    fn malformed_text_stays_malformed() {
        let src = r#"{"STATS":[{"Type":"Antminer S9\nV1.3.58"}{"Elapsed":5,"GHS 5s":"1.00","note":"x }{ \"When\":3"}],"id":1}"#;
        let out = Template::parse(src).render_string(&live());
        assert!(out.contains(r#"V1.3.58"}{"Elapsed":42"#));
        // A key-like text inside a string is not touched.
        assert!(out.contains(r#""note":"x }{ \"When\":3""#));
        let junk = r#"{"STATUS":[{"When":1}],"id":1}"}"#;
        let out = Template::parse(junk).render_string(&live());
        assert_eq!(out, r#"{"STATUS":[{"When":1800000000}],"id":1}"}"#);
    }

    #[test]
    fn pretty_printed_and_device_elapsed() {
        let src =
            "{\n  \"Device Elapsed\": 50474,\n  \"MHS 5s\": 0.0,\n  \"When\": 1755615295\n}\n";
        assert_eq!(
            Template::parse(src).render_string(&live()),
            "{\n  \"Device Elapsed\": 42,\n  \"MHS 5s\": 0.0,\n  \"When\": 1800000000\n}"
        );
    }

    #[test]
    fn find_helpers() {
        let src = r#"{"a":"x","GHS av":14252.76,"chain_hw1":3,"chain_hw2":4,"s":"chain_hw3"}"#;
        assert_eq!(find_raw(src, "GHS av"), Some("14252.76"));
        assert_eq!(find_raw(src, "a").and_then(raw_string), Some("x"));
        let hw: f64 = find_all(src, |k| k.starts_with("chain_hw"))
            .iter()
            .filter_map(|(_, v)| raw_number(v))
            .sum();
        assert_eq!(hw, 7.0);
        assert_eq!(round_to(1.005_f64 * 100.0, 2), 100.5);
        assert_eq!(
            MacStyle::detect("aa:bb:cc:dd:ee:0f"),
            Some(MacStyle::LowerColon)
        );
        assert_eq!(MacStyle::detect("123456789012"), Some(MacStyle::LowerHex));
        assert_eq!(MacStyle::detect("80a1b2c3d4e5f607"), None);
        assert_eq!(
            MacStyle::parse("AA:BB:CC:DD:EE:0F"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
        );
    }
}
