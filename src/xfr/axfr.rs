//! AXFR (RFC 5936) responses streamed straight from a snapshot: the SOA, the NS set, every
//! CNAME of every app and service, the SOA again, packed into as few messages as fit. Nothing
//! is collected first: a transfer holds an iterator over the snapshot and one message buffer,
//! whatever the zone's size.
//!
//! Every message copies the question (RFC 5936 §2.2.1 allows it after the first, and the
//! first must), and names are compressed: the apex is written once per message, and every
//! owner is its `{service}-{app}` label and a pointer to it.

use crate::snapshot::{AppKey, Snapshot};
use crate::wire::{flags, HEADER_LEN, MAX_LABEL};

/// Largest message built. Below the 65,535 of TCP so that a TSIG record always fits after
/// the records (RFC 8945 signs every message of a transfer).
pub const MAX_MESSAGE: usize = 65_535 - 512;
/// Offsets a compression pointer can reach (14 bits).
const MAX_POINTER: usize = 0x3FFF;
/// `{service}-{app}` at its longest: one label.
const MAX_OWNER_LABEL: usize = 1 + MAX_LABEL;

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
    /// into the apex: see [`shared_suffix`].
    suffixes: Vec<Option<Suffix>>,
}

/// A CNAME target that ends with a suffix of the apex (`ws-mt1.example.com.` under
/// `apps.example.com.`): its first `keep` bytes are written, the rest is a pointer to the
/// apex name `skip` bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Suffix {
    keep: usize,
    skip: usize,
}

/// Bytes before a CNAME record's RDATA: TYPE, CLASS, TTL, RDLENGTH.
const CNAME_FIXED: usize = 10;

/// Where `target` (a name in wire form) shares its longest suffix, of at least one label,
/// with `apex` (both lower case).
fn shared_suffix(target: &[u8], apex: &[u8]) -> Option<Suffix> {
    let boundaries = |name: &[u8]| {
        let mut at = 0;
        let mut starts = Vec::new();
        while let Some(&len) = name.get(at) {
            if len == 0 {
                break;
            }
            starts.push(at);
            at += 1 + len as usize;
        }
        starts
    };
    let apex_starts = boundaries(apex);
    boundaries(target).into_iter().find_map(|keep| {
        apex_starts
            .iter()
            .find(|&&skip| apex[skip..] == target[keep..])
            .map(|&skip| Suffix { keep, skip })
    })
}

/// An AXFR over every app of `snapshot`.
pub fn axfr(snapshot: &Snapshot) -> Axfr<'_, impl Iterator<Item = (AppKey<'_>, u32)> + '_> {
    let services = snapshot.zone.services.len();
    let suffixes = (0..snapshot.cluster_count() * services)
        .map(|i| {
            let record = snapshot.cname_record((i / services) as u32, i % services)?;
            shared_suffix(record.get(CNAME_FIXED..)?, &snapshot.zone.apex)
        })
        .collect();
    Axfr {
        snapshot,
        apps: snapshot.app_entries(),
        current: None,
        stage: Stage::Soa,
        records: 0,
        suffixes,
    }
}

impl<'s, I: Iterator<Item = (AppKey<'s>, u32)>> Axfr<'s, I> {
    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes the next message into `out` (at least `MAX_MESSAGE` bytes): the header with
    /// `id` and the flags of an authoritative answer, the `question` (QNAME, QTYPE, QCLASS as
    /// received), then as many records as fit. `None` once the closing SOA has been sent.
    pub fn next_message(&mut self, id: u16, question: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.stage == Stage::Done {
            return None;
        }
        let limit = out.len().min(MAX_MESSAGE);
        let mut message = Message {
            out: &mut out[..limit],
            len: HEADER_LEN,
            count: 0,
            apex: &self.snapshot.zone.apex,
            apex_at: None,
        };
        message.out[..2].copy_from_slice(&id.to_be_bytes());
        let flags = flags::QR | flags::AA;
        message.out[2..4].copy_from_slice(&flags.to_be_bytes());
        message.out[4..6].copy_from_slice(&1u16.to_be_bytes());
        message.out[6..12].fill(0);
        if !message.push(&[question]) {
            return None;
        }
        let zone = &self.snapshot.zone;
        loop {
            let written = match self.stage {
                Stage::Soa | Stage::FinalSoa => message.apex_record(self.snapshot.soa_answer()),
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
        if message.count == 0 {
            // Not even one record fits: cannot happen with MAX_MESSAGE, but never loop.
            self.stage = Stage::Done;
            return None;
        }
        let count = message.count;
        message.out[6..8].copy_from_slice(&count.to_be_bytes());
        Some(message.len)
    }
}

/// `{service}-{app}` as a length-prefixed label, in `buf`.
fn owner_label<'b>(
    service: &[u8],
    app: AppKey<'_>,
    buf: &'b mut [u8; MAX_OWNER_LABEL],
) -> &'b [u8] {
    let mut len = 1;
    let mut put = |bytes: &[u8]| {
        let end = (len + bytes.len()).min(buf.len());
        buf[len..end].copy_from_slice(&bytes[..end - len]);
        len = end;
    };
    put(service);
    put(b"-");
    match app {
        AppKey::Named(id) => put(id),
        AppKey::Numeric(mut n) => {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            put(&digits[at..]);
        }
    }
    buf[0] = (len - 1) as u8;
    &buf[..len]
}

/// A message being filled.
struct Message<'o, 'z> {
    out: &'o mut [u8],
    len: usize,
    count: u16,
    /// The zone's apex in wire form.
    apex: &'z [u8],
    /// Where the apex name was written in this message, for pointers.
    apex_at: Option<usize>,
}

impl Message<'_, '_> {
    /// Appends `parts` if they fit whole.
    fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if self.len + total > self.out.len() {
            return false;
        }
        for part in parts {
            self.out[self.len..self.len + part.len()].copy_from_slice(part);
            self.len += part.len();
        }
        true
    }

    /// A CNAME record (TYPE to RDATA) owned by `label`, its target compressed against the
    /// apex when it shares a suffix with it and the apex is in this message.
    fn cname(&mut self, label: &[u8], record: &[u8], suffix: Option<Suffix>) -> bool {
        // Without the apex in this message yet, the record is written whole; later records
        // point at its apex.
        let target_at = self.apex_at.zip(suffix).map(|(at, s)| at + s.skip);
        let (Some(suffix), Some(target_at)) = (suffix, target_at) else {
            return self.owned_record(label, &[record]);
        };
        if target_at > MAX_POINTER {
            return self.owned_record(label, &[record]);
        }
        let (fixed, target) = record.split_at(CNAME_FIXED);
        let rdlength = (suffix.keep + 2) as u16;
        let pointer = (0xC000 | target_at as u16).to_be_bytes();
        let rdata: [&[u8]; 4] = [
            &fixed[..CNAME_FIXED - 2],
            &rdlength.to_be_bytes(),
            &target[..suffix.keep],
            &pointer,
        ];
        self.owned_record(label, &rdata)
    }

    /// A record owned by the apex.
    fn apex_record(&mut self, record: &[u8]) -> bool {
        self.owned_record(&[], &[record])
    }

    /// A record (TYPE to RDATA, in up to four parts) owned by `label` under the apex, or by
    /// the apex itself when `label` is empty: the apex is written whole the first time, then
    /// pointed to.
    fn owned_record(&mut self, label: &[u8], record: &[&[u8]]) -> bool {
        if self.count == u16::MAX {
            return false;
        }
        let pointer;
        let apex = self.apex;
        let name: &[u8] = match self.apex_at {
            Some(at) => {
                pointer = (0xC000 | at as u16).to_be_bytes();
                &pointer
            }
            None => apex,
        };
        let mut parts: [&[u8]; 6] = [label, name, &[], &[], &[], &[]];
        for (slot, part) in parts[2..].iter_mut().zip(record) {
            *slot = part;
        }
        let apex_offset = self.len + label.len();
        if !self.push(&parts) {
            return false;
        }
        if self.apex_at.is_none() && apex_offset <= MAX_POINTER {
            self.apex_at = Some(apex_offset);
        }
        self.count += 1;
        true
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

    #[test]
    fn target_suffixes() {
        let apex = b"\x04apps\x07example\x03com\x00";
        assert_eq!(
            shared_suffix(b"\x06ws-mt1\x07example\x03com\x00", apex),
            Some(Suffix { keep: 7, skip: 5 })
        );
        assert_eq!(
            shared_suffix(b"\x02ws\x04apps\x07example\x03com\x00", apex),
            Some(Suffix { keep: 3, skip: 0 })
        );
        assert_eq!(shared_suffix(b"\x02ws\x03net\x00", apex), None);
        assert_eq!(
            shared_suffix(b"\x02ws\x03com\x00", apex),
            Some(Suffix { keep: 3, skip: 13 })
        );
    }

    #[test]
    fn owner_labels() {
        let mut buf = [0u8; MAX_OWNER_LABEL];
        assert_eq!(
            owner_label(b"ws", AppKey::Numeric(0), &mut buf),
            b"\x04ws-0"
        );
        assert_eq!(
            owner_label(
                b"api",
                AppKey::Numeric(18_446_744_073_709_551_615),
                &mut buf
            ),
            b"\x18api-18446744073709551615"
        );
        assert_eq!(
            owner_label(b"ws", AppKey::Named(b"my-app"), &mut buf),
            b"\x09ws-my-app"
        );
    }
}
