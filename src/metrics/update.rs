//! DNS UPDATE and its journal: messages by RCODE, app changes, commits and their time, the
//! journal's size.

use super::counters::Counter;
use super::histogram;
use super::text::{family, single};
use crate::wire::Rcode;

/// The RCODEs an UPDATE is answered with, by name, then the rest.
const RCODES: [&str; 12] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "other",
];

/// Written by the committer thread.
#[derive(Debug, Default)]
pub struct UpdateStats {
    rcodes: [Counter; RCODES.len()],
    /// Apps added, moved or removed by UPDATEs acknowledged.
    pub app_changes: Counter,
    /// Journal appends (one fsync each, for a group of UPDATEs).
    pub commits: Counter,
    /// Time from taking a group to its answers, summed, in microseconds.
    pub commit_micros: Counter,
    /// The same per commit (a group of UPDATEs: their journal append, fsync and answers).
    pub commit_seconds: crate::histogram::Histogram,
    /// Appends that failed (their UPDATEs answered SERVFAIL).
    pub journal_errors: Counter,
    pub journal_bytes: Counter,
    pub journal_records: Counter,
    /// The serial of the journal's first record; 0 while empty.
    pub journal_oldest_serial: Counter,
}

impl UpdateStats {
    /// One UPDATE answered `rcode`.
    pub fn answered(&self, rcode: Rcode) {
        let index = usize::from(rcode.0).min(RCODES.len() - 1);
        self.rcodes[index].add(1);
    }

    /// UPDATEs answered `rcode` (by name, as the metric's label), for tests and status.
    pub fn answered_count(&self, rcode: &str) -> u64 {
        RCODES
            .iter()
            .position(|name| *name == rcode)
            .map_or(0, |index| self.rcodes[index].get())
    }
}

pub(super) fn render(stats: &UpdateStats, out: &mut String) {
    let rcodes: Vec<(String, String)> = RCODES
        .iter()
        .zip(&stats.rcodes)
        .map(|(rcode, n)| (format!("{{rcode=\"{rcode}\"}}"), n.get().to_string()))
        .collect();
    family(
        out,
        "cnamed_updates_total",
        "counter",
        "DNS UPDATE messages answered, by RCODE.",
        &rcodes,
    );
    let counters = [
        (
            "cnamed_update_app_changes_total",
            "Apps added, moved or removed by acknowledged UPDATEs.",
            stats.app_changes.get() as f64,
        ),
        (
            "cnamed_update_commits_total",
            "Journal appends, each one fsync for a group of UPDATEs.",
            stats.commits.get() as f64,
        ),
        (
            "cnamed_update_commit_seconds_total",
            "Time from taking a group of UPDATEs to answering them, summed.",
            stats.commit_micros.get() as f64 / 1e6,
        ),
        (
            "cnamed_journal_write_errors_total",
            "Journal appends that failed; their UPDATEs were answered SERVFAIL.",
            stats.journal_errors.get() as f64,
        ),
    ];
    for (name, help, value) in counters {
        single(out, name, "counter", help, value);
    }
    histogram::family(
        out,
        "cnamed_update_commit_duration_seconds",
        "Commits of a group of UPDATEs: from taking the group to its answers sent, the journal append and fsync included.",
        &[(String::new(), &stats.commit_seconds)],
    );
    let gauges = [
        (
            "cnamed_journal_bytes",
            "Bytes of the journal (--journal).",
            stats.journal_bytes.get(),
        ),
        (
            "cnamed_journal_records",
            "Records in the journal, one per UPDATE that changed the zone.",
            stats.journal_records.get(),
        ),
        (
            "cnamed_journal_oldest_serial",
            "Serial of the journal's first record; 0 while it is empty.",
            stats.journal_oldest_serial.get(),
        ),
    ];
    for (name, help, value) in gauges {
        single(out, name, "gauge", help, value);
    }
}
