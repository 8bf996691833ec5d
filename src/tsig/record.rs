//! The TSIG record of a message, read in wire terms (RFC 8945 §4.2).

use crate::wire::record::{field, fixed_at, read_be16, RR_FIXED};
use crate::wire::{read_u16, skip_name, Header, Rtype, HEADER_LEN};

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
    let header = Header::new(message).ok_or(Malformed)?;
    let questions = header.qdcount();
    let before_additional = usize::from(header.ancount()) + usize::from(header.nscount());
    let records = before_additional + usize::from(header.arcount());
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or(Malformed)? + 4;
    }
    let mut tsig = None;
    for index in 0..records {
        let start = at;
        let owner_end = skip_name(message, at).ok_or(Malformed)?;
        let fixed = fixed_at::<RR_FIXED>(message, owner_end).ok_or(Malformed)?;
        let rtype = read_be16(fixed, field::TYPE);
        let rdlength = usize::from(read_be16(fixed, field::RDLENGTH));
        let rdata_at = owner_end + RR_FIXED;
        let end = rdata_at + rdlength;
        if end > message.len() {
            return Err(Malformed);
        }
        if Rtype(rtype) == Rtype::TSIG {
            // The last record, of the additional section (RFC 8945 §5.1).
            if index + 1 != records || index < before_additional {
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
