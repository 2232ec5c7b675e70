//! The MAC of a stock Antminer, which its RPC does not report: `get_system_info.cgi` on its
//! web interface (Digest auth) answers `macaddr` (miner-dialects §2b).

use std::net::SocketAddr;

use reqwest::Method;
use serde_json::Value;

use super::web_digest::DigestClient;

const SYSTEM_INFO: &str = "/cgi-bin/get_system_info.cgi";

/// Reads the MAC (lower case, colons) from the miner's web interface at `web`.
pub async fn antminer_mac(
    http: reqwest::Client,
    web: SocketAddr,
    user: &str,
    pass: &str,
) -> Result<String, String> {
    let mut client = DigestClient::with_http(http, web, user, pass);
    let (status, body) = client
        .request(Method::GET, SYSTEM_INFO, None)
        .await
        .map_err(|e| e.into_control("get_system_info.cgi").to_string())?;
    if !status.is_success() {
        return Err(format!("get_system_info.cgi answered HTTP {status}"));
    }
    let info: Value = serde_json::from_slice(body.trim_ascii())
        .map_err(|_| "get_system_info.cgi did not answer JSON".to_string())?;
    info.get("macaddr")
        .and_then(Value::as_str)
        .and_then(normalize_mac)
        .ok_or_else(|| "get_system_info.cgi has no valid `macaddr`".to_string())
}

/// `AA:BB:CC:DD:EE:FF` or `aa-bb-...` as `aa:bb:cc:dd:ee:ff`; anything else, or the all-zero
/// placeholder, is no MAC.
fn normalize_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    let mac = parts.join(":").to_ascii_lowercase();
    (ok && mac != "00:00:00:00:00:00").then_some(mac)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_system_info_has_the_mac() {
        let mac_of = |name: &str| {
            let raw = crate::miner::tests::raw(&format!("fixtures/antminer/{name}"));
            let v: Value = serde_json::from_slice(raw.trim_ascii()).unwrap();
            v["macaddr"].as_str().and_then(normalize_mac)
        };
        assert_eq!(
            mac_of("S19_get_system_info.json").as_deref(),
            Some("70:b3:f5:7c:b1:ea")
        );
        assert_eq!(
            mac_of("L3_get_system_info.json").as_deref(),
            Some("c4:f3:12:b3:9f:fc")
        );
        // This capture's MAC was redacted by hand ("3M"): not a MAC, not reported.
        assert_eq!(mac_of("S19Pro-2022fw_system_info.json"), None);
        assert_eq!(
            normalize_mac("B4:10:7B:0A:1C:2D").as_deref(),
            Some("b4:10:7b:0a:1c:2d")
        );
        for bad in [
            "",
            "00:00:00:00:00:00",
            "b4:10:7b:0a:1c",
            "zz:10:7b:0a:1c:2d",
        ] {
            assert_eq!(normalize_mac(bad), None, "{bad}");
        }
    }
}
