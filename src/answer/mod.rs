//! (query bytes, snapshot) -> response bytes. Pure: no I/O, no allocation, no panics.
//!
//! A reader can follow one query top to bottom: [`respond`] parses it, [`decide`] picks the
//! outcome from the rules (RFC 1034 §4.3.2 for the zone, RFC 6891 for EDNS, RFC 2308 for
//! negative answers), and [`Reply`] writes it under the transport's size limit.

use std::net::IpAddr;

use crate::cookie::{self, Secrets, FULL_COOKIE};
use crate::snapshot::Snapshot;
use crate::wire::{
    flags, parse_query, Class, FormErrCause, Opt, OptionCode, Query, Question, Rcode, Reject,
    Rtype, Writer, EDNS_DO, EDNS_UDP, HEADER_LEN, MAX_TCP, OPTION_HEADER, OPT_FIXED, PLAIN_UDP,
    PTR_QNAME,
};

pub use crate::wire::DropReason;

/// How the query arrived, which sets the response size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the answer depends on besides the packet and the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub transport: Transport,
    /// The client's address, which server cookies are bound to.
    pub client: Option<IpAddr>,
    /// Unix time in seconds: the timestamp of the server cookies we make.
    pub now: u32,
    /// With secrets and a client address, COOKIE options are answered (RFC 7873); without,
    /// they are ignored like any unknown option.
    pub cookies: Option<&'a Secrets>,
    /// Answer with TC=1 and no records, whatever the answer would be (the RRL slip).
    pub truncate: bool,
}

impl Context<'_> {
    /// A context without cookies.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            client: None,
            now: 0,
            cookies: None,
            truncate: false,
        }
    }
}

/// What happened to one query, for the caller's counters and rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Length of the response written, or `None` when there is no reply.
    pub len: Option<usize>,
    pub dropped: Option<DropReason>,
    /// The question's QTYPE, when there was a readable question.
    pub qtype: Option<Rtype>,
    pub rcode: Rcode,
    pub truncated: bool,
    pub formerr: Option<FormErrCause>,
    /// The verdict on the query's COOKIE option, when cookies are answered and it had one.
    pub cookie: Option<cookie::Check>,
}

impl Summary {
    fn dropped(reason: DropReason) -> Self {
        Self {
            len: None,
            dropped: Some(reason),
            qtype: None,
            rcode: Rcode::NOERROR,
            truncated: false,
            formerr: None,
            cookie: None,
        }
    }
}

/// Answers one query without cookies. Writes the response into `out` and returns its
/// length, or `None` when the datagram gets no reply at all. `out` should hold `MAX_TCP`
/// bytes for TCP and `EDNS_UDP` for UDP; a shorter buffer only lowers the limit.
pub fn respond(
    packet: &[u8],
    snapshot: &Snapshot,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    respond_to(packet, snapshot, &Context::new(transport), out).len
}

/// Answers one query in `context`: the response goes into `out`, what happened is returned.
pub fn respond_to(
    packet: &[u8],
    snapshot: &Snapshot,
    context: &Context<'_>,
    out: &mut [u8],
) -> Summary {
    match parse_query(packet) {
        Ok(query) => answer(&query, snapshot, context, out),
        Err(Reject::Drop(reason)) => Summary::dropped(reason),
        Err(Reject::NotImp {
            id,
            flags: query_flags,
        }) => {
            // Keep the opcode: the client learns which one we do not implement.
            let opcode = query_flags & (flags::OPCODE_MASK << flags::OPCODE_SHIFT);
            let parts = ReplyParts::bare(id, query_flags);
            let mut reply = Reply::start(out, parts, snapshot, context.transport);
            reply.extra_flags = opcode;
            reply.summary(Rcode::NOTIMP)
        }
        Err(Reject::FormErr {
            id,
            flags: query_flags,
            question,
            opt,
            cause,
        }) => {
            let parts = ReplyParts {
                question: question.as_ref(),
                opt: opt.as_ref(),
                ..ReplyParts::bare(id, query_flags)
            };
            let reply = Reply::start(out, parts, snapshot, context.transport);
            Summary {
                formerr: Some(cause),
                ..reply.summary(Rcode::FORMERR)
            }
        }
    }
}

/// Where a name sits relative to the zone apex.
#[derive(Debug, PartialEq, Eq)]
enum Position<'n> {
    Outside,
    Apex,
    /// One label below the apex: an instance name `{service}-{app}`, if it exists.
    Child(&'n [u8]),
    /// Two or more labels below the apex: never exists here.
    Deeper,
}

/// Where the wire name `name`, in any case, sits relative to the lower-case apex. Length
/// bytes (at most 63) are never letters, so a case-insensitive compare of wire forms is
/// exact (RFC 4343).
fn locate<'n>(name: &'n [u8], apex: &[u8]) -> Position<'n> {
    let Some(suffix_at) = name.len().checked_sub(apex.len()) else {
        return Position::Outside;
    };
    if !name[suffix_at..].eq_ignore_ascii_case(apex) {
        return Position::Outside;
    }
    // The suffix must start on a label boundary: "xapps.example.com" is not in the zone.
    let mut at = 0;
    let mut labels_above = 0;
    while at < suffix_at {
        at += 1 + usize::from(name[at]);
        labels_above += 1;
    }
    match (at == suffix_at, labels_above) {
        (false, _) => Position::Outside,
        (true, 0) => Position::Apex,
        (true, 1) => Position::Child(&name[1..suffix_at]),
        (true, _) => Position::Deeper,
    }
}

/// What a well-formed query gets.
enum Outcome<'s> {
    /// An error or refusal: the question and OPT only.
    Bare(Rcode),
    /// Authoritative data: answer records (complete, owners included, pointing at the
    /// question) and an optional negative SOA owned by the apex at `apex_at` in the qname.
    Authoritative {
        rcode: Rcode,
        answer: Answer<'s>,
        negative_soa: Option<usize>,
    },
}

enum Answer<'s> {
    None,
    /// One record owned by the question name, given without its owner.
    OwnedByQname(&'s [u8]),
    /// Complete records with their owners, and how many.
    Records(&'s [u8], u16),
}

/// Names are matched in whatever case they came (RFC 4343): nothing is copied or folded
/// except a named app's label, on the stack.
fn decide<'s>(question: &Question<'_>, snapshot: &'s Snapshot) -> Outcome<'s> {
    if question.qtype.is_unsupported_meta() {
        return Outcome::Bare(Rcode::NOTIMP);
    }
    let name = question.name;
    match question.qclass {
        Class::IN => decide_in(question.qtype, name, snapshot),
        Class::CH => decide_chaos(question.qtype, name, snapshot),
        _ => Outcome::Bare(Rcode::REFUSED),
    }
}

fn decide_in<'s>(qtype: Rtype, name: &[u8], snapshot: &'s Snapshot) -> Outcome<'s> {
    let zone = &snapshot.zone;
    let position = locate(name, &zone.apex);
    if position == Position::Outside || qtype.is_transfer() {
        return Outcome::Bare(Rcode::REFUSED);
    }
    let apex_at = name.len() - zone.apex.len();
    let nxdomain = Outcome::Authoritative {
        rcode: Rcode::NXDOMAIN,
        answer: Answer::None,
        negative_soa: Some(apex_at),
    };
    match position {
        Position::Apex => {
            let answer = match qtype {
                // RFC 8482 §4.2: answer ANY with one RRset of our choosing.
                Rtype::SOA | Rtype::ANY => Answer::OwnedByQname(snapshot.soa_answer()),
                Rtype::NS => Answer::Records(&zone.ns_records, zone.ns_count),
                _ => Answer::None,
            };
            let negative_soa = matches!(answer, Answer::None).then_some(apex_at);
            Outcome::Authoritative {
                rcode: Rcode::NOERROR,
                answer,
                negative_soa,
            }
        }
        Position::Child(label) => match snapshot.cname(label) {
            Some(cname) => Outcome::Authoritative {
                rcode: Rcode::NOERROR,
                answer: Answer::OwnedByQname(cname),
                negative_soa: None,
            },
            None => nxdomain,
        },
        Position::Deeper | Position::Outside => nxdomain,
    }
}

/// CHAOS names that identify the server (RFC 4892), in lower-case wire form.
const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";

fn decide_chaos<'s>(qtype: Rtype, name: &[u8], snapshot: &'s Snapshot) -> Outcome<'s> {
    let zone = &snapshot.zone;
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    let record = if is(ID_SERVER) || is(HOSTNAME_BIND) {
        &zone.identity_txt
    } else if is(VERSION_SERVER) || is(VERSION_BIND) {
        // A hidden version is refused, as for any name we do not serve.
        match &zone.version_txt {
            Some(record) => record,
            None => return Outcome::Bare(Rcode::REFUSED),
        }
    } else {
        return Outcome::Bare(Rcode::REFUSED);
    };
    let answer = match qtype {
        Rtype::TXT | Rtype::ANY => Answer::Records(record, 1),
        _ if qtype.is_transfer() => return Outcome::Bare(Rcode::REFUSED),
        _ => Answer::None,
    };
    Outcome::Authoritative {
        rcode: Rcode::NOERROR,
        answer,
        negative_soa: None,
    }
}

fn answer(
    query: &Query<'_>,
    snapshot: &Snapshot,
    context: &Context<'_>,
    out: &mut [u8],
) -> Summary {
    let mut parts = ReplyParts {
        question: Some(&query.question),
        opt: query.opt.as_ref(),
        ..ReplyParts::bare(query.id, query.flags)
    };
    let cookie_option = match (context.cookies, context.client, &query.opt) {
        (Some(secrets), Some(client), Some(opt)) => opt
            .option(OptionCode::COOKIE)
            .map(|option| (secrets, client, option)),
        _ => None,
    };
    let cookie =
        cookie_option.map(|(secrets, client, option)| secrets.check(option, client, context.now));
    if cookie == Some(cookie::Check::Malformed) {
        // RFC 7873 §5.2.2: FORMERR, without a cookie.
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary {
            formerr: Some(FormErrCause::Cookie),
            qtype: Some(query.question.qtype),
            cookie,
            ..reply.summary(Rcode::FORMERR)
        };
    }
    if let Some((secrets, client, option)) = cookie_option {
        parts.cookie = Some(secrets.answer(option, client, context.now));
    }
    let mut reply = Reply::start(out, parts, snapshot, context.transport);
    let rcode = if query.opt.is_some_and(|opt| opt.version > 0) {
        // RFC 6891 §6.1.3: BADVERS, answered with the version we do speak (0).
        Rcode::BADVERS
    } else {
        write_outcome(&mut reply, &query.question, snapshot)
    };
    if context.truncate {
        reply.truncate();
    }
    Summary {
        qtype: Some(query.question.qtype),
        cookie,
        ..reply.summary(rcode)
    }
}

/// Writes the records of the outcome; returns the RCODE to finish with.
fn write_outcome(reply: &mut Reply<'_, '_>, question: &Question<'_>, snapshot: &Snapshot) -> Rcode {
    match decide(question, snapshot) {
        Outcome::Bare(rcode) => rcode,
        Outcome::Authoritative {
            rcode,
            answer,
            negative_soa,
        } => {
            reply.extra_flags |= flags::AA;
            let written = match answer {
                Answer::None => Ok(()),
                Answer::OwnedByQname(record) => {
                    reply.answer(&[&PTR_QNAME.to_be_bytes(), record], 1)
                }
                Answer::Records(records, count) => reply.answer(&[records], count),
            };
            let written = written.and_then(|()| match negative_soa {
                Some(apex_at) => {
                    let owner = PTR_QNAME + apex_at as u16;
                    reply.authority(&[&owner.to_be_bytes(), snapshot.soa_negative()])
                }
                None => Ok(()),
            });
            if written.is_err() {
                reply.truncate();
            }
            rcode
        }
    }
}

/// What a reply echoes of its query.
#[derive(Clone, Copy)]
struct ReplyParts<'q, 'p> {
    id: u16,
    query_flags: u16,
    question: Option<&'q Question<'p>>,
    opt: Option<&'q Opt<'p>>,
    /// The COOKIE option data to answer with.
    cookie: Option<[u8; FULL_COOKIE]>,
}

impl ReplyParts<'_, '_> {
    fn bare(id: u16, query_flags: u16) -> Self {
        Self {
            id,
            query_flags,
            question: None,
            opt: None,
            cookie: None,
        }
    }
}

/// What the response's OPT carries.
struct EdnsReply {
    dnssec_ok: bool,
    /// Whether the NSID option is included (asked for, and it fits).
    nsid: bool,
    cookie: Option<[u8; FULL_COOKIE]>,
}

impl EdnsReply {
    /// Bytes of the whole OPT record.
    fn len(&self, identity_len: usize) -> usize {
        let nsid = if self.nsid {
            OPTION_HEADER + identity_len
        } else {
            0
        };
        let cookie = self.cookie.map_or(0, |_| OPTION_HEADER + FULL_COOKIE);
        OPT_FIXED + nsid + cookie
    }
}

/// A response being written: header, question, records, then the OPT, whose room is kept
/// free from the start so that it always fits.
struct Reply<'b, 's> {
    writer: Writer<'b>,
    limit: usize,
    id: u16,
    query_flags: u16,
    /// AA, TC and opcode bits to set on top of QR and RD.
    extra_flags: u16,
    question_end: usize,
    counts: [u16; 2],
    edns: Option<EdnsReply>,
    snapshot: &'s Snapshot,
}

impl<'b, 's> Reply<'b, 's> {
    #[inline(always)]
    fn start(
        out: &'b mut [u8],
        parts: ReplyParts<'_, '_>,
        snapshot: &'s Snapshot,
        transport: Transport,
    ) -> Self {
        let limit = match (transport, parts.opt) {
            (Transport::Tcp, _) => MAX_TCP,
            (Transport::Udp, None) => PLAIN_UDP,
            // RFC 6891 §6.2.5: below 512 is treated as 512; we never send more than 1232.
            (Transport::Udp, Some(opt)) => (opt.udp_payload as usize).clamp(PLAIN_UDP, EDNS_UDP),
        };
        let question_len = parts.question.map_or(0, |q| q.raw.len());
        let identity_len = snapshot.zone.identity.len();
        let mut edns = parts.opt.map(|opt| EdnsReply {
            dnssec_ok: opt.dnssec_ok(),
            nsid: opt.has_option(OptionCode::NSID),
            cookie: parts.cookie,
        });
        if let Some(edns) = &mut edns {
            // RFC 5001 §2.3: NSID may be left out; it is when it would crowd out the question.
            edns.nsid &= HEADER_LEN + question_len + edns.len(identity_len) <= limit;
        }
        let opt_len = edns.as_ref().map_or(0, |edns| edns.len(identity_len));
        let mut writer = Writer::new(out, limit.saturating_sub(opt_len));
        // Header and question always fit: 12 + 259 + 50 < 512 bytes.
        let _ = writer.push(&[&[0; HEADER_LEN]]);
        if let Some(question) = parts.question {
            let _ = writer.push(&[question.raw]);
        }
        Self {
            question_end: writer.len(),
            writer,
            limit,
            id: parts.id,
            query_flags: parts.query_flags,
            extra_flags: 0,
            counts: [0; 2],
            edns,
            snapshot,
        }
    }

    fn answer(&mut self, parts: &[&[u8]], count: u16) -> Result<(), crate::wire::Truncated> {
        self.writer.push(parts)?;
        self.counts[0] += count;
        Ok(())
    }

    fn authority(&mut self, parts: &[&[u8]]) -> Result<(), crate::wire::Truncated> {
        self.writer.push(parts)?;
        self.counts[1] += 1;
        Ok(())
    }

    /// Drops every record written so far and sets TC (RFC 2181 §9: the client retries over
    /// TCP rather than use a partial answer).
    fn truncate(&mut self) {
        self.writer.rewind(self.question_end);
        self.counts = [0; 2];
        self.extra_flags |= flags::TC;
    }

    /// Writes the OPT and the header, and says what was sent.
    #[inline(always)]
    fn summary(mut self, rcode: Rcode) -> Summary {
        let has_question = self.question_end > HEADER_LEN;
        let mut additional = 0;
        if let Some(edns) = &self.edns {
            self.writer.set_limit(self.limit);
            let identity = &self.snapshot.zone.identity[..];
            let ttl_high = [rcode.extended_bits(), 0];
            let opt_flags = if edns.dnssec_ok { EDNS_DO } else { 0 };
            let rdata_len = edns.len(identity.len()) - OPT_FIXED;
            let fixed = [
                &[0u8][..],
                &Rtype::OPT.0.to_be_bytes(),
                &(EDNS_UDP as u16).to_be_bytes(),
                &ttl_high,
                &opt_flags.to_be_bytes(),
                &(rdata_len as u16).to_be_bytes(),
            ];
            // Room for the OPT was kept aside in `start`.
            let _ = self.writer.push(&fixed);
            if edns.nsid {
                let _ = self.writer.push(&[
                    &OptionCode::NSID.0.to_be_bytes(),
                    &(identity.len() as u16).to_be_bytes(),
                    identity,
                ]);
            }
            if let Some(cookie) = &edns.cookie {
                let _ = self.writer.push(&[
                    &OptionCode::COOKIE.0.to_be_bytes(),
                    &(FULL_COOKIE as u16).to_be_bytes(),
                    cookie,
                ]);
            }
            additional = 1;
        }
        let response_flags =
            flags::QR | (self.query_flags & flags::RD) | self.extra_flags | rcode.header_bits();
        let header = [
            self.id,
            response_flags,
            u16::from(has_question),
            self.counts[0],
            self.counts[1],
            additional,
        ];
        for (i, value) in header.into_iter().enumerate() {
            self.writer.patch_u16(2 * i, value);
        }
        Summary {
            len: Some(self.writer.len()),
            dropped: None,
            qtype: None,
            rcode,
            truncated: self.extra_flags & flags::TC != 0,
            formerr: None,
            cookie: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APEX: &[u8] = b"\x04apps\x07example\x03com\x00";

    #[test]
    fn positions() {
        let cases: &[(&[u8], Position<'_>)] = &[
            (APEX, Position::Apex),
            (
                b"\x09ws-123456\x04apps\x07example\x03com\x00",
                Position::Child(b"ws-123456"),
            ),
            (
                b"\x01x\x02ws\x04apps\x07example\x03com\x00",
                Position::Deeper,
            ),
            (b"\x05xapps\x07example\x03com\x00", Position::Outside),
            (b"\x07example\x03com\x00", Position::Outside),
            (b"\x00", Position::Outside),
            // The apex bytes appear, but not on a label boundary.
            (b"\x06a\x04apps\x07example\x03com\x00", Position::Outside),
        ];
        for (name, expected) in cases {
            assert_eq!(locate(name, APEX), *expected, "{name:?}");
        }
    }
}
