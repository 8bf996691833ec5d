//! One test per rule of the zone, over real UDP and TCP, decoded with hickory-proto.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn cname_target(record: &Record) -> String {
    match record.data() {
        Some(RData::CNAME(target)) => target.0.to_ascii(),
        other => panic!("not a CNAME: {other:?}"),
    }
}

fn soa_of(record: &Record) -> SOA {
    match record.data() {
        Some(RData::SOA(soa)) => soa.clone(),
        other => panic!("not a SOA: {other:?}"),
    }
}

/// Header bits every reply must have: QR, the query's ID and opcode, RD copied, RA/AD/CD clear.
fn assert_header(reply: &Message, rd: bool) {
    assert_eq!(reply.id(), 0x4242);
    assert_eq!(
        reply.message_type(),
        hickory_proto::op::MessageType::Response
    );
    assert_eq!(reply.recursion_desired(), rd);
    assert!(!reply.recursion_available());
    assert!(!reply.authentic_data());
    assert!(!reply.checking_disabled());
}

/// The negative-answer SOA: owned by the apex, TTL min(3600, 60), serial from the dump.
fn assert_negative_soa(reply: &Message) {
    assert_eq!(reply.answer_count(), 0);
    assert_eq!(reply.name_server_count(), 1);
    let soa_record = &reply.name_servers()[0];
    assert_eq!(soa_record.name(), &name("apps.example.com."));
    assert_eq!(soa_record.ttl(), 60);
    let soa = soa_of(soa_record);
    assert_eq!(soa.serial(), 2026112601);
    assert_eq!(soa.minimum(), 60);
}

#[test]
fn known_app_gets_its_cluster_cname() {
    let server = Cnamed::start(&[]);
    let cases = [
        ("ws-123456.apps.example.com.", "ws-mt1.example.com."),
        ("sockjs-123456.apps.example.com.", "sockjs-mt1.example.com."),
        ("api-345678.apps.example.com.", "api-eu.example.com."),
        ("ws-my-app.apps.example.com.", "ws-eu.example.com."),
        ("ws-demo-42.apps.example.com.", "ws-ap1.example.com."),
    ];
    for (qname, target) in cases {
        for rtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::CNAME,
            RecordType::TXT,
            RecordType::ANY,
            RecordType::MX,
        ] {
            let packet = encode(&query(qname, rtype));
            for bytes in server.both(&packet) {
                let reply = decode(&bytes);
                assert_header(&reply, true);
                assert_eq!(
                    reply.response_code(),
                    ResponseCode::NoError,
                    "{qname} {rtype}"
                );
                assert!(reply.authoritative());
                assert!(!reply.truncated());
                assert_eq!(reply.answer_count(), 1, "{qname} {rtype}");
                assert_eq!(reply.name_server_count(), 0);
                assert_eq!(reply.additional_count(), 0);
                let answer = &reply.answers()[0];
                assert_eq!(answer.name(), &name(qname));
                assert_eq!(answer.record_type(), RecordType::CNAME);
                assert_eq!(answer.dns_class(), DNSClass::IN);
                assert_eq!(answer.ttl(), 300);
                assert_eq!(cname_target(answer), target);
            }
        }
    }
}

#[test]
fn names_match_without_case_and_the_question_is_echoed_byte_for_byte() {
    let server = Cnamed::start(&[]);
    let qname = "wS-MY-aPp.ApPs.ExAmPlE.cOm.";
    let packet = encode(&query(qname, RecordType::A));
    for bytes in server.both(&packet) {
        assert_eq!(raw_question(&bytes), raw_question(&packet));
        let reply = decode(&bytes);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        // The owner is the name exactly as asked.
        assert_eq!(reply.answers()[0].name().to_ascii(), qname);
        assert_eq!(cname_target(&reply.answers()[0]), "ws-eu.example.com.");
    }
}

#[test]
fn apex_answers_soa_ns_any_and_nodata() {
    let server = Cnamed::start(&[]);
    let apex = "apps.example.com.";
    for bytes in server.both(&encode(&query(apex, RecordType::SOA))) {
        let reply = decode(&bytes);
        assert_header(&reply, true);
        assert!(reply.authoritative());
        assert_eq!(reply.answer_count(), 1);
        let record = &reply.answers()[0];
        assert_eq!(record.ttl(), 3600);
        let soa = soa_of(record);
        assert_eq!(soa.mname(), &name("ns1.example.com."));
        assert_eq!(soa.rname(), &name("hostmaster.apps.example.com."));
        assert_eq!(
            (
                soa.serial(),
                soa.refresh(),
                soa.retry(),
                soa.expire(),
                soa.minimum()
            ),
            (2026112601, 3600, 600, 604800, 60)
        );
    }
    for bytes in server.both(&encode(&query(apex, RecordType::NS))) {
        let reply = decode(&bytes);
        assert!(reply.authoritative());
        let targets: Vec<_> = reply
            .answers()
            .iter()
            .map(|r| (r.ttl(), r.data().cloned()))
            .collect();
        assert_eq!(
            targets,
            [(3600, Some(RData::NS(NS(name("ns1.example.com.")))))]
        );
    }
    // RFC 8482: ANY gets one RRset, the SOA.
    for bytes in server.both(&encode(&query(apex, RecordType::ANY))) {
        let reply = decode(&bytes);
        assert_eq!(reply.answer_count(), 1);
        assert_eq!(reply.answers()[0].record_type(), RecordType::SOA);
    }
    for rtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::CNAME,
        RecordType::TXT,
    ] {
        for bytes in server.both(&encode(&query(apex, rtype))) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::NoError, "{rtype}");
            assert!(reply.authoritative());
            assert_negative_soa(&reply);
        }
    }
}

#[test]
fn several_ns_names_and_hostmaster() {
    let server = Cnamed::start(&[
        "--ns",
        "a.ns.example.net",
        "--ns",
        "b.ns.example.org.",
        "--hostmaster",
        "dns.example.net",
    ]);
    let reply = decode(&server.udp(&encode(&query("apps.example.com.", RecordType::NS))));
    assert_eq!(ns_names(&reply), ["a.ns.example.net.", "b.ns.example.org."]);
    let reply = decode(&server.udp(&encode(&query("apps.example.com.", RecordType::SOA))));
    let soa = soa_of(&reply.answers()[0]);
    assert_eq!(soa.mname(), &name("a.ns.example.net."));
    assert_eq!(soa.rname(), &name("dns.example.net."));
}

#[test]
fn other_names_in_the_zone_are_nxdomain() {
    let server = Cnamed::start(&[]);
    for qname in [
        "ws-999999.apps.example.com.",
        "ftp-123456.apps.example.com.",
        "ws.apps.example.com.",
        "ws-.apps.example.com.",
        "-123456.apps.example.com.",
        "ws-0123456.apps.example.com.",
        "x.ws-123456.apps.example.com.",
        "a.b.c.apps.example.com.",
        "ws_123456.apps.example.com.",
    ] {
        for rtype in [RecordType::A, RecordType::CNAME] {
            for bytes in server.both(&encode(&query(qname, rtype))) {
                let reply = decode(&bytes);
                assert_header(&reply, true);
                assert_eq!(reply.response_code(), ResponseCode::NXDomain, "{qname}");
                assert!(reply.authoritative());
                assert_negative_soa(&reply);
            }
        }
    }
}

#[test]
fn outside_the_zone_and_transfers_are_refused() {
    let server = Cnamed::start(&[]);
    let cases = [
        ("example.com.", RecordType::A),
        ("example.org.", RecordType::A),
        ("xapps.example.com.", RecordType::A),
        ("ws-123456.apps.example.org.", RecordType::A),
        (".", RecordType::NS),
        ("apps.example.com.", RecordType::AXFR),
        ("apps.example.com.", RecordType::IXFR),
        ("ws-123456.apps.example.com.", RecordType::AXFR),
    ];
    for (qname, rtype) in cases {
        let packet = encode(&query(qname, rtype));
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_header(&reply, true);
            assert_eq!(
                reply.response_code(),
                ResponseCode::Refused,
                "{qname} {rtype}"
            );
            assert!(!reply.authoritative());
            assert_eq!(
                reply.answer_count() + reply.name_server_count() + reply.additional_count(),
                0
            );
            assert_eq!(raw_question(&bytes), raw_question(&packet));
        }
    }
}

fn txt_of(reply: &Message) -> String {
    match reply.answers()[0].data() {
        Some(RData::TXT(txt)) => txt
            .txt_data()
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

#[test]
fn chaos_identity_and_version() {
    let server = Cnamed::start(&[]);
    let version = format!("cnamed {}", env!("CARGO_PKG_VERSION"));
    for (qname, expected) in [
        ("id.server.", IDENTITY),
        ("HOSTNAME.bind.", IDENTITY),
        ("version.server.", version.as_str()),
        ("version.bind.", version.as_str()),
    ] {
        for bytes in server.both(&encode(&query_class(qname, RecordType::TXT, DNSClass::CH))) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::NoError);
            assert!(reply.authoritative());
            assert_eq!(reply.answer_count(), 1);
            assert_eq!(reply.answers()[0].dns_class(), DNSClass::CH);
            assert_eq!(reply.answers()[0].name(), &name(qname));
            assert_eq!(txt_of(&reply), expected);
            let _: &TXT = match reply.answers()[0].data() {
                Some(RData::TXT(txt)) => txt,
                _ => unreachable!(),
            };
        }
    }
    let refused = [
        query_class("authors.bind.", RecordType::TXT, DNSClass::CH),
        query_class("apps.example.com.", RecordType::SOA, DNSClass::CH),
        query_class("ws-123456.apps.example.com.", RecordType::A, DNSClass::HS),
        query_class("ws-123456.apps.example.com.", RecordType::A, DNSClass::ANY),
        query_class("ws-123456.apps.example.com.", RecordType::A, DNSClass::NONE),
    ];
    for packet in refused {
        let reply = decode(&server.udp(&encode(&packet)));
        assert_eq!(reply.response_code(), ResponseCode::Refused, "{packet:?}");
        assert_eq!(reply.answer_count(), 0);
    }
}

#[test]
fn responses_and_runts_get_no_reply() {
    let server = Cnamed::start(&[]);
    let mut response = encode(&query("ws-123456.apps.example.com.", RecordType::A));
    response[2] |= 0x80;
    assert_eq!(server.udp_raw(&response, false), None);
    assert_eq!(server.udp_raw(&[0x42; 11], false), None);
    assert_eq!(server.udp_raw(&[], false), None);
    // The server is still there.
    let reply = decode(&server.udp(&encode(&query(
        "ws-123456.apps.example.com.",
        RecordType::A,
    ))));
    assert_eq!(reply.response_code(), ResponseCode::NoError);
}

/// Opcodes other than QUERY get NOTIMP, header only; UPDATE without `--update-key` gets
/// REFUSED (issue 23), before anything else is read.
#[test]
fn unknown_opcodes_get_notimp_before_anything_else() {
    let server = Cnamed::start(&[]);
    // ISC's EDNS compliance test: opcode 15, no question.
    let packet = raw_query(0x4242, 0x7800 | 0x0100, [0, 0, 0, 0], &[]);
    // NOTIFY (4) and UPDATE (5) with a question, and STATUS (2) with garbage after the header.
    let notify = {
        let mut p = encode(&query("apps.example.com.", RecordType::SOA));
        p[2] = (p[2] & 0x87) | (4 << 3);
        p
    };
    let update = {
        let mut p = encode(&query("apps.example.com.", RecordType::SOA));
        p[2] = (p[2] & 0x87) | (5 << 3);
        p
    };
    let status = raw_query(0x4242, 2 << 11, [1, 0, 0, 0], &[0xC0, 0x0C, 0xFF]);
    for (packet, opcode) in [(packet, 15u8), (notify, 4), (update, 5), (status, 2)] {
        for bytes in server.both(&packet) {
            assert_eq!(bytes.len(), 12, "header only");
            assert_eq!(bytes[0..2], [0x42, 0x42]);
            assert_eq!(bytes[2] & 0x80, 0x80, "QR");
            assert_eq!((bytes[2] >> 3) & 0xF, opcode, "opcode echoed");
            let want = if opcode == 5 { 5 } else { 4 };
            assert_eq!(bytes[3] & 0xF, want, "NOTIMP, or REFUSED for UPDATE");
            assert_eq!(bytes[3] & 0xF0, 0, "RA, Z, AD, CD clear");
            assert_eq!(&bytes[4..], &[0; 8]);
        }
    }
}

#[test]
fn malformed_queries_get_formerr() {
    let server = Cnamed::start(&[]);
    let good_question = &encode(&query("ws-123456.apps.example.com.", RecordType::A))[12..];
    let mut long_label = vec![64u8];
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut long_name = Vec::new();
    for _ in 0..4 {
        long_name.push(63);
        long_name.extend_from_slice(&[b'a'; 63]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let two_questions = [good_question, good_question].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("QDCOUNT 0", raw_query(0x4242, 0x0100, [0, 0, 0, 0], &[])),
        (
            "QDCOUNT 2",
            raw_query(0x4242, 0x0100, [2, 0, 0, 0], &two_questions),
        ),
        (
            "QDCOUNT 65535",
            raw_query(0x4242, 0x0100, [65535, 0, 0, 0], good_question),
        ),
        (
            "question cut short",
            raw_query(
                0x4242,
                0x0100,
                [1, 0, 0, 0],
                &good_question[..good_question.len() - 2],
            ),
        ),
        (
            "pointer in the question",
            raw_query(0x4242, 0x0100, [1, 0, 0, 0], &[0xC0, 0x0C, 0, 1, 0, 1]),
        ),
        (
            "label of 64",
            raw_query(0x4242, 0x0100, [1, 0, 0, 0], &long_label),
        ),
        (
            "name of 257",
            raw_query(0x4242, 0x0100, [1, 0, 0, 0], &long_name),
        ),
        (
            "ARCOUNT past the end",
            raw_query(0x4242, 0x0100, [1, 0, 0, 1], good_question),
        ),
    ];
    for (what, packet) in cases {
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_header(&reply, true);
            assert_eq!(reply.response_code(), ResponseCode::FormErr, "{what}");
            assert!(!reply.authoritative());
            assert_eq!(reply.answer_count() + reply.name_server_count(), 0);
            if what == "ARCOUNT past the end" {
                // The question itself was fine: it is echoed.
                assert_eq!(raw_question(&bytes), raw_question(&packet));
            } else {
                assert_eq!(reply.query_count(), 0, "{what}");
            }
        }
    }
}

#[test]
fn meta_types_get_notimp_with_the_question() {
    let server = Cnamed::start(&[]);
    for code in [0u16, 41, 128, 249, 250, 253, 254] {
        let packet = encode(&query(
            "ws-123456.apps.example.com.",
            RecordType::from(code),
        ));
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::NotImp, "type {code}");
            assert_eq!(raw_question(&bytes), raw_question(&packet));
            assert_eq!(reply.answer_count(), 0);
        }
    }
}

#[test]
fn header_bits_are_copied_or_cleared() {
    let server = Cnamed::start(&[]);
    let mut packet = encode(&query("ws-123456.apps.example.com.", RecordType::A));
    packet[2] &= !0x01; // RD off
    packet[3] |= 0x80 | 0x40 | 0x20 | 0x10; // RA, Z, AD, CD on: none may come back
    for bytes in server.both(&packet) {
        assert_eq!(bytes[3] & 0xF0, 0, "RA, Z, AD, CD clear");
        let reply = decode(&bytes);
        assert_header(&reply, false);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
    }
}

#[test]
fn version_string_can_be_set_or_hidden() {
    let custom = Cnamed::start(&["--version-string", "edge DNS"]);
    let reply = decode(&custom.udp(&encode(&query_class(
        "version.bind.",
        RecordType::TXT,
        DNSClass::CH,
    ))));
    assert_eq!(txt_of(&reply), "edge DNS");
    let hidden = Cnamed::start(&["--version-string", "none"]);
    for qname in ["version.bind.", "VERSION.server."] {
        for bytes in hidden.both(&encode(&query_class(qname, RecordType::TXT, DNSClass::CH))) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::Refused, "{qname}");
            assert_eq!(reply.answer_count(), 0);
        }
    }
    // The identity stays.
    let reply = decode(&hidden.udp(&encode(&query_class(
        "id.server.",
        RecordType::TXT,
        DNSClass::CH,
    ))));
    assert_eq!(txt_of(&reply), IDENTITY);
}
