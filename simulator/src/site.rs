//! A whole simulated site: a fleet plus a fake Foreman that assigns it.

use crate::fleet::{start_fleet, Fleet, FleetConfig};
use crate::foreman::{start_with_fleet, Foreman, ForemanConfig};

/// A running site: `foreman` serves `fleet` as its miner list and `/admin/fleet`.
#[derive(Clone, Debug)]
pub struct Site {
    pub fleet: Fleet,
    pub foreman: Foreman,
}

/// Starts a fleet and a fake Foreman whose assigned miners are that fleet.
pub async fn start_site(fleet: FleetConfig, foreman: ForemanConfig) -> anyhow::Result<Site> {
    let fleet = start_fleet(fleet).await?;
    let foreman = match start_with_fleet(foreman, Some(fleet.clone())).await {
        Ok(f) => f,
        Err(e) => {
            fleet.shutdown().await;
            return Err(e);
        }
    };
    Ok(Site { fleet, foreman })
}

impl Site {
    /// The fake Foreman (same as the `foreman` field).
    pub fn foreman(&self) -> &Foreman {
        &self.foreman
    }

    /// The simulated fleet (same as the `fleet` field).
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Stops the fake Foreman, then the fleet.
    pub async fn shutdown(&self) {
        self.foreman.shutdown().await;
        self.fleet.shutdown().await;
    }
}
