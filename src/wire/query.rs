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
fn skip_name(packet: &[u8], start: usize) -> Option<usize> {
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
mod tests {
    use super::*;
    use crate::testing::raw_message;

    const QNAME: &[u8] = b"\x09ws-123456\x04apps\x07example\x03com\x00";

    fn query(qdcount: u16, arcount: u16, body: &[&[u8]]) -> Vec<u8> {
        raw_message(0xABCD, flags::RD, [qdcount, 0, 0, arcount], &body.concat())
    }

    const QTAIL_A_IN: &[u8] = &[0, 1, 0, 1];
    const OPT_1232_DO: &[u8] = &[0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn plain_query() {
        let packet = query(1, 0, &[QNAME, QTAIL_A_IN]);
        let q = parse_query(&packet).unwrap();
        assert_eq!(q.id, 0xABCD);
        assert_eq!(q.flags, flags::RD);
        assert_eq!(q.question.name, QNAME);
        assert_eq!(q.question.raw.len(), QNAME.len() + 4);
        assert_eq!(q.question.qtype, Rtype::A);
        assert_eq!(q.question.qclass, Class::IN);
        assert_eq!(q.opt, None);
    }

    #[test]
    fn edns_query() {
        let nsid = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0];
        for (opt, payload, dnssec_ok, has_nsid) in [
            (OPT_1232_DO, 1232, true, false),
            (&nsid[..], 4096, false, true),
        ] {
            let packet = query(1, 1, &[QNAME, QTAIL_A_IN, opt]);
            let got = parse_query(&packet).unwrap().opt.unwrap();
            assert_eq!(got.udp_payload, payload);
            assert_eq!(got.version, 0);
            assert_eq!(got.dnssec_ok(), dnssec_ok);
            assert_eq!(got.has_option(super::super::OptionCode::NSID), has_nsid);
        }
    }

    fn formerr_cause(packet: &[u8]) -> Option<FormErrCause> {
        match parse_query(packet) {
            Err(Reject::FormErr { cause, .. }) => Some(cause),
            _ => None,
        }
    }

    #[test]
    fn drops_and_notimp() {
        assert_eq!(parse_query(&[0; 11]), Err(Reject::Drop(DropReason::Short)));
        let mut response = query(1, 0, &[QNAME, QTAIL_A_IN]);
        response[2] |= 0x80;
        assert_eq!(
            parse_query(&response),
            Err(Reject::Drop(DropReason::Response))
        );
        // Opcode 15, no question at all: NOTIMP wins over FORMERR.
        let notify = [0, 7, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_query(&notify),
            Err(Reject::NotImp {
                id: 7,
                flags: 0x7800
            })
        );
    }

    #[test]
    fn malformed_questions() {
        let long_label = [&[64u8][..], &[b'a'; 64], &[0]].concat();
        let mut long_name = Vec::new();
        for _ in 0..4 {
            long_name.push(63);
            long_name.extend_from_slice(&[b'a'; 63]);
        }
        long_name.push(0);
        let cases: &[&[&[u8]]] = &[
            &[QNAME],                         // no QTYPE/QCLASS
            &[QNAME, &[0, 1, 0]],             // QCLASS cut short
            &[b"\x09ws-12"],                  // label runs past the end
            &[b"\xC0\x0C", QTAIL_A_IN],       // pointer to itself
            &[b"\x02ws\xC0\x0C", QTAIL_A_IN], // pointer after a label
            &[&long_label, QTAIL_A_IN],       // label of 64
            &[&long_name, QTAIL_A_IN],        // name of 257
            &[b"\x80abc\x00", QTAIL_A_IN],    // reserved label type
        ];
        for body in cases {
            assert_eq!(
                formerr_cause(&query(1, 0, body)),
                Some(FormErrCause::Question),
                "{body:?}"
            );
        }
    }

    #[test]
    fn question_counts() {
        assert_eq!(
            parse_query(&query(0, 0, &[])),
            Err(Reject::NoQuestion {
                id: 0xABCD,
                flags: flags::RD,
                opt: None,
            })
        );
        let two = query(2, 1, &[QNAME, QTAIL_A_IN, QNAME, QTAIL_A_IN, OPT_1232_DO]);
        match parse_query(&two) {
            Err(Reject::FormErr { question, opt, .. }) => {
                assert_eq!(question, None);
                assert_eq!(opt.unwrap().udp_payload, 1232, "OPT is still echoed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            formerr_cause(&query(65535, 0, &[QNAME, QTAIL_A_IN])),
            Some(FormErrCause::QuestionCount)
        );
    }

    #[test]
    fn malformed_opt() {
        let mut not_root = vec![1, b'x', 0];
        not_root.extend_from_slice(&OPT_1232_DO[1..]);
        let bad_option = [0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 9];
        use FormErrCause::{Opt, Records};
        let cases: &[(u16, &[&[u8]], FormErrCause)] = &[
            (2, &[OPT_1232_DO, OPT_1232_DO], Opt),
            (1, &[&not_root], Opt),
            (1, &[&bad_option], Opt),
            (1, &[&OPT_1232_DO[..8]], Records),
            (2, &[OPT_1232_DO], Records),
        ];
        for (arcount, extra, expected) in cases {
            let mut body = vec![QNAME, QTAIL_A_IN];
            body.extend_from_slice(extra);
            match parse_query(&query(1, *arcount, &body)) {
                Err(Reject::FormErr {
                    question,
                    opt,
                    cause,
                    ..
                }) => {
                    assert!(question.is_some(), "question still echoed");
                    assert_eq!(opt, None);
                    assert_eq!(cause, *expected, "{extra:?}");
                }
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        // An OPT in the answer section.
        let mut packet = query(1, 0, &[QNAME, QTAIL_A_IN, OPT_1232_DO]);
        packet[7] = 1;
        assert_eq!(formerr_cause(&packet), Some(Opt));
    }

    #[test]
    fn other_additional_records_are_skipped() {
        // A compressed owner name and some RDATA before the OPT.
        let record = [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1];
        let packet = query(1, 2, &[QNAME, QTAIL_A_IN, &record, OPT_1232_DO]);
        assert!(parse_query(&packet).unwrap().opt.is_some());
    }
}
