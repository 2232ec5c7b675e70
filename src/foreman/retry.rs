//! Retry policy for the uplink: exponential backoff with full jitter, and `Retry-After`
//! honoured as a lower bound (capped, so a hostile header cannot park us for days).

use std::time::Duration;

use rand::Rng;

/// Longest `Retry-After` we obey.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Exponential backoff with full jitter: attempt n waits uniformly in [min, min·2ⁿ] capped
/// at `max`, so agents behind one NAT do not retry in lockstep. Never 0.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min: min.max(Duration::from_millis(10)),
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .min
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .max(self.min);
        let jittered = rand::rng().random_range(self.min..=ceiling);
        match retry_after {
            Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date. Unparseable or zero gives `None`, so
/// the caller's own backoff applies (never a retry at 0 s).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return (secs > 0).then(|| Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - now;
    delta.to_std().ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backoff_grows_within_bounds_and_never_zero() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut ceilings = Vec::new();
        for n in 0..12 {
            let d = b.next_delay(None);
            let ceiling = Duration::from_secs(1u64 << n).min(Duration::from_secs(300));
            assert!(
                d >= Duration::from_secs(1) && d <= ceiling,
                "attempt {n}: {d:?}"
            );
            ceilings.push(ceiling);
        }
        assert_eq!(b.failures(), 12);
        b.reset();
        assert!(b.next_delay(None) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_a_floor_and_capped() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(2));
        assert!(b.next_delay(Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("abc", now), None);
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 11:00:00 GMT", now),
            None
        );
    }
}
