//! Durations of work off the query path (reloads, transfers, commits) counted in buckets, as
//! Prometheus histograms hold them (rendered by `metrics`). Several threads may observe one
//! (four transfer threads), so each count is a `fetch_add`; no worker ever touches one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds: from an fsync on a fast disk (100 µs) to a 100M-app load or a
/// slow transfer (5 min). One set for every histogram, so that panels and alerts read alike.
pub const BOUNDS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Durations observed: a count per bucket (the last past every bound), and their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BOUNDS.partition_point(|&bound| bound < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The count of each bucket, not cumulative (the last past every bound).
    pub fn counts(&self) -> [u64; BOUNDS.len() + 1] {
        self.counts
            .each_ref()
            .map(|count| count.load(Ordering::Relaxed))
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}
