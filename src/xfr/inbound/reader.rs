//! Zone transfers in (cnamed as a secondary): reads the messages of an AXFR or IXFR from a
//! primary and checks that the zone has cnamed's shape: the SOA and NS at the apex, and for
//! every app one CNAME `{service}-{app}.{zone}` per listed service, all to the `--target` of
//! one cluster. An AXFR (or an IXFR answered in full) yields the app -> cluster mapping a
//! dump holds; an incremental IXFR (RFC 1995) the records deleted and added, which
//! `resolve` (resolve.rs) turns into per-app changes against the snapshot served. The first
//! record that does not fit is named in the error ([`ReadError`]).

pub use super::error::ReadError;
use super::full_zone::{self, FullZone};
pub use super::received::{Change, Received, Transferred};
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::{CnameShape, Zone};
use crate::wire::name::{read_name, wire_to_text, MAX_NAME};
use crate::wire::record::{field, fixed_at, read_be16, RR_FIXED};
use crate::wire::{Header, Rtype, HEADER_LEN};
use crate::xfr::Timers;

/// Where a transfer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the first SOA.
    Start,
    /// After the first SOA: the next record says AXFR-style or incremental.
    Opened,
    /// The whole zone, up to the closing SOA.
    Full,
    /// An incremental sequence from `from`: its deleted records.
    Deleting {
        from: u32,
    },
    /// Its added records, ending at serial `to`.
    Adding {
        to: u32,
    },
    Done,
}

/// A zone transfer being read.
pub struct TransferReader<'z> {
    zone: &'z Zone,
    /// How CNAMEs name apps and clusters.
    shape: CnameShape<'z>,
    /// The serial an IXFR asked from; `None` for an AXFR.
    ixfr_from: Option<u32>,
    phase: Phase,
    /// The serial of the first SOA: the zone's version after the transfer.
    serial: u32,
    /// The apps of a full zone, collected into a snapshot's tables.
    full: FullZone<'z>,
    /// Records deleted and added, in order, for an incremental one.
    changes: Vec<Change>,
    /// The most `changes` may hold: a difference larger than twice the zone costs more than
    /// the zone, and one without end (a hostile primary) must not grow without bound.
    max_changes: usize,
    kind: Shape,
    /// The first SOA's REFRESH, RETRY and EXPIRE.
    timers: Option<Timers>,
    /// The apex NS targets of a full zone, lower case, without the final dot.
    ns: Vec<String>,
}

/// What the records after the first SOA turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Unknown,
    Full,
    Incremental,
}

impl<'z> TransferReader<'z> {
    /// A reader for an AXFR of `zone`; its `--target` template must name `{cluster}` (else a
    /// target cannot say which cluster it is).
    pub fn axfr(zone: &'z Zone) -> Result<Self, ReadError> {
        Self::new(zone, None)
    }

    /// A reader for an IXFR asked from `serial`.
    pub fn ixfr(zone: &'z Zone, serial: u32) -> Result<Self, ReadError> {
        Self::new(zone, Some(serial))
    }

    /// At most `records` CNAMEs deleted and added in a difference (beyond, the read fails,
    /// and the caller asks AXFR).
    pub fn with_max_changes(mut self, records: usize) -> Self {
        self.max_changes = records;
        self
    }

    fn new(zone: &'z Zone, ixfr_from: Option<u32>) -> Result<Self, ReadError> {
        let shape = CnameShape::new(zone)?;
        Ok(Self {
            zone,
            shape,
            ixfr_from,
            phase: Phase::Start,
            serial: 0,
            full: FullZone::new(zone),
            changes: Vec::new(),
            max_changes: usize::MAX,
            kind: Shape::Unknown,
            timers: None,
            ns: Vec::new(),
        })
    }

    /// Reads one message of the transfer; `Ok(true)` once it is complete.
    pub fn read_message(&mut self, message: &[u8]) -> Result<bool, ReadError> {
        let header = Header::new(message).ok_or("a message shorter than its header")?;
        let rcode = header.rcode_low();
        if !header.is_response() || rcode != 0 {
            return Err(format!("the primary answered with RCODE {rcode}").into());
        }
        let (questions, answers) = (header.qdcount(), header.ancount());
        let mut name = [0u8; MAX_NAME];
        let mut at = HEADER_LEN;
        for _ in 0..questions {
            at = read_name(message, at, &mut name).ok_or("a bad question")?.1 + 4;
        }
        self.full.start_message();
        for _ in 0..answers {
            if self.phase == Phase::Done {
                return Err("records after the closing SOA".into());
            }
            if self.phase == Phase::Full {
                if let Some(cname) = self.full.quick_cname(&self.shape, message, at) {
                    (self
                        .full
                        .add(cname.app, cname.numeric, cname.service, cname.cluster))
                    .map_err(|why| misfit_at(message, at, Rtype::CNAME, &why))?;
                    at = cname.next;
                    continue;
                }
            }
            let (owner_len, after) = read_name(message, at, &mut name).ok_or("a bad owner name")?;
            let owner = &name[..owner_len];
            let fixed: &[u8; RR_FIXED] = fixed_at(message, after).ok_or("a record cut short")?;
            let rtype = Rtype(read_be16(fixed, field::TYPE));
            let rdlength = usize::from(read_be16(fixed, field::RDLENGTH));
            let rdata_at = after + RR_FIXED;
            let rdata = message
                .get(rdata_at..rdata_at + rdlength)
                .ok_or("a record cut short")?;
            let misfit = |why: &str| format!("record {} {rtype}: {why}", wire_to_text(owner));
            self.record(owner, rtype, rdata, message, rdata_at)
                .map_err(|why| misfit(&why))?;
            at = rdata_at + rdlength;
        }
        // An IXFR answered with the SOA alone: nothing newer than what was asked from.
        if let (Phase::Opened, Some(from)) = (self.phase, self.ixfr_from) {
            if !serial_is_newer(self.serial, from) {
                self.phase = Phase::Done;
            }
        }
        Ok(self.phase == Phase::Done)
    }

    /// Reads one record; `rdata_at` is where its RDATA starts in `message` (names in it may
    /// point back into the message).
    fn record(
        &mut self,
        owner: &[u8],
        rtype: Rtype,
        rdata: &[u8],
        message: &[u8],
        rdata_at: usize,
    ) -> Result<(), String> {
        let at_apex = owner == &self.zone.apex[..];
        let soa_serial = || {
            let at = rdata.len().checked_sub(20).ok_or("SOA too short")?;
            Ok::<u32, String>(u32::from_be_bytes(
                rdata[at..at + 4].try_into().map_err(|_| "SOA too short")?,
            ))
        };
        let shape = "not of cnamed's shape (SOA and NS at the apex, CNAMEs of apps)";
        if rtype == Rtype::SOA && at_apex {
            self.check_soa(message, rdata_at, rdata)?;
        }
        match (self.phase, rtype) {
            (Phase::Start, Rtype::SOA) if at_apex => {
                self.serial = soa_serial()?;
                self.timers = Timers::of_soa(rdata);
                self.phase = Phase::Opened;
            }
            (Phase::Opened, Rtype::SOA) if at_apex => {
                let serial = soa_serial()?;
                if self.ixfr_from != Some(serial) || serial == self.serial {
                    return Err("an SOA where the zone's records should start".into());
                }
                self.phase = Phase::Deleting { from: serial };
                self.kind = Shape::Incremental;
            }
            (Phase::Opened, _) => {
                self.phase = Phase::Full;
                self.kind = Shape::Full;
                return self.record(owner, rtype, rdata, message, rdata_at);
            }
            (Phase::Full, Rtype::SOA) if at_apex => {
                if soa_serial()? != self.serial {
                    return Err("the closing SOA has another serial".into());
                }
                self.phase = Phase::Done;
            }
            (Phase::Deleting { from }, Rtype::SOA) if at_apex => {
                let to = soa_serial()?;
                if !serial_is_newer(to, from) {
                    return Err(format!("a difference from serial {from} back to {to}"));
                }
                self.phase = Phase::Adding { to };
            }
            (Phase::Adding { to }, Rtype::SOA) if at_apex => {
                let serial = soa_serial()?;
                self.phase = if to == self.serial && serial == self.serial {
                    Phase::Done
                } else if serial == to {
                    Phase::Deleting { from: to }
                } else {
                    return Err(format!(
                        "a difference from serial {serial} after one to {to}"
                    ));
                };
            }
            (Phase::Full, Rtype::NS) if at_apex => {
                let mut target = [0u8; MAX_NAME];
                let (len, _) = read_name(message, rdata_at, &mut target).ok_or("a bad NS")?;
                let text = wire_to_text(&target[..len]).to_ascii_lowercase();
                let text = text.trim_end_matches('.');
                // The apex NS set must be ours (`finish`): one that is not refuses the
                // transfer now, so an endless stream of NS records cannot grow the set
                // (hardening round three, item 2); a repeat adds nothing.
                if !self
                    .zone
                    .ns_text
                    .iter()
                    .any(|ns| ns.trim_end_matches('.').eq_ignore_ascii_case(text))
                {
                    return Err(format!(
                        "the primary's apex NS {text} is not one of this server's --ns {}",
                        self.zone.ns_text.join(" ")
                    ));
                }
                if !self.ns.iter().any(|seen| seen == text) {
                    self.ns.push(text.to_owned());
                }
            }
            (Phase::Deleting { .. } | Phase::Adding { .. }, Rtype::NS) if at_apex => {
                return Err(
                    "the difference changes the apex NS records: restart with the new --ns".into(),
                )
            }
            (Phase::Full | Phase::Deleting { .. } | Phase::Adding { .. }, Rtype::CNAME) => {
                let mut target = [0u8; MAX_NAME];
                let (target_len, _) =
                    read_name(message, rdata_at, &mut target).ok_or("a bad CNAME target")?;
                let (app, service) = self.shape.owner_in(owner)?;
                let mut scratch = [0u8; MAX_NAME];
                let cluster =
                    self.shape
                        .cluster_in(service, &target[..target_len], &mut scratch)?;
                match self.phase {
                    Phase::Full => {
                        let cluster = self.full.cluster(cluster)?;
                        let numeric = full_zone::number(app.as_bytes());
                        self.full.add(app.as_bytes(), numeric, service, cluster)?
                    }
                    _ if self.changes.len() >= self.max_changes => {
                        return Err(format!(
                            "the difference has more than {} records, twice the zone's: asking the whole zone instead",
                            self.max_changes
                        ));
                    }
                    phase => self.changes.push(Change {
                        app: app.to_ascii_lowercase().into(),
                        service,
                        cluster: cluster.into(),
                        added: matches!(phase, Phase::Adding { .. }),
                    }),
                }
            }
            _ => return Err(shape.into()),
        }
        Ok(())
    }

    /// Checks that the primary's SOA has this server's MNAME, RNAME and MINIMUM: a
    /// secondary serves its own apex records, which must be the primary's.
    fn check_soa(&self, message: &[u8], rdata_at: usize, rdata: &[u8]) -> Result<(), String> {
        let mut names = Vec::with_capacity(2 * MAX_NAME);
        let mut name = [0u8; MAX_NAME];
        let (len, after) = read_name(message, rdata_at, &mut name).ok_or("a bad SOA MNAME")?;
        names.extend(name[..len].iter().map(u8::to_ascii_lowercase));
        let (len, _) = read_name(message, after, &mut name).ok_or("a bad SOA RNAME")?;
        names.extend(name[..len].iter().map(u8::to_ascii_lowercase));
        if names != self.zone.soa_names {
            return Err(format!(
                "the primary's SOA names {} differ from this server's {} (the first --ns, --hostmaster)",
                soa_names_text(&names),
                soa_names_text(&self.zone.soa_names)
            ));
        }
        let minimum = rdata
            .get(rdata.len().saturating_sub(4)..)
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map(u32::from_be_bytes)
            .ok_or("SOA too short")?;
        if minimum != self.zone.negative_ttl {
            return Err(format!(
                "the primary's SOA MINIMUM {minimum} differs from --negative-ttl {}",
                self.zone.negative_ttl
            ));
        }
        Ok(())
    }

    /// The SOA timers of the primary's zone, once its first SOA is read.
    pub fn timers(&self) -> Option<Timers> {
        self.timers
    }

    /// What the transfer gave, once it is complete; a full zone must have a CNAME per
    /// service for every app.
    pub fn finish(self) -> Result<Received, ReadError> {
        if self.phase != Phase::Done {
            return Err("the transfer ended before its closing SOA".into());
        }
        match self.kind {
            // The SOA alone: nothing newer than the serial asked from.
            Shape::Unknown => return Ok(Received::UpToDate(self.serial)),
            Shape::Incremental => {
                return Ok(Received::Incremental {
                    serial: self.serial,
                    changes: self.changes,
                })
            }
            Shape::Full => {}
        }
        let mut ns = self.ns.clone();
        ns.sort_unstable();
        ns.dedup();
        let mut ours: Vec<String> = self
            .zone
            .ns_text
            .iter()
            .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        ours.sort_unstable();
        ours.dedup();
        if ns != ours {
            return Err(format!(
                "the primary's apex NS {} differ from this server's --ns {}",
                ns.join(" "),
                ours.join(" ")
            )
            .into());
        }
        let snapshot = Box::new(self.full.finish(self.serial)?);
        Ok(Received::Full(Transferred {
            serial: self.serial,
            snapshot,
        }))
    }
}

/// Why the record at `at` of `message` does not fit, naming it.
fn misfit_at(message: &[u8], at: usize, rtype: Rtype, why: &str) -> ReadError {
    let mut name = [0u8; MAX_NAME];
    let owner = read_name(message, at, &mut name).map_or(&[][..], |(len, _)| &name[..len]);
    format!("record {} {rtype}: {why}", wire_to_text(owner)).into()
}

/// MNAME and RNAME, wire form one after the other, as text.
fn soa_names_text(names: &[u8]) -> String {
    let first = crate::wire::skip_name(names, 0).unwrap_or(names.len());
    format!(
        "{} {}",
        wire_to_text(&names[..first]),
        wire_to_text(&names[first..])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::guard::Difference;
    use crate::snapshot::Snapshot;
    use crate::xfr::inbound::resolve::resolve;
    use crate::xfr::outbound::axfr::axfr;
    use crate::xfr::outbound::history::Delta;
    use crate::xfr::outbound::ixfr::ixfr;
    use crate::xfr::outbound::message::{Stream, MAX_MESSAGE};
    use hickory_proto::op::{Message as HickoryMessage, MessageType, Query};
    use hickory_proto::rr::{Name, Record, RecordType};
    use std::sync::Arc;

    fn question() -> Vec<u8> {
        let mut question = b"\x04apps\x07example\x03com\x00".to_vec();
        question.extend_from_slice(&[0, 252, 0, 1]);
        question
    }

    /// `apps` apps at `serial`: every `named.1`th a string ID `{named.0}{i}` on eu, the
    /// others numeric on `mt{i % clusters}`.
    fn mixed_snapshot(
        zone: &Zone,
        serial: u32,
        apps: u32,
        named: (&str, u32),
        clusters: u32,
    ) -> Snapshot {
        let (prefix, every) = named;
        let entries: Vec<String> = (0..apps)
            .map(|i| match i % every {
                0 => format!(r#""{prefix}{i}": "eu""#),
                _ => format!(r#""{i}": "mt{}""#, i % clusters),
            })
            .collect();
        let json = format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        );
        Snapshot::from_json(json.as_bytes(), zone).unwrap()
    }

    /// Every app of `original` is found in `rebuilt` by lookup, on the same cluster: a
    /// numeric ID filed as a string would still be listed by `apps()`, but never found.
    fn found_by_lookup(rebuilt: &Snapshot, original: &Snapshot) {
        for (app, cluster) in original.apps() {
            let key = crate::snapshot::AppKey::new(app.as_bytes());
            assert_eq!(rebuilt.cluster_name_of(key), Some(cluster), "app {app}");
        }
    }

    /// Our own AXFR, read back, is the snapshot's mapping exactly.
    #[test]
    fn reads_back_what_axfr_sends() {
        let zone = crate::testing::zone();
        let snapshot = mixed_snapshot(&zone, 42, 3000, ("App-", 7), 5);
        let reader = TransferReader::axfr(&zone).unwrap();
        let Received::Full(got) = read_all(axfr(&snapshot), reader) else {
            panic!("not a full zone")
        };
        assert_eq!(got.serial, 42);
        // Built into a snapshot as it arrived, it answers as the original does.
        let rebuilt = got.snapshot;
        assert_eq!(rebuilt.apps(), snapshot.apps());
        found_by_lookup(&rebuilt, &snapshot);
        assert_eq!(rebuilt.soa_answer(), snapshot.soa_answer());
        assert_eq!(rebuilt.cname(b"ws-App-7"), snapshot.cname(b"ws-app-7"));
    }

    /// Our AXFR's records re-encoded by hickory (its own compression), in `order`, one
    /// message per 500 records, the SOA first and last.
    fn reencoded(snapshot: &Snapshot, order: impl Fn(&mut Vec<Record>)) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut stream = axfr(snapshot);
        let mut buf = vec![0u8; MAX_MESSAGE];
        while let Some(len) = stream.next_message(1, &question(), &mut buf) {
            records.extend(
                HickoryMessage::from_vec(&buf[..len])
                    .unwrap()
                    .take_answers(),
            );
        }
        let soa = records.remove(0);
        records.pop();
        let (mut apex, mut cnames): (Vec<Record>, Vec<Record>) = records
            .into_iter()
            .partition(|record| record.record_type() == RecordType::NS);
        order(&mut cnames);
        let mut all = vec![soa.clone()];
        all.append(&mut apex);
        all.append(&mut cnames);
        all.push(soa);
        all.chunks(500)
            .map(|chunk| {
                let mut message = HickoryMessage::new();
                message.set_id(1).set_message_type(MessageType::Response);
                message.add_query(Query::query(
                    Name::from_ascii("apps.example.com.").unwrap(),
                    RecordType::AXFR,
                ));
                message.add_answers(chunk.iter().cloned());
                message.to_vec().unwrap()
            })
            .collect()
    }

    fn read_messages(zone: &Zone, messages: &[Vec<u8>]) -> Result<Received, ReadError> {
        let mut reader = TransferReader::axfr(zone).unwrap();
        for message in messages {
            reader.read_message(message)?;
        }
        reader.finish()
    }

    /// An app's CNAMEs need not arrive together: service by service (a primary sending in
    /// canonical order), or shuffled, the zone read is the one sent; an app short of a
    /// service, with one service twice, or on two clusters is refused, named.
    #[test]
    fn a_zone_reads_the_same_in_any_order() {
        let zone = crate::testing::zone();
        let snapshot = mixed_snapshot(&zone, 9, 2000, ("Named-", 5), 3);
        let by_owner = |records: &mut Vec<Record>| records.sort_by_key(|r| r.name().to_string());
        let shuffled = |records: &mut Vec<Record>| {
            let mut state = 7u64;
            let mut random = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            for i in (1..records.len()).rev() {
                records.swap(i, (random() % (i as u64 + 1)) as usize);
            }
        };
        for messages in [
            reencoded(&snapshot, |_| ()),
            reencoded(&snapshot, by_owner),
            reencoded(&snapshot, shuffled),
        ] {
            let Ok(Received::Full(got)) = read_messages(&zone, &messages) else {
                panic!("not read")
            };
            assert_eq!(got.snapshot.apps(), snapshot.apps());
            found_by_lookup(&got.snapshot, &snapshot);
        }
        let refusal = |edit: &dyn Fn(&mut Vec<Record>)| {
            let messages = reencoded(&snapshot, |records| edit(records));
            read_messages(&zone, &messages).unwrap_err().to_string()
        };
        fn owned(name: &str) -> impl Fn(&Record) -> bool + '_ {
            move |record| record.name().to_ascii() == name
        }
        let error = refusal(&|records| records.retain(|r| !owned("sockjs-7.apps.example.com.")(r)));
        assert!(error.contains("app 7 lacks a CNAME"), "{error}");
        let error = refusal(&|records| {
            let at = records
                .iter()
                .position(owned("ws-7.apps.example.com."))
                .unwrap();
            records.push(records[at].clone());
        });
        assert!(error.contains("app 7 lacks a CNAME"), "{error}");
        let error = refusal(&|records| {
            let at = records
                .iter()
                .position(owned("ws-7.apps.example.com."))
                .unwrap();
            records.insert(at, records[at].clone());
        });
        assert!(
            error.contains("app 7 has two records for one service"),
            "{error}"
        );
        let error = refusal(&|records| {
            let at = records
                .iter()
                .position(owned("ws-7.apps.example.com."))
                .unwrap();
            let eu = records
                .iter()
                .find(|r| r.name().to_ascii().contains("ws-named-"))
                .unwrap();
            let mut moved = records[at].clone();
            moved.set_data(eu.data().cloned());
            records[at] = moved;
        });
        assert!(error.contains("app 7 is on"), "{error}");
    }

    fn read_all(mut stream: impl Stream, mut reader: TransferReader<'_>) -> Received {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut done = false;
        while let Some(len) = stream.next_message(1, &question(), &mut buf) {
            assert!(!done, "records after the end");
            done = reader.read_message(&buf[..len]).unwrap();
        }
        assert!(done);
        reader.finish().unwrap()
    }

    /// Our own IXFR, read and applied to a copy of the old snapshot, gives the new one; an
    /// up-to-date answer and an AXFR-style one read as such.
    #[test]
    fn ixfr_differences_apply_to_the_old_zone() {
        let zone = crate::testing::zone();
        let snapshot = |serial, apps: &[(&str, &str)]| {
            Snapshot::from_apps(serial, apps.iter().copied(), &zone).unwrap()
        };
        let s1 = snapshot(1, &[("1", "eu"), ("2", "eu"), ("3", "us"), ("app-x", "us")]);
        let s2 = snapshot(
            2,
            &[("1", "eu"), ("2", "mt9"), ("app-x", "eu"), ("4", "us")],
        );
        let s3 = snapshot(
            3,
            &[("1", "us"), ("2", "mt9"), ("4", "us"), ("app-y", "eu")],
        );
        let deltas = [
            Arc::new(Delta::between(&s1, &s2)),
            Arc::new(Delta::between(&s2, &s3)),
        ];
        let received = read_all(ixfr(&s3, &deltas), TransferReader::ixfr(&zone, 1).unwrap());
        let Received::Incremental { serial, changes } = received else {
            panic!("not incremental: {received:?}")
        };
        assert_eq!(serial, 3);
        let resolved = resolve(&s1, &changes).unwrap();
        // 1 and 3 moved or went; 2 and app-x moved, 4 and app-y came, app-x went.
        assert_eq!(
            resolved.difference,
            Difference {
                added: 2,
                removed: 2,
                moved: 2
            }
        );
        let applied = s1
            .with_changes(
                serial,
                resolved
                    .changes
                    .iter()
                    .map(|(app, cluster)| (&**app, cluster.as_deref())),
            )
            .unwrap();
        assert_eq!(applied.apps(), s3.apps());
        assert_eq!(applied.serial, 3);
        // Applied to the wrong zone, the difference is refused, naming the record.
        let error = resolve(&s2, &changes).unwrap_err().to_string();
        assert!(
            error.contains("deletes ws-2.apps.example.com. -> cluster eu, which the zone"),
            "{error}"
        );

        let current = read_all(ixfr(&s3, &[]), TransferReader::ixfr(&zone, 3).unwrap());
        assert!(matches!(current, Received::UpToDate(3)), "{current:?}");
        let newer = read_all(ixfr(&s3, &[]), TransferReader::ixfr(&zone, 9).unwrap());
        assert!(matches!(newer, Received::UpToDate(3)), "{newer:?}");
        let full = read_all(axfr(&s3), TransferReader::ixfr(&zone, 1).unwrap());
        let Received::Full(full) = full else {
            panic!("not a full zone: {full:?}")
        };
        assert_eq!(full.serial, 3);
        assert_eq!(full.snapshot.app_count(), 4);
    }

    #[test]
    fn differences_that_break_the_shape_are_refused() {
        let zone = crate::testing::zone();
        let s1 = Snapshot::from_apps(1, [("1", "eu")], &zone).unwrap();
        let change = |app: &str, service, cluster: &str, added| Change {
            app: app.into(),
            service,
            cluster: cluster.into(),
            added,
        };
        // An app moved for one service only.
        let error = resolve(
            &s1,
            &[change("1", 0, "eu", false), change("1", 0, "us", true)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("app 1 would have CNAMEs for some services only"),
            "{error}"
        );
        // A second CNAME beside the one it has.
        let error = resolve(&s1, &[change("1", 1, "us", true)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("beside the one to eu"), "{error}");
        // Deleted and added back: no change at all.
        let services = zone.services.len();
        let mut same: Vec<Change> = (0..services).map(|s| change("1", s, "eu", false)).collect();
        same.extend((0..services).map(|s| change("1", s, "eu", true)));
        let resolved = resolve(&s1, &same).unwrap();
        assert!(resolved.changes.is_empty() && resolved.difference.is_empty());
    }

    /// The AXFR of app 7 on eu at serial 1: one message, SOA to SOA.
    fn one_app_axfr(zone: &Zone) -> Vec<u8> {
        let snapshot = Snapshot::from_json(br#"{"serial": 1, "apps": {"7": "eu"}}"#, zone).unwrap();
        let mut buf = vec![0u8; MAX_MESSAGE];
        let len = axfr(&snapshot)
            .next_message(1, &question(), &mut buf)
            .unwrap();
        buf[..len].to_vec()
    }

    #[test]
    fn misfits_are_named() {
        let zone = crate::testing::zone();
        let message = one_app_axfr(&zone);
        // The whole transfer is one message: it reads, and stopping before it fails.
        let mut reader = TransferReader::axfr(&zone).unwrap();
        assert_eq!(reader.read_message(&message), Ok(true));
        assert!(reader.finish().is_ok());
        assert!(TransferReader::axfr(&zone).unwrap().finish().is_err());
        // Another zone's SOA is named by its type (hardening round three, item 14).
        let stricter = Config {
            negative_ttl: 30,
            ..Config::default()
        };
        let error = TransferReader::axfr(&stricter.zone().unwrap())
            .unwrap()
            .read_message(&message)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("record apps.example.com. SOA: "),
            "{error}"
        );
        // An error RCODE.
        let mut refused = message.clone();
        refused[3] |= 5;
        let error = TransferReader::axfr(&zone)
            .unwrap()
            .read_message(&refused)
            .unwrap_err()
            .to_string();
        assert!(error.contains("RCODE 5"), "{error}");
        // A service not listed: "ws" becomes "wx" in the first owner.
        let at = message.windows(4).position(|w| w == b"\x04ws-").unwrap();
        let mut unlisted = message.clone();
        unlisted[at + 2] = b'x';
        let error = TransferReader::axfr(&zone)
            .unwrap()
            .read_message(&unlisted)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("record wx-7.apps.example.com.") && error.contains("not listed"),
            "{error}"
        );
    }

    /// The apex NS set cannot grow past ours: repeats of our NS are ignored, and the first
    /// NS that is not ours refuses the transfer at once, not at its end (an endless stream
    /// of them grew a secondary to 489 MB; hardening round three, item 2).
    #[test]
    fn the_apex_ns_set_is_bounded_by_ours() {
        use hickory_proto::op::Message;
        use hickory_proto::rr::rdata::NS;
        use hickory_proto::rr::{Name, RData, Record};
        use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
        let zone = crate::testing::zone();
        let whole = Message::from_bytes(&one_app_axfr(&zone)).unwrap();
        let apex = Name::from_ascii("apps.example.com.").unwrap();
        let ns = |target: &str| {
            let target = Name::from_ascii(target).unwrap();
            Record::from_rdata(apex.clone(), 300, RData::NS(NS(target)))
        };
        // The opening SOA, then our NS a thousand times.
        let mut first = whole.clone();
        first.take_answers();
        first.add_answer(whole.answers()[0].clone());
        first.add_answers((0..1000).map(|_| ns("NS1.example.com.")));
        let mut reader = TransferReader::axfr(&zone).unwrap();
        assert_eq!(reader.read_message(&first.to_bytes().unwrap()), Ok(false));
        assert_eq!(reader.ns, ["ns1.example.com"]);
        // Then one of somebody else's.
        let mut next = whole.clone();
        next.take_answers();
        let label = "a".repeat(60);
        let long = format!("{label}.{label}.{label}.example.");
        next.add_answer(ns(&long));
        let error = reader
            .read_message(&next.to_bytes().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "apex NS {} is not one of",
                long.trim_end_matches('.')
            )),
            "{error}"
        );
    }

    /// A difference larger than its cap is refused as it is read, not held: a primary that
    /// streams changes without end cannot grow a secondary's memory (hardening round three,
    /// item 2); the caller then asks AXFR.
    #[test]
    fn a_difference_past_its_cap_is_refused() {
        let zone = crate::testing::zone();
        let apps: Vec<(String, &str)> = (0..100).map(|i| (i.to_string(), "eu")).collect();
        let moved: Vec<(String, &str)> = (0..100).map(|i| (i.to_string(), "us")).collect();
        let build = |serial, apps: &[(String, &str)]| {
            let apps = apps.iter().map(|(a, c)| (a.as_str(), *c));
            Snapshot::from_apps(serial, apps, &zone).unwrap()
        };
        let (old, new) = (build(1, &apps), build(2, &moved));
        let delta = [Arc::new(Delta::between(&old, &new))];
        // 100 apps moved: 300 CNAMEs deleted and 300 added.
        let read = |cap| {
            let mut reader = TransferReader::ixfr(&zone, 1)
                .unwrap()
                .with_max_changes(cap);
            let mut stream = ixfr(&new, &delta);
            let mut buf = vec![0u8; MAX_MESSAGE];
            while let Some(len) = stream.next_message(1, &question(), &mut buf) {
                reader.read_message(&buf[..len])?;
            }
            reader.finish()
        };
        assert!(read(600).is_ok());
        let error = read(599).unwrap_err().to_string();
        assert!(error.contains("more than 599 records"), "{error}");
    }
}
