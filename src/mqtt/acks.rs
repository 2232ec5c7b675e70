//! Results of MQTT commands, from their durable outbox to `<prefix>/commands/<id>/status`.
//!
//! Each status (received, running, succeeded / failed) is published retained at QoS 1 and
//! deleted from SQLite only when the broker echoes it back on our own subscription: rumqttc
//! forgets unacknowledged QoS 1 messages with a clean session, the echo proves the broker
//! has it. Whatever is not echoed is published again on the next connection, so a broker
//! restart mid-command loses no result. Retained statuses of commands pruned from the log
//! are cleared, so the broker does not keep them forever.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{Publish, QoS};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::commands::ID_PREFIX;
use super::connection::{Delivery, Link};
use super::Topics;
use crate::store::{OutboxEntry, Source, Store};

/// Statuses read per round.
const BATCH: i64 = 200;
/// A status not echoed this long after publishing is published again.
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest status payload published: far below the 1 MiB packet limit (a bigger packet
/// would kill the connection on every attempt, forever, since the status stays in SQLite).
const MAX_STATUS: usize = 64 * 1024;
/// How often the outbox is looked at without being woken.
const TICK: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A status published on the current connection, waiting for its echo.
pub struct Sent {
    at: Instant,
    topic: String,
    payload: String,
}

pub struct AckSender {
    pub store: Store,
    pub topics: Topics,
    pub link: watch::Receiver<Option<Link>>,
    pub wake: Arc<Notify>,
    /// How long finished commands are kept (commands.retention).
    pub retention: Duration,
}

impl AckSender {
    pub async fn run(mut self, mut echoes: mpsc::Receiver<Delivery>, shutdown: CancellationToken) {
        // Published on the current connection and not echoed yet.
        let mut sent: HashMap<i64, Sent> = HashMap::new();
        let mut last_prune: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = self.link.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A new connection (or none): what was not echoed may be lost; send again.
                    sent.clear();
                }
                Some(echo) = echoes.recv() => {
                    self.confirm(&echo.publish, &mut sent).await;
                    echo.ack().await;
                    continue;
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            let link = self.link.borrow().clone();
            let Some(link) = link else {
                continue;
            };
            self.publish_pending(&link, &mut sent).await;
            if last_prune.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                self.prune(&link).await;
            }
        }
    }

    /// Publishes every waiting status not already on its way.
    async fn publish_pending(&self, link: &Link, sent: &mut HashMap<i64, Sent>) {
        let entries = match self.store.command_outbox(Source::Mqtt, BATCH).await {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "Cannot read MQTT command results; retrying.");
                return;
            }
        };
        for entry in entries {
            if sent
                .get(&entry.seq)
                .is_some_and(|s| s.at.elapsed() < ECHO_TIMEOUT)
            {
                continue;
            }
            let Some(id) = entry.command_id.strip_prefix(ID_PREFIX) else {
                continue;
            };
            let topic = self.topics.command_status(id);
            let payload = bounded(status_message(id, &entry));
            match link
                .client
                .try_publish(topic.clone(), QoS::AtLeastOnce, true, payload.clone())
            {
                Ok(()) => {
                    sent.insert(
                        entry.seq,
                        Sent {
                            at: Instant::now(),
                            topic,
                            payload,
                        },
                    );
                }
                // Queue full: the rest waits for the next round, in order.
                Err(_) => break,
            }
        }
    }

    /// Our own status came back from the broker: it has it, delete it here.
    async fn confirm(&self, echo: &Publish, sent: &mut HashMap<i64, Sent>) {
        let Ok(body) = serde_json::from_slice::<Value>(&echo.payload) else {
            return;
        };
        let Some(seq) = body.get("seq").and_then(Value::as_i64) else {
            return;
        };
        // Retained copies from earlier runs (or from a database recreated since, whose seqs
        // start again) and anybody else's messages come back too: only the very message we
        // published on this connection counts.
        let Some(mine) = sent.get(&seq) else {
            return;
        };
        if echo.topic != mine.topic || echo.payload.as_ref() != mine.payload.as_bytes() {
            return;
        }
        // One connection delivers in order: whatever was published before this message is
        // on the broker too, even if its own echo was lost (an older status re-sent after
        // a newer one would overwrite the retained final state).
        let at = mine.at;
        let seqs: Vec<i64> = sent
            .iter()
            .filter(|(_, s)| s.at <= at)
            .map(|(q, _)| *q)
            .collect();
        for q in &seqs {
            sent.remove(q);
        }
        if let Err(e) = self.store.ack_command_results(&seqs).await {
            debug!(error = %e, seq, "Cannot delete a delivered MQTT result; it is sent again.");
        }
    }

    /// Forgets old finished MQTT commands and clears their retained statuses.
    async fn prune(&self, link: &Link) {
        let keep = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let ids = match self.store.prune_commands(Source::Mqtt, keep).await {
            Ok(ids) => ids,
            Err(e) => {
                debug!(error = %e, "Cannot prune old MQTT commands.");
                return;
            }
        };
        if !ids.is_empty() {
            info!(
                commands = ids.len(),
                "Old MQTT commands pruned; clearing their statuses."
            );
        }
        for id in ids {
            if let Some(id) = id.strip_prefix(ID_PREFIX) {
                let _ = link.client.try_publish(
                    self.topics.command_status(id),
                    QoS::AtLeastOnce,
                    true,
                    Vec::new(),
                );
            }
        }
    }
}

/// The status as published, shrunk below [`MAX_STATUS`] when its result or message is huge
/// (a scan's result lists every miner found, each with the scan's args).
fn bounded(mut message: Value) -> String {
    let text = message.to_string();
    if text.len() <= MAX_STATUS {
        return text;
    }
    message["result"] = Value::Null;
    message["result_omitted"] = Value::String(format!("{} bytes: too large for MQTT", text.len()));
    if let Some(m) = message["message"].as_str() {
        if m.len() > 1024 {
            let cut = (0..=1024)
                .rev()
                .find(|i| m.is_char_boundary(*i))
                .unwrap_or(0);
            message["message"] = Value::String(format!("{}…", &m[..cut]));
        }
    }
    if let Some(u) = message.get("update") {
        if u.to_string().len() > 1024 {
            message["update"] = Value::Null;
        }
    }
    message.to_string()
}

/// The status message of one outbox entry. Never echoes the command's args (they can hold
/// miner passwords).
fn status_message(id: &str, entry: &OutboxEntry) -> Value {
    let body = &entry.body;
    let at = chrono::DateTime::from_timestamp_millis(entry.created_ms)
        .map(crate::foreman::metrics::format_timestamp);
    let mut message = json!({
        "id": id,
        "seq": entry.seq,
        "command": body.get("command"),
        "at": at,
    });
    let state = match entry.kind.as_str() {
        "start" => "received".to_string(),
        "update" => {
            message["update"] = body.get("update").cloned().unwrap_or(Value::Null);
            "running".to_string()
        }
        _ => {
            let status = &body["status"];
            message["message"] = status.get("message").cloned().unwrap_or(Value::Null);
            message["result"] = body.get("result").cloned().unwrap_or(Value::Null);
            match status.get("type").and_then(Value::as_str) {
                Some("success") => "succeeded".to_string(),
                _ => "failed".to_string(),
            }
        }
    };
    message["state"] = Value::String(state);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::body;

    fn entry(kind: &str, body: Value) -> OutboxEntry {
        OutboxEntry {
            seq: 9,
            command_id: "mqtt/r-1".into(),
            kind: kind.into(),
            body,
            created_ms: 1_764_763_200_000,
        }
    }

    #[test]
    fn huge_results_are_shrunk_below_the_packet_limit() {
        let miners: Vec<Value> = (0..200)
            .map(|i| json!({"ipAddress": format!("127.1.0.{i}"), "parameters": {"ranges": vec!["127.1.0.1"; 1000]}}))
            .collect();
        let done = body::done(
            "scan-ranges",
            true,
            Some("200 miners found"),
            Some(json!({"miners": miners})),
        );
        let m = bounded(status_message("r-1", &entry("done", done)));
        assert!(m.len() < MAX_STATUS, "{}", m.len());
        let v: Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["state"], "succeeded");
        assert!(v["result_omitted"].is_string());
    }

    #[test]
    fn statuses_read_plainly_and_never_carry_args() {
        let start = body::start(
            "mqtt/r-1",
            "reboot",
            &json!({"ip": "127.1.0.5", "password": "hunter2"}),
        );
        let m = status_message("r-1", &entry("start", start));
        assert_eq!(m["state"], "received");
        assert_eq!(m["id"], "r-1");
        assert_eq!(m["seq"], 9);
        assert!(!m.to_string().contains("hunter2"), "{m}");

        let done = body::done("reboot", false, Some("miner never returned"), None);
        let m = status_message("r-1", &entry("done", done));
        assert_eq!(m["state"], "failed");
        assert_eq!(m["message"], "miner never returned");

        let m = status_message(
            "r-1",
            &entry("done", body::done("reboot", true, None, None)),
        );
        assert_eq!(m["state"], "succeeded");

        let update = body::update("scan", json!({"progress": 50}));
        let m = status_message("r-1", &entry("update", update));
        assert_eq!(
            (m["state"].as_str(), m["update"]["progress"].as_i64()),
            (Some("running"), Some(50))
        );
    }
}
