//! Secrets that must be read back (TOTP seeds, SSO client secrets) are stored sealed with the
//! keyring's sealing key: ChaCha20-Poly1305, a random nonce per value, hex `nonce || ciphertext`.
//! Opening tries every key the keyring accepts (the AEAD tag tells a wrong key apart), so values
//! sealed before a rotation open until `kontor admin key rotate` has sealed them again.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kontor_jobs::keys::{Keyring, Purpose};
use rand::RngCore;

pub fn seal(keys: &Keyring, plaintext: &[u8]) -> String {
    seal_with(&keys.current(Purpose::Seal), plaintext)
}

pub fn open(keys: &Keyring, sealed: &str) -> Option<Vec<u8>> {
    keys.accepted(Purpose::Seal)
        .iter()
        .find_map(|k| open_with(k, sealed))
}

fn seal_with(key: &[u8; 32], plaintext: &[u8]) -> String {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Encryption with a valid key and nonce cannot fail for in-memory buffers.
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    nonce
        .iter()
        .chain(ct.iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn open_with(key: &[u8; 32], sealed: &str) -> Option<Vec<u8>> {
    if sealed.len() < 24 || !sealed.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = (0..sealed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&sealed[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let (nonce, ct) = bytes.split_at(12);
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), ct)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = Keyring::new([7u8; 32], vec![]);
        let s = seal(&key, b"JBSWY3DPEHPK3PXP");
        assert_eq!(open(&key, &s).as_deref(), Some(&b"JBSWY3DPEHPK3PXP"[..]));
        assert_ne!(seal(&key, b"x"), seal(&key, b"x"), "nonces differ");
        let other = Keyring::new([8u8; 32], vec![]);
        assert!(open(&other, &s).is_none(), "another key cannot open it");
        let rotated = Keyring::new([8u8; 32], vec![[7u8; 32]]);
        assert!(open(&rotated, &s).is_some(), "a previous key opens it");
        let legacy = seal_with(&[7u8; 32], b"old");
        assert_eq!(
            open(&key, &legacy).as_deref(),
            Some(&b"old"[..]),
            "sealed with the master itself"
        );
        let mut t = s.clone();
        t.replace_range(30..32, if &s[30..32] == "00" { "01" } else { "00" });
        assert!(open(&key, &t).is_none(), "tampering is detected");
        assert!(open(&key, "zz").is_none());
    }
}
