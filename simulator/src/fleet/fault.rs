//! Per-miner faults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

pub use super::malform::Malform;

/// Default delay before the first byte of a `slow` miner's reply.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(3);
/// Interval between bytes of a `drip` miner's reply.
pub const DRIP_INTERVAL: Duration = Duration::from_secs(2);
/// Default chunk of a `split` reply, bytes.
pub const DEFAULT_SPLIT_CHUNK: u16 = 100;
/// Default pause between the chunks of a `split` reply.
pub const DEFAULT_SPLIT_DELAY: Duration = Duration::from_millis(50);
/// What a `socket-text` miner sends instead of JSON (seen when the process behind 4028 is down).
pub const SOCKET_FAILED_TEXT: &str = "Socket connect failed: Connection refused\n";

/// How a simulated miner misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Answers normally.
    #[default]
    None,
    /// Accepts, reads the request, never replies, holds the socket until the client closes.
    Hang,
    /// Sends the reply only after this delay (a slow first byte).
    Slow(Duration),
    /// Sends the reply one byte every 2 s.
    Drip,
    /// Reads the request and closes without a reply.
    Close,
    /// Listener closed: connecting is refused.
    Refuse,
    /// Replies with random non-JSON bytes and a NUL.
    Garbage,
    /// Replies with one of the defects real firmwares send.
    Malformed(Malform),
    /// Writes the reply in `chunk`-byte pieces, `delay_ms` apart.
    Split { chunk: u16, delay_ms: u32 },
    /// Replies with the text `Socket connect failed: Connection refused\n` and closes.
    SocketText,
}

impl Fault {
    /// Fault name as used on the CLI and in the admin API.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Hang => "hang",
            Fault::Slow(_) => "slow",
            Fault::Drip => "drip",
            Fault::Close => "close",
            Fault::Refuse => "refuse",
            Fault::Garbage => "garbage",
            Fault::Malformed(m) => m.name(),
            Fault::Split { .. } => "split",
            Fault::SocketText => "socket-text",
        }
    }

    /// Builds a fault from its name; `slow` takes `delay` (default 3 s).
    pub fn from_name(name: &str, delay: Option<Duration>) -> Result<Fault, String> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Fault::None,
            "hang" => Fault::Hang,
            "slow" => Fault::Slow(delay.unwrap_or(DEFAULT_SLOW_DELAY)),
            "drip" => Fault::Drip,
            "close" => Fault::Close,
            "refuse" => Fault::Refuse,
            "garbage" => Fault::Garbage,
            "split" => Fault::Split {
                chunk: DEFAULT_SPLIT_CHUNK,
                delay_ms: delay.unwrap_or(DEFAULT_SPLIT_DELAY).as_millis() as u32,
            },
            "socket-text" | "socket_text" | "refused-text" => Fault::SocketText,
            other => match Malform::from_name(other) {
                Some(m) => Fault::Malformed(m),
                None => {
                    return Err(format!(
                        "unknown fault '{other}' (expected none, hang, slow, drip, close, refuse, \
                         garbage, split, socket-text, missing-comma, nan, junk, escape, newline)"
                    ))
                }
            },
        })
    }

    /// `split` with its own chunk size and pause.
    pub fn split(chunk: u16, delay: Duration) -> Fault {
        Fault::Split {
            chunk: chunk.max(1),
            delay_ms: u32::try_from(delay.as_millis()).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Slow(d) => write!(f, "slow:{}", d.as_secs_f64()),
            Fault::Split { chunk, delay_ms } => {
                write!(f, "split:{chunk}:{}", f64::from(*delay_ms) / 1000.0)
            }
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// `hang`, `slow`, `slow:2.5` (seconds), `split:100:0.05` (bytes, seconds), ...
    fn from_str(s: &str) -> Result<Fault, String> {
        if let Some(rest) = s.trim().strip_prefix("split:") {
            let (chunk, secs) = rest.split_once(':').unwrap_or((rest, "0.05"));
            let chunk: u16 = chunk
                .trim()
                .parse()
                .map_err(|_| format!("split chunk must be 1..65535 bytes, got '{chunk}'"))?;
            return Ok(Fault::split(chunk, parse_secs(secs)?));
        }
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let delay = match arg {
            Some(a) => Some(parse_secs(a)?),
            None => None,
        };
        Fault::from_name(name, delay)
    }
}

/// Parses seconds (`3`, `0.5`) into a duration.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid number of seconds '{s}'"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("seconds out of range: {s}"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses `hang=2,refuse=1,slow=1` (`slow` gets `slow_delay`; `slow:SECS=N` sets its own).
pub fn parse_fault_counts(spec: &str, slow_delay: Duration) -> anyhow::Result<Vec<(Fault, usize)>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, n) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("fault '{item}': expected NAME=COUNT"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("fault '{item}': COUNT must be a whole number"))?;
        let mut fault: Fault = name.parse().map_err(anyhow::Error::msg)?;
        if fault == Fault::Slow(DEFAULT_SLOW_DELAY) && !name.contains(':') {
            fault = Fault::Slow(slow_delay);
        }
        out.push((fault, n));
    }
    Ok(out)
}

/// Random bytes that are not JSON: no NUL inside, never starting with `{` or `[`.
pub(crate) fn garbage_bytes() -> Vec<u8> {
    let mut rng = rand::rng();
    let len = rng.random_range(16..512);
    let mut v: Vec<u8> = (0..len).map(|_| rng.random_range(1..=255u8)).collect();
    // A first byte that can start no JSON value.
    const STARTS: &[u8] = b"#@!%~<*^";
    v[0] = STARTS[rng.random_range(0..STARTS.len())];
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_faults() {
        assert_eq!("hang".parse::<Fault>(), Ok(Fault::Hang));
        assert_eq!(
            "slow:0.5".parse::<Fault>(),
            Ok(Fault::Slow(Duration::from_millis(500)))
        );
        assert!("melt".parse::<Fault>().is_err());
        assert_eq!(
            "split:10:0.2".parse::<Fault>(),
            Ok(Fault::Split {
                chunk: 10,
                delay_ms: 200
            })
        );
        assert_eq!(
            Fault::split(10, Duration::from_millis(200)).to_string(),
            "split:10:0.2"
        );
        assert_eq!("nan".parse::<Fault>(), Ok(Fault::Malformed(Malform::Nan)));
        assert_eq!("socket-text".parse::<Fault>(), Ok(Fault::SocketText));
        let v = parse_fault_counts("hang=2, refuse=1,slow=1", Duration::from_secs(7)).unwrap();
        assert_eq!(
            v,
            vec![
                (Fault::Hang, 2),
                (Fault::Refuse, 1),
                (Fault::Slow(Duration::from_secs(7)), 1)
            ]
        );
        assert!(parse_fault_counts("hang", DEFAULT_SLOW_DELAY).is_err());
    }

    #[test]
    fn garbage_is_not_json() {
        for _ in 0..50 {
            let g = garbage_bytes();
            assert!(!g.contains(&0));
            assert!(serde_json::from_slice::<serde_json::Value>(&g).is_err());
        }
    }
}
