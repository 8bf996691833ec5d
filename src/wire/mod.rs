//! Bytes <-> borrowed views of a DNS message (RFC 1035 §4).
//!
//! [`parse_query`] reads a query datagram without copying or allocating and returns views that
//! borrow it; [`Writer`] appends to a caller's buffer under a fixed size limit;
//! [`update::parse_update`] reads an RFC 2136 UPDATE (off the query path: it allocates).
//! Nothing here knows about apps, zones or sockets.
//!
//! Guarantee: no function in this module panics or reads out of bounds on any input; every
//! length read from the wire is checked against the bytes actually present.

mod header;
mod iana;
pub mod name;
mod query;
pub mod record;
pub mod update;
mod writer;

pub use header::Header;
pub use iana::{Class, Opcode, OptionCode, Rcode, Rtype};
pub use name::{MAX_LABEL, MAX_NAME};
pub(crate) use query::skip_name;
pub use query::{parse_query, DropReason, FormErrCause, Opt, Query, Question, Reject};
pub use record::{OPTION_HEADER, OPT_FIXED};
pub use writer::{Truncated, Writer};

/// Length of the fixed message header.
pub const HEADER_LEN: usize = 12;
/// Largest UDP response to a query without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP: usize = 512;
/// Our EDNS UDP payload size: the DNS Flag Day 2020 value, safe against fragmentation.
pub const EDNS_UDP: usize = 1232;
/// Largest message over TCP: the 2-byte length prefix (RFC 1035 §4.2.2).
pub const MAX_TCP: usize = 65535;
/// A compression pointer to the question name, which always starts right after the header.
pub const PTR_QNAME: u16 = 0xC000 | HEADER_LEN as u16;

/// Byte offsets of the header fields (RFC 1035 §4.1.1).
pub(crate) mod field {
    use core::ops::Range;
    pub(crate) const ID: Range<usize> = 0..2;
    pub(crate) const FLAGS: Range<usize> = 2..4;
    pub(crate) const QDCOUNT: Range<usize> = 4..6;
    pub(crate) const ANCOUNT: Range<usize> = 6..8;
    pub(crate) const NSCOUNT: Range<usize> = 8..10;
    pub(crate) const ARCOUNT: Range<usize> = 10..12;
}

/// Header flag bits within the 16-bit flags word.
pub mod flags {
    /// Query (0) or response (1).
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired: copied from the query.
    pub const RD: u16 = 0x0100;
    /// Shift of the 4-bit opcode.
    pub const OPCODE_SHIFT: u16 = 11;
    /// Mask of the 4-bit opcode, after shifting.
    pub const OPCODE_MASK: u16 = 0xF;
    /// Mask of the low 4 bits of the RCODE.
    pub const RCODE_MASK: u16 = 0xF;
}

/// EDNS(0) flag: DNSSEC OK (RFC 3225), the top bit of the OPT TTL's low 16 bits.
pub const EDNS_DO: u16 = 0x8000;

pub(crate) fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}
