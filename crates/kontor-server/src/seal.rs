//! Secrets that must be read back (TOTP seeds) are stored sealed with the server's key:
//! ChaCha20-Poly1305, a random nonce per value, hex `nonce || ciphertext`.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> String {
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

pub fn open(key: &[u8; 32], sealed: &str) -> Option<Vec<u8>> {
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
        let key = [7u8; 32];
        let s = seal(&key, b"JBSWY3DPEHPK3PXP");
        assert_eq!(open(&key, &s).as_deref(), Some(&b"JBSWY3DPEHPK3PXP"[..]));
        assert_ne!(seal(&key, b"x"), seal(&key, b"x"), "nonces differ");
        assert!(open(&[8u8; 32], &s).is_none(), "another key cannot open it");
        let mut t = s.clone();
        t.replace_range(30..32, if &s[30..32] == "00" { "01" } else { "00" });
        assert!(open(&key, &t).is_none(), "tampering is detected");
        assert!(open(&key, "zz").is_none());
    }
}
