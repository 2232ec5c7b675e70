//! MACs of stock Antminers, which their RPC does not report, read from their web interface
//! (`get_system_info.cgi`) for the `/macs` report: each miner once, a few at a time; a miner
//! whose web interface fails is tried again an hour later.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tracing::debug;

use crate::config::{AntminerWebConfig, Secret};
use crate::miner::web_mac::antminer_mac;
use crate::store::MinerStatusRow;

/// Lookups running at once: the report is not urgent, the miners' web servers are slow.
const AT_ONCE: usize = 16;
/// A miner whose lookup failed is tried again after this.
const RETRY: Duration = Duration::from_secs(3600);

type Key = (String, u16);

pub struct WebMacs {
    http: reqwest::Client,
    port: u16,
    user: String,
    pass: Secret,
    found: HashMap<Key, String>,
    retry_at: HashMap<Key, Instant>,
}

impl WebMacs {
    /// `None` when MAC reading is off in the config.
    pub fn new(cfg: &AntminerWebConfig, timeout: Duration) -> Option<WebMacs> {
        if !cfg.read_mac {
            return None;
        }
        let http = crate::miner::web_digest::http_client(timeout)
            .map_err(|e| debug!(error = %e, "No HTTP client for Antminer MACs."))
            .ok()?;
        Some(WebMacs {
            http,
            port: cfg.port,
            user: cfg.username.clone(),
            pass: cfg.password(),
            found: HashMap::new(),
            retry_at: HashMap::new(),
        })
    }

    /// Fills in the MAC of every stock Antminer row that has none, looking up the ones not
    /// known yet (and not failed within the hour).
    pub async fn fill(&mut self, rows: &mut [MinerStatusRow]) {
        let now = Instant::now();
        let wanted: Vec<Key> = rows
            .iter()
            .filter(|r| r.mac.is_none() && r.family.as_deref() == Some("antminer"))
            .map(|r| (r.ip.clone(), r.port))
            .filter(|k| !self.found.contains_key(k))
            .filter(|k| self.retry_at.get(k).is_none_or(|at| *at <= now))
            .collect();
        let lookups = wanted.into_iter().filter_map(|key| {
            let ip: IpAddr = key.0.parse().ok()?;
            let web = SocketAddr::new(ip, self.port);
            let (http, user, pass) = (self.http.clone(), self.user.clone(), self.pass.clone());
            Some(async move {
                let mac = antminer_mac(http, web, &user, pass.expose()).await;
                (key, mac)
            })
        });
        let results: Vec<(Key, Result<String, String>)> = futures::stream::iter(lookups)
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        for (key, result) in results {
            match result {
                Ok(mac) => {
                    self.retry_at.remove(&key);
                    self.found.insert(key, mac);
                }
                Err(e) => {
                    debug!(miner = %format!("{}:{}", key.0, key.1), error = %e, "No MAC from the Antminer web interface; trying again in an hour.");
                    self.retry_at.insert(key, now + RETRY);
                }
            }
        }
        for r in rows.iter_mut().filter(|r| r.mac.is_none()) {
            if let Some(mac) = self.found.get(&(r.ip.clone(), r.port)) {
                r.mac = Some(mac.clone());
            }
        }
    }
}
