//! One request, one reply, for writes: the read transport, with the write-side reading of
//! what a closed or silent socket means.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{ControlError, Sent};
use crate::miner::repair::parse_reply;
use crate::miner::reply::{check_status, MinerError};
use crate::miner::transport::{exchange, TransportError};
use crate::miner::Limits;

/// What came back for one request.
pub(super) enum Answer {
    Reply(Value),
    /// Closed without a byte, reset, or silent until the deadline.
    Dropped,
}

pub(super) struct Wire {
    addr: SocketAddr,
    timeout: Duration,
}

impl Wire {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Wire {
        Wire { addr, timeout }
    }

    /// Sends `request` (one JSON object or a text command).
    pub async fn send(&self, request: &[u8]) -> Result<Answer, ControlError> {
        let limits = Limits {
            connect_timeout: self.timeout.min(Duration::from_secs(3)),
            read_timeout: self.timeout,
            max_reply_bytes: 256 * 1024,
        };
        let deadline = Instant::now() + self.timeout + limits.connect_timeout;
        match exchange(self.addr, request, &limits, deadline).await {
            Ok(raw) => parse_reply(&raw)
                .map(Answer::Reply)
                .map_err(|e| ControlError::Protocol(format!("unreadable reply: {e}"))),
            Err(TransportError::Connect(e)) => Err(ControlError::Unreachable(e.to_string())),
            Err(TransportError::Timeout("connect")) => {
                Err(ControlError::Unreachable("connect timed out".into()))
            }
            // The request went out; the miner said nothing (C-19).
            Err(TransportError::Empty)
            | Err(TransportError::Io(_))
            | Err(TransportError::Timeout(_)) => Ok(Answer::Dropped),
            Err(TransportError::TooLarge(n)) => Err(ControlError::Protocol(format!(
                "reply larger than {n} bytes"
            ))),
        }
    }

    /// Sends a JSON `{"command","parameter"}` request.
    pub async fn command(
        &self,
        command: &str,
        parameter: Option<&str>,
    ) -> Result<Answer, ControlError> {
        let body = match parameter {
            Some(p) => serde_json::json!({ "command": command, "parameter": p }),
            None => serde_json::json!({ "command": command }),
        };
        self.send(body.to_string().as_bytes()).await
    }

    /// A reply that must be success (`S`/`I`); a drop is an error (a read-like step).
    pub async fn expect_ok(
        &self,
        command: &str,
        parameter: Option<&str>,
    ) -> Result<Value, ControlError> {
        match self.command(command, parameter).await? {
            Answer::Reply(v) => {
                check_status(&v).map_err(refused)?;
                Ok(v)
            }
            Answer::Dropped => Err(ControlError::Protocol(format!(
                "`{command}`: the miner closed the connection without a reply"
            ))),
        }
    }
}

/// The miner's "no", with its own words.
pub(super) fn refused(e: MinerError) -> ControlError {
    ControlError::Refused(match e.code {
        Some(c) => format!("{} (code {c})", e.msg),
        None => e.msg,
    })
}

/// The outcome of an action step: success, drop allowed or not.
pub(super) fn outcome(answer: Answer, drop_ok: bool, what: &str) -> Result<Sent, ControlError> {
    match answer {
        Answer::Reply(v) => {
            check_status(&v).map_err(refused)?;
            let msg = crate::miner::reply::first_obj(&v, "STATUS")
                .and_then(|s| s.get("Msg"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Ok(Sent::Accepted(msg))
        }
        Answer::Dropped if drop_ok => Ok(Sent::Dropped),
        Answer::Dropped => Err(ControlError::Protocol(format!(
            "`{what}`: the miner closed the connection without a reply"
        ))),
    }
}
