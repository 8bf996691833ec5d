//! One message's way through a worker, the same for UDP and TCP: [`handle`].
//!
//! The kind of message is decided once, from its header and, for a zone transfer, its
//! question ([`MessageKind`]): a NOTIFY from one of our primaries, a zone transfer from a client
//! `--xfr-allow` lets in, or anything else, which the pure [`respond_to`] answers (a query;
//! NOTIMP for the opcodes we do not implement). The handler writes the answer; then the steps
//! after it run in this order, each a small function below:
//!
//! 1. [`servfail_if_expired`]: an expired zone under `--on-expire servfail` answers SERVFAIL;
//! 2. [`rate_limit`] (UDP only): the limiter's drop is final; its slip truncates;
//! 3. [`sign`]: the answer to a TSIG-signed query is signed, or becomes the TSIG error;
//! 4. [`count`]: the worker's counters see what leaves.
//!
//! Handlers that sign their own answers (a NOTIFY's acknowledgement, an IXFR over UDP) say
//! so by leaving `Summary::signed` false. A transfer over TCP is not answered here: the
//! connection goes to a transfer thread once its earlier answers are sent.

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::net::IpAddr;

use arc_swap::ArcSwapOption;

use super::events::{Events, Notified};
use super::shared::Shared;
use super::update::Updates;
use crate::answer::signed::sign_response;
use crate::answer::{respond_to, Context, Summary, Transport};
use crate::cookie::{self, Secrets};
use crate::dnstap::Tap;
use crate::metrics::{Limited, WorkerCounters};
use crate::rrl::{Decision, RateLimiter, ResponseClass};
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{self, Key};
use crate::wire::record::{field, fixed_at, read_be16, RR_FIXED};
use crate::wire::update::UPDATE;
use crate::wire::{
    flags, skip_name, Header, Opcode, Rcode, Rtype, EDNS_UDP, HEADER_LEN, PLAIN_UDP,
};
use crate::xfr::outbound::notify::{announced_serial, notify_answer};
use crate::xfr::outbound::udp::answer_over_udp;
use crate::xfr::outbound::{Gate, TransferRequest};

/// What answering needs, borrowed for one event (TCP) or one batch (UDP).
pub(crate) struct Serving<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) cookies: &'a Secrets,
    pub(crate) counters: &'a WorkerCounters,
    /// Unix seconds, for cookies.
    pub(crate) now: u32,
    /// Zone transfers, with `--xfr-allow`.
    pub(crate) xfr: Option<&'a Gate>,
    /// TSIG keys, read only for the rare signed query.
    pub(crate) tsig_keys: Option<&'a ArcSwapOption<Vec<Key>>>,
    /// Who may NOTIFY us (`--primary`).
    pub(crate) primaries: &'a [IpAddr],
    /// Where an accepted NOTIFY asks for a refresh.
    pub(crate) events: Option<&'a Events>,
    /// The zone expired under `--on-expire servfail`: every answer becomes SERVFAIL.
    pub(crate) refusing: bool,
    /// DNS UPDATE, with `--update-key`.
    pub(crate) updates: Option<&'a Updates>,
    /// The worker's dnstap, with `--dnstap`: a TCP connection logs each answer through it
    /// (UDP logs a whole batch once it is sent, from `udp.rs`).
    pub(crate) tap: Option<&'a RefCell<Tap>>,
}

impl<'a> Serving<'a> {
    /// Serving with the clock read now.
    pub(crate) fn new(
        snapshot: &'a Snapshot,
        cookies: &'a Secrets,
        counters: &'a WorkerCounters,
    ) -> Self {
        Self {
            snapshot,
            cookies,
            counters,
            now: unix_seconds(),
            xfr: None,
            tsig_keys: None,
            primaries: &[],
            events: None,
            refusing: false,
            updates: None,
            tap: None,
        }
    }

    /// The same, logging to the worker's `tap`.
    pub(crate) fn with_tap(self, tap: Option<&'a RefCell<Tap>>) -> Self {
        Self { tap, ..self }
    }

    /// The same, with the zone transfers, TSIG keys, primaries and expiry of `shared`.
    pub(crate) fn with_shared(self, shared: &'a Shared) -> Self {
        Self {
            xfr: shared.xfr.as_ref(),
            tsig_keys: Some(&shared.tsig_keys),
            primaries: &shared.primaries,
            events: Some(&shared.events),
            updates: shared.updates.as_ref(),
            refusing: shared
                .secondary
                .as_ref()
                .is_some_and(|secondary| secondary.refusing()),
            ..self
        }
    }

    /// The answer context for a query from `client` over `transport`.
    pub(crate) fn context(&self, transport: Transport, client: Option<IpAddr>) -> Context<'_> {
        Context {
            transport,
            client,
            now: self.now,
            cookies: Some(self.cookies),
        }
    }
}

/// A UDP worker's rate limiter, with the time on its clock.
pub(super) struct RateLimit<'a> {
    pub(super) limiter: &'a mut RateLimiter,
    pub(super) now_ms: u64,
}

/// What became of one message.
// NOTE: a transfer request is large (its question), but only a TCP hand-off carries it,
// moved once to the connection: boxing it would allocate on the worker.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Handled {
    /// The answer is `out[..len]`; `None`: nothing is sent.
    Answer(Option<usize>),
    /// The connection goes to another thread (TCP): nothing is written.
    HandOff(HandOff),
    /// An UPDATE over UDP, copied into a buffer of the pool, for the committer, which
    /// answers it: nothing is written.
    Update(Vec<u8>),
}

/// Where a TCP connection goes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum HandOff {
    /// A zone transfer, for a transfer thread.
    Transfer(TransferRequest),
    /// An UPDATE, for a thread of its own that reads what follows too (its place taken).
    Update,
}

/// The kind of a message, decided once before anything is written. Small on purpose: the
/// transfer request, large, is made by its handler, off the path of every query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessageKind {
    /// A query, or any opcode we do not implement: the pure answer.
    Query,
    /// A NOTIFY from one of our primaries (RFC 1996).
    Notify,
    /// An AXFR or IXFR of our zone, with transfers on: `--xfr-allow` (and the TSIG keys)
    /// decide in its handler; refused ones are ordinary queries (REFUSED).
    Transfer,
    /// An UPDATE, with `--update-key` (without, the rules answer REFUSED).
    Update,
}

/// Answers `message` from `client` over `transport` into `out`: its handler, then the steps
/// after it in the order of this module's doc. `rate_limit` is the UDP worker's limiter.
// Inlined into each transport's loop: called out of line, its prologue and epilogue cost
// the UDP path 20 instructions per query (callgrind, 1,051 -> 1,071).
#[inline(always)]
pub(super) fn handle(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: Option<IpAddr>,
    out: &mut [u8],
    rate_limit: Option<&mut RateLimit<'_>>,
) -> Handled {
    let handled = match classify(serving, message, client) {
        MessageKind::Query => None,
        MessageKind::Notify => answer_notify(serving, message, client, out),
        MessageKind::Transfer => match admit_transfer(serving, transport, message, client) {
            Some(request) if transport == Transport::Tcp => {
                return Handled::HandOff(HandOff::Transfer(request))
            }
            Some(request) => answer_ixfr_over_udp(serving, &request, out),
            None => None,
        },
        MessageKind::Update => match queue_update(serving, transport, message) {
            Some(handled) => return handled,
            None => Some(update_servfail(message, out)),
        },
    };
    // A NOTIFY for another zone, or a transfer refused or with no room: the ordinary rules.
    let mut summary = handled.unwrap_or_else(|| {
        respond_to(
            message,
            serving.snapshot,
            &serving.context(transport, client),
            out,
        )
    });
    servfail_if_expired(serving, &mut summary, out);
    if let Some(rate_limit) = rate_limit {
        self::rate_limit(rate_limit, serving.counters, client, &mut summary, out);
    }
    sign(serving, transport, message, &mut summary, out);
    count(serving.counters, transport, &summary);
    Handled::Answer(summary.len)
}

/// The kind of `message`: by opcode first, then, for a query where transfers are on, whether
/// its question asks for a transfer of our zone.
#[inline]
fn classify(serving: &Serving<'_>, message: &[u8], client: Option<IpAddr>) -> MessageKind {
    // An edge that neither transfers out nor has primaries: every message is answered by the
    // pure rules, and its header is read there.
    if serving.xfr.is_none() && serving.primaries.is_empty() && serving.updates.is_none() {
        return MessageKind::Query;
    }
    let (Some(header), Some(client)) = (Header::new(message), client) else {
        return MessageKind::Query;
    };
    match header.opcode() {
        Opcode::QUERY if serving.xfr.is_some() && asks_for_transfer(message, serving) => {
            MessageKind::Transfer
        }
        Opcode::NOTIFY if serving.primaries.contains(&client) => MessageKind::Notify,
        UPDATE if serving.updates.is_some() && !header.is_response() => MessageKind::Update,
        _ => MessageKind::Query,
    }
}

/// Whether `message` asks for AXFR or IXFR of the apex: the cheap test that sends every
/// other query of a primary straight to the rules. Most fail at the first label's length
/// byte (an instance label is rarely as long as the apex's first), the rest at QTYPE, and
/// only a transfer compares the whole name (the gate checks the rest).
#[inline]
fn asks_for_transfer(message: &[u8], serving: &Serving<'_>) -> bool {
    let apex = &serving.snapshot.zone.apex;
    if message.get(HEADER_LEN) != apex.first() {
        return false;
    }
    let qtype_at = HEADER_LEN + apex.len();
    match message.get(qtype_at..qtype_at + 2) {
        Some(&[high, low]) => {
            Rtype(u16::from_be_bytes([high, low])).is_transfer()
                && message[HEADER_LEN..qtype_at].eq_ignore_ascii_case(apex)
        }
        _ => false,
    }
}

/// The transfer `--xfr-allow` and the TSIG keys let in (a TCP one takes a transfer slot;
/// over UDP an IXFR only), or `None` for the ordinary rules.
#[cold]
fn admit_transfer(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: Option<IpAddr>,
) -> Option<TransferRequest> {
    let (gate, client) = (serving.xfr?, client?);
    let apex = &serving.snapshot.zone.apex;
    match transport {
        Transport::Tcp => gate.request(message, client, apex, serving.tsig_keys),
        Transport::Udp => gate.request_over_udp(message, client, apex, serving.tsig_keys),
    }
}

/// An IXFR over UDP answered in place (the differences, or the SOA alone), signed by its
/// writer when the request was; `None` when it does not fit.
#[cold]
fn answer_ixfr_over_udp(
    serving: &Serving<'_>,
    request: &TransferRequest,
    out: &mut [u8],
) -> Option<Summary> {
    let len = answer_over_udp(request, serving.snapshot, serving.xfr?, out)?;
    Some(Summary::written(len, Rcode::NOERROR, Some(Rtype::IXFR)))
}

/// An UPDATE for the committer: over UDP copied into a buffer of the pool, over TCP with
/// its connection; `None` when the pool or the connections are used up.
#[cold]
fn queue_update(serving: &Serving<'_>, transport: Transport, message: &[u8]) -> Option<Handled> {
    let updates = serving.updates?;
    match transport {
        Transport::Udp => updates.take_buffer(message).map(Handled::Update),
        Transport::Tcp => updates
            .reserve_connection()
            .then_some(Handled::HandOff(HandOff::Update)),
    }
}

/// SERVFAIL to an UPDATE that finds no room: the client tries again later.
#[cold]
fn update_servfail(message: &[u8], out: &mut [u8]) -> Summary {
    let len = super::update::write_answer(message, Rcode::SERVFAIL, out);
    Summary::written(len, Rcode::SERVFAIL, None)
}

/// The acknowledgement of a NOTIFY for our zone from one of our primaries, which also asks
/// for a refresh (coalesced with any other); signed when it was, and with keys it must be
/// (else REFUSED, or the TSIG error, and no refresh). `None` for a NOTIFY of another zone.
#[cold]
fn answer_notify(
    serving: &Serving<'_>,
    message: &[u8],
    client: Option<IpAddr>,
    out: &mut [u8],
) -> Option<Summary> {
    let client = client?;
    let len = notify_answer(message, &serving.snapshot.zone.apex, out)?;
    let keys = serving.tsig_keys.and_then(ArcSwapOption::load_full);
    let signed = matches!(tsig::find(message), Ok(Some(_)));
    let (len, accepted) = match (signed, keys.is_some()) {
        (true, _) => {
            let len = sign_with_keys(serving, message, out, len)?;
            (len, u16::from(out[3]) & flags::RCODE_MASK == 0)
        }
        (false, true) => {
            out[3] |= Rcode::REFUSED.header_bits() as u8;
            (len, false)
        }
        (false, false) => (len, true),
    };
    if accepted {
        // Logged by the main loop, once per refresh: a flood costs no log lines.
        let serial = announced_serial(message, &serving.snapshot.zone.apex);
        let newer = serial.is_some_and(|serial| serial_is_newer(serial, serving.snapshot.serial));
        if let Some(events) = serving.events {
            events.notify(Notified {
                from: client,
                serial,
                newer,
            });
        }
    }
    // Counted NOERROR whatever it carries, as it always was.
    Some(Summary::written(len, Rcode::NOERROR, None))
}

/// Step 1: an expired zone under `--on-expire servfail` answers SERVFAIL (question and OPT
/// kept); answers that never reached the rules stay as they are.
#[inline]
fn servfail_if_expired(serving: &Serving<'_>, summary: &mut Summary, out: &mut [u8]) {
    if serving.refusing {
        summary.servfail(out);
    }
}

/// Step 2 (UDP): the limiter counts every answer of its class to the client's network; over
/// the rate it is dropped, for good, or slipped (truncated). An answer to a query with a
/// valid server cookie is not limited: its source address is proven.
#[inline]
fn rate_limit(
    rate_limit: &mut RateLimit<'_>,
    counters: &WorkerCounters,
    client: Option<IpAddr>,
    summary: &mut Summary,
    out: &mut [u8],
) {
    let (Some(_), Some(client)) = (summary.len, client) else {
        return;
    };
    if summary.cookie == Some(cookie::Check::Valid) {
        return;
    }
    let class = ResponseClass::of(summary.rcode);
    match rate_limit.limiter.check(client, class, rate_limit.now_ms) {
        Decision::Send => {}
        Decision::Drop => {
            counters.rate_limited(Limited::Dropped);
            summary.len = None;
        }
        Decision::Slip => {
            counters.rate_limited(Limited::Slipped);
            summary.truncate(out);
        }
    }
}

/// Step 3: the answer to a TSIG-signed query is signed, or answers its TSIG error.
#[inline]
fn sign(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    summary: &mut Summary,
    out: &mut [u8],
) {
    if let (true, Some(len)) = (summary.signed, summary.len) {
        let limit = match transport {
            Transport::Udp => udp_limit(message),
            Transport::Tcp => out.len(),
        };
        let out_len = out.len();
        summary.len = sign_with_keys(serving, message, &mut out[..limit.min(out_len)], len);
    }
}

/// The client's UDP size limit (512 without EDNS, else its payload size within ours, RFC
/// 6891 §6.2.5), read again on the rare signed query: the TSIG must fit in it, not in the
/// whole send buffer. Scanned here rather than with `wire::parse_query`: a second caller of
/// it changes how the compiler inlines the query path (45 more instructions a query).
#[cold]
fn udp_limit(message: &[u8]) -> usize {
    let payload = || -> Option<usize> {
        let header = Header::new(message)?;
        let mut at = HEADER_LEN;
        for _ in 0..header.qdcount() {
            at = skip_name(message, at)? + 4;
        }
        let (before, additional) = (header.ancount() + header.nscount(), header.arcount());
        for index in 0..before + additional {
            let owner_end = skip_name(message, at)?;
            let fixed = fixed_at::<RR_FIXED>(message, owner_end)?;
            if index >= before && Rtype(read_be16(fixed, field::TYPE)) == Rtype::OPT {
                return Some(usize::from(read_be16(fixed, field::CLASS)));
            }
            at = owner_end + RR_FIXED + usize::from(read_be16(fixed, field::RDLENGTH));
        }
        None
    };
    payload().map_or(PLAIN_UDP, |payload| payload.clamp(PLAIN_UDP, EDNS_UDP))
}

/// Signs the response `out[..len]` to the TSIG-signed `message`, or answers its TSIG error
/// (see [`sign_response`]), within `out`: the slow path of the rare signed query, which
/// loads the keys.
#[cold]
fn sign_with_keys(
    serving: &Serving<'_>,
    message: &[u8],
    out: &mut [u8],
    len: usize,
) -> Option<usize> {
    let keys = serving.tsig_keys.and_then(ArcSwapOption::load_full);
    let keys = keys.as_deref().map_or(&[][..], Vec::as_slice);
    sign_response(message, out, len, keys, u64::from(unix_seconds()))
}

/// Step 4: the worker's counters see what leaves (or that nothing does).
#[inline]
fn count(counters: &WorkerCounters, transport: Transport, summary: &Summary) {
    counters.record(transport, summary);
}
