//! Runs one command from the log to its done: refusals (monitor-only, cooldown, bad args),
//! then detect → commit "executing" → send once → verify until the deadline. A command found
//! "executing" (a restart mid-command) is only verified: it was, or may have been, sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::parse::{self, Control, ControlKind, Job};
use super::ramp::{MinerLocks, Ramp};
use super::scan;
use super::verify::{Baseline, Verdict, Watch};
use crate::config::Config;
use crate::miner::control::{self, Action, ControlLimits, Credentials, Sent};
use crate::miner::{Limits, MinerMemory};
use crate::store::commands::state;
use crate::store::{CommandRow, Source, Store};

/// What a command ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub success: bool,
    pub message: Option<String>,
    pub result: Option<Value>,
}

impl Outcome {
    fn ok(message: impl Into<String>) -> Outcome {
        Outcome {
            success: true,
            message: Some(message.into()),
            result: None,
        }
    }
    fn failed(message: impl Into<String>) -> Outcome {
        Outcome {
            success: false,
            message: Some(message.into()),
            result: None,
        }
    }
}

pub struct Runner {
    store: Store,
    control: bool,
    cfg: crate::config::CommandsConfig,
    scan_concurrency: usize,
    sends: Semaphore,
    ramp: Ramp,
    locks: MinerLocks,
    /// The site's stock Antminer web login and port, for commands that name none.
    antminer_web: Credentials,
    /// Woken when a result is queued: Foreman's sender, and MQTT's when it runs.
    results: [Arc<Notify>; 2],
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Runner {
    pub fn new(
        config: &Config,
        store: Store,
        results: [Arc<Notify>; 2],
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Runner {
        let c = &config.commands;
        Runner {
            store,
            control: config.control,
            cfg: c.clone(),
            scan_concurrency: config.poll.concurrency.min(1000),
            sends: Semaphore::new(c.concurrency),
            ramp: Ramp::new(c.power_on_ramp),
            locks: MinerLocks::default(),
            antminer_web: Credentials {
                username: Some(config.antminer_web.username.clone()),
                password: Some(config.antminer_web.password()),
                web_port: Some(config.antminer_web.port),
            },
            results,
            shutdown,
            tracker,
        }
    }

    pub fn wake_results(&self) {
        for waker in &self.results {
            waker.notify_one();
        }
    }

    /// Records a command (its start queued in the same transaction) and runs it; a known id
    /// is skipped, so a command listed or delivered again never runs twice (C-21). Returns
    /// whether it was new. A command that cannot be recorded is not run.
    pub async fn accept(
        self: &Arc<Self>,
        id: &str,
        command: &str,
        args: &Value,
        source: Source,
    ) -> Result<bool, crate::store::StoreError> {
        let start = super::body::start(id, command, args);
        let miner = parse::parse(command, args).ok().and_then(|job| match job {
            Job::Control(ctl) => Some(ctl.target.to_string()),
            Job::Scan(_) => None,
        });
        let mut attempt = 0;
        let inserted = loop {
            // Retry a busy database a few times.
            match self
                .store
                .record_command(id, command, args, miner.as_deref(), &start, source)
                .await
            {
                Ok(inserted) => break inserted,
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    warn!(error = %e, id, "Cannot record a command yet; retrying.");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if !inserted {
            return Ok(false);
        }
        info!(
            id,
            command,
            miner = miner.as_deref().unwrap_or("-"),
            source = source.as_str(),
            "Command received."
        );
        match self.store.unfinished_commands().await {
            Ok(rows) => {
                if let Some(row) = rows.into_iter().find(|r| r.id == id) {
                    self.dispatch(row);
                }
            }
            Err(e) => {
                error!(error = %e, id, "Cannot read back a command; it runs at the next start.")
            }
        }
        self.wake_results();
        Ok(true)
    }

    /// Runs `row` in its own task (stopped at shutdown; resumed at the next start).
    pub fn dispatch(self: &Arc<Self>, row: CommandRow) {
        let me = self.clone();
        self.tracker.spawn(async move {
            let shutdown = me.shutdown.clone();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = me.run(row) => {}
            }
        });
    }

    async fn run(&self, row: CommandRow) {
        let outcome = self.outcome(&row).await;
        let done = super::body::done(
            &row.command,
            outcome.success,
            outcome.message.as_deref(),
            outcome.result,
        );
        let status = if outcome.success { "success" } else { "failed" };
        info!(id = %row.id, command = %row.command, status, message = outcome.message.as_deref().unwrap_or(""), "Command done.");
        for attempt in 0..5 {
            match self
                .store
                .finish_command(&row.id, outcome.success, outcome.message.as_deref(), &done)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, id = %row.id, attempt, "Cannot record a command's result; retrying.");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        self.wake_results();
    }

    fn deadline_ms(&self, row: &CommandRow, given: Option<Duration>) -> i64 {
        let d = given.unwrap_or(self.cfg.default_deadline);
        row.received_ms
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    async fn outcome(&self, row: &CommandRow) -> Outcome {
        let job = match parse::parse(&row.command, &row.args) {
            Ok(j) => j,
            Err(msg) => {
                if !self.control && parse::is_control(&row.command) {
                    return Outcome::failed("control disabled on this pickaxe");
                }
                return Outcome::failed(msg);
            }
        };
        match job {
            Job::Control(_) if !self.control => Outcome::failed("control disabled on this pickaxe"),
            Job::Control(c) => {
                let lock = self.locks.get(&c.target.to_string());
                let _one_at_a_time = lock.lock().await;
                self.control(row, &c).await
            }
            Job::Scan(s) => self.scan(row, &s).await,
        }
    }

    async fn control(&self, row: &CommandRow, c: &Control) -> Outcome {
        let deadline_ms = self.deadline_ms(row, c.deadline);
        // Sent (or maybe sent) before a restart: verify only, never send again (C-21).
        if row.state == state::EXECUTING {
            let baseline = row
                .baseline
                .as_ref()
                .map(Baseline::from_json)
                .unwrap_or_default();
            let family = baseline.family.unwrap_or(crate::model::Family::Cgminer);
            let action = parse::action(&c.kind, family, baseline.hashing);
            let sent_ms = row.executing_ms.unwrap_or(row.received_ms);
            info!(id = %row.id, miner = %c.target, "Resuming verification after a restart.");
            return self
                .finish_action(row, c, action, baseline, sent_ms, deadline_ms, true)
                .await;
        }
        if let ControlKind::Reboot = c.kind {
            if let Some(refusal) = self.cooldown(row, c.target).await {
                return refusal;
            }
        }
        let permit = match self.sends.acquire().await {
            Ok(p) => p,
            Err(_) => return Outcome::failed("the agent is stopping"),
        };
        let stats = match self.read(c.target).await {
            Ok(s) => s,
            Err(e) => return Outcome::failed(format!("miner unreachable: {e}")),
        };
        let Some(family) = stats.family else {
            return Outcome::failed("cannot tell the miner's firmware family");
        };
        let baseline = Baseline::of(&stats);
        let action = parse::action(&c.kind, family, baseline.hashing);
        // Committed before the first byte goes to the miner.
        if let Err(e) = self
            .store
            .mark_executing(&row.id, &baseline.to_json())
            .await
        {
            return Outcome::failed(format!("cannot record the command before acting: {e}"));
        }
        let sent_ms = now_ms();
        let limits = ControlLimits {
            timeout: self.cfg.miner_timeout,
        };
        let creds = self.creds(c, family);
        let send = control::execute(c.target, family, &action, &creds, limits);
        // Powering back on goes one miner after the other.
        let sent = if matches!(action, Action::Wake | Action::PowerLevel(_)) {
            self.ramp.run(send).await
        } else {
            send.await
        };
        drop(permit);
        let how = match sent {
            Ok(Sent::Accepted(msg)) if msg.is_empty() => "accepted".to_string(),
            Ok(Sent::Accepted(msg)) => format!("accepted: {msg}"),
            Ok(Sent::Dropped) => "sent, the miner closed the connection".to_string(),
            Err(e) => return Outcome::failed(e.to_string()),
        };
        info!(id = %row.id, miner = %c.target, family = family.as_str(), how = %how, "Command sent.");
        let update = super::body::update(&row.command, json!({"state": "sent", "detail": how}));
        match self.store.record_sent(&row.id, sent_ms, &update).await {
            Ok(()) => self.wake_results(),
            // Only the cooldown and the progress update miss it; verification goes on.
            Err(e) => warn!(error = %e, id = %row.id, "Cannot record that the command was sent."),
        }
        self.finish_action(row, c, action, baseline, sent_ms, deadline_ms, false)
            .await
    }

    /// Verifies the action's effect (blink: waits, then switches the light back).
    #[allow(clippy::too_many_arguments)]
    async fn finish_action(
        &self,
        row: &CommandRow,
        c: &Control,
        action: Action,
        baseline: Baseline,
        sent_ms: i64,
        deadline_ms: i64,
        resumed: bool,
    ) -> Outcome {
        if let ControlKind::Blink(duration) = c.kind {
            if !resumed {
                let left = deadline_ms.saturating_sub(now_ms()).max(0) as u64;
                tokio::time::sleep(duration.min(Duration::from_millis(left))).await;
            }
            let family = baseline.family.unwrap_or(crate::model::Family::Cgminer);
            let limits = ControlLimits {
                timeout: self.cfg.miner_timeout,
            };
            let creds = self.creds(c, family);
            return match control::execute(c.target, family, &Action::Light(false), &creds, limits)
                .await
            {
                Ok(_) => Outcome::ok("blinked, light back to normal"),
                Err(e) => {
                    Outcome::failed(format!("blinked, but switching the light back failed: {e}"))
                }
            };
        }
        let mut watch = Watch::new(action.clone(), baseline, sent_ms);
        loop {
            if now_ms() >= deadline_ms {
                return Outcome::failed(match action {
                    Action::Reboot => {
                        "miner never returned (no restarted uptime seen before the deadline)"
                            .to_string()
                    }
                    Action::Sleep => "hashrate did not reach zero before the deadline".to_string(),
                    Action::Wake => "miner did not hash again before the deadline".to_string(),
                    Action::Pools(_) => {
                        "miner does not report the new pools before the deadline".to_string()
                    }
                    _ => "effect not seen before the deadline".to_string(),
                });
            }
            let wait = self.cfg.verify_interval.min(Duration::from_millis(
                deadline_ms.saturating_sub(now_ms()).max(0) as u64,
            ));
            tokio::time::sleep(wait).await;
            if let Verdict::Confirmed(what) = watch.check(c.target, self.cfg.miner_timeout).await {
                let _ = row;
                return Outcome::ok(what);
            }
        }
    }

    /// The command's login; for a stock Antminer, the site's web login and port fill in what
    /// the command leaves out.
    fn creds(&self, c: &Control, family: crate::model::Family) -> Credentials {
        if family != crate::model::Family::Antminer {
            return c.creds.clone();
        }
        let d = &self.antminer_web;
        Credentials {
            username: c.creds.username.clone().or_else(|| d.username.clone()),
            password: c.creds.password.clone().or_else(|| d.password.clone()),
            web_port: c.creds.web_port.or(d.web_port),
        }
    }

    /// A reboot of a miner rebooted less than `reboot_cooldown` ago is refused.
    async fn cooldown(&self, row: &CommandRow, target: SocketAddr) -> Option<Outcome> {
        let last = self
            .store
            .last_sent(&target.to_string(), "reboot", &row.id)
            .await
            .ok()
            .flatten()?;
        let ago = Duration::from_millis((now_ms() - last).max(0) as u64);
        (ago < self.cfg.reboot_cooldown).then(|| {
            Outcome::failed(format!(
                "reboot refused: this miner was rebooted {}s ago (cooldown {})",
                ago.as_secs(),
                humantime::format_duration(self.cfg.reboot_cooldown)
            ))
        })
    }

    async fn read(&self, addr: SocketAddr) -> Result<crate::model::MinerStats, String> {
        let t = self.cfg.miner_timeout;
        let limits = Limits {
            connect_timeout: t.min(Duration::from_secs(2)),
            read_timeout: t,
            max_reply_bytes: 1 << 20,
        };
        let mut memory = MinerMemory::default();
        match tokio::time::timeout(
            t * 2 + limits.connect_timeout,
            crate::miner::poll(addr, &mut memory, &limits),
        )
        .await
        {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no complete reply in time".into()),
        }
    }

    async fn scan(&self, row: &CommandRow, job: &scan::ScanJob) -> Outcome {
        let total = job.addresses.len();
        let (tx, rx) = tokio::sync::watch::channel((0usize, 0usize));
        let run = scan::run(
            &job.addresses,
            job.port,
            job.macs.as_deref(),
            self.scan_concurrency,
            self.cfg.miner_timeout,
            move |scanned, found| {
                tx.send_replace((scanned, found));
            },
        );
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let progress = |(scanned, found): (usize, usize)| {
            // Foreman's own pickaxe names every scan update `scan`.
            super::body::update(
                "scan",
                json!({"found": found, "scanned": scanned, "remaining": total - scanned}),
            )
        };
        let found = loop {
            tokio::select! {
                found = &mut run => break found,
                _ = tick.tick() => {
                    let now = *rx.borrow();
                    if self.store.queue_update(&row.id, &progress(now)).await.is_ok() {
                        self.wake_results();
                    }
                }
            }
        };
        let _ = self
            .store
            .queue_update(&row.id, &progress((total, found.len())))
            .await;
        let mut o = Outcome::ok(format!("{} miners found in {total} addresses", found.len()));
        o.result = Some(job.result(&found));
        o
    }
}
