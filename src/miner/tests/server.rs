//! A scripted miner on 127.0.0.1:0: for each connection it reads the request, asks the script
//! what to do for that command, and records what happened (requests, open sockets, when the
//! client closed its side).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the fake miner does on one connection, in order.
#[derive(Debug, Clone)]
pub enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    /// Keep the socket open until the client closes it.
    Hold,
}

#[derive(Default)]
pub struct Log {
    pub requests: Mutex<Vec<String>>,
    pub open: AtomicUsize,
    pub max_open: AtomicUsize,
    /// When the last `Send` of a connection finished.
    pub sent_at: Mutex<Vec<Instant>>,
    /// When a held connection saw the client close.
    pub client_closed_at: Mutex<Vec<Instant>>,
}

impl Log {
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub log: Arc<Log>,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

pub type Script = dyn Fn(&str) -> Vec<Step> + Send + Sync;

/// Starts a fake miner; `script` maps the request's `command` to the steps to play.
pub async fn serve(script: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Log::default());
    let script: Arc<Script> = Arc::new(script);
    let accept = tokio::spawn({
        let log = log.clone();
        async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let log = log.clone();
                let script = script.clone();
                let now_open = log.open.fetch_add(1, Ordering::SeqCst) + 1;
                log.max_open.fetch_max(now_open, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // cgminer reads once; read until the request object closes to be safe. A
                    // Whatsminer v3 request is a 4-byte length and that many bytes.
                    loop {
                        let prefixed = request.first().is_some_and(|&b| b != b'{');
                        let done = if prefixed {
                            request.len() >= 4
                                && request.len()
                                    >= 4 + u32::from_le_bytes([
                                        request[0], request[1], request[2], request[3],
                                    ]) as usize
                        } else {
                            request.ends_with(b"}")
                        };
                        if done {
                            break;
                        }
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = if request.first().is_some_and(|&b| b != b'{') && request.len() >= 4
                    {
                        &request[4..]
                    } else {
                        &request[..]
                    };
                    let command = serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| {
                            let c = v["command"].as_str().or(v["cmd"].as_str())?.to_string();
                            Some(match v["param"].as_str() {
                                Some(p) => format!("{c} {p}"),
                                None => c,
                            })
                        })
                        .unwrap_or_default();
                    log.requests.lock().unwrap().push(command.clone());
                    for step in script(&command) {
                        match step {
                            Step::Send(bytes) => {
                                if sock.write_all(&bytes).await.is_err() {
                                    break;
                                }
                                log.sent_at.lock().unwrap().push(Instant::now());
                            }
                            Step::Pause(d) => tokio::time::sleep(d).await,
                            Step::Hold => {
                                // Returns when the client closes (0) or resets.
                                let _ = sock.read(&mut buf).await;
                                log.client_closed_at.lock().unwrap().push(Instant::now());
                            }
                        }
                    }
                    log.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    });
    Server { addr, log, accept }
}

/// A reply as cgminer sends it: the bytes, then one NUL; the server then closes.
pub fn nul_reply(body: &[u8]) -> Vec<Step> {
    let mut bytes = body.to_vec();
    bytes.push(0);
    vec![Step::Send(bytes)]
}

/// A Whatsminer API v3 reply: the JSON behind its 4-byte little-endian length.
pub fn v3_reply(body: &[u8]) -> Vec<Step> {
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let body = &body[..end];
    let mut bytes = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    vec![Step::Send(bytes)]
}
