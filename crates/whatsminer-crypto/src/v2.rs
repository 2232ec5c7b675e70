//! API v2 (BTMiner 2.0.x, port 4028): MD5-crypt of the admin password, the token sign,
//! AES-256-ECB with zero padding, base64 (reference/miner-dialects.md §5a).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha2::Sha256;

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(h.finalize().as_slice());
    out
}

/// The hash field of MD5-crypt (`$1$salt$HASH`) of `password` with `salt` (at most 8 chars).
pub fn md5crypt(password: &str, salt: &str) -> String {
    let pw = password.as_bytes();
    let salt = salt.as_bytes();
    let salt = &salt[..salt.len().min(8)];
    let alt = md5(&[pw, salt, pw]);
    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut n = pw.len();
    while n > 0 {
        ctx.update(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..pw.len().min(1)]);
        }
        i >>= 1;
    }
    let mut fin = [0u8; 16];
    fin.copy_from_slice(ctx.finalize().as_slice());
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin.copy_from_slice(c.finalize().as_slice());
    }
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put(
            (u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]),
            4,
        );
    }
    put(u32::from(fin[11]), 2);
    out
}

/// The session keys of a token: (`sign` the client must send, AES-256 key).
pub fn token_keys(password: &str, salt: &str, time: &str, newsalt: &str) -> (String, [u8; 32]) {
    let pwd_md5 = md5crypt(password, salt);
    let sign = md5crypt(&format!("{pwd_md5}{time}"), newsalt);
    (sign, aes_key(password, salt))
}

/// AES key = SHA-256 of the password's MD5-crypt hash field.
pub fn aes_key(password: &str, salt: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(Sha256::digest(md5crypt(password, salt).as_bytes()).as_slice());
    key
}

/// Zero-pads to 16 bytes, AES-256-ECB, base64.
pub fn encrypt(key: &[u8; 32], plain: &[u8]) -> String {
    let Ok(cipher) = Aes256::new_from_slice(key) else {
        return String::new();
    };
    let mut buf = plain.to_vec();
    let padded = buf.len().div_ceil(16).max(1) * 16;
    buf.resize(padded, 0);
    for chunk in buf.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(chunk));
    }
    B64.encode(buf)
}

/// base64, AES-256-ECB, NUL padding stripped. `None` when not base64 or not whole blocks.
pub fn decrypt(key: &[u8; 32], b64: &str) -> Option<Vec<u8>> {
    let cipher = Aes256::new_from_slice(key).ok()?;
    let mut buf = B64.decode(b64.trim()).ok()?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return None;
    }
    for chunk in buf.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(chunk));
    }
    while buf.last() == Some(&0) {
        buf.pop();
    }
    Some(buf)
}

/// True when `b64` is valid base64 (to tell code 137 from a wrong key).
pub fn is_base64(b64: &str) -> bool {
    B64.decode(b64.trim()).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../simulator/fixtures/whatsminer/TEST_VECTORS_apiv2_crypto.json"
    ));

    #[test]
    fn matches_the_recorded_test_vectors() {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        let password = v["password"].as_str().unwrap();
        let msg = &v["get_token_reply"]["Msg"];
        let (salt, time, newsalt) = (
            msg["salt"].as_str().unwrap(),
            msg["time"].as_str().unwrap(),
            msg["newsalt"].as_str().unwrap(),
        );
        let pwd_md5 = md5crypt(password, salt);
        assert_eq!(
            pwd_md5,
            v["host_passwd_md5 = md5crypt(password, salt) hash field"]
        );
        let (sign, key) = token_keys(password, salt, time, newsalt);
        assert_eq!(
            sign,
            v["host_sign = md5crypt(host_passwd_md5 + time, newsalt) hash field"]
        );
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, v["aes256_key_hex = sha256(host_passwd_md5)"]);
        for ex in v["exchanges"].as_array().unwrap() {
            let req: Value = serde_json::from_str(ex["request_wire"].as_str().unwrap()).unwrap();
            let data = req["data"].as_str().unwrap();
            let plain = decrypt(&key, data).unwrap();
            assert_eq!(
                String::from_utf8(plain.clone()).unwrap(),
                ex["decrypted_request"].as_str().unwrap()
            );
            // Encrypting the plaintext again gives the recorded bytes (ECB is deterministic).
            assert_eq!(encrypt(&key, &plain), data);
            let resp: Value = serde_json::from_str(ex["response_wire"].as_str().unwrap()).unwrap();
            let enc = resp["enc"].as_str().unwrap();
            let plain = decrypt(&key, enc).unwrap();
            assert_eq!(
                String::from_utf8(plain.clone()).unwrap(),
                ex["decrypted_response"].as_str().unwrap()
            );
            assert_eq!(encrypt(&key, &plain), enc);
        }
        assert!(decrypt(&key, "not base64!").is_none());
        assert!(!is_base64("@@@"));
    }

    #[test]
    fn md5crypt_known_answer() {
        // `openssl passwd -1 -salt saltsalt password`
        assert_eq!(md5crypt("password", "saltsalt"), "qjXMvbEw8oaL.CzflDtaK/");
        assert_eq!(md5crypt("", "ab").len(), 22);
    }
}
