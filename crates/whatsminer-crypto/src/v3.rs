//! API v3 (port 4433): writes carry a short token derived from the command, the `super`
//! account's password, the miner's salt and the request time (reference/miner-dialects.md §5).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The write token: the first 8 characters of base64(SHA-256(cmd + password + salt + ts)).
pub fn token(cmd: &str, password: &str, salt: &str, ts: i64) -> String {
    let digest = Sha256::digest(format!("{cmd}{password}{salt}{ts}").as_bytes());
    B64.encode(digest.as_slice()).chars().take(8).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_is_eight_base64_characters_that_depend_on_every_input() {
        let t = token("set.system.reboot", "super", "abc", 1_700_000_000);
        assert_eq!(t.len(), 8);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
        assert_ne!(t, token("set.system.reboot", "super", "abc", 1_700_000_001));
        assert_ne!(t, token("set.system.reboot", "other", "abc", 1_700_000_000));
        assert_ne!(t, token("set.miner.pools", "super", "abc", 1_700_000_000));
    }
}
