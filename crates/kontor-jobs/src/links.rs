//! Signed, expiring download links: `…/download?expires=<epoch s>&signature=<hex>`, an
//! HMAC-SHA256 under the server key of the account, the backup and the expiry. Anyone with the
//! link can download until it expires, like an object store's presigned URL, so links are only
//! handed to the super admin who asked (in-app, by e-mail, or through the API).

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(key: &[u8; 32], account: i64, backup: i64, expires_s: i64) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length works");
    m.update(format!("kontor backup download\n{account}\n{backup}\n{expires_s}").as_bytes());
    m
}

/// The query string of a link valid until `expires_ms`.
pub fn sign(key: &[u8; 32], account: i64, backup: i64, expires_ms: i64) -> String {
    let expires_s = expires_ms / 1000;
    let sig: String = mac(key, account, backup, expires_s)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("expires={expires_s}&signature={sig}")
}

/// Whether a link's signature is genuine under one of `keys` (the keyring's accepted link
/// keys) and it has not expired at `now_ms`.
pub fn verify(
    keys: &[[u8; 32]],
    account: i64,
    backup: i64,
    expires_s: i64,
    signature: &str,
    now_ms: i64,
) -> bool {
    if now_ms / 1000 >= expires_s || signature.len() != 64 {
        return false;
    }
    let Some(bytes) = (0..32)
        .map(|i| u8::from_str_radix(signature.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    // `verify_slice` compares in constant time.
    keys.iter().any(|key| {
        mac(key, account, backup, expires_s)
            .verify_slice(&bytes)
            .is_ok()
    })
}

/// The path (below the public URL) of a backup's download.
pub fn download_path(account: i64, backup: i64) -> String {
    format!("/kontor/v1/backups/{backup}/download?account={account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_links_check_everything() {
        let key = [7u8; 32];
        let q = sign(&key, 1, 2, 10_000_000);
        let sig = q.split("signature=").nth(1).unwrap();
        let keys = [key];
        assert!(verify(&keys, 1, 2, 10_000, sig, 0));
        assert!(!verify(&keys, 1, 2, 10_000, sig, 10_000_000), "expired");
        assert!(!verify(&keys, 1, 3, 10_000, sig, 0), "other backup");
        assert!(!verify(&keys, 9, 2, 10_000, sig, 0), "other account");
        assert!(!verify(&keys, 1, 2, 10_001, sig, 0), "longer expiry");
        assert!(!verify(&[[8u8; 32]], 1, 2, 10_000, sig, 0), "other key");
        assert!(
            verify(&[[8u8; 32], key], 1, 2, 10_000, sig, 0),
            "a previous key"
        );
        assert!(!verify(&keys, 1, 2, 10_000, "zz", 0));
    }
}
