//! EDNS(0) (RFC 6891), NSID (RFC 5001) and the response size limits.

mod common;

use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::RecordType;

const HIT: &str = "ws-123456.apps.example.com.";

/// Appends a raw OPT record to an encoded query and bumps ARCOUNT.
fn add_opt(
    packet: &mut Vec<u8>,
    owner: &[u8],
    payload: u16,
    version: u8,
    flags: u16,
    options: &[u8],
) {
    packet.extend_from_slice(owner);
    packet.extend_from_slice(&41u16.to_be_bytes());
    packet.extend_from_slice(&payload.to_be_bytes());
    packet.extend_from_slice(&[0, version]);
    packet.extend_from_slice(&flags.to_be_bytes());
    packet.extend_from_slice(&(options.len() as u16).to_be_bytes());
    packet.extend_from_slice(options);
    let arcount = u16::from_be_bytes([packet[10], packet[11]]) + 1;
    packet[10..12].copy_from_slice(&arcount.to_be_bytes());
}

fn plain(name: &str, rtype: RecordType) -> Vec<u8> {
    encode(&query(name, rtype))
}

fn edns_of(reply: &Message) -> &Edns {
    reply.extensions().as_ref().expect("an OPT in the reply")
}

/// The reply's OPT, read raw: it is the last record and, without options, its last 11 bytes.
fn raw_opt_tail(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.len() - 11..]
}

#[test]
fn opt_gets_opt_with_our_payload_and_do_copied() {
    let server = Cnamed::start(&[]);
    for (flags, expected_flags) in [
        (0u16, 0u16),
        (0x8000, 0x8000),
        (0x7FFF, 0),
        (0xFFFF, 0x8000),
    ] {
        let mut packet = plain(HIT, RecordType::A);
        add_opt(&mut packet, &[0], 4096, 0, flags, &[]);
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::NoError);
            assert_eq!(reply.answer_count(), 1);
            let edns = edns_of(&reply);
            assert_eq!(edns.max_payload(), 1232);
            assert_eq!(edns.version(), 0);
            assert_eq!(edns.rcode_high(), 0);
            let tail = raw_opt_tail(&bytes);
            assert_eq!(&tail[..3], &[0, 0, 41], "root owner, type OPT");
            assert_eq!(
                u16::from_be_bytes([tail[7], tail[8]]),
                expected_flags,
                "DO copied, Z zero"
            );
        }
    }
}

#[test]
fn higher_versions_get_badvers() {
    let server = Cnamed::start(&[]);
    for version in [1u8, 2, 255] {
        let mut packet = plain(HIT, RecordType::A);
        add_opt(&mut packet, &[0], 1232, version, 0x8000, &[]);
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            // 16 is BADVERS in an OPT context; hickory names the shared code BADSIG.
            assert_eq!(u16::from(reply.response_code()), 16, "version {version}");
            assert_eq!(
                bytes[3] & 0xF,
                0,
                "low bits in the header, high bits in the OPT"
            );
            assert!(!reply.authoritative());
            assert_eq!(reply.answer_count() + reply.name_server_count(), 0);
            assert_eq!(edns_of(&reply).version(), 0);
            assert_eq!(raw_question(&bytes), raw_question(&packet));
        }
    }
}

#[test]
fn broken_opts_get_formerr_without_opt() {
    let server = Cnamed::start(&[]);
    let mut two = plain(HIT, RecordType::A);
    add_opt(&mut two, &[0], 1232, 0, 0, &[]);
    add_opt(&mut two, &[0], 1232, 0, 0, &[]);
    let mut not_root = plain(HIT, RecordType::A);
    add_opt(&mut not_root, b"\x03com\x00", 1232, 0, 0, &[]);
    let mut option_overruns = plain(HIT, RecordType::A);
    add_opt(&mut option_overruns, &[0], 1232, 0, 0, &[0, 3, 0, 9, 1]);
    let mut in_answer_section = plain(HIT, RecordType::A);
    add_opt(&mut in_answer_section, &[0], 1232, 0, 0, &[]);
    in_answer_section[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    for (what, packet) in [
        ("two OPTs", two),
        ("owner not root", not_root),
        ("option overruns", option_overruns),
        ("OPT in the answer section", in_answer_section),
    ] {
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), ResponseCode::FormErr, "{what}");
            assert!(reply.extensions().is_none(), "{what}");
            assert_eq!(raw_question(&bytes), raw_question(&packet), "{what}");
        }
    }
}

#[test]
fn error_replies_to_edns_queries_carry_opt() {
    let server = Cnamed::start(&[]);
    let cases: Vec<(Vec<u8>, ResponseCode)> = vec![
        (plain("example.org.", RecordType::A), ResponseCode::Refused),
        (
            plain("ws-1.apps.example.com.", RecordType::A),
            ResponseCode::NXDomain,
        ),
        (plain(HIT, RecordType::from(250)), ResponseCode::NotImp),
        (
            plain("apps.example.com.", RecordType::AXFR),
            ResponseCode::Refused,
        ),
        (
            raw_query(0x4242, 0x0100, [0, 0, 0, 0], &[]),
            ResponseCode::FormErr,
        ),
    ];
    for (mut packet, rcode) in cases {
        add_opt(&mut packet, &[0], 1232, 0, 0x8000, &[]);
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_eq!(reply.response_code(), rcode);
            let edns = edns_of(&reply);
            assert!(edns.dnssec_ok());
            assert_eq!(edns.max_payload(), 1232);
        }
    }
}

#[test]
fn unknown_options_are_ignored_and_nsid_gets_the_identity() {
    let server = Cnamed::start(&[]);
    let mut unknown = plain(HIT, RecordType::A);
    add_opt(&mut unknown, &[0], 1232, 0, 0, &[0xFD, 0xE9, 0, 3, 1, 2, 3]);
    for bytes in server.both(&unknown) {
        let reply = decode(&bytes);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.answer_count(), 1);
        assert!(edns_of(&reply).options().as_ref().is_empty());
    }
    // NSID alongside a client cookie and an unknown option.
    let options = [
        &[0, 10, 0, 8][..],
        &[9; 8],
        &[0, 3, 0, 0],
        &[0xFD, 0xE9, 0, 0],
    ]
    .concat();
    let mut nsid = plain(HIT, RecordType::A);
    add_opt(&mut nsid, &[0], 1232, 0, 0, &options);
    for bytes in server.both(&nsid) {
        let reply = decode(&bytes);
        assert_eq!(reply.answer_count(), 1);
        match edns_of(&reply).option(EdnsCode::NSID) {
            Some(EdnsOption::Unknown(_, data)) => assert_eq!(data, IDENTITY.as_bytes()),
            other => panic!("NSID option: {other:?}"),
        }
    }
}

/// `count` NS names of 60 bytes each in wire form: 72 bytes a record.
fn many_ns(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("ns{i:02}-{}.example.net", "x".repeat(44)))
        .collect()
}

fn start_with_ns(count: usize) -> Cnamed {
    let names = many_ns(count);
    let mut args = Vec::new();
    for name in &names {
        args.push("--ns");
        args.push(name.as_str());
    }
    Cnamed::start(&args)
}

#[test]
fn udp_size_limits_and_truncation() {
    // 10 NS records: about 780 bytes. Over 512, under 1232.
    let server = start_with_ns(10);
    let apex_ns = plain("apps.example.com.", RecordType::NS);
    let cases: [(Option<u16>, bool); 6] = [
        (None, true),
        (Some(0), true),
        (Some(511), true),
        (Some(700), true),
        (Some(1232), false),
        (Some(4096), false),
    ];
    for (payload, truncated) in cases {
        let mut packet = apex_ns.clone();
        if let Some(payload) = payload {
            add_opt(&mut packet, &[0], payload, 0, 0, &[]);
        }
        let bytes = server.udp(&packet);
        let limit = payload.map_or(512, |p| (p as usize).clamp(512, 1232));
        assert!(bytes.len() <= limit, "{payload:?}: {} bytes", bytes.len());
        let reply = decode(&bytes);
        assert_eq!(reply.truncated(), truncated, "{payload:?}");
        assert_eq!(reply.extensions().is_some(), payload.is_some());
        assert_eq!(raw_question(&bytes), raw_question(&packet));
        if truncated {
            assert_eq!(
                reply.answer_count() + reply.name_server_count(),
                0,
                "question only"
            );
        } else {
            assert_eq!(reply.answer_count(), 10);
        }
        // TCP is never truncated.
        let reply = decode(&server.tcp(&packet));
        assert!(!reply.truncated());
        assert_eq!(reply.answer_count(), 10);
    }
}

#[test]
fn tcp_carries_what_udp_cannot() {
    // 20 NS records: about 1500 bytes, over the largest UDP response.
    let server = start_with_ns(20);
    let mut packet = plain("apps.example.com.", RecordType::NS);
    add_opt(&mut packet, &[0], 4096, 0, 0, &[0, 3, 0, 0]);
    let udp = decode(&server.udp(&packet));
    assert!(udp.truncated());
    assert_eq!(udp.answer_count(), 0);
    let tcp_bytes = server.tcp(&packet);
    assert!(tcp_bytes.len() > 1232);
    let tcp = decode(&tcp_bytes);
    assert!(!tcp.truncated());
    let expected: Vec<String> = many_ns(20).iter().map(|n| format!("{n}.")).collect();
    assert_eq!(ns_names(&tcp), expected);
    assert!(edns_of(&tcp).option(EdnsCode::NSID).is_some());
}

/// RFC 6891 §6.1.3: the version is checked first, so options that do not parse in a version
/// we do not speak still get BADVERS, not FORMERR; a cookie in it is not answered.
#[test]
fn badvers_comes_before_the_options() {
    let server = Cnamed::start(&[]);
    for options in [&[0u8, 3, 0, 9][..], &[0, 10, 0, 3, 1, 2, 3], &[0, 10]] {
        let mut packet = plain(HIT, RecordType::A);
        add_opt(&mut packet, &[0], 1232, 1, 0, options);
        for bytes in server.both(&packet) {
            let reply = decode(&bytes);
            assert_eq!(u16::from(reply.response_code()), 16, "{options:?}");
            let edns = reply.extensions().as_ref().expect("an OPT back");
            assert!(edns.options().as_ref().is_empty(), "{options:?}");
        }
        // Version 0 with the same options is malformed.
        let mut packet = plain(HIT, RecordType::A);
        add_opt(&mut packet, &[0], 1232, 0, 0, options);
        let reply = decode(&server.udp(&packet));
        assert_eq!(reply.response_code(), ResponseCode::FormErr, "{options:?}");
    }
}

/// A query may be as long as a DNS message can be (RFC 1035 §4.2.2), EDNS padding (RFC 7830)
/// and all: a 5,000-byte and a 60,000-byte query over UDP are answered. Before, anything over
/// 4,096 bytes got no reply and was counted as too short.
#[test]
fn large_udp_queries_are_answered() {
    let server = Cnamed::start(&[]);
    for padding in [5_000usize, 60_000] {
        let mut option = vec![0, 12];
        option.extend_from_slice(&(padding as u16).to_be_bytes());
        option.resize(4 + padding, 0);
        let mut packet = plain(HIT, RecordType::A);
        add_opt(&mut packet, &[0], 1232, 0, 0, &option);
        let reply = decode(&server.udp(&packet));
        assert_eq!(reply.response_code(), ResponseCode::NoError, "{padding}");
        assert_eq!(reply.answer_count(), 1, "{padding}");
    }
}
