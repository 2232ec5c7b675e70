//! Every Foreman path the agent uses, in one place (protocol §2).

/// Version announced in the miner-config path, as Foreman's own pickaxe does.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET` the miners assigned to this pickaxe. The trailing slash is part of Foreman's path.
pub fn miner_config(client_id: &str, pickaxe_id: &str) -> String {
    format!("/api/config/{client_id}/{pickaxe_id}/{AGENT_VERSION}/")
}

/// `PUT` one metrics batch; Foreman answers 201.
pub fn metrics(client_id: &str, pickaxe_id: &str) -> String {
    format!("/api/metrics/{client_id}/{pickaxe_id}")
}

/// `GET` the runtime tunables.
pub fn app_config(pickaxe_id: &str) -> String {
    format!("/api/pickaxe/{pickaxe_id}/appConfig")
}

/// `POST` (empty body) at every start.
pub fn started(pickaxe_id: &str) -> String {
    format!("/api/pickaxe/{pickaxe_id}/started")
}

/// `GET` with auth: checks the key and the client id.
pub fn ping(client_id: &str) -> String {
    format!("/api/ping/{client_id}")
}

/// `GET` the commands waiting for this pickaxe (protocol §2.4).
pub fn commands(pickaxe_id: &str) -> String {
    format!("/api/pickaxe/{pickaxe_id}/commands")
}

/// `POST` a batch of command starts, updates or dones: `kind` is `start`, `update` or `done`
/// (protocol §2.5).
pub fn command_batch(pickaxe_id: &str, kind: &str) -> String {
    format!("/api/pickaxe/{pickaxe_id}/command/{kind}")
}

/// `POST` MAC addresses of polled miners, at most 100 per request (protocol §2.7).
pub fn macs(pickaxe_id: &str) -> String {
    format!("/api/pickaxe/{pickaxe_id}/macs")
}
