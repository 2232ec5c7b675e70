//! One accept loop per simulated miner port, and the connection protocols with their faults:
//! cgminer (one request, one reply, framed per dialect) and Whatsminer API v3 (length-prefixed).

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

use super::dialect::{wm_v3, Ctx};
use super::fault::{garbage_bytes, Fault, DRIP_INTERVAL, SOCKET_FAILED_TEXT};
use super::miner::MinerState;
use super::reply::{build_reply, json_object_end, parse_request, Reply};
use super::template::Live;

/// cgminer reads at most this many request bytes.
const MAX_REQUEST: usize = 4095;
/// cgminer gives up on a request after this long; Whatsminer closes idle connections too.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A hanging miner keeps the socket this long after the client stopped sending.
const HANG_HOLD_AFTER_EOF: Duration = Duration::from_secs(60);
/// A keep-open miner holds the socket after its reply at most this long.
const KEEP_OPEN_HOLD: Duration = Duration::from_secs(60);

/// Which protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Port {
    /// The cgminer-style API (4028).
    Cgminer,
    /// Whatsminer API v3 (4433).
    V3,
    /// The stock Antminer web interface (HTTP, `web.rs`).
    Web,
}

/// Accepts connections for one miner port until `shutdown`. While the miner's fault is
/// `refuse` or it is rebooting, the listener is closed (connects are refused) and bound again
/// on the same address afterwards.
pub(crate) async fn accept_loop(
    miner: Arc<MinerState>,
    listener: TcpListener,
    port: Port,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut changed = miner.changed.subscribe();
    let mut listener = Some(listener);
    loop {
        let _ = changed.borrow_and_update();
        let down_ms = miner.down_until_ms() - Utc::now().timestamp_millis();
        if miner.fault() == Fault::Refuse || down_ms > 0 {
            listener = None;
            let wait = Duration::from_millis(down_ms.max(0) as u64);
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = sleep(wait), if down_ms > 0 => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => listener.insert(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot rebind simulated miner, retrying");
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
                            _ = handle(m, stream, port) => {}
                            _ = sd.cancelled() => {}
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::debug!(%addr, error = %e, "accept failed");
                    sleep(Duration::from_millis(20)).await;
                }
            },
            r = changed.changed() => if r.is_err() { return },
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

/// Runs `f` with this instant's live values (time, uptime, jitter x on/off, state).
pub(super) fn with_live<T>(miner: &MinerState, f: impl FnOnce(&Ctx<'_>) -> T) -> (T, i64) {
    let now_ms = Utc::now().timestamp_millis();
    let now_s = now_ms.div_euclid(1000);
    let (hashing, led, pools) = {
        let mut d = miner.dynamic();
        (d.hashing(now_s), d.led, d.pools.clone())
    };
    let jitter = rand::rng().random_range(0.97..=1.03);
    let live = Live {
        when: now_s,
        elapsed: (now_ms - miner.boot_ms()).max(0) / 1000,
        factor: if hashing { jitter } else { 0.0 },
        hashing,
        led,
        mac: miner.mac,
        pools: &pools,
    };
    let ctx = Ctx {
        miner,
        live: &live,
        now_ms,
    };
    (f(&ctx), now_ms)
}

fn build(miner: &MinerState, req: &[u8]) -> (Reply, i64) {
    let parsed = parse_request(req, miner.model.cmd_key);
    with_live(miner, |ctx| build_reply(ctx, &parsed))
}

async fn finish(s: &mut TcpStream, keep_open: bool) {
    let _ = s.flush().await;
    if keep_open {
        // The reply is complete, the socket stays: a reader must stop on the terminator.
        let mut b = [0u8; 256];
        let _ = timeout(KEEP_OPEN_HOLD, async {
            while let Ok(n) = s.read(&mut b).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
    let _ = s.shutdown().await;
}

async fn handle(miner: Arc<MinerState>, s: TcpStream, port: Port) {
    match port {
        Port::Cgminer => handle_cgminer(&miner, s).await,
        Port::V3 => handle_v3(&miner, s).await,
        Port::Web => super::web::handle(miner, s).await,
    }
}

async fn hold_silently(s: &mut TcpStream) {
    // Hold the socket without a byte of reply. EOF may be a mere half-close by a client that
    // still waits for the answer, so keep holding a while after it.
    let mut b = [0u8; 256];
    while let Ok(n) = s.read(&mut b).await {
        if n == 0 {
            break;
        }
    }
    sleep(HANG_HOLD_AFTER_EOF).await;
}

async fn handle_cgminer(miner: &MinerState, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let fault = miner.fault();
    let req = read_request(&mut s).await;
    match fault {
        Fault::Hang => return hold_silently(&mut s).await,
        Fault::Close | Fault::Refuse => return,
        Fault::SocketText => {
            if s.write_all(SOCKET_FAILED_TEXT.as_bytes()).await.is_ok() {
                finish(&mut s, false).await;
            }
            return;
        }
        _ => {}
    }
    if req.is_empty() {
        return;
    }
    if fault == Fault::Garbage {
        let mut g = garbage_bytes();
        g.push(0);
        if s.write_all(&g).await.is_ok() {
            finish(&mut s, false).await;
        }
        return;
    }
    // Built (and stamped) on receipt, delivered as the fault says.
    let (reply, at) = build(miner, &req);
    if reply.silent {
        // Closes without a reply (Avalon softon, reboot): the effect happens all the same.
        if reply.reboot {
            miner.reboot(Utc::now().timestamp_millis());
        }
        return;
    }
    if reply.reboot {
        match miner.reboot_reply() {
            super::miner::RebootReply::Reply => {}
            super::miner::RebootReply::Close => {
                miner.reboot(Utc::now().timestamp_millis());
                return;
            }
            super::miner::RebootReply::Hang => {
                miner.reboot(Utc::now().timestamp_millis());
                return hold_silently(&mut s).await;
            }
        }
    }
    let framing = miner.framing();
    let text = match fault {
        Fault::Malformed(m) => m.apply(&reply.text),
        _ => reply.text.clone(),
    };
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(framing.terminator.bytes());
    let delivered = match fault {
        Fault::Slow(delay) => {
            sleep(delay).await;
            !peer_gone(&s) && write_all(&mut s, &bytes).await.is_ok()
        }
        Fault::Drip => drip(&mut s, &bytes, 1, DRIP_INTERVAL).await,
        Fault::Split { chunk, delay_ms } => {
            let pause = Duration::from_millis(u64::from(delay_ms));
            drip(&mut s, &bytes, usize::from(chunk.max(1)), pause).await
        }
        _ => write_all(&mut s, &bytes).await.is_ok(),
    };
    if !delivered {
        return;
    }
    miner.record(&reply, at);
    if reply.reboot {
        miner.reboot(Utc::now().timestamp_millis());
        finish(&mut s, false).await;
        return;
    }
    finish(&mut s, framing.keep_open).await;
}

/// Writes `bytes` in `chunk`-byte pieces with `pause` between them; false when the client left.
async fn drip(s: &mut TcpStream, bytes: &[u8], chunk: usize, pause: Duration) -> bool {
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        if i > 0 {
            sleep(pause).await;
        }
        if peer_gone(s) {
            return false;
        }
        if write_all(s, piece).await.is_err() {
            return false;
        }
    }
    true
}

async fn write_all(s: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    match timeout(REQUEST_TIMEOUT, s.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Whatsminer API v3: 4-byte little-endian length + JSON in both directions; several requests
/// may share a connection; 10 s idle closes it.
async fn handle_v3(miner: &MinerState, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    match miner.fault() {
        Fault::Hang => return hold_silently(&mut s).await,
        Fault::Close | Fault::Refuse => return,
        _ => {}
    }
    loop {
        let mut len = [0u8; 4];
        match timeout(REQUEST_TIMEOUT, s.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let n = u32::from_le_bytes(len);
        if n == 0 || n > wm_v3::MAX_V3_REQUEST {
            break;
        }
        let mut buf = vec![0u8; n as usize];
        match timeout(REQUEST_TIMEOUT, s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let ((json, name, ghs), at) = with_live(miner, |ctx| {
            let (json, name) = wm_v3::reply(ctx, &buf);
            let ghs = (name == Some(miner.model.primary.0))
                .then(|| miner.model.served_ghs(ctx.live.factor));
            (json, name, ghs)
        });
        if write_all(&mut s, &wm_v3::frame(&json)).await.is_err() {
            break;
        }
        let reply = Reply {
            commands: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
            stats_ghs: ghs,
            served: if name.is_some() {
                [0; 6]
            } else {
                [0, 0, 0, 0, 0, 1]
            },
            ..Reply::default()
        };
        miner.record(&reply, at);
    }
    let _ = s.shutdown().await;
}
