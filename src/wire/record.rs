//! Resource records in wire form (RFC 1035 §4.1.3): the fixed fields after an owner name, the
//! EDNS OPT record's reading of them (RFC 6891 §6.1.2), and encoding of whole records at load
//! time (never per query).

use super::{Class, Rtype, PTR_QNAME};

/// Bytes of an RR after its owner name: TYPE, CLASS, TTL, RDLENGTH.
pub const RR_FIXED: usize = 10;
/// Bytes of a question after its name: QTYPE, QCLASS (RFC 1035 §4.1.2).
pub const QUESTION_FIXED: usize = 4;
/// Bytes of an EDNS option header: OPTION-CODE, OPTION-LENGTH (RFC 6891 §6.1.2).
pub const OPTION_HEADER: usize = 4;
/// Bytes of an OPT record with no options: the root owner (one byte), then the fixed fields.
pub const OPT_FIXED: usize = 1 + RR_FIXED;

/// Offsets of the fixed fields, counted from the end of the owner name.
pub(crate) mod field {
    use core::ops::Range;
    pub(crate) const TYPE: Range<usize> = 0..2;
    pub(crate) const CLASS: Range<usize> = 2..4;
    pub(crate) const TTL: Range<usize> = 4..8;
    pub(crate) const RDLENGTH: Range<usize> = 8..10;
    /// In an OPT record, CLASS is the requestor's UDP payload size ...
    pub(crate) const OPT_UDP_PAYLOAD: Range<usize> = CLASS;
    /// ... and TTL holds the extended RCODE, the version and the flags.
    pub(crate) const OPT_EXTENDED_RCODE: usize = TTL.start;
    pub(crate) const OPT_VERSION: usize = TTL.start + 1;
    pub(crate) const OPT_FLAGS: Range<usize> = TTL.start + 2..TTL.end;
    /// A question's fixed fields, after its name.
    pub(crate) const QTYPE: Range<usize> = 0..2;
    pub(crate) const QCLASS: Range<usize> = 2..4;
}

/// The `N` bytes of fixed fields at `at`, if the packet holds them.
#[inline(always)]
pub(crate) fn fixed_at<const N: usize>(packet: &[u8], at: usize) -> Option<&[u8; N]> {
    packet.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The big-endian u16 at `range` of a block of fixed fields: with a constant range, no
/// bounds check survives compilation.
#[inline(always)]
pub(crate) fn read_be16<const N: usize>(fixed: &[u8; N], range: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([fixed[range.start], fixed[range.start + 1]])
}

/// Appends a record owned by the question name (a pointer to it) with RDATA from `rdata`.
pub fn push_record(out: &mut Vec<u8>, rtype: Rtype, class: Class, ttl: u32, rdata: &[&[u8]]) {
    out.extend_from_slice(&PTR_QNAME.to_be_bytes());
    push_record_tail(out, rtype, class, ttl, rdata);
}

/// Appends TYPE, CLASS, TTL, RDLENGTH and RDATA: a record without its owner.
pub fn push_record_tail(out: &mut Vec<u8>, rtype: Rtype, class: Class, ttl: u32, rdata: &[&[u8]]) {
    let rdlen: usize = rdata.iter().map(|part| part.len()).sum();
    out.extend_from_slice(&rtype.0.to_be_bytes());
    out.extend_from_slice(&class.0.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdlen as u16).to_be_bytes());
    for part in rdata {
        out.extend_from_slice(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_an_encoded_record() {
        let mut record = Vec::new();
        push_record(&mut record, Rtype::TXT, Class::CH, 300, &[&[2], b"hi"]);
        assert_eq!(record[..2], PTR_QNAME.to_be_bytes());
        let fixed = &record[2..2 + RR_FIXED];
        assert_eq!(fixed[field::TYPE], Rtype::TXT.0.to_be_bytes());
        assert_eq!(fixed[field::CLASS], Class::CH.0.to_be_bytes());
        assert_eq!(fixed[field::TTL], 300u32.to_be_bytes());
        assert_eq!(fixed[field::RDLENGTH], 3u16.to_be_bytes());
        assert_eq!(&record[2 + RR_FIXED..], b"\x02hi");
    }
}
