//! Answers to TSIG-signed queries (RFC 8945 §5.3): the response `respond_to` wrote is signed
//! with the request's key, or replaced by the TSIG error. Secondaries sign their SOA
//! refresh queries (BIND does with a key on the primary), and expect signed answers.

use super::Rcode;
use crate::tsig::{self, sign, sign_failure, Chain, Failure, Key, Signing, Verdict};
use crate::wire::{field, flags, skip_name, Header, HEADER_LEN};

/// Signs the response `out[..len]` to the signed `query` with the key that signed it, or
/// turns it into the NOTAUTH answer of a TSIG error (a key we do not have: BADKEY, even
/// with no keys at all), or FORMERR when the TSIG is unreadable, not the last record of the
/// additional section, or has a MAC of a length no truncation allows. A response that has no
/// room left for the TSIG in `out` becomes TC=1 with the question only, signed. Returns the
/// new length, `None` when nothing can be sent.
pub fn sign_response(
    query: &[u8],
    out: &mut [u8],
    len: usize,
    keys: &[Key],
    now: u64,
) -> Option<usize> {
    let tsig = match tsig::find(query) {
        Ok(Some(tsig)) => tsig,
        Ok(None) => return Some(len),
        Err(tsig::Malformed) => return bare(out, len, Rcode::FORMERR.header_bits()),
    };
    match tsig::verify(query, &tsig, keys, now) {
        Verdict::FormErr => bare(out, len, Rcode::FORMERR.header_bits()),
        Verdict::Valid { key, mac, .. } => {
            // The algorithm's name as the request spelled it, as its key name.
            let signing = Signing {
                algorithm: tsig.algorithm,
                ..Signing::new(key, tsig.key_name, Chain::Request(mac), now)
            };
            if let Some((signed, _)) = sign(out, len, &signing) {
                return Some(signed);
            }
            let len = bare(out, len, flags::TC)?;
            sign(out, len, &signing).map(|(signed, _)| signed)
        }
        Verdict::Error {
            error,
            key,
            mac,
            time_signed,
        } => {
            let len = bare(out, len, Rcode::NOTAUTH.header_bits())?;
            let failure = Failure {
                error,
                key,
                key_name: tsig.key_name,
                algorithm: tsig.algorithm,
                mac,
                time_signed,
            };
            sign_failure(out, len, &failure, now)
        }
    }
}

/// Cuts the response `out[..len]` back to its header and question, keeping ID, opcode and
/// RD, with `bits` (an RCODE, or TC) set in the flags; returns the new length.
fn bare(out: &mut [u8], len: usize, bits: u16) -> Option<usize> {
    let response = out.get_mut(..len)?;
    let header = Header::new(response)?;
    let questions = header.qdcount();
    let mut end = HEADER_LEN;
    for _ in 0..questions {
        end = skip_name(response, end)? + 4;
    }
    if end > len {
        return None;
    }
    let kept = header.flags()
        & (flags::QR | flags::OPCODE_MASK << flags::OPCODE_SHIFT | flags::RD | flags::AA);
    let word = match bits {
        flags::TC => kept | flags::TC,
        rcode => kept & !flags::AA | rcode,
    };
    response[field::FLAGS].copy_from_slice(&word.to_be_bytes());
    for count in [field::ANCOUNT, field::NSCOUNT, field::ARCOUNT] {
        response[count].fill(0);
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{respond, Transport};
    use crate::snapshot::Snapshot;
    use crate::testing::QueryBuilder;
    use crate::tsig::Algorithm;

    fn key() -> Key {
        Key {
            name: b"\x04edge\x00".to_vec(),
            algorithm: Algorithm::HmacSha256,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    fn signed(name: &str, now: u64) -> Vec<u8> {
        let key = key();
        let mut query = QueryBuilder::new(name, 5).id(7).build();
        let len = query.len();
        query.resize(len + 200, 0);
        let signing = Signing::new(&key, &key.name, Chain::Query, now);
        let (end, _) = sign(&mut query, len, &signing).unwrap();
        query.truncate(end);
        query
    }

    /// (header flags, ANCOUNT, the TSIG's error and MAC length) of a signed answer.
    fn answer(query: &[u8], capacity: usize, keys: &[Key], now: u64) -> (u16, u16, u16, usize) {
        let zone = crate::testing::zone();
        let snapshot = Snapshot::from_json(include_bytes!("../../data/apps.json"), &zone).unwrap();
        let mut out = vec![0; 1232];
        let len = respond(query, &snapshot, Transport::Udp, &mut out).unwrap();
        out.truncate(capacity);
        let len = sign_response(query, &mut out, len, keys, now).unwrap();
        let tsig = tsig::find(&out[..len]).unwrap().expect("a TSIG");
        let header = Header::new(&out).unwrap();
        (header.flags(), header.ancount(), tsig.error, tsig.mac.len())
    }

    #[test]
    fn signed_answers_and_their_failures() {
        let now = 1_800_000_000;
        let query = signed("ws-123456.apps.example.com", now);
        let keys = [key()];
        let (flags, answers, error, mac) = answer(&query, 1232, &keys, now);
        assert_eq!((flags & 0xF, answers, error, mac), (0, 1, 0, 32));
        // No room for the TSIG after the answer (76 bytes, the TSIG 75): TC, question only
        // (44 bytes), still signed.
        let (flags, answers, error, mac) = answer(&query, 130, &keys, now);
        assert_ne!(flags & flags::TC, 0);
        assert_eq!((answers, error, mac), (0, 0, 32));
        // An unknown key, or none at all: NOTAUTH, BADKEY, unsigned.
        let (flags, answers, error, mac) = answer(&query, 1232, &[], now);
        assert_eq!((flags & 0xF, answers, error, mac), (9, 0, tsig::BADKEY, 0));
        // Out of the time window: BADTIME, signed.
        let (flags, _, error, mac) = answer(&query, 1232, &keys, now + 1000);
        assert_eq!((flags & 0xF, error, mac), (9, tsig::BADTIME, 32));
    }
}
