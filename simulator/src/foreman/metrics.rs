//! Decoding and validating a metrics upload body (protocol §3).

use std::io::Read;

use chrono::DateTime;
use serde_json::Value;

use super::state::Incoming;

/// Largest body accepted after decompression.
pub(crate) const MAX_BODY: usize = 256 << 20;

/// Decodes the body according to `Content-Encoding` (identity or gzip).
pub(crate) fn decode(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(body.to_vec()),
        Some(e) if e.is_empty() || e == "identity" => Ok(body.to_vec()),
        Some(e) if e == "gzip" || e == "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("invalid gzip body: {e}"))?;
            if out.len() > MAX_BODY {
                return Err("body too large after decompression".into());
            }
            Ok(out)
        }
        Some(e) => Err(format!("unsupported Content-Encoding '{e}'")),
    }
}

/// Checks `yyyy-MM-ddTHH:mm:ss.SSS±HHMM` and returns the instant in UTC ms.
pub fn parse_timestamp(ts: &str) -> Result<i64, String> {
    let b = ts.as_bytes();
    let shape_ok = b.len() == 28
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'+' || c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!(
            "metadata.timestamp '{ts}' is not yyyy-MM-ddTHH:mm:ss.SSS±HHMM"
        ));
    }
    DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("metadata.timestamp '{ts}' is not a valid time: {e}"))
}

fn decimal_string(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()))
}

/// Validates a metrics body; returns its samples and `metadata.timestamp`.
pub(crate) fn validate(body: &[u8]) -> Result<Vec<Incoming>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let meta = v
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or("missing object 'metadata'")?;
    let ts = meta
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or("missing string 'metadata.timestamp'")?;
    let ts_ms = parse_timestamp(ts)?;
    match meta.get("apiVersion").and_then(Value::as_str) {
        Some("1.0.0") => {}
        Some(other) => return Err(format!("unsupported metadata.apiVersion '{other}'")),
        None => return Err("missing string 'metadata.apiVersion'".into()),
    }
    let miners = v
        .get("miners")
        .and_then(Value::as_array)
        .ok_or("missing array 'miners'")?;
    if miners.is_empty() {
        return Err("'miners' is empty".into());
    }
    let mut out = Vec::with_capacity(miners.len());
    for (i, m) in miners.iter().enumerate() {
        let ip = m
            .get("apiIp")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("miners[{i}]: missing non-empty string 'apiIp'"))?;
        let port = m
            .get("apiPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("miners[{i}]: 'apiPort' must be an integer 0..65535"))?;
        let hr = m
            .get("asics")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|a| a.get("hashRate"))
            .ok_or_else(|| format!("miners[{i}]: missing 'asics[0].hashRate'"))?;
        let hash_rate = match hr {
            Value::String(s) if decimal_string(s) => s.clone(),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) => {
                n.to_string()
            }
            other => {
                return Err(format!(
                    "miners[{i}]: 'asics[0].hashRate' must be a non-negative decimal string, got {other}"
                ))
            }
        };
        out.push(Incoming {
            ip: ip.to_string(),
            port,
            timestamp: ts.to_string(),
            ts_ms,
            hash_rate,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2026-12-03T07:19:27.753-0500").unwrap(),
            parse_timestamp("2026-12-03T12:19:27.753+0000").unwrap()
        );
        for bad in [
            "2026-12-03T07:19:27.753Z",
            "2026-12-03T07:19:27.753-05:00",
            "2026-12-03T07:19:27-0500",
            "2026-13-03T07:19:27.753-0500",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies() {
        let ok = br#"{"metadata":{"timestamp":"2026-12-03T07:19:27.753-0500","apiVersion":"1.0.0"},
            "miners":[{"apiIp":"127.1.0.1","apiPort":4028,"asics":[{"hashRate":"54997010000000.0000000000"}]},
                      {"apiIp":"127.1.0.2","apiPort":4028,"asics":[{"hashRate":1.5e13}]}]}"#;
        let v = validate(ok).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].hash_rate, "54997010000000.0000000000");
        for bad in [
            &br#"{"metadata":{"timestamp":"2026-12-03T07:19:27.753-0500","apiVersion":"1.0.0"},"miners":[]}"#[..],
            br#"{"metadata":{"timestamp":"2026-12-03T07:19:27.753-0500","apiVersion":"1.0.0"},"miners":[{"apiIp":"x","apiPort":4028,"asics":[{"hashRate":"1e5"}]}]}"#,
            br#"{"metadata":{"timestamp":"2026-12-03T07:19:27.753-0500","apiVersion":"1.0.0"},"miners":[{"apiIp":"","apiPort":4028,"asics":[{"hashRate":"1"}]}]}"#,
            br#"{"metadata":{"timestamp":"2026-12-03T07:19:27.753-0500","apiVersion":"1.0.0"},"miners":[{"apiIp":"x","asics":[{"hashRate":"1"}]}]}"#,
            br#"{"miners":[{"apiIp":"x","apiPort":1,"asics":[{"hashRate":"1"}]}]}"#,
            b"not json",
        ] {
            assert!(validate(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
