//! Writing a response: header, question, records, then the EDNS OPT (RFC 6891 §6.1.2), under
//! the transport's size limit, with the OPT's room kept free from the start so it always fits.

use super::Transport;
use crate::cookie::FULL_COOKIE;
use crate::snapshot::Snapshot;
use crate::wire::{
    field, flags, Opt, OptionCode, Question, Rcode, Rtype, Truncated, Writer, EDNS_DO, EDNS_UDP,
    HEADER_LEN, MAX_TCP, OPTION_HEADER, OPT_FIXED, PLAIN_UDP,
};

/// What a reply echoes of its query.
#[derive(Clone, Copy)]
pub(super) struct ReplyParts<'q, 'p> {
    pub(super) id: u16,
    pub(super) query_flags: u16,
    pub(super) question: Option<&'q Question<'p>>,
    pub(super) opt: Option<&'q Opt<'p>>,
    /// The COOKIE option data to answer with.
    pub(super) cookie: Option<[u8; FULL_COOKIE]>,
}

impl ReplyParts<'_, '_> {
    pub(super) fn bare(id: u16, query_flags: u16) -> Self {
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

/// A finished response, as [`Reply::finish`] leaves it in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Finished {
    pub(super) len: usize,
    pub(super) truncated: bool,
    /// The answer and authority records lie at `records.0..records.1`; the OPT follows.
    pub(super) records: (u16, u16),
}

/// A response being written.
pub(super) struct Reply<'b, 's> {
    writer: Writer<'b>,
    limit: usize,
    id: u16,
    query_flags: u16,
    /// AA, TC and opcode bits to set on top of QR and RD.
    pub(super) extra_flags: u16,
    question_end: usize,
    counts: [u16; 2],
    edns: Option<EdnsReply>,
    snapshot: &'s Snapshot,
}

impl<'b, 's> Reply<'b, 's> {
    #[inline(always)]
    pub(super) fn start(
        out: &'b mut [u8],
        parts: ReplyParts<'_, '_>,
        snapshot: &'s Snapshot,
        transport: Transport,
    ) -> Self {
        let limit = size_limit(transport, parts.opt);
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

    pub(super) fn answer(&mut self, parts: &[&[u8]], count: u16) -> Result<(), Truncated> {
        self.writer.push(parts)?;
        self.counts[0] += count;
        Ok(())
    }

    pub(super) fn authority(&mut self, parts: &[&[u8]]) -> Result<(), Truncated> {
        self.writer.push(parts)?;
        self.counts[1] += 1;
        Ok(())
    }

    /// Drops every record written so far and sets TC (RFC 2181 §9: the client retries over
    /// TCP rather than use a partial answer).
    pub(super) fn truncate(&mut self) {
        self.writer.rewind(self.question_end);
        self.counts = [0; 2];
        self.extra_flags |= flags::TC;
    }

    /// Writes the OPT and the header.
    #[inline(always)]
    pub(super) fn finish(mut self, rcode: Rcode) -> Finished {
        let has_question = self.question_end > HEADER_LEN;
        let records_end = self.writer.len();
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
        let mut header = [0; HEADER_LEN];
        let fields = [
            (field::ID, self.id),
            (field::FLAGS, response_flags),
            (field::QDCOUNT, u16::from(has_question)),
            (field::ANCOUNT, self.counts[0]),
            (field::NSCOUNT, self.counts[1]),
            (field::ARCOUNT, additional),
        ];
        for (range, value) in fields {
            header[range].copy_from_slice(&value.to_be_bytes());
        }
        self.writer.patch(0, &header);
        Finished {
            len: self.writer.len(),
            truncated: self.extra_flags & flags::TC != 0,
            records: (self.question_end as u16, records_end as u16),
        }
    }
}

/// Turns the finished response `out[..len]` into its truncated form, as [`Reply::truncate`]
/// before [`Reply::finish`] would have written it: the records at `records` go, the OPT moves
/// up, TC is set and ANCOUNT and NSCOUNT are zero. Returns the new length.
/// The most a response may take: 65,535 bytes over TCP; over UDP 512 without EDNS, else
/// the requestor's payload size, treated as 512 below it (RFC 6891 §6.2.5), and never more
/// than the 1232 we send.
#[inline(always)]
fn size_limit(transport: Transport, opt: Option<&Opt<'_>>) -> usize {
    match (transport, opt) {
        (Transport::Tcp, _) => MAX_TCP,
        (Transport::Udp, None) => PLAIN_UDP,
        (Transport::Udp, Some(opt)) => (opt.udp_payload as usize).clamp(PLAIN_UDP, EDNS_UDP),
    }
}

pub(super) fn truncate_finished(out: &mut [u8], len: usize, records: (u16, u16)) -> usize {
    set_flags(out, len, records, flags::TC, 0)
}

/// The finished response with its answer and authority records cut out, RCODE SERVFAIL and
/// AA cleared; the question and the additional records (OPT, cookie) stay.
pub(super) fn servfail_finished(out: &mut [u8], len: usize, records: (u16, u16)) -> usize {
    let clear = flags::AA | flags::RCODE_MASK;
    set_flags(out, len, records, Rcode::SERVFAIL.header_bits(), clear)
}

/// Cuts out the records between `records` (answer and authority), clears the `clear` flags
/// and sets `set`.
fn set_flags(out: &mut [u8], len: usize, records: (u16, u16), set: u16, clear: u16) -> usize {
    let (start, end) = (usize::from(records.0), usize::from(records.1));
    let Some(reply) = out
        .get_mut(..len)
        .filter(|_| HEADER_LEN <= start && start <= end && end <= len)
    else {
        return len;
    };
    reply.copy_within(end.., start);
    let flags_word = u16::from_be_bytes([reply[field::FLAGS.start], reply[field::FLAGS.start + 1]]);
    reply[field::FLAGS].copy_from_slice(&(flags_word & !clear | set).to_be_bytes());
    reply[field::ANCOUNT].fill(0);
    reply[field::NSCOUNT].fill(0);
    len - (end - start)
}
