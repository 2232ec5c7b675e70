//! Hiveon (and mskminer, built on the same `rwglr` bmminer fork) on Antminer hardware: the
//! stock Antminer replies (`version`, `summary`, `pools`, `stats`, with the S9's chains 6..8
//! and its `}{` defect), read by [`antminer::read`], with the firmware's own model spelling:
//! `"Antminer S19JPRO Hiveon"` is an S19j Pro running Hiveon (C-16).

use super::{antminer, Replies};
use crate::miner::reply::field_str;
use crate::model::{FirmwareKind, MinerStats};

pub fn normalize(r: &Replies) -> MinerStats {
    let mut s = antminer::read(r);
    let ty = antminer::version_block(r)
        .and_then(|v| field_str(v, "Type"))
        .unwrap_or("");
    let hiveon = ty.to_ascii_lowercase().contains("hiveon");
    if let Some(model) = s.identity.model.take() {
        let trimmed = strip_suffix_ignore_case(&model, "hiveon");
        // mskminer: "S19-88 v.2.6.0.39" (no maker, a version tail).
        let first = trimmed.split(" v.").next().unwrap_or("").trim();
        s.identity.model = Some(canonical_model(first)).filter(|m| !m.is_empty());
    }
    s.identity.firmware_kind = Some(if hiveon {
        FirmwareKind::Hiveon
    } else {
        FirmwareKind::Mskminer
    });
    s
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> &'a str {
    let t = s.trim_end();
    match t
        .len()
        .checked_sub(suffix.len())
        .and_then(|i| t.get(i..).map(|tail| (i, tail)))
    {
        Some((i, tail)) if tail.eq_ignore_ascii_case(suffix) => t[..i].trim_end(),
        _ => t,
    }
}

/// Bitmain's spelling of a model written in capitals without spaces: "S19JPRO" → "S19j Pro",
/// "S19XP" → "S19 XP", "T19PRO" → "T19 Pro". A name that already has spaces or lower case is
/// kept as it is.
pub fn canonical_model(m: &str) -> String {
    let m = m.trim();
    if m.contains(' ') || m.chars().any(|c| c.is_ascii_lowercase()) {
        return m.to_string();
    }
    let series_end = m
        .char_indices()
        .skip_while(|(_, c)| c.is_ascii_alphabetic())
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(m.len(), |(i, _)| i);
    let (series, mut rest) = m.split_at(series_end);
    let mut out = series.to_string();
    // A one-letter variant right after the digits: j, k, i (S19j, S19k, S19i).
    if let Some(v) = rest.chars().next().filter(|c| matches!(c, 'J' | 'K' | 'I')) {
        if !rest.starts_with("I ") {
            out.push(v.to_ascii_lowercase());
            rest = &rest[1..];
        }
    }
    for word in ["PRO", "XP", "HYD", "PLUS", "+"] {
        if let Some(tail) = rest.strip_prefix(word) {
            let pretty = match word {
                "PRO" => " Pro",
                "XP" => " XP",
                "HYD" => " Hyd",
                "PLUS" | "+" => "+",
                _ => "",
            };
            out.push_str(pretty);
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_spelling() {
        assert_eq!(canonical_model("S19JPRO"), "S19j Pro");
        assert_eq!(canonical_model("S19XP"), "S19 XP");
        assert_eq!(canonical_model("S19PRO"), "S19 Pro");
        assert_eq!(canonical_model("S9"), "S9");
        assert_eq!(canonical_model("S19KPRO"), "S19k Pro");
        assert_eq!(canonical_model("S9 Pro"), "S9 Pro");
        assert_eq!(canonical_model("S19-88"), "S19-88");
        assert_eq!(canonical_model(""), "");
        assert_eq!(
            strip_suffix_ignore_case("S19JPRO Hiveon", "hiveon"),
            "S19JPRO"
        );
        assert_eq!(strip_suffix_ignore_case("S9", "hiveon"), "S9");
    }
}
