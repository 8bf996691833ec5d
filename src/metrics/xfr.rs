//! The zone transfer families: transfers out by type and outcome, IXFR styles, the history
//! kept for IXFR, and NOTIFY messages sent.

use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram;
use super::text::{family, single};
use crate::xfr::outbound::{IxfrStyle, XfrStats};
use crate::xfr::TransferType;

/// The zone transfer families.
pub(super) fn render(xfr: &XfrStats, out: &mut String) {
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
    histogram::family(
        out,
        "cnamed_xfr_duration_seconds",
        "Completed zone transfers out, by type: from the request taken to the last message sent.",
        &histogram::by_type(&xfr.durations),
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
