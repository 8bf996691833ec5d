//! What every worker reads, and what answering needs, borrowed for one event or batch.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::answer::signed::sign_response;
use crate::answer::{Context, Transport};
use crate::cookie::Secrets;
use crate::metrics::WorkerCounters;
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{self, Key};
use crate::wire::{flags, Rcode};
use crate::xfr::inbound::secondary::SecondaryStats;
use crate::xfr::outbound::notify::notify_answer;
use crate::xfr::outbound::Gate;

/// How long a stopping worker keeps finishing TCP answers already asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// State every worker reads: swapped by reloads, set by shutdown.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) cookies: ArcSwap<Secrets>,
    /// The keys of `--tsig-key-file`, swapped by reloads; `None` without the flag.
    pub(crate) tsig_keys: ArcSwapOption<Vec<Key>>,
    pub(crate) shutdown: AtomicBool,
    /// Zone transfers, when `--xfr-allow` lets anyone transfer.
    pub(crate) xfr: Option<Gate>,
    /// The addresses of `--primary`: a NOTIFY from one of them starts a reload.
    pub(crate) primaries: Vec<IpAddr>,
    /// A secondary's state (`--primary`): whether its zone has expired.
    pub(crate) secondary: Option<Arc<SecondaryStats>>,
}

/// Limits of the TCP side, per worker.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A connection with a message half received or an answer unsent, and no message
    /// completed either way for this long, is closed (Slowloris, clients that never read).
    pub io_timeout: Duration,
    /// At this many connections, accepting one closes the least recently active.
    pub max_connections: usize,
}

/// Response rate limiting settings (see [`crate::rrl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second per /24 or /56 and response class, for the whole server.
    pub rate: u32,
    pub slip: u32,
    /// Picks the buckets, the same for every worker; random per process.
    pub hash_key: [u8; 16],
}

/// What answering needs, borrowed for one event (TCP) or one batch (UDP).
pub(crate) struct Serving<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) cookies: &'a Secrets,
    pub(crate) counters: &'a WorkerCounters,
    /// Unix seconds, for cookies.
    pub(crate) now: u32,
    /// Zone transfers (TCP only).
    pub(crate) xfr: Option<&'a Gate>,
    /// TSIG keys, read only for the rare signed query.
    pub(crate) tsig_keys: Option<&'a ArcSwapOption<Vec<Key>>>,
    /// Who may NOTIFY us (`--primary`).
    pub(crate) primaries: &'a [IpAddr],
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
            refusing: false,
        }
    }

    /// The same, with the zone transfers and TSIG keys of `shared`.
    pub(crate) fn with_shared(self, shared: &'a Shared) -> Self {
        Self {
            xfr: shared.xfr.as_ref(),
            tsig_keys: Some(&shared.tsig_keys),
            primaries: &shared.primaries,
            refusing: shared
                .secondary
                .as_ref()
                .is_some_and(|secondary| secondary.refusing()),
            ..self
        }
    }

    /// Signs the response `out[..len]` to the TSIG-signed `query`, or answers its TSIG error
    /// (see [`sign_response`]): the slow path of the rare signed query, which loads the keys.
    pub(crate) fn sign(&self, query: &[u8], out: &mut [u8], len: usize) -> Option<usize> {
        let keys = self.tsig_keys.and_then(ArcSwapOption::load_full);
        let keys = keys.as_deref().map_or(&[][..], Vec::as_slice);
        sign_response(query, out, len, keys, u64::from(unix_seconds()))
    }

    /// The answer to an IXFR over UDP from an allowed client (see `transfer`), or `None`
    /// for the ordinary rules (REFUSED).
    pub(crate) fn ixfr_over_udp(
        &self,
        query: &[u8],
        client: Option<IpAddr>,
        out: &mut [u8],
    ) -> Option<usize> {
        let gate = self.xfr?;
        let request =
            gate.request_over_udp(query, client?, &self.snapshot.zone.apex, self.tsig_keys)?;
        crate::xfr::outbound::udp::answer_over_udp(&request, self.snapshot, gate, out)
    }

    /// The answer to a NOTIFY (RFC 1996) for our zone from one of our primaries, which also
    /// starts a reload (the signal loop takes it as a SIGHUP, coalesced with others); signed
    /// when it was, and with keys it must be (else REFUSED, or the TSIG error, and no reload).
    /// `None` for anything else (NOTIMP, as before).
    pub(crate) fn notify(
        &self,
        query: &[u8],
        client: Option<IpAddr>,
        out: &mut [u8],
    ) -> Option<usize> {
        if !self.primaries.contains(&client?) {
            return None;
        }
        let len = notify_answer(query, &self.snapshot.zone.apex, out)?;
        let keys = self.tsig_keys.and_then(ArcSwapOption::load_full);
        let signed = matches!(tsig::find(query), Ok(Some(_)));
        let (len, accepted) = match (signed, keys.is_some()) {
            (true, _) => {
                let len = self.sign(query, out, len)?;
                (len, u16::from(out[3]) & flags::RCODE_MASK == 0)
            }
            (false, true) => {
                out[3] |= Rcode::REFUSED.header_bits() as u8;
                (len, false)
            }
            (false, false) => (len, true),
        };
        if accepted {
            crate::log!(
                Info,
                "NOTIFY from {}: reloading from the primaries",
                client?
            );
            let _ = crate::sys::signal_self(crate::sys::SIGHUP);
        }
        Some(len)
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
