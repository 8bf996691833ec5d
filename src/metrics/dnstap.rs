//! dnstap (`--dnstap`): frames written to the collector and frames lost, by why.

use std::sync::Arc;

use super::counters::Counter;
use super::text::{family, single};

/// Written by the dnstap writer thread, except `dropped_slow`: one counter per worker.
#[derive(Debug)]
pub struct DnstapStats {
    /// Frames written whole to the collector.
    pub sent: Counter,
    /// Frames lost because no collector was connected (or it went away mid-write).
    pub dropped_absent: Counter,
    /// Frames a worker dropped for want of an empty chunk: the collector is slower than
    /// the queries. Each worker writes its own.
    dropped_slow: Vec<Arc<Counter>>,
    /// 1 while a collector is connected.
    pub connected: Counter,
    /// Connections made (the first, then every reconnection).
    pub connections: Counter,
}

impl DnstapStats {
    pub fn new(dropped_slow: Vec<Arc<Counter>>) -> Self {
        Self {
            sent: Counter::default(),
            dropped_absent: Counter::default(),
            dropped_slow,
            connected: Counter::default(),
            connections: Counter::default(),
        }
    }

    /// Frames the workers dropped while the collector was slow, summed.
    pub fn dropped_slow(&self) -> u64 {
        self.dropped_slow
            .iter()
            .map(|counter| counter.get())
            .fold(0, u64::wrapping_add)
    }
}

pub(super) fn render(stats: &DnstapStats, out: &mut String) {
    single(
        out,
        "cnamed_dnstap_frames_total",
        "counter",
        "dnstap frames (one per query or response logged) written to the collector.",
        stats.sent.get(),
    );
    family(
        out,
        "cnamed_dnstap_dropped_frames_total",
        "counter",
        "dnstap frames lost: the collector was slower than the queries (collector_slow), or not connected (collector_absent).",
        &[
            (
                "{reason=\"collector_slow\"}".into(),
                stats.dropped_slow().to_string(),
            ),
            (
                "{reason=\"collector_absent\"}".into(),
                stats.dropped_absent.get().to_string(),
            ),
        ],
    );
    single(
        out,
        "cnamed_dnstap_connected",
        "gauge",
        "1 while the dnstap collector (--dnstap) is connected.",
        stats.connected.get(),
    );
    single(
        out,
        "cnamed_dnstap_connections_total",
        "counter",
        "Connections made to the dnstap collector, the first and every reconnection.",
        stats.connections.get(),
    );
}
