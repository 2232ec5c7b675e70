//! HTTP Digest auth (RFC 2617) of the stock Antminer web interface: realm
//! `antMiner Configuration`, `qop="auth"`, MD5, user `root` (miner-dialects §2a). The response
//! is recomputed with the `digest_auth` crate from the client's own header and compared.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use digest_auth::{AlgorithmType, AuthContext, AuthorizationHeader, HttpMethod};
use rand::Rng;

/// The realm lighttpd on stock Antminers announces.
pub(crate) const REALM: &str = "antMiner Configuration";
/// The only web user of stock firmware.
pub(crate) const USER: &str = "root";
/// A nonce is accepted this long after it was handed out.
const NONCE_LIFE: Duration = Duration::from_secs(600);
/// Nonces kept per miner; the oldest go first (a client that asks for a challenge on every
/// request must not grow memory without bound).
const MAX_NONCES: usize = 1024;

/// Nonces handed out by one miner's web server.
#[derive(Default)]
pub(crate) struct Nonces {
    issued: Mutex<VecDeque<(String, Instant)>>,
}

impl Nonces {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Instant)>> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh random nonce, remembered for [`NONCE_LIFE`].
    pub fn issue(&self) -> String {
        let bytes: [u8; 16] = rand::rng().random();
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut q = self.lock();
        while q.len() >= MAX_NONCES {
            q.pop_front();
        }
        q.push_back((nonce.clone(), Instant::now()));
        nonce
    }

    /// Whether this miner handed out `nonce` less than [`NONCE_LIFE`] ago.
    pub fn is_fresh(&self, nonce: &str) -> bool {
        let mut q = self.lock();
        while q.front().is_some_and(|(_, at)| at.elapsed() > NONCE_LIFE) {
            q.pop_front();
        }
        q.iter().any(|(n, _)| n == nonce)
    }

    /// Forgets every nonce (the miner rebooted).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// The verdict on a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Granted,
    /// No, malformed or wrong credentials.
    Denied,
    /// Right credentials with a nonce that is not (or no longer) ours: the client should retry
    /// with a new one (`stale=true`).
    Stale,
}

/// The `WWW-Authenticate` value of a 401, with a new nonce.
pub(crate) fn challenge(nonces: &Nonces, stale: bool) -> String {
    let mut h = format!(
        "Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{}\"",
        nonces.issue()
    );
    if stale {
        h.push_str(", stale=true");
    }
    h
}

/// Checks `header` (the `Authorization` value, visible ASCII) of a `method` request for
/// `target` (its path and query as sent) against user `root` and `password`.
pub(crate) fn verify(
    header: Option<&str>,
    method: &str,
    target: &str,
    path: &str,
    password: &str,
    nonces: &Nonces,
) -> Verdict {
    let Some(h) = header.map(str::trim) else {
        return Verdict::Denied;
    };
    if !h.starts_with("Digest ") {
        return Verdict::Denied;
    }
    // The crate's parser slices by char position: it only ever sees ASCII here (hyper's
    // `HeaderValue::to_str` refuses anything else), so it cannot split a character.
    let Ok(sent) = AuthorizationHeader::parse(h) else {
        return Verdict::Denied;
    };
    if sent.realm != REALM
        || sent.algorithm.algo != AlgorithmType::MD5
        || (sent.uri != target && sent.uri != path)
    {
        return Verdict::Denied;
    }
    let ctx = AuthContext::new_with_method(
        USER,
        password,
        sent.uri.as_str(),
        Option::<&[u8]>::None,
        HttpMethod::from(method),
    );
    let mut expected = sent.clone();
    expected.digest(&ctx);
    if expected.response != sent.response || expected.username != sent.username {
        return Verdict::Denied;
    }
    if nonces.is_fresh(&sent.nonce) {
        Verdict::Granted
    } else {
        Verdict::Stale
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
        let mut prompt = digest_auth::parse(challenge).unwrap();
        let ctx = AuthContext::new_with_method(
            user,
            password,
            uri,
            Option::<&[u8]>::None,
            HttpMethod::from(method),
        );
        prompt.respond(&ctx).unwrap().to_header_string()
    }

    #[test]
    fn digest_round_trip() {
        let nonces = Nonces::default();
        let c = challenge(&nonces, false);
        assert!(c.starts_with("Digest realm=\"antMiner Configuration\", qop=\"auth\", nonce=\""));
        let uri = "/cgi-bin/get_miner_conf.cgi";
        let ok = answer(&c, "root", "root", "GET", uri);
        let v = |h: &str, m: &str, pw: &str| verify(Some(h), m, uri, uri, pw, &nonces);
        assert_eq!(v(&ok, "GET", "root"), Verdict::Granted);
        // Another method, password, user or URI than the one signed.
        assert_eq!(v(&ok, "POST", "root"), Verdict::Denied);
        assert_eq!(v(&ok, "GET", "other"), Verdict::Denied);
        let admin = answer(&c, "admin", "root", "GET", uri);
        assert_eq!(v(&admin, "GET", "root"), Verdict::Denied);
        let elsewhere = answer(&c, "root", "root", "GET", "/cgi-bin/reboot.cgi");
        assert_eq!(v(&elsewhere, "GET", "root"), Verdict::Denied);
        // Garbage and other schemes.
        for h in [
            "",
            "Basic cm9vdDpyb290",
            "Digest",
            "Digest username=",
            "Digest \"\"\"==,,",
        ] {
            assert_eq!(v(h, "GET", "root"), Verdict::Denied, "{h}");
        }
        assert_eq!(
            verify(None, "GET", uri, uri, "root", &nonces),
            Verdict::Denied
        );
        // Right answer to a nonce that is not ours (or no longer is).
        nonces.clear();
        assert_eq!(v(&ok, "GET", "root"), Verdict::Stale);
    }

    #[test]
    fn nonces_are_bounded() {
        let nonces = Nonces::default();
        let first = nonces.issue();
        assert_eq!(first.len(), 32);
        for _ in 0..MAX_NONCES {
            nonces.issue();
        }
        assert!(!nonces.is_fresh(&first));
        assert_eq!(nonces.lock().len(), MAX_NONCES);
    }
}
