//! Histograms in Prometheus' text form: cumulative `_bucket`s by upper bound `le`, `_sum`
//! and `_count`.

use std::fmt::Write;

use crate::histogram::{Histogram, BOUNDS};
use crate::xfr::TransferType;

/// A histogram family: its help and type lines, then each histogram with its labels
/// (`key="value"` pairs, or empty).
pub(super) fn family(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: &[(String, &Histogram)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, histogram) in histograms {
        samples(out, name, labels, histogram);
    }
}

/// One histogram per transfer type (AXFR, IXFR), labelled `type`.
pub(super) fn by_type(histograms: &[Histogram; 2]) -> Vec<(String, &Histogram)> {
    TransferType::NAMES
        .iter()
        .zip(histograms)
        .map(|(kind, histogram)| (format!("type=\"{kind}\""), histogram))
        .collect()
}

fn samples(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let separator = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0u64;
    for (i, count) in histogram.counts().into_iter().enumerate() {
        cumulative += count;
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
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", histogram.sum_seconds());
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
