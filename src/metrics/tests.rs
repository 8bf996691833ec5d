//! The exposition checked against the Prometheus conventions.

use super::counters::*;
use super::server::render;
use crate::answer::{DropReason, Transport};
use crate::wire::{FormErrCause, Rcode, Rtype};

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
