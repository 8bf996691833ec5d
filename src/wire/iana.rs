//! Protocol numbers as total newtypes: unknown values pass through unchanged.

/// A resource record type or QTYPE (RFC 1035 §3.2.2, §3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rtype(pub u16);

impl Rtype {
    pub const A: Self = Self(1);
    pub const NS: Self = Self(2);
    pub const CNAME: Self = Self(5);
    pub const SOA: Self = Self(6);
    pub const TXT: Self = Self(16);
    pub const AAAA: Self = Self(28);
    pub const OPT: Self = Self(41);
    pub const TKEY: Self = Self(249);
    pub const TSIG: Self = Self(250);
    pub const IXFR: Self = Self(251);
    pub const AXFR: Self = Self(252);
    pub const MAILB: Self = Self(253);
    pub const MAILA: Self = Self(254);
    pub const ANY: Self = Self(255);

    /// Types that may be asked but never stored, other than the ones we serve (ANY) or refuse
    /// (AXFR, IXFR): 0, OPT and the meta range 128-255 (RFC 6895 §3.1).
    pub fn is_unsupported_meta(self) -> bool {
        match self {
            Self::ANY | Self::AXFR | Self::IXFR => false,
            Self(0) | Self::OPT => true,
            Self(code) => (128..=255).contains(&code),
        }
    }

    /// Zone transfers: the rules refuse them; only the transfer gate (`--xfr-allow`) answers.
    pub fn is_transfer(self) -> bool {
        self == Self::AXFR || self == Self::IXFR
    }

    /// The mnemonic of the types named here, else RFC 3597's `TYPEn`.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::A => "A",
            Self::NS => "NS",
            Self::CNAME => "CNAME",
            Self::SOA => "SOA",
            Self::TXT => "TXT",
            Self::AAAA => "AAAA",
            Self::OPT => "OPT",
            Self::TKEY => "TKEY",
            Self::TSIG => "TSIG",
            Self::IXFR => "IXFR",
            Self::AXFR => "AXFR",
            Self::MAILB => "MAILB",
            Self::MAILA => "MAILA",
            Self::ANY => "ANY",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Rtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

/// A CLASS or QCLASS (RFC 1035 §3.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Class(pub u16);

impl Class {
    pub const IN: Self = Self(1);
    pub const CH: Self = Self(3);
}

/// A header OPCODE (RFC 1035 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    pub const QUERY: Self = Self(0);
    /// RFC 1996.
    pub const NOTIFY: Self = Self(4);
}

/// A response code, up to 12 bits: the low 4 bits live in the header, the high 8 in the OPT
/// record (RFC 6891 §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rcode(pub u16);

impl Rcode {
    pub const NOERROR: Self = Self(0);
    pub const FORMERR: Self = Self(1);
    pub const SERVFAIL: Self = Self(2);
    pub const NXDOMAIN: Self = Self(3);
    pub const NOTIMP: Self = Self(4);
    pub const REFUSED: Self = Self(5);
    /// RFC 2136 §2.2: a name that should not exist does.
    pub const YXDOMAIN: Self = Self(6);
    /// An RRset that should not exist does.
    pub const YXRRSET: Self = Self(7);
    /// An RRset that should exist does not.
    pub const NXRRSET: Self = Self(8);
    /// Not authorized: a TSIG error (RFC 8945 §5.2), or a zone not ours (RFC 2136 §3.1.2).
    pub const NOTAUTH: Self = Self(9);
    /// A name of the prerequisite or update section outside the zone (RFC 2136 §3.2.2).
    pub const NOTZONE: Self = Self(10);
    pub const BADVERS: Self = Self(16);

    /// The mnemonic of the RCODEs of RFC 1035, 2136 and 6891, else `RCODEn`.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        const NAMES: [&str; 11] = [
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
            "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
        ];
        match (self, NAMES.get(usize::from(self.0))) {
            (Self::BADVERS, _) => "BADVERS".into(),
            (_, Some(name)) => (*name).into(),
            (Self(code), None) => format!("RCODE{code}").into(),
        }
    }

    /// The 4 bits that go in the header.
    pub fn header_bits(self) -> u16 {
        self.0 & super::flags::RCODE_MASK
    }

    /// The 8 bits that go in the OPT record's extended RCODE field.
    pub fn extended_bits(self) -> u8 {
        (self.0 >> 4) as u8
    }
}

/// An EDNS option code (RFC 6891 §6.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptionCode(pub u16);

impl OptionCode {
    /// Name server identifier (RFC 5001).
    pub const NSID: Self = Self(3);
    /// DNS cookie (RFC 7873).
    pub const COOKIE: Self = Self(10);
}
