//! The oracle of the `query` fuzz target, shared with the stable regression test
//! (tests/fuzz_corpus.rs) so that both judge a reply the same way: no panic; a reply echoes
//! the ID, sets QR, fits the transport's limit, decodes with hickory-proto with nothing
//! trailing, echoes the question byte for byte when it has one, and carries an RCODE the rules
//! allow. Each packet is answered three ways: without cookies, with cookies for a client
//! address, and slipped by rate limiting (truncated) with cookies.

use std::sync::OnceLock;

use cnamed::answer::{respond, respond_to, Context, Transport};
use cnamed::config::Config;
use cnamed::cookie::{self, Secrets};
use cnamed::snapshot::Snapshot;
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The sample dump (data/apps.json) with the default zone and identity "fuzz", built once.
pub(crate) fn sample_snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let zone = Config {
            identity: Some("fuzz".into()),
            ..Config::default()
        }
        .zone()
        .unwrap();
        Snapshot::from_json(include_bytes!("../../data/apps.json"), &zone).unwrap()
    })
}

/// RCODEs cnamed may send: NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED, BADVERS.
const ALLOWED_RCODES: [u16; 6] = [0, 1, 3, 4, 5, 16];

pub(crate) fn check(packet: &[u8], snapshot: &Snapshot) {
    let secrets = Secrets::new([0x42; 16], Some([0x24; 16]));
    let mut out = vec![0u8; 65535];
    for (transport, limit) in [(Transport::Udp, 1232), (Transport::Tcp, 65535)] {
        let plain = respond(packet, snapshot, transport, &mut out);
        let udp = transport == Transport::Udp;
        check_reply(packet, &out, plain, limit, udp);
        let client = if packet.len() % 2 == 0 {
            "192.0.2.1".parse().unwrap()
        } else {
            "2001:db8::1".parse().unwrap()
        };
        for truncate in [false, true] {
            let context = Context {
                client: Some(client),
                now: 1_800_000_000,
                cookies: Some(&secrets),
                ..Context::new(transport)
            };
            let mut summary = respond_to(packet, snapshot, &context, &mut out);
            if truncate {
                summary.truncate(&mut out);
            }
            let message = check_reply(packet, &out, summary.len, limit, udp || truncate);
            let Some(message) = message else { continue };
            let reply_cookie = message.extensions().as_ref().and_then(|edns| {
                edns.options()
                    .get(hickory_proto::rr::rdata::opt::EdnsCode::Cookie)
            });
            match summary.cookie {
                Some(cookie::Check::Malformed) => {
                    assert_eq!(
                        u16::from(message.response_code()),
                        1,
                        "malformed cookie: FORMERR"
                    );
                    assert!(reply_cookie.is_none());
                }
                Some(_) => assert!(reply_cookie.is_some(), "a cookie answers a cookie"),
                None => assert!(reply_cookie.is_none(), "no cookie unasked"),
            }
            if truncate && summary.formerr.is_none() && plain.is_some() {
                assert!(message.truncated(), "a slipped answer is truncated");
            }
        }
    }
}

/// Checks one reply; returns it decoded when it is a normal (QUERY opcode) reply.
fn check_reply(
    packet: &[u8],
    out: &[u8],
    len: Option<usize>,
    limit: usize,
    may_truncate: bool,
) -> Option<Message> {
    {
        let Some(len) = len else {
            // Silence only for runts and responses.
            assert!(
                packet.len() < 12 || packet[2] & 0x80 != 0,
                "dropped a query"
            );
            return None;
        };
        let reply = &out[..len];
        assert!(len <= limit, "{len} bytes over {limit}");
        assert!(len >= 12);
        assert_eq!(reply[..2], packet[..2], "ID echoed");
        assert_eq!(reply[2] & 0x80, 0x80, "QR set");
        assert_eq!(reply[2] & 0x01, packet[2] & 0x01, "RD copied");
        assert_eq!(reply[3] & 0xF0, 0, "RA, Z, AD, CD clear");
        let opcode = (packet[2] >> 3) & 0xF;
        if opcode != 0 {
            // NOTIMP, header only, opcode echoed; hickory cannot decode unknown opcodes.
            // UPDATE without --update-key (the rules alone): REFUSED, before any TSIG.
            assert_eq!(len, 12);
            assert_eq!((reply[2] >> 3) & 0xF, opcode);
            assert_eq!(reply[3] & 0xF, if opcode == 5 { 5 } else { 4 });
            assert_eq!(reply[4..12], [0; 8]);
            return None;
        }
        let mut decoder = BinDecoder::new(reply);
        let message = Message::read(&mut decoder).expect("the reply decodes");
        assert!(decoder.is_empty(), "trailing bytes");
        let rcode = u16::from(message.response_code());
        assert!(ALLOWED_RCODES.contains(&rcode), "rcode {rcode}");
        if message.query_count() == 1 {
            // The echoed question is uncompressed: walk its labels to find its end.
            let mut at = 12;
            while reply[at] != 0 {
                at += 1 + reply[at] as usize;
            }
            let end = at + 5;
            assert_eq!(
                packet.get(12..end),
                Some(&reply[12..end]),
                "question echoed byte for byte"
            );
        }
        if message.truncated() {
            assert_eq!(message.answer_count() + message.name_server_count(), 0);
            assert!(may_truncate, "TCP is never truncated");
        }
        Some(message)
    }
}
