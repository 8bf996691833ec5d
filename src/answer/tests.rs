//! `respond` in process, one row per rule of the README's "What it answers" table: bytes in,
//! the reply decoded by hickory-proto (never by our own parser), RCODE, flags and sections
//! checked. The contract tests in `tests/` check the same rules through a live server.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::*;
use crate::config::Config;
use crate::testing::{raw_message, QueryBuilder};
use crate::wire::{EDNS_UDP, MAX_TCP};

fn snapshot() -> Snapshot {
    let config = Config {
        identity: Some("table-test".into()),
        ..Config::default()
    };
    let json = br#"{"serial": 2026112601, "apps": {"123456": "mt1", "my-app": "eu"}}"#;
    Snapshot::from_json(json, &config.zone().unwrap()).unwrap()
}

/// Decodes a reply, requiring that nothing trails it.
fn decode(reply: &[u8]) -> Message {
    let mut decoder = BinDecoder::new(reply);
    let message = Message::read(&mut decoder).expect("the reply decodes");
    assert!(decoder.is_empty(), "trailing bytes");
    message
}

/// What a row expects of the reply.
#[derive(Debug)]
struct Expect {
    rcode: u16,
    aa: bool,
    answers: &'static [RecordType],
    /// SOA in the authority section.
    negative_soa: bool,
}

const fn expect(rcode: u16, aa: bool, answers: &'static [RecordType], soa: bool) -> Expect {
    Expect {
        rcode,
        aa,
        answers,
        negative_soa: soa,
    }
}

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const CNAME: &[RecordType] = &[RecordType::CNAME];

#[test]
fn every_rule_of_the_readme() {
    let snapshot = snapshot();
    let q = QueryBuilder::new;
    let good_question = [&b"\x03ws-\x04apps\x07example\x03com\x00"[..], &[0, 1, 0, 1]].concat();
    let mut long_name = Vec::new();
    for _ in 0..4 {
        long_name.push(63);
        long_name.extend_from_slice(&[b'a'; 63]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("known app", q("ws-123456.apps.example.com", 1).build(), expect(NOERROR, true, CNAME, false)),
        ("named app, mixed case, any type", q("SockJS-My-App.Apps.Example.Com", 16).build(), expect(NOERROR, true, CNAME, false)),
        ("apex SOA", q("apps.example.com", 6).build(), expect(NOERROR, true, &[RecordType::SOA], false)),
        ("apex NS", q("apps.example.com", 2).build(), expect(NOERROR, true, &[RecordType::NS], false)),
        ("apex ANY: the SOA only", q("apps.example.com", 255).build(), expect(NOERROR, true, &[RecordType::SOA], false)),
        ("apex other type: NODATA", q("apps.example.com", 28).build(), expect(NOERROR, true, &[], true)),
        ("unknown app", q("ws-999.apps.example.com", 1).build(), expect(NXDOMAIN, true, &[], true)),
        ("unlisted service", q("ftp-123456.apps.example.com", 1).build(), expect(NXDOMAIN, true, &[], true)),
        ("deeper name", q("x.ws-123456.apps.example.com", 1).build(), expect(NXDOMAIN, true, &[], true)),
        ("outside the zone", q("example.org", 1).build(), expect(REFUSED, false, &[], false)),
        ("AXFR", q("apps.example.com", 252).build(), expect(REFUSED, false, &[], false)),
        ("IXFR", q("apps.example.com", 251).build(), expect(REFUSED, false, &[], false)),
        ("class HS", q("apps.example.com", 6).class(4).build(), expect(REFUSED, false, &[], false)),
        ("CHAOS id.server", q("id.server", 16).class(3).build(), expect(NOERROR, true, &[RecordType::TXT], false)),
        ("CHAOS version.bind", q("version.bind", 16).class(3).build(), expect(NOERROR, true, &[RecordType::TXT], false)),
        ("CHAOS other name", q("authors.bind", 16).class(3).build(), expect(REFUSED, false, &[], false)),
        ("QDCOUNT 0", raw_message(0x4242, 0x0100, [0, 0, 0, 0], &[]), expect(FORMERR, false, &[], false)),
        ("QDCOUNT 2", raw_message(0x4242, 0x0100, [2, 0, 0, 0], &[good_question.clone(), good_question.clone()].concat()), expect(FORMERR, false, &[], false)),
        ("pointer in the question", raw_message(0x4242, 0x0100, [1, 0, 0, 0], &[0xC0, 0x0C, 0, 1, 0, 1]), expect(FORMERR, false, &[], false)),
        ("name over 255 bytes", raw_message(0x4242, 0x0100, [1, 0, 0, 0], &long_name), expect(FORMERR, false, &[], false)),
        ("record cut short", raw_message(0x4242, 0x0100, [1, 0, 0, 1], &good_question), expect(FORMERR, false, &[], false)),
        ("two OPTs", { let opt = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]; raw_message(0x4242, 0x0100, [1, 0, 0, 2], &[&good_question[..], &opt, &opt].concat()) }, expect(FORMERR, false, &[], false)),
        ("QTYPE 0", q("apps.example.com", 0).build(), expect(NOTIMP, false, &[], false)),
        ("QTYPE TSIG", q("apps.example.com", 250).build(), expect(NOTIMP, false, &[], false)),
        ("QTYPE MAILA", q("apps.example.com", 254).build(), expect(NOTIMP, false, &[], false)),
        ("EDNS version 1", q("ws-123456.apps.example.com", 1).edns_version(1).build(), expect(16, false, &[], false)),
    ];
    let mut out = vec![0; MAX_TCP];
    for (what, packet, expected) in rows {
        for transport in [Transport::Udp, Transport::Tcp] {
            let len = respond(&packet, &snapshot, transport, &mut out).expect(what);
            let reply = decode(&out[..len]);
            assert_eq!(
                reply.id(),
                u16::from_be_bytes([packet[0], packet[1]]),
                "{what}"
            );
            assert!(!reply.truncated(), "{what}");
            assert_eq!(u16::from(reply.response_code()), expected.rcode, "{what}");
            assert_eq!(reply.authoritative(), expected.aa, "{what}");
            assert!(reply.recursion_desired(), "{what}: RD copied");
            assert!(!reply.recursion_available(), "{what}");
            let types: Vec<RecordType> = reply.answers().iter().map(|r| r.record_type()).collect();
            let want: Vec<RecordType> = match expected.answers {
                // The NS set: one per --ns (one by default).
                [RecordType::NS] => vec![RecordType::NS; snapshot.zone.ns_count as usize],
                other => other.to_vec(),
            };
            assert_eq!(types, want, "{what}");
            let authority: Vec<RecordType> = reply
                .name_servers()
                .iter()
                .map(|r| r.record_type())
                .collect();
            let soa: &[RecordType] = if expected.negative_soa {
                &[RecordType::SOA]
            } else {
                &[]
            };
            assert_eq!(authority, soa, "{what}");
        }
    }
}

#[test]
fn answers_carry_the_data() {
    let snapshot = snapshot();
    let mut out = [0; EDNS_UDP];
    let len = respond(
        &QueryBuilder::new("WS-123456.apps.example.com", 1).build(),
        &snapshot,
        Transport::Udp,
        &mut out,
    )
    .unwrap();
    let reply = decode(&out[..len]);
    let cname = &reply.answers()[0];
    assert_eq!(
        cname.name().to_string(),
        "WS-123456.apps.example.com.",
        "owner as asked"
    );
    assert_eq!(cname.ttl(), 300);
    match cname.data() {
        Some(RData::CNAME(target)) => assert_eq!(target.0.to_string(), "ws-mt1.example.com."),
        other => panic!("{other:?}"),
    }

    let len = respond(
        &QueryBuilder::new("ws-999.apps.example.com", 1).build(),
        &snapshot,
        Transport::Udp,
        &mut out,
    )
    .unwrap();
    let reply = decode(&out[..len]);
    let soa = &reply.name_servers()[0];
    assert_eq!(soa.name().to_string(), "apps.example.com.");
    assert_eq!(soa.ttl(), 60, "min(3600, minimum) (RFC 2308)");
    match soa.data() {
        Some(RData::SOA(soa)) => assert_eq!(soa.serial(), 2026112601),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_reply_to_responses_and_runts() {
    let snapshot = snapshot();
    let mut out = [0; EDNS_UDP];
    let response = QueryBuilder::new("apps.example.com", 6)
        .flags(0x8100)
        .build();
    let context = Context::new(Transport::Udp);
    let summary = respond_to(&response, &snapshot, &context, &mut out);
    assert_eq!(
        (summary.len, summary.dropped),
        (None, Some(DropReason::Response))
    );
    let summary = respond_to(&response[..11], &snapshot, &context, &mut out);
    assert_eq!(
        (summary.len, summary.dropped),
        (None, Some(DropReason::Short))
    );
}

#[test]
fn other_opcodes_get_notimp_header_only() {
    let snapshot = snapshot();
    let mut out = [0; EDNS_UDP];
    // NOTIFY (opcode 4) with a question: the header alone comes back, opcode kept.
    let notify = QueryBuilder::new("apps.example.com", 6)
        .flags(4 << 11)
        .build();
    let len = respond(&notify, &snapshot, Transport::Udp, &mut out).unwrap();
    assert_eq!(len, 12);
    assert_eq!((out[2] >> 3) & 0xF, 4, "opcode echoed");
    assert_eq!(out[3] & 0xF, NOTIMP as u8);
    assert_eq!(out[4..12], [0; 8]);
}

fn cookie_context(secrets: &Secrets) -> Context<'_> {
    Context {
        client: Some(IpAddr::from([192, 0, 2, 1])),
        now: 1_800_000_000,
        cookies: Some(secrets),
        ..Context::new(Transport::Udp)
    }
}

#[test]
fn cookies_malformed_and_well_formed() {
    let snapshot = snapshot();
    let secrets = Secrets::new([9; 16], None);
    let context = cookie_context(&secrets);
    let mut out = [0; EDNS_UDP];
    let query = |option: &[u8]| {
        QueryBuilder::new("ws-123456.apps.example.com", 1)
            .option(10, option)
            .build()
    };
    // Shorter than a client cookie: FORMERR, no cookie back (RFC 7873 §5.2.2).
    let summary = respond_to(&query(&[1; 5]), &snapshot, &context, &mut out);
    let reply = decode(&out[..summary.len.unwrap()]);
    assert_eq!(reply.response_code(), ResponseCode::FormErr);
    let edns = reply.extensions().as_ref().unwrap();
    assert!(edns.options().as_ref().is_empty());
    // A client cookie: the answer, with the client cookie and a 16-byte server cookie.
    let summary = respond_to(&query(&[1; 8]), &snapshot, &context, &mut out);
    let reply = decode(&out[..summary.len.unwrap()]);
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(reply.answers().len(), 1);
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let options = reply.extensions().as_ref().unwrap().options();
    let Some(EdnsOption::Unknown(10, bytes)) = options.get(EdnsCode::Cookie) else {
        panic!("a cookie answers a cookie: {options:?}");
    };
    assert_eq!(bytes.len(), 24);
    assert_eq!(bytes[..8], [1; 8], "client cookie echoed");
}

/// The RRL slip truncates the finished reply in place: the same bytes as an answer that was
/// too large for UDP, with the question and the OPT (and its cookie) kept.
#[test]
fn slip_truncates_the_written_reply() {
    let snapshot = snapshot();
    let secrets = Secrets::new([9; 16], None);
    let context = cookie_context(&secrets);
    let mut out = [0; EDNS_UDP];
    let queries = [
        QueryBuilder::new("ws-123456.apps.example.com", 1).option(10, &[1; 8]),
        QueryBuilder::new("ws-999.apps.example.com", 1).option(10, &[1; 8]),
        QueryBuilder::new("apps.example.com", 2).option(3, &[]),
        QueryBuilder::new("apps.example.com", 6).edns_version(1),
        QueryBuilder::new("example.org", 1),
    ];
    for builder in queries {
        let packet = builder.build();
        let plain = respond_to(&packet, &snapshot, &context, &mut out);
        let plain_reply = decode(&out[..plain.len.unwrap()]);
        let mut slipped = plain;
        slipped.truncate(&mut out);
        assert!(slipped.truncated);
        let reply = decode(&out[..slipped.len.unwrap()]);
        assert!(reply.truncated(), "{builder:?}");
        assert_eq!(reply.answer_count() + reply.name_server_count(), 0);
        assert_eq!(reply.queries(), plain_reply.queries());
        assert_eq!(reply.response_code(), plain_reply.response_code());
        assert_eq!(reply.authoritative(), plain_reply.authoritative());
        assert_eq!(
            reply.extensions(),
            plain_reply.extensions(),
            "the OPT is kept"
        );
    }
    // FORMERR is left as it is, as before the rules ran.
    let formerr = raw_message(7, 0x0100, [0, 0, 0, 0], &[]);
    let mut summary = respond_to(&formerr, &snapshot, &context, &mut out);
    let before = out[..summary.len.unwrap()].to_vec();
    summary.truncate(&mut out);
    assert!(!summary.truncated);
    assert_eq!(out[..summary.len.unwrap()], before[..]);
}

/// The configuration caps the NS set so that an apex NS answer always fits one TCP message,
/// with the largest OPT we send (NSID with a 255-byte identity and a cookie): the largest set
/// it accepts is answered whole.
#[test]
fn largest_ns_set_fits_over_tcp() {
    let mut config = Config {
        identity: Some("i".repeat(255)),
        ..Config::default()
    };
    let name = |i: usize| {
        format!(
            "{i:03}.{}.{}.{}",
            "n".repeat(63),
            "n".repeat(63),
            "n".repeat(63)
        )
    };
    let mut count = 1;
    while {
        config.ns = (0..count + 1).map(name).collect();
        config.zone_settings().is_ok()
    } {
        count += 1;
    }
    config.ns = (0..count).map(name).collect();
    assert!(count > 200, "{count} NS names of 200 bytes fit");
    let json = br#"{"serial": 1, "apps": {}}"#;
    let snapshot = Snapshot::from_json(json, &config.zone().unwrap()).unwrap();
    let secrets = Secrets::new([9; 16], None);
    let context = Context {
        transport: Transport::Tcp,
        ..cookie_context(&secrets)
    };
    let query = QueryBuilder::new("apps.example.com", 2)
        .option(3, &[])
        .option(10, &[1; 8])
        .build();
    let mut out = vec![0; MAX_TCP];
    let summary = respond_to(&query, &snapshot, &context, &mut out);
    let reply = decode(&out[..summary.len.unwrap()]);
    assert!(!reply.truncated());
    assert_eq!(reply.answer_count() as usize, count);
    let options = reply.extensions().as_ref().unwrap().options().as_ref();
    assert_eq!(options.len(), 2, "NSID and the cookie are both there");
}
