//! The pipeline's decisions, step by step: which handler a message goes to, then each step
//! after it in its order (expiry, rate limiting, signing, counting). Answers are decoded by
//! hickory-proto, never by our own parser.

use std::net::IpAddr;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Message as Decoded, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::*;
use crate::server::events::{self, Event, Reason};
use crate::testing::{raw_message, wire_name, QueryBuilder};
use crate::tsig::{sign_request, Algorithm, ResponseChain};
use crate::wire::{EDNS_UDP, MAX_TCP};

const APP: &str = "ws-123456.apps.example.com";
const APEX: &str = "apps.example.com";
const SERIAL: u32 = 2026112601;
const PRIMARY: &str = "192.0.2.53";
const CLIENT: &str = "127.0.0.1";
const STRANGER: &str = "198.51.100.7";

/// What a test serves with; [`Bench::serving`] borrows it.
struct Bench {
    snapshot: Snapshot,
    cookies: Secrets,
    counters: WorkerCounters,
    gate: Gate,
    keys: ArcSwapOption<Vec<Key>>,
    primaries: Vec<IpAddr>,
    events: Events,
    inbox: Receiver<Event>,
}

impl Bench {
    fn new() -> Self {
        let json = format!(r#"{{"serial": {SERIAL}, "apps": {{"123456": "mt1"}}}}"#);
        let snapshot = Snapshot::from_json(json.as_bytes(), &crate::testing::zone()).unwrap();
        let (events, inbox) = events::channel();
        Self {
            snapshot,
            cookies: Secrets::new([7; 16], None),
            counters: WorkerCounters::default(),
            gate: Gate::new(vec!["127.0.0.0/8".parse().unwrap()], 4, 0),
            keys: ArcSwapOption::empty(),
            primaries: vec![PRIMARY.parse().unwrap()],
            events,
            inbox,
        }
    }

    fn with_key(self, key: Key) -> Self {
        self.keys.store(Some(Arc::new(vec![key])));
        self
    }

    /// Serving as a worker would, expired (`--on-expire servfail`) or not.
    fn serving(&self, refusing: bool) -> Serving<'_> {
        Serving {
            xfr: Some(&self.gate),
            tsig_keys: Some(&self.keys),
            primaries: &self.primaries,
            events: Some(&self.events),
            refusing,
            ..Serving::new(&self.snapshot, &self.cookies, &self.counters)
        }
    }

    /// Reload events posted so far.
    fn reloads(&self) -> usize {
        self.inbox
            .try_iter()
            .filter(|event| matches!(event, Event::Reload(Reason::Notify(_))))
            .count()
    }
}

fn key() -> Key {
    Key {
        name: wire_name("pipeline-key"),
        algorithm: Algorithm::HmacSha256,
        secret: b"0123456789abcdef0123456789abcdef".to_vec(),
    }
}

/// A limiter of one response per second per class and network (a burst of one).
fn strict_limiter(slip: u32) -> RateLimiter {
    RateLimiter::new(1, slip, 1, [9; 16])
}

/// Runs `message` from `client` through the pipeline; the answer's bytes, `None` when
/// nothing is sent. Panics on a hand-off.
fn answer(
    serving: &Serving<'_>,
    transport: Transport,
    message: &[u8],
    client: &str,
    limiter: Option<&mut RateLimiter>,
) -> Option<Vec<u8>> {
    let mut out = vec![
        0u8;
        if transport == Transport::Udp {
            EDNS_UDP
        } else {
            MAX_TCP
        }
    ];
    let mut rate_limit = limiter.map(|limiter| RateLimit { limiter, now_ms: 0 });
    let client = Some(client.parse().unwrap());
    match handle(
        serving,
        transport,
        message,
        client,
        &mut out,
        rate_limit.as_mut(),
    ) {
        Handled::Answer(len) => len.map(|len| out[..len].to_vec()),
        Handled::HandOff(request) => panic!("unexpected hand-off: {request:?}"),
        Handled::Update(_) => panic!("unexpected UPDATE hand-off"),
    }
}

/// Decodes a reply, requiring that nothing trails it.
fn decode(reply: &[u8]) -> Decoded {
    let mut decoder = BinDecoder::new(reply);
    let message = Decoded::read(&mut decoder).expect("the reply decodes");
    assert!(decoder.is_empty(), "trailing bytes");
    message
}

/// An IXFR for the apex from `serial`: the client's SOA in the authority section (RFC 1995).
fn ixfr(serial: u32) -> Vec<u8> {
    let mut body = wire_name(APEX);
    body.extend_from_slice(&[0, 251, 0, 1]);
    // Owner: the question name; SOA IN, TTL 0, RDATA of 22 bytes (root MNAME and RNAME).
    body.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
    body.extend_from_slice(&serial.to_be_bytes());
    body.extend_from_slice(&[0; 16]);
    raw_message(0x1F1F, 0, [1, 0, 1, 0], &body)
}

/// A NOTIFY for the apex (RFC 1996: opcode 4, AA, the question `apex SOA IN`).
fn notify() -> Vec<u8> {
    QueryBuilder::new(APEX, 6).flags(0x2400).id(0x4E4E).build()
}

#[test]
fn each_kind_of_message_goes_to_its_handler() {
    let bench = Bench::new();
    let serving = bench.serving(false);

    let query = QueryBuilder::new(APP, 1).build();
    let reply = decode(&answer(&serving, Transport::Udp, &query, CLIENT, None).unwrap());
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(reply.answers()[0].record_type(), RecordType::CNAME);

    // A NOTIFY from a primary: acknowledged, and a refresh asked for.
    let reply = decode(&answer(&serving, Transport::Udp, &notify(), PRIMARY, None).unwrap());
    assert_eq!(
        (reply.op_code(), reply.response_code()),
        (OpCode::Notify, ResponseCode::NoError)
    );
    assert_eq!(bench.reloads(), 1);
    // From anyone else, or of another zone: the ordinary rules (NOTIMP), no refresh.
    let reply = decode(&answer(&serving, Transport::Udp, &notify(), STRANGER, None).unwrap());
    assert_eq!(reply.response_code(), ResponseCode::NotImp);
    let other = QueryBuilder::new("example.org", 6).flags(0x2400).build();
    let reply = decode(&answer(&serving, Transport::Tcp, &other, PRIMARY, None).unwrap());
    assert_eq!(reply.response_code(), ResponseCode::NotImp);
    assert_eq!(bench.reloads(), 0);

    // An IXFR over UDP from an allowed client: answered in place (the SOA alone: no history).
    let reply = decode(&answer(&serving, Transport::Udp, &ixfr(SERIAL - 1), CLIENT, None).unwrap());
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(reply.answers().len(), 1);
    assert_eq!(reply.answers()[0].record_type(), RecordType::SOA);
    // From a client outside --xfr-allow: the ordinary rules refuse it.
    let reply =
        decode(&answer(&serving, Transport::Udp, &ixfr(SERIAL - 1), STRANGER, None).unwrap());
    assert_eq!(reply.response_code(), ResponseCode::Refused);

    // A transfer over TCP goes to a transfer thread, taking a slot; nothing is written.
    let axfr = QueryBuilder::new(APEX, 252).build();
    let mut out = vec![0u8; MAX_TCP];
    let client = Some(CLIENT.parse().unwrap());
    let handled = handle(&serving, Transport::Tcp, &axfr, client, &mut out, None);
    assert!(matches!(handled, Handled::HandOff(_)), "{handled:?}");
    assert_eq!(bench.gate.active(), 1);
    drop(handled);
    assert_eq!(bench.gate.active(), 0);
}

#[test]
fn an_expired_zone_answers_servfail_and_the_limiter_counts_that() {
    let bench = Bench::new();
    let mut limiter = strict_limiter(0);
    let expired = bench.serving(true);
    let query = QueryBuilder::new(APP, 1).build();
    let reply = answer(&expired, Transport::Udp, &query, CLIENT, Some(&mut limiter)).unwrap();
    assert_eq!(decode(&reply).response_code(), ResponseCode::ServFail);
    // The limiter saw an error, not an answer: the error bucket is spent...
    assert_eq!(
        answer(&expired, Transport::Udp, &query, CLIENT, Some(&mut limiter)),
        None
    );
    // ...and the answers' bucket is untouched.
    let serving = bench.serving(false);
    let reply = answer(&serving, Transport::Udp, &query, CLIENT, Some(&mut limiter)).unwrap();
    assert_eq!(decode(&reply).response_code(), ResponseCode::NoError);
    // A NOTIFY's acknowledgement never reached the rules: an expired zone leaves it.
    let reply = answer(&expired, Transport::Udp, &notify(), PRIMARY, None).unwrap();
    assert_eq!(decode(&reply).response_code(), ResponseCode::NoError);
}

#[test]
fn a_drop_decided_by_the_limiter_is_final() {
    let bench = Bench::new();
    let serving = bench.serving(false);
    let mut limiter = strict_limiter(0);
    // IXFR over UDP: once, then dropped (it bypassed the limiter before the pipeline).
    let request = ixfr(SERIAL);
    assert!(answer(
        &serving,
        Transport::Udp,
        &request,
        CLIENT,
        Some(&mut limiter)
    )
    .is_some());
    assert_eq!(
        answer(
            &serving,
            Transport::Udp,
            &request,
            CLIENT,
            Some(&mut limiter)
        ),
        None
    );
    // A NOTIFY too: dropped, and no refresh asked for after the first.
    let mut limiter = strict_limiter(0);
    assert!(answer(
        &serving,
        Transport::Udp,
        &notify(),
        PRIMARY,
        Some(&mut limiter)
    )
    .is_some());
    assert_eq!(bench.reloads(), 1);
    // As the main loop does when it starts that refresh: the next NOTIFY is news again.
    bench.events.notifies_taken();
    let dropped = answer(
        &serving,
        Transport::Udp,
        &notify(),
        PRIMARY,
        Some(&mut limiter),
    );
    assert_eq!(dropped, None);
    // The refresh was asked for by the handler, before the limiter: the drop only loses
    // the acknowledgement (the primary retries), never the refresh.
    assert_eq!(bench.reloads(), 1);
    // Counting comes last: it sees the drops, and no RCODE for them.
    assert_eq!(bench.counters.rate_limited_count(Limited::Dropped), 2);
    assert_eq!(bench.counters.rcode_count(Rcode::NOERROR), 2);
}

#[test]
fn signing_comes_after_the_slip() {
    let bench = Bench::new().with_key(key());
    let serving = bench.serving(false);
    let mut limiter = strict_limiter(1);
    let key = key();
    let mut query = QueryBuilder::new(APP, 1).build();
    let len = query.len();
    query.resize(len + 200, 0);
    let (len, mac) = sign_request(&mut query, len, &key, u64::from(unix_seconds())).unwrap();
    query.truncate(len);
    for slipped in [false, true] {
        let reply = answer(&serving, Transport::Udp, &query, CLIENT, Some(&mut limiter)).unwrap();
        let decoded = decode(&reply);
        assert_eq!(decoded.truncated(), slipped);
        assert_eq!(decoded.answers().is_empty(), slipped);
        // Signed as it left, slipped or not: the client's check of the MAC passes.
        let mut chain = ResponseChain::new(&key, mac);
        assert_eq!(chain.verify(&reply, u64::from(unix_seconds())), Ok(true));
    }
    assert_eq!(bench.counters.rate_limited_count(Limited::Slipped), 1);
}

/// An answer that fits the client's 512 bytes unsigned but not with its TSIG (ten NS
/// records) is signed within those 512 bytes: TC=1 with the question and the TSIG, which
/// verifies. Before, signing measured room against the whole send buffer and 549 bytes
/// went to a client without EDNS (hardening round three, item 6).
#[test]
fn signed_udp_answers_keep_to_the_clients_size() {
    let mut bench = Bench::new().with_key(key());
    let zone = crate::config::Config {
        identity: Some("test".into()),
        ns: (0..10)
            .map(|i| format!("ns{i:02}.example-dns-provider.net"))
            .collect(),
        ..crate::config::Config::default()
    }
    .zone()
    .unwrap();
    let json = format!(r#"{{"serial": {SERIAL}, "apps": {{"123456": "mt1"}}}}"#);
    bench.snapshot = Snapshot::from_json(json.as_bytes(), &zone).unwrap();
    let serving = bench.serving(false);
    let key = key();
    for query in [
        QueryBuilder::new(APEX, 2).build(),
        QueryBuilder::new(APEX, 2).edns(512).build(),
    ] {
        let unsigned = answer(&serving, Transport::Udp, &query, CLIENT, None).unwrap();
        assert!(unsigned.len() <= 512 && !decode(&unsigned).truncated());
        let mut signed = query.clone();
        let len = signed.len();
        signed.resize(len + 200, 0);
        let (len, mac) = sign_request(&mut signed, len, &key, u64::from(unix_seconds())).unwrap();
        signed.truncate(len);
        let reply = answer(&serving, Transport::Udp, &signed, CLIENT, None).unwrap();
        assert!(reply.len() <= 512, "{} bytes", reply.len());
        let decoded = decode(&reply);
        assert!(decoded.truncated());
        assert_eq!(decoded.queries().len(), 1);
        let mut chain = ResponseChain::new(&key, mac);
        assert_eq!(chain.verify(&reply, u64::from(unix_seconds())), Ok(true));
        // Over TCP it all fits, signed.
        let reply = answer(&serving, Transport::Tcp, &signed, CLIENT, None).unwrap();
        assert_eq!(decode(&reply).answers().len(), 10);
    }
}

/// A signed IXFR over UDP stays within 512 bytes whatever the length of the key's name:
/// the difference when it fits with its TSIG, else the SOA alone, else the question alone,
/// TC=1; always signed (before, 160 bytes were kept for a TSIG that can take 330).
#[test]
fn signed_ixfr_over_udp_keeps_to_512_bytes() {
    let mut bench = Bench::new();
    bench.gate = Gate::new(vec!["127.0.0.0/8".parse().unwrap()], 4, 4);
    // One service, one app added: a difference small enough for a datagram.
    let zone = crate::config::Config {
        identity: Some("test".into()),
        services: vec!["ws".into()],
        ..crate::config::Config::default()
    }
    .zone()
    .unwrap();
    let dump = |serial: u32, apps: &str| format!(r#"{{"serial": {serial}, "apps": {{{apps}}}}}"#);
    let older = Snapshot::from_json(dump(SERIAL - 1, "").as_bytes(), &zone).unwrap();
    bench.snapshot = Snapshot::from_json(dump(SERIAL, r#""1": "a""#).as_bytes(), &zone).unwrap();
    bench
        .gate
        .record_reload(&older, &bench.snapshot, None::<[&str; 0]>);
    let mut sizes = Vec::new();
    for name_len in [1, 20, 60, 120, 180, 250] {
        let mut name = String::new();
        while name.len() + 2 < name_len {
            let label = (name_len - name.len() - 2).min(63);
            name.push_str(&"k".repeat(label));
            name.push('.');
        }
        name.push('e');
        let long = Key {
            name: wire_name(&name),
            ..key()
        };
        bench.keys.store(Some(Arc::new(vec![long.clone()])));
        let serving = bench.serving(false);
        let mut query = ixfr(SERIAL - 1);
        let len = query.len();
        query.resize(len + 400, 0);
        let (len, mac) = sign_request(&mut query, len, &long, u64::from(unix_seconds())).unwrap();
        query.truncate(len);
        let reply = answer(&serving, Transport::Udp, &query, CLIENT, None).unwrap();
        let decoded = decode(&reply);
        sizes.push((name_len, reply.len(), decoded.answers().len()));
        assert!(reply.len() <= 512, "{sizes:?}");
        let mut chain = ResponseChain::new(&long, mac);
        assert_eq!(chain.verify(&reply, u64::from(unix_seconds())), Ok(true));
    }
    // The difference went while it fitted, then the SOA alone.
    assert!(sizes[0].2 > 1, "{sizes:?}");
    assert_eq!(sizes[5].2, 1, "{sizes:?}");
}

/// The RCODEs of MAC lengths no truncation allows (FORMERR) and of a truncated MAC
/// (NOTAUTH, BADTRUNC), as a client decodes them (hardening round three, item 8).
#[test]
fn mac_lengths_get_formerr_or_badtrunc() {
    let bench = Bench::new().with_key(key());
    let serving = bench.serving(false);
    let mut query = QueryBuilder::new(APP, 1).build();
    let len = query.len();
    query.resize(len + 200, 0);
    let (len, _) = sign_request(&mut query, len, &key(), u64::from(unix_seconds())).unwrap();
    query.truncate(len);
    for (mac_len, rcode) in [
        (8, ResponseCode::FormErr),
        (33, ResponseCode::FormErr),
        (20, ResponseCode::NotAuth),
    ] {
        let changed = crate::testing::with_mac_len(&query, mac_len);
        let reply = answer(&serving, Transport::Udp, &changed, CLIENT, None).unwrap();
        assert_eq!(
            decode(&reply).response_code(),
            rcode,
            "MAC of {mac_len} bytes"
        );
        let tsig = tsig::find(&reply).unwrap();
        match rcode {
            ResponseCode::NotAuth => assert_eq!(tsig.map(|t| t.error), Some(tsig::BADTRUNC)),
            _ => assert!(tsig.is_none()),
        }
    }
}
