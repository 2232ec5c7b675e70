//! One accept loop per simulated miner, and the cgminer connection protocol with faults.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::fault::{garbage_bytes, Fault, DRIP_INTERVAL};
use super::miner::MinerState;
use super::reply::{build_reply, json_object_end, parse_request, Reply};
use super::template::Live;

/// cgminer reads at most this many request bytes.
const MAX_REQUEST: usize = 4095;
/// cgminer gives up on a request after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A hanging miner keeps the socket this long after the client stopped sending.
const HANG_HOLD_AFTER_EOF: Duration = Duration::from_secs(60);

/// Accepts connections for one miner until `shutdown`. While the miner's fault is `refuse`, the
/// listener is closed (connects are refused) and rebound on the same address afterwards.
pub(crate) async fn accept_loop(
    miner: Arc<MinerState>,
    listener: TcpListener,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut listener = Some(listener);
    loop {
        if miner.fault() == Fault::Refuse {
            listener = None;
            tokio::select! {
                _ = miner.changed.notified() => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(miner.addr).await {
                Ok(l) => listener.insert(l),
                Err(e) => {
                    tracing::warn!(addr = %miner.addr, error = %e, "cannot rebind simulated miner, retrying");
                    tokio::select! {
                        _ = sleep(Duration::from_millis(500)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            },
        };
        tokio::select! {
            r = l.accept() => match r {
                Ok((stream, _)) => {
                    let m = miner.clone();
                    let sd = shutdown.clone();
                    tracker.spawn(async move {
                        tokio::select! {
                            _ = handle(&m, stream) => {}
                            _ = sd.cancelled() => {}
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::debug!(addr = %miner.addr, error = %e, "accept failed");
                    sleep(Duration::from_millis(20)).await;
                }
            },
            _ = miner.changed.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Reads one request like cgminer: until a complete JSON object (JSON requests), the first chunk
/// (text requests), EOF, 4095 bytes, or 10 s.
async fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    while buf.len() < MAX_REQUEST {
        let want = chunk.len().min(MAX_REQUEST - buf.len());
        let n = match tokio::time::timeout_at(deadline, s.read(&mut chunk[..want])).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => break,
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] != b'{' || json_object_end(&buf).is_some() {
            break;
        }
    }
    // Swallow whatever else already arrived (a trailing newline), so closing sends FIN, not RST.
    let mut scratch = [0u8; 512];
    while let Ok(n) = s.try_read(&mut scratch) {
        if n == 0 {
            break;
        }
    }
    buf
}

/// True when the client has closed its side (or the socket failed).
fn peer_gone(s: &TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.try_read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

fn build(miner: &MinerState, req: &[u8]) -> (Reply, i64) {
    let now_ms = Utc::now().timestamp_millis();
    let model = miner.model;
    let jitter = rand::rng().random_range(0.97..=1.03);
    let live = Live {
        when: now_ms.div_euclid(1000),
        elapsed: (now_ms - miner.boot_ms).max(0) / 1000,
        ghs: model.base_ghs * jitter,
    };
    (build_reply(model, &parse_request(req), &live), now_ms)
}

async fn finish(s: &mut TcpStream) {
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

async fn handle(miner: &MinerState, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let fault = miner.fault();
    let req = read_request(&mut s).await;
    match fault {
        Fault::Hang => {
            // Hold the socket without a byte of reply. EOF may be a mere half-close by a client
            // that still waits for the answer, so keep holding a while after it.
            let mut b = [0u8; 256];
            while let Ok(n) = s.read(&mut b).await {
                if n == 0 {
                    break;
                }
            }
            sleep(HANG_HOLD_AFTER_EOF).await;
            return;
        }
        Fault::Close | Fault::Refuse => return,
        _ => {}
    }
    if req.is_empty() {
        return;
    }
    match fault {
        Fault::Garbage => {
            let mut g = garbage_bytes();
            g.push(0);
            if s.write_all(&g).await.is_ok() {
                finish(&mut s).await;
            }
        }
        Fault::Slow(delay) => {
            // Built (and stamped) on receipt, delivered late: like a busy or distant miner.
            let (reply, at) = build(miner, &req);
            sleep(delay).await;
            if peer_gone(&s) {
                return;
            }
            if write_reply(&mut s, &reply).await.is_ok() {
                miner.record(&reply, at);
            }
        }
        Fault::Drip => {
            let (reply, at) = build(miner, &req);
            let mut bytes = reply.text.clone().into_bytes();
            bytes.push(0);
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    sleep(DRIP_INTERVAL).await;
                }
                if peer_gone(&s) {
                    return;
                }
                if timeout(REQUEST_TIMEOUT, s.write_all(&[*b])).await.is_err() {
                    return;
                }
            }
            finish(&mut s).await;
            miner.record(&reply, at);
        }
        _ => {
            let (reply, at) = build(miner, &req);
            if write_reply(&mut s, &reply).await.is_ok() {
                miner.record(&reply, at);
            }
        }
    }
}

async fn write_reply(s: &mut TcpStream, reply: &Reply) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(reply.text.len() + 1);
    bytes.extend_from_slice(reply.text.as_bytes());
    bytes.push(0);
    match timeout(REQUEST_TIMEOUT, s.write_all(&bytes)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    }
    finish(s).await;
    Ok(())
}
