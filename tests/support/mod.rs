//! Shared harness of the integration tests: a simulated site (fleet + fake Foreman) in the
//! test process, the real `pickaxe` binary as a child process, and polling helpers.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pickaxe_sim::{start_fleet, start_foreman, Fleet, FleetConfig, Foreman, ForemanConfig};

pub struct Site {
    pub fleet: Fleet,
    pub foreman: Foreman,
    pub dir: tempfile::TempDir,
}

impl Site {
    /// `count` simulated miners from `base` (use a distinct base per test: tests run in
    /// parallel) and a fake Foreman that assigns them all.
    pub async fn start(count: usize, base: Ipv4Addr, mix: &str) -> Site {
        Site::start_with(FleetConfig {
            count,
            base,
            mix: pickaxe_sim::parse_mix(mix).unwrap(),
            ..FleetConfig::default()
        })
        .await
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("state/pickaxe.db")
    }

    /// Writes a daemon config for this site and returns its path.
    pub fn write_config(&self, interval: &str, extra: &str) -> PathBuf {
        // Tests run side by side: no shared metrics port unless a test asks for one.
        let metrics = if extra.contains("[metrics]") {
            ""
        } else {
            "[metrics]\nenabled = false\n"
        };
        let text = format!(
            r#"[foreman]
base_url = "{url}"
api_key = "{key}"
client_id = "7"
ca_file = "{ca}"
refresh_interval = "30s"
request_timeout = "5s"
[poll]
interval = "{interval}"
timeout = "900ms"
concurrency = 100
[store]
path = "{db}"
[upload]
min_backoff = "200ms"
max_backoff = "1s"
backlog_rate = 100
{metrics}{extra}
"#,
            url = self.foreman.url(),
            key = self.foreman.api_key(),
            ca = self.foreman.ca_path().display(),
            db = self.db_path().display(),
        );
        let path = self.dir.path().join("pickaxe.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The real daemon binary, as a child process.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(config: &Path, log_name: &str) -> Daemon {
        Daemon::spawn_with_env(config, log_name, &[])
    }

    pub fn spawn_with_env(config: &Path, log_name: &str, env: &[(&str, &str)]) -> Daemon {
        let log = config.with_file_name(log_name);
        let child = Command::new(env!("CARGO_BIN_EXE_pickaxe"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "pickaxe=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until the daemon logged that it is ready: a stop signal sent before its handlers
    /// are installed would kill it outright, which is not what these tests are about.
    pub async fn wait_ready(&self) {
        for _ in 0..400 {
            if self.log_text().contains("Ready.") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("daemon not ready within 20 s; log:\n{}", self.log_text());
    }

    /// SIGTERM once ready, then wait for a clean exit.
    pub async fn terminate(self) -> ExitStatus {
        self.wait_ready().await;
        self.signal("TERM");
        self.terminate_wait().await
    }

    /// Waits for the exit after a stop signal was sent.
    pub async fn terminate_wait(mut self) -> ExitStatus {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!(
            "daemon did not stop within 15 s of SIGTERM; log:\n{}",
            self.log_text()
        );
    }

    /// Fails the test with the daemon's log if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("daemon exited ({status}); log:\n{}", self.log_text());
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it holds or `within` passes.
pub async fn wait_until<F: FnMut() -> bool>(within: Duration, what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {within:?} waiting for: {what}");
}

/// Parses Foreman's `yyyy-MM-ddTHH:mm:ss.SSS±HHMM`.
pub fn parse_timestamp(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("bad timestamp {text:?}: {e}"))
        .with_timezone(&Utc)
}

/// Reads the daemon's counters from its state database (read-only, beside a live daemon).
pub async fn counter(db: &Path, name: &str) -> i64 {
    let store = pickaxe::store::Store::open_read_only(db).await.unwrap();
    let value = store.counter(name).await.unwrap();
    store.close().await;
    value
}

pub async fn backlog(db: &Path) -> pickaxe::store::Backlog {
    let store = pickaxe::store::Store::open_read_only(db).await.unwrap();
    let value = store.backlog().await.unwrap();
    store.close().await;
    value
}

/// Async variant of [`wait_until`].
pub async fn wait_for<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {within:?} waiting for: {what}");
}

/// Checks what Foreman holds against what the simulated miners served, miner by miner:
/// every sample Foreman got carries the time its poll was really served (its original
/// timestamp, not the upload time) and arrived once; each miner has one sample per stored
/// cycle; and the polls the miners served that reached Foreman in no sample all belong to at
/// most `lost_cycles` cycles (the ones in flight when the daemon was killed).
/// Returns the number of samples checked.
pub fn assert_samples_match_polls(site: &Site, stored_cycles: i64, lost_cycles: usize) -> usize {
    let samples = site.foreman.samples();
    let mut checked = 0;
    let mut unaccounted = Vec::new();
    for miner in site.fleet.miners() {
        let served = site.fleet.stats_served(miner.addr);
        let received: Vec<_> = samples
            .iter()
            .find(|m| m.ip == miner.addr.ip().to_string() && m.port == miner.addr.port())
            .map(|m| m.samples.clone())
            .unwrap_or_default();
        let stamps: Vec<_> = received
            .iter()
            .map(|s| parse_timestamp(&s.timestamp))
            .collect();
        // The cycle is stamped when it starts; the miner serves its poll within the cycle
        // (a busy machine may take the whole interval plus the poll timeout).
        let belongs = |at: chrono::DateTime<Utc>, ts: chrono::DateTime<Utc>| {
            at >= ts - chrono::Duration::milliseconds(5)
                && at <= ts + chrono::Duration::milliseconds(1900)
        };
        for (sample, ts) in received.iter().zip(&stamps) {
            assert_eq!(
                sample.count, 1,
                "{} sample {} arrived {} times",
                miner.addr, sample.timestamp, sample.count
            );
            assert!(
                served.iter().any(|s| belongs(s.at, *ts)),
                "{}: sample stamped {} matches no poll the miner served",
                miner.addr,
                sample.timestamp
            );
        }
        assert_eq!(
            received.len() as i64,
            stored_cycles,
            "{} ({}): one sample per stored cycle",
            miner.addr,
            miner.model
        );
        unaccounted.extend(
            served
                .iter()
                .filter(|s| !stamps.iter().any(|ts| belongs(s.at, *ts)))
                .map(|s| s.at),
        );
        checked += received.len();
    }
    // Group the unaccounted polls into cycles (polls of one cycle are served within ~1 s).
    unaccounted.sort();
    let mut clusters = 0;
    let mut last: Option<chrono::DateTime<Utc>> = None;
    for at in unaccounted {
        if last.is_none_or(|l| at - l > chrono::Duration::milliseconds(500)) {
            clusters += 1;
        }
        last = Some(at);
    }
    assert!(
        clusters <= lost_cycles,
        "polls of {clusters} cycles never reached Foreman (allowed {lost_cycles})"
    );
    checked
}

impl Site {
    /// A site from a full fleet configuration (mixes, faults).
    pub async fn start_with(fleet: FleetConfig) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let fleet = start_fleet(fleet).await.unwrap();
        let foreman = start_foreman(ForemanConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: "it-key-0123456789".into(),
            client_id: "7".into(),
            ca_out: dir.path().join("ca.pem"),
        })
        .await
        .unwrap();
        foreman.set_miners(fleet.config_entries());
        Site {
            fleet,
            foreman,
            dir,
        }
    }
}

/// A daemon config for command tests: fast verification, `control` as given, `extra` appended.
pub fn command_config(site: &Site, control: bool, extra: &str) -> PathBuf {
    let path = site.write_config(
        "5s",
        &format!(
            "[commands]\nverify_interval = \"300ms\"\nminer_timeout = \"1s\"\nconcurrency = 50\n{extra}"
        ),
    );
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("control = {control}\n{text}")).unwrap();
    path
}

/// A command as Foreman queues it for the miner at `addr`, with `extra` args merged in.
pub fn foreman_command(
    id: &str,
    name: &str,
    addr: SocketAddr,
    deadline_ms: u64,
    extra: serde_json::Value,
) -> pickaxe_sim::NewCommand {
    let mut args = serde_json::json!({
        "type": "asic",
        "ip": addr.ip().to_string(),
        "apiPort": addr.port(),
        "port": 80,
        "deadlineMillis": deadline_ms,
    });
    if let (Some(a), Some(e)) = (args.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    pickaxe_sim::NewCommand {
        id: id.to_string(),
        command: name.to_string(),
        args,
    }
}

/// Waits until Foreman has a done for every id; panics with the daemon's log otherwise.
pub async fn wait_all_done(
    site: &Site,
    ids: &[String],
    within: Duration,
    daemon: &Daemon,
) -> Vec<pickaxe_sim::CommandRecord> {
    let foreman = site.foreman.clone();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let recs: Vec<pickaxe_sim::CommandRecord> = foreman
            .commands()
            .into_iter()
            .filter(|c| ids.contains(&c.id))
            .collect();
        if recs.len() == ids.len() && recs.iter().all(|r| r.done.is_some()) {
            return recs;
        }
        if tokio::time::Instant::now() > deadline {
            let open: Vec<_> = recs
                .iter()
                .filter(|r| r.done.is_none())
                .map(|r| &r.id)
                .collect();
            panic!(
                "commands without a done after {within:?}: {open:?}\nlog:\n{}",
                daemon.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon's Prometheus text from `127.0.0.1:port/metrics`.
pub async fn scrape_metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled metric in a scrape; panics (showing the scrape) when absent.
pub fn metric_value(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing in:\n{scrape}"))
        .parse()
        .unwrap()
}
