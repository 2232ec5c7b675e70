//! HTTPS accept loop that can really refuse connections during an outage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::state::{OutageMode, Shared};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener`. While an outage in `refuse` mode is on, the listener is
/// closed and open connections are dropped; afterwards the same address is bound again.
pub(crate) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    let shutdown = shared.shutdown.clone();
    let mut outage = shared.outage_tx.subscribe();
    let mut listener = Some(listener);
    let mut conns = shutdown.child_token();
    loop {
        let refusing = *outage.borrow_and_update() == Some(OutageMode::Refuse);
        if refusing {
            if listener.take().is_some() {
                tracing::info!(%addr, "fake Foreman refusing connections");
                conns.cancel();
                conns = shutdown.child_token();
            }
            tokio::select! {
                r = outage.changed() => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!(%addr, "fake Foreman accepting connections again");
                    listener.insert(l)
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot rebind the fake Foreman, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            },
        };
        tokio::select! {
            r = l.accept() => match r {
                Ok((stream, _peer)) => {
                    let acceptor = acceptor.clone();
                    let app = app.clone();
                    let token = conns.clone();
                    tracker.spawn(async move {
                        tokio::select! {
                            _ = connection(stream, acceptor, app) => {}
                            _ = token.cancelled() => {}
                        }
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            r = outage.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, acceptor: TlsAcceptor, app: Router) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let svc = TowerToHyperService::new(app);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), svc)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
