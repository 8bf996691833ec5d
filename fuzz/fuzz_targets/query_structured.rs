//! A structured query (name, case, type, class, flags, EDNS fields and options) built from the
//! fuzzer's bytes, answered, and checked against a small model of the zone. Differential too:
//! our parser's view of the query must equal hickory-proto's.
#![no_main]

use cnamed::answer::{respond, Transport};
use cnamed::wire::parse_query;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[path = "../oracles/query.rs"]
mod oracle;

/// The sample dump's apps and clusters (data/apps.json).
const APPS: [(&str, &str); 6] = [
    ("123456", "mt1"),
    ("234567", "mt1"),
    ("345678", "eu"),
    ("456789", "us2"),
    ("my-app", "eu"),
    ("demo-42", "ap1"),
];
const SERVICES: [&str; 3] = ["ws", "sockjs", "api"];
const ZONE: [&str; 3] = ["apps", "example", "com"];

#[derive(Arbitrary, Debug)]
enum Name {
    Known { app: u8, service: u8 },
    UnknownApp { app: u32, service: u8 },
    UnknownService { app: u8 },
    Apex,
    Below { app: u8 },
    OutOfZone { depth: u8 },
    Chaos { which: u8 },
}

#[derive(Arbitrary, Debug)]
struct Edns {
    payload: u16,
    version: u8,
    flags: u16,
    nsid: bool,
    cookie: Option<[u8; 8]>,
    unknown: Option<(u16, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    id: u16,
    flags: u16,
    name: Name,
    case_flips: u64,
    qtype: u16,
    qclass: u16,
    edns: Option<Edns>,
}

/// What the model expects for a query.
#[derive(Debug, PartialEq)]
enum Expect {
    Cname(String),
    Nxdomain,
    Apex,
    Chaos,
    Rcode(ResponseCode),
}

fn labels_and_model(input: &Input) -> (Vec<String>, Expect) {
    let pick = |i: u8| APPS[i as usize % APPS.len()];
    let service = |i: u8| SERVICES[i as usize % SERVICES.len()];
    let zone = ZONE.iter().map(|l| l.to_string());
    match input.name {
        Name::Known { app, service: s } => {
            let (id, cluster) = pick(app);
            let target = format!("{}-{cluster}.example.com.", service(s));
            let labels = std::iter::once(format!("{}-{id}", service(s)))
                .chain(zone)
                .collect();
            (labels, Expect::Cname(target))
        }
        Name::UnknownApp { app, service: s } => {
            // Above every sample ID, or with a leading zero: never in the dump.
            let labels = std::iter::once(format!("{}-0{app}", service(s)))
                .chain(zone)
                .collect();
            (labels, Expect::Nxdomain)
        }
        Name::UnknownService { app } => {
            let labels = std::iter::once(format!("ftp-{}", pick(app).0))
                .chain(zone)
                .collect();
            (labels, Expect::Nxdomain)
        }
        Name::Apex => (zone.collect(), Expect::Apex),
        Name::Below { app } => {
            let labels = ["x".to_string(), format!("ws-{}", pick(app).0)]
                .into_iter()
                .chain(zone)
                .collect();
            (labels, Expect::Nxdomain)
        }
        Name::OutOfZone { depth } => {
            let labels = (0..depth % 4)
                .map(|i| format!("l{i}"))
                .chain(["example".into(), "org".into()])
                .collect();
            (labels, Expect::Rcode(ResponseCode::Refused))
        }
        Name::Chaos { which } => {
            let names = [
                ["id", "server"],
                ["hostname", "bind"],
                ["version", "server"],
                ["version", "bind"],
            ];
            (
                names[which as usize % 4]
                    .iter()
                    .map(|l| l.to_string())
                    .collect(),
                Expect::Chaos,
            )
        }
    }
}

fn encode(input: &Input, labels: &[String]) -> Vec<u8> {
    // Opcode QUERY, QR clear: other opcodes and responses are the raw target's business.
    let flags = input.flags & !0xF800;
    let arcount = u16::from(input.edns.is_some());
    let mut packet = Vec::new();
    for word in [input.id, flags, 1, 0, 0, arcount] {
        packet.extend_from_slice(&word.to_be_bytes());
    }
    let mut flip = input.case_flips;
    for label in labels {
        packet.push(label.len() as u8);
        for byte in label.bytes() {
            let upper = flip & 1 == 1;
            flip = flip.rotate_right(1);
            packet.push(if upper {
                byte.to_ascii_uppercase()
            } else {
                byte
            });
        }
    }
    packet.push(0);
    packet.extend_from_slice(&input.qtype.to_be_bytes());
    packet.extend_from_slice(&input.qclass.to_be_bytes());
    if let Some(edns) = &input.edns {
        let mut options = Vec::new();
        if edns.nsid {
            options.extend_from_slice(&[0, 3, 0, 0]);
        }
        if let Some(cookie) = edns.cookie {
            options.extend_from_slice(&[0, 10, 0, 8]);
            options.extend_from_slice(&cookie);
        }
        if let Some((code, data)) = &edns.unknown {
            // Codes we act on, or that hickory parses strictly, are left to the raw target.
            let code = if [3, 8, 10, 12].contains(code) {
                65001
            } else {
                *code
            };
            let data = &data[..data.len().min(64)];
            options.extend_from_slice(&code.to_be_bytes());
            options.extend_from_slice(&(data.len() as u16).to_be_bytes());
            options.extend_from_slice(data);
        }
        packet.extend_from_slice(&[0, 0, 41]);
        packet.extend_from_slice(&edns.payload.to_be_bytes());
        packet.extend_from_slice(&[0, edns.version]);
        packet.extend_from_slice(&edns.flags.to_be_bytes());
        packet.extend_from_slice(&(options.len() as u16).to_be_bytes());
        packet.extend_from_slice(&options);
    }
    packet
}

fn is_meta(qtype: u16) -> bool {
    qtype == 0 || qtype == 41 || ((128..=254).contains(&qtype) && qtype != 251 && qtype != 252)
}

fuzz_target!(|input: Input| {
    let (labels, expect) = labels_and_model(&input);
    let packet = encode(&input, &labels);
    // Everything the raw target demands of a reply holds here too.
    oracle::check(&packet, oracle::sample_snapshot());

    // Differential: both parsers read the same query.
    let ours = parse_query(&packet).expect("a well-formed query parses");
    let theirs = Message::from_vec(&packet).expect("hickory parses it too");
    let question = &theirs.queries()[0];
    assert_eq!(ours.question.qtype.0, u16::from(question.query_type()));
    assert_eq!(ours.question.qclass.0, u16::from(question.query_class()));
    let wire_len: usize = labels.iter().map(|label| label.len() + 1).sum::<usize>() + 1;
    assert_eq!(ours.question.name.len(), wire_len);
    assert!(question
        .name()
        .to_ascii()
        .eq_ignore_ascii_case(&format!("{}.", labels.join("."))));
    assert_eq!(ours.opt.is_some(), theirs.extensions().is_some());
    if let (Some(opt), Some(edns)) = (ours.opt, theirs.extensions()) {
        assert_eq!(opt.version, edns.version());
        assert_eq!(opt.dnssec_ok(), edns.dnssec_ok());
        assert_eq!(opt.udp_payload.max(512), edns.max_payload());
    }

    let mut out = vec![0u8; 65535];
    let len =
        respond(&packet, oracle::sample_snapshot(), Transport::Tcp, &mut out).expect("a reply");
    let reply = Message::from_vec(&out[..len]).expect("the reply decodes");
    assert_eq!(reply.id(), input.id);
    assert_eq!(
        &out[12..12 + ours.question.raw.len()],
        ours.question.raw,
        "question echoed"
    );
    let rcode = reply.response_code();

    if let Some(edns) = &input.edns {
        if edns.version > 0 {
            assert_eq!(u16::from(rcode), 16, "BADVERS");
            return;
        }
        let nsid = reply
            .extensions()
            .as_ref()
            .unwrap()
            .option(hickory_proto::rr::rdata::opt::EdnsCode::NSID);
        assert_eq!(nsid.is_some(), edns.nsid);
    }
    if is_meta(input.qtype) {
        assert_eq!(rcode, ResponseCode::NotImp);
        return;
    }
    let transfer = input.qtype == 251 || input.qtype == 252;
    let class_in = input.qclass == 1;
    let class_ch = input.qclass == 3;
    match expect {
        Expect::Chaos if class_ch && !transfer => {
            assert_eq!(rcode, ResponseCode::NoError);
            let txt = input.qtype == 16 || input.qtype == 255;
            assert_eq!(reply.answer_count(), u16::from(txt));
        }
        _ if !class_in || transfer || matches!(expect, Expect::Chaos | Expect::Rcode(_)) => {
            assert_eq!(rcode, ResponseCode::Refused, "{expect:?}");
            assert_eq!(reply.answer_count(), 0);
        }
        Expect::Cname(target) => {
            assert_eq!(rcode, ResponseCode::NoError);
            match reply.answers()[0].data() {
                Some(RData::CNAME(name)) => assert_eq!(name.0.to_ascii(), target),
                other => panic!("{other:?}"),
            }
        }
        Expect::Nxdomain => {
            assert_eq!(rcode, ResponseCode::NXDomain);
            assert_eq!(reply.name_server_count(), 1);
        }
        Expect::Apex => {
            assert_eq!(rcode, ResponseCode::NoError);
            let answers = u16::from(input.qtype == 6 || input.qtype == 255 || input.qtype == 2);
            assert_eq!(reply.answer_count(), answers);
            assert_eq!(reply.name_server_count(), 1 - answers);
            if answers == 1 {
                let expected = if input.qtype == 2 {
                    RecordType::NS
                } else {
                    RecordType::SOA
                };
                assert_eq!(reply.answers()[0].record_type(), expected);
            }
        }
        Expect::Chaos | Expect::Rcode(_) => unreachable!(),
    }
});
