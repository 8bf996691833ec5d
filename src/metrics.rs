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

/// One metric family: its name, type and help line, then one sample per label value.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A counter family with one label: `pick` gives a worker's counters in the order of
/// `values`.
struct Labelled<'a> {
    name: &'a str,
    help: &'a str,
    label: &'a str,
    values: &'a [&'a str],
    pick: fn(&WorkerCounters) -> &[Counter],
}

impl Labelled<'_> {
    /// Writes the family, each value summed over the workers.
    fn write(&self, out: &mut String, workers: &[&WorkerCounters]) {
        let samples: Vec<(String, String)> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let sum = workers
                    .iter()
                    .map(|w| (self.pick)(w)[i].get())
                    .fold(0, u64::wrapping_add);
                (format!("{{{}=\"{value}\"}}", self.label), sum.to_string())
            })
            .collect();
        family(out, self.name, "counter", self.help, &samples);
    }
}

/// A family with one sample and no labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl ToString) {
    family(out, name, kind, help, &[(String::new(), value.to_string())]);
}

/// Writes the exposition of `workers` summed, and `stats`.
pub fn render(workers: &[&WorkerCounters], stats: &ServerStats, out: &mut String) {
    let sum = |pick: fn(&WorkerCounters) -> &Counter| {
        workers
            .iter()
            .map(|w| pick(w).get())
            .fold(0, u64::wrapping_add)
    };
    let qtypes: Vec<&str> = QTYPES.iter().map(|&(_, n)| n).chain(["other"]).collect();
    let rcodes: Vec<&str> = RCODES.iter().map(|&(_, n)| n).chain(["other"]).collect();
    let causes: Vec<&str> = FormErrCause::ALL.iter().map(|c| c.name()).collect();
    let verdicts: Vec<&str> = COOKIES.iter().map(|&(_, n)| n).collect();
    let reasons: Vec<&str> = CloseReason::ALL.iter().map(|&(_, n)| n).collect();
    let families = [
        Labelled {
            name: "cnamed_queries_total",
            help: "Messages received, by transport.",
            label: "transport",
            values: &["udp", "tcp"],
            pick: |w| &w.queries,
        },
        Labelled {
            name: "cnamed_queries_by_qtype_total",
            help: "Queries with a readable question, by QTYPE.",
            label: "qtype",
            values: &qtypes,
            pick: |w| &w.qtypes,
        },
        Labelled {
            name: "cnamed_responses_total",
            help: "Responses sent, by RCODE.",
            label: "rcode",
            values: &rcodes,
            pick: |w| &w.rcodes,
        },
        Labelled {
            name: "cnamed_dropped_total",
            help: "Messages dropped unanswered: shorter than a header, or a response (QR=1).",
            label: "reason",
            values: &["short", "response"],
            pick: |w| &w.dropped,
        },
        Labelled {
            name: "cnamed_formerr_total",
            help: "FORMERR responses, by what was malformed.",
            label: "cause",
            values: &causes,
            pick: |w| &w.formerr,
        },
        Labelled {
            name: "cnamed_cookies_total",
            help: "Queries with a COOKIE option, by verdict.",
            label: "verdict",
            values: &verdicts,
            pick: |w| &w.cookies,
        },
        Labelled {
            name: "cnamed_rrl_limited_total",
            help: "UDP responses over the rate limit: dropped, or slipped (sent truncated).",
            label: "action",
            values: &["dropped", "slipped"],
            pick: |w| &w.rate_limited,
        },
        Labelled {
            name: "cnamed_tcp_connections_closed_total",
            help: "TCP connections closed, by reason.",
            label: "reason",
            values: &reasons,
            pick: |w| &w.tcp_closed,
        },
    ];
    for labelled in &families {
        labelled.write(out, workers);
    }
    let counter = "counter";
    let gauge = "gauge";
    single(
        out,
        "cnamed_truncated_total",
        counter,
        "Responses sent with TC=1 (too large, or slipped by RRL).",
        sum(|w| &w.truncated),
    );
    single(
        out,
        "cnamed_tcp_connections_open",
        gauge,
        "TCP connections open.",
        sum(|w| &w.tcp_open),
    );
    single(
        out,
        "cnamed_tcp_connections_accepted_total",
        counter,
        "TCP connections accepted.",
        sum(|w| &w.tcp_accepted),
    );
    let reloads = [
        (
            "{result=\"ok\"}".to_owned(),
            stats.reloads_ok.get().to_string(),
        ),
        (
            "{result=\"failed\"}".to_owned(),
            stats.reloads_failed.get().to_string(),
        ),
    ];
    family(
        out,
        "cnamed_reloads_total",
        counter,
        "Reloads of the dump (SIGHUP), by result; a failed one keeps the old snapshot.",
        &reloads,
    );
    let snapshot = [
        (
            "cnamed_snapshot_apps",
            "Apps in the snapshot being served.",
            stats.apps.get() as f64,
        ),
        (
            "cnamed_snapshot_serial",
            "Serial of the snapshot being served.",
            stats.serial.get() as f64,
        ),
        (
            "cnamed_snapshot_load_seconds",
            "Time the snapshot being served took to load.",
            stats.load_micros.get() as f64 / 1e6,
        ),
        (
            "cnamed_last_reload_attempt_timestamp_seconds",
            "Unix time of the last reload attempt, 0 if none.",
            stats.last_reload_attempt_ms.get() as f64 / 1e3,
        ),
        (
            "cnamed_start_time_seconds",
            "Unix time the server started.",
            stats.start_time_ms.get() as f64 / 1e3,
        ),
    ];
    for (name, help, value) in snapshot {
        single(out, name, gauge, help, value);
    }
    let version = [(
        format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
        "1".to_owned(),
    )];
    family(
        out,
        "cnamed_build_info",
        gauge,
        "Always 1; the version of the running binary is in its label.",
        &version,
    );
}
