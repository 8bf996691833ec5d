//! TSIG keys, the HMACs that sign with them (RustCrypto's), and the MACs they make.

use hmac::{Mac, SimpleHmac};
use sha2::{Sha256, Sha512};

use super::MAX_MAC;
use crate::wire::name::wire_to_text;

/// The HMAC algorithms we speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha512,
}

impl Algorithm {
    /// The algorithm's name in wire form (RFC 8945 §6).
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Self::HmacSha256 => b"\x0bhmac-sha256\x00",
            Self::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// From a key file's `algorithm` word.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    pub(super) fn mac_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha512 => 64,
        }
    }
}

/// A shared secret, named.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's name in lower-case wire form.
    pub name: Vec<u8>,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Key")
            .field("name", &wire_to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

pub(super) enum Hmac {
    Sha256(SimpleHmac<Sha256>),
    Sha512(SimpleHmac<Sha512>),
}

impl Hmac {
    pub(super) fn new(key: &Key) -> Self {
        // HMAC takes keys of any length: new_from_slice cannot fail.
        match key.algorithm {
            Algorithm::HmacSha256 => Self::Sha256(
                SimpleHmac::new_from_slice(&key.secret).unwrap_or_else(|_| unreachable!()),
            ),
            Algorithm::HmacSha512 => Self::Sha512(
                SimpleHmac::new_from_slice(&key.secret).unwrap_or_else(|_| unreachable!()),
            ),
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(mac) => mac.update(data),
            Self::Sha512(mac) => mac.update(data),
        }
    }

    pub(super) fn finish(self) -> Signature {
        let mut signature = Signature {
            mac: [0; MAX_MAC],
            len: 0,
        };
        let mut keep = |bytes: &[u8]| {
            signature.mac[..bytes.len()].copy_from_slice(bytes);
            signature.len = bytes.len();
        };
        match self {
            Self::Sha256(mac) => keep(&mac.finalize().into_bytes()),
            Self::Sha512(mac) => keep(&mac.finalize().into_bytes()),
        }
        signature
    }

    /// Compares in constant time; `mac` may be truncated to its leftmost bytes.
    pub(super) fn verify(self, mac: &[u8]) -> bool {
        match self {
            Self::Sha256(m) => m.verify_truncated_left(mac).is_ok(),
            Self::Sha512(m) => m.verify_truncated_left(mac).is_ok(),
        }
    }
}

/// A MAC made or received, kept for the next message's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    mac: [u8; MAX_MAC],
    len: usize,
}

impl Signature {
    /// No MAC: what an unsigned message chains to.
    pub(super) const NONE: Self = Self {
        mac: [0; MAX_MAC],
        len: 0,
    };

    pub fn as_bytes(&self) -> &[u8] {
        &self.mac[..self.len]
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Self {
        let mut signature = Self {
            mac: [0; MAX_MAC],
            len: bytes.len().min(MAX_MAC),
        };
        signature.mac[..signature.len].copy_from_slice(&bytes[..signature.len]);
        signature
    }
}
