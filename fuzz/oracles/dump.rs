//! The oracle of the `dump` fuzz target, shared with tests/fuzz_corpus.rs: loading arbitrary
//! bytes never panics; an accepted dump yields only valid names, its zone file parses with
//! hickory-proto's zone parser, and every name in that zone file is answered with its record.

use cnamed::answer::{respond, Transport};
use cnamed::snapshot::{Snapshot, Zone};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::txt::Parser;

/// How many CNAMEs of an accepted dump are queried back (the fuzzer's dumps are small).
const CHECKED_NAMES: usize = 64;

pub(crate) fn check(json: &[u8], zone: &Zone) {
    let Ok(snapshot) = Snapshot::from_json(json, zone) else {
        return;
    };
    let mut text = Vec::new();
    cnamed::zonefile::write(&snapshot, &mut text).unwrap();
    let text = String::from_utf8(text).expect("the zone file is ASCII");
    let (_, records) = Parser::new(text.as_str(), None, None)
        .parse()
        .unwrap_or_else(|e| panic!("zone file does not parse: {e}\n{text}"));
    let cnames: Vec<_> = records
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .filter(|r| r.record_type() == RecordType::CNAME)
        .collect();
    assert_eq!(cnames.len(), snapshot.app_count() * zone.services.len());
    let mut out = vec![0u8; 65535];
    for record in cnames.into_iter().take(CHECKED_NAMES) {
        let mut query = Message::new();
        query.add_query(hickory_proto::op::Query::query(
            record.name().clone(),
            RecordType::A,
        ));
        let packet = query.to_vec().unwrap();
        let len = respond(&packet, &snapshot, Transport::Tcp, &mut out).expect("a reply");
        let reply = Message::from_vec(&out[..len]).expect("the reply decodes");
        let answer = reply.answers().first().expect("an answer");
        assert!(matches!(answer.data(), Some(RData::CNAME(_))));
        assert_eq!(answer.data(), record.data(), "{}", record.name());
    }
}
