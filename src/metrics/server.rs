//! The families of the query path (workers summed) and of the process: queries, RCODEs,
//! drops, cookies, rate limiting, TCP, reloads and the snapshot served.

use std::sync::atomic::Ordering;

use super::counters::{CloseReason, Counter, Limited, ServerStats, WorkerCounters, QTYPES, RCODES};
use super::histogram;
use super::text::{family, single, Labelled};
use crate::answer::{DropReason, Transport};
use crate::cookie;
use crate::snapshot::guard::Refusal;
use crate::wire::FormErrCause;

/// Writes the exposition of `workers` summed, and `stats`.
pub(super) fn render(workers: &[&WorkerCounters], stats: &ServerStats, out: &mut String) {
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
        (
            "cnamed_last_good_serving",
            "1 while the last good copy (--last-good) is served because the dump could not be at start.",
            stats.last_good_serving.get() as f64,
        ),
    ];
    for (name, help, value) in snapshot {
        single(out, name, gauge, help, value);
    }
    histogram::family(
        out,
        "cnamed_reload_duration_seconds",
        "Reloads (SIGHUP, cnamed reload, a secondary's refresh), from the start of loading to the new snapshot in service or the refusal.",
        &[(String::new(), &stats.reload_seconds)],
    );
    single(
        out,
        "cnamed_last_good_write_failures_total",
        counter,
        "Writes of the last good copy (--last-good) that failed; the reload was not.",
        stats.last_good_write_failures.get(),
    );
    single(
        out,
        "cnamed_overlay_entries",
        gauge,
        "Changes (UPDATE, IXFR) served from the overlay, not yet folded into the tables.",
        stats.overlay_entries.get(),
    );
    single(
        out,
        "cnamed_folds_total",
        counter,
        "Folds of the overlay of changes into new tables, off the query path.",
        stats.folds.get(),
    );
    single(
        out,
        "cnamed_fold_seconds_total",
        counter,
        "Time spent folding, summed.",
        stats.fold_micros.get() as f64 / 1e6,
    );
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
