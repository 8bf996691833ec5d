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

use std::net::IpAddr;

use arc_swap::ArcSwapOption;

use super::events::{Event, Events, Reason};
use super::shared::Shared;
use crate::answer::signed::sign_response;
use crate::answer::{respond_to, Context, Summary, Transport};
use crate::cookie::{self, Secrets};
use crate::metrics::{Limited, WorkerCounters};
use crate::rrl::{Decision, RateLimiter, ResponseClass};
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{self, Key};
use crate::wire::{flags, Header, Opcode, Rcode, Rtype};
use crate::xfr::outbound::notify::notify_answer;
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
        }
    }

    /// The same, with the zone transfers, TSIG keys, primaries and expiry of `shared`.
    pub(crate) fn with_shared(self, shared: &'a Shared) -> Self {
        Self {
            xfr: shared.xfr.as_ref(),
            tsig_keys: Some(&shared.tsig_keys),
            primaries: &shared.primaries,
            events: Some(&shared.events),
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
// NOTE: a transfer request is large (its question), but moved once and never stored here:
// boxing it would allocate on the worker for every IXFR over UDP.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Handled {
    /// The answer is `out[..len]`; `None`: nothing is sent.
    Answer(Option<usize>),
    /// A zone transfer over TCP, for a transfer thread: nothing is written.
    HandOff(TransferRequest),
}

/// The kind of a message, decided once before anything is written.
#[allow(clippy::large_enum_variant)] // As `Handled`.
#[derive(Debug)]
enum MessageKind {
    /// A query, or any opcode we do not implement: the pure answer.
    Query,
    /// A NOTIFY from one of our primaries (RFC 1996).
    Notify,
    /// An AXFR or IXFR that `--xfr-allow` (and the TSIG keys) let in; over UDP an IXFR only.
    Transfer(TransferRequest),
}

/// Answers `message` from `client` over `transport` into `out`: its handler, then the steps
/// after it in the order of this module's doc. `rate_limit` is the UDP worker's limiter.
#[inline]
pub(super) fn handle(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: Option<IpAddr>,
    out: &mut [u8],
    rate_limit: Option<&mut RateLimit<'_>>,
) -> Handled {
    let handled = match classify(serving, transport, message, client) {
        MessageKind::Query => None,
        MessageKind::Notify => answer_notify(serving, message, client, out),
        MessageKind::Transfer(request) => match transport {
            Transport::Tcp => return Handled::HandOff(request),
            Transport::Udp => serving
                .xfr
                .and_then(|gate| answer_over_udp(&request, serving.snapshot, gate, out))
                .map(|len| Summary::written(len, Rcode::NOERROR, Some(Rtype::IXFR))),
        },
    };
    // A NOTIFY for another zone, or an IXFR with no room: the ordinary rules.
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
    sign(serving, message, &mut summary, out);
    count(serving.counters, transport, &summary);
    Handled::Answer(summary.len)
}

/// The kind of `message`: by opcode first, then, for a query where transfers are on, whether
/// it is a transfer that `--xfr-allow` lets in (a TCP one takes a transfer slot).
#[inline]
fn classify(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: Option<IpAddr>,
) -> MessageKind {
    let (Some(header), Some(client)) = (Header::new(message), client) else {
        return MessageKind::Query;
    };
    match header.opcode() {
        Opcode::QUERY => match serving.xfr {
            Some(gate) => transfer(gate, serving, transport, message, client),
            None => MessageKind::Query,
        },
        Opcode::NOTIFY if serving.primaries.contains(&client) => MessageKind::Notify,
        _ => MessageKind::Query,
    }
}

/// A transfer request that `gate` admits, or an ordinary query.
#[cold]
fn transfer(
    gate: &Gate,
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: IpAddr,
) -> MessageKind {
    let apex = &serving.snapshot.zone.apex;
    let request = match transport {
        Transport::Tcp => gate.request(message, client, apex, serving.tsig_keys),
        Transport::Udp => gate.request_over_udp(message, client, apex, serving.tsig_keys),
    };
    request.map_or(MessageKind::Query, MessageKind::Transfer)
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
        crate::log!(Info, "NOTIFY from {client}: reloading from the primaries");
        if let Some(events) = serving.events {
            events.try_send(Event::Reload(Reason::Notify(client)));
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
fn sign(serving: &Serving<'_>, message: &[u8], summary: &mut Summary, out: &mut [u8]) {
    if let (true, Some(len)) = (summary.signed, summary.len) {
        summary.len = sign_with_keys(serving, message, out, len);
    }
}

/// Signs the response `out[..len]` to the TSIG-signed `message`, or answers its TSIG error
/// (see [`sign_response`]): the slow path of the rare signed query, which loads the keys.
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
