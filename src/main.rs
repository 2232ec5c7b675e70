//! `pickaxe`: the command line. A thin shell over the library: parse arguments, set up
//! logging, run the chosen command, map failures to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pickaxe::config::Config;

/// sysexits.h: the configuration is wrong (systemd should not hammer restarts on this).
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "pickaxe",
    version,
    about = "On-site agent for Bitcoin mining farms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: poll miners, buffer in SQLite, upload to Foreman.
    Run {
        #[arg(long, short, default_value = "/etc/pickaxe/pickaxe.toml")]
        config: PathBuf,
    },
    /// Run the main job on a simulated site (miners + Foreman) in a temporary directory.
    Demo(pickaxe::demo::DemoArgs),
    /// Validate the config and check that Foreman (and the MQTT broker, if set) takes the login.
    Check {
        #[arg(long, short, default_value = "/etc/pickaxe/pickaxe.toml")]
        config: PathBuf,
    },
    /// Show what the state database holds: identity, buffer, miners.
    Status {
        #[arg(long, short, default_value = "/etc/pickaxe/pickaxe.toml")]
        config: PathBuf,
    },
    /// Find the miners in an address range (at most 65,536 addresses): progress bar, table.
    Scan(pickaxe::scan_cli::ScanArgs),
    /// Measure full poll cycles against a simulated fleet running in its own process.
    Bench(pickaxe::bench::BenchArgs),
    /// (for `bench`) Serve a simulated fleet in this process until SIGTERM.
    #[command(hide = true)]
    SimFleet {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        base: std::net::Ipv4Addr,
        #[arg(long, default_value = "s17=1")]
        mix: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pickaxe: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => run(config).await,
            Command::Demo(args) => report(pickaxe::demo::run(args).await),
            Command::Check { config } => {
                let config = match load(&config) {
                    Ok(c) => c,
                    Err(code) => return code,
                };
                report(pickaxe::status::check(&config).await)
            }
            Command::Status { config } => {
                let config = match load(&config) {
                    Ok(c) => c,
                    Err(code) => return code,
                };
                report(pickaxe::status::show(&config).await)
            }
            Command::Bench(args) => report(pickaxe::bench::run(args).await),
            Command::Scan(args) => report(pickaxe::scan_cli::run(args).await),
            Command::SimFleet { count, base, mix } => {
                report(pickaxe::bench::serve_fleet(count, base, &mix).await)
            }
        }
    })
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("pickaxe: {e}");
        ExitCode::from(EX_CONFIG)
    })
}

async fn run(path: PathBuf) -> ExitCode {
    // The config is validated completely before anything touches the state database.
    let config = match load(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = pickaxe::logging::init(config.log.level.as_deref());
    report(pickaxe::service::run(path, config, log).await)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pickaxe: {e:#}");
            ExitCode::FAILURE
        }
    }
}
