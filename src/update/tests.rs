//! UPDATE messages built by hickory (an independent encoder), judged against a snapshot.

use hickory_proto::op::update_message::{self, UpdateMessage as _};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::*;
use crate::testing::{snapshot, zone};
use crate::wire::update::parse_update;

const ZONE: &str = "apps.example.com.";

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn cname(service: &str, app: &str, cluster: &str) -> Record {
    let owner = format!("{service}-{app}.{ZONE}");
    let target = format!("{service}-{cluster}.example.com.");
    Record::from_rdata(name(&owner), 300, RData::CNAME(CNAME(name(&target))))
}

fn app(app: &str, cluster: &str) -> Vec<Record> {
    ["ws", "sockjs", "api"]
        .iter()
        .map(|service| cname(service, app, cluster))
        .collect()
}

/// `class`/`rtype` at `owner`, no RDATA, TTL 0: the deletions and the prerequisites.
fn empty(owner: &str, rtype: RecordType, class: DNSClass) -> Record {
    let mut record = Record::with(name(owner), rtype, 0);
    record.set_dns_class(class);
    record
}

fn soa(serial: u32, refresh: i32) -> Record {
    let rdata = SOA::new(
        name("ns1.example.com."),
        name("hostmaster.apps.example.com."),
        serial,
        refresh,
        600,
        604_800,
        60,
    );
    Record::from_rdata(name(ZONE), 3600, RData::SOA(rdata))
}

/// An UPDATE of `ZONE` with these prerequisites and updates.
fn message(prerequisites: Vec<Record>, updates: Vec<Record>) -> Vec<u8> {
    message_for(ZONE, prerequisites, updates)
}

fn message_for(zone: &str, prerequisites: Vec<Record>, updates: Vec<Record>) -> Vec<u8> {
    let placeholder = Record::from_rdata(
        name(&format!("placeholder.{zone}")),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    );
    let mut message: Message =
        update_message::create(RecordSet::from(placeholder), name(zone), false);
    // `create` adds a prerequisite and an update of its own: start from none.
    message.take_answers();
    message.take_name_servers();
    for record in prerequisites {
        message.add_pre_requisite(record);
    }
    for record in updates {
        message.add_update(record);
    }
    message.to_bytes().unwrap()
}

/// The served zone: app 1 on eu, app 2 on us, serial 10.
fn served() -> Snapshot {
    snapshot(r#"{"serial": 10, "apps": {"1": "eu", "2": "us"}}"#)
}

fn judged(bytes: &[u8], clusters: Option<&[String]>) -> Result<Judged, Refused> {
    let snapshot = served();
    let zone = zone();
    let shape = CnameShape::new(&zone).unwrap();
    let update = parse_update(bytes).unwrap();
    judge(&update, &snapshot, &shape, Policy { clusters })
}

fn changes(bytes: &[u8]) -> Vec<(String, Option<String>)> {
    let judged = judged(bytes, None).unwrap();
    judged
        .changes
        .into_iter()
        .map(|change| (change.app.into(), change.cluster.map(String::from)))
        .collect()
}

fn rcode(bytes: &[u8]) -> Rcode {
    judged(bytes, None).unwrap_err().rcode
}

fn change(app: &str, cluster: Option<&str>) -> (String, Option<String>) {
    (app.into(), cluster.map(String::from))
}

#[test]
fn adds_moves_and_removes_whole_apps() {
    // A new app: its three CNAMEs.
    let add = message(vec![], app("3", "eu"));
    assert_eq!(changes(&add), [change("3", Some("eu"))]);
    // A move by three adds: each replaces the CNAME there (RFC 2136 §3.4.2.2).
    assert_eq!(
        changes(&message(vec![], app("1", "mt9"))),
        [change("1", Some("mt9"))]
    );
    // Removal: each name deleted (class ANY, type ANY), or each RRset, or each record.
    let by_name = ["ws", "sockjs", "api"]
        .map(|s| empty(&format!("{s}-2.{ZONE}"), RecordType::ANY, DNSClass::ANY));
    assert_eq!(
        changes(&message(vec![], by_name.to_vec())),
        [change("2", None)]
    );
    let by_rrset = ["ws", "sockjs", "api"]
        .map(|s| empty(&format!("{s}-2.{ZONE}"), RecordType::CNAME, DNSClass::ANY));
    assert_eq!(
        changes(&message(vec![], by_rrset.to_vec())),
        [change("2", None)]
    );
    let by_record: Vec<Record> = app("2", "us")
        .into_iter()
        .map(|mut r| {
            r.set_dns_class(DNSClass::NONE).set_ttl(0);
            r
        })
        .collect();
    assert_eq!(changes(&message(vec![], by_record)), [change("2", None)]);
    // Delete + add in one message: a move; several apps in one message.
    let mut updates = by_rrset.to_vec();
    updates.extend(app("2", "eu"));
    updates.extend(app("4", "us"));
    assert_eq!(
        changes(&message(vec![], updates)),
        [change("2", Some("eu")), change("4", Some("us"))]
    );
}

#[test]
fn what_changes_nothing_is_empty() {
    // A record deleted that is not there, an app set to where it is, an absent app deleted.
    let mut wrong = cname("ws", "1", "us");
    wrong.set_dns_class(DNSClass::NONE).set_ttl(0);
    let mut updates = vec![wrong];
    updates.extend(app("2", "us"));
    updates.extend(
        ["ws", "sockjs", "api"]
            .map(|s| empty(&format!("{s}-77.{ZONE}"), RecordType::ANY, DNSClass::ANY)),
    );
    assert!(judged(&message(vec![], updates), None).unwrap().is_empty());
}

#[test]
fn the_zone_keeps_its_shape() {
    // Two services only, or two clusters: REFUSED.
    let mut two = app("3", "eu");
    two.pop();
    assert_eq!(rcode(&message(vec![], two)), Rcode::REFUSED);
    let mut split = app("3", "eu");
    split[2] = cname("api", "3", "us");
    assert_eq!(rcode(&message(vec![], split)), Rcode::REFUSED);
    // One service of an app deleted.
    let one = vec![empty(
        &format!("ws-1.{ZONE}"),
        RecordType::ANY,
        DNSClass::ANY,
    )];
    assert_eq!(rcode(&message(vec![], one)), Rcode::REFUSED);
    // A target that is not a cluster's, another type, another name, the apex NS.
    let mut bad_target = app("3", "eu");
    bad_target[0] = Record::from_rdata(
        name(&format!("ws-3.{ZONE}")),
        300,
        RData::CNAME(CNAME(name("elsewhere.example.net."))),
    );
    let a = Record::from_rdata(
        name(&format!("ws-3.{ZONE}")),
        300,
        RData::A(A::new(192, 0, 2, 1)),
    );
    let other_name = Record::from_rdata(
        name(&format!("www.{ZONE}")),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    );
    let unknown_service = cname("ftp", "3", "eu");
    let ns = Record::from_rdata(name(ZONE), 3600, RData::NS(NS(name("ns2.example.com."))));
    let delete_ns = empty(ZONE, RecordType::NS, DNSClass::ANY);
    for updates in [
        bad_target,
        vec![a],
        vec![other_name],
        vec![unknown_service],
        vec![ns],
        vec![delete_ns],
    ] {
        let got = judged(&message(vec![], updates.clone()), None);
        assert_eq!(got.map_err(|r| r.rcode), Err(Rcode::REFUSED), "{updates:?}");
    }
    // `--clusters`: a cluster outside the list.
    let clusters = ["eu".to_owned()];
    let got = judged(&message(vec![], app("3", "us")), Some(&clusters));
    assert_eq!(got.unwrap_err().rcode, Rcode::REFUSED);
    let got = judged(&message(vec![], app("3", "eu")), Some(&clusters));
    assert_eq!(got.unwrap().changes.len(), 1);
}

#[test]
fn zone_and_names_outside_it() {
    let other = message_for("example.org.", vec![], app("3", "eu"));
    assert_eq!(rcode(&other), Rcode::NOTAUTH);
    let outside = Record::from_rdata(
        name("ws-3.apps.example.org."),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    );
    assert_eq!(rcode(&message(vec![], vec![outside])), Rcode::NOTZONE);
    // A name that merely ends in the apex's bytes is outside too.
    let mut sneaky = app("3", "eu");
    sneaky.push(Record::from_rdata(
        name("ws-3.xapps.example.com."),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    ));
    assert_eq!(rcode(&message(vec![], sneaky)), Rcode::NOTZONE);
    let prerequisite = empty("ws-1.example.org.", RecordType::ANY, DNSClass::ANY);
    assert_eq!(rcode(&message(vec![prerequisite], vec![])), Rcode::NOTZONE);
}

#[test]
fn prerequisites_answer_as_rfc_2136_says() {
    let ws = |app: &str| format!("ws-{app}.{ZONE}");
    let cases = [
        // Name in use (ANY, ANY).
        (empty(&ws("1"), RecordType::ANY, DNSClass::ANY), None),
        (
            empty(&ws("3"), RecordType::ANY, DNSClass::ANY),
            Some(Rcode::NXDOMAIN),
        ),
        (empty(ZONE, RecordType::ANY, DNSClass::ANY), None),
        // RRset exists, value-independent (ANY, type).
        (empty(&ws("1"), RecordType::CNAME, DNSClass::ANY), None),
        (
            empty(&ws("1"), RecordType::A, DNSClass::ANY),
            Some(Rcode::NXRRSET),
        ),
        (empty(ZONE, RecordType::NS, DNSClass::ANY), None),
        // Name not in use (NONE, ANY).
        (empty(&ws("3"), RecordType::ANY, DNSClass::NONE), None),
        (
            empty(&ws("1"), RecordType::ANY, DNSClass::NONE),
            Some(Rcode::YXDOMAIN),
        ),
        // RRset does not exist (NONE, type).
        (empty(&ws("1"), RecordType::A, DNSClass::NONE), None),
        (
            empty(&ws("1"), RecordType::CNAME, DNSClass::NONE),
            Some(Rcode::YXRRSET),
        ),
        // RRset exists, value-dependent (class IN, TTL 0).
        (zero_ttl(cname("ws", "1", "eu")), None),
        (zero_ttl(cname("ws", "1", "us")), Some(Rcode::NXRRSET)),
        (zero_ttl(cname("ws", "3", "eu")), Some(Rcode::NXRRSET)),
        (zero_ttl(soa(10, 3600)), None),
        (zero_ttl(soa(11, 3600)), Some(Rcode::NXRRSET)),
        (
            zero_ttl(Record::from_rdata(
                name(ZONE),
                0,
                RData::NS(NS(name("ns1.example.com."))),
            )),
            None,
        ),
        // A prerequisite with a TTL, or with RDATA where none goes: FORMERR.
        (cname("ws", "1", "eu"), Some(Rcode::FORMERR)),
    ];
    for (prerequisite, want) in cases {
        let bytes = message(vec![prerequisite.clone()], app("5", "eu"));
        let got = judged(&bytes, None).map(drop).map_err(|r| r.rcode);
        assert_eq!(got.err(), want, "{prerequisite:?}");
    }
    // Every prerequisite must hold; a failed one changes nothing.
    let both = vec![
        empty(&ws("1"), RecordType::ANY, DNSClass::ANY),
        empty(&ws("2"), RecordType::ANY, DNSClass::NONE),
    ];
    assert_eq!(rcode(&message(both, app("5", "eu"))), Rcode::YXDOMAIN);
}

fn zero_ttl(mut record: Record) -> Record {
    record.set_ttl(0);
    record
}

#[test]
fn an_soa_sets_a_greater_serial_only() {
    let mut updates = app("3", "eu");
    updates.push(soa(2_000, 3600));
    let got = judged(&message(vec![], updates), None).unwrap();
    assert_eq!(got.serial, Some(2_000));
    // Not greater (RFC 1982): ignored, as RFC 2136 §3.4.2.2 says.
    let got = judged(&message(vec![], vec![soa(9, 3600)]), None).unwrap();
    assert!(got.is_empty(), "{got:?}");
    // Another field changed: REFUSED.
    assert_eq!(
        rcode(&message(vec![], vec![soa(2_000, 7200)])),
        Rcode::REFUSED
    );
}

#[test]
fn malformed_updates_are_formerr() {
    let mut with_rdata = cname("ws", "1", "eu");
    with_rdata.set_dns_class(DNSClass::ANY).set_ttl(0);
    let mut none_any = empty(&format!("ws-1.{ZONE}"), RecordType::ANY, DNSClass::NONE);
    none_any.set_ttl(0);
    let in_any = empty(&format!("ws-1.{ZONE}"), RecordType::ANY, DNSClass::IN);
    let axfr = empty(&format!("ws-1.{ZONE}"), RecordType::AXFR, DNSClass::ANY);
    for update in [with_rdata, none_any, in_any, axfr] {
        let got = judged(&message(vec![], vec![update.clone()]), None);
        assert_eq!(got.map_err(|r| r.rcode), Err(Rcode::FORMERR), "{update:?}");
    }
}
