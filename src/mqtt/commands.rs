//! Commands on `<prefix>/commands`: the same JSON as Foreman's command feed (`id`, `command`,
//! `args`), plus optional `issued_at` / `expires_at`. An accepted command goes through the
//! same durable, exactly-once path as Foreman's ([`crate::commands::execute::Runner`]): it
//! is recorded before anything acts on it, and an id seen before (a QoS 1 redelivery, a
//! resend) never runs again. Its results come back on `<prefix>/commands/<id>/status`
//! through [`super::acks`].
//!
//! Refused without being recorded: everything while `mqtt.commands` is off, retained
//! commands (the broker would replay them on every reconnect), stale or expired ones, and,
//! with a persistent session, ones without `issued_at` (the broker may have queued them for
//! days while the agent was away, and MQTT 3.1.1 does not say which messages were queued).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rumqttc::{Publish, QoS};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::connection::{Delivery, Link};
use super::Topics;
use crate::commands::execute::Runner;
use crate::store::{Source, Store};

/// Where MQTT command ids live in the command log, apart from Foreman's ids.
pub const ID_PREFIX: &str = "mqtt/";

/// A command as sent over MQTT.
#[derive(Debug, Deserialize)]
struct Incoming {
    id: Value,
    command: String,
    #[serde(default)]
    args: Value,
    /// Times are checked once the id is known, so a bad one is answered on its status topic.
    #[serde(default)]
    issued_at: Value,
    #[serde(default)]
    expires_at: Value,
}

/// Why a command is not taken.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// Not even an id to answer on.
    Malformed(String),
    /// Has an id: answered on its status topic.
    Refused {
        id: String,
        command: String,
        reason: String,
    },
}

/// Which commands are taken.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `mqtt.commands` is on (and the agent has a command path).
    pub enabled: bool,
    /// `mqtt.command_max_age`: older `issued_at` is stale.
    pub max_age: Duration,
    /// A persistent session: the broker queues commands while the agent is away.
    pub require_issued_at: bool,
}

pub struct CommandInbox {
    pub runner: Option<Arc<Runner>>,
    pub store: Store,
    pub topics: Topics,
    pub policy: Policy,
    pub link: watch::Receiver<Option<Link>>,
    pub stats: Arc<super::MqttStats>,
}

impl CommandInbox {
    pub async fn run(self, mut rx: mpsc::Receiver<Delivery>, shutdown: CancellationToken) {
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => return,
                },
            };
            match check(&delivery.publish, self.policy, Utc::now()) {
                Ok(command) => self.accept(command).await,
                Err(refusal) => {
                    if !self.already_taken(&refusal).await {
                        self.refuse(refusal);
                    }
                }
            }
            // Only now, recorded or answered: a crash before this leaves the command with
            // the broker (persistent session), which delivers it again.
            delivery.ack().await;
        }
    }

    async fn accept(&self, c: Accepted) {
        let Some(runner) = &self.runner else {
            return;
        };
        let stored_id = format!("{ID_PREFIX}{}", c.id);
        match runner
            .accept(&stored_id, &c.command, &c.args, Source::Mqtt)
            .await
        {
            Ok(true) => super::MqttStats::add(&self.stats.commands_accepted, 1),
            Ok(false) => debug!(id = %c.id, "MQTT command already recorded; not run again."),
            Err(e) => {
                error!(error = %e, id = %c.id, "Cannot record an MQTT command; it is not run.");
                self.refuse(Refusal::Refused {
                    id: c.id,
                    command: c.command,
                    reason: "cannot record the command; not run".into(),
                });
            }
        }
    }

    /// A command delivered again (its ack was lost with the connection) may be stale by now,
    /// or refused by a changed config: it was recorded and has its own statuses, and a
    /// refusal would be published over them.
    async fn already_taken(&self, refusal: &Refusal) -> bool {
        let Refusal::Refused { id, .. } = refusal else {
            return false;
        };
        let taken = self
            .store
            .command_recorded(&format!("{ID_PREFIX}{id}"))
            .await
            .unwrap_or(false);
        if taken {
            debug!(id = %id, "MQTT command already recorded; delivered again, not refused.");
        }
        taken
    }

    /// Answers a refused command once, not retained: nothing was recorded to keep.
    fn refuse(&self, refusal: Refusal) {
        super::MqttStats::add(&self.stats.commands_refused, 1);
        let (topic, body) = match &refusal {
            Refusal::Malformed(reason) => {
                warn!(reason = %reason, "MQTT: malformed command rejected.");
                (self.topics.rejected(), json!({ "error": reason }))
            }
            Refusal::Refused {
                id,
                command,
                reason,
            } => {
                info!(id = %id, reason = %reason, "MQTT command refused.");
                (
                    self.topics.command_status(id),
                    json!({
                        "id": id,
                        "command": command,
                        "state": "refused",
                        "message": reason,
                        "at": crate::foreman::metrics::format_timestamp(Utc::now()),
                    }),
                )
            }
        };
        let link = self.link.borrow().clone();
        if let Some(link) = link {
            if let Err(e) =
                link.client
                    .try_publish(topic, QoS::AtLeastOnce, false, body.to_string())
            {
                debug!(error = %e, "MQTT: cannot queue a refusal.");
            }
        }
    }
}

/// A command that passed every check.
#[derive(Debug)]
struct Accepted {
    id: String,
    command: String,
    args: Value,
}

/// An optional RFC 3339 time with its offset; the error names the field.
fn time_field(name: &str, value: &Value) -> Result<Option<DateTime<Utc>>, String> {
    let unusable = || {
        format!("`{name}` must be an RFC 3339 time with an offset, like \"2026-12-04T16:55:09Z\"")
    };
    match value {
        Value::Null => Ok(None),
        Value::String(text) => DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| unusable()),
        _ => Err(unusable()),
    }
}

/// Decides whether a message is a command this agent takes.
fn check(publish: &Publish, policy: Policy, now: DateTime<Utc>) -> Result<Accepted, Refusal> {
    let incoming: Incoming = serde_json::from_slice(&publish.payload).map_err(|e| {
        Refusal::Malformed(format!("not a command (JSON with id, command, args): {e}"))
    })?;
    let id = match &incoming.id {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    // Control characters and noncharacters make the status topic a packet brokers refuse
    // (mosquitto drops the connection as "malformed"), and forge lines in the log.
    let unfit = |c: char| {
        c.is_control()
            || matches!(c, '/' | '+' | '#')
            || (u32::from(c) & 0xFFFE) == 0xFFFE
            || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
    };
    if id.is_empty() || id.len() > 128 || id.contains(unfit) {
        return Err(Refusal::Malformed(
            "`id` must be a non-empty string of at most 128 bytes without '/', '+', '#' or control characters"
                .into(),
        ));
    }
    let refused = |reason: String| Refusal::Refused {
        id: id.clone(),
        command: incoming.command.trim().to_string(),
        reason,
    };
    if !policy.enabled {
        return Err(refused(
            "commands over MQTT are disabled on this pickaxe (mqtt.commands = false)".into(),
        ));
    }
    if publish.retain {
        return Err(refused(
            "retained commands are refused: the broker would replay them on every reconnect".into(),
        ));
    }
    let expires_at = time_field("expires_at", &incoming.expires_at).map_err(&refused)?;
    let issued_at = time_field("issued_at", &incoming.issued_at).map_err(&refused)?;
    if let Some(expires) = expires_at {
        if expires <= now {
            return Err(refused(format!("expired at {expires}")));
        }
    }
    if let Some(issued) = issued_at {
        let age = now.signed_duration_since(issued);
        let max_age = policy.max_age.as_secs();
        if age.num_seconds() > max_age as i64 {
            return Err(refused(format!(
                "stale: issued {}s ago, more than mqtt.command_max_age ({max_age}s)",
                age.num_seconds(),
            )));
        }
        // A time far ahead would stretch the age bound by as much: the clocks disagree.
        if -age.num_seconds() > max_age as i64 {
            return Err(refused(format!(
                "issued {}s in the future, more than mqtt.command_max_age ({max_age}s): check the sender's clock and this agent's",
                -age.num_seconds(),
            )));
        }
    } else if policy.require_issued_at {
        return Err(refused(
            "`issued_at` is required with mqtt.persistent_session: the broker may have queued this command while the agent was away".into(),
        ));
    }
    if incoming.command.trim().is_empty() {
        return Err(refused("`command` is empty".into()));
    }
    let args = match incoming.args {
        Value::Null => json!({}),
        Value::Object(_) => incoming.args,
        _ => return Err(refused("`args` must be an object".into())),
    };
    Ok(Accepted {
        id,
        command: incoming.command.trim().to_string(),
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, retain: bool) -> Publish {
        let mut p = Publish::new("p/commands", QoS::AtLeastOnce, body.as_bytes().to_vec());
        p.retain = retain;
        p
    }

    fn now() -> DateTime<Utc> {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    const MAX_AGE: Duration = Duration::from_secs(300);

    fn policy(enabled: bool) -> Policy {
        Policy {
            enabled,
            max_age: MAX_AGE,
            require_issued_at: false,
        }
    }

    #[test]
    fn a_foreman_shaped_command_is_taken() {
        let c = check(
            &message(
                r#"{"id":"r-1","command":"reboot","args":{"ip":"127.1.0.5"},"issued_at":"2026-12-03T11:59:00Z"}"#,
                false,
            ),
            policy(true),
            now(),
        )
        .unwrap();
        assert_eq!((c.id.as_str(), c.command.as_str()), ("r-1", "reboot"));
        assert_eq!(c.args["ip"], "127.1.0.5");
    }

    #[test]
    fn refusals_name_their_reason() {
        let reason = |body: &str, retain: bool, enabled: bool| match check(
            &message(body, retain),
            policy(enabled),
            now(),
        )
        .unwrap_err()
        {
            Refusal::Refused { id, reason, .. } => {
                assert_eq!(id, "7");
                reason
            }
            Refusal::Malformed(m) => panic!("malformed: {m}"),
        };
        let ok = r#"{"id":7,"command":"reboot","args":{}}"#;
        assert!(reason(ok, false, false).contains("disabled"));
        assert!(reason(ok, true, true).contains("retained"));
        let stale = r#"{"id":"7","command":"reboot","issued_at":"2026-12-03T11:00:00Z"}"#;
        assert!(reason(stale, false, true).starts_with("stale: issued 3600s ago"));
        let expired = r#"{"id":"7","command":"reboot","expires_at":"2026-12-03T11:59:59Z"}"#;
        assert!(reason(expired, false, true).starts_with("expired"));
        let ahead = r#"{"id":"7","command":"reboot","issued_at":"2026-12-03T13:00:00Z"}"#;
        assert!(reason(ahead, false, true).starts_with("issued 3600s in the future"));
        let slightly_ahead = r#"{"id":"7","command":"reboot","issued_at":"2026-12-03T12:00:30Z"}"#;
        assert!(check(&message(slightly_ahead, false), policy(true), now()).is_ok());
        for bad in [r#""2026-12-03T11:59:00""#, "1764763140", r#""yesterday""#] {
            let body = format!(r#"{{"id":"7","command":"reboot","issued_at":{bad}}}"#);
            assert!(
                reason(&body, false, true).starts_with("`issued_at` must be an RFC 3339 time"),
                "{bad}"
            );
        }
        let body = r#"{"id":"7","command":"reboot","expires_at":[]}"#;
        assert!(reason(body, false, true).starts_with("`expires_at` must be"));
        assert!(
            reason(r#"{"id":"7","command":"reboot","args":[1]}"#, false, true).contains("object")
        );
    }

    #[test]
    fn a_persistent_session_takes_only_commands_that_say_when_they_were_issued() {
        let persistent = Policy {
            require_issued_at: true,
            ..policy(true)
        };
        let undated = message(r#"{"id":"q-1","command":"reboot","args":{}}"#, false);
        match check(&undated, persistent, now()) {
            Err(Refusal::Refused {
                id,
                command,
                reason,
            }) => {
                assert_eq!((id.as_str(), command.as_str()), ("q-1", "reboot"));
                assert!(reason.contains("issued_at"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(check(&undated, policy(true), now()).is_ok());
        let dated = message(
            r#"{"id":"q-2","command":"reboot","issued_at":"2026-12-03T11:58:00Z"}"#,
            false,
        );
        assert!(check(&dated, persistent, now()).is_ok());
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        for body in [
            "",
            "reboot",
            "{}",
            r#"{"id":"a/b","command":"reboot"}"#,
            r#"{"id":"","command":"reboot"}"#,
            r#"{"id":null,"command":"reboot"}"#,
            r#"{"id":"a\nERROR forged","command":"reboot"}"#,
            r#"{"id":"a\u0001","command":"reboot"}"#,
            r#"{"id":"a\uffff","command":"reboot"}"#,
            "\u{0}\u{ff}",
        ] {
            assert!(
                matches!(
                    check(&message(body, false), policy(true), now()),
                    Err(Refusal::Malformed(_))
                ),
                "{body:?}"
            );
        }
    }
}
