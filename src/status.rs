//! `pickaxe status` and `pickaxe check`: what an operator asks on the site server.

use std::fmt::Write as _;

use crate::config::Config;
use crate::foreman::ForemanClient;
use crate::store::{counter, DropReason, Store};

/// Prints identity, uplink, buffer and per-miner state from the state database. Works beside
/// a running daemon (read-only, WAL).
pub async fn show(config: &Config) -> anyhow::Result<()> {
    let path = &config.store.path;
    if !path.exists() {
        anyhow::bail!(
            "no state database at {} yet: has the agent run?",
            path.display()
        );
    }
    let store = Store::open_read_only(path).await?;
    print!(
        "{}",
        render(&store, chrono::Utc::now().timestamp_millis()).await?
    );
    store.close().await;
    Ok(())
}

pub async fn render(store: &Store, now_ms: i64) -> anyhow::Result<String> {
    let mut out = String::new();
    let id = store
        .meta("pickaxe_id")
        .await?
        .unwrap_or_else(|| "-".into());
    let uplink = store
        .meta("uplink_state")
        .await?
        .unwrap_or_else(|| "unknown".into());
    let backlog = store.backlog().await?;
    writeln!(out, "pickaxe id:     {id}")?;
    writeln!(out, "uplink:         {uplink}")?;
    let contact = store
        .meta("foreman_last_contact_ms")
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    let last_error = store.meta("foreman_last_error").await?;
    let error_ms = store
        .meta("foreman_last_error_ms")
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    writeln!(
        out,
        "foreman:        last contact {}{}",
        contact.map_or_else(|| "never".to_string(), |ms| age(now_ms - ms)),
        match (last_error, error_ms) {
            (Some(e), Some(at)) => format!("; last error {}: {e}", age(now_ms - at)),
            _ => String::new(),
        }
    )?;
    let c = store.command_counts().await?;
    writeln!(
        out,
        "commands:       {} running, {} succeeded, {} failed; {} results waiting for Foreman",
        c.received + c.executing,
        c.succeeded,
        c.failed,
        c.results_waiting
    )?;
    let oldest = backlog
        .oldest_cycle_ms
        .map(|ms| format!(", oldest {}", age(now_ms - ms)))
        .unwrap_or_default();
    writeln!(
        out,
        "buffered:       {} samples in {} batches, {} bytes{oldest}",
        backlog.samples, backlog.batches, backlog.bytes
    )?;
    let drain = store
        .meta("drain_rate")
        .await?
        .unwrap_or_else(|| "-".into());
    writeln!(out, "drain rate:     {drain} (last minute of uploads)")?;
    let mut drops = Vec::new();
    let mut dropped = 0;
    for reason in DropReason::ALL {
        let n = store.counter(reason.samples_counter()).await?;
        dropped += n;
        drops.push(format!("{n} {}", reason.as_str()));
    }
    writeln!(
        out,
        "dropped:        {} samples ({}); {} refused by Foreman (dead letter)",
        dropped,
        drops.join(", "),
        store.counter(counter::DEAD_LETTER_SAMPLES).await?,
    )?;
    if let Some(file) = store.meta("last_corrupt_file").await? {
        writeln!(
            out,
            "buffer reset:   a corrupt database was set aside as {file}"
        )?;
    }
    writeln!(
        out,
        "totals:         {} cycles, {} samples taken, {} uploaded, {} failed polls",
        store.counter(counter::CYCLES).await?,
        store.counter(counter::SAMPLES_TAKEN).await?,
        store.counter(counter::SAMPLES_UPLOADED).await?,
        store.counter(counter::POLL_FAILURES).await?,
    )?;
    let miners = store.miner_status().await?;
    writeln!(out, "miners:         {}", miners.len())?;
    if !miners.is_empty() {
        writeln!(
            out,
            "{:<22} {:<10} {:<16} {:>10} {:>10}  last error",
            "address", "family", "model", "TH/s", "last seen"
        )?;
    }
    for m in miners {
        let th = m
            .hashrate
            .map(|h| format!("{:.2}", h / 1e12))
            .unwrap_or_else(|| "-".into());
        let seen = m
            .last_seen_ms
            .map(|ms| age(now_ms - ms))
            .unwrap_or_else(|| "never".into());
        let err = match (m.last_error, m.last_error_ms) {
            (Some(e), Some(at)) if Some(at) > m.last_seen_ms => e,
            _ => String::new(),
        };
        writeln!(
            out,
            "{:<22} {:<10} {:<16} {:>10} {:>10}  {}",
            format!("{}:{}", m.ip, m.port),
            m.family.unwrap_or_else(|| "-".into()),
            m.model.unwrap_or_else(|| "-".into()),
            th,
            seen,
            err
        )?;
    }
    Ok(out)
}

fn age(ms: i64) -> String {
    let s = (ms.max(0) / 1000) as u64;
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

/// Validates the config (already done by the caller), checks Foreman with the key and, when
/// configured, the MQTT broker with its login.
pub async fn check(config: &Config) -> anyhow::Result<()> {
    println!("config:   ok");
    let id = match Store::open_read_only(&config.store.path).await {
        Ok(store) => store.meta("pickaxe_id").await.ok().flatten(),
        Err(_) => None,
    };
    let id = config.foreman.pickaxe_id.clone().or(id);
    let client = ForemanClient::new(config, id.as_deref().unwrap_or("unregistered"))?;
    match client.ping().await {
        Ok(()) => println!(
            "foreman:  reachable, key accepted ({})",
            config.foreman.base_url
        ),
        Err(e) => anyhow::bail!("foreman: {e}"),
    }
    if let Some(mqtt) = &config.mqtt {
        match crate::mqtt::probe(mqtt, id.as_deref().unwrap_or("unregistered")).await {
            Ok(()) => println!("mqtt:     reachable, login accepted ({})", mqtt.url),
            Err(e) => anyhow::bail!("mqtt: {} ({e})", mqtt.url),
        }
    }
    if id.is_some() {
        let miners = client.miner_config().await?;
        println!("miners:   {} assigned by Foreman", miners.len());
    } else {
        println!("miners:   pickaxe id not created yet (first `pickaxe run` creates it)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_shows_the_connection_and_commands() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        let text = render(&store, chrono::Utc::now().timestamp_millis())
            .await
            .unwrap();
        assert!(
            text.contains("foreman:        last contact never"),
            "{text}"
        );
        store.foreman_contact().await.unwrap();
        store.foreman_error("HTTP 503: down").await.unwrap();
        let args = serde_json::json!({"ip": "127.0.0.1", "password": "hunter2"});
        store
            .record_command(
                "c",
                "reboot",
                &args,
                None,
                &args,
                crate::store::Source::Foreman,
            )
            .await
            .unwrap();
        let text = render(&store, chrono::Utc::now().timestamp_millis())
            .await
            .unwrap();
        assert!(
            text.contains("last contact 0s ago; last error 0s ago: HTTP 503: down"),
            "{text}"
        );
        assert!(
            text.contains("commands:       1 running, 0 succeeded, 0 failed; 1 results waiting"),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
    }
}
