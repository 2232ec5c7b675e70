//! Pool URLs as miners report them: with or without a scheme, Stratum V1 or V2, sometimes with a
//! path (the V2 authority key) or a `#xnsub` suffix. The model keeps the URL exactly as the miner
//! reports it (so a "change pools" round-trip compares equal); this reads its parts (C-10).

/// The parts of a pool URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEndpoint {
    /// Scheme as given, or `stratum+tcp` when the miner omitted it.
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// Whatever follows the authority (`/KEY`, `#xnsub`), without the leading `/`.
    pub path: Option<String>,
}

impl PoolEndpoint {
    /// Stratum V2 (`stratum2+tcp://...`).
    pub fn is_v2(&self) -> bool {
        self.scheme.to_ascii_lowercase().starts_with("stratum2")
    }

    /// Reads a pool URL; `None` for an empty URL (an unused pool slot).
    pub fn parse(url: &str) -> Option<PoolEndpoint> {
        let url = url.trim();
        if url.is_empty() {
            return None;
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_string(), rest),
            None => ("stratum+tcp".to_string(), url),
        };
        let end = rest.find(['/', '#', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let path = tail.strip_prefix('/').unwrap_or(tail);
        // Credentials embedded in the authority (`user:pass@host`) are not part of the endpoint.
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let (host, port) = split_host_port(authority);
        if host.is_empty() {
            return None;
        }
        Some(PoolEndpoint {
            scheme,
            host: host.to_string(),
            port,
            path: (!path.is_empty()).then(|| path.to_string()),
        })
    }
}

fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(v6) = authority.strip_prefix('[') {
        // `[::1]:3333`
        return match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (authority, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = PoolEndpoint::parse("stratum.braiins.com:3333").unwrap();
        assert_eq!(
            (p.scheme.as_str(), p.host.as_str(), p.port),
            ("stratum+tcp", "stratum.braiins.com", Some(3333))
        );
        let p = PoolEndpoint::parse("stratum+tcp://aaa.com:9999#xnsub").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_deref()),
            ("aaa.com", Some(9999), Some("#xnsub"))
        );
        let p = PoolEndpoint::parse("stratum+tcp://[::1]:3333").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", Some(3333)));
        let p = PoolEndpoint::parse("stratum+tcp://u:pw@pool:1").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("pool", Some(1)));
        assert_eq!(PoolEndpoint::parse("pool.example").unwrap().port, None);
        assert!(PoolEndpoint::parse("  ").is_none());
        assert!(PoolEndpoint::parse("stratum+tcp://").is_none());
    }
}
