//! The stock Antminer web interface: HTTP/1.1 on the miner's own IP (`FleetConfig::web_port`)
//! serving the CGI scripts behind Digest auth, as the firmware's lighttpd does. The accept loop
//! (closed while the miner reboots or refuses) is the RPC port's; this is one connection.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use chrono::Utc;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::dialect::antminer_web as cgi;
use super::listener::with_live;
use super::miner::{MinerState, RebootReply};
use super::web_auth::{self, Verdict};

/// Bodies above this are refused (a conf is about 600 bytes).
const MAX_BODY: usize = 64 * 1024;
/// A client must send a request's headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is dropped after this long whatever it does (keep-alive clients reconnect).
const CONNECTION_LIFE: Duration = Duration::from_secs(300);
/// `hang` reboot reply: how long the socket is held silent.
const HANG_HOLD: Duration = Duration::from_secs(60);

/// What one connection's requests tell the code that owns its socket.
struct Conn {
    /// Drop the connection now, without a response.
    abort: CancellationToken,
    /// Reboot once the connection is over (the reply to `reboot.cgi` is out).
    reboot_after: AtomicBool,
    /// The miner's reboot count when the connection was made: a reboot ends it.
    reboots: u64,
}

/// Serves one web connection (keep-alive: several requests).
pub(super) async fn handle(miner: Arc<MinerState>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let conn = Arc::new(Conn {
        abort: CancellationToken::new(),
        reboot_after: AtomicBool::new(false),
        reboots: miner.reboots(),
    });
    let svc = {
        let (m, c) = (miner.clone(), conn.clone());
        hyper::service::service_fn(move |req| {
            let (m, c) = (m.clone(), c.clone());
            async move { Ok::<_, Infallible>(respond(&m, &c, req).await) }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        r = served => if let Err(e) = r {
            tracing::debug!(addr = %miner.addr, error = %e, "web connection ended with an error");
        },
        _ = conn.abort.cancelled() => {}
        _ = tokio::time::sleep(CONNECTION_LIFE) => {}
    }
    if conn.reboot_after.load(Ordering::Relaxed) {
        miner.reboot(Utc::now().timestamp_millis());
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(body: impl Into<Body>) -> Response<Body> {
    reply(StatusCode::OK, "application/json", body)
}

/// 401 with a new Digest challenge.
fn unauthorized(miner: &MinerState, stale: bool) -> Response<Body> {
    miner.record_web("unauthorized");
    let mut r = reply(
        StatusCode::UNAUTHORIZED,
        "text/html",
        "<html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>\n",
    );
    if let Ok(v) = HeaderValue::from_str(&web_auth::challenge(&miner.web_nonces, stale)) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn not_found(miner: &MinerState) -> Response<Body> {
    miner.record_web("not_found");
    reply(
        StatusCode::NOT_FOUND,
        "text/html",
        "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>\n",
    )
}

/// Drops the connection without a response (the future never completes).
async fn drop_connection(conn: &Conn) -> Response<Body> {
    conn.abort.cancel();
    std::future::pending().await
}

async fn respond(miner: &MinerState, conn: &Conn, req: Request<Incoming>) -> Response<Body> {
    if miner.reboots() != conn.reboots {
        // A keep-alive connection from before a reboot: that server process is gone.
        return drop_connection(conn).await;
    }
    let path = req.uri().path().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let password = miner.dynamic().password.clone();
    let verdict = web_auth::verify(
        authorization,
        req.method().as_str(),
        &target,
        &path,
        &password,
        &miner.web_nonces,
    );
    if verdict != Verdict::Granted {
        return unauthorized(miner, verdict == Verdict::Stale);
    }
    let Some(script) = path.strip_prefix("/cgi-bin/") else {
        return not_found(miner);
    };
    // lighttpd runs a CGI script whatever the method; the scripts that take a body read it.
    let body: Bytes = match axum::body::to_bytes(Body::new(req.into_body()), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/html",
                "413 Request Entity Too Large\n",
            )
        }
    };
    let text = match script {
        "get_system_info.cgi" => with_live(miner, cgi::system_info).0,
        "get_miner_conf.cgi" => with_live(miner, cgi::miner_conf).0,
        "set_miner_conf.cgi" => with_live(miner, |ctx| cgi::set_miner_conf(ctx, &body))
            .0
            .to_string(),
        "blink.cgi" => with_live(miner, |ctx| cgi::blink(ctx, &body)).0,
        "get_blink_status.cgi" => with_live(miner, cgi::blink_status).0,
        "reboot.cgi" => return reboot(miner, conn).await,
        _ => return not_found(miner),
    };
    miner.record_web(script);
    json(text)
}

/// `reboot.cgi`: reboots after answering, as the miner's `reboot_reply` says (C-19).
async fn reboot(miner: &MinerState, conn: &Conn) -> Response<Body> {
    miner.record_web("reboot.cgi");
    match miner.reboot_reply() {
        RebootReply::Reply => {
            conn.reboot_after.store(true, Ordering::Relaxed);
            let mut r = reply(StatusCode::OK, "text/html", Body::empty());
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        RebootReply::Close => {
            conn.reboot_after.store(true, Ordering::Relaxed);
            drop_connection(conn).await
        }
        RebootReply::Hang => {
            miner.reboot(Utc::now().timestamp_millis());
            tokio::time::sleep(HANG_HOLD).await;
            drop_connection(conn).await
        }
    }
}
