//! Admin API (plain HTTP on its own loopback port, up during Foreman outages).
//!
//! Foreman routes (`/admin/summary`, `/admin/samples`, `/admin/faults`, `/admin/miners`,
//! `/admin/pickaxes`) exist when a fake Foreman runs in this process; fleet routes
//! (`/admin/fleet`, `/admin/fleet/fault`) when simulated miners do.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::fleet::{parse_secs, Fault, Fleet, Framing, MinerReport, Terminator};
use crate::foreman::{ForemanFault, MinerConfigEntry, ScheduleEntry};

type Shared = crate::foreman::SharedHandle;

#[derive(Clone)]
struct AdminState {
    foreman: Option<Arc<Shared>>,
    fleet: Option<Fleet>,
}

type St = State<AdminState>;

/// The admin router for whatever runs in this process.
pub(crate) fn router(foreman: Option<Arc<Shared>>, fleet: Option<Fleet>) -> Router {
    Router::new()
        .route("/admin/summary", get(summary))
        .route("/admin/samples", get(samples))
        .route(
            "/admin/faults",
            get(get_faults).post(post_faults).delete(delete_faults),
        )
        .route("/admin/miners", get(get_miners).put(put_miners))
        .route("/admin/pickaxes", get(pickaxes))
        .route("/admin/fleet", get(fleet_list))
        .route("/admin/fleet/fault", post(fleet_fault))
        .route("/admin/fleet/miner", post(fleet_miner))
        .route("/admin/schedule", get(get_schedule).post(post_schedule))
        .route("/admin/commands", get(get_commands).post(post_commands))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "no such admin endpoint") })
        .with_state(AdminState { foreman, fleet })
}

fn err(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "message": msg }))).into_response()
}

fn no_foreman() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "no fake Foreman runs in this process",
    )
}

fn no_fleet() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "no simulated miners run in this process",
    )
}

async fn summary(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.rec().summary.clone()).into_response(),
        None => no_foreman(),
    }
}

/// `?ip=&port=` narrows the answer to one miner.
async fn samples(State(st): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(f) = &st.foreman else {
        return no_foreman();
    };
    let port: Option<u16> = q.get("port").and_then(|p| p.parse().ok());
    let miners: Vec<_> = f
        .rec()
        .samples()
        .into_iter()
        .filter(|m| q.get("ip").is_none_or(|ip| *ip == m.ip))
        .filter(|m| port.is_none_or(|p| p == m.port))
        .collect();
    Json(json!({ "miners": miners })).into_response()
}

async fn get_faults(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.active_faults()).into_response(),
        None => no_foreman(),
    }
}

async fn post_faults(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(f) = &st.foreman else {
        return no_foreman();
    };
    match serde_json::from_slice::<ForemanFault>(&body) {
        Ok(fault) => {
            f.inject(&fault);
            Json(json!({ "ok": true, "fault": fault })).into_response()
        }
        Err(e) => err(StatusCode::BAD_REQUEST, &format!("invalid fault: {e}")),
    }
}

async fn delete_faults(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => {
            f.clear_faults();
            Json(json!({ "ok": true })).into_response()
        }
        None => no_foreman(),
    }
}

async fn get_miners(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.miners.read().unwrap_or_else(|e| e.into_inner()).clone()).into_response(),
        None => no_foreman(),
    }
}

async fn put_miners(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(f) = &st.foreman else {
        return no_foreman();
    };
    match serde_json::from_slice::<Vec<MinerConfigEntry>>(&body) {
        Ok(list) => {
            let n = list.len();
            *f.miners.write().unwrap_or_else(|e| e.into_inner()) = list;
            Json(json!({ "ok": true, "miners": n })).into_response()
        }
        Err(e) => err(
            StatusCode::BAD_REQUEST,
            &format!("expected an array of miner-config entries: {e}"),
        ),
    }
}

async fn pickaxes(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.rec().pickaxes.values().cloned().collect::<Vec<_>>()).into_response(),
        None => no_foreman(),
    }
}

/// JSON of one miner report, `ghs` printed as the miner printed it.
pub(crate) fn report_json(r: &MinerReport) -> Value {
    let stats: Vec<Value> = r
        .stats_served
        .iter()
        .map(|s| {
            json!({
                "at": s.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "ghs": format!("{:.*}", r.ghs_decimals, s.ghs),
            })
        })
        .collect();
    let mut v = json!({
        "ip": r.addr.ip().to_string(),
        "port": r.addr.port(),
        "model": r.model,
        "family": r.family,
        "make": r.make,
        "model_name": r.model_name,
        "firmware": r.firmware,
        "mac": r.mac,
        "hashing": r.hashing,
        "hashrate_ghs": r.hashrate_ghs,
        "fault": r.fault.name(),
        "framing": r.framing,
        "served": r.served,
        "commands": r.commands,
        "stats_served": stats,
        "reboots": r.reboots,
        "power_log": r.power_log,
    });
    match r.fault {
        Fault::Slow(d) => v["delay_secs"] = json!(d.as_secs_f64()),
        Fault::Split { chunk, delay_ms } => {
            v["chunk"] = json!(chunk);
            v["delay_secs"] = json!(f64::from(delay_ms) / 1000.0);
        }
        _ => {}
    }
    if let Some(a) = r.v3_addr {
        v["v3_port"] = json!(a.port());
    }
    if let Some(a) = r.web_addr {
        v["web_port"] = json!(a.port());
        v["web_mac"] = json!(r.web_mac);
        v["web_requests"] = json!(r.web_requests);
    }
    if r.family == crate::fleet::Family::Whatsminer {
        v["write_api"] = json!(r.write_api);
    }
    v
}

/// `?ip=&port=` narrows to matching miners; `?stats=false` leaves out `stats_served`.
async fn fleet_list(State(st): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(fleet) = &st.fleet else {
        return no_fleet();
    };
    let with_stats = q.get("stats").is_none_or(|v| v != "false" && v != "0");
    let ip: Option<IpAddr> = q.get("ip").and_then(|s| s.parse().ok());
    let port: Option<u16> = q.get("port").and_then(|p| p.parse().ok());
    let list: Vec<Value> = fleet
        .reports(with_stats)
        .iter()
        .filter(|r| ip.is_none_or(|ip| r.addr.ip() == ip))
        .filter(|r| port.is_none_or(|p| r.addr.port() == p))
        .map(report_json)
        .collect();
    Json(list).into_response()
}

#[derive(Deserialize)]
struct FleetFault {
    ip: IpAddr,
    port: u16,
    fault: String,
    /// Delay for `slow` (default 3 s), pause between chunks for `split` (default 0.05 s).
    #[serde(default)]
    delay_secs: Option<f64>,
    /// Chunk size for `split`, bytes (default 100).
    #[serde(default)]
    chunk: Option<u16>,
}

async fn fleet_fault(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(fleet) = &st.fleet else {
        return no_fleet();
    };
    let req: FleetFault = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return err(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let delay = match req.delay_secs.map(|s| parse_secs(&s.to_string())) {
        Some(Err(e)) => return err(StatusCode::BAD_REQUEST, &e),
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let fault = match Fault::from_name(&req.fault, delay) {
        Ok(Fault::Split { .. }) => Fault::split(
            req.chunk.unwrap_or(crate::fleet::DEFAULT_SPLIT_CHUNK),
            delay.unwrap_or(crate::fleet::DEFAULT_SPLIT_DELAY),
        ),
        Ok(f) => f,
        Err(e) => return err(StatusCode::BAD_REQUEST, &e),
    };
    let addr = SocketAddr::new(req.ip, req.port);
    match fleet.set_fault(addr, fault) {
        Ok(()) => {
            Json(json!({ "ip": req.ip.to_string(), "port": req.port, "fault": fault.name() }))
                .into_response()
        }
        Err(e) => err(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// `POST /admin/fleet/miner`: a miner's firmware state and framing; every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinerChange {
    ip: IpAddr,
    port: u16,
    hashing: Option<bool>,
    write_api: Option<bool>,
    password: Option<String>,
    terminator: Option<String>,
    keep_open: Option<bool>,
    #[serde(default)]
    reboot: bool,
    /// How it answers the command that reboots it: `reply`, `close`, `hang` (C-19).
    reboot_reply: Option<crate::fleet::RebootReply>,
    /// Avalon: older firmware whose `setpool` takes no slot.
    legacy_setpool: Option<bool>,
}

async fn fleet_miner(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(fleet) = &st.fleet else {
        return no_fleet();
    };
    let req: MinerChange = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return err(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let addr = SocketAddr::new(req.ip, req.port);
    let Some(report) = fleet.report(addr) else {
        return err(
            StatusCode::NOT_FOUND,
            &format!("no simulated miner at {addr}"),
        );
    };
    let terminator = match req.terminator.as_deref().map(Terminator::from_name) {
        Some(Err(e)) => return err(StatusCode::BAD_REQUEST, &e),
        Some(Ok(t)) => t,
        None => report.framing.terminator,
    };
    let framing = Framing {
        terminator,
        keep_open: req.keep_open.unwrap_or(report.framing.keep_open),
    };
    let mut result = fleet.set_framing(addr, framing);
    if let Some(on) = req.hashing {
        result = result.and_then(|_| fleet.set_hashing(addr, on));
    }
    if let Some(w) = req.write_api {
        result = result.and_then(|_| fleet.set_write_api(addr, w));
    }
    if let Some(p) = &req.password {
        result = result.and_then(|_| fleet.set_password(addr, p));
    }
    if let Some(how) = req.reboot_reply {
        result = result.and_then(|_| fleet.set_reboot_reply(addr, how));
    }
    if let Some(legacy) = req.legacy_setpool {
        result = result.and_then(|_| fleet.set_legacy_setpool(addr, legacy));
    }
    if req.reboot {
        result = result.and_then(|_| fleet.reboot(addr));
    }
    match result.map(|_| fleet.report(addr)) {
        Ok(Some(r)) => Json(report_json(&r)).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, "miner gone"),
        Err(e) => err(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

async fn get_commands(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.commands().records.clone()).into_response(),
        None => no_foreman(),
    }
}

/// `[{"id","command","args"}]`: queued for the pickaxe.
async fn post_commands(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(f) = &st.foreman else {
        return no_foreman();
    };
    let cmds: Vec<crate::foreman::NewCommand> = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return err(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let n = cmds.len();
    f.commands().push(cmds);
    Json(json!({ "queued": n })).into_response()
}

async fn get_schedule(State(st): St) -> Response {
    match &st.foreman {
        Some(f) => Json(f.schedule_state()).into_response(),
        None => no_foreman(),
    }
}

/// `POST /admin/schedule`: `[{"at_secs":0.0,"fault":{..}}, {"at_secs":5,"clear":true}]`, times
/// relative to the call; replaces a schedule still running.
async fn post_schedule(State(st): St, body: axum::body::Bytes) -> Response {
    let Some(f) = &st.foreman else {
        return no_foreman();
    };
    match serde_json::from_slice::<Vec<ScheduleEntry>>(&body) {
        Ok(list) => match f.schedule(list.clone()) {
            Ok(()) => Json(json!({ "ok": true, "entries": list.len() })).into_response(),
            Err(e) => err(StatusCode::BAD_REQUEST, &e),
        },
        Err(e) => err(StatusCode::BAD_REQUEST, &format!("invalid schedule: {e}")),
    }
}

/// A standalone admin server (used when only simulated miners run in the process).
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Serves the fleet admin routes (`/admin/fleet`, `/admin/fleet/fault`) on `addr` (loopback).
pub async fn serve_fleet_admin(fleet: Fleet, addr: SocketAddr) -> anyhow::Result<AdminServer> {
    if !addr.ip().is_loopback() || addr.is_ipv6() {
        anyhow::bail!("admin address {addr} is not in 127.0.0.0/8");
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sd = shutdown.clone();
    let app = router(None, Some(fleet));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(sd.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    Ok(AdminServer {
        addr,
        shutdown,
        task,
    })
}
