//! Signing and verifying against our own signer; kdig and dig check it in tests/xfr.rs.

use super::key::*;
use super::*;
use crate::testing::{with_mac_len, QueryBuilder};
use crate::wire::HEADER_LEN;

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
    let signing = Signing::new(key, &key.name, Chain::Query, time);
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

/// RFC 8945 §5.2.2.1: a MAC longer than the hash, or shorter than half of it and 10 bytes,
/// is FORMERR; one truncated above that is BADTRUNC (we accept no truncation), unsigned.
/// Before, each was BADSIG, and a truncation at half the hash was checked as a MAC
/// (hardening round three, item 8).
#[test]
fn mac_lengths_are_checked_before_the_mac() {
    let now = 1_800_000_000;
    for key in [
        key(b"\x03xfr\x00", Algorithm::HmacSha256),
        key(b"\x03big\x00", Algorithm::HmacSha512),
    ] {
        let keys = [key.clone()];
        let query = signed_query(&key, now);
        let full = key.algorithm.mac_len();
        let least = (full / 2).max(10);
        for (len, want) in [
            (0, "FORMERR"),
            (9, "FORMERR"),
            (least - 1, "FORMERR"),
            (least, "BADTRUNC"),
            (full - 1, "BADTRUNC"),
            (full, "valid"),
            (full + 1, "FORMERR"),
        ] {
            let changed = with_mac_len(&query, len);
            let tsig = find(&changed).unwrap().unwrap();
            let verdict = verify(&changed, &tsig, &keys, now);
            let got = match verdict {
                Verdict::FormErr => "FORMERR",
                Verdict::Error {
                    error: BADTRUNC,
                    key: None,
                    ..
                } => "BADTRUNC",
                Verdict::Valid { .. } => "valid",
                _ => "other",
            };
            assert_eq!(got, want, "MAC of {len} bytes of {full}: {verdict:?}");
        }
    }
}

/// A TSIG that is the last record but not in the additional section (here the only record,
/// counted as an answer) cannot be read: FORMERR (RFC 8945 §5.1).
#[test]
fn a_tsig_outside_the_additional_section_is_malformed() {
    let key = key(b"\x03xfr\x00", Algorithm::HmacSha256);
    let mut query = signed_query(&key, 1_800_000_000);
    assert!(find(&query).unwrap().is_some());
    query[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    assert_eq!(find(&query), Err(Malformed));
}
