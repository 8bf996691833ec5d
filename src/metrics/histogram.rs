//! Histograms of how long work off the query path took (reloads, transfers, commits), in
//! Prometheus' form: cumulative `_bucket`s by upper bound `le`, `_sum` and `_count`.
//! Several threads may observe one (four transfer threads), so each count is a `fetch_add`;
//! none is ever touched by a worker.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds: from an fsync on a fast disk (100 µs) to a 100M-app load or a
/// slow transfer (5 min). One set for every histogram, so that panels and alerts read alike.
const BOUNDS: [f64; 14] = [
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

    /// Writes the samples of this histogram with `labels` (`key="value"` pairs, or empty).
    fn write_samples(&self, out: &mut String, name: &str, labels: &str) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let _ = match BOUNDS.get(i) {
                Some(bound) => writeln!(
                    out,
                    "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}"
                ),
                None => writeln!(
                    out,
                    "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {cumulative}"
                ),
            };
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// A histogram family: its help and type lines, then each histogram with its labels.
pub(super) fn family(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: &[(String, &Histogram)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, histogram) in histograms {
        histogram.write_samples(out, name, labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_with_bounds_inclusive() {
        let histogram = Histogram::default();
        for micros in [50, 100, 101, 2_000_000, 400_000_000] {
            histogram.observe(Duration::from_micros(micros));
        }
        let mut out = String::new();
        family(
            &mut out,
            "x_seconds",
            "Test.",
            &[("type=\"AXFR\"".into(), &histogram)],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# HELP x_seconds Test.");
        assert_eq!(lines[1], "# TYPE x_seconds histogram");
        // 50 µs and 100 µs (a bound is "less than or equal").
        assert_eq!(lines[2], "x_seconds_bucket{type=\"AXFR\",le=\"0.0001\"} 2");
        assert_eq!(lines[3], "x_seconds_bucket{type=\"AXFR\",le=\"0.0005\"} 3");
        assert!(lines.contains(&"x_seconds_bucket{type=\"AXFR\",le=\"1\"} 3"));
        assert!(lines.contains(&"x_seconds_bucket{type=\"AXFR\",le=\"5\"} 4"));
        assert!(lines.contains(&"x_seconds_bucket{type=\"AXFR\",le=\"300\"} 4"));
        assert!(lines.contains(&"x_seconds_bucket{type=\"AXFR\",le=\"+Inf\"} 5"));
        assert!(lines.contains(&"x_seconds_sum{type=\"AXFR\"} 402.000251"));
        assert_eq!(*lines.last().unwrap(), "x_seconds_count{type=\"AXFR\"} 5");
        let mut plain = String::new();
        family(
            &mut plain,
            "y_seconds",
            "Test.",
            &[(String::new(), &Histogram::default())],
        );
        assert!(plain.contains("\ny_seconds_bucket{le=\"+Inf\"} 0\ny_seconds_sum 0\n"));
    }
}
