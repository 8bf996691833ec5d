//! The fixed header of a message (RFC 1035 §4.1.1), read in place: the one way the layers
//! above read its fields, instead of each reading bytes at offsets of its own.

use super::record::{fixed_at, read_be16};
use super::{field, flags, Opcode, HEADER_LEN};

/// A message's header, borrowed. Once [`Header::new`] has found its twelve bytes, no getter
/// can fail or panic.
#[derive(Clone, Copy, Debug)]
pub struct Header<'m>(&'m [u8; HEADER_LEN]);

impl<'m> Header<'m> {
    /// The header of `message`, if it is that long.
    #[inline]
    pub fn new(message: &'m [u8]) -> Option<Self> {
        fixed_at::<HEADER_LEN>(message, 0).map(Self)
    }

    #[inline]
    pub fn id(self) -> u16 {
        read_be16(self.0, field::ID)
    }

    /// The flags word: QR, opcode, AA, TC, RD, RA, Z and the low four bits of the RCODE.
    #[inline]
    pub fn flags(self) -> u16 {
        read_be16(self.0, field::FLAGS)
    }

    #[inline]
    pub fn is_response(self) -> bool {
        self.flags() & flags::QR != 0
    }

    #[inline]
    pub fn opcode(self) -> Opcode {
        Opcode(((self.flags() >> flags::OPCODE_SHIFT) & flags::OPCODE_MASK) as u8)
    }

    /// The low four bits of the RCODE (the rest, if any, is in the OPT record).
    #[inline]
    pub fn rcode_low(self) -> u16 {
        self.flags() & flags::RCODE_MASK
    }

    #[inline]
    pub fn qdcount(self) -> u16 {
        read_be16(self.0, field::QDCOUNT)
    }

    #[inline]
    pub fn ancount(self) -> u16 {
        read_be16(self.0, field::ANCOUNT)
    }

    #[inline]
    pub fn nscount(self) -> u16 {
        read_be16(self.0, field::NSCOUNT)
    }

    #[inline]
    pub fn arcount(self) -> u16 {
        read_be16(self.0, field::ARCOUNT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::raw_message;

    #[test]
    fn fields_are_read_where_rfc_1035_puts_them() {
        // ID 0xBEEF; QR, opcode NOTIFY, AA, RCODE 5; counts 1, 2, 3, 4.
        let message = raw_message(0xBEEF, 0x8000 | 4 << 11 | 0x0400 | 5, [1, 2, 3, 4], b"");
        let header = Header::new(&message).unwrap();
        assert_eq!(header.id(), 0xBEEF);
        assert!(header.is_response());
        assert_eq!(header.opcode(), Opcode::NOTIFY);
        assert_eq!(header.rcode_low(), 5);
        assert_eq!(header.flags() & flags::AA, flags::AA);
        let counts = [
            header.qdcount(),
            header.ancount(),
            header.nscount(),
            header.arcount(),
        ];
        assert_eq!(counts, [1, 2, 3, 4]);
        let query = raw_message(1, 0, [1, 0, 0, 0], b"");
        let header = Header::new(&query).unwrap();
        assert!(!header.is_response());
        assert_eq!(header.opcode(), Opcode::QUERY);
        assert!(Header::new(&message[..HEADER_LEN - 1]).is_none());
    }
}
