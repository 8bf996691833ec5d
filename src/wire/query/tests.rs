//! Parser unit tests: byte fixtures, one case per check.

use super::*;
use crate::testing::raw_message;

const QNAME: &[u8] = b"\x09ws-123456\x04apps\x07example\x03com\x00";

fn query(qdcount: u16, arcount: u16, body: &[&[u8]]) -> Vec<u8> {
    raw_message(0xABCD, flags::RD, [qdcount, 0, 0, arcount], &body.concat())
}

const QTAIL_A_IN: &[u8] = &[0, 1, 0, 1];
const OPT_1232_DO: &[u8] = &[0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0];

#[test]
fn plain_query() {
    let packet = query(1, 0, &[QNAME, QTAIL_A_IN]);
    let q = parse_query(&packet).unwrap();
    assert_eq!(q.id, 0xABCD);
    assert_eq!(q.flags, flags::RD);
    assert_eq!(q.question.name, QNAME);
    assert_eq!(q.question.raw.len(), QNAME.len() + 4);
    assert_eq!(q.question.qtype, Rtype::A);
    assert_eq!(q.question.qclass, Class::IN);
    assert_eq!(q.opt, None);
}

#[test]
fn edns_query() {
    let nsid = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0];
    for (opt, payload, dnssec_ok, has_nsid) in [
        (OPT_1232_DO, 1232, true, false),
        (&nsid[..], 4096, false, true),
    ] {
        let packet = query(1, 1, &[QNAME, QTAIL_A_IN, opt]);
        let got = parse_query(&packet).unwrap().opt.unwrap();
        assert_eq!(got.udp_payload, payload);
        assert_eq!(got.version, 0);
        assert_eq!(got.dnssec_ok(), dnssec_ok);
        assert_eq!(got.has_option(super::super::OptionCode::NSID), has_nsid);
    }
}

fn formerr_cause(packet: &[u8]) -> Option<FormErrCause> {
    match parse_query(packet) {
        Err(Reject::FormErr { cause, .. }) => Some(cause),
        _ => None,
    }
}

#[test]
fn drops_and_notimp() {
    assert_eq!(parse_query(&[0; 11]), Err(Reject::Drop(DropReason::Short)));
    let mut response = query(1, 0, &[QNAME, QTAIL_A_IN]);
    response[2] |= 0x80;
    assert_eq!(
        parse_query(&response),
        Err(Reject::Drop(DropReason::Response))
    );
    // Opcode 15, no question at all: NOTIMP wins over FORMERR.
    let notify = [0, 7, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        parse_query(&notify),
        Err(Reject::NotImp {
            id: 7,
            flags: 0x7800
        })
    );
}

#[test]
fn malformed_questions() {
    let long_label = [&[64u8][..], &[b'a'; 64], &[0]].concat();
    let mut long_name = Vec::new();
    for _ in 0..4 {
        long_name.push(63);
        long_name.extend_from_slice(&[b'a'; 63]);
    }
    long_name.push(0);
    let cases: &[&[&[u8]]] = &[
        &[QNAME],                         // no QTYPE/QCLASS
        &[QNAME, &[0, 1, 0]],             // QCLASS cut short
        &[b"\x09ws-12"],                  // label runs past the end
        &[b"\xC0\x0C", QTAIL_A_IN],       // pointer to itself
        &[b"\x02ws\xC0\x0C", QTAIL_A_IN], // pointer after a label
        &[&long_label, QTAIL_A_IN],       // label of 64
        &[&long_name, QTAIL_A_IN],        // name of 257
        &[b"\x80abc\x00", QTAIL_A_IN],    // reserved label type
    ];
    for body in cases {
        assert_eq!(
            formerr_cause(&query(1, 0, body)),
            Some(FormErrCause::Question),
            "{body:?}"
        );
    }
}

#[test]
fn question_counts() {
    assert_eq!(
        parse_query(&query(0, 0, &[])),
        Err(Reject::NoQuestion {
            id: 0xABCD,
            flags: flags::RD,
            opt: None,
        })
    );
    let two = query(2, 1, &[QNAME, QTAIL_A_IN, QNAME, QTAIL_A_IN, OPT_1232_DO]);
    match parse_query(&two) {
        Err(Reject::FormErr { question, opt, .. }) => {
            assert_eq!(question, None);
            assert_eq!(opt.unwrap().udp_payload, 1232, "OPT is still echoed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        formerr_cause(&query(65535, 0, &[QNAME, QTAIL_A_IN])),
        Some(FormErrCause::QuestionCount)
    );
}

#[test]
fn malformed_opt() {
    let mut not_root = vec![1, b'x', 0];
    not_root.extend_from_slice(&OPT_1232_DO[1..]);
    let bad_option = [0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 9];
    use FormErrCause::{Opt, Records};
    let cases: &[(u16, &[&[u8]], FormErrCause)] = &[
        (2, &[OPT_1232_DO, OPT_1232_DO], Opt),
        (1, &[&not_root], Opt),
        (1, &[&bad_option], Opt),
        (1, &[&OPT_1232_DO[..8]], Records),
        (2, &[OPT_1232_DO], Records),
    ];
    for (arcount, extra, expected) in cases {
        let mut body = vec![QNAME, QTAIL_A_IN];
        body.extend_from_slice(extra);
        match parse_query(&query(1, *arcount, &body)) {
            Err(Reject::FormErr {
                question,
                opt,
                cause,
                ..
            }) => {
                assert!(question.is_some(), "question still echoed");
                assert_eq!(opt, None);
                assert_eq!(cause, *expected, "{extra:?}");
            }
            other => panic!("{extra:?}: {other:?}"),
        }
    }
    // An OPT in the answer section.
    let mut packet = query(1, 0, &[QNAME, QTAIL_A_IN, OPT_1232_DO]);
    packet[7] = 1;
    assert_eq!(formerr_cause(&packet), Some(Opt));
}

#[test]
fn other_additional_records_are_skipped() {
    // A compressed owner name and some RDATA before the OPT.
    let record = [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1];
    let packet = query(1, 2, &[QNAME, QTAIL_A_IN, &record, OPT_1232_DO]);
    assert!(parse_query(&packet).unwrap().opt.is_some());
}
