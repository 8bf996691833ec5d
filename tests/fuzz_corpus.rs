//! Every file of the fuzz corpus and every input that ever crashed a fuzz target, replayed
//! through the answer path on stable Rust, with the fuzz target's own oracle.

use std::path::Path;

use cnamed::config::Config;

#[path = "../fuzz/oracles/query.rs"]
mod oracle;

#[path = "../fuzz/oracles/dump.rs"]
mod dump_oracle;

fn inputs(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect()
}

#[test]
fn query_corpus_and_regressions() {
    let snapshot = oracle::sample_snapshot();
    let mut seen = 0;
    for folder in ["seeds/query", "corpus/query", "regressions/query"] {
        for (name, packet) in inputs(folder) {
            let outcome = std::panic::catch_unwind(|| oracle::check(&packet, snapshot));
            assert!(outcome.is_ok(), "{name} fails the oracle");
            seen += 1;
        }
    }
    assert!(seen > 100, "only {seen} inputs: is the corpus there?");
}

#[test]
fn dump_corpus_and_regressions() {
    let zone = Config::default().zone().unwrap();
    let mut seen = 0;
    for folder in ["seeds/dump", "corpus/dump", "regressions/dump"] {
        for (name, json) in inputs(folder) {
            let outcome = std::panic::catch_unwind(|| dump_oracle::check(&json, &zone));
            assert!(outcome.is_ok(), "{name} fails the oracle");
            seen += 1;
        }
    }
    assert!(seen >= 7, "only {seen} inputs: are the seeds there?");
}

#[path = "../fuzz/oracles/transfer.rs"]
mod transfer_oracle;

/// Transfers written by our own AXFR and IXFR writers, framed as the `transfer` target reads
/// them: the first byte picks AXFR (0) or IXFR (1), then each message after its length.
fn written_transfers() -> Vec<(String, Vec<u8>)> {
    use cnamed::xfr::outbound::axfr::axfr;
    use cnamed::xfr::outbound::history::Delta;
    use cnamed::xfr::outbound::ixfr::ixfr;
    use cnamed::xfr::outbound::message::{Stream, MAX_MESSAGE};
    use std::sync::Arc;

    let base = transfer_oracle::base_snapshot();
    let zone = &base.zone;
    let next = cnamed::snapshot::Snapshot::from_apps(
        2,
        [
            ("1", "c2"),
            ("3", "c1"),
            ("app-x", "c2"),
            ("app-y", "c9"),
            ("44", "c0"),
        ],
        zone,
    )
    .unwrap();
    let deltas = [Arc::new(Delta::between(base, &next))];
    let mut question = zone.apex.clone();
    question.extend_from_slice(&[0, 251, 0, 1]);
    let frame = |mode: u8, mut stream: Box<dyn Stream + '_>| {
        let mut input = vec![mode];
        let mut buf = vec![0u8; MAX_MESSAGE];
        while let Some(len) = stream.next_message(7, &question, &mut buf) {
            input.extend_from_slice(&(len as u16).to_be_bytes());
            input.extend_from_slice(&buf[..len]);
        }
        input
    };
    vec![
        ("axfr".into(), frame(0, Box::new(axfr(&next)))),
        (
            "ixfr-incremental".into(),
            frame(1, Box::new(ixfr(&next, &deltas))),
        ),
        (
            "ixfr-up-to-date".into(),
            frame(1, Box::new(ixfr(base, &[]))),
        ),
        ("ixfr-full".into(), frame(1, Box::new(axfr(&next)))),
    ]
}

#[test]
fn transfer_corpus_and_regressions() {
    let base = transfer_oracle::base_snapshot();
    let written = written_transfers();
    // The incremental one really applies: the oracle's model comparison runs.
    let (_, incremental) = &written[1];
    let mut reader = cnamed::xfr::inbound::reader::TransferReader::ixfr(&base.zone, 1).unwrap();
    let len = usize::from(u16::from_be_bytes([incremental[1], incremental[2]]));
    assert!(reader.read_message(&incremental[3..3 + len]).unwrap());
    let cnamed::xfr::inbound::reader::Received::Incremental { changes, .. } =
        reader.finish().unwrap()
    else {
        panic!("not incremental")
    };
    let resolved = cnamed::xfr::inbound::resolve::resolve(base, &changes).unwrap();
    assert_eq!(resolved.changes.len(), 5, "{resolved:?}");
    if let Some(dir) = std::env::var_os("CNAMED_WRITE_TRANSFER_SEEDS") {
        // How fuzz/seeds/transfer/ was made.
        for (name, input) in &written {
            std::fs::write(Path::new(&dir).join(name), input).unwrap();
        }
    }
    let mut seen = 0;
    let folders = ["seeds/transfer", "corpus/transfer", "regressions/transfer"];
    // A folder not there yet (no finding ever) has nothing to replay.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let present = folders.into_iter().filter(|f| root.join(f).is_dir());
    let stored = present.flat_map(inputs);
    for (name, input) in written.into_iter().chain(stored) {
        let outcome = std::panic::catch_unwind(|| transfer_oracle::check(&input, base));
        assert!(outcome.is_ok(), "{name} fails the oracle");
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} inputs: are the seeds there?");
}
