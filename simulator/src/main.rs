//! `pickaxe-sim`: run simulated miners, a fake Foreman, or both, until SIGINT/SIGTERM.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use pickaxe_sim::fleet::{parse_fault_counts, parse_framing, parse_mix, parse_secs};
use pickaxe_sim::{
    serve_fleet_admin, start_fleet, start_foreman, start_site, FleetConfig, ForemanConfig,
    MinerConfigEntry,
};

#[derive(Parser, Debug)]
#[command(
    name = "pickaxe-sim",
    version,
    about = "Simulated miner fleet (every family) and fake Foreman cloud (127.0.0.0/8 only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run simulated miners (stock Antminers unless --mix).
    Miners {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Serve /admin/fleet and /admin/fleet/fault on this loopback address.
        #[arg(long)]
        admin: Option<SocketAddr>,
    },
    /// Run the fake Foreman (HTTPS API + admin API).
    Foreman {
        #[command(flatten)]
        foreman: ForemanArgs,
        /// JSON file with the assigned miner-config entries (`[{"apiIp",..}]`).
        #[arg(long)]
        miners_file: Option<PathBuf>,
    },
    /// Run both; Foreman assigns the simulated fleet.
    Site {
        #[command(flatten)]
        fleet: FleetArgs,
        #[command(flatten)]
        foreman: ForemanArgs,
    },
}

#[derive(Args, Debug)]
struct FleetArgs {
    /// Number of miners.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// First address [default: 127.1.0.1, or 127.0.0.1 with --consecutive-ports].
    #[arg(long)]
    base: Option<Ipv4Addr>,
    /// Miner port, or first port with --consecutive-ports (0 = any free port per miner).
    #[arg(long, default_value_t = 4028)]
    port: u16,
    /// Put every miner on --base, on consecutive ports from --port.
    #[arg(long)]
    consecutive_ports: bool,
    /// Models or families by weight, e.g. `s19pro=40,s17=30` or
    /// `antminer=40,whatsminer=30,braiins=10,luxos=10,avalon=10`.
    #[arg(long)]
    mix: Option<String>,
    /// Seed for the model layout and boot times.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Faults on the last miners, e.g. `hang=2,refuse=1,slow=1,drip=1,close=1,garbage=1`.
    #[arg(long)]
    faults: Option<String>,
    /// Delay of the `slow` fault, seconds.
    #[arg(long, default_value = "3", value_parser = parse_secs)]
    slow_delay: std::time::Duration,
    /// Hashrate-bearing replies remembered per miner [default: 1000, 64 above 2000 miners].
    #[arg(long)]
    history: Option<usize>,
    /// Reply framing per family, e.g. `whatsminer=newline:keep-open,avalon=none`
    /// (terminator nul|none|newline; default nul, closed after the reply).
    #[arg(long)]
    framing: Option<String>,
    /// Start Whatsminers with the write API disabled (encrypted writes get Code 45).
    #[arg(long)]
    wm_write_disabled: bool,
    /// Whatsminer admin password.
    #[arg(long, default_value = "admin")]
    wm_password: String,
    /// Seconds a rebooted miner refuses connections.
    #[arg(long, default_value_t = 0.0)]
    reboot_secs: f64,
    /// Serve the stock Antminers' web interface on this port of each miner's IP (0 = a free
    /// port each); none when absent.
    #[arg(long)]
    web_port: Option<u16>,
}

#[derive(Args, Debug)]
struct ForemanArgs {
    /// HTTPS address of the fake Foreman (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Admin API address (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:0")]
    admin: SocketAddr,
    #[arg(long, default_value = "test-key")]
    api_key: String,
    #[arg(long, default_value = "1")]
    client_id: String,
    /// Where to write the generated CA certificate (PEM) [default: a file in the temp dir].
    #[arg(long)]
    ca_out: Option<PathBuf>,
}

impl FleetArgs {
    fn config(&self) -> anyhow::Result<FleetConfig> {
        let base = self.base.unwrap_or(if self.consecutive_ports {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::new(127, 1, 0, 1)
        });
        let faults = match &self.faults {
            Some(spec) => parse_fault_counts(spec, self.slow_delay)?,
            None => Vec::new(),
        };
        Ok(FleetConfig {
            count: self.count,
            base,
            port: self.port,
            consecutive_ports: self.consecutive_ports,
            mix: match &self.mix {
                Some(spec) => parse_mix(spec)?,
                None => Vec::new(),
            },
            seed: self.seed,
            faults,
            history: self.history,
            framing: match &self.framing {
                Some(spec) => parse_framing(spec)?,
                None => Vec::new(),
            },
            whatsminer_write_api: !self.wm_write_disabled,
            whatsminer_password: self.wm_password.clone(),
            reboot_secs: self.reboot_secs,
            luxos_session_secs: 60.0,
            web_port: self.web_port,
        })
    }
}

impl ForemanArgs {
    fn config(&self) -> ForemanConfig {
        ForemanConfig {
            listen: self.listen,
            admin: self.admin,
            api_key: self.api_key.clone(),
            client_id: self.client_id.clone(),
            ca_out: self.ca_out.clone().unwrap_or_default(),
        }
    }
}

/// Prints the one `{"event":"ready",...}` line, keys in the given order.
fn ready(fields: &[(&str, Value)]) {
    let body: Vec<String> = std::iter::once(("event", json!("ready")))
        .chain(fields.iter().map(|(k, v)| (*k, v.clone())))
        .map(|(k, v)| format!("{}:{v}", json!(k)))
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{{{}}}", body.join(","));
    let _ = out.flush();
}

/// SIGINT/SIGTERM handlers, installed before the ready line so no early signal is lost.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        if let (Some(term), Some(int)) = (self.term.as_mut(), self.int.as_mut()) {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn fleet_fields(fleet: &pickaxe_sim::Fleet, v: &mut Vec<(&'static str, Value)>) {
    let miners = fleet.miners();
    v.push(("miners", json!(miners.len())));
    if let Some(first) = miners.first() {
        v.push(("first_miner", json!(first.addr.to_string())));
    }
    if let Some(last) = miners.last() {
        v.push(("last_miner", json!(last.addr.to_string())));
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    pickaxe_sim::fleet::raise_fd_limit();
    let signals = Signals::install();
    match cli.cmd {
        Cmd::Miners { fleet, admin } => {
            let fleet = start_fleet(fleet.config()?).await?;
            let admin = match admin {
                Some(a) => Some(serve_fleet_admin(fleet.clone(), a).await?),
                None => None,
            };
            let mut v = Vec::new();
            fleet_fields(&fleet, &mut v);
            if let Some(a) = &admin {
                v.push(("admin", json!(a.url())));
            }
            ready(&v);
            signals.wait().await;
            tracing::info!("stopping");
            if let Some(a) = admin {
                a.shutdown().await;
            }
            fleet.shutdown().await;
        }
        Cmd::Foreman {
            foreman,
            miners_file,
        } => {
            let f = start_foreman(foreman.config()).await?;
            if let Some(path) = miners_file {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let list: Vec<MinerConfigEntry> =
                    serde_json::from_str(&text).with_context(|| {
                        format!(
                            "{}: expected an array of miner-config entries",
                            path.display()
                        )
                    })?;
                f.set_miners(list);
            }
            ready(&[
                ("foreman", json!(f.url())),
                ("admin", json!(f.admin_url())),
                ("ca", json!(f.ca_path().display().to_string())),
                ("assigned", json!(f.miners().len())),
            ]);
            signals.wait().await;
            tracing::info!("stopping");
            f.shutdown().await;
        }
        Cmd::Site { fleet, foreman } => {
            let site = start_site(fleet.config()?, foreman.config()).await?;
            let mut v = vec![
                ("foreman", json!(site.foreman.url())),
                ("admin", json!(site.foreman.admin_url())),
                ("ca", json!(site.foreman.ca_path().display().to_string())),
            ];
            fleet_fields(&site.fleet, &mut v);
            ready(&v);
            signals.wait().await;
            tracing::info!("stopping");
            site.shutdown().await;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pickaxe-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pickaxe-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
