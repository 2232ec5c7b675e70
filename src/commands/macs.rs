//! MACs of polled miners to Foreman (`/macs`, at most 100 per request, protocol §2.7), every
//! `commands.mac_interval`, and only what changed since the last accepted report. Stock
//! Antminers' MACs come from their web interface ([`super::web_macs`]).

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::web_macs::WebMacs;
use crate::foreman::ForemanClient;
use crate::store::Store;
use crate::uplink::sleep_or_cancel;

pub async fn report(
    store: Store,
    client: ForemanClient,
    every: Duration,
    mut web: Option<WebMacs>,
    shutdown: CancellationToken,
) {
    let mut sent: HashMap<(String, u16), String> = HashMap::new();
    // First report soon after start, once a poll cycle had a chance to read the MACs.
    let mut delay = every.min(Duration::from_secs(10));
    loop {
        if sleep_or_cancel(delay, &shutdown).await {
            return;
        }
        delay = every;
        let mut rows = match store.miner_status().await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "Cannot read miner MACs.");
                continue;
            }
        };
        if let Some(web) = web.as_mut() {
            web.fill(&mut rows).await;
        }
        let updates: Vec<(String, u16, String)> = rows
            .into_iter()
            .filter_map(|m| Some((m.ip, m.port, m.mac?.to_ascii_lowercase())))
            .filter(|(ip, port, mac)| sent.get(&(ip.clone(), *port)) != Some(mac))
            .collect();
        if updates.is_empty() {
            continue;
        }
        match client.post_macs(&updates).await {
            Ok(()) => {
                debug!(miners = updates.len(), "MACs sent to Foreman.");
                for (ip, port, mac) in updates {
                    sent.insert((ip, port), mac);
                }
            }
            Err(e) => debug!(error = %e, "Cannot send MACs; retrying at the next interval."),
        }
    }
}
