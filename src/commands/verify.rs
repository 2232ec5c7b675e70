//! Watching a miner for the effect of a command, without ever re-sending it (C-19): a reboot
//! is done when the miner's uptime restarted; power-down when its hashrate is zero; power-up
//! when it hashes; a pool change when it reports the new pools.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::miner::control::{Action, PoolSpec};
use crate::miner::{Limits, MinerMemory};
use crate::model::MinerStats;

/// What the miner looked like before the action.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub family: Option<crate::model::Family>,
    pub uptime: Option<u64>,
    pub hashing: Option<bool>,
}

impl Baseline {
    pub fn of(stats: &MinerStats) -> Baseline {
        Baseline {
            family: stats.family,
            uptime: stats.uptime,
            hashing: hashing(stats),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "family": self.family,
            "uptime": self.uptime,
            "hashing": self.hashing,
        })
    }

    pub fn from_json(v: &Value) -> Baseline {
        Baseline {
            family: serde_json::from_value(v["family"].clone()).ok(),
            uptime: v["uptime"].as_u64(),
            hashing: v["hashing"].as_bool(),
        }
    }
}

/// Hashing now, judged on the realtime rate.
pub fn hashing(stats: &MinerStats) -> Option<bool> {
    stats.is_hashing.or_else(|| stats.hashrate.map(|h| h > 0.0))
}

/// What verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Confirmed(String),
    /// Not (yet) seen.
    Pending,
}

/// Tracks one command's effect across polls.
#[derive(Debug)]
pub struct Watch {
    action: Action,
    baseline: Baseline,
    /// Unix ms when the action was sent.
    sent_ms: i64,
    saw_down: bool,
    memory: MinerMemory,
}

impl Watch {
    pub fn new(action: Action, baseline: Baseline, sent_ms: i64) -> Watch {
        let memory = match baseline.family {
            Some(f) => MinerMemory::default().with_family(f),
            None => MinerMemory::default(),
        };
        Watch {
            action,
            baseline,
            sent_ms,
            saw_down: false,
            memory,
        }
    }

    /// Polls the miner once and judges.
    pub async fn check(&mut self, addr: SocketAddr, timeout: Duration) -> Verdict {
        let limits = Limits {
            connect_timeout: timeout.min(Duration::from_secs(2)),
            read_timeout: timeout,
            max_reply_bytes: 1 << 20,
        };
        let polled = tokio::time::timeout(
            timeout + limits.connect_timeout,
            crate::miner::poll(addr, &mut self.memory, &limits),
        )
        .await;
        match polled {
            Ok(Ok(stats)) => self.judge(&stats, chrono::Utc::now().timestamp_millis()),
            _ => {
                self.saw_down = true;
                Verdict::Pending
            }
        }
    }

    fn judge(&self, stats: &MinerStats, now_ms: i64) -> Verdict {
        match &self.action {
            Action::Reboot => {
                let since_sent = (now_ms - self.sent_ms).max(0) as u64;
                match stats.uptime {
                    // Uptime restarted: lower than before, and no older than the command.
                    Some(u)
                        if u.saturating_mul(1000) <= since_sent + 2000
                            && self.baseline.uptime.is_none_or(|b| u < b) =>
                    {
                        Verdict::Confirmed(format!("miner rebooted (uptime {u} s)"))
                    }
                    None if self.saw_down => {
                        Verdict::Confirmed("miner went away and came back".into())
                    }
                    _ => Verdict::Pending,
                }
            }
            Action::Sleep => match (hashing(stats), stats.hashrate) {
                (Some(false), _) | (_, Some(0.0)) => Verdict::Confirmed("hashrate is zero".into()),
                _ => Verdict::Pending,
            },
            Action::Wake => match hashing(stats) {
                Some(true) => Verdict::Confirmed("miner is hashing".into()),
                _ => Verdict::Pending,
            },
            Action::Pools(wanted) => {
                if pools_match(wanted, stats) {
                    Verdict::Confirmed("miner reports the new pools".into())
                } else {
                    Verdict::Pending
                }
            }
            // No reading tells the power level or the light: accepted is all we can know.
            Action::PowerLevel(_) | Action::Light(_) => Verdict::Confirmed("accepted".into()),
        }
    }
}

/// `stratum+tcp://Pool.Example:3333/` and `pool.example:3333` are the same pool.
fn normalize_url(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    rest.trim_end_matches('/').to_string()
}

fn pools_match(wanted: &[PoolSpec], stats: &MinerStats) -> bool {
    let have: Vec<(String, &str)> = stats
        .pools
        .iter()
        .map(|p| (normalize_url(&p.url), p.user.as_str()))
        .collect();
    wanted.iter().all(|w| {
        let url = normalize_url(&w.url);
        have.iter().any(|(u, user)| *u == url && *user == w.user)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(uptime: Option<u64>, hashrate: Option<f64>) -> MinerStats {
        MinerStats {
            uptime,
            hashrate,
            ..Default::default()
        }
    }

    #[test]
    fn reboot_needs_a_fresh_uptime() {
        let base = Baseline {
            uptime: Some(5000),
            ..Default::default()
        };
        let w = Watch::new(Action::Reboot, base, 1_000_000);
        // Still the old uptime: not rebooted.
        assert_eq!(
            w.judge(&stats(Some(5010), None), 1_010_000),
            Verdict::Pending
        );
        // Uptime restarted after the command.
        assert!(matches!(
            w.judge(&stats(Some(3), None), 1_010_000),
            Verdict::Confirmed(_)
        ));
        // An uptime older than the command is not our reboot.
        assert_eq!(
            w.judge(&stats(Some(100), None), 1_010_000),
            Verdict::Pending
        );
    }

    #[test]
    fn sleep_needs_zero_hashrate_and_pools_need_the_new_pools() {
        let w = Watch::new(Action::Sleep, Baseline::default(), 0);
        assert_eq!(w.judge(&stats(None, Some(1e12)), 1), Verdict::Pending);
        assert!(matches!(
            w.judge(&stats(None, Some(0.0)), 1),
            Verdict::Confirmed(_)
        ));
        let wanted = vec![PoolSpec {
            url: "stratum+tcp://pool.example:3333".into(),
            user: "w.1".into(),
            pass: crate::config::Secret::new("x"),
        }];
        let mut s = stats(None, None);
        s.pools.push(crate::model::Pool {
            url: "pool.example:3333/".into(),
            user: "w.1".into(),
            ..Default::default()
        });
        let w = Watch::new(Action::Pools(wanted), Baseline::default(), 0);
        assert!(matches!(w.judge(&s, 1), Verdict::Confirmed(_)));
    }
}
