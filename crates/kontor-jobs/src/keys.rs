//! The server's keys. One master key (`secret.key`, or `KONTOR_SECRET_KEY`) is never used
//! directly: each purpose gets its own key derived from it (HKDF-Expand with SHA-256, RFC 5869
//! §2.3; the master key is already uniformly random, so the extract step is not needed), so a
//! value made for one purpose is worthless for another. Today there are two purposes:
//!
//! - `seal`: ChaCha20-Poly1305 over secrets kontor must read back (TOTP seeds, SSO client
//!   secrets);
//! - `links`: HMAC-SHA256 signatures of download links.
//!
//! Rotation: after `kontor admin key rotate`, the old master key is kept as a *previous* key.
//! New values are always made with the current key; previous keys only open and verify, so
//! links signed before the rotation work until they expire, while every sealed value has been
//! sealed again under the new key. Values made before keys were derived per purpose (with the
//! master key itself) are still opened and verified, and `rotate` re-seals them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub type Key = [u8; 32];

#[derive(Clone, Copy)]
pub enum Purpose {
    Seal,
    Links,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::Seal => b"kontor seal v1",
            Purpose::Links => b"kontor download links v1",
        }
    }
}

/// HKDF-Expand(master, info, 32): one block, `HMAC(master, info || 0x01)`.
fn derive(master: &Key, purpose: Purpose) -> Key {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length works");
    m.update(purpose.info());
    m.update(&[1]);
    m.finalize().into_bytes().into()
}

/// The current master key and the previous ones still accepted for opening and verifying.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(current: Key, previous: Vec<Key>) -> Self {
        Self { current, previous }
    }

    /// The key new values of `purpose` are made with.
    pub fn current(&self, purpose: Purpose) -> Key {
        derive(&self.current, purpose)
    }

    /// Every key a value of `purpose` may have been made with, current first: each master's
    /// derived key, then the masters themselves (values from before keys were derived).
    pub fn accepted(&self, purpose: Purpose) -> Vec<Key> {
        let masters = std::iter::once(&self.current).chain(self.previous.iter());
        let derived: Vec<Key> = masters.clone().map(|m| derive(m, purpose)).collect();
        derived.into_iter().chain(masters.copied()).collect()
    }

    /// The master key, for writing it to the key file.
    pub fn current_master(&self) -> &Key {
        &self.current
    }

    pub fn previous_masters(&self) -> &[Key] {
        &self.previous
    }
}

/// 64 hex digits.
pub fn to_hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(hex: &str) -> Option<Key> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

pub fn generate() -> Key {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_has_its_own_key_and_previous_keys_only_verify() {
        let old = Keyring::new([1; 32], vec![]);
        let ring = Keyring::new([2; 32], vec![[1; 32]]);
        assert_ne!(ring.current(Purpose::Seal), ring.current(Purpose::Links));
        assert_ne!(
            ring.current(Purpose::Seal),
            [2; 32],
            "the master is not used directly"
        );
        let accepted = ring.accepted(Purpose::Links);
        assert_eq!(accepted[0], ring.current(Purpose::Links));
        assert!(accepted.contains(&old.current(Purpose::Links)));
        assert!(accepted.contains(&[1; 32]) && accepted.contains(&[2; 32]));
        assert!(!accepted.contains(&ring.current(Purpose::Seal)));
        assert_eq!(from_hex(&to_hex(&[0xab; 32])), Some([0xab; 32]));
        assert_eq!(from_hex("abc"), None);
        assert!(
            !format!("{ring:?}").contains("2, 2"),
            "keys are not printed"
        );
    }
}
