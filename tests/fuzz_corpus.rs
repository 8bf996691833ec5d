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
