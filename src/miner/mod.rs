//! Reading a miner over its cgminer-family TCP JSON API (port 4028).
//!
//! One [`poll`] reads one miner: it detects the firmware family (once, then re-checks it on
//! every reply), sends the family's read commands, repairs malformed replies and normalizes them
//! into [`MinerStats`].
//!
//! Round trips are the cost that matters at 10,000 miners per cycle (the poller is CPU-bound in
//! the kernel's TCP stack), so a poll sends *one* joined request (`version+summary+pools+stats`)
//! and falls back to one connection per command, run concurrently, only for firmwares that
//! refuse joins (S19 stock, case C-13). That refusal is remembered in [`MinerMemory`]. The
//! `version` part of the joined reply re-checks the cached family for free; in single-command
//! mode the Antminer `stats` reply carries the same version block.
//!
//! Layout: [`transport`] (framing, bounded reads), [`repair`] (strict parse, then token-aware
//! repair), [`reply`] (status, sections, lenient numbers), [`detect`] (family), [`dialect`]
//! (per-family normalisation), [`pool_url`] (pool URL parts).

pub mod detect;
pub mod dialect;
pub mod pool_url;
pub mod repair;
pub mod reply;
pub mod transport;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;
use tokio::time::Instant;

use crate::model::{Family, MinerStats};
use dialect::{Command, Replies};
use repair::ParseError;
use reply::MinerError;
use transport::TransportError;

/// Bounds on every exchange with a miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// Budget for writing the request and reading the whole reply.
    pub read_timeout: Duration,
    /// Largest reply accepted; a bigger one is an error, never truncated.
    pub max_reply_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
            // The largest replies seen in the wild are ~70 KB (Whatsminer stats).
            max_reply_bytes: 1024 * 1024,
        }
    }
}

/// What the poller remembers about a miner between cycles (detected family, whether it accepts
/// multicommand requests). Default = nothing known yet.
#[derive(Debug, Clone, Default)]
pub struct MinerMemory {
    family: Option<Family>,
    multicommand: Option<bool>,
}

impl MinerMemory {
    /// The family detected so far.
    pub fn family(&self) -> Option<Family> {
        self.family
    }

    /// Whether the miner accepts joined (`a+b+c`) commands; `None` until tried.
    pub fn multicommand(&self) -> Option<bool> {
        self.multicommand
    }
}

/// Why a poll produced no stats. `command` names the request that failed (`summary`, or the
/// joined `version+summary+pools+stats`).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("`{command}`: connect failed: {source}")]
    Connect {
        command: &'static str,
        source: std::io::Error,
    },
    #[error("`{command}`: timed out ({stage})")]
    Timeout {
        command: &'static str,
        /// `connect`, `write` or `read`.
        stage: &'static str,
    },
    #[error("`{command}`: i/o error: {source}")]
    Io {
        command: &'static str,
        source: std::io::Error,
    },
    #[error("`{command}`: connection closed without a reply")]
    Closed { command: &'static str },
    #[error("`{command}`: reply larger than {limit} bytes")]
    TooLarge { command: &'static str, limit: usize },
    #[error("`{command}`: unreadable reply: {source}")]
    Parse {
        command: &'static str,
        source: ParseError,
    },
    #[error("`{command}`: miner refused: {source}")]
    Miner {
        command: &'static str,
        source: MinerError,
    },
}

impl PollError {
    /// Short class for metrics and status: `connect`, `timeout`, `io`, `too_large`, `parse`,
    /// `miner_error`.
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Connect { .. } => "connect",
            PollError::Timeout { .. } => "timeout",
            PollError::Io { .. } | PollError::Closed { .. } => "io",
            PollError::TooLarge { .. } => "too_large",
            PollError::Parse { .. } => "parse",
            PollError::Miner { .. } => "miner_error",
        }
    }

    fn transport(command: &'static str, e: TransportError) -> Self {
        match e {
            TransportError::Connect(source) => PollError::Connect { command, source },
            TransportError::Timeout(stage) => PollError::Timeout { command, stage },
            TransportError::Io(source) => PollError::Io { command, source },
            TransportError::TooLarge(limit) => PollError::TooLarge { command, limit },
            TransportError::Empty => PollError::Closed { command },
        }
    }
}

/// Poll one miner: detect (if not cached), read, normalize. Whole call bounded by roughly
/// connect_timeout + read_timeout no matter what the miner does.
pub async fn poll(
    addr: SocketAddr,
    memory: &mut MinerMemory,
    limits: &Limits,
) -> Result<MinerStats, PollError> {
    let session = Session {
        addr,
        limits,
        // One deadline for everything this poll does, fallbacks included.
        deadline: Instant::now() + limits.connect_timeout + limits.read_timeout,
    };
    let mut got = Outcome::default();

    // The joined request when the miner may take it; single commands otherwise.
    let mut joined_failed = None;
    let joined_ok = if memory.multicommand == Some(false) {
        false
    } else {
        match session.joined(memory.family, &mut got).await {
            Ok(true) => {
                memory.multicommand = Some(true);
                true
            }
            Ok(false) => {
                tracing::debug!(%addr, "joined command refused; using one connection per command");
                memory.multicommand = Some(false);
                false
            }
            // Some firmwares drop the connection or answer nonsense to a join instead of
            // refusing it properly: see whether single commands fare better before giving up.
            Err(e @ (PollError::Closed { .. } | PollError::Parse { .. })) => {
                joined_failed = Some(e);
                false
            }
            Err(e) => return Err(e),
        }
    };
    if !joined_ok {
        session.singles(memory.family, &mut got).await;
    }

    // Only a reply that shows the family may change what we remember.
    let seen = family_seen(&got.replies);
    if seen.is_some() && seen != memory.family {
        tracing::debug!(%addr, from = ?memory.family, to = ?seen, "miner family (re)detected");
        memory.family = seen;
    }
    let family = memory.family.unwrap_or(Family::Cgminer);
    // A first contact (or a changed family) may lack the command carrying this family's boards.
    let boards = dialect::board_command(family);
    if !got.attempted(boards) {
        session.fetch_all(&[boards], &mut got).await;
    }

    if [Command::Summary, Command::Stats, Command::Devs]
        .iter()
        .all(|&c| got.replies.get(c).is_none())
    {
        return Err(got.into_error());
    }
    if let Some(e) = joined_failed {
        tracing::debug!(%addr, error = %e, "joined command failed where single ones work");
        memory.multicommand = Some(false);
    }
    for (command, e) in &got.errors {
        tracing::debug!(%addr, command = command.as_str(), error = %e, "partial reply");
    }
    Ok(dialect::normalize(family, &got.replies))
}

/// Family shown by this poll's replies: the version reply decides; without it, whether the
/// stats reply carries the stock Antminer block. `None` when neither answered.
fn family_seen(replies: &Replies) -> Option<Family> {
    if let Some(version) = &replies.version {
        return Some(detect::family_from_version(version));
    }
    let stats = replies.stats.as_ref()?;
    Some(if detect::stats_look_stock_antminer(stats) {
        Family::Antminer
    } else {
        Family::Cgminer
    })
}

/// Replies and failures collected during one poll.
#[derive(Default)]
struct Outcome {
    replies: Replies,
    errors: Vec<(Command, PollError)>,
}

impl Outcome {
    fn record(&mut self, command: Command, result: Result<Value, PollError>) {
        match result {
            Ok(v) => self.replies.set(command, v),
            Err(e) => self.errors.push((command, e)),
        }
    }

    fn attempted(&self, command: Command) -> bool {
        self.replies.get(command).is_some() || self.errors.iter().any(|(c, _)| *c == command)
    }

    /// The error to report when no data command succeeded: the most important command's.
    fn into_error(mut self) -> PollError {
        const ORDER: [Command; 5] = [
            Command::Summary,
            Command::Stats,
            Command::Devs,
            Command::Pools,
            Command::Version,
        ];
        let pos = ORDER
            .iter()
            .find_map(|c| self.errors.iter().position(|(e, _)| e == c));
        match pos {
            Some(i) => self.errors.swap_remove(i).1,
            None => PollError::Miner {
                command: "summary",
                source: MinerError {
                    status: "?".into(),
                    code: None,
                    msg: "no data in the reply".into(),
                },
            },
        }
    }
}

struct Session<'a> {
    addr: SocketAddr,
    limits: &'a Limits,
    deadline: Instant,
}

impl Session<'_> {
    /// One request, parsed (repaired if needed), status not yet checked.
    async fn request(&self, name: &'static str, request: &[u8]) -> Result<Value, PollError> {
        let raw = transport::exchange(self.addr, request, self.limits, self.deadline)
            .await
            .map_err(|e| PollError::transport(name, e))?;
        repair::parse_reply(&raw).map_err(|source| PollError::Parse {
            command: name,
            source,
        })
    }

    async fn fetch(&self, command: Command) -> Result<Value, PollError> {
        let reply = self.request(command.as_str(), command.request()).await?;
        checked(command, reply)
    }

    /// Sends `commands` on separate connections, concurrently.
    async fn fetch_all(&self, commands: &[Command], got: &mut Outcome) {
        let results = join_all(commands.iter().map(|&c| self.fetch(c))).await;
        for (&c, r) in commands.iter().zip(results) {
            got.record(c, r);
        }
    }

    /// The joined request. `Ok(false)` when the firmware refused the join (C-13); transport and
    /// parse failures end the poll (the miner would fail single requests the same way).
    async fn joined(&self, family: Option<Family>, got: &mut Outcome) -> Result<bool, PollError> {
        let joined = dialect::joined(family.unwrap_or(Family::Antminer));
        let reply = self.request(joined.name, joined.request).await?;
        let parts = match reply::split_multi(reply, joined.commands.iter().map(|c| c.as_str())) {
            Ok(parts) => parts,
            Err(_refusal) => return Ok(false),
        };
        for (&c, part) in joined.commands.iter().zip(parts) {
            let result = match part {
                Some(v) => checked(c, v),
                None => Err(PollError::Miner {
                    command: c.as_str(),
                    source: MinerError {
                        status: "?".into(),
                        code: None,
                        msg: "missing from the joined reply".into(),
                    },
                }),
            };
            got.record(c, result);
        }
        Ok(true)
    }

    /// One connection per command. With the family known as stock Antminer, `version` is
    /// skipped (its block is repeated in `stats`) unless `stats` stops looking stock.
    async fn singles(&self, family: Option<Family>, got: &mut Outcome) {
        use Command::{Devs, Pools, Stats, Summary, Version};
        match family {
            Some(Family::Antminer) => {
                self.fetch_all(&[Summary, Pools, Stats], got).await;
                let still_stock = match &got.replies.stats {
                    Some(stats) => detect::stats_look_stock_antminer(stats),
                    // The miner answered `stats` with an error: not the firmware we knew.
                    None => !got
                        .errors
                        .iter()
                        .any(|(c, e)| *c == Stats && matches!(e, PollError::Miner { .. })),
                };
                if !still_stock {
                    self.fetch_all(&[Version, Devs], got).await;
                }
            }
            Some(Family::Cgminer) => self.fetch_all(&[Version, Summary, Pools, Devs], got).await,
            // Unknown family: ask for both board commands now rather than in a second round.
            None => {
                self.fetch_all(&[Version, Summary, Pools, Stats, Devs], got)
                    .await
            }
        }
    }
}

fn checked(command: Command, reply: Value) -> Result<Value, PollError> {
    match reply::check_status(&reply) {
        Ok(()) => Ok(reply),
        Err(source) => Err(PollError::Miner {
            command: command.as_str(),
            source,
        }),
    }
}
