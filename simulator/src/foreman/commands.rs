//! The fake Foreman's command queue (protocol §2.4-§2.5): commands queued through the admin
//! API are served by `GET /api/pickaxe/{id}/commands` until started (as Foreman does: its
//! own pickaxe has no de-duplication), and every start/update/done received is kept.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command as queued (the body of `POST /admin/commands` is a list of these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewCommand {
    pub id: String,
    pub command: String,
    #[serde(default)]
    pub args: Value,
}

/// A queued command and everything the pickaxe reported about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub id: String,
    pub command: String,
    pub args: Value,
    pub queued_at: DateTime<Utc>,
    /// The first start received (the echo of the command).
    pub start: Option<Value>,
    /// Every start received (a pickaxe re-sending one after a lost answer adds one).
    pub starts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub updates: Vec<Value>,
    /// The first done received.
    pub done: Option<Value>,
    pub dones: u32,
    pub done_at: Option<DateTime<Utc>>,
    /// Times `GET .../commands` handed this command out.
    pub delivered: u32,
}

impl CommandRecord {
    /// `success` / `failed` of the done, if any.
    pub fn status(&self) -> Option<&str> {
        self.done.as_ref()?.pointer("/status/type")?.as_str()
    }

    /// The done's message, if any.
    pub fn message(&self) -> Option<&str> {
        self.done.as_ref()?.pointer("/status/message")?.as_str()
    }
}

/// The queue, in queueing order.
#[derive(Debug)]
pub(crate) struct CommandQueue {
    pub records: Vec<CommandRecord>,
    /// The poll hint served with every list.
    pub delay: Duration,
    /// MAC updates received on `/macs` (ip, apiPort, mac).
    pub macs: Vec<Value>,
}

impl Default for CommandQueue {
    fn default() -> Self {
        CommandQueue {
            records: Vec::new(),
            delay: Duration::from_secs(30),
            macs: Vec::new(),
        }
    }
}

impl CommandQueue {
    pub fn push(&mut self, cmds: Vec<NewCommand>) {
        let now = Utc::now();
        for c in cmds {
            if self.records.iter().any(|r| r.id == c.id) {
                continue;
            }
            self.records.push(CommandRecord {
                id: c.id,
                command: c.command,
                args: c.args,
                queued_at: now,
                start: None,
                starts: 0,
                started_at: None,
                updates: Vec::new(),
                done: None,
                dones: 0,
                done_at: None,
                delivered: 0,
            });
        }
    }

    /// The `GET .../commands` body: every command not started yet, and the poll hint.
    pub fn list(&mut self) -> Value {
        let mut out = Vec::new();
        for r in self.records.iter_mut().filter(|r| r.starts == 0) {
            r.delivered += 1;
            out.push(serde_json::json!({"id": r.id, "command": r.command, "args": r.args}));
        }
        let ms = self.delay.as_millis() as u64;
        if ms.is_multiple_of(1000) {
            serde_json::json!({"commands": out, "delay": ms / 1000, "delaySeconds": ms / 1000, "delayUnits": "SECONDS"})
        } else {
            serde_json::json!({"commands": out, "delay": ms, "delaySeconds": ms / 1000, "delayUnits": "MILLISECONDS"})
        }
    }

    /// Applies a batch `{"commands":[{"commandId":..,"<kind>":{..}}]}`; returns how many
    /// entries named a known command, or an error text for a malformed body.
    pub fn apply(&mut self, kind: &str, body: &Value) -> Result<usize, String> {
        let entries = body
            .get("commands")
            .and_then(Value::as_array)
            .ok_or("body needs a \"commands\" array")?;
        let now = Utc::now();
        let mut n = 0;
        for e in entries {
            let id = e
                .get("commandId")
                .and_then(Value::as_str)
                .ok_or("an entry lacks \"commandId\"")?;
            let inner = e
                .get(kind)
                .cloned()
                .ok_or_else(|| format!("an entry lacks \"{kind}\""))?;
            let Some(r) = self.records.iter_mut().find(|r| r.id == id) else {
                continue;
            };
            n += 1;
            match kind {
                "start" => {
                    r.starts += 1;
                    if r.start.is_none() {
                        r.start = Some(inner);
                        r.started_at = Some(now);
                    }
                }
                "update" => r.updates.push(inner),
                _ => {
                    r.dones += 1;
                    if r.done.is_none() {
                        r.done = Some(inner);
                        r.done_at = Some(now);
                    }
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_is_listed_until_started_and_results_are_kept() {
        let mut q = CommandQueue::default();
        let c = NewCommand {
            id: "a".into(),
            command: "reboot".into(),
            args: json!({"ip": "127.0.0.1"}),
        };
        q.push(vec![c.clone(), c]);
        assert_eq!(q.list()["commands"].as_array().unwrap().len(), 1);
        assert_eq!(q.list()["delaySeconds"], 30);
        let start = json!({"commands": [{"commandId": "a", "start": {"id": "a"}}]});
        assert_eq!(q.apply("start", &start).unwrap(), 1);
        assert!(q.list()["commands"].as_array().unwrap().is_empty());
        let done =
            json!({"commands": [{"commandId": "a", "done": {"status": {"type": "success"}}}]});
        q.apply("done", &done).unwrap();
        assert_eq!(q.records[0].status(), Some("success"));
        assert_eq!(q.records[0].delivered, 2);
        assert!(q.apply("done", &json!({"x": 1})).is_err());
        q.delay = Duration::from_millis(200);
        assert_eq!(q.list()["delayUnits"], "MILLISECONDS");
    }
}
