//! Reading a miner over its TCP API (cgminer-family JSON on port 4028; Whatsminer API v3 on
//! 4433).
//!
//! One [`poll`] reads one miner: it detects the firmware family once (`version` and
//! `devdetails` on two connections, plus `get_version` for a Whatsminer to tell API v2 from v3),
//! caches it in [`MinerMemory`], then sends the family's read commands, repairs malformed
//! replies and normalizes them into [`MinerStats`]. Every poll re-checks the cached family on
//! what it read anyway (the `version` part of the join, the version block of `stats`, the shape
//! of a Whatsminer summary); replies that stop matching, or a firmware that stops answering
//! sensibly, trigger one new detection within the same poll, so a wrong cached type never sticks.
//!
//! Round trips are the cost that matters at 10,000 miners per cycle (the poller is CPU-bound in
//! the kernel's TCP stack), so a poll sends *one* joined request where the firmware takes joins
//! and falls back to one connection per command, run concurrently, only for firmwares that
//! refuse them (S19 stock, case C-13); that refusal is remembered. Whatsminer's `status` /
//! `get_error_code` and every v3 request cannot be joined and go alongside on their own
//! connections. Static identity (a Braiins or Whatsminer model, a Whatsminer MAC/hostname) is
//! read at detection and refreshed only every [`IDENTITY_REFRESH_POLLS`] polls or after a
//! reboot.
//!
//! Layout: [`transport`] (framing, bounded reads), [`repair`] (strict parse, then token-aware
//! repair), [`reply`] (status, sections, lenient numbers), [`detect`] (family), [`dialect`]
//! (per-family plans and normalisation), [`pool_url`] (pool URL parts).

pub mod control;
pub mod detect;
pub mod dialect;
pub mod pool_url;
pub mod repair;
pub mod reply;
pub mod transport;
pub mod web_digest;
pub mod web_mac;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;
use tokio::time::Instant;

use crate::model::{Family, Identity, MinerStats};
use dialect::{Command, Joined, Replies};
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

/// Port of the Whatsminer API v3.
pub const WHATSMINER_V3_PORT: u16 = 4433;

/// Polls between two reads of the static identity commands (Braiins `devdetails`, Whatsminer
/// `get_version` / `get_miner_info` / `devdetails`).
pub const IDENTITY_REFRESH_POLLS: u32 = 60;

/// What the poller remembers about a miner between cycles (detected family, whether it accepts
/// multicommand requests, the identity read at detection). Default = nothing known yet.
#[derive(Debug, Clone, Default)]
pub struct MinerMemory {
    family: Option<Family>,
    multicommand: Option<bool>,
    identity: Option<Box<Identity>>,
    polls_since_identity: u32,
    last_uptime: Option<u64>,
    v3_port: Option<u16>,
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

    /// What detection (or the last identity refresh) learned about the miner.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// A miner whose Whatsminer API v3 answers on another port than 4433 (port mapping).
    pub fn with_v3_port(mut self, port: u16) -> Self {
        self.v3_port = Some(port);
        self
    }

    /// Remembers `family` as detected (tests and callers that know it already).
    pub fn with_family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }

    fn v3_port(&self) -> u16 {
        self.v3_port.unwrap_or(WHATSMINER_V3_PORT)
    }

    fn identity_due(&self) -> bool {
        self.identity.is_none() || self.polls_since_identity >= IDENTITY_REFRESH_POLLS
    }

    fn forget_family(&mut self) {
        self.family = None;
        self.multicommand = None;
        self.identity = None;
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
        v3_addr: SocketAddr::new(addr.ip(), memory.v3_port()),
        limits,
        // One deadline for everything this poll does, detection and fallbacks included.
        deadline: Instant::now() + limits.connect_timeout + limits.read_timeout,
    };
    let mut detected_now = false;
    if memory.family.is_none() {
        session.detect(memory).await?;
        detected_now = true;
    }
    loop {
        let family = memory.family.unwrap_or(Family::Cgminer);
        let outcome = session.read(family, memory).await;
        let matches = match &outcome {
            Ok(got) => detect::still_matches(family, &got.replies),
            Err(e) => !e.suggests_other_firmware(family),
        };
        if !matches && !detected_now {
            tracing::debug!(%addr, cached = family.as_str(), "replies no longer match the cached family; detecting again");
            memory.forget_family();
            session.detect(memory).await?;
            detected_now = true;
            continue;
        }
        let got = outcome?;
        return Ok(finish_poll(addr, family, memory, got));
    }
}

/// Normalizes and updates what the memory keeps across polls.
fn finish_poll(
    addr: SocketAddr,
    family: Family,
    memory: &mut MinerMemory,
    got: Outcome,
) -> MinerStats {
    for (command, e) in &got.errors {
        tracing::debug!(%addr, command = command.as_str(), error = %e, "partial reply");
    }
    let mut stats = dialect::normalize(family, &got.replies);
    if got.identity_read {
        let mut fresh = stats.identity.clone();
        if let Some(old) = memory.identity.as_deref() {
            fresh.fill_from(old);
        }
        memory.identity = Some(Box::new(fresh));
        memory.polls_since_identity = 0;
    } else {
        memory.polls_since_identity = memory.polls_since_identity.saturating_add(1);
    }
    if let Some(known) = memory.identity.as_deref() {
        stats.identity.fill_from(known);
    }
    // A reboot (uptime went down) may come with new firmware: read the identity again.
    if let (Some(now), Some(before)) = (stats.uptime, memory.last_uptime) {
        if now < before {
            memory.polls_since_identity = IDENTITY_REFRESH_POLLS;
        }
    }
    memory.last_uptime = stats.uptime.or(memory.last_uptime);
    stats
}

/// Replies and failures collected during one poll.
#[derive(Default)]
struct Outcome {
    replies: Replies,
    errors: Vec<(Command, PollError)>,
    /// The identity commands were part of this poll.
    identity_read: bool,
}

impl Outcome {
    fn record(&mut self, command: Command, result: Result<Value, PollError>) {
        match result {
            Ok(v) => self.replies.set(command, v),
            Err(e) => self.errors.push((command, e)),
        }
    }

    fn has_data(&self) -> bool {
        DATA_COMMANDS.iter().any(|&c| self.replies.get(c).is_some())
    }

    /// The error to report when no data command succeeded: the most important command's.
    fn into_error(mut self) -> PollError {
        const ORDER: [Command; 9] = [
            Command::Summary,
            Command::V3Summary,
            Command::Stats,
            Command::Devs,
            Command::Edevs,
            Command::V3Edevs,
            Command::Pools,
            Command::Version,
            Command::V3DeviceInfo,
        ];
        let pos = ORDER
            .iter()
            .find_map(|c| self.errors.iter().position(|(e, _)| e == c))
            .or_else(|| (!self.errors.is_empty()).then_some(0));
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

/// Commands whose reply carries hashing data: a poll with none of them failed.
const DATA_COMMANDS: [Command; 6] = [
    Command::Summary,
    Command::Stats,
    Command::Devs,
    Command::Edevs,
    Command::V3Summary,
    Command::V3Edevs,
];

impl PollError {
    /// Whether this failure hints that the miner now runs another firmware (it answered, but
    /// not as the cached family would), rather than that it is down.
    fn suggests_other_firmware(&self, family: Family) -> bool {
        match self {
            PollError::Parse { .. } | PollError::Miner { .. } => true,
            // A Whatsminer v3 port that stopped listening: maybe back on API v2.
            PollError::Connect { .. } => family == Family::WhatsminerV3,
            _ => false,
        }
    }
}

enum JoinResult {
    Parts(Vec<(Command, Result<Value, PollError>)>),
    Refused,
}

struct Session<'a> {
    addr: SocketAddr,
    v3_addr: SocketAddr,
    limits: &'a Limits,
    deadline: Instant,
}

impl Session<'_> {
    /// One request, parsed (repaired if needed), status not yet checked.
    async fn request(
        &self,
        name: &'static str,
        command: Option<Command>,
        request: &[u8],
    ) -> Result<Value, PollError> {
        let raw = if command.is_some_and(Command::is_v3) {
            transport::exchange_prefixed(self.v3_addr, request, self.limits, self.deadline).await
        } else {
            transport::exchange(self.addr, request, self.limits, self.deadline).await
        }
        .map_err(|e| PollError::transport(name, e))?;
        repair::parse_reply(&raw).map_err(|source| PollError::Parse {
            command: name,
            source,
        })
    }

    /// One command, unchecked (detection reads markers even in error replies).
    async fn raw(&self, command: Command) -> Result<Value, PollError> {
        self.request(command.as_str(), Some(command), command.request())
            .await
    }

    async fn fetch(&self, command: Command) -> Result<Value, PollError> {
        let reply = self.raw(command).await?;
        checked(command, reply)
    }

    /// Sends `commands` on separate connections, concurrently.
    async fn fetch_all(&self, commands: &[Command]) -> Vec<(Command, Result<Value, PollError>)> {
        let results = join_all(commands.iter().map(|&c| self.fetch(c))).await;
        commands.iter().copied().zip(results).collect()
    }

    /// The joined request. `Refused` when the firmware refused the join (C-13); transport and
    /// parse failures are errors.
    async fn joined(&self, joined: Joined) -> Result<JoinResult, PollError> {
        let reply = self.request(joined.name, None, joined.request).await?;
        let parts = match reply::split_multi(reply, joined.commands.iter().map(|c| c.as_str())) {
            Ok(parts) => parts,
            Err(_refusal) => return Ok(JoinResult::Refused),
        };
        Ok(JoinResult::Parts(
            joined
                .commands
                .iter()
                .zip(parts)
                .map(|(&c, part)| {
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
                    (c, result)
                })
                .collect(),
        ))
    }

    /// Reads one poll's worth of `family`'s commands.
    async fn read(&self, family: Family, memory: &mut MinerMemory) -> Result<Outcome, PollError> {
        let plan = dialect::plan(family);
        let mut got = Outcome::default();
        let mut separate: Vec<Command> = plan.separate.to_vec();
        if memory.identity_due() {
            separate.extend_from_slice(identity_commands(family));
            got.identity_read = true;
        }
        let join = plan.joined.filter(|_| memory.multicommand != Some(false));
        let (sep, joined) = futures::join!(self.fetch_all(&separate), async {
            match join {
                Some(j) => Some(self.joined(j).await),
                None => None,
            }
        });
        for (c, r) in sep {
            got.record(c, r);
        }

        let mut joined_failed = None;
        let singles_needed = match (plan.joined, joined) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(_), Some(Ok(JoinResult::Parts(parts)))) => {
                memory.multicommand = Some(true);
                for (c, r) in parts {
                    got.record(c, r);
                }
                false
            }
            (Some(_), Some(Ok(JoinResult::Refused))) => {
                tracing::debug!(addr = %self.addr, "joined command refused; using one connection per command");
                memory.multicommand = Some(false);
                true
            }
            // Some firmwares drop the connection or answer nonsense to a join instead of
            // refusing it properly: see whether single commands fare better before giving up.
            (Some(_), Some(Err(e @ (PollError::Closed { .. } | PollError::Parse { .. })))) => {
                joined_failed = Some(e);
                true
            }
            (Some(_), Some(Err(e))) => return Err(e),
        };
        if let (true, Some(j)) = (singles_needed, plan.joined) {
            // `stats` repeats the version block on Antminer-shaped firmwares: skip `version`.
            let commands: Vec<Command> = j
                .commands
                .iter()
                .copied()
                .filter(|&c| !(plan.stats_carry_version && c == Command::Version))
                .collect();
            for (c, r) in self.fetch_all(&commands).await {
                got.record(c, r);
            }
        }
        // Older btminer builds lack `edevs`.
        if family == Family::Whatsminer && got.replies.get(Command::Edevs).is_none() {
            for (c, r) in self.fetch_all(&[Command::Devs]).await {
                got.record(c, r);
            }
        }
        if !got.has_data() {
            return Err(got.into_error());
        }
        if let Some(e) = joined_failed {
            tracing::debug!(addr = %self.addr, error = %e, "joined command failed where single ones work");
            memory.multicommand = Some(false);
        }
        Ok(got)
    }

    /// Finds the family from `version` and `devdetails`, classified by their markers: one joined
    /// request (one socket, one round trip), or the two commands on their own connections when
    /// the firmware refuses joins. For a Whatsminer also `get_version` / `get_miner_info`, and
    /// the v3 port when its firmware is from 2024-11 or later; nothing on port 4028 (refused)
    /// → try v3. A miner that sends only garbage or nothing teaches us nothing.
    async fn detect(&self, memory: &mut MinerMemory) -> Result<(), PollError> {
        const PROBE: Joined = Joined {
            name: "version+devdetails",
            request: br#"{"command":"version+devdetails"}"#,
            commands: &[Command::Version, Command::Devdetails],
        };
        let joined = match self.request(PROBE.name, None, PROBE.request).await {
            Ok(reply) => reply::split_multi(reply, ["version", "devdetails"]).ok(),
            Err(e @ PollError::Connect { .. }) => {
                if let Ok(info) = self.fetch(Command::V3DeviceInfo).await {
                    let mut r = Replies::default();
                    r.set(Command::V3DeviceInfo, info);
                    self.remember(memory, Family::WhatsminerV3, None, &r);
                    return Ok(());
                }
                return Err(e);
            }
            Err(e @ (PollError::Closed { .. } | PollError::Parse { .. })) => {
                tracing::debug!(addr = %self.addr, error = %e, "joined probe failed; probing with single commands");
                None
            }
            Err(e) => return Err(e),
        };
        let (version, devdetails) = match joined {
            Some(mut parts) => {
                let devdetails = parts.pop().flatten();
                let version = parts.pop().flatten();
                (Ok(version), Ok(devdetails))
            }
            None => {
                let (v, d) =
                    futures::join!(self.raw(Command::Version), self.raw(Command::Devdetails));
                (v.map(Some), d.map(Some))
            }
        };
        if let (Err(e), Err(_)) = (&version, &devdetails) {
            if !matches!(e, PollError::Miner { .. }) {
                return Err(match version {
                    Err(e) => e,
                    Ok(_) => PollError::Closed { command: "version" },
                });
            }
        }
        let version = version.ok().flatten();
        let devdetails = devdetails.ok().flatten();
        let (mut family, mut kind) = detect::classify(version.as_ref(), devdetails.as_ref());
        let mut r = Replies::default();
        for (c, v) in [
            (Command::Version, version),
            (Command::Devdetails, devdetails),
        ] {
            if let Some(Ok(v)) = v.map(|v| checked(c, v)) {
                r.set(c, v);
            }
        }
        // No marker in `version` (asicdip writes no `Type` there): its `stats` may name it.
        if family == Family::Cgminer && r.get(Command::Version).is_some() {
            if let Ok(stats) = self.fetch(Command::Stats).await {
                if let Some((f, k)) = detect::family_from_stats(&stats) {
                    (family, kind) = (f, k);
                }
                // Generic builds (SealMiner) may carry their model and MAC there.
                r.set(Command::Stats, stats);
            }
        }
        if family == Family::Whatsminer {
            for (c, v) in self
                .fetch_all(&[Command::WmGetVersion, Command::WmGetMinerInfo])
                .await
            {
                if let Ok(v) = v {
                    r.set(c, v);
                }
            }
            let fw_date = r
                .get(Command::WmGetVersion)
                .and_then(dialect::whatsminer::msg)
                .and_then(|m| reply::field_str(m, "fw_ver"))
                .and_then(detect::whatsminer_fw_date);
            if fw_date.is_some_and(|d| d >= detect::WHATSMINER_V3_SINCE) {
                if let Ok(info) = self.fetch(Command::V3DeviceInfo).await {
                    r.set(Command::V3DeviceInfo, info);
                    family = Family::WhatsminerV3;
                }
            }
        }
        self.remember(memory, family, kind, &r);
        Ok(())
    }

    fn remember(
        &self,
        memory: &mut MinerMemory,
        family: Family,
        kind: Option<crate::model::FirmwareKind>,
        r: &Replies,
    ) {
        let mut identity = dialect::normalize(family, r).identity;
        if kind.is_some() {
            identity.firmware_kind = kind;
        }
        tracing::debug!(addr = %self.addr, family = family.as_str(), model = ?identity.model, "miner detected");
        memory.family = Some(family);
        memory.multicommand = None;
        memory.identity = Some(Box::new(identity));
        // Detection read what the identity commands would.
        memory.polls_since_identity = 0;
    }
}

/// Commands that carry static identity, read at detection and then only now and then.
fn identity_commands(family: Family) -> &'static [Command] {
    match family {
        Family::Braiins => &[Command::Devdetails],
        Family::Whatsminer => &[
            Command::WmGetVersion,
            Command::WmGetMinerInfo,
            Command::Devdetails,
        ],
        // v3 device info also carries the error codes: read on every poll.
        Family::WhatsminerV3 => &[],
        _ => &[],
    }
}

fn checked(command: Command, reply: Value) -> Result<Value, PollError> {
    let status = if command.is_v3() {
        reply::check_v3(&reply)
    } else {
        reply::check_status(&reply)
    };
    match status {
        Ok(()) => Ok(reply),
        Err(source) => Err(PollError::Miner {
            command: command.as_str(),
            source,
        }),
    }
}
