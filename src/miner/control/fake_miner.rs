//! A scripted miner on 127.0.0.1 for the write-path tests: one request per connection,
//! answered as the script says, every request recorded as `command|parameter`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the fake miner answers one request.
pub(super) enum Reply {
    /// These bytes, then a NUL, then close.
    Text(String),
    /// Close without a byte.
    Close,
    /// Say nothing, keep the socket open for 30 s.
    Hang,
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        Reply::Text(v.to_string())
    }
}

/// Starts the miner: `answer(n, command, parameter)` answers request `n` (0-based). Returns
/// its address and the requests seen so far.
#[allow(clippy::unwrap_used)]
pub(super) async fn scripted(
    answer: impl Fn(usize, &str, &str) -> Reply + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.ends_with(b"}") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let v: Value = serde_json::from_slice(&req).unwrap_or(Value::Null);
            let cmd = v["command"].as_str().unwrap_or("");
            let param = v["parameter"].as_str().unwrap_or("");
            let n = {
                let mut l = log.lock().unwrap();
                l.push(format!("{cmd}|{param}"));
                l.len() - 1
            };
            match answer(n, cmd, param) {
                Reply::Text(t) => {
                    let mut out = t.into_bytes();
                    out.push(0);
                    let _ = sock.write_all(&out).await;
                }
                Reply::Close => {}
                Reply::Hang => {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(sock);
                    });
                }
            }
        }
    });
    (addr, seen)
}
