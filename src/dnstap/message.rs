//! One dnstap frame's payload: a `Dnstap` protobuf message (dnstap.proto) holding one
//! `Message` of type AUTH_QUERY or AUTH_RESPONSE, encoded by hand into the caller's buffer.
//!
//! By hand because the schema's part an authoritative server fills is a dozen scalar and
//! bytes fields, and the worker must not allocate: protobuf crates build a message struct
//! (owned `Vec`s, or a builder with a growing buffer) before encoding. The encoding is tested
//! against the schema with an independent decoder (prost, in the tests) and, end to end, with
//! BIND's `dnstap-read`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Protobuf wire types (the low three bits of a field's key).
mod wire_type {
    pub(super) const VARINT: u8 = 0;
    pub(super) const LEN: u8 = 2;
    pub(super) const FIXED32: u8 = 5;
}

/// Field numbers of `message Dnstap`.
mod dnstap_field {
    pub(super) const IDENTITY: u8 = 1;
    pub(super) const VERSION: u8 = 2;
    pub(super) const MESSAGE: u8 = 14;
    pub(super) const TYPE: u8 = 15;
}

/// Field numbers of `message Message`.
mod message_field {
    pub(super) const TYPE: u8 = 1;
    pub(super) const SOCKET_FAMILY: u8 = 2;
    pub(super) const SOCKET_PROTOCOL: u8 = 3;
    pub(super) const QUERY_ADDRESS: u8 = 4;
    pub(super) const RESPONSE_ADDRESS: u8 = 5;
    pub(super) const QUERY_PORT: u8 = 6;
    pub(super) const RESPONSE_PORT: u8 = 7;
    pub(super) const QUERY_TIME_SEC: u8 = 8;
    pub(super) const QUERY_TIME_NSEC: u8 = 9;
    pub(super) const QUERY_MESSAGE: u8 = 10;
    pub(super) const QUERY_ZONE: u8 = 11;
    pub(super) const RESPONSE_TIME_SEC: u8 = 12;
    pub(super) const RESPONSE_TIME_NSEC: u8 = 13;
    pub(super) const RESPONSE_MESSAGE: u8 = 14;
}

/// `Dnstap.Type.MESSAGE`: the only kind of `Dnstap` there is.
const DNSTAP_MESSAGE: u64 = 1;
/// `SocketFamily`.
const INET: u64 = 1;
const INET6: u64 = 2;

/// `Message.Type`: what an authoritative server logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    AuthQuery = 1,
    AuthResponse = 2,
}

/// `SocketProtocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp = 1,
    Tcp = 2,
}

/// One query or response to log.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub kind: Kind,
    pub protocol: Protocol,
    /// Who asked.
    pub client: SocketAddr,
    /// Where it was asked: the listening socket's address (its IP left out when the socket
    /// is bound to every address, since the datagram's own destination is not read).
    pub server: SocketAddr,
    /// When the query arrived, since the Unix epoch.
    pub query_time: Duration,
    /// When the response left (responses only).
    pub response_time: Duration,
    /// The DNS message itself: the query, or the response.
    pub message: &'a [u8],
    /// The zone's apex in wire form.
    pub zone: &'a [u8],
}

/// Bytes a frame for `event` can take at most, with `identity` and `version`.
pub fn max_len(identity: &[u8], version: &[u8], event: &Event<'_>) -> usize {
    // Keys of one byte, lengths of at most three (the message is under 2^21 bytes), varint
    // numbers of at most ten, fixed32 of four, addresses of sixteen; and the `Message`'s
    // own key and length.
    const FIXED_FIELDS: usize =
        3 * 3 + 2 * (1 + 10) + 2 * (1 + 16 + 1) + 2 * (1 + 10) + 2 * (1 + 10) + 2 * (1 + 4);
    (1 + 3 + identity.len())
        + (1 + 3 + version.len())
        + (1 + 3)
        + FIXED_FIELDS
        + (1 + 3 + event.zone.len())
        + (1 + 3 + event.message.len())
        + 2
}

/// Writes the `Dnstap` message for `event` at the start of `out`; `None` when it does not
/// fit (nothing usable is left in `out` then).
pub fn encode(identity: &[u8], version: &[u8], event: &Event<'_>, out: &mut [u8]) -> Option<usize> {
    let mut writer = Writer { out, at: 0 };
    if !identity.is_empty() {
        writer.bytes(dnstap_field::IDENTITY, identity)?;
    }
    if !version.is_empty() {
        writer.bytes(dnstap_field::VERSION, version)?;
    }
    writer.key(dnstap_field::MESSAGE, wire_type::LEN)?;
    // The `Message`'s length is known once it is written: room for the longest length is
    // left, and the body moved back over what the actual length does not need.
    let length_at = writer.at;
    let body_at = length_at + MAX_LENGTH_BYTES;
    writer.at = body_at;
    write_message(&mut writer, event)?;
    let body_len = writer.at - body_at;
    let mut length = [0u8; 10];
    let length_bytes = varint(body_len as u64, &mut length);
    let out = writer.out;
    out[length_at..length_at + length_bytes].copy_from_slice(&length[..length_bytes]);
    out.copy_within(body_at..body_at + body_len, length_at + length_bytes);
    let mut writer = Writer {
        out,
        at: length_at + length_bytes + body_len,
    };
    writer.varint(dnstap_field::TYPE, DNSTAP_MESSAGE)?;
    Some(writer.at)
}

/// A message is at most 65,535 bytes, and so the `Message` under 2^21: three varint bytes.
const MAX_LENGTH_BYTES: usize = 3;

fn write_message(writer: &mut Writer<'_>, event: &Event<'_>) -> Option<()> {
    use message_field as field;
    writer.varint(field::TYPE, event.kind as u64)?;
    let family = match event.client.ip() {
        IpAddr::V4(_) => INET,
        IpAddr::V6(_) => INET6,
    };
    writer.varint(field::SOCKET_FAMILY, family)?;
    writer.varint(field::SOCKET_PROTOCOL, event.protocol as u64)?;
    writer.address(field::QUERY_ADDRESS, event.client.ip())?;
    writer.varint(field::QUERY_PORT, u64::from(event.client.port()))?;
    // The server's address is left out when the socket listens on every address, or when
    // its family is not the client's (a v4-mapped client on a v6 socket).
    let server_ip = event.server.ip();
    if !server_ip.is_unspecified() && server_ip.is_ipv4() == event.client.is_ipv4() {
        writer.address(field::RESPONSE_ADDRESS, server_ip)?;
    }
    writer.varint(field::RESPONSE_PORT, u64::from(event.server.port()))?;
    writer.varint(field::QUERY_TIME_SEC, event.query_time.as_secs())?;
    writer.fixed32(field::QUERY_TIME_NSEC, event.query_time.subsec_nanos())?;
    if !event.zone.is_empty() {
        writer.bytes(field::QUERY_ZONE, event.zone)?;
    }
    match event.kind {
        Kind::AuthQuery => writer.bytes(field::QUERY_MESSAGE, event.message),
        Kind::AuthResponse => {
            writer.varint(field::RESPONSE_TIME_SEC, event.response_time.as_secs())?;
            writer.fixed32(
                field::RESPONSE_TIME_NSEC,
                event.response_time.subsec_nanos(),
            )?;
            writer.bytes(field::RESPONSE_MESSAGE, event.message)
        }
    }
}

/// A cursor over the caller's buffer; every write checks its room first.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn raw(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    fn key(&mut self, field: u8, wire_type: u8) -> Option<()> {
        // Every field number here is under 16: its key is one byte.
        self.raw(&[field << 3 | wire_type])
    }

    fn number(&mut self, value: u64) -> Option<()> {
        let mut bytes = [0u8; 10];
        let len = varint(value, &mut bytes);
        self.raw(&bytes[..len])
    }

    fn varint(&mut self, field: u8, value: u64) -> Option<()> {
        self.key(field, wire_type::VARINT)?;
        self.number(value)
    }

    fn fixed32(&mut self, field: u8, value: u32) -> Option<()> {
        self.key(field, wire_type::FIXED32)?;
        self.raw(&value.to_le_bytes())
    }

    fn bytes(&mut self, field: u8, bytes: &[u8]) -> Option<()> {
        self.key(field, wire_type::LEN)?;
        self.number(bytes.len() as u64)?;
        self.raw(bytes)
    }

    /// An address as dnstap holds it: 4 or 16 bytes in network order.
    fn address(&mut self, field: u8, ip: IpAddr) -> Option<()> {
        match ip {
            IpAddr::V4(ip) => self.bytes(field, &ip.octets()),
            IpAddr::V6(ip) => self.bytes(field, &ip.octets()),
        }
    }
}

/// `value` as a protobuf varint in `out`; returns its length.
fn varint(mut value: u64, out: &mut [u8; 10]) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        out[len] = value as u8 | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    len + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dnstap.proto's `Dnstap` and `Message`, as prost decodes them: an independent reading
    /// of the schema (the tags and types are copied from dnstap.proto, not from the encoder).
    mod schema {
        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct Dnstap {
            #[prost(bytes = "vec", optional, tag = "1")]
            pub identity: Option<Vec<u8>>,
            #[prost(bytes = "vec", optional, tag = "2")]
            pub version: Option<Vec<u8>>,
            #[prost(bytes = "vec", optional, tag = "3")]
            pub extra: Option<Vec<u8>>,
            #[prost(message, optional, tag = "14")]
            pub message: Option<Message>,
            #[prost(int32, required, tag = "15")]
            pub r#type: i32,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct Message {
            #[prost(int32, required, tag = "1")]
            pub r#type: i32,
            #[prost(int32, optional, tag = "2")]
            pub socket_family: Option<i32>,
            #[prost(int32, optional, tag = "3")]
            pub socket_protocol: Option<i32>,
            #[prost(bytes = "vec", optional, tag = "4")]
            pub query_address: Option<Vec<u8>>,
            #[prost(bytes = "vec", optional, tag = "5")]
            pub response_address: Option<Vec<u8>>,
            #[prost(uint32, optional, tag = "6")]
            pub query_port: Option<u32>,
            #[prost(uint32, optional, tag = "7")]
            pub response_port: Option<u32>,
            #[prost(uint64, optional, tag = "8")]
            pub query_time_sec: Option<u64>,
            #[prost(fixed32, optional, tag = "9")]
            pub query_time_nsec: Option<u32>,
            #[prost(bytes = "vec", optional, tag = "10")]
            pub query_message: Option<Vec<u8>>,
            #[prost(bytes = "vec", optional, tag = "11")]
            pub query_zone: Option<Vec<u8>>,
            #[prost(uint64, optional, tag = "12")]
            pub response_time_sec: Option<u64>,
            #[prost(fixed32, optional, tag = "13")]
            pub response_time_nsec: Option<u32>,
            #[prost(bytes = "vec", optional, tag = "14")]
            pub response_message: Option<Vec<u8>>,
        }
    }

    fn decode(bytes: &[u8]) -> schema::Dnstap {
        <schema::Dnstap as prost::Message>::decode(bytes).expect("a valid Dnstap message")
    }

    const ZONE: &[u8] = b"\x04apps\x07example\x03com\x00";

    fn event(kind: Kind, message: &[u8]) -> Event<'_> {
        Event {
            kind,
            protocol: Protocol::Udp,
            client: "192.0.2.7:53211".parse().unwrap(),
            server: "127.0.0.1:5353".parse().unwrap(),
            query_time: Duration::new(1_800_000_000, 123_456_789),
            response_time: Duration::new(1_800_000_001, 5),
            message,
            zone: ZONE,
        }
    }

    fn encoded(identity: &[u8], version: &[u8], event: &Event<'_>) -> Vec<u8> {
        let mut out = vec![0u8; max_len(identity, version, event)];
        let len = encode(identity, version, event, &mut out).expect("fits in max_len");
        out.truncate(len);
        out
    }

    #[test]
    fn a_query_decodes_as_the_schema_says() {
        let query = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1,
        ];
        let decoded = decode(&encoded(
            b"edge-1",
            b"cnamed 0.1.0",
            &event(Kind::AuthQuery, &query),
        ));
        assert_eq!(decoded.identity.as_deref(), Some(&b"edge-1"[..]));
        assert_eq!(decoded.version.as_deref(), Some(&b"cnamed 0.1.0"[..]));
        assert_eq!(decoded.r#type, 1, "Dnstap.Type.MESSAGE");
        let message = decoded.message.unwrap();
        assert_eq!(message.r#type, 1, "AUTH_QUERY");
        assert_eq!(message.socket_family, Some(1), "INET");
        assert_eq!(message.socket_protocol, Some(1), "UDP");
        assert_eq!(message.query_address.as_deref(), Some(&[192, 0, 2, 7][..]));
        assert_eq!(message.query_port, Some(53211));
        assert_eq!(
            message.response_address.as_deref(),
            Some(&[127, 0, 0, 1][..])
        );
        assert_eq!(message.response_port, Some(5353));
        assert_eq!(message.query_time_sec, Some(1_800_000_000));
        assert_eq!(message.query_time_nsec, Some(123_456_789));
        assert_eq!(message.query_message.as_deref(), Some(&query[..]));
        assert_eq!(message.query_zone.as_deref(), Some(ZONE));
        assert_eq!(message.response_message, None);
        assert_eq!(message.response_time_sec, None);
    }

    #[test]
    fn a_response_over_tcp_from_ipv6_carries_both_times() {
        let response = vec![0xAB; 300];
        let mut event = event(Kind::AuthResponse, &response);
        event.protocol = Protocol::Tcp;
        event.client = "[2001:db8::1]:40000".parse().unwrap();
        event.server = "[::]:53".parse().unwrap();
        let message = decode(&encoded(b"", b"", &event)).message.unwrap();
        assert_eq!(message.r#type, 2, "AUTH_RESPONSE");
        assert_eq!(message.socket_family, Some(2), "INET6");
        assert_eq!(message.socket_protocol, Some(2), "TCP");
        let client: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(message.query_address.as_deref(), Some(&client.octets()[..]));
        assert_eq!(
            message.response_address, None,
            "a wildcard socket has no one address"
        );
        assert_eq!(message.response_port, Some(53));
        assert_eq!(message.query_time_sec, Some(1_800_000_000));
        assert_eq!(message.response_time_sec, Some(1_800_000_001));
        assert_eq!(message.response_time_nsec, Some(5));
        assert_eq!(message.response_message.as_deref(), Some(&response[..]));
        assert_eq!(message.query_message, None);
    }

    #[test]
    fn every_message_length_fits_its_bound_and_decodes() {
        // Lengths around each varint boundary of the message and of the `Message` around it.
        for len in [0, 1, 60, 127, 128, 200, 16_383, 16_384, 16_500, 65_535] {
            let message = vec![7u8; len];
            let identity = vec![b'i'; 255];
            for kind in [Kind::AuthQuery, Kind::AuthResponse] {
                let event = event(kind, &message);
                let bytes = encoded(&identity, b"v", &event);
                assert!(bytes.len() <= max_len(&identity, b"v", &event));
                let decoded = decode(&bytes).message.unwrap();
                let logged = match kind {
                    Kind::AuthQuery => decoded.query_message,
                    Kind::AuthResponse => decoded.response_message,
                };
                assert_eq!(logged.map(|m| m.len()), Some(len));
            }
        }
    }

    #[test]
    fn a_short_buffer_is_refused_at_every_length() {
        let query = [1u8; 40];
        let event = event(Kind::AuthQuery, &query);
        let full = encoded(b"id", b"v", &event);
        for room in 0..full.len() {
            let mut out = vec![0u8; room];
            assert_eq!(encode(b"id", b"v", &event, &mut out), None, "{room} bytes");
        }
    }

    #[test]
    fn varints_match_the_protobuf_encoding() {
        let encoded = |value| {
            let mut out = [0u8; 10];
            let len = varint(value, &mut out);
            out[..len].to_vec()
        };
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(127), [0x7F]);
        assert_eq!(encoded(300), [0xAC, 0x02]);
        let mut out = [0u8; 10];
        assert_eq!(varint(u64::MAX, &mut out), 10);
    }
}
