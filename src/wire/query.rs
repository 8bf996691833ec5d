//! Parsing a query datagram into borrowed views.
//!
//! The checks run in the order the answer depends on them: too short or a response (dropped),
//! then the opcode (NOTIMP, before anything else is read, as ISC's EDNS compliance test
//! expects), then the question and the records after it (FORMERR).

use super::name::{LabelKind, MAX_NAME};
use super::record::{field as rr, fixed_at, read_be16, OPTION_HEADER, QUESTION_FIXED, RR_FIXED};
use super::{field, flags, read_u16, Class, Opcode, Rtype, HEADER_LEN};

/// The one question of a query, borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question<'a> {
    /// QNAME, QTYPE and QCLASS exactly as received: echoed byte for byte, since resolvers
    /// randomise the case of names (draft-vixie-dnsext-dns0x20) and compare it.
    pub raw: &'a [u8],
    /// The QNAME alone, uncompressed; at most `MAX_NAME` bytes, labels at most `MAX_LABEL`.
    pub name: &'a [u8],
    pub qtype: Rtype,
    pub qclass: Class,
}

/// The EDNS(0) OPT record of a query (RFC 6891 §6.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// Requestor's UDP payload size, as sent (values under 512 are treated as 512).
    pub udp_payload: u16,
    pub extended_rcode: u8,
    pub version: u8,
    /// The 16 flag bits: DO and the reserved Z bits.
    pub flags: u16,
    /// The option TLVs; every option's length has been checked to fit.
    pub options: &'a [u8],
}

impl<'a> Opt<'a> {
    /// Iterates over (code, data) of each option.
    pub fn options(&self) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        let mut rest = self.options;
        core::iter::from_fn(move || {
            let code = read_u16(rest, 0)?;
            let len = read_u16(rest, 2)? as usize;
            let data = rest.get(OPTION_HEADER..OPTION_HEADER + len)?;
            rest = &rest[OPTION_HEADER + len..];
            Some((code, data))
        })
    }

    /// Whether the query carries an option with this code.
    pub fn has_option(&self, code: super::OptionCode) -> bool {
        self.option(code).is_some()
    }

    /// The data of the first option with this code.
    pub fn option(&self, code: super::OptionCode) -> Option<&'a [u8]> {
        self.options()
            .find(|&(c, _)| c == code.0)
            .map(|(_, data)| data)
    }

    /// DNSSEC OK (RFC 3225).
    pub fn dnssec_ok(&self) -> bool {
        self.flags & super::EDNS_DO != 0
    }
}

/// A well-formed standard query with exactly one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    /// The header flags word as received.
    pub flags: u16,
    pub question: Question<'a>,
    pub opt: Option<Opt<'a>>,
    /// Whether a TSIG record follows (RFC 8945): the answer must then be signed or refused
    /// by whoever holds the keys; the parser reads no further into it.
    pub signed: bool,
}

/// Why a datagram is not a query we answer normally; each maps to exactly one outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject<'a> {
    /// No reply at all.
    Drop(DropReason),
    /// An opcode other than QUERY: NOTIMP, header only, since the rest of such a message has
    /// a format we cannot know.
    NotImp { id: u16, flags: u16 },
    /// QDCOUNT=0, the rest well formed: FORMERR, unless the OPT carries a COOKIE option and
    /// cookies are answered, which makes it the query for a server cookie (RFC 7873 §5.4).
    NoQuestion {
        id: u16,
        flags: u16,
        opt: Option<Opt<'a>>,
    },
    /// FORMERR, echoing whatever could be read cleanly.
    FormErr {
        id: u16,
        flags: u16,
        question: Option<Question<'a>>,
        opt: Option<Opt<'a>>,
        cause: FormErrCause,
    },
}

/// Why a datagram gets no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a header.
    Short,
    /// QR=1: a response, which answering would turn into a reflection loop.
    Response,
}

impl DropReason {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 2] = ["short", "response"];
}

/// What made a query malformed; operators see these counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormErrCause {
    /// QDCOUNT other than 1.
    QuestionCount,
    /// The question's name, QTYPE or QCLASS is cut short or badly formed.
    Question,
    /// A record after the question runs past the end or has a bad owner name.
    Records,
    /// An OPT record out of place, repeated, not owned by the root or with bad options.
    Opt,
    /// A COOKIE option of a length RFC 7873 §5.2.2 does not allow.
    Cookie,
}

impl FormErrCause {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 5] = ["qdcount", "question", "records", "opt", "cookie"];
}

/// Parses a query datagram. Never panics, never allocates.
#[inline]
pub fn parse_query(packet: &[u8]) -> Result<Query<'_>, Reject<'_>> {
    let header = packet
        .get(..HEADER_LEN)
        .ok_or(Reject::Drop(DropReason::Short))?;
    let word = |range: core::ops::Range<usize>| read_u16(header, range.start).unwrap_or(0);
    let id = word(field::ID);
    let header_flags = word(field::FLAGS);
    if header_flags & flags::QR != 0 {
        return Err(Reject::Drop(DropReason::Response));
    }
    let opcode = Opcode(((header_flags >> flags::OPCODE_SHIFT) & flags::OPCODE_MASK) as u8);
    if opcode != Opcode::QUERY {
        return Err(Reject::NotImp {
            id,
            flags: header_flags,
        });
    }
    let form_err = |question, opt, cause| Reject::FormErr {
        id,
        flags: header_flags,
        question,
        opt,
        cause,
    };

    let qdcount = word(field::QDCOUNT);
    let mut at = HEADER_LEN;
    let mut question = None;
    if qdcount == 1 {
        let q = parse_question(packet, at).ok_or(form_err(None, None, FormErrCause::Question))?;
        at += q.raw.len();
        question = Some(q);
    } else {
        // NOTE: QDCOUNT 0 or up to 65535; skipping stops at the first question that does not
        // fit, so the loop is bounded by the datagram's length.
        for _ in 0..qdcount {
            let malformed = form_err(None, None, FormErrCause::QuestionCount);
            at = skip_name(packet, at).ok_or(malformed)?;
            at = at
                .checked_add(QUESTION_FIXED)
                .filter(|&end| end <= packet.len())
                .ok_or(malformed)?;
        }
    }

    let sections = [
        (word(field::ANCOUNT), false),
        (word(field::NSCOUNT), false),
        (word(field::ARCOUNT), true),
    ];
    let mut opt = None;
    let mut signed = false;
    for (count, is_additional) in sections {
        for _ in 0..count {
            let malformed = form_err(question, None, FormErrCause::Records);
            let owner_start = at;
            at = skip_name(packet, at).ok_or(malformed)?;
            let owner = &packet[owner_start..at];
            let fixed: &[u8; RR_FIXED] = fixed_at(packet, at).ok_or(malformed)?;
            let rtype = Rtype(read_be16(fixed, rr::TYPE));
            let rdlen = read_be16(fixed, rr::RDLENGTH) as usize;
            let rdata = packet
                .get(at + RR_FIXED..at + RR_FIXED + rdlen)
                .ok_or(malformed)?;
            at += RR_FIXED + rdlen;
            signed |= rtype == Rtype::TSIG;
            if rtype == Rtype::OPT {
                // RFC 6891 §6.1.1: one OPT at most, only in the additional section, owned by
                // the root. NOTE: an attacker may send two, or hide one in the answer section.
                if !is_additional || opt.is_some() || owner != [0] {
                    return Err(form_err(question, None, FormErrCause::Opt));
                }
                let version = fixed[rr::OPT_VERSION];
                // RFC 6891 §6.1.3: a version we do not speak gets BADVERS, whatever its
                // options say: they are read only when they fit, and otherwise left out.
                let options = match (options_fit(rdata), version) {
                    (true, _) => rdata,
                    (false, 0) => return Err(form_err(question, None, FormErrCause::Opt)),
                    (false, _) => &[],
                };
                opt = Some(Opt {
                    udp_payload: read_be16(fixed, rr::OPT_UDP_PAYLOAD),
                    extended_rcode: fixed[rr::OPT_EXTENDED_RCODE],
                    version,
                    flags: read_be16(fixed, rr::OPT_FLAGS),
                    options,
                });
            }
        }
    }

    match question {
        Some(question) => Ok(Query {
            id,
            flags: header_flags,
            question,
            opt,
            signed,
        }),
        None if qdcount == 0 => Err(Reject::NoQuestion {
            id,
            flags: header_flags,
            opt,
        }),
        None => Err(form_err(None, opt, FormErrCause::QuestionCount)),
    }
}

/// Parses the question at `at`: an uncompressed name, then QTYPE and QCLASS.
fn parse_question(packet: &[u8], start: usize) -> Option<Question<'_>> {
    let mut at = start;
    loop {
        let len = match LabelKind::classify(*packet.get(at)?) {
            LabelKind::Normal(len) => len as usize,
            // NOTE: a pointer in the question could point anywhere, itself included; no
            // client needs one, since nothing precedes the question to point at.
            LabelKind::Pointer | LabelKind::Reserved => return None,
        };
        at += 1 + len;
        if at - start > MAX_NAME {
            return None;
        }
        if len == 0 {
            break;
        }
    }
    let name_end = at;
    let fixed: &[u8; QUESTION_FIXED] = fixed_at(packet, name_end)?;
    Some(Question {
        raw: &packet[start..name_end + QUESTION_FIXED],
        name: &packet[start..name_end],
        qtype: Rtype(read_be16(fixed, rr::QTYPE)),
        qclass: Class(read_be16(fixed, rr::QCLASS)),
    })
}

/// Steps over a possibly compressed name without following pointers; returns the offset after
/// it. Used for records we only need to skip.
pub(crate) fn skip_name(packet: &[u8], start: usize) -> Option<usize> {
    let mut at = start;
    loop {
        match LabelKind::classify(*packet.get(at)?) {
            LabelKind::Normal(0) => return Some(at + 1),
            LabelKind::Normal(len) => at += 1 + len as usize,
            // A pointer ends the name; its target does not matter for skipping.
            LabelKind::Pointer => return packet.get(at + 1).map(|_| at + 2),
            LabelKind::Reserved => return None,
        }
        if at - start > MAX_NAME {
            return None;
        }
    }
}

/// Whether the OPT RDATA is a whole sequence of options, each length within the RDATA.
fn options_fit(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(len) = read_u16(rdata, 2) else {
            return false;
        };
        let Some(rest) = rdata.get(OPTION_HEADER + len as usize..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

#[cfg(test)]
mod tests;
