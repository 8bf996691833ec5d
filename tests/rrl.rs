//! Response rate limiting over real sockets: a burst from one /24 is limited, with every
//! second limited response slipped (TC=1, no records) and the rest dropped; another /24 is
//! untouched, and a query carrying a valid server cookie is never limited.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// What a burst got back.
#[derive(Debug, Default)]
struct Burst {
    full: usize,
    truncated: usize,
    silent: usize,
    /// A server cookie seen in any reply.
    cookie: Option<Vec<u8>>,
}

/// Sends `count` queries from `source` as fast as possible, then collects the replies.
fn burst(server: SocketAddr, source: &str, count: u16, cookie: Option<&[u8]>) -> Burst {
    let socket = UdpSocket::bind((source, 0)).unwrap();
    for id in 0..count {
        let mut message = query("ws-123456.apps.example.com.", RecordType::A);
        message.set_id(id);
        if let Some(cookie) = cookie {
            message = with_cookie(message, cookie);
        }
        socket.send_to(&encode(&message), server).unwrap();
    }
    socket.set_read_timeout(Some(SILENCE)).unwrap();
    let mut seen = vec![false; count as usize];
    let mut result = Burst::default();
    let mut buf = [0; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        let reply: Message = decode(&buf[..len]);
        assert!(!seen[reply.id() as usize], "one reply per query");
        seen[reply.id() as usize] = true;
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.queries().len(), 1, "the question is echoed");
        if reply.truncated() {
            assert!(reply.answers().is_empty(), "a slipped reply has no records");
            result.truncated += 1;
        } else {
            assert_eq!(reply.answers().len(), 1);
            result.full += 1;
        }
        if let Some(cookie) = reply_cookie(&reply) {
            result.cookie = Some(cookie);
        }
    }
    result.silent = seen.iter().filter(|&&s| !s).count();
    result
}

#[test]
fn burst_is_limited_and_slipped_other_networks_are_not() {
    let mut server = Cnamed::start(&[
        "--threads",
        "1",
        "--rrl-rate",
        "5",
        "--rrl-slip",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&mut server);
    let limited = burst(server.addr, "127.0.0.1", 40, None);
    // The bucket holds 5; a slow machine may refill a few more during the burst.
    assert!((5..=10).contains(&limited.full), "{limited:?}");
    assert!(limited.truncated >= 14, "{limited:?}");
    assert!(limited.silent >= 14, "{limited:?}");
    assert!(
        limited.truncated.abs_diff(limited.silent) <= 1,
        "every other: {limited:?}"
    );

    // 127.0.1.0/24 is another network.
    let other = burst(server.addr, "127.0.1.1", 5, None);
    assert_eq!((other.full, other.truncated, other.silent), (5, 0, 0));

    let m = wait_metric(
        metrics,
        "cnamed_rrl_limited_total{action=\"dropped\"}",
        limited.silent as f64,
    );
    assert_eq!(
        m["cnamed_rrl_limited_total{action=\"dropped\"}"],
        limited.silent as f64
    );
    assert_eq!(
        m["cnamed_rrl_limited_total{action=\"slipped\"}"],
        limited.truncated as f64
    );
    assert_eq!(m["cnamed_truncated_total"], limited.truncated as f64);
    assert_eq!(
        m["cnamed_responses_total{rcode=\"NOERROR\"}"],
        (limited.full + limited.truncated + other.full) as f64
    );
}

#[test]
fn valid_server_cookie_bypasses_the_limit() {
    let server = Cnamed::start(&["--threads", "1", "--rrl-rate", "2", "--rrl-slip", "1"]);
    // Client-only cookies are limited like anything else; slipped replies carry the
    // server cookie, so that a real client learns it even while limited.
    let client_cookie = [0x5a; 8];
    let learning = burst(server.addr, "127.0.0.1", 20, Some(&client_cookie));
    assert!(learning.truncated >= 10, "{learning:?}");
    let cookie = learning.cookie.expect("a server cookie");
    assert_eq!(cookie.len(), 24);
    assert_eq!(cookie[..8], client_cookie);

    let proven = burst(server.addr, "127.0.0.1", 30, Some(&cookie));
    assert_eq!((proven.full, proven.truncated, proven.silent), (30, 0, 0));
    // The same cookie from another address is not valid there: limited again.
    let elsewhere = burst(server.addr, "127.0.2.1", 30, Some(&cookie));
    assert!(elsewhere.full <= 5, "{elsewhere:?}");
}

/// A victim network and 1,000 others (each its own 127.x.y.0/24 on loopback) query at once,
/// every network 30 times over about a second, the victim also flooding NXDOMAIN. No network
/// gets more than its rate and burst (within 1.5x), whichever share a bucket; the victim's
/// NXDOMAIN flood does not use up its real answers.
#[test]
fn a_thousand_networks_at_once() {
    const RATE: f64 = 10.0;
    const ROUNDS: usize = 30;
    cnamed::sys::raise_fd_limit().unwrap();
    let server = Cnamed::start(&["--threads", "1", "--rrl-rate", "10", "--rrl-slip", "0"]);
    let hit = encode(&query("ws-123456.apps.example.com.", RecordType::A));
    let miss = encode(&query("ws-999.apps.example.com.", RecordType::A));
    let victim = UdpSocket::bind("127.1.0.1:0").unwrap();
    let victim_nx = UdpSocket::bind("127.1.0.2:0").unwrap();
    let others: Vec<UdpSocket> = (0..1000u32)
        .map(|n| UdpSocket::bind((format!("127.{}.{}.1", 2 + n / 250, n % 250), 0)).unwrap())
        .collect();
    let started = std::time::Instant::now();
    for _ in 0..ROUNDS {
        victim.send_to(&hit, server.addr).unwrap();
        for _ in 0..10 {
            victim_nx.send_to(&miss, server.addr).unwrap();
        }
        for socket in &others {
            socket.send_to(&hit, server.addr).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    std::thread::sleep(SILENCE);
    let seconds = started.elapsed().as_secs_f64();
    let allowance = RATE + RATE * seconds;
    let answered = |socket: &UdpSocket| {
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0; 2048];
        let mut count = 0;
        while socket.recv_from(&mut buf).is_ok() {
            count += 1;
        }
        count as f64
    };
    let counts: Vec<f64> = others.iter().map(answered).collect();
    let most = counts.iter().cloned().fold(0.0, f64::max);
    assert!(
        most <= 1.5 * allowance,
        "a network got {most}, over 1.5 x {allowance}"
    );
    let near = counts
        .iter()
        .filter(|&&n| n >= 0.5 * allowance.min(ROUNDS as f64))
        .count();
    assert!(
        near > 900,
        "most networks get about their rate: {near} of 1000"
    );
    let real = answered(&victim);
    let nx = answered(&victim_nx);
    assert!(nx <= 1.5 * allowance, "NXDOMAIN flood: {nx}");
    assert!(
        nx >= 0.5 * allowance,
        "NXDOMAIN limited, not silenced: {nx}"
    );
    // 30 real queries, against an allowance of its own: all of them, or nearly.
    let wanted = (ROUNDS as f64).min(allowance);
    assert!(
        real >= 0.8 * wanted,
        "real answers {real} of {wanted}: the NXDOMAIN flood took them"
    );
}

/// An IXFR over UDP from a client inside `--xfr-allow` is limited like any answer (it once
/// bypassed the limiter: 200 of 200 answered at `--rrl-rate 5`, a reflection path for a
/// spoofer inside the allowed range); the limiter's drop is final.
#[test]
fn ixfr_over_udp_is_rate_limited() {
    let server = Cnamed::start(&[
        "--threads",
        "1",
        "--rrl-rate",
        "5",
        "--rrl-slip",
        "0",
        "--xfr-allow",
        "127.0.0.0/8",
    ]);
    let serial = serial_of(&server);
    let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let count: u16 = 200;
    for id in 0..count {
        let mut message = query("apps.example.com.", RecordType::IXFR);
        message.set_id(id);
        let soa = hickory_proto::rr::Record::from_rdata(
            raw_name("apps.example.com."),
            0,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                raw_name("."),
                raw_name("."),
                serial,
                0,
                0,
                0,
                0,
            )),
        );
        message.add_name_server(soa);
        socket.send_to(&encode(&message), server.addr).unwrap();
    }
    socket.set_read_timeout(Some(SILENCE)).unwrap();
    let mut answered = 0;
    let mut buf = [0; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        let reply: Message = decode(&buf[..len]);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(
            reply.answers()[0].record_type(),
            RecordType::SOA,
            "an IXFR answer"
        );
        answered += 1;
    }
    // The bucket holds 5; a slow machine may refill a few more during the burst.
    assert!(
        (1..=15).contains(&answered),
        "{answered} of {count} answered"
    );
}
