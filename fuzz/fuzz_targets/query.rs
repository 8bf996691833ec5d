//! Arbitrary bytes as one query, over UDP and TCP, through the whole answer path. Oracles: no
//! panic; a reply decodes with hickory-proto, echoes the ID, has QR set, fits the transport's
//! limit and carries an RCODE the rules allow.
#![no_main]

use std::sync::OnceLock;

use cnamed::answer::{respond, Transport};
use cnamed::config::Config;
use cnamed::snapshot::{Snapshot, Zone};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let zone = Zone::new(&Config {
            identity: Some("fuzz".into()),
            ..Config::default()
        })
        .unwrap();
        let dump = include_bytes!("../../data/apps.json");
        Snapshot::from_json(dump, &zone).unwrap()
    })
}

fuzz_target!(|packet: &[u8]| {
    let mut out = vec![0u8; 65535];
    for (transport, limit) in [(Transport::Udp, 1232), (Transport::Tcp, 65535)] {
        let Some(len) = respond(packet, snapshot(), transport, &mut out) else {
            continue;
        };
        assert!(len <= limit);
        assert_eq!(&out[..2], &packet[..2], "ID echoed");
        assert_eq!(out[2] & 0x80, 0x80, "QR set");
        let opcode = (packet[2] >> 3) & 0xF;
        if opcode != 0 {
            // NOTIMP, header only, opcode echoed; hickory cannot decode unknown opcodes.
            assert_eq!(len, 12);
            assert_eq!((out[2] >> 3) & 0xF, opcode);
            assert_eq!(out[3] & 0xF, 4);
            assert_eq!(&out[4..12], &[0; 8]);
            continue;
        }
        let reply = Message::from_vec(&out[..len]).expect("the reply decodes");
        let rcode = u16::from(reply.response_code());
        assert!([0, 1, 3, 4, 5, 16].contains(&rcode), "rcode {rcode}");
    }
});
