//! Everything about talking to the Foreman cloud: paths, bodies, the HTTP client and its
//! retry policy.

pub mod client;
pub mod metrics;
pub mod paths;
pub mod retry;

pub use client::{CommandList, ForemanClient, ForemanError, MinerConfigEntry, RemoteCommand};
