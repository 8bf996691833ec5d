//! TSIG (RFC 8945): the TSIG record of a message read, a request's MAC verified, responses
//! signed, one after another in a transfer. The HMACs are RustCrypto's; what goes into them,
//! and the record itself, is here.

use hmac::{Mac, SimpleHmac};
use sha2::{Sha256, Sha512};

use super::query::skip_name;
use super::{field, read_u16, Rtype, HEADER_LEN};

/// TSIG errors (RFC 8945 §5.2), in the record's Error field.
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
/// Class ANY, as a TSIG record has.
const CLASS_ANY: u16 = 255;
/// Longest MAC we make (HMAC-SHA512).
pub const MAX_MAC: usize = 64;

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

    fn mac_len(self) -> usize {
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
            .field("name", &super::name::wire_to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

enum Hmac {
    Sha256(SimpleHmac<Sha256>),
    Sha512(SimpleHmac<Sha512>),
}

impl Hmac {
    fn new(key: &Key) -> Self {
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

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(mac) => mac.update(data),
            Self::Sha512(mac) => mac.update(data),
        }
    }

    fn finish(self) -> Signature {
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
    fn verify(self, mac: &[u8]) -> bool {
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
    pub fn as_bytes(&self) -> &[u8] {
        &self.mac[..self.len]
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut signature = Self {
            mac: [0; MAX_MAC],
            len: bytes.len().min(MAX_MAC),
        };
        signature.mac[..signature.len].copy_from_slice(&bytes[..signature.len]);
        signature
    }
}

/// The TSIG record ending a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tsig<'m> {
    /// Where the record starts: the message signed ends here.
    pub start: usize,
    /// The key's name and the algorithm's, in wire form as received.
    pub key_name: &'m [u8],
    pub algorithm: &'m [u8],
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: &'m [u8],
    pub original_id: u16,
    pub error: u16,
    pub other: &'m [u8],
}

/// Why a message's TSIG cannot be read: FORMERR (RFC 8945 §5.1: not the last record, more
/// than one, or malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// The TSIG record of `message`, if it has one.
pub fn find(message: &[u8]) -> Result<Option<Tsig<'_>>, Malformed> {
    let count = |range: core::ops::Range<usize>| read_u16(message, range.start).ok_or(Malformed);
    let questions = count(field::QDCOUNT)?;
    let records = usize::from(count(field::ANCOUNT)?)
        + usize::from(count(field::NSCOUNT)?)
        + usize::from(count(field::ARCOUNT)?);
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or(Malformed)? + 4;
    }
    let mut tsig = None;
    for index in 0..records {
        let start = at;
        let owner_end = skip_name(message, at).ok_or(Malformed)?;
        let rtype = read_u16(message, owner_end).ok_or(Malformed)?;
        let rdlength = usize::from(read_u16(message, owner_end + 8).ok_or(Malformed)?);
        let rdata_at = owner_end + 10;
        let end = rdata_at + rdlength;
        if end > message.len() {
            return Err(Malformed);
        }
        if Rtype(rtype) == Rtype::TSIG {
            if index + 1 != records {
                return Err(Malformed);
            }
            tsig = Some(parse_rdata(message, start, owner_end, rdata_at, end)?);
        }
        at = end;
    }
    Ok(tsig)
}

fn parse_rdata(
    message: &[u8],
    start: usize,
    owner_end: usize,
    rdata_at: usize,
    end: usize,
) -> Result<Tsig<'_>, Malformed> {
    let key_name = &message[start..owner_end];
    let algorithm_end = skip_name(message, rdata_at).ok_or(Malformed)?;
    let algorithm = &message[rdata_at..algorithm_end];
    // The key and algorithm names are not compressed (RFC 8945 §4.2).
    if !is_plain_name(algorithm) || !is_plain_name(key_name) {
        return Err(Malformed);
    }
    let rdata = &message[algorithm_end..end];
    let u16_at = |at: usize| read_u16(rdata, at).ok_or(Malformed);
    let time = rdata.get(..6).ok_or(Malformed)?;
    let time_signed = time.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let fudge = u16_at(6)?;
    let mac_len = usize::from(u16_at(8)?);
    let mac = rdata.get(10..10 + mac_len).ok_or(Malformed)?;
    let rest = 10 + mac_len;
    let original_id = u16_at(rest)?;
    let error = u16_at(rest + 2)?;
    let other_len = usize::from(u16_at(rest + 4)?);
    let other = rdata.get(rest + 6..rest + 6 + other_len).ok_or(Malformed)?;
    if rest + 6 + other_len != rdata.len() {
        return Err(Malformed);
    }
    Ok(Tsig {
        start,
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// A name without compression pointers.
fn is_plain_name(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            return at + 1 == name.len();
        }
        if len & 0xC0 != 0 {
            return false;
        }
        at += 1 + usize::from(len);
    }
    false
}

/// How a request's TSIG checked out against our keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'k> {
    /// Signed by `key` with a good MAC, in time.
    Valid {
        key: &'k Key,
        mac: Signature,
        time_signed: u64,
    },
    /// A TSIG error (BADKEY, BADSIG, BADTIME) to answer with NOTAUTH. BADTIME answers are
    /// signed, so they carry the key and the request's MAC.
    Error {
        error: u16,
        key: Option<&'k Key>,
        mac: Signature,
        time_signed: u64,
    },
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
    // RFC 8945 §5.2.2.1: a MAC truncated below half its length or 10 bytes is refused.
    let full = key.algorithm.mac_len();
    if tsig.mac.len() > full || tsig.mac.len() < (full / 2).max(10) {
        return error(BADSIG, None);
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
fn digest_message(hmac: &mut Hmac, message: &[u8], tsig_start: usize, original_id: u16) {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&message[..HEADER_LEN]);
    header[field::ID].copy_from_slice(&original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[field::ARCOUNT].copy_from_slice(&arcount.to_be_bytes());
    hmac.update(&header);
    hmac.update(&message[HEADER_LEN..tsig_start]);
}

/// The TSIG variables (RFC 8945 §4.3.3), names in canonical (lower-case) form.
fn digest_variables(hmac: &mut Hmac, key: &Key, time: u64, fudge: u16, error: u16, other: &[u8]) {
    hmac.update(&key.name);
    hmac.update(&CLASS_ANY.to_be_bytes());
    hmac.update(&0u32.to_be_bytes());
    hmac.update(key.algorithm.wire_name());
    digest_timers(hmac, time, fudge);
    hmac.update(&error.to_be_bytes());
    hmac.update(&(other.len() as u16).to_be_bytes());
    hmac.update(other);
}

fn digest_timers(hmac: &mut Hmac, time: u64, fudge: u16) {
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
                hmac.update(&(prior.len as u16).to_be_bytes());
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
    let id = read_u16(out, 0)?;
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
    let arcount = read_u16(out, field::ARCOUNT.start)?.checked_add(1)?;
    out[field::ARCOUNT].copy_from_slice(&arcount.to_be_bytes());
    let none = Signature {
        mac: [0; MAX_MAC],
        len: 0,
    };
    Some((end, signature.unwrap_or(none)))
}

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
        hmac.update(&(self.prior.len as u16).to_be_bytes());
        hmac.update(self.prior.as_bytes());
        hmac
    }
}

/// Signs the request `out[..len]` with `key` at Unix time `now` (RFC 8945 §5.1): appends
/// the TSIG record and returns the new length and the MAC, which the answers chain to.
pub fn sign_request(out: &mut [u8], len: usize, key: &Key, now: u64) -> Option<(usize, Signature)> {
    let signing = Signing {
        key: Some(key),
        key_name: &key.name,
        algorithm: key.algorithm.wire_name(),
        chain: Chain::Query,
        time: now,
        fudge: FUDGE,
        error: 0,
        other: &[],
    };
    sign(out, len, &signing)
}

/// How long a signature of ours stays valid either side of its time (RFC 8945 §10).
pub const FUDGE: u16 = 300;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::QueryBuilder;

    fn key(name: &[u8], algorithm: Algorithm) -> Key {
        Key {
            name: name.to_vec(),
            algorithm,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    /// A query signed by `key` at `time` (our signer; kdig and dig check it in tests/xfr.rs).
    fn signed_query(key: &Key, time: u64) -> Vec<u8> {
        let mut out = QueryBuilder::new("apps.example.com", 252).id(99).build();
        let len = out.len();
        out.resize(len + 200, 0);
        let signing = Signing {
            key: Some(key),
            key_name: &key.name,
            algorithm: key.algorithm.wire_name(),
            chain: Chain::Query,
            time,
            fudge: 300,
            error: 0,
            other: &[],
        };
        let (end, _) = sign(&mut out, len, &signing).unwrap();
        out.truncate(end);
        out
    }

    #[test]
    fn verdicts() {
        let sha256 = key(b"\x03xfr\x00", Algorithm::HmacSha256);
        let sha512 = key(b"\x03big\x00", Algorithm::HmacSha512);
        let keys = [sha256.clone(), sha512.clone()];
        let now = 1_800_000_000;
        for key in [&sha256, &sha512] {
            let query = signed_query(key, now);
            let tsig = find(&query).unwrap().expect("a TSIG");
            assert_eq!(tsig.original_id, 99);
            assert!(matches!(
                verify(&query, &tsig, &keys, now + 300),
                Verdict::Valid { .. }
            ));
            let late = verify(&query, &tsig, &keys, now + 301);
            assert!(matches!(
                late,
                Verdict::Error {
                    error: BADTIME,
                    key: Some(_),
                    ..
                }
            ));
            // One bit of the question changed: the MAC no longer matches.
            let mut tampered = query.clone();
            tampered[HEADER_LEN + 1] ^= 0x20;
            let tsig = find(&tampered).unwrap().unwrap();
            let verdict = verify(&tampered, &tsig, &keys, now);
            assert!(
                matches!(verdict, Verdict::Error { error: BADSIG, .. }),
                "{verdict:?}"
            );
        }
        let unknown = key(b"\x05other\x00", Algorithm::HmacSha256);
        let query = signed_query(&unknown, now);
        let tsig = find(&query).unwrap().unwrap();
        let verdict = verify(&query, &tsig, &keys, now);
        assert!(matches!(
            verdict,
            Verdict::Error {
                error: BADKEY,
                key: None,
                ..
            }
        ));
        // The right name with another algorithm is another key.
        let query = signed_query(&key(b"\x03xfr\x00", Algorithm::HmacSha512), now);
        let tsig = find(&query).unwrap().unwrap();
        assert!(matches!(
            verify(&query, &tsig, &keys, now),
            Verdict::Error { error: BADKEY, .. }
        ));
    }

    #[test]
    fn a_tsig_must_be_last_and_whole() {
        let sha256 = key(b"\x03xfr\x00", Algorithm::HmacSha256);
        let query = signed_query(&sha256, 1);
        assert_eq!(find(&query[..query.len() - 1]), Err(Malformed));
        // A record after the TSIG: ARCOUNT + 1 and an empty root A record appended.
        let mut after = query.clone();
        after[11] += 1;
        after.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(find(&after), Err(Malformed));
        let plain = QueryBuilder::new("apps.example.com", 252).build();
        assert_eq!(find(&plain), Ok(None));
    }
}
