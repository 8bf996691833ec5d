//! IXFR (RFC 1995) responses: the current SOA, then for each reload since the client's serial
//! the old SOA, the CNAMEs removed, the new SOA, the CNAMEs added; the current SOA again. A
//! client already at the current serial gets that SOA alone. Written with the messages of
//! AXFR (`message`), from the history's deltas.

use std::sync::Arc;

use super::history::{Delta, Side};
use super::message::{owner_label, Message, Stream, MAX_OWNER_LABEL};
use crate::snapshot::Snapshot;

/// Bytes from the end of an SOA record to its SERIAL: SERIAL, REFRESH, RETRY, EXPIRE,
/// MINIMUM.
const SERIAL_FROM_END: usize = 20;

/// Where an IXFR is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The current SOA, first.
    Current,
    /// The SOA a delta starts from.
    From(usize),
    /// The delta's removed apps: app, service.
    Removed(usize, usize, usize),
    /// The SOA a delta ends at.
    To(usize),
    Added(usize, usize, usize),
    /// The current SOA, closing.
    Last,
    Done,
}

/// One IXFR in progress, message by message.
pub struct Ixfr<'a> {
    snapshot: &'a Snapshot,
    deltas: &'a [Arc<Delta>],
    stage: Stage,
    records: u64,
}

/// The IXFR from the serial the first of `deltas` starts at to `snapshot`'s (the deltas in
/// order, the last ending at the snapshot's serial); no deltas: the current SOA alone.
pub fn ixfr<'a>(snapshot: &'a Snapshot, deltas: &'a [Arc<Delta>]) -> Ixfr<'a> {
    Ixfr {
        snapshot,
        deltas,
        stage: Stage::Current,
        records: 0,
    }
}

/// The SOA record (TYPE to RDATA) of `snapshot` with `serial` in place of its own.
fn soa_at(snapshot: &Snapshot, serial: u32, buf: &mut [u8; 512]) -> Option<usize> {
    let soa = snapshot.soa_answer();
    let at = soa.len().checked_sub(SERIAL_FROM_END)?;
    buf.get_mut(..soa.len())?.copy_from_slice(soa);
    buf[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    Some(soa.len())
}

impl Ixfr<'_> {
    /// The stage after `stage`, once its record is written (or there is none).
    fn after(&self, stage: Stage) -> Stage {
        let services = self.snapshot.zone.services.len();
        let next_delta = |d: usize| match d + 1 < self.deltas.len() {
            true => Stage::From(d + 1),
            false => Stage::Last,
        };
        match stage {
            Stage::Current if self.deltas.is_empty() => Stage::Done,
            Stage::Current => Stage::From(0),
            Stage::From(d) => Stage::Removed(d, 0, 0),
            Stage::Removed(d, app, service) if service + 1 < services => {
                Stage::Removed(d, app, service + 1)
            }
            Stage::Removed(d, app, _) if app + 1 < self.deltas[d].removed.apps.len() => {
                Stage::Removed(d, app + 1, 0)
            }
            Stage::Removed(d, ..) => Stage::To(d),
            Stage::To(d) => Stage::Added(d, 0, 0),
            Stage::Added(d, app, service) if service + 1 < services => {
                Stage::Added(d, app, service + 1)
            }
            Stage::Added(d, app, _) if app + 1 < self.deltas[d].added.apps.len() => {
                Stage::Added(d, app + 1, 0)
            }
            Stage::Added(d, ..) => next_delta(d),
            Stage::Last | Stage::Done => Stage::Done,
        }
    }

    /// Writes the record of `stage` if it has one; `Some(false)` when it does not fit.
    fn write(&self, stage: Stage, message: &mut Message<'_, '_>) -> Option<bool> {
        let mut soa = [0u8; 512];
        let serial = match stage {
            Stage::Current | Stage::Last => Some(self.snapshot.serial),
            Stage::From(d) => Some(self.deltas[d].from),
            Stage::To(d) => Some(self.deltas[d].to),
            _ => None,
        };
        if let Some(serial) = serial {
            let len = soa_at(self.snapshot, serial, &mut soa)?;
            return Some(message.soa(&soa[..len]));
        }
        let (side, app, service): (&Side, usize, usize) = match stage {
            Stage::Removed(d, app, service) => (&self.deltas[d].removed, app, service),
            Stage::Added(d, app, service) => (&self.deltas[d].added, app, service),
            _ => return None,
        };
        let (key, cluster) = side.apps.get(app)?;
        let zone = &self.snapshot.zone;
        let services = zone.services.len();
        let record = side.cname(*cluster, service, services)?;
        let mut label = [0u8; MAX_OWNER_LABEL];
        let label = owner_label(&zone.services[service], key.key(), &mut label);
        let suffix = side.suffixes[*cluster as usize * services + service];
        Some(message.cname(label, record, suffix))
    }
}

impl Stream for Ixfr<'_> {
    fn records(&self) -> u64 {
        self.records
    }

    fn next_message(&mut self, id: u16, question: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.stage == Stage::Done {
            return None;
        }
        let mut message = Message::start(out, id, question, &self.snapshot.zone.apex)?;
        while self.stage != Stage::Done {
            match self.write(self.stage, &mut message) {
                Some(false) => break,
                Some(true) => self.records += 1,
                // Nothing to write here (a delta with no apps on one side).
                None => {}
            }
            self.stage = self.after(self.stage);
        }
        let finished = message.finish();
        if finished.is_none() {
            self.stage = Stage::Done;
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use hickory_proto::op::Message as Decoded;
    use hickory_proto::rr::{RData, Record, RecordType};
    use hickory_proto::serialize::binary::BinDecodable;

    use super::*;
    use crate::xfr::outbound::axfr::axfr;
    use crate::xfr::outbound::message::MAX_MESSAGE;

    fn snapshot(serial: u32, apps: impl Iterator<Item = (String, String)>) -> Snapshot {
        let entries: Vec<String> = apps.map(|(a, c)| format!("{a:?}: {c:?}")).collect();
        let json = format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        );
        Snapshot::from_json(json.as_bytes(), &crate::testing::zone()).unwrap()
    }

    /// Every record of a stream, decoded by hickory, with the count of messages.
    fn run(mut stream: impl Stream, buf_len: usize) -> (Vec<Record>, usize) {
        let mut question = b"\x04apps\x07example\x03com\x00".to_vec();
        question.extend_from_slice(&[0, 251, 0, 1]);
        let mut buf = vec![0u8; buf_len];
        let (mut records, mut messages) = (Vec::new(), 0);
        while let Some(len) = stream.next_message(5, &question, &mut buf) {
            let message = Decoded::from_bytes(&buf[..len]).expect("hickory decodes it");
            assert_eq!(message.queries()[0].query_type(), RecordType::IXFR);
            records.extend(message.answers().iter().cloned());
            messages += 1;
        }
        assert_eq!(stream.records(), records.len() as u64);
        (records, messages)
    }

    fn serial(record: &Record) -> Option<u32> {
        match record.data() {
            Some(RData::SOA(soa)) => Some(soa.serial()),
            _ => None,
        }
    }

    fn key(record: &Record) -> (String, String) {
        let data = record.data().map(|d| d.to_string()).unwrap_or_default();
        (record.name().to_lowercase().to_ascii(), data.to_lowercase())
    }

    /// Two reloads' deltas, applied to the first zone's records as RFC 1995 says, give the
    /// last zone's records exactly (compared with its AXFR); small messages split it.
    #[test]
    fn applying_the_sequence_gives_the_new_zone() {
        let apps = |n: usize, shift: usize, skip: usize| {
            (0..n)
                .filter(move |i| i % 10 != skip)
                .map(move |i| (format!("{}", 1000 + i), format!("mt{}", (i + shift) % 4)))
        };
        let named = |i: usize| (format!("app-{i}"), "eu".to_string());
        let s1 = snapshot(10, apps(500, 0, 1).chain((0..5).map(named)));
        let s2 = snapshot(11, apps(520, 0, 2).chain((1..6).map(named)));
        let s3 = snapshot(12, apps(520, 1, 2).chain((1..6).map(named)));
        let deltas = [
            Arc::new(Delta::between(&s1, &s2)),
            Arc::new(Delta::between(&s2, &s3)),
        ];
        for buf_len in [MAX_MESSAGE, 700] {
            let (records, messages) = run(ixfr(&s3, &deltas), buf_len);
            assert!(buf_len == MAX_MESSAGE || messages > 10, "{messages}");
            let soas: Vec<u32> = records.iter().filter_map(serial).collect();
            assert_eq!(soas, [12, 10, 11, 11, 12, 12]);
            assert_eq!(serial(&records[0]), Some(12));
            assert_eq!(serial(records.last().unwrap()), Some(12));
            let (zone1, _) = run(axfr(&s1), MAX_MESSAGE);
            let mut zone: BTreeSet<_> = zone1
                .iter()
                .filter(|r| serial(r).is_none())
                .map(key)
                .collect();
            // Each difference: SOA (old), deletions, SOA (new), additions.
            let mut deleting = false;
            for record in &records[1..records.len() - 1] {
                if serial(record).is_some() {
                    deleting = !deleting;
                    continue;
                }
                if deleting {
                    assert!(zone.remove(&key(record)), "{record} was not there");
                } else {
                    assert!(zone.insert(key(record)), "{record} was there already");
                }
            }
            let (zone3, _) = run(axfr(&s3), MAX_MESSAGE);
            let expected: BTreeSet<_> = zone3
                .iter()
                .filter(|r| serial(r).is_none())
                .map(key)
                .collect();
            assert_eq!(zone, expected);
        }
    }

    #[test]
    fn up_to_date_is_one_soa() {
        let s = snapshot(7, std::iter::once(("1".to_string(), "eu".to_string())));
        let (records, messages) = run(ixfr(&s, &[]), MAX_MESSAGE);
        assert_eq!((records.len(), messages), (1, 1));
        assert_eq!(serial(&records[0]), Some(7));
    }
}
