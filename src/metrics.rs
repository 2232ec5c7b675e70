//! The local Prometheus endpoint (`GET /metrics`, text exposition format 0.0.4).
//!
//! Totals come from the state database's counters, which are updated in the same
//! transactions as the rows they count, so they survive restarts and are monotonic: exactly
//! what Prometheus counters need. Gauges (buffer, uplink, last cycle) are read at scrape time.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::mqtt::MqttStats;
use crate::store::{counter, DropReason, Store};
use crate::uplink::UplinkState;

/// What the poll loop publishes after each cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CycleSummary {
    pub miners: usize,
    pub ok: usize,
    pub failed: usize,
    pub seconds: f64,
    pub at_ms: i64,
}

#[derive(Clone)]
struct Sources {
    store: Store,
    uplink: watch::Receiver<UplinkState>,
    cycle: watch::Receiver<CycleSummary>,
    mqtt: Option<Arc<MqttStats>>,
}

/// Serves `/metrics` on `listen` until `shutdown`. A port already in use is logged, not fatal:
/// the agent's job is polling and uploading.
pub async fn serve(
    listen: SocketAddr,
    store: Store,
    uplink: watch::Receiver<UplinkState>,
    cycle: watch::Receiver<CycleSummary>,
    mqtt: Option<Arc<MqttStats>>,
    shutdown: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            warn!(%listen, error = %e, "Cannot serve metrics.");
            return;
        }
    };
    info!(addr = %listener.local_addr().unwrap_or(listen), "Serving Prometheus metrics on /metrics.");
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Sources {
            store,
            uplink,
            cycle,
            mqtt,
        });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        warn!(error = %e, "Metrics endpoint stopped.");
    }
}

async fn scrape(State(sources): State<Sources>) -> impl IntoResponse {
    let uplink = sources.uplink.borrow().clone();
    let cycle = *sources.cycle.borrow();
    let rendered = render(
        &sources.store,
        &uplink,
        &cycle,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .map(|mut text| {
        if let Some(stats) = &sources.mqtt {
            render_mqtt(&mut text, stats);
        }
        text
    });
    match rendered {
        Ok(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("state database: {e}\n"),
        )
            .into_response(),
    }
}

/// Appends the MQTT counters.
pub fn render_mqtt(out: &mut String, stats: &MqttStats) {
    let get = MqttStats::get;
    for (name, kind, help, value) in [
        (
            "pickaxe_mqtt_connected",
            "gauge",
            "1 while connected to the MQTT broker.",
            f64::from(u8::from(
                stats.connected.load(std::sync::atomic::Ordering::Relaxed),
            )),
        ),
        (
            "pickaxe_mqtt_connections_total",
            "counter",
            "Connections made to the MQTT broker.",
            get(&stats.connections),
        ),
        (
            "pickaxe_mqtt_published_total",
            "counter",
            "Live metrics messages queued for the broker.",
            get(&stats.published),
        ),
        (
            "pickaxe_mqtt_dropped_total",
            "counter",
            "Live MQTT messages dropped (broker away or queue full); Foreman still gets the data.",
            get(&stats.dropped),
        ),
        (
            "pickaxe_mqtt_commands_accepted_total",
            "counter",
            "Commands taken from MQTT into the command log.",
            get(&stats.commands_accepted),
        ),
        (
            "pickaxe_mqtt_commands_refused_total",
            "counter",
            "Commands refused or rejected on MQTT.",
            get(&stats.commands_refused),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Renders every metric as Prometheus text.
pub async fn render(
    store: &Store,
    uplink: &UplinkState,
    cycle: &CycleSummary,
    now_ms: i64,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let backlog = store.backlog().await?;
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "pickaxe_buffer_samples",
        "gauge",
        "Samples waiting in the outbox.",
        &[("", backlog.samples as f64)],
    );
    metric(
        "pickaxe_buffer_batches",
        "gauge",
        "Upload batches waiting in the outbox.",
        &[("", backlog.batches as f64)],
    );
    metric(
        "pickaxe_buffer_bytes",
        "gauge",
        "Compressed bytes waiting in the outbox.",
        &[("", backlog.bytes as f64)],
    );
    let oldest = backlog
        .oldest_cycle_ms
        .map(|ms| ((now_ms - ms).max(0) as f64) / 1000.0)
        .unwrap_or(0.0);
    metric(
        "pickaxe_buffer_oldest_age_seconds",
        "gauge",
        "Age of the oldest buffered sample.",
        &[("", oldest)],
    );

    let c = |name| async move { store.counter(name).await.map(|v| v as f64) };
    let taken = c(counter::SAMPLES_TAKEN).await?;
    let uploaded = c(counter::SAMPLES_UPLOADED).await?;
    let cycles = c(counter::CYCLES).await?;
    let failures = c(counter::POLL_FAILURES).await?;
    let dead = c(counter::DEAD_LETTER_SAMPLES).await?;
    let resets = c(counter::CORRUPT_RESETS).await?;
    let mut dropped = Vec::new();
    for reason in DropReason::ALL {
        dropped.push((reason, c(reason.samples_counter()).await?));
    }
    metric(
        "pickaxe_cycles_total",
        "counter",
        "Poll cycles stored.",
        &[("", cycles)],
    );
    metric(
        "pickaxe_samples_taken_total",
        "counter",
        "Miner samples taken and stored.",
        &[("", taken)],
    );
    metric(
        "pickaxe_samples_uploaded_total",
        "counter",
        "Miner samples Foreman accepted.",
        &[("", uploaded)],
    );
    metric(
        "pickaxe_poll_failures_total",
        "counter",
        "Miner polls that failed.",
        &[("", failures)],
    );
    let labels: Vec<(String, f64)> = dropped
        .iter()
        .map(|(r, v)| (format!("{{reason=\"{}\"}}", r.as_str()), *v))
        .collect();
    let labelled: Vec<(&str, f64)> = labels.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "pickaxe_dropped_samples_total",
        "counter",
        "Samples dropped by a buffer bound.",
        &labelled,
    );
    metric(
        "pickaxe_dead_letter_samples_total",
        "counter",
        "Samples Foreman refused for good.",
        &[("", dead)],
    );
    metric(
        "pickaxe_buffer_resets_total",
        "counter",
        "Corrupt state databases set aside.",
        &[("", resets)],
    );

    let (up, auth) = match uplink {
        UplinkState::Ok => (1.0, 0.0),
        UplinkState::AuthFailed(_) => (0.0, 1.0),
        _ => (0.0, 0.0),
    };
    metric(
        "pickaxe_uplink_up",
        "gauge",
        "1 when the last upload succeeded.",
        &[("", up)],
    );
    metric(
        "pickaxe_uplink_auth_failed",
        "gauge",
        "1 when Foreman refuses the API key.",
        &[("", auth)],
    );
    metric(
        "pickaxe_last_cycle_miners",
        "gauge",
        "Miners polled in the last cycle.",
        &[("", cycle.miners as f64)],
    );
    metric(
        "pickaxe_last_cycle_ok",
        "gauge",
        "Miners that answered in the last cycle.",
        &[("", cycle.ok as f64)],
    );
    metric(
        "pickaxe_last_cycle_seconds",
        "gauge",
        "Duration of the last poll cycle.",
        &[("", cycle.seconds)],
    );
    Ok(out)
}
