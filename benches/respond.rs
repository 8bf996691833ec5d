//! The per-query cost: parsing, and `respond` (bytes in -> bytes out) for the common cases,
//! next to hickory-proto decoding and re-encoding the same message as a peer in the same run.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

use cnamed::answer::{respond, respond_to, Context, Transport};
use cnamed::config::Config;
use cnamed::cookie::Secrets;
use cnamed::rrl::{RateLimiter, ResponseClass};
use cnamed::snapshot::Snapshot;
use cnamed::testing::QueryBuilder;
use cnamed::wire::parse_query;

/// ID 0x1234, RD; with `options`, an OPT for 1232 bytes with DO set carrying them.
fn query(name: &str, qtype: u16, options: Option<&[(u16, &[u8])]>) -> Vec<u8> {
    let mut query = QueryBuilder::new(name, qtype);
    if let Some(options) = options {
        query = query.edns(1232).edns_flags(0x8000);
        for (code, data) in options {
            query = query.option(*code, data);
        }
    }
    query.build()
}

/// A snapshot of `apps` numeric apps over 8 clusters.
fn snapshot(apps: u32) -> Snapshot {
    let mut json = String::from(r#"{"serial": 1, "apps": {"#);
    for app in 0..apps {
        if app > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#""{}": "mt{}""#, 100_000 + app, app % 8));
    }
    json.push_str("}}");
    let zone = Config {
        identity: Some("bench-box".into()),
        ..Config::default()
    }
    .zone()
    .unwrap();
    Snapshot::from_json(json.as_bytes(), &zone).unwrap()
}

fn bench_respond(c: &mut Criterion) {
    let snapshot = snapshot(100_000);
    let cases = [
        ("cname_hit", query("ws-150000.apps.example.com", 1, None)),
        ("nxdomain", query("ws-99.apps.example.com", 1, None)),
        ("apex_soa", query("apps.example.com", 6, None)),
        (
            "edns_nsid_hit",
            query("ws-150000.apps.example.com", 1, Some(&[(3, &[])])),
        ),
    ];
    let mut group = c.benchmark_group("respond");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; 1232];
    for (name, packet) in &cases {
        let len = respond(packet, &snapshot, Transport::Udp, &mut out).expect("a reply");
        let reply = Message::from_vec(&out[..len]).expect("a valid reply");
        assert_eq!(reply.id(), 0x1234);
        group.bench_function(*name, |b| {
            b.iter(|| {
                respond(
                    black_box(packet),
                    &snapshot,
                    Transport::Udp,
                    black_box(&mut out),
                )
            })
        });
    }
    group.finish();

    let hit = &cases[0].1;
    let mut peers = c.benchmark_group("peer");
    peers.throughput(Throughput::Elements(1));
    peers.bench_function("cnamed_parse", |b| {
        b.iter(|| parse_query(black_box(hit)).is_ok())
    });
    peers.bench_function("cnamed_respond", |b| {
        b.iter(|| {
            respond(
                black_box(hit),
                &snapshot,
                Transport::Udp,
                black_box(&mut out),
            )
        })
    });
    // The same message decoded and re-encoded by a general-purpose library: the floor of a
    // server built on an owned message model.
    let len = respond(hit, &snapshot, Transport::Udp, &mut out).unwrap();
    let reply = out[..len].to_vec();
    peers.bench_function("hickory_decode_encode", |b| {
        b.iter(|| {
            let message = Message::from_bytes(black_box(&reply)).unwrap();
            message.to_bytes().unwrap()
        })
    });
    peers.finish();
}

/// What the edge features add per query: cookies (one SipHash-2-4 to make a server cookie,
/// two when checking one too) and a rate-limiter check.
fn bench_edge(c: &mut Criterion) {
    let snapshot = snapshot(100_000);
    let secrets = Secrets::new([0x42; 16], None);
    let client = "192.0.2.1".parse().unwrap();
    let now = 1_800_000_000;
    let context = Context {
        client: Some(client),
        now,
        cookies: Some(&secrets),
        ..Context::new(Transport::Udp)
    };
    let client_cookie = [1, 2, 3, 4, 5, 6, 7, 8];
    let valid_cookie = secrets.answer(&client_cookie, client, now);
    let cases = [
        (
            "edns_no_cookie",
            query("ws-150000.apps.example.com", 1, Some(&[])),
        ),
        (
            "client_cookie",
            query(
                "ws-150000.apps.example.com",
                1,
                Some(&[(10, &client_cookie)]),
            ),
        ),
        (
            "valid_server_cookie",
            query(
                "ws-150000.apps.example.com",
                1,
                Some(&[(10, &valid_cookie)]),
            ),
        ),
    ];
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; 1232];
    for (name, packet) in &cases {
        let summary = respond_to(packet, &snapshot, &context, &mut out);
        assert!(summary.len.is_some());
        group.bench_function(*name, |b| {
            b.iter(|| respond_to(black_box(packet), &snapshot, &context, black_box(&mut out)))
        });
    }
    let mut limiter = RateLimiter::new(u32::MAX, 2, 1, [0x42; 16]);
    let mut now_ms = 0u64;
    let mut source = 0u32;
    group.bench_function("rrl_check", |b| {
        b.iter(|| {
            // A different /24 every call, the clock moving: the worst case, a bucket taken
            // over (likely a cache miss in the 1.5 MiB table) on every call.
            source = source.wrapping_add(1 << 8);
            now_ms += 1;
            limiter.check(
                black_box(std::net::IpAddr::from(source.to_be_bytes())),
                ResponseClass::Answer,
                now_ms,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_respond, bench_edge);
criterion_main!(benches);
