//! Counters, and their Prometheus text exposition (format 0.0.4).
//!
//! Each worker owns a [`WorkerCounters`] and is its only writer: an increment is a relaxed
//! load and store of a value no other thread writes, which compiles to plain moves, with no
//! lock prefix and no cache line shared between workers. A scrape reads every worker's
//! counters with relaxed loads and sums them; a sum may miss increments in flight, never
//! tear one.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::answer::{Summary, Transport};
use crate::cookie;
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

/// QTYPEs counted by name; the rest are "other".
const QTYPES: [(Rtype, &str); 14] = [
    (Rtype::A, "A"),
    (Rtype::NS, "NS"),
    (Rtype::CNAME, "CNAME"),
    (Rtype::SOA, "SOA"),
    (Rtype(12), "PTR"),
    (Rtype(15), "MX"),
    (Rtype::TXT, "TXT"),
    (Rtype::AAAA, "AAAA"),
    (Rtype(33), "SRV"),
    (Rtype(64), "SVCB"),
    (Rtype(65), "HTTPS"),
    (Rtype::AXFR, "AXFR"),
    (Rtype::IXFR, "IXFR"),
    (Rtype::ANY, "ANY"),
];

/// RCODEs we send, by name; anything else is "other".
const RCODES: [(Rcode, &str); 7] = [
    (Rcode::NOERROR, "NOERROR"),
    (Rcode::FORMERR, "FORMERR"),
    (Rcode::SERVFAIL, "SERVFAIL"),
    (Rcode::NXDOMAIN, "NXDOMAIN"),
    (Rcode::NOTIMP, "NOTIMP"),
    (Rcode::REFUSED, "REFUSED"),
    (Rcode::BADVERS, "BADVERS"),
];

const COOKIES: [(cookie::Check, &str); 4] = [
    (cookie::Check::ClientOnly, "client_only"),
    (cookie::Check::BadServerCookie, "bad_server_cookie"),
    (cookie::Check::Valid, "valid"),
    (cookie::Check::Malformed, "malformed"),
];

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
}

impl CloseReason {
    const ALL: [(Self, &'static str); 5] = [
        (Self::Peer, "peer"),
        (Self::Idle, "idle_timeout"),
        (Self::IoTimeout, "io_timeout"),
        (Self::Cap, "cap"),
        (Self::Shutdown, "shutdown"),
    ];
}

/// What RRL did to a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    Dropped,
    Slipped,
}

/// One worker's counters. Aligned so that two workers never write the same cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    /// By transport: UDP, TCP.
    queries: [Counter; 2],
    qtypes: [Counter; QTYPES.len() + 1],
    rcodes: [Counter; RCODES.len() + 1],
    /// Short, response.
    dropped: [Counter; 2],
    formerr: [Counter; FormErrCause::ALL.len()],
    truncated: Counter,
    cookies: [Counter; COOKIES.len()],
    /// Dropped, slipped.
    rate_limited: [Counter; 2],
    tcp_accepted: Counter,
    tcp_open: Counter,
    tcp_closed: [Counter; CloseReason::ALL.len()],
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
            let index = QTYPES.iter().position(|&(t, _)| t == qtype);
            self.qtypes[index.unwrap_or(QTYPES.len())].add(1);
        }
        if let Some(cause) = summary.formerr {
            self.formerr[cause as usize].add(1);
        }
        if let Some(check) = summary.cookie {
            let index = COOKIES.iter().position(|&(c, _)| c == check);
            self.cookies[index.unwrap_or(0)].add(1);
        }
        if summary.len.is_some() {
            self.count_response(summary);
        }
    }

    /// Counts a response sent: by RCODE, and whether truncated.
    #[inline]
    fn count_response(&self, summary: &Summary) {
        let index = RCODES.iter().position(|&(r, _)| r == summary.rcode);
        self.rcodes[index.unwrap_or(RCODES.len())].add(1);
        if summary.truncated {
            self.truncated.add(1);
        }
    }

    pub fn rate_limited(&self, what: Limited) {
        self.rate_limited[what as usize].add(1);
    }

    pub fn tcp_accepted(&self, open: usize) {
        self.tcp_accepted.add(1);
        self.tcp_open.set(open as u64);
    }

    pub fn tcp_closed(&self, reason: CloseReason, open: usize) {
        let index = CloseReason::ALL.iter().position(|&(r, _)| r == reason);
        self.tcp_closed[index.unwrap_or(0)].add(1);
        self.tcp_open.set(open as u64);
    }
}

/// Process-wide figures, written off the query path (by the reloading thread).
#[derive(Debug, Default)]
pub struct ServerStats {
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    pub apps: Counter,
    pub serial: Counter,
    /// Microseconds the snapshot being served took to load.
    pub load_micros: Counter,
    /// Unix time of the last reload attempt, in milliseconds; 0 before the first.
    pub last_reload_attempt_ms: Counter,
    pub start_time_ms: Counter,
}

/// Writes the exposition of `workers` summed, and `stats`.
pub fn render(workers: &[&WorkerCounters], stats: &ServerStats, out: &mut String) {
    let sum = |pick: &dyn Fn(&WorkerCounters) -> &Counter| -> u64 {
        workers
            .iter()
            .map(|w| pick(w).get())
            .fold(0, u64::wrapping_add)
    };
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let labelled = |label: &str, names: &mut dyn Iterator<Item = &str>, values: &[u64]| {
        names
            .zip(values)
            .map(|(name, &value)| (format!("{{{label}=\"{name}\"}}"), value))
            .collect::<Vec<_>>()
    };
    let plain = |value: u64| vec![(String::new(), value)];

    let queries: Vec<u64> = (0..2).map(|i| sum(&|w| &w.queries[i])).collect();
    family(
        "cnamed_queries_total",
        "counter",
        "Messages received, by transport.",
        &labelled("transport", &mut ["udp", "tcp"].into_iter(), &queries),
    );
    let qtypes: Vec<u64> = (0..=QTYPES.len()).map(|i| sum(&|w| &w.qtypes[i])).collect();
    let names = QTYPES.iter().map(|&(_, n)| n).chain(["other"]);
    family(
        "cnamed_queries_by_qtype_total",
        "counter",
        "Queries with a readable question, by QTYPE.",
        &labelled("qtype", &mut names.into_iter(), &qtypes),
    );
    let rcodes: Vec<u64> = (0..=RCODES.len()).map(|i| sum(&|w| &w.rcodes[i])).collect();
    let names = RCODES.iter().map(|&(_, n)| n).chain(["other"]);
    family(
        "cnamed_responses_total",
        "counter",
        "Responses sent, by RCODE.",
        &labelled("rcode", &mut names.into_iter(), &rcodes),
    );
    family(
        "cnamed_truncated_total",
        "counter",
        "Responses sent with TC=1 (too large, or slipped by RRL).",
        &plain(sum(&|w| &w.truncated)),
    );
    let dropped: Vec<u64> = (0..2).map(|i| sum(&|w| &w.dropped[i])).collect();
    family(
        "cnamed_dropped_total",
        "counter",
        "Messages dropped unanswered: shorter than a header, or a response (QR=1).",
        &labelled("reason", &mut ["short", "response"].into_iter(), &dropped),
    );
    let formerr: Vec<u64> = (0..FormErrCause::ALL.len())
        .map(|i| sum(&|w| &w.formerr[i]))
        .collect();
    let names = FormErrCause::ALL.iter().map(|c| c.name());
    family(
        "cnamed_formerr_total",
        "counter",
        "FORMERR responses, by what was malformed.",
        &labelled("cause", &mut names.into_iter(), &formerr),
    );
    let cookies: Vec<u64> = (0..COOKIES.len())
        .map(|i| sum(&|w| &w.cookies[i]))
        .collect();
    let names = COOKIES.iter().map(|&(_, n)| n);
    family(
        "cnamed_cookies_total",
        "counter",
        "Queries with a COOKIE option, by verdict.",
        &labelled("verdict", &mut names.into_iter(), &cookies),
    );
    let limited: Vec<u64> = (0..2).map(|i| sum(&|w| &w.rate_limited[i])).collect();
    family(
        "cnamed_rrl_limited_total",
        "counter",
        "UDP responses over the rate limit: dropped, or slipped (sent truncated).",
        &labelled("action", &mut ["dropped", "slipped"].into_iter(), &limited),
    );
    family(
        "cnamed_tcp_connections_open",
        "gauge",
        "TCP connections open.",
        &plain(sum(&|w| &w.tcp_open)),
    );
    family(
        "cnamed_tcp_connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        &plain(sum(&|w| &w.tcp_accepted)),
    );
    let closed: Vec<u64> = (0..CloseReason::ALL.len())
        .map(|i| sum(&|w| &w.tcp_closed[i]))
        .collect();
    let names = CloseReason::ALL.iter().map(|&(_, n)| n);
    family(
        "cnamed_tcp_connections_closed_total",
        "counter",
        "TCP connections closed, by reason.",
        &labelled("reason", &mut names.into_iter(), &closed),
    );
    let reloads = [stats.reloads_ok.get(), stats.reloads_failed.get()];
    family(
        "cnamed_reloads_total",
        "counter",
        "Reloads of the dump (SIGHUP), by result; a failed one keeps the old snapshot.",
        &labelled("result", &mut ["ok", "failed"].into_iter(), &reloads),
    );
    family(
        "cnamed_snapshot_apps",
        "gauge",
        "Apps in the snapshot being served.",
        &plain(stats.apps.get()),
    );
    family(
        "cnamed_snapshot_serial",
        "gauge",
        "Serial of the snapshot being served.",
        &plain(stats.serial.get()),
    );
    let seconds = |micros: u64| micros as f64 / 1e6;
    let mut gauge_f64 = |name: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge_f64(
        "cnamed_snapshot_load_seconds",
        "Time the snapshot being served took to load.",
        seconds(stats.load_micros.get()),
    );
    gauge_f64(
        "cnamed_last_reload_attempt_timestamp_seconds",
        "Unix time of the last reload attempt, 0 if none.",
        stats.last_reload_attempt_ms.get() as f64 / 1e3,
    );
    gauge_f64(
        "cnamed_start_time_seconds",
        "Unix time the server started.",
        stats.start_time_ms.get() as f64 / 1e3,
    );
}
