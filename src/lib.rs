//! Pickaxe: the on-site agent of a Bitcoin mining farm.
pub mod model;
pub mod miner;
