//! (query bytes, snapshot) -> response bytes. Pure: no I/O, no allocation, no panics.
//!
//! A reader can follow one query top to bottom: [`respond_to`] parses it, answers cookies
//! (RFC 7873) and EDNS versions (RFC 6891), asks `decide` (decide.rs, the rules) for the
//! outcome of the question, and has `Reply` (reply.rs) write it under the transport's size
//! limit.

mod decide;
mod reply;
pub mod signed;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use self::decide::{decide, Answer, Outcome};
use self::reply::{servfail_finished, truncate_finished, Finished, Reply, ReplyParts};
use crate::cookie::{self, Secrets};
use crate::snapshot::Snapshot;
use crate::wire::{
    flags, parse_query, FormErrCause, Opt, OptionCode, Query, Question, Rcode, Reject,
};
use crate::wire::{Rtype, PTR_QNAME};

pub use crate::wire::DropReason;

/// How the query arrived, which sets the response size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 2] = ["udp", "tcp"];
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
}

impl Context<'_> {
    /// A context without cookies.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            client: None,
            now: 0,
            cookies: None,
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
    /// The query carried a TSIG record: the response written is unsigned, and the caller
    /// holding the keys signs it or answers the TSIG error instead (RFC 8945 §5.3).
    pub signed: bool,
    /// Where the answer and authority records lie in the response; `None` for responses
    /// that [`Summary::truncate`] leaves as they are.
    records: Option<(u16, u16)>,
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
            signed: false,
            records: None,
        }
    }

    /// A response written, with `rcode`.
    #[inline(always)]
    fn sent(finished: Finished, rcode: Rcode) -> Self {
        Self {
            len: Some(finished.len),
            dropped: None,
            qtype: None,
            rcode,
            truncated: finished.truncated,
            formerr: None,
            cookie: None,
            signed: false,
            records: Some(finished.records),
        }
    }

    /// A response of `len` bytes written by a handler outside this module (a NOTIFY's
    /// acknowledgement, an IXFR over UDP), signed by it if need be: counted with `rcode` and
    /// `qtype`, and left as it is by [`Summary::truncate`] and [`Summary::servfail`].
    pub fn written(len: usize, rcode: Rcode, qtype: Option<Rtype>) -> Self {
        Self {
            len: Some(len),
            dropped: None,
            qtype,
            rcode,
            truncated: false,
            formerr: None,
            cookie: None,
            signed: false,
            records: None,
        }
    }

    /// The RRL slip: turns the response in `out` into TC=1 with the question and OPT (and
    /// its cookie) only, as an answer too large for UDP is sent, so a real client retries
    /// over TCP. Responses to queries that never reached the rules (FORMERR, NOTIMP) are
    /// left as they are.
    pub fn truncate(&mut self, out: &mut [u8]) {
        let (Some(len), Some(records)) = (self.len, self.records) else {
            return;
        };
        self.len = Some(truncate_finished(out, len, records));
        self.records = Some((records.0, records.0));
        self.truncated = true;
    }

    /// Turns the response into SERVFAIL, question and OPT kept: what an expired secondary
    /// answers under `--on-expire servfail`. Responses that never reached the rules stay.
    pub fn servfail(&mut self, out: &mut [u8]) {
        let (Some(len), Some(records)) = (self.len, self.records) else {
            return;
        };
        self.len = Some(servfail_finished(out, len, records));
        self.records = Some((records.0, records.0));
        self.rcode = Rcode::SERVFAIL;
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
            // Keep the opcode: the client learns which one we do not implement. An UPDATE
            // that reaches the rules finds no `--update-key`: REFUSED, before any TSIG is read.
            let opcode = query_flags & (flags::OPCODE_MASK << flags::OPCODE_SHIFT);
            let rcode = match opcode >> flags::OPCODE_SHIFT {
                5 => Rcode::REFUSED,
                _ => Rcode::NOTIMP,
            };
            let parts = ReplyParts::bare(id, query_flags);
            let mut reply = Reply::start(out, parts, snapshot, context.transport);
            reply.extra_flags = opcode;
            Summary {
                records: None,
                ..Summary::sent(reply.finish(rcode), rcode)
            }
        }
        Err(Reject::NoQuestion {
            id,
            flags: query_flags,
            opt,
        }) => answer_no_question((id, query_flags), opt, snapshot, context, out),
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
                records: None,
                ..Summary::sent(reply.finish(Rcode::FORMERR), Rcode::FORMERR)
            }
        }
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
    if query.opt.is_some_and(|opt| opt.version > 0) {
        // RFC 6891 §6.1.3: BADVERS before anything else in the OPT is read, answered with the
        // version we do speak (0).
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary {
            qtype: Some(query.question.qtype),
            ..Summary::sent(reply.finish(Rcode::BADVERS), Rcode::BADVERS)
        };
    }
    let cookie_option = cookie_option(context, query.opt.as_ref());
    let cookie =
        cookie_option.map(|(secrets, client, option)| secrets.check(option, client, context.now));
    if cookie == Some(cookie::Check::Malformed) {
        // RFC 7873 §5.2.2: FORMERR, without a cookie.
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary {
            formerr: Some(FormErrCause::Cookie),
            qtype: Some(query.question.qtype),
            cookie,
            records: None,
            ..Summary::sent(reply.finish(Rcode::FORMERR), Rcode::FORMERR)
        };
    }
    if let Some((secrets, client, option)) = cookie_option {
        parts.cookie = Some(secrets.answer(option, client, context.now));
    }
    let mut reply = Reply::start(out, parts, snapshot, context.transport);
    let rcode = write_outcome(&mut reply, &query.question, snapshot);
    Summary {
        qtype: Some(query.question.qtype),
        cookie,
        signed: query.signed,
        ..Summary::sent(reply.finish(rcode), rcode)
    }
}

/// The COOKIE option to answer, with what answering it takes: only when cookies are on, the
/// client's address is known and the query carries one.
#[inline(always)]
fn cookie_option<'c, 'q>(
    context: &Context<'c>,
    opt: Option<&Opt<'q>>,
) -> Option<(&'c Secrets, IpAddr, &'q [u8])> {
    match (context.cookies, context.client, opt) {
        (Some(secrets), Some(client), Some(opt)) => opt
            .option(OptionCode::COOKIE)
            .map(|option| (secrets, client, option)),
        _ => None,
    }
}

/// A query with no question: BADVERS for an EDNS version we do not speak; with cookies
/// answered and a COOKIE option, the query for a server cookie (RFC 7873 §5.4): NOERROR, no
/// question, a fresh server cookie; otherwise FORMERR, as for any question count but one.
fn answer_no_question(
    (id, query_flags): (u16, u16),
    opt: Option<Opt<'_>>,
    snapshot: &Snapshot,
    context: &Context<'_>,
    out: &mut [u8],
) -> Summary {
    let mut parts = ReplyParts {
        opt: opt.as_ref(),
        ..ReplyParts::bare(id, query_flags)
    };
    if opt.is_some_and(|opt| opt.version > 0) {
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary::sent(reply.finish(Rcode::BADVERS), Rcode::BADVERS);
    }
    let Some((secrets, client, option)) = cookie_option(context, opt.as_ref()) else {
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary {
            formerr: Some(FormErrCause::QuestionCount),
            records: None,
            ..Summary::sent(reply.finish(Rcode::FORMERR), Rcode::FORMERR)
        };
    };
    let check = secrets.check(option, client, context.now);
    if check == cookie::Check::Malformed {
        // RFC 7873 §5.2.2: FORMERR, without a cookie.
        let reply = Reply::start(out, parts, snapshot, context.transport);
        return Summary {
            formerr: Some(FormErrCause::Cookie),
            cookie: Some(check),
            records: None,
            ..Summary::sent(reply.finish(Rcode::FORMERR), Rcode::FORMERR)
        };
    }
    parts.cookie = Some(secrets.answer(option, client, context.now));
    let reply = Reply::start(out, parts, snapshot, context.transport);
    Summary {
        cookie: Some(check),
        ..Summary::sent(reply.finish(Rcode::NOERROR), Rcode::NOERROR)
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
