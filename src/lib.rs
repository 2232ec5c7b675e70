//! Pickaxe: the on-site agent of a Bitcoin mining farm.
//!
//! # Layout
//! - `config`: the TOML configuration, validated before anything else happens.
//! - `model`: the normalized view of a miner (H/s, °C, W, s).
//! - `miner`: talking to one miner: transport, JSON repair, dialects, detection.
//! - `poller`: one poll cycle over the fleet, bounded concurrency and deadlines.
//! - `store`: SQLite state: outbox of metrics batches, miner list and status, identity.
//! - `foreman`: the Foreman API: paths, bodies, client, retry policy.
//! - `uplink`: store-and-forward from the outbox to Foreman.
//! - `daemon`: wiring of the tasks and their shutdown.
//! - `demo`, `bench`, `status`: the other commands.

pub mod bench;
pub mod bench_buffer;
pub mod bench_mqtt;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod foreman;
pub mod heartbeat;
pub mod logging;
pub mod metrics;
pub mod miner;
pub mod model;
pub mod mqtt;
pub mod poller;
pub mod scan_cli;
pub mod service;
pub mod signal;
pub mod status;
pub mod store;
pub mod uplink;
