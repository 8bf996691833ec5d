//! Counters, and their Prometheus text exposition (format 0.0.4).
//!
//! Each worker owns a [`WorkerCounters`] and is its only writer: an increment is a relaxed
//! load and store of a value no other thread writes, which compiles to plain moves, with no
//! lock prefix and no cache line shared between workers. A scrape reads every worker's
//! counters with relaxed loads and sums them; a sum may miss increments in flight, never
//! tear one.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::answer::{DropReason, Summary, Transport};
use crate::cookie;
use crate::snapshot::guard::Refusal;
use crate::sys::unix_millis;
use crate::wire::{FormErrCause, Rcode, Rtype};
use crate::xfr::inbound::secondary::{Outcome, SecondaryStats};
use crate::xfr::outbound::{IxfrStyle, XfrStats};
use crate::xfr::TransferType;

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
const QTYPES: [&str; 15] = [
    "A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "SVCB", "HTTPS", "AXFR", "IXFR",
    "ANY", "other",
];

fn qtype_index(qtype: Rtype) -> usize {
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
const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];

fn rcode_index(rcode: Rcode) -> usize {
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
    queries: [Counter; Transport::NAMES.len()],
    qtypes: [Counter; QTYPES.len()],
    rcodes: [Counter; RCODES.len()],
    dropped: [Counter; DropReason::NAMES.len()],
    formerr: [Counter; FormErrCause::NAMES.len()],
    truncated: Counter,
    cookies: [Counter; cookie::Check::NAMES.len()],
    rate_limited: [Counter; Limited::NAMES.len()],
    tcp_accepted: Counter,
    tcp_accept_errors: Counter,
    udp_send_errors: Counter,
    tcp_open: Counter,
    tcp_closed: [Counter; CloseReason::NAMES.len()],
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
    /// Worker threads in their event loop (each adds itself, and removes itself on exit).
    pub workers_running: AtomicU64,
}

/// Everything the metrics endpoint reads: cheap to clone, safe to read from any thread.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) workers: Vec<Arc<WorkerCounters>>,
    pub(crate) stats: Arc<ServerStats>,
    /// Zone transfer counts; zeros when transfers are off.
    pub(crate) xfr: Arc<XfrStats>,
    /// A secondary's transfers in, with `--primary`.
    pub(crate) secondary: Option<Arc<SecondaryStats>>,
}

impl Metrics {
    /// Whether every worker started is still in its event loop.
    pub fn all_workers_running(&self) -> bool {
        self.stats.workers_running.load(Ordering::Relaxed) == self.workers.len() as u64
    }

    /// The Prometheus text exposition of every counter, workers summed.
    pub fn render(&self) -> String {
        let workers: Vec<&WorkerCounters> = self.workers.iter().map(|w| &**w).collect();
        let mut out = String::with_capacity(8192);
        render(&workers, &self.stats, &mut out);
        render_xfr(&self.xfr, &mut out);
        if let Some(secondary) = &self.secondary {
            render_secondary(secondary, unix_millis(), &mut out);
        }
        out
    }
}

/// The zone transfer families.
fn render_xfr(xfr: &XfrStats, out: &mut String) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
    let by_type = |counters: &[AtomicU64; 2]| -> Vec<(String, String)> {
        TransferType::NAMES
            .iter()
            .zip(counters)
            .map(|(kind, n)| (format!("{{type=\"{kind}\"}}"), get(n)))
            .collect()
    };
    let mut results = Vec::new();
    for (result, counters) in [
        ("completed", &xfr.completed),
        ("failed", &xfr.failed),
        ("refused_busy", &xfr.refused_busy),
    ] {
        for (kind, n) in TransferType::NAMES.iter().zip(counters) {
            results.push((format!("{{type=\"{kind}\",result=\"{result}\"}}"), get(n)));
        }
    }
    family(
        out,
        "cnamed_xfr_transfers_total",
        "counter",
        "Zone transfers by type and result: completed, failed (the client went away or stopped reading, or its TSIG failed), refused because the maximum were running.",
        &results,
    );
    let styles: Vec<_> = IxfrStyle::NAMES
        .iter()
        .zip(&xfr.ixfr_styles)
        .map(|(style, n)| (format!("{{style=\"{style}\"}}"), get(n)))
        .collect();
    family(
        out,
        "cnamed_ixfr_answers_total",
        "counter",
        "IXFR requests by how they were answered: the differences, the SOA alone (up to date), or the whole zone (serial not in the history).",
        &styles,
    );
    family(
        out,
        "cnamed_xfr_records_total",
        "counter",
        "Records sent by completed zone transfers.",
        &by_type(&xfr.records),
    );
    family(
        out,
        "cnamed_xfr_bytes_total",
        "counter",
        "Bytes sent by completed zone transfers, length prefixes included.",
        &by_type(&xfr.bytes),
    );
    let notifies = [
        ("sent", &xfr.notifies_sent),
        ("acknowledged", &xfr.notifies_acked),
        ("failed", &xfr.notifies_failed),
    ]
    .map(|(result, n)| (format!("{{result=\"{result}\"}}"), get(n)));
    family(
        out,
        "cnamed_notifies_total",
        "counter",
        "NOTIFY messages sent to --notify targets (retries included), acknowledged, and failed (not acknowledged after the last try, or refused).",
        &notifies,
    );
    single(
        out,
        "cnamed_ixfr_history_deltas",
        "gauge",
        "Reloads whose differences are kept for IXFR.",
        get(&xfr.history_deltas),
    );
    single(
        out,
        "cnamed_ixfr_history_bytes",
        "gauge",
        "Heap bytes of the differences kept for IXFR.",
        get(&xfr.history_bytes),
    );
}

/// A secondary's families: transfers in, the primary's serial, time since the zone was
/// last confirmed, expiry.
fn render_secondary(secondary: &SecondaryStats, now_ms: u64, out: &mut String) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
    let mut transfers = Vec::new();
    for (via, results) in TransferType::NAMES.iter().zip(&secondary.transfers) {
        for (result, n) in Outcome::NAMES.iter().zip(results) {
            transfers.push((format!("{{type=\"{via}\",result=\"{result}\"}}"), get(n)));
        }
    }
    family(
        out,
        "cnamed_secondary_transfers_total",
        "counter",
        "Refreshes from the primaries by how the zone came (IXFR, or AXFR) and how they ended: a new serial installed, up to date, failed (no primary answered, or the zone was refused). Failures before any primary answered count as AXFR.",
        &transfers,
    );
    let bytes: Vec<_> = TransferType::NAMES
        .iter()
        .zip(&secondary.bytes)
        .map(|(via, n)| (format!("{{type=\"{via}\"}}"), get(n)))
        .collect();
    family(
        out,
        "cnamed_secondary_transfer_bytes_total",
        "counter",
        "Bytes of zone transfer responses received from the primaries.",
        &bytes,
    );
    single(
        out,
        "cnamed_secondary_primary_serial",
        "gauge",
        "The SOA serial the primary last gave.",
        get(&secondary.primary_serial),
    );
    let since = now_ms.saturating_sub(secondary.last_ok_ms.load(Ordering::Relaxed));
    single(
        out,
        "cnamed_secondary_seconds_since_refresh",
        "gauge",
        "Seconds since a primary last confirmed the zone current (a transfer or an up-to-date answer).",
        format!("{:.3}", since as f64 / 1e3),
    );
    single(
        out,
        "cnamed_secondary_expired",
        "gauge",
        "1 when no primary confirmed the zone for the SOA EXPIRE time (see --on-expire).",
        u8::from(secondary.expired.load(Ordering::Relaxed)),
    );
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
    let families = [
        Labelled {
            name: "cnamed_queries_total",
            help: "Messages received, by transport.",
            label: "transport",
            values: &Transport::NAMES,
            pick: |w| &w.queries,
        },
        Labelled {
            name: "cnamed_questions_total",
            help: "Queries with a readable question, by QTYPE.",
            label: "qtype",
            values: &QTYPES,
            pick: |w| &w.qtypes,
        },
        Labelled {
            name: "cnamed_responses_total",
            help: "Responses sent, by RCODE.",
            label: "rcode",
            values: &RCODES,
            pick: |w| &w.rcodes,
        },
        Labelled {
            name: "cnamed_dropped_total",
            help: "Messages dropped unanswered: shorter than a header, or a response (QR=1).",
            label: "reason",
            values: &DropReason::NAMES,
            pick: |w| &w.dropped,
        },
        Labelled {
            name: "cnamed_formerr_total",
            help: "FORMERR responses, by what was malformed.",
            label: "cause",
            values: &FormErrCause::NAMES,
            pick: |w| &w.formerr,
        },
        Labelled {
            name: "cnamed_cookies_total",
            help: "Queries with a COOKIE option, by verdict.",
            label: "verdict",
            values: &cookie::Check::NAMES,
            pick: |w| &w.cookies,
        },
        Labelled {
            name: "cnamed_rrl_limited_total",
            help: "UDP responses over the rate limit: dropped, or slipped (sent truncated).",
            label: "action",
            values: &Limited::NAMES,
            pick: |w| &w.rate_limited,
        },
        Labelled {
            name: "cnamed_tcp_connections_closed_total",
            help: "TCP connections closed, by reason.",
            label: "reason",
            values: &CloseReason::NAMES,
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
    let refused: u64 = stats.reloads_refused.iter().map(Counter::get).sum();
    single(
        out,
        "cnamed_tcp_accept_errors_total",
        counter,
        "TCP connections that could not be accepted (open-file limit and the like).",
        sum(|w| &w.tcp_accept_errors),
    );
    single(
        out,
        "cnamed_udp_send_errors_total",
        counter,
        "UDP replies dropped: refused by the kernel, or the socket buffer stayed full.",
        sum(|w| &w.udp_send_errors),
    );
    let reloads = [
        ("ok", stats.reloads_ok.get()),
        ("unchanged", stats.reloads_unchanged.get()),
        ("refused", refused),
    ]
    .map(|(result, n)| (format!("{{result=\"{result}\"}}"), n.to_string()));
    family(
        out,
        "cnamed_reloads_total",
        counter,
        "Reloads of the dump, by result: a new snapshot, the same serial and content, or refused (the old snapshot keeps serving).",
        &reloads,
    );
    let reasons: Vec<(String, String)> = Refusal::NAMES
        .iter()
        .zip(&stats.reloads_refused)
        .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), n.get().to_string()))
        .collect();
    family(
        out,
        "cnamed_reloads_refused_total",
        counter,
        "Reloads refused, by reason: a guard rail (serial, empty, shrink, cluster) or a dump or cookie secret that did not load (invalid).",
        &reasons,
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
            "cnamed_last_reload_success_timestamp_seconds",
            "Unix time of the last reload that put a new snapshot in service, 0 if none.",
            stats.last_reload_ok_ms.get() as f64 / 1e3,
        ),
        (
            "cnamed_dump_modified_timestamp_seconds",
            "Modification time of the dump file being served, Unix seconds.",
            stats.dump_modified_ms.get() as f64 / 1e3,
        ),
    ];
    for (name, help, value) in snapshot {
        single(out, name, gauge, help, value);
    }
    single(
        out,
        "cnamed_workers_running",
        gauge,
        "Worker threads serving; fewer than started means one has died.",
        stats.workers_running.load(Ordering::Relaxed),
    );
    // The standard process family (Prometheus client libraries' names and units).
    let usage = crate::sys::process_usage();
    let process = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            gauge,
            usage.resident_bytes as f64,
        ),
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            counter,
            usage.cpu_seconds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            gauge,
            usage.open_fds as f64,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            gauge,
            usage.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            gauge,
            stats.start_time_ms.get() as f64 / 1e3,
        ),
    ];
    for (name, help, kind, value) in process {
        single(out, name, kind, help, value);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family follows the Prometheus naming conventions: a `cnamed_` or `process_`
    /// prefix, snake case, `_total` on counters and only there, base units (seconds, bytes),
    /// and no label name repeated inside the metric name.
    #[test]
    fn names_follow_the_conventions() {
        let mut out = String::new();
        render(
            &[&WorkerCounters::default()],
            &ServerStats::default(),
            &mut out,
        );
        let mut families = 0;
        for line in out.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            families += 1;
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                name.starts_with("cnamed_") || name.starts_with("process_"),
                "{name}"
            );
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name}: {kind}"
            );
            for unit in ["_ms", "_millis", "_micros", "_kb", "_mb", "_minutes"] {
                assert!(!name.contains(unit), "{name}: not a base unit");
            }
            let sample = out
                .lines()
                .find(|l| l.starts_with(name) && !l.starts_with('#'))
                .unwrap();
            if let Some(labels) = sample.split_once('{').map(|(_, l)| l) {
                let label = labels.split('=').next().unwrap();
                assert!(
                    !name.contains(&format!("_{label}")),
                    "{name} names its label {label}"
                );
            }
        }
        assert!(families > 25, "{families}");
    }

    #[test]
    fn label_tables_match_their_indexes() {
        let qtypes = [
            (1, "A"),
            (2, "NS"),
            (5, "CNAME"),
            (6, "SOA"),
            (12, "PTR"),
            (15, "MX"),
            (16, "TXT"),
            (28, "AAAA"),
            (33, "SRV"),
            (64, "SVCB"),
            (65, "HTTPS"),
            (252, "AXFR"),
            (251, "IXFR"),
            (255, "ANY"),
            (99, "other"),
        ];
        for (code, name) in qtypes {
            assert_eq!(QTYPES[qtype_index(Rtype(code))], name);
        }
        for (code, name) in [
            (0, "NOERROR"),
            (3, "NXDOMAIN"),
            (16, "BADVERS"),
            (9, "other"),
        ] {
            assert_eq!(RCODES[rcode_index(Rcode(code))], name);
        }
        use crate::cookie::Check;
        for (check, name) in [(Check::Malformed, "malformed"), (Check::Valid, "valid")] {
            assert_eq!(Check::NAMES[check as usize], name);
        }
        assert_eq!(CloseReason::NAMES[CloseReason::Cap as usize], "cap");
        assert_eq!(Transport::NAMES[Transport::Tcp as usize], "tcp");
        assert_eq!(DropReason::NAMES[DropReason::Response as usize], "response");
        assert_eq!(FormErrCause::NAMES[FormErrCause::Opt as usize], "opt");
        assert_eq!(Limited::NAMES[Limited::Slipped as usize], "slipped");
    }
}
