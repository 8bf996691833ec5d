//! AXFR (RFC 5936) responses streamed straight from a snapshot: the SOA, the NS set, every
//! CNAME of every app and service, the SOA again, packed into as few messages as fit. Nothing
//! is collected first: a transfer holds an iterator over the snapshot and one message buffer,
//! whatever the zone's size.
//!
//! Every message copies the question (RFC 5936 §2.2.1 allows it after the first, and the
//! first must), and names are compressed: the apex is written once per message, and every
//! owner is its `{service}-{app}` label and a pointer to it.

use super::message::{owner_label, target_suffixes, Message, Stream, Suffix, MAX_OWNER_LABEL};
use crate::snapshot::{AppKey, Snapshot};

/// Where a transfer is in the zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Soa,
    Ns(usize),
    Apps,
    FinalSoa,
    Done,
}

/// One AXFR in progress over `snapshot`, message by message.
pub struct Axfr<'s, I> {
    snapshot: &'s Snapshot,
    apps: I,
    /// The app whose CNAMEs are being written, and the next service to write.
    current: Option<(AppKey<'s>, u32, usize)>,
    stage: Stage,
    /// Records written so far, for the metrics.
    records: u64,
    /// For each CNAME record (as the snapshot indexes them), where its target can point
    /// into the apex.
    suffixes: Vec<Option<Suffix>>,
}

/// An AXFR over every app of `snapshot`.
pub fn axfr(snapshot: &Snapshot) -> Axfr<'_, impl Iterator<Item = (AppKey<'_>, u32)> + '_> {
    let services = snapshot.zone.services.len();
    let records = (0..snapshot.cluster_count() * services)
        .map(|i| snapshot.cname_record((i / services) as u32, i % services));
    let suffixes = target_suffixes(records, &snapshot.zone.apex);
    Axfr {
        snapshot,
        apps: snapshot.app_entries(),
        current: None,
        stage: Stage::Soa,
        records: 0,
        suffixes,
    }
}

impl<'s, I: Iterator<Item = (AppKey<'s>, u32)>> Stream for Axfr<'s, I> {
    fn records(&self) -> u64 {
        self.records
    }

    fn next_message(&mut self, id: u16, question: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.stage == Stage::Done {
            return None;
        }
        let mut message = Message::start(out, id, question, &self.snapshot.zone.apex)?;
        let zone = &self.snapshot.zone;
        loop {
            let written = match self.stage {
                Stage::Soa | Stage::FinalSoa => message.soa(self.snapshot.soa_answer()),
                Stage::Ns(i) => match zone.ns_record(i) {
                    Some(record) => message.apex_record(record),
                    None => {
                        self.stage = Stage::Apps;
                        continue;
                    }
                },
                Stage::Apps => {
                    if self.current.is_none() {
                        self.current = self.apps.next().map(|(app, cluster)| (app, cluster, 0));
                    }
                    let Some((app, cluster, service)) = self.current else {
                        self.stage = Stage::FinalSoa;
                        continue;
                    };
                    let Some(record) = self.snapshot.cname_record(cluster, service) else {
                        self.current = None;
                        continue;
                    };
                    let mut label = [0u8; MAX_OWNER_LABEL];
                    let label = owner_label(&zone.services[service], app, &mut label);
                    let services = zone.services.len();
                    let suffix = self.suffixes[cluster as usize * services + service];
                    message.cname(label, record, suffix)
                }
                Stage::Done => break,
            };
            if !written {
                break;
            }
            self.records += 1;
            self.stage = match self.stage {
                Stage::Soa => Stage::Ns(0),
                Stage::Ns(i) => Stage::Ns(i + 1),
                Stage::FinalSoa => Stage::Done,
                Stage::Apps => {
                    if let Some((_, _, service)) = &mut self.current {
                        *service += 1;
                        if *service == zone.services.len() {
                            self.current = None;
                        }
                    }
                    Stage::Apps
                }
                Stage::Done => Stage::Done,
            };
            if self.stage == Stage::Done {
                break;
            }
        }
        let finished = message.finish();
        if finished.is_none() {
            // Not even one record fits: cannot happen with MAX_MESSAGE, but never loop.
            self.stage = Stage::Done;
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use hickory_proto::op::Message as Decoded;
    use hickory_proto::rr::{Record, RecordType};
    use hickory_proto::serialize::binary::BinDecodable;
    use hickory_proto::serialize::txt::Parser;

    use super::*;
    use crate::config::Config;
    use crate::xfr::outbound::message::MAX_MESSAGE;

    fn snapshot(apps: usize) -> Snapshot {
        let config = Config {
            ns: vec!["ns1.example.com".into(), "ns2.example.net".into()],
            ..Config::default()
        };
        let entries: Vec<String> = (0..apps)
            .map(|i| match i % 5 {
                0 => format!(r#""App-{i}": "eu""#),
                _ => format!(r#""{i}": "mt{}""#, i % 3),
            })
            .collect();
        let json = format!(r#"{{"serial": 77, "apps": {{{}}}}}"#, entries.join(","));
        Snapshot::from_json(json.as_bytes(), &config.zone().unwrap()).unwrap()
    }

    /// The question as a client sends it: the apex in its own case, AXFR, IN.
    fn question() -> Vec<u8> {
        let mut question = b"\x04APPS\x07example\x03com\x00".to_vec();
        question.extend_from_slice(&[0, 252, 0, 1]);
        question
    }

    /// A record as compared. hickory's zone parser gives an SOA the TTL of its EXPIRE field
    /// whatever the file says, so the SOA's TTL is checked apart.
    fn key(record: &Record) -> (String, RecordType, String, u32) {
        let ttl = match record.record_type() {
            RecordType::SOA => 0,
            _ => record.ttl(),
        };
        (
            record.name().to_lowercase().to_ascii(),
            record.record_type(),
            record
                .data()
                .map(|d| d.to_string().to_lowercase())
                .unwrap_or_default(),
            ttl,
        )
    }

    /// Every message decodes (hickory), carries the question, ID and AA, fits the limit; the
    /// records are SOA, NS, every CNAME, SOA; and they are exactly the zone file's.
    #[test]
    fn streams_the_zone_file_record_set() {
        let snapshot = snapshot(5000);
        let mut transfer = axfr(&snapshot);
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut records = Vec::new();
        let mut messages = 0;
        while let Some(len) = transfer.next_message(0xBEEF, &question(), &mut buf) {
            assert!(len <= MAX_MESSAGE);
            let message = Decoded::from_bytes(&buf[..len]).expect("hickory decodes it");
            assert_eq!(message.id(), 0xBEEF);
            assert!(message.authoritative());
            assert_eq!(message.queries().len(), 1);
            assert_eq!(message.queries()[0].query_type(), RecordType::AXFR);
            records.extend(message.answers().iter().cloned());
            messages += 1;
        }
        assert!(messages > 1, "{messages} messages");
        assert_eq!(transfer.records(), records.len() as u64);
        assert_eq!(records.len(), 1 + 2 + 5000 * 3 + 1);
        assert_eq!(records[0].record_type(), RecordType::SOA);
        assert_eq!(records[0].ttl(), crate::snapshot::APEX_TTL);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        assert_eq!(records[1].record_type(), RecordType::NS);
        assert!(records[3..records.len() - 1]
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME));

        let mut text = Vec::new();
        crate::zonefile::write(&snapshot, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(&format!("@ {} IN SOA ", crate::snapshot::APEX_TTL)));
        let (_, zone) = Parser::new(text.as_str(), None, None).parse().unwrap();
        let expected: BTreeSet<_> = zone
            .values()
            .flat_map(|set| set.records_without_rrsigs())
            .map(key)
            .collect();
        let transferred: BTreeSet<_> = records.iter().map(key).collect();
        assert_eq!(transferred.len(), records.len() - 1, "only the SOA repeats");
        let missing: Vec<_> = expected.difference(&transferred).take(3).collect();
        let extra: Vec<_> = transferred.difference(&expected).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}, extra {extra:?}"
        );
    }

    #[test]
    fn an_empty_zone_is_soa_ns_soa_in_one_message() {
        let snapshot = snapshot(0);
        let mut transfer = axfr(&snapshot);
        let mut buf = vec![0u8; MAX_MESSAGE];
        let len = transfer.next_message(1, &question(), &mut buf).unwrap();
        let message = Decoded::from_bytes(&buf[..len]).unwrap();
        let types: Vec<_> = message.answers().iter().map(Record::record_type).collect();
        use RecordType::{NS, SOA};
        assert_eq!(types, [SOA, NS, NS, SOA]);
        assert_eq!(transfer.next_message(1, &question(), &mut buf), None);
    }
}
