//! The counters: each worker's own (written on the query path), and the process-wide ones
//! written off it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::answer::{DropReason, Summary, Transport};
use crate::cookie;
use crate::snapshot::guard::Refusal;
use crate::wire::{FormErrCause, Rcode, Rtype};

/// A count with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this: two writers would lose counts.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// QTYPEs counted by name, then the rest, in the order of `qtype_index`.
pub(super) const QTYPES: [&str; 15] = [
    "A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "SVCB", "HTTPS", "AXFR", "IXFR",
    "ANY", "other",
];

pub(super) fn qtype_index(qtype: Rtype) -> usize {
    match qtype {
        Rtype::A => 0,
        Rtype::NS => 1,
        Rtype::CNAME => 2,
        Rtype::SOA => 3,
        Rtype(12) => 4, // PTR
        Rtype(15) => 5, // MX
        Rtype::TXT => 6,
        Rtype::AAAA => 7,
        Rtype(33) => 8,  // SRV
        Rtype(64) => 9,  // SVCB
        Rtype(65) => 10, // HTTPS
        Rtype::AXFR => 11,
        Rtype::IXFR => 12,
        Rtype::ANY => 13,
        _ => 14,
    }
}

/// RCODEs we send, by name, then the rest, in the order of `rcode_index`.
pub(super) const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];

pub(super) fn rcode_index(rcode: Rcode) -> usize {
    match rcode {
        Rcode::NOERROR => 0,
        Rcode::FORMERR => 1,
        Rcode::SERVFAIL => 2,
        Rcode::NXDOMAIN => 3,
        Rcode::NOTIMP => 4,
        Rcode::REFUSED => 5,
        Rcode::BADVERS => 6,
        _ => 7,
    }
}

/// Why a TCP connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it, or a read or write failed.
    Peer,
    /// No traffic for the idle timeout.
    Idle,
    /// Stalled mid-message for the I/O timeout.
    IoTimeout,
    /// Closed to make room for a new connection at the cap.
    Cap,
    /// Closed by shutdown.
    Shutdown,
    /// Handed to a zone transfer thread.
    Transfer,
}

impl CloseReason {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 6] = [
        "peer",
        "idle_timeout",
        "io_timeout",
        "cap",
        "shutdown",
        "transfer",
    ];
}

/// What RRL did to a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    Dropped,
    Slipped,
}

impl Limited {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 2] = ["dropped", "slipped"];
}

/// One worker's counters. Aligned so that two workers never write the same cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    pub(super) queries: [Counter; Transport::NAMES.len()],
    pub(super) qtypes: [Counter; QTYPES.len()],
    pub(super) rcodes: [Counter; RCODES.len()],
    pub(super) dropped: [Counter; DropReason::NAMES.len()],
    pub(super) formerr: [Counter; FormErrCause::NAMES.len()],
    pub(super) truncated: Counter,
    pub(super) cookies: [Counter; cookie::Check::NAMES.len()],
    pub(super) rate_limited: [Counter; Limited::NAMES.len()],
    pub(super) tcp_accepted: Counter,
    pub(super) tcp_accept_errors: Counter,
    pub(super) udp_send_errors: Counter,
    pub(super) tcp_open: Counter,
    pub(super) tcp_closed: [Counter; CloseReason::NAMES.len()],
}

impl WorkerCounters {
    /// Counts one query and what became of it.
    #[inline]
    pub fn record(&self, transport: Transport, summary: &Summary) {
        self.queries[transport as usize].add(1);
        if let Some(reason) = summary.dropped {
            self.dropped[reason as usize].add(1);
            return;
        }
        if let Some(qtype) = summary.qtype {
            self.qtypes[qtype_index(qtype)].add(1);
        }
        if let Some(cause) = summary.formerr {
            self.formerr[cause as usize].add(1);
        }
        if let Some(check) = summary.cookie {
            self.cookies[check as usize].add(1);
        }
        if summary.len.is_some() {
            self.rcodes[rcode_index(summary.rcode)].add(1);
            if summary.truncated {
                self.truncated.add(1);
            }
        }
    }

    /// Responses the limiter dropped or slipped, for tests.
    #[cfg(test)]
    pub(crate) fn rate_limited_count(&self, how: Limited) -> u64 {
        self.rate_limited[how as usize].get()
    }

    /// Responses sent with `rcode`, for tests.
    #[cfg(test)]
    pub(crate) fn rcode_count(&self, rcode: Rcode) -> u64 {
        self.rcodes[rcode_index(rcode)].get()
    }

    pub fn rate_limited(&self, what: Limited) {
        self.rate_limited[what as usize].add(1);
    }

    pub fn tcp_accepted(&self, open: usize) {
        self.tcp_accepted.add(1);
        self.tcp_open.set(open as u64);
    }

    /// A TCP connection could not be accepted (EMFILE and the like).
    pub fn tcp_accept_failed(&self) {
        self.tcp_accept_errors.add(1);
    }

    /// `n` UDP replies were dropped by the kernel or a full socket buffer.
    pub fn udp_send_failed(&self, n: usize) {
        self.udp_send_errors.add(n as u64);
    }

    pub fn tcp_closed(&self, reason: CloseReason, open: usize) {
        self.tcp_closed[reason as usize].add(1);
        self.tcp_open.set(open as u64);
    }
}

/// Process-wide figures, written off the query path (by the reloading thread).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Reloads that put a new snapshot in service.
    pub reloads_ok: Counter,
    /// Reloads of the same serial and content: nothing to swap.
    pub reloads_unchanged: Counter,
    /// Reloads that kept the old snapshot, by reason (`Refusal::NAMES`).
    pub reloads_refused: [Counter; Refusal::NAMES.len()],
    pub apps: Counter,
    pub serial: Counter,
    /// Microseconds the snapshot being served took to load.
    pub load_micros: Counter,
    /// Unix time of the last reload attempt, in milliseconds; 0 before the first.
    pub last_reload_attempt_ms: Counter,
    /// Unix time of the last reload that put a new snapshot in service, in milliseconds.
    pub last_reload_ok_ms: Counter,
    /// Modification time of the dump being served, Unix milliseconds.
    pub dump_modified_ms: Counter,
    pub start_time_ms: Counter,
    /// 1 while the snapshot served is the last good copy, taken at start instead of the dump.
    pub last_good_serving: Counter,
    /// Writes of the last good copy that failed.
    pub last_good_write_failures: Counter,
    /// Changes in the overlay of the snapshot served (not yet folded into its tables).
    pub overlay_entries: Counter,
    /// Folds of the overlay into new tables, and their time summed.
    pub folds: Counter,
    pub fold_micros: Counter,
    /// How long reloads took, from the start of loading to the swap or the refusal.
    pub reload_seconds: crate::histogram::Histogram,
    /// Worker threads in their event loop (each adds itself, and removes itself on exit).
    pub workers_running: AtomicU64,
}
