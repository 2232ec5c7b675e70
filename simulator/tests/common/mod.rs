//! Helpers shared by the integration tests. Everything talks to 127.0.0.0/8 only.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `req` to a simulated miner and reads until the server closes (5 s cap).
pub async fn query(addr: SocketAddr, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(req).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(out)
}

/// `query` with a JSON command; asserts exactly one trailing NUL and returns the text before it.
pub async fn command(addr: SocketAddr, cmd: &str) -> String {
    let raw = query(addr, format!("{{\"command\":\"{cmd}\"}}").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{addr} {cmd}: {e}"));
    assert_eq!(
        raw.last(),
        Some(&0u8),
        "{addr} {cmd}: reply must end with NUL"
    );
    assert_eq!(
        raw.iter().filter(|&&b| b == 0).count(),
        1,
        "{addr} {cmd}: exactly one NUL"
    );
    String::from_utf8(raw[..raw.len() - 1].to_vec()).unwrap()
}

/// An HTTPS client that trusts only `ca_pem`.
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A plain HTTP client (admin API).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A metrics body with the given miners (ip, port, hashRate) at `timestamp`.
pub fn metrics_body(timestamp: &str, miners: &[(&str, u16, &str)]) -> String {
    let miners: Vec<serde_json::Value> = miners
        .iter()
        .map(|(ip, port, hr)| {
            serde_json::json!({
                "apiIp": ip, "apiPort": port,
                "pools": [], "rigs": [], "cpus": [],
                "asics": [{"hashRate": hr, "boards": 3,
                           "fans": {"count": 0, "speeds": [], "speedUnits": "RPM"},
                           "temps": [], "hasErrors": false, "powerMode": "normal",
                           "powerState": null, "attributes": [], "rawStats": {}}]
            })
        })
        .collect();
    serde_json::json!({
        "metadata": {"timestamp": timestamp, "apiVersion": "1.0.0"},
        "miners": miners
    })
    .to_string()
}
