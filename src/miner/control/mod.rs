//! Write commands to a miner over its TCP API: reboot, power, pools, fault light, in each
//! family's dialect. Reading and verification stay with [`crate::miner::poll`]; this module
//! only sends the action and says whether the miner took it.
//!
//! Outcomes are truthful (C-19, C-20, C-34): a reply the miner refuses is an error carrying
//! the miner's own reason; a socket the miner drops (or leaves silent) after a reboot-like
//! request is [`Sent::Dropped`] ("sent, unconfirmed"), to be verified by the caller; an action
//! the family cannot do over this API is [`ControlError::Unsupported`], never silence.

mod antminer_web;
mod avalon;
mod avalon_pools;
mod braiins;
mod cgminer_pools;
#[cfg(test)]
mod fake_miner;
mod luxos;
mod whatsminer;
mod whatsminer_v3;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Secret;
use crate::model::Family;

/// What to do to a miner.
#[derive(Debug, Clone)]
pub enum Action {
    Reboot,
    /// Stop hashing (power-mode `sleeping`).
    Sleep,
    /// Hash again (power-mode `normal` on a sleeping miner).
    Wake,
    /// A power level (power-mode `low`/`normal`/`high` on a hashing miner).
    PowerLevel(Level),
    /// Replace the pools (in priority order).
    Pools(Vec<PoolSpec>),
    /// Fault light on (blink) or back to normal.
    Light(bool),
}

impl Action {
    /// True for actions after which the miner may drop the socket without a reply.
    pub fn may_drop_socket(&self) -> bool {
        matches!(self, Action::Reboot | Action::Sleep | Action::Wake)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Normal,
    High,
}

/// One pool as Foreman sends it (`url`, `user`, `pass`).
#[derive(Clone)]
pub struct PoolSpec {
    pub url: String,
    pub user: String,
    pub pass: Secret,
}

impl PoolSpec {
    #[cfg(test)]
    pub(crate) fn new(url: &str, user: &str, pass: &str) -> PoolSpec {
        PoolSpec {
            url: url.into(),
            user: user.into(),
            pass: Secret::new(pass),
        }
    }
}

impl std::fmt::Debug for PoolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool password is a secret.
        write!(f, "PoolSpec({}, {})", self.url, self.user)
    }
}

/// How the command says to log in to the miner's write interfaces (`username` /
/// `password`), and where its web interface listens (`port`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The web interface's port (stock Antminer CGI); 80 when absent.
    pub web_port: Option<u16>,
}

/// The miner took the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// It answered success (its message, if any).
    Accepted(String),
    /// It closed the socket or stayed silent: expected for reboot-like actions, to be
    /// confirmed by watching the miner.
    Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// This family cannot do this over its TCP API.
    #[error("{0}")]
    Unsupported(String),
    /// The miner could not be reached; nothing was sent.
    #[error("miner unreachable: {0}")]
    Unreachable(String),
    /// The miner refused the credentials.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The miner answered no, with its reason.
    #[error("miner refused: {0}")]
    Refused(String),
    /// The miner's answer made no sense, or the exchange broke midway.
    #[error("{0}")]
    Protocol(String),
}

impl ControlError {
    /// The same error with its message rewritten for the step it happened in. Once
    /// something was changed on the miner, unreachable no longer means "nothing was sent".
    pub(super) fn in_step(self, changed: bool, msg: impl Fn(&str) -> String) -> ControlError {
        match self {
            ControlError::Refused(m) => ControlError::Refused(msg(&m)),
            ControlError::Auth(m) => ControlError::Auth(msg(&m)),
            ControlError::Unsupported(m) => ControlError::Unsupported(msg(&m)),
            ControlError::Unreachable(m) if changed => {
                ControlError::Protocol(msg(&format!("miner unreachable: {m}")))
            }
            ControlError::Unreachable(m) => ControlError::Unreachable(msg(&m)),
            ControlError::Protocol(m) => ControlError::Protocol(msg(&m)),
        }
    }
}

/// Bounds of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct ControlLimits {
    pub timeout: Duration,
}

/// Sends `action` to the miner at `addr`, whose family is `family`.
pub async fn execute(
    addr: SocketAddr,
    family: Family,
    action: &Action,
    creds: &Credentials,
    limits: ControlLimits,
) -> Result<Sent, ControlError> {
    let w = wire::Wire::new(addr, limits.timeout);
    match family {
        Family::Whatsminer => whatsminer::execute(&w, action, creds).await,
        Family::LuxOs => luxos::execute(&w, action).await,
        Family::Braiins => braiins::execute(&w, action).await,
        Family::Avalon => avalon::execute(&w, action, creds).await,
        Family::Antminer => antminer_web::execute(addr, action, creds, limits.timeout).await,
        Family::Hiveon | Family::Vnish => Err(ControlError::Unsupported(
            format!(
                "{} firmware takes writes only through its web interface (CGI), which this agent does not drive",
                family.as_str()
            ),
        )),
        Family::WhatsminerV3 => whatsminer_v3::execute(addr, action, creds, limits.timeout).await,
        Family::Cgminer => Err(ControlError::Unsupported(
            "this cgminer firmware has no known write commands".into(),
        )),
    }
}

fn unsupported(family: &str, action: &Action) -> ControlError {
    let what = match action {
        Action::Reboot => "reboot",
        Action::Sleep | Action::Wake => "power on/off",
        Action::PowerLevel(_) => "power levels",
        Action::Pools(_) => "pool changes",
        Action::Light(_) => "the fault light",
    };
    ControlError::Unsupported(format!("{what} not supported on {family} over its TCP API"))
}
