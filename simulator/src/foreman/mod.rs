//! A fake Foreman cloud: HTTPS with a throwaway CA, the pickaxe endpoints, fault injection.

mod api;
mod commands;
mod metrics;
mod server;
mod state;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use commands::{CommandRecord, NewCommand};
pub use metrics::parse_timestamp;
pub use state::{
    ActiveFaults, FaultCounts, ForemanFault, MinerConfigEntry, MinerSamples, OutageMode, Param,
    PickaxeSeen, RequestCounts, Sample, ScheduleEntry, ScheduleState, Summary,
};

use crate::fleet::Fleet;
pub(crate) use state::Shared as SharedHandle;
use state::Shared;

/// How to start the fake Foreman.
#[derive(Clone, Debug)]
pub struct ForemanConfig {
    /// HTTPS address (port 0 = pick a free one). Must be in 127.0.0.0/8.
    pub listen: SocketAddr,
    /// Plain-HTTP admin API address (port 0 = pick a free one). Must be in 127.0.0.0/8.
    pub admin: SocketAddr,
    pub api_key: String,
    pub client_id: String,
    /// Where the CA certificate (PEM) is written. Empty = a fresh file in the temp directory,
    /// removed again by [`Foreman::shutdown`].
    pub ca_out: PathBuf,
}

impl Default for ForemanConfig {
    fn default() -> Self {
        let lo = SocketAddr::from(([127, 0, 0, 1], 0));
        ForemanConfig {
            listen: lo,
            admin: lo,
            api_key: "test-key".to_string(),
            client_id: "1".to_string(),
            ca_out: PathBuf::new(),
        }
    }
}

/// A running fake Foreman. Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct Foreman {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    admin_addr: SocketAddr,
    ca_path: PathBuf,
    ca_pem: String,
    remove_ca: bool,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Foreman {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Foreman")
            .field("url", &self.url())
            .field("admin", &self.admin_url())
            .finish()
    }
}

fn check_loopback(what: &str, a: SocketAddr) -> anyhow::Result<()> {
    if !a.ip().is_loopback() || a.is_ipv6() {
        bail!("{what} address {a} is not in 127.0.0.0/8");
    }
    Ok(())
}

/// Starts the fake Foreman (HTTPS API + admin API). Its assigned miner list starts empty.
pub async fn start_foreman(cfg: ForemanConfig) -> anyhow::Result<Foreman> {
    start_with_fleet(cfg, None).await
}

pub(crate) async fn start_with_fleet(
    cfg: ForemanConfig,
    fleet: Option<Fleet>,
) -> anyhow::Result<Foreman> {
    check_loopback("listen", cfg.listen)?;
    check_loopback("admin", cfg.admin)?;
    if cfg.api_key.is_empty() {
        bail!("the API key must not be empty");
    }
    let tls = tls::generate()?;
    let (ca_path, remove_ca) = if cfg.ca_out.as_os_str().is_empty() {
        let p = std::env::temp_dir().join(format!(
            "pickaxe-sim-ca-{}-{}.pem",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        (p, true)
    } else {
        (cfg.ca_out.clone(), false)
    };
    if let Some(dir) = ca_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&ca_path, &tls.ca_pem)
        .with_context(|| format!("writing the CA certificate to {}", ca_path.display()))?;

    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the fake Foreman on {}", cfg.listen))?;
    let api_addr = listener.local_addr()?;
    let admin_listener = TcpListener::bind(cfg.admin)
        .await
        .with_context(|| format!("binding the admin API on {}", cfg.admin))?;
    let admin_addr = admin_listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared::new(
        cfg.api_key,
        cfg.client_id,
        fleet
            .as_ref()
            .map(Fleet::config_entries)
            .unwrap_or_default(),
        shutdown.clone(),
    ));
    let tracker = TaskTracker::new();
    let app = api::router(shared.clone());
    tracker.spawn(server::serve(
        listener,
        api_addr,
        TlsAcceptor::from(tls.server_config),
        app,
        shared.clone(),
        tracker.clone(),
    ));
    let admin_app = crate::admin::router(Some(shared.clone()), fleet);
    let sd = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin_app)
            .with_graceful_shutdown(sd.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    tracing::info!(%api_addr, %admin_addr, ca = %ca_path.display(), "fake Foreman started");
    Ok(Foreman {
        inner: Arc::new(Inner {
            shared,
            api_addr,
            admin_addr,
            ca_path,
            ca_pem: tls.ca_pem,
            remove_ca,
            tracker,
        }),
    })
}

impl Drop for Inner {
    /// The last handle gone: stop the servers (without waiting).
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

impl Foreman {
    /// Base URL of the API, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.inner.api_addr)
    }

    /// Base URL of the admin API, `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.inner.admin_addr)
    }

    /// Address of the HTTPS API.
    pub fn addr(&self) -> SocketAddr {
        self.inner.api_addr
    }

    /// Address of the admin API.
    pub fn admin_addr(&self) -> SocketAddr {
        self.inner.admin_addr
    }

    /// Path of the CA certificate (PEM).
    pub fn ca_path(&self) -> &Path {
        &self.inner.ca_path
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// The API key clients must send (changed by a `set_key` fault).
    pub fn api_key(&self) -> String {
        self.inner.shared.api_key()
    }

    /// Our client id.
    pub fn client_id(&self) -> &str {
        &self.inner.shared.client_id
    }

    /// Replaces the assigned miner list (served by `GET /api/config/...`).
    pub fn set_miners(&self, miners: Vec<MinerConfigEntry>) {
        *self
            .inner
            .shared
            .miners
            .write()
            .unwrap_or_else(|e| e.into_inner()) = miners;
    }

    /// The assigned miner list.
    pub fn miners(&self) -> Vec<MinerConfigEntry> {
        self.inner
            .shared
            .miners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Injects a fault. An outage replaces a running one; counters replace earlier counters.
    pub fn inject(&self, fault: ForemanFault) {
        self.inner.shared.inject(&fault);
    }

    /// Clears every fault and ends an outage at once.
    pub fn clear_faults(&self) {
        self.inner.shared.clear_faults();
    }

    /// Runs a fault schedule: each entry at `at_secs` after this call injects its fault or
    /// clears all faults. Replaces a schedule still running.
    pub fn schedule(&self, entries: Vec<ScheduleEntry>) -> Result<(), String> {
        self.inner.shared.schedule(entries)
    }

    /// The schedule in force and how far it got.
    pub fn schedule_state(&self) -> ScheduleState {
        self.inner.shared.schedule_state()
    }

    /// Faults in force.
    pub fn active_faults(&self) -> ActiveFaults {
        self.inner.shared.active_faults()
    }

    /// Counters (same as `GET /admin/summary`).
    pub fn summary(&self) -> Summary {
        self.inner.shared.rec().summary.clone()
    }

    /// Samples received per miner (same as `GET /admin/samples`).
    pub fn samples(&self) -> Vec<MinerSamples> {
        self.inner.shared.rec().samples()
    }

    /// Queues commands for the pickaxe (served by `GET /api/pickaxe/{id}/commands` until
    /// started). An id already queued is ignored.
    pub fn queue_commands(&self, commands: Vec<NewCommand>) {
        self.inner.shared.commands().push(commands);
    }

    /// Every queued command with the start, updates and done received for it.
    pub fn commands(&self) -> Vec<CommandRecord> {
        self.inner.shared.commands().records.clone()
    }

    /// The poll hint served with the command list (30 s by default).
    pub fn set_command_delay(&self, delay: Duration) {
        self.inner.shared.commands().delay = delay;
    }

    /// MAC updates received (`{"ip","apiPort","mac"}` each).
    pub fn macs(&self) -> Vec<serde_json::Value> {
        self.inner.shared.commands().macs.clone()
    }

    /// Pickaxes seen on `config` or `started`.
    pub fn pickaxes(&self) -> Vec<PickaxeSeen> {
        self.inner.shared.rec().pickaxes.values().cloned().collect()
    }

    /// Stops both servers and drops open connections (waits up to 5 s).
    pub async fn shutdown(&self) {
        self.inner.shared.shutdown.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
        if self.inner.remove_ca {
            let _ = std::fs::remove_file(&self.inner.ca_path);
        }
    }
}
