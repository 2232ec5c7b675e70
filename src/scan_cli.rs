//! `pickaxe scan RANGE`: finds the miners in a range (at most 65,536 addresses) with a
//! progress bar, and prints them as a table (address, family, model, MAC).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::scan;

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// `127.1.0.0/24`, `127.1.0.1-127.1.0.50` or one address.
    pub range: String,
    /// The miners' API port.
    #[arg(long, default_value_t = 4028)]
    pub port: u16,
    /// Addresses probed at the same time.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Deadline of one probe, e.g. `2s`.
    #[arg(long, default_value = "2s")]
    pub timeout: humantime::Duration,
    /// No progress bar (scripts).
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(args: ScanArgs) -> anyhow::Result<()> {
    let addresses = scan::parse_cidr(&args.range).map_err(anyhow::Error::msg)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(addresses.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} addresses, {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("0 miners");
    let timeout: Duration = args.timeout.into();
    let found = scan::run(
        &addresses,
        args.port,
        None,
        args.concurrency.clamp(1, 5000),
        timeout,
        |scanned, found| {
            bar.set_position(scanned as u64);
            bar.set_message(format!("{found} miners"));
        },
    )
    .await;
    bar.finish_and_clear();
    println!("{:<22} {:<14} {:<20} mac", "address", "family", "model");
    for f in &found {
        println!(
            "{:<22} {:<14} {:<20} {}",
            f.addr.to_string(),
            f.family.map_or("-", |x| x.as_str()),
            f.model.as_deref().unwrap_or("-"),
            f.mac.as_deref().unwrap_or("-")
        );
    }
    println!(
        "{} miners found in {} addresses",
        found.len(),
        addresses.len()
    );
    Ok(())
}
