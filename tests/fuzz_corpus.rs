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

#[path = "../fuzz/oracles/dump_fast.rs"]
mod dump_fast_oracle;

/// The fast dump reader against the general one: the `dump_fast` corpus, every input of the
/// `dump` target's as raw bytes, and dump-shaped text from pseudo-random recipes.
#[test]
fn dump_fast_corpus_and_regressions() {
    let zone = Config::default().zone().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let folders = [
        "seeds/dump_fast",
        "corpus/dump_fast",
        "regressions/dump_fast",
    ];
    let present = folders.into_iter().filter(|f| root.join(f).is_dir());
    let mut inputs: Vec<(String, Vec<u8>)> = present.flat_map(inputs).collect();
    for folder in ["seeds/dump", "corpus/dump", "regressions/dump"] {
        for (name, json) in self::inputs(folder) {
            inputs.push((name, [&[1u8][..], &json].concat()));
        }
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..2000 {
        let recipe: Vec<u8> = (0..round % 90)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        inputs.push((
            format!("recipe {recipe:?}"),
            [&[(round % 80) as u8 * 2][..], &recipe].concat(),
        ));
    }
    let mut seen = 0;
    for (name, input) in inputs {
        let outcome = std::panic::catch_unwind(|| dump_fast_oracle::check(&input, &zone));
        assert!(outcome.is_ok(), "{name} fails the oracle");
        seen += 1;
    }
    assert!(seen >= 4000, "only {seen} inputs: is the corpus there?");
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

#[path = "../fuzz/oracles/update.rs"]
mod update_oracle;

/// UPDATE messages built by hickory-proto: adds, moves, the three deletions, a serial, a
/// prerequisite, and ones the policy refuses. The seeds of fuzz/seeds/update/.
fn written_updates() -> Vec<(String, Vec<u8>)> {
    use hickory_proto::op::update_message::{self, UpdateMessage as _};
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{CNAME, SOA};
    use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
    use hickory_proto::serialize::binary::BinEncodable;

    let name = |text: &str| Name::from_ascii(text).unwrap();
    let cname = |service: &str, app: &str, cluster: &str| {
        Record::from_rdata(
            name(&format!("{service}-{app}.apps.example.com.")),
            300,
            RData::CNAME(CNAME(name(&format!("{service}-{cluster}.example.com.")))),
        )
    };
    let set = |app: &str, cluster: &str| -> Vec<Record> {
        ["ws", "sockjs", "api"]
            .iter()
            .map(|s| cname(s, app, cluster))
            .collect()
    };
    let empty = |owner: &str, rtype: RecordType, class: DNSClass| {
        let mut record = Record::with(name(owner), rtype, 0);
        record.set_dns_class(class);
        record
    };
    let message = |prerequisites: Vec<Record>, updates: Vec<Record>| {
        let mut message: Message = update_message::create(
            RecordSet::from(cname("ws", "placeholder", "c0")),
            name("apps.example.com."),
            false,
        );
        message.take_answers();
        message.take_name_servers();
        for record in prerequisites {
            message.add_pre_requisite(record);
        }
        for record in updates {
            message.add_update(record);
        }
        message.to_bytes().unwrap()
    };
    let deletes = |app: &str, rtype: RecordType| -> Vec<Record> {
        ["ws", "sockjs", "api"]
            .iter()
            .map(|s| {
                empty(
                    &format!("{s}-{app}.apps.example.com."),
                    rtype,
                    DNSClass::ANY,
                )
            })
            .collect()
    };
    let mut move_1 = deletes("1", RecordType::CNAME);
    move_1.extend(set("1", "c9"));
    let delete_records: Vec<Record> = set("2", "c1")
        .into_iter()
        .map(|mut r| {
            r.set_dns_class(DNSClass::NONE).set_ttl(0);
            r
        })
        .collect();
    let mut with_soa = set("new-app", "c1");
    let soa = SOA::new(
        name("ns1.example.com."),
        name("hostmaster.apps.example.com."),
        77,
        3600,
        600,
        604_800,
        60,
    );
    with_soa.push(Record::from_rdata(
        name("apps.example.com."),
        3600,
        RData::SOA(soa),
    ));
    let mut partial = set("9", "c0");
    partial.pop();
    let absent = empty("ws-5.apps.example.com.", RecordType::ANY, DNSClass::NONE);
    vec![
        ("add".into(), message(vec![], set("5", "c0"))),
        ("move".into(), message(vec![], move_1)),
        (
            "delete-names".into(),
            message(vec![], deletes("app-x", RecordType::ANY)),
        ),
        ("delete-records".into(), message(vec![], delete_records)),
        ("soa-serial".into(), message(vec![], with_soa)),
        ("prerequisite".into(), message(vec![absent], set("5", "c0"))),
        ("partial".into(), message(vec![], partial)),
    ]
}

#[test]
fn update_corpus_and_regressions() {
    let base = update_oracle::base_snapshot();
    let written = written_updates();
    if let Some(dir) = std::env::var_os("CNAMED_WRITE_UPDATE_SEEDS") {
        // How fuzz/seeds/update/ was made.
        for (name, input) in &written {
            std::fs::write(Path::new(&dir).join(name), input).unwrap();
        }
    }
    let folders = ["seeds/update", "corpus/update", "regressions/update"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let present = folders.into_iter().filter(|f| root.join(f).is_dir());
    let stored = present.flat_map(inputs);
    let mut seen = 0;
    for (name, input) in written.into_iter().chain(stored) {
        let outcome = std::panic::catch_unwind(|| update_oracle::check(&input, base));
        assert!(outcome.is_ok(), "{name} fails the oracle");
        seen += 1;
    }
    assert!(seen >= 14, "only {seen} inputs: are the seeds there?");
}
