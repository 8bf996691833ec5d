//! A whole zone transferred, both ends in memory: a primary writing the AXFR of a 1M-app zone
//! (3M CNAMEs) into messages, and a secondary reading those messages into a snapshot (the
//! cold start of an edge, without the network). Throughput in records.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cnamed::config::Config;
use cnamed::snapshot::Snapshot;
use cnamed::xfr::inbound::reader::{Received, TransferReader};
use cnamed::xfr::outbound::axfr::axfr;
use cnamed::xfr::outbound::message::{Stream, MAX_MESSAGE};

const APPS: u64 = 1_000_000;

fn question() -> Vec<u8> {
    let mut question = b"\x04apps\x07example\x03com\x00".to_vec();
    question.extend_from_slice(&252u16.to_be_bytes());
    question.extend_from_slice(&1u16.to_be_bytes());
    question
}

fn transfer(c: &mut Criterion) {
    let zone = Config::default().zone().unwrap();
    let mut json = String::from(r#"{"serial": 1, "apps": {"#);
    for app in 0..APPS {
        let separator = if app == 0 { "" } else { "," };
        write!(json, r#"{separator}"{}": "mt{}""#, 100_000 + app, app % 8).unwrap();
    }
    json.push_str("}}");
    let snapshot = Snapshot::from_json(json.as_bytes(), &zone).unwrap();
    let question = question();
    let messages = |snapshot: &Snapshot| {
        let mut stream = axfr(snapshot);
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut messages = Vec::new();
        while let Some(len) = stream.next_message(1, &question, &mut buf) {
            messages.push(buf[..len].to_vec());
        }
        (messages, stream.records())
    };
    let (sent, records) = messages(&snapshot);

    let mut group = c.benchmark_group("axfr");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(records));
    group.bench_function("out/1M", |b| {
        b.iter(|| {
            let mut stream = axfr(&snapshot);
            let mut buf = vec![0u8; MAX_MESSAGE];
            let mut bytes = 0;
            while let Some(len) = stream.next_message(1, &question, &mut buf) {
                bytes += len;
            }
            black_box(bytes)
        })
    });
    group.bench_function("in/1M", |b| {
        b.iter(|| {
            let mut reader = TransferReader::axfr(&zone).unwrap();
            for message in &sent {
                reader.read_message(message).unwrap();
            }
            match reader.finish().unwrap() {
                Received::Full(zone) => black_box(zone.snapshot.app_count()),
                _ => panic!("not a whole zone"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
