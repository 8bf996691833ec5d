//! `cnamed-count CASE N`: answers one query N times in process, for counting instructions with
//! callgrind, which repeats to the instruction whatever else the machine does (criterion's
//! times move by several percent here). Instructions per query:
//!
//!     for n in 0 100000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/cnamed-count hit $n 2>&1 | grep refs; done
//!
//! and divide the difference by 100,000. CASE: hit, nxdomain, soa, nsid (plain `respond`),
//! edns, client_cookie, valid_cookie (`respond_to` with cookies on); dnstap and dnstap100:
//! a hit, then logged as a worker logs a UDP batch (the query and its response, every one
//! or one in 100; the clock read twice per 64), to a collector that is not there (the writer
//! thread takes the chunks and gives them back, as it does with one that reads at once).

use std::hint::black_box;
use std::process::ExitCode;

use cnamed::answer::{respond_to, Context, Transport};
use cnamed::config::Config;
use cnamed::cookie::Secrets;
use cnamed::dnstap;
use cnamed::snapshot::Snapshot;
use cnamed::testing::QueryBuilder;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: cnamed-count CASE N");
        return ExitCode::from(2);
    };
    let mut json = String::from(r#"{"serial": 1, "apps": {"#);
    for app in 0..1000u32 {
        if app > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#""{}": "mt{}""#, 100_000 + app, app % 8));
    }
    json.push_str("}}");
    let config = Config {
        identity: Some("bench-box".into()),
        ..Config::default()
    };
    let snapshot = Snapshot::from_json(json.as_bytes(), &config.zone().unwrap()).unwrap();
    let secrets = Secrets::new([0x42; 16], None);
    let client = "192.0.2.1".parse().unwrap();
    let now = 1_800_000_000;
    let hit = || QueryBuilder::new("ws-100500.apps.example.com", 1);
    let edns = || hit().edns(1232).edns_flags(0x8000);
    let client_cookie = [1, 2, 3, 4, 5, 6, 7, 8];
    let (packet, cookies) = match case.as_str() {
        "hit" | "dnstap" | "dnstap100" => (hit(), false),
        "nxdomain" => (QueryBuilder::new("ws-99.apps.example.com", 1), false),
        "soa" => (QueryBuilder::new("apps.example.com", 6), false),
        "nsid" => (edns().option(3, &[]), false),
        "edns" => (edns(), true),
        "client_cookie" => (edns().option(10, &client_cookie), true),
        "valid_cookie" => {
            let cookie = secrets.answer(&client_cookie, client, now);
            (edns().option(10, &cookie), true)
        }
        other => {
            eprintln!("unknown case {other}");
            return ExitCode::from(2);
        }
    };
    let packet = packet.build();
    let context = if cookies {
        Context {
            client: Some(client),
            now,
            cookies: Some(&secrets),
            ..Context::new(Transport::Udp)
        }
    } else {
        Context::new(Transport::Udp)
    };
    let mut out = vec![0u8; 1232];
    let mut total = 0;
    let sample = match case.as_str() {
        "dnstap" => Some(1),
        "dnstap100" => Some(100),
        _ => None,
    };
    let Some(sample) = sample else {
        for _ in 0..n {
            let summary = respond_to(black_box(&packet), &snapshot, &context, black_box(&mut out));
            total += summary.len.unwrap_or(0);
        }
        println!("{total}");
        return ExitCode::SUCCESS;
    };
    let settings = dnstap::Settings {
        path: "/nonexistent/cnamed-count.sock".into(),
        sample,
        messages: dnstap::Messages::Both,
    };
    let identity = dnstap::Identity {
        identity: b"bench-box".to_vec(),
        version: cnamed::config::VERSION_STRING.as_bytes().to_vec(),
        zone: config.zone().unwrap().apex,
    };
    let started = dnstap::start(&settings, identity, 1, Box::new(|| false)).unwrap();
    let mut tap = started.taps.into_iter().next().unwrap();
    let (client, server) = (
        "192.0.2.1:53000".parse().unwrap(),
        "127.0.0.1:53".parse().unwrap(),
    );
    let mut times = (dnstap::now(), dnstap::now());
    for i in 0..n {
        let summary = respond_to(black_box(&packet), &snapshot, &context, black_box(&mut out));
        let len = summary.len.unwrap_or(0);
        total += len;
        if i % 64 == 0 {
            times = (dnstap::now(), dnstap::now());
        }
        if tap.sampled() {
            tap.log(&dnstap::Exchange {
                protocol: dnstap::Protocol::Udp,
                client,
                server,
                query: &packet,
                response: Some(&out[..len]),
                query_time: times.0,
                response_time: times.1,
            });
        }
    }
    tap.flush();
    println!("{total}");
    ExitCode::SUCCESS
}
