//! Scans: `scan` (start..stop), `scan-ranges` (a list of addresses), `targeted-scan` (a MAC
//! filter), from Foreman or the CLI. Each address is probed once with bounded concurrency;
//! found miners come back with their family and MAC.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::miner::{Limits, MinerMemory};

/// Foreman refuses lists this long ("Subnet range is too large").
pub const MAX_ADDRESSES: u64 = 65_536;

#[derive(Debug, Clone)]
pub struct ScanJob {
    pub addresses: Vec<Ipv4Addr>,
    pub port: u16,
    /// `targeted-scan`: only miners with one of these MACs (lower case).
    pub macs: Option<Vec<String>>,
    /// Args echoed into each found miner's `parameters`.
    pub args: Value,
}

/// A miner a scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub addr: SocketAddr,
    pub family: Option<crate::model::Family>,
    pub model: Option<String>,
    pub mac: Option<String>,
    pub hostname: Option<String>,
}

/// Inclusive IPv4 range, refused above [`MAX_ADDRESSES`].
pub fn range(start: Ipv4Addr, stop: Ipv4Addr) -> Result<Vec<Ipv4Addr>, String> {
    let (a, b) = (u32::from(start), u32::from(stop));
    if b < a {
        return Err("scan range ends before it starts".into());
    }
    if u64::from(b - a) + 1 > MAX_ADDRESSES {
        return Err("Subnet range is too large".into());
    }
    Ok((a..=b).map(Ipv4Addr::from).collect())
}

/// `127.1.0.0/24`, `127.1.0.1-127.1.0.50` or one address. A /24 covers .1 to .254.
pub fn parse_cidr(text: &str) -> Result<Vec<Ipv4Addr>, String> {
    let text = text.trim();
    if let Some((ip, bits)) = text.split_once('/') {
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad address in {text}"))?;
        let bits: u32 = bits.parse().map_err(|_| format!("bad prefix in {text}"))?;
        if !(1..=32).contains(&bits) {
            return Err(format!("bad prefix in {text}"));
        }
        let size = 1u64 << (32 - bits);
        if size > MAX_ADDRESSES {
            return Err(format!(
                "{text} holds {size} addresses; at most {MAX_ADDRESSES} are scanned at once"
            ));
        }
        let mask = if bits == 32 {
            u32::MAX
        } else {
            !(u32::MAX >> bits)
        };
        let net = u32::from(ip) & mask;
        let all = range(Ipv4Addr::from(net), Ipv4Addr::from(net + (size as u32 - 1)))?;
        // Network and broadcast addresses hold no miner.
        if size >= 4 {
            return Ok(all[1..all.len() - 1].to_vec());
        }
        return Ok(all);
    }
    if let Some((a, b)) = text.split_once('-') {
        let a: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad address in {text}"))?;
        let b: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| format!("bad address in {text}"))?;
        return range(a, b);
    }
    let ip: Ipv4Addr = text.parse().map_err(|_| format!("bad address {text}"))?;
    Ok(vec![ip])
}

impl ScanJob {
    pub fn parse(command: &str, args: &Value) -> Result<ScanJob, String> {
        let port = match args.get("port") {
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => Some(4028),
        }
        .filter(|p| *p != 0)
        .ok_or("`port` is not a port")?;
        let addr = |k: &str| -> Result<Ipv4Addr, String> {
            args.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| format!("`{k}` is not an IPv4 address"))
        };
        let addresses = match command {
            "scan-ranges" => {
                let list = args
                    .get("ranges")
                    .and_then(Value::as_array)
                    .ok_or("missing `ranges`")?;
                if list.len() as u64 >= MAX_ADDRESSES {
                    return Err("Subnet range is too large".into());
                }
                list.iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(|s| s.trim().parse().ok())
                            .ok_or_else(|| format!("bad address in `ranges`: {v}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            _ => range(addr("start")?, addr("stop")?)?,
        };
        let macs = (command == "targeted-scan").then(|| {
            args.get("targetMacs")
                .and_then(Value::as_array)
                .map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default()
        });
        Ok(ScanJob {
            addresses,
            port,
            macs,
            args: args.clone(),
        })
    }

    /// Foreman's done result: `{"miners":[{"ipAddress","apiPort","key","category","parameters"}]}`.
    pub fn result(&self, found: &[Found]) -> Value {
        let miners: Vec<Value> = found
            .iter()
            .map(|f| {
                let mut params = self.args.as_object().cloned().unwrap_or_default();
                // Credentials stay out of the result, and so do the scan's own address and
                // MAC lists: they describe the scan, not the miner (and can be huge).
                for key in ["password", "ranges", "targetMacs"] {
                    params.remove(key);
                }
                if let Some(mac) = &f.mac {
                    params.insert("mac".into(), json!(mac));
                }
                if let Some(h) = &f.hostname {
                    params.insert("hostname".into(), json!(h));
                }
                let family = f.family.map_or("unknown", |x| x.as_str());
                let key = match &f.model {
                    Some(m) => format!("{family}-{}", m.to_ascii_lowercase().replace(' ', "-")),
                    None => family.to_string(),
                };
                json!({
                    "ipAddress": f.addr.ip().to_string(),
                    "apiPort": f.addr.port(),
                    "key": key,
                    "category": "ASIC",
                    "parameters": params,
                })
            })
            .collect();
        json!({ "miners": miners })
    }
}

/// Probes every address; `progress(scanned, found)` after each. Concurrency bounded.
pub async fn run(
    addresses: &[Ipv4Addr],
    port: u16,
    macs: Option<&[String]>,
    concurrency: usize,
    timeout: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Vec<Found> {
    let limits = Limits {
        connect_timeout: timeout.min(Duration::from_secs(2)),
        read_timeout: timeout,
        max_reply_bytes: 1 << 20,
    };
    let mut probes = futures::stream::iter(addresses.iter().copied())
        .map(|ip| async move {
            let addr = SocketAddr::new(IpAddr::V4(ip), port);
            let mut memory = MinerMemory::default();
            let polled = tokio::time::timeout(
                timeout + limits.connect_timeout,
                crate::miner::poll(addr, &mut memory, &limits),
            )
            .await;
            match polled {
                Ok(Ok(stats)) => Some(Found {
                    addr,
                    family: stats.family,
                    model: stats.identity.model.clone(),
                    mac: stats.identity.mac.map(|m| m.to_ascii_lowercase()),
                    hostname: stats.identity.hostname.clone(),
                }),
                _ => None,
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut found = Vec::new();
    let mut scanned = 0;
    while let Some(hit) = probes.next().await {
        scanned += 1;
        if let Some(f) = hit {
            let wanted = match (macs, &f.mac) {
                (None, _) => true,
                (Some(list), Some(mac)) => list.iter().any(|m| m == mac),
                (Some(_), None) => false,
            };
            if wanted {
                found.push(f);
            }
        }
        progress(scanned, found.len());
    }
    found.sort_by_key(|f| f.addr);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded() {
        assert_eq!(parse_cidr("127.1.0.0/24").unwrap().len(), 254);
        assert_eq!(parse_cidr("127.1.0.1-127.1.0.50").unwrap().len(), 50);
        assert!(parse_cidr("127.0.0.0/15").is_err());
        assert_eq!(parse_cidr("127.0.0.0/16").unwrap().len(), 65_534);
        assert!(range(Ipv4Addr::new(127, 0, 0, 0), Ipv4Addr::new(127, 1, 0, 0)).is_err());
        let job = ScanJob::parse(
            "scan",
            &serde_json::json!({"start":"127.1.0.1","stop":"127.1.0.10","port":4028}),
        )
        .unwrap();
        assert_eq!(job.addresses.len(), 10);
    }
}
