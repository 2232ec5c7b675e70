//! `pickaxe-sim`: simulated stock Antminers and a fake Foreman cloud, for testing Pickaxe
//! without hardware. Everything binds 127.0.0.0/8 only.
//!
//! * [`start_fleet`]: N cgminer-style miners serving real fixture replies, with faults.
//! * [`start_foreman`]: the Foreman pickaxe endpoints over HTTPS with a throwaway CA, an admin
//!   API, and injectable outages / rate limits / slowness.
//! * [`start_site`]: both, with Foreman assigning the fleet.

pub mod admin;
pub mod fleet;
pub mod foreman;
pub mod site;

pub use admin::{serve_fleet_admin, AdminServer};
pub use fleet::{
    parse_fault_counts, parse_mix, start_fleet, Fault, Fleet, FleetConfig, MinerReport,
    RebootReply, ServedCounts, SimMinerInfo, StatsServed,
};
pub use foreman::{
    start_foreman, CommandRecord, Foreman, ForemanConfig, ForemanFault, MinerConfigEntry,
    MinerSamples, NewCommand, OutageMode, Sample, Summary,
};
pub use site::{start_site, Site};
