//! The responses of a transfer checked in turn (RFC 8945 §5.3.1), for a client that signed
//! its request.

use super::key::{Hmac, Key, Signature};
use super::record::find;
use super::sign::{digest_message, digest_timers, digest_variables};

/// Checks the TSIG records of a transfer's response messages (RFC 8945 §5.3.1), for a
/// client that signed its request with `key`: the first message must be signed (its MAC
/// covers the request's), later ones may leave up to 99 in a row unsigned, which the next
/// signature covers, and the last must be signed.
pub struct ResponseChain<'k> {
    key: &'k Key,
    prior: Signature,
    /// The digest of the unsigned messages since the last signed one.
    running: Option<Hmac>,
    unsigned: u32,
    first: bool,
}

/// Why a response did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// The first message, or the 100th in a row, is not signed.
    Unsigned,
    Malformed,
    /// Signed with another key or algorithm.
    WrongKey,
    BadMac,
    /// The server answered with this TSIG error.
    Error(u16),
    /// Out of the time window.
    BadTime,
}

impl<'k> ResponseChain<'k> {
    /// For the responses to a request signed with `key`, whose MAC was `request_mac`.
    pub fn new(key: &'k Key, request_mac: Signature) -> Self {
        Self {
            key,
            prior: request_mac,
            running: None,
            unsigned: 0,
            first: true,
        }
    }

    /// Checks the next message at Unix time `now`; `Ok(true)` if it was signed (the
    /// transfer may end only after a signed message).
    pub fn verify(&mut self, message: &[u8], now: u64) -> Result<bool, ChainError> {
        let tsig = find(message).map_err(|_| ChainError::Malformed)?;
        let Some(tsig) = tsig else {
            if self.first || self.unsigned == 99 {
                return Err(ChainError::Unsigned);
            }
            let mut running = match self.running.take() {
                Some(running) => running,
                None => self.prior_digest(),
            };
            running.update(message);
            self.running = Some(running);
            self.unsigned += 1;
            return Ok(false);
        };
        if !self.key.name.eq_ignore_ascii_case(tsig.key_name)
            || !self
                .key
                .algorithm
                .wire_name()
                .eq_ignore_ascii_case(tsig.algorithm)
        {
            return Err(ChainError::WrongKey);
        }
        if tsig.error != 0 {
            return Err(ChainError::Error(tsig.error));
        }
        let mut hmac = self.running.take().unwrap_or_else(|| self.prior_digest());
        digest_message(&mut hmac, message, tsig.start, tsig.original_id);
        if self.first {
            digest_variables(
                &mut hmac,
                self.key,
                tsig.time_signed,
                tsig.fudge,
                0,
                tsig.other,
            );
        } else {
            digest_timers(&mut hmac, tsig.time_signed, tsig.fudge);
        }
        if tsig.mac.len() < (self.key.algorithm.mac_len() / 2).max(10) || !hmac.verify(tsig.mac) {
            return Err(ChainError::BadMac);
        }
        if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
            return Err(ChainError::BadTime);
        }
        self.prior = Signature::from_bytes(tsig.mac);
        self.unsigned = 0;
        self.first = false;
        Ok(true)
    }

    /// A digest that starts with the prior MAC, length first.
    fn prior_digest(&self) -> Hmac {
        let mut hmac = Hmac::new(self.key);
        hmac.update(&(self.prior.as_bytes().len() as u16).to_be_bytes());
        hmac.update(self.prior.as_bytes());
        hmac
    }
}
