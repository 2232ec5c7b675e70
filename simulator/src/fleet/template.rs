//! Reply templates: fixture text with a few live fields punched out.
//!
//! The fixture text is scanned once, string-aware but without parsing it as JSON, so malformed
//! fixtures (`}{` between objects, trailing junk) stay byte-for-byte malformed. Only the values
//! of a handful of known keys are replaced on every reply: `When`, `Elapsed`, `Device Elapsed`,
//! `Last getwork` and the realtime hashrate `GHS 5s`.

use std::fmt::Write as _;

/// A live field substituted into the fixture text on every reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `When`: the reply time (unix seconds).
    When,
    /// `Elapsed` / `Device Elapsed`: seconds since the simulated boot.
    Elapsed,
    /// `Last getwork`: unix seconds, same as `When`.
    LastGetwork,
    /// `GHS 5s`: realtime hashrate, jittered per reply.
    Ghs5s,
}

const KEYS: &[(&str, Field)] = &[
    ("When", Field::When),
    ("Elapsed", Field::Elapsed),
    ("Device Elapsed", Field::Elapsed),
    ("Last getwork", Field::LastGetwork),
    ("GHS 5s", Field::Ghs5s),
];

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
pub(crate) struct Live {
    pub when: i64,
    pub elapsed: i64,
    pub ghs: f64,
}

/// A fixture reply split into literal text and live-field holes.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// The fixture's own `GHS 5s` value (first occurrence) and its number of decimals.
    pub ghs: Option<(f64, usize)>,
}

impl Template {
    /// Builds a template from fixture text. Trailing whitespace is dropped (re-serialized
    /// fixtures end with a newline a miner would not send); everything else is kept.
    pub fn parse(text: &str) -> Template {
        let text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        let mut parts = Vec::new();
        let mut ghs = None;
        let mut pos = 0;
        for pair in scan_pairs(text) {
            let key = &text[pair.key.0..pair.key.1];
            let Some(&(_, field)) = KEYS.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            let raw = &text[pair.value.0..pair.value.1];
            let Some(value) = raw_number(raw) else {
                continue;
            };
            let quoted = raw.starts_with('"');
            let inner = raw.trim_matches('"');
            let decimals = inner.split_once('.').map_or(0, |(_, d)| d.len());
            if field == Field::Ghs5s && ghs.is_none() {
                ghs = Some((value, decimals));
            }
            parts.push(Part::Lit(text[pos..pair.value.0].to_string()));
            parts.push(Part::Hole {
                field,
                quoted,
                decimals,
            });
            pos = pair.value.1;
        }
        parts.push(Part::Lit(text[pos..].to_string()));
        Template { parts, ghs }
    }

    /// Appends the reply text with the live values to `out`.
    pub fn render(&self, live: &Live, out: &mut String) {
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
                    // Writing to a String cannot fail.
                    let _ = match field {
                        Field::When | Field::LastGetwork => write!(out, "{}", live.when),
                        Field::Elapsed => write!(out, "{}", live.elapsed),
                        Field::Ghs5s => write!(out, "{:.*}", *decimals, live.ghs),
                    };
                    if *quoted {
                        out.push('"');
                    }
                }
            }
        }
    }
}

/// Rounds `v` to `decimals` places the way the reply prints it.
pub(crate) fn round_to(v: f64, decimals: usize) -> f64 {
    format!("{v:.decimals$}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: Live = Live {
        when: 1_800_000_000,
        elapsed: 42,
        ghs: 12345.678,
    };

    #[test]
    fn substitutes_live_fields_and_keeps_types() {
        let t = Template::parse(
            r#"{"STATUS":[{"STATUS":"S","When":1526315502,"Code":70}],"STATS":[{"Elapsed":253447,"GHS 5s":"54997.01","GHS av":54512.07}],"id":1}"#,
        );
        let mut out = String::new();
        t.render(&LIVE, &mut out);
        assert_eq!(
            out,
            r#"{"STATUS":[{"STATUS":"S","When":1800000000,"Code":70}],"STATS":[{"Elapsed":42,"GHS 5s":"12345.68","GHS av":54512.07}],"id":1}"#
        );
        assert_eq!(t.ghs, Some((54997.01, 2)));
    }

    #[test]
    fn malformed_text_stays_malformed() {
        let src = r#"{"STATS":[{"Type":"Antminer S9\nV1.3.58"}{"Elapsed":5,"GHS 5s":"1.00","note":"x }{ \"When\":3"}],"id":1}"#;
        let t = Template::parse(src);
        let mut out = String::new();
        t.render(&LIVE, &mut out);
        assert!(out.contains(r#"V1.3.58"}{"Elapsed":42"#));
        // A key-like text inside a string is not touched.
        assert!(out.contains(r#""note":"x }{ \"When\":3""#));
        let junk = r#"{"STATUS":[{"When":1}],"id":1}"}"#;
        let mut out = String::new();
        Template::parse(junk).render(&LIVE, &mut out);
        assert_eq!(out, r#"{"STATUS":[{"When":1800000000}],"id":1}"}"#);
    }

    #[test]
    fn pretty_printed_and_device_elapsed() {
        let src =
            "{\n  \"Device Elapsed\": 50474,\n  \"MHS 5s\": 0.0,\n  \"When\": 1755615295\n}\n";
        let mut out = String::new();
        Template::parse(src).render(&LIVE, &mut out);
        assert_eq!(
            out,
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
    }
}
