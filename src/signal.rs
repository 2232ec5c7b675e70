//! Shutdown signals: SIGTERM (systemd stop) and SIGINT (Ctrl-C) cancel the token.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub async fn cancel_on_shutdown_signal(token: CancellationToken) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "Cannot listen for SIGTERM.");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("Received SIGTERM, starting shutdown."),
        _ = tokio::signal::ctrl_c() => info!("Received SIGINT, starting shutdown."),
    }
    token.cancel();
}
