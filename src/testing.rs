//! Helpers for tests, benches and the load tools, not part of the server's API: one query
//! builder instead of one per file, the zone of the default settings, and the system
//! helpers only tools need.
//!
//! The builder writes whatever it is told, case and all, without checking: tests use it for
//! malformed queries too. Replies are judged with an independent decoder, never with this.

pub use crate::sys::testing::{send_connected, wait_readable, CountingAllocator};

use crate::config::Config;
use crate::snapshot::{Snapshot, Zone};

/// Header flag RD, which stub resolvers set and the builder sets by default.
const RD: u16 = 0x0100;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;

/// A query with one question, and optionally an OPT record.
#[derive(Clone, Debug)]
pub struct QueryBuilder {
    id: u16,
    flags: u16,
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
    opt: Option<OptSpec>,
}

#[derive(Clone, Debug)]
struct OptSpec {
    udp_payload: u16,
    version: u8,
    flags: u16,
    options: Vec<u8>,
}

impl QueryBuilder {
    /// A query for `name` (presentation form, a trailing dot optional, case kept) and
    /// `qtype`: ID 0x1234, RD set, class IN, no EDNS.
    pub fn new(name: &str, qtype: u16) -> Self {
        Self {
            id: 0x1234,
            flags: RD,
            name: wire_name(name),
            qtype,
            qclass: CLASS_IN,
            opt: None,
        }
    }

    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// The whole header flags word.
    pub fn flags(mut self, flags: u16) -> Self {
        self.flags = flags;
        self
    }

    pub fn class(mut self, qclass: u16) -> Self {
        self.qclass = qclass;
        self
    }

    /// Adds an OPT record: this UDP payload size, version 0, DO clear, no options.
    pub fn edns(mut self, udp_payload: u16) -> Self {
        self.opt = Some(OptSpec {
            udp_payload,
            version: 0,
            flags: 0,
            options: Vec::new(),
        });
        self
    }

    fn opt_mut(&mut self) -> &mut OptSpec {
        self.opt.get_or_insert(OptSpec {
            udp_payload: 1232,
            version: 0,
            flags: 0,
            options: Vec::new(),
        })
    }

    /// Sets the EDNS version (adding an OPT for 1232 bytes if there is none).
    pub fn edns_version(mut self, version: u8) -> Self {
        self.opt_mut().version = version;
        self
    }

    /// Sets the EDNS flags word, e.g. 0x8000 for DO (adding an OPT if there is none).
    pub fn edns_flags(mut self, flags: u16) -> Self {
        self.opt_mut().flags = flags;
        self
    }

    /// Appends an EDNS option (adding an OPT if there is none).
    pub fn option(mut self, code: u16, data: &[u8]) -> Self {
        let options = &mut self.opt_mut().options;
        options.extend_from_slice(&code.to_be_bytes());
        options.extend_from_slice(&(data.len() as u16).to_be_bytes());
        options.extend_from_slice(data);
        self
    }

    /// The message.
    pub fn build(&self) -> Vec<u8> {
        let mut body = self.name.clone();
        body.extend_from_slice(&self.qtype.to_be_bytes());
        body.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(opt) = &self.opt {
            body.push(0);
            body.extend_from_slice(&TYPE_OPT.to_be_bytes());
            body.extend_from_slice(&opt.udp_payload.to_be_bytes());
            body.extend_from_slice(&[0, opt.version]);
            body.extend_from_slice(&opt.flags.to_be_bytes());
            body.extend_from_slice(&(opt.options.len() as u16).to_be_bytes());
            body.extend_from_slice(&opt.options);
        }
        let arcount = u16::from(self.opt.is_some());
        raw_message(self.id, self.flags, [1, 0, 0, arcount], &body)
    }

    /// The message with its TCP length prefix.
    pub fn frame(&self) -> Vec<u8> {
        tcp_frame(&self.build())
    }
}

/// The zone of the default settings (`apps.example.com.`, the default services, target and
/// SOA), with the identity `test` so that it does not depend on the host's name.
pub fn zone() -> Zone {
    Config {
        identity: Some("test".into()),
        ..Config::default()
    }
    .zone()
    .expect("the default settings make a zone")
}

/// A snapshot of `json` (a dump) in the zone of the default settings.
pub fn snapshot(json: &str) -> Snapshot {
    Snapshot::from_json(json.as_bytes(), &zone()).expect("a valid dump")
}

/// A message from header fields (QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT) and `body` as it is.
pub fn raw_message(id: u16, flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + body.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        packet.extend_from_slice(&count.to_be_bytes());
    }
    packet.extend_from_slice(body);
    packet
}

/// `message` with the 2-byte length prefix of DNS over TCP (RFC 1035 §4.2.2).
pub fn tcp_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    framed
}

/// `name` in uncompressed wire form, case kept, labels unchecked; "" and "." are the root.
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

/// `query` (signed) with its MAC cut to, or padded to, `len` bytes.
pub fn with_mac_len(query: &[u8], len: usize) -> Vec<u8> {
    let tsig = crate::tsig::find(query).unwrap().unwrap();
    let mut mac = tsig.mac.to_vec();
    mac.resize(len, 0xAB);
    let mut rdata = tsig.algorithm.to_vec();
    rdata.extend_from_slice(&tsig.time_signed.to_be_bytes()[2..]);
    rdata.extend_from_slice(&tsig.fudge.to_be_bytes());
    rdata.extend_from_slice(&(len as u16).to_be_bytes());
    rdata.extend_from_slice(&mac);
    rdata.extend_from_slice(&tsig.original_id.to_be_bytes());
    rdata.extend_from_slice(&tsig.error.to_be_bytes());
    rdata.extend_from_slice(&(tsig.other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(tsig.other);
    let mut out = query[..tsig.start].to_vec();
    out.extend_from_slice(tsig.key_name);
    out.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Message;
    use hickory_proto::serialize::binary::BinDecodable;

    use super::*;

    #[test]
    fn builds_what_hickory_reads() {
        let packet = QueryBuilder::new("WS-1.apps.example.com.", 16)
            .id(7)
            .class(3)
            .edns_flags(0x8000)
            .option(10, &[1; 8])
            .build();
        let message = Message::from_bytes(&packet).unwrap();
        assert_eq!(message.id(), 7);
        assert!(message.recursion_desired());
        let query = &message.queries()[0];
        assert_eq!(query.name().to_string(), "WS-1.apps.example.com.");
        assert_eq!(u16::from(query.query_type()), 16);
        assert_eq!(u16::from(query.query_class()), 3);
        let edns = message.extensions().as_ref().unwrap();
        assert!(edns.dnssec_ok());
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(tcp_frame(&packet)[..2], (packet.len() as u16).to_be_bytes());
        assert_eq!(wire_name("."), [0]);
    }
}
