//! The Prometheus text exposition format (0.0.4): families with their help and type lines.

use std::fmt::Write;

use super::counters::{Counter, WorkerCounters};

/// One metric family: its name, type and help line, then one sample per label value.
pub(super) fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, String)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A counter family with one label: `pick` gives a worker's counters in the order of
/// `values`.
pub(super) struct Labelled<'a> {
    pub(super) name: &'a str,
    pub(super) help: &'a str,
    pub(super) label: &'a str,
    pub(super) values: &'a [&'a str],
    pub(super) pick: fn(&WorkerCounters) -> &[Counter],
}

impl Labelled<'_> {
    /// Writes the family, each value summed over the workers.
    pub(super) fn write(&self, out: &mut String, workers: &[&WorkerCounters]) {
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
pub(super) fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl ToString) {
    family(out, name, kind, help, &[(String::new(), value.to_string())]);
}
