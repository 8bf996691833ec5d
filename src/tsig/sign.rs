//! A request's MAC verified against our keys (RFC 8945 §5.2), and messages signed: requests,
//! responses chained to the request or to the message before, and the NOTAUTH answers to a
//! TSIG that failed.

use super::key::{Hmac, Key, Signature};
use super::record::Tsig;
use super::{BADKEY, BADSIG, BADTIME, BADTRUNC, CLASS_ANY, FUDGE};
use crate::wire::record::read_be16;
use crate::wire::{field, Header, Rtype, HEADER_LEN};

/// How a request's TSIG checked out against our keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'k> {
    /// Signed by `key` with a good MAC, in time.
    Valid {
        key: &'k Key,
        mac: Signature,
        time_signed: u64,
    },
    /// A TSIG error (BADKEY, BADSIG, BADTIME, BADTRUNC) to answer with NOTAUTH. BADTIME
    /// answers are signed, so they carry the key and the request's MAC.
    Error {
        error: u16,
        key: Option<&'k Key>,
        mac: Signature,
        time_signed: u64,
    },
    /// A MAC shorter than the least truncation allowed or longer than the hash: FORMERR
    /// (RFC 8945 §5.2.2.1).
    FormErr,
}

/// Checks the TSIG `tsig` of `message` against `keys` at Unix time `now` (RFC 8945 §5.2:
/// the key, then the MAC, then the time).
pub fn verify<'k>(message: &[u8], tsig: &Tsig<'_>, keys: &'k [Key], now: u64) -> Verdict<'k> {
    let error = |error, key| Verdict::Error {
        error,
        key,
        mac: Signature::from_bytes(tsig.mac),
        time_signed: tsig.time_signed,
    };
    let Some(key) = keys.iter().find(|key| {
        key.name.eq_ignore_ascii_case(tsig.key_name)
            && key
                .algorithm
                .wire_name()
                .eq_ignore_ascii_case(tsig.algorithm)
    }) else {
        return error(BADKEY, None);
    };
    // RFC 8945 §5.2.2.1: a MAC longer than the hash, or truncated below half of it or 10
    // bytes, is FORMERR; a truncated one above that is BADTRUNC from a server that accepts
    // no truncation, as we do (unsigned: its MAC was not checked).
    let full = key.algorithm.mac_len();
    if tsig.mac.len() > full || tsig.mac.len() < (full / 2).max(10) {
        return Verdict::FormErr;
    }
    if tsig.mac.len() < full {
        return error(BADTRUNC, None);
    }
    let mut hmac = Hmac::new(key);
    digest_message(&mut hmac, message, tsig.start, tsig.original_id);
    digest_variables(
        &mut hmac,
        key,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        tsig.other,
    );
    if !hmac.verify(tsig.mac) {
        return error(BADSIG, None);
    }
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return error(BADTIME, Some(key));
    }
    Verdict::Valid {
        key,
        mac: Signature::from_bytes(tsig.mac),
        time_signed: tsig.time_signed,
    }
}

/// The message as signed: ARCOUNT less the TSIG, the original ID, up to the TSIG record.
pub(super) fn digest_message(hmac: &mut Hmac, message: &[u8], tsig_start: usize, original_id: u16) {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&message[..HEADER_LEN]);
    header[field::ID].copy_from_slice(&original_id.to_be_bytes());
    let arcount = read_be16(&header, field::ARCOUNT).saturating_sub(1);
    header[field::ARCOUNT].copy_from_slice(&arcount.to_be_bytes());
    hmac.update(&header);
    hmac.update(&message[HEADER_LEN..tsig_start]);
}

/// The TSIG variables (RFC 8945 §4.3.3), names in canonical (lower-case) form.
pub(super) fn digest_variables(
    hmac: &mut Hmac,
    key: &Key,
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) {
    hmac.update(&key.name);
    hmac.update(&CLASS_ANY.to_be_bytes());
    hmac.update(&0u32.to_be_bytes());
    hmac.update(key.algorithm.wire_name());
    digest_timers(hmac, time, fudge);
    hmac.update(&error.to_be_bytes());
    hmac.update(&(other.len() as u16).to_be_bytes());
    hmac.update(other);
}

pub(super) fn digest_timers(hmac: &mut Hmac, time: u64, fudge: u16) {
    hmac.update(&time.to_be_bytes()[2..]);
    hmac.update(&fudge.to_be_bytes());
}

/// What a signature of a response covers before the message itself.
#[derive(Clone, Copy, Debug)]
pub enum Chain {
    /// A request: nothing before the message, all the TSIG variables after.
    Query,
    /// The first response to a request: its MAC, and all the TSIG variables after.
    Request(Signature),
    /// A later message of the same transfer: the MAC before, and only the timers after.
    Prior(Signature),
    /// An error answered unsigned (BADKEY, BADSIG): no MAC.
    Unsigned,
}

/// How to sign a message: `key_name` and `algorithm` are written as the request spelled them;
/// `key` signs after `chain` (nothing signs for `Chain::Unsigned`); `other` is the Other Data
/// (the server's time, for BADTIME).
pub struct Signing<'a> {
    pub key: Option<&'a Key>,
    pub key_name: &'a [u8],
    pub algorithm: &'a [u8],
    pub chain: Chain,
    pub time: u64,
    pub fudge: u16,
    pub error: u16,
    pub other: &'a [u8],
}

impl<'a> Signing<'a> {
    /// Signing with `key` after `chain` at Unix time `time`, the key's name written as
    /// `key_name` (as the request spelled it), no error: what every signed message but a
    /// TSIG error answer needs.
    pub fn new(key: &'a Key, key_name: &'a [u8], chain: Chain, time: u64) -> Self {
        Self {
            key: Some(key),
            key_name,
            algorithm: key.algorithm.wire_name(),
            chain,
            time,
            fudge: FUDGE,
            error: 0,
            other: &[],
        }
    }
}

/// Appends a TSIG record to the message `out[..len]` (ARCOUNT incremented) and returns the
/// new length and the MAC made (empty when unsigned), for the next message; `None` if it does
/// not fit in `out`.
pub fn sign(out: &mut [u8], len: usize, signing: &Signing<'_>) -> Option<(usize, Signature)> {
    let Signing {
        key,
        key_name,
        algorithm,
        chain,
        time,
        fudge,
        error,
        other,
    } = *signing;
    let signature = match (chain, key) {
        (Chain::Unsigned, _) | (_, None) => None,
        (_, Some(key)) => {
            let mut hmac = Hmac::new(key);
            if let Chain::Request(prior) | Chain::Prior(prior) = chain {
                hmac.update(&(prior.as_bytes().len() as u16).to_be_bytes());
                hmac.update(prior.as_bytes());
            }
            hmac.update(&out[..len]);
            match chain {
                Chain::Prior(_) => digest_timers(&mut hmac, time, fudge),
                _ => digest_variables(&mut hmac, key, time, fudge, error, other),
            }
            Some(hmac.finish())
        }
    };
    let mac = signature.as_ref().map_or(&[][..], Signature::as_bytes);
    let id = Header::new(out)?.id();
    let rdlength = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    let parts: [&[u8]; 14] = [
        key_name,
        &Rtype::TSIG.0.to_be_bytes(),
        &CLASS_ANY.to_be_bytes(),
        &0u32.to_be_bytes(),
        &(rdlength as u16).to_be_bytes(),
        algorithm,
        &time.to_be_bytes()[2..],
        &fudge.to_be_bytes(),
        &(mac.len() as u16).to_be_bytes(),
        mac,
        &id.to_be_bytes(),
        &error.to_be_bytes(),
        &(other.len() as u16).to_be_bytes(),
        other,
    ];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let end = len + total;
    if end > out.len() {
        return None;
    }
    let mut at = len;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let arcount = Header::new(out)?.arcount().checked_add(1)?;
    out[field::ARCOUNT].copy_from_slice(&arcount.to_be_bytes());
    Some((end, signature.unwrap_or(Signature::NONE)))
}

/// Signs the request `out[..len]` with `key` at Unix time `now` (RFC 8945 §5.1): appends
/// the TSIG record and returns the new length and the MAC, which the answers chain to.
pub fn sign_request(out: &mut [u8], len: usize, key: &Key, now: u64) -> Option<(usize, Signature)> {
    sign(out, len, &Signing::new(key, &key.name, Chain::Query, now))
}

/// A request's TSIG that failed, as the NOTAUTH answer repeats it (RFC 8945 §5.2).
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    pub error: u16,
    /// The key, for BADTIME only: that answer is signed.
    pub key: Option<&'a Key>,
    pub key_name: &'a [u8],
    pub algorithm: &'a [u8],
    pub mac: Signature,
    pub time_signed: u64,
}

/// Appends the TSIG of a NOTAUTH answer to `out[..len]`: unsigned with the error for BADKEY
/// and BADSIG; signed for BADTIME, with the request's time and ours in Other Data.
pub fn sign_failure(out: &mut [u8], len: usize, failure: &Failure<'_>, now: u64) -> Option<usize> {
    let our_time = now.to_be_bytes();
    let (chain, time, other) = match (failure.error, failure.key) {
        (BADTIME, Some(_)) => (
            Chain::Request(failure.mac),
            failure.time_signed,
            &our_time[2..],
        ),
        _ => (Chain::Unsigned, now, &[][..]),
    };
    let signing = Signing {
        key: failure.key,
        key_name: failure.key_name,
        algorithm: failure.algorithm,
        chain,
        time,
        fudge: FUDGE,
        error: failure.error,
        other,
    };
    sign(out, len, &signing).map(|(len, _)| len)
}
