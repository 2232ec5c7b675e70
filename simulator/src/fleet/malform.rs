//! Malformed-reply faults: each turns a well-formed reply into one of the defects real
//! firmwares send (reference/miner-dialects.md §10), applied string-aware to the reply text.

use std::fmt;

use super::template::scan_pairs;

/// A defect seen in real replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malform {
    /// `}{` between two objects of an array (bmminer/cgminer 4.9-4.10 `stats`).
    MissingComma,
    /// A bare `nan` for a rate (Avalon `summary` right after boot).
    Nan,
    /// Junk after the object (`...,"id":1}"}`, S9k `version`).
    TrailingJunk,
    /// An invalid `\'` escape inside a string (Whatsminer 2020 `Firmware Version`).
    BadEscape,
    /// A raw line feed inside a string (StrongU pools, Avalon setpool).
    RawNewline,
}

impl Malform {
    pub const ALL: [Malform; 5] = [
        Malform::MissingComma,
        Malform::Nan,
        Malform::TrailingJunk,
        Malform::BadEscape,
        Malform::RawNewline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Malform::MissingComma => "missing-comma",
            Malform::Nan => "nan",
            Malform::TrailingJunk => "junk",
            Malform::BadEscape => "escape",
            Malform::RawNewline => "newline",
        }
    }

    pub fn from_name(s: &str) -> Option<Malform> {
        Some(match s {
            "missing-comma" | "missing_comma" | "comma" => Malform::MissingComma,
            "nan" => Malform::Nan,
            "junk" | "trailing-junk" | "trailing_junk" => Malform::TrailingJunk,
            "escape" | "bad-escape" | "bad_escape" => Malform::BadEscape,
            "newline" | "raw-newline" | "raw_newline" => Malform::RawNewline,
            _ => return None,
        })
    }

    /// Applies the defect to `text` (a reply without its terminator).
    pub(crate) fn apply(self, text: &str) -> String {
        match self {
            Malform::MissingComma => missing_comma(text),
            Malform::Nan => nan(text),
            Malform::TrailingJunk => format!("{text}\"}}"),
            Malform::BadEscape => bad_escape(text),
            Malform::RawNewline => raw_newline(text),
        }
    }
}

impl fmt::Display for Malform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Byte offsets outside string literals where `}` is followed (after whitespace) by `,` and
/// then `{`: the first such gap in a `STATS` array if there is one, else the first anywhere.
fn missing_comma(text: &str) -> String {
    let b = text.as_bytes();
    let mut in_str = false;
    let mut esc = false;
    let mut first = None;
    let stats_at = text.find("\"STATS\"");
    for i in 0..b.len() {
        let c = b[i];
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
        if c == b'"' {
            in_str = true;
            continue;
        }
        if c != b'}' {
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b',' {
            continue;
        }
        let mut k = j + 1;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if k < b.len() && b[k] == b'{' {
            if stats_at.is_some_and(|s| i > s) {
                return format!("{}}}{}", &text[..i], &text[k..]);
            }
            first.get_or_insert((i, k));
        }
    }
    match first {
        Some((i, k)) => format!("{}}}{}", &text[..i], &text[k..]),
        None => text.to_string(),
    }
}

/// The value of the first rate key becomes a bare `nan`.
fn nan(text: &str) -> String {
    const KEYS: &[&str] = &["MHS av", "GHS av", "MHS 5s", "GHS 5s", "MHS 1m", "HS RT"];
    let pairs = scan_pairs(text);
    for key in KEYS {
        if let Some(p) = pairs.iter().find(|p| &text[p.key.0..p.key.1] == *key) {
            return format!("{}nan{}", &text[..p.value.0], &text[p.value.1..]);
        }
    }
    text.to_string()
}

/// A string value with `'` gets them escaped as `\'`; else the first `Msg` string is quoted
/// that way.
fn bad_escape(text: &str) -> String {
    let pairs = scan_pairs(text);
    if let Some(p) = pairs
        .iter()
        .find(|p| text[p.value.0..p.value.1].starts_with("\"'") && p.value.1 - p.value.0 > 3)
    {
        let inner = &text[p.value.0 + 1..p.value.1 - 1];
        return format!(
            "{}\"{}\"{}",
            &text[..p.value.0],
            inner.replace('\'', "\\'"),
            &text[p.value.1..]
        );
    }
    match first_string(text, &pairs, &["Msg", "Description"]) {
        Some((s, e)) => format!("{}\\'{}\\'{}", &text[..s], &text[s..e], &text[e..]),
        None => text.to_string(),
    }
}

/// A raw line feed at the end of the first `Msg` (or `Description`, or any) string.
fn raw_newline(text: &str) -> String {
    let pairs = scan_pairs(text);
    match first_string(text, &pairs, &["Msg", "Description"]) {
        Some((_, e)) => format!("{}\n{}", &text[..e], &text[e..]),
        None => text.to_string(),
    }
}

/// Contents range of the first string value of one of `keys`, else of any key.
fn first_string(
    text: &str,
    pairs: &[super::template::Pair],
    keys: &[&str],
) -> Option<(usize, usize)> {
    let is_str = |p: &&super::template::Pair| text[p.value.0..p.value.1].starts_with('"');
    keys.iter()
        .find_map(|k| {
            pairs
                .iter()
                .filter(is_str)
                .find(|p| &text[p.key.0..p.key.1] == *k)
        })
        .or_else(|| pairs.iter().find(is_str))
        .map(|p| (p.value.0 + 1, p.value.1.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"STATUS":[{"STATUS":"S","Msg":"BMMiner stats"}],"STATS":[{"Type":"Antminer S9","note":"},{"},{"GHS 5s":"1.0","GHS av":2.0}],"id":1}"#;

    #[test]
    fn each_defect_breaks_strict_json_the_known_way() {
        let ok = |s: &str| serde_json::from_str::<serde_json::Value>(s).is_ok();
        assert!(ok(STATS));
        let s = Malform::MissingComma.apply(STATS);
        assert!(s.contains(r#""note":"},{"}{"GHS 5s""#), "{s}");
        assert!(!ok(&s));
        let s = Malform::Nan.apply(STATS);
        assert!(s.contains(r#""GHS av":nan}"#), "{s}");
        let s = Malform::TrailingJunk.apply(STATS);
        assert!(s.ends_with(r#""id":1}"}"#));
        let s = Malform::BadEscape.apply(STATS);
        assert!(s.contains(r#""Msg":"\'BMMiner stats\'""#), "{s}");
        let wm = r#"{"Firmware Version":"'20200917.22.REL'"}"#;
        assert_eq!(
            Malform::BadEscape.apply(wm),
            r#"{"Firmware Version":"\'20200917.22.REL\'"}"#
        );
        let s = Malform::RawNewline.apply(STATS);
        assert!(s.contains("\"Msg\":\"BMMiner stats\n\""), "{s}");
        for m in Malform::ALL {
            assert!(!ok(&m.apply(STATS)), "{m}");
            assert_eq!(Malform::from_name(m.name()), Some(m));
        }
    }
}
