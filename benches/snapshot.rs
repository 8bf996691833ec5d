//! Snapshot cost as it grows: lookups of random apps at 100k, 1M and 10M apps (cache misses
//! are the risk), string IDs at 100k and 10M, loading a 1M-app dump, the fast dump reader
//! alone on one thread (bytes per second, numeric and string IDs), changes (a secondary's
//! IXFR, an UPDATE) applied to a 10M-app snapshot (1, 1k and 100k changed apps: they go to
//! the overlay, so the cost is the changes' and the overlay's, not the table's), and the
//! fold of a 100k-change overlay into new tables.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use cnamed::config::Config;
use cnamed::snapshot::{Reading, Snapshot, Zone};

const FIRST_APP: u64 = 100_000;

fn dump(apps: u64) -> String {
    let mut json = String::with_capacity(apps as usize * 20);
    json.push_str(r#"{"serial": 1, "apps": {"#);
    for app in 0..apps {
        let separator = if app == 0 { "" } else { "," };
        write!(json, r#"{separator}"{}": "mt{}""#, FIRST_APP + app, app % 8).unwrap();
    }
    json.push_str("}}");
    json
}

fn zone() -> Zone {
    Config::default().zone().unwrap()
}

/// Labels of apps spread over the whole map, in an order that defeats the prefetcher.
fn labels(apps: u64) -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("ws-{}", FIRST_APP + state % apps).into_bytes()
        })
        .collect()
}

fn bench_lookup(c: &mut Criterion) {
    let zone = zone();
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(1));
    for apps in [100_000u64, 1_000_000, 10_000_000] {
        let snapshot = Snapshot::from_json(dump(apps).as_bytes(), &zone).unwrap();
        assert_eq!(snapshot.app_count() as u64, apps);
        let labels = labels(apps);
        assert!(labels.iter().all(|label| snapshot.cname(label).is_some()));
        let mut next = 0;
        group.bench_with_input(
            BenchmarkId::from_parameter(apps),
            &snapshot,
            |b, snapshot| {
                b.iter(|| {
                    next = (next + 1) % labels.len();
                    snapshot.cname(black_box(&labels[next])).map(<[u8]>::len)
                })
            },
        );
    }
    group.finish();
}

/// CNAME hits at 1M apps with an empty overlay and with a 100k-entry one (100k apps moved,
/// spread over the zone, as UPDATEs leave it before a fold): the lookup cost an overlay adds.
fn bench_lookup_overlay(c: &mut Criterion) {
    let zone = zone();
    let apps = 1_000_000u64;
    let plain = Snapshot::from_json(dump(apps).as_bytes(), &zone).unwrap();
    let ids: Vec<String> = (0..100_000u64)
        .map(|i| (FIRST_APP + i * 10).to_string())
        .collect();
    let with_overlay = plain
        .with_changes(2, ids.iter().map(|id| (id.as_str(), Some("moved"))))
        .unwrap();
    assert_eq!(with_overlay.overlay_len(), 100_000);
    let labels = labels(apps);
    let mut group = c.benchmark_group("lookup_overlay_1M");
    group.throughput(Throughput::Elements(1));
    for (name, snapshot) in [("empty", &plain), ("100k_entries", &with_overlay)] {
        assert!(labels.iter().all(|label| snapshot.cname(label).is_some()));
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % labels.len();
                snapshot.cname(black_box(&labels[next])).map(<[u8]>::len)
            })
        });
    }
    group.finish();
}

/// A dump of `apps` string IDs as `cnamed-gen --ids strings` writes them (8-30 bytes, about
/// 17: words, hyphens, digits, a tenth numeric-looking with leading zeros).
fn string_ids(apps: u64) -> Vec<String> {
    const WORDS: [&str; 16] = [
        "happy", "blue", "quiet", "rapid", "bold", "calm", "dark", "eager", "fox", "river",
        "cloud", "stone", "pine", "hawk", "moon", "tiger",
    ];
    (0..apps)
        .map(|i| {
            let (a, b) = (WORDS[(i * 7 % 16) as usize], WORDS[(i * 13 % 16) as usize]);
            match i % 10 {
                0 => format!("00{i:010}"),
                1 | 2 => format!("{a}{b}{i:x}"),
                3 => format!("{a}-{b}-{i:x}-prod"),
                _ => format!("{a}-{b}-{i:x}{}", i % 10),
            }
        })
        .collect()
}

fn bench_lookup_strings(c: &mut Criterion) {
    let zone = zone();
    let mut group = c.benchmark_group("lookup_strings");
    group.throughput(Throughput::Elements(1));
    for apps in [100_000u64, 10_000_000] {
        let ids = string_ids(apps);
        let mut json = String::with_capacity(apps as usize * 30);
        json.push_str(r#"{"serial": 1, "apps": {"#);
        for (i, id) in ids.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(json, r#"{separator}"{id}": "mt{}""#, i % 8).unwrap();
        }
        json.push_str("}}");
        let snapshot = Snapshot::from_json(json.as_bytes(), &zone).unwrap();
        assert_eq!(snapshot.app_count() as u64, apps);
        drop(json);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let labels: Vec<Vec<u8>> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("ws-{}", ids[(state % apps) as usize]).into_bytes()
            })
            .collect();
        assert!(labels.iter().all(|label| snapshot.cname(label).is_some()));
        let mut next = 0;
        group.bench_with_input(
            BenchmarkId::from_parameter(apps),
            &snapshot,
            |b, snapshot| {
                b.iter(|| {
                    next = (next + 1) % labels.len();
                    snapshot.cname(black_box(&labels[next])).map(<[u8]>::len)
                })
            },
        );
    }
    group.finish();
}

/// A dump of `ids` as `cnamed-gen` and the exporters write one: an app per line, clusters
/// at random.
fn dump_of(ids: impl Iterator<Item = String>) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut json = String::from("{\"serial\": 1, \"apps\": {\n");
    for (i, id) in ids.enumerate() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let separator = if i == 0 { "" } else { ",\n" };
        write!(json, r#"{separator}"{id}": "mt{}""#, state % 8 + 1).unwrap();
    }
    json.push_str("\n}}\n");
    json.into_bytes()
}

/// The fast dump reader alone (the apps read, checked and collected; the tables not built),
/// on one thread, from memory: bytes per second; beside it, counting the same bytes' lines
/// as `wc -l` does.
fn bench_scan(c: &mut Criterion) {
    let zone = zone();
    let one_thread = Reading {
        threads: 1,
        block: 4 << 20,
    };
    let mut group = c.benchmark_group("scan");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let numbers = dump_of((FIRST_APP..FIRST_APP + 1_000_000).map(|id| id.to_string()));
    let strings = dump_of(string_ids(1_000_000).into_iter());
    for (name, json) in [("numeric_1M", numbers), ("strings_1M", strings)] {
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let apps = Snapshot::scan_json(black_box(&json), &zone, one_thread).unwrap();
                assert_eq!(apps, 1_000_000);
            })
        });
        // What `wc -l` does with the same bytes (GNU wc counts with memchr): the floor.
        group.bench_function(format!("{name}_wc_l"), |b| {
            b.iter(|| {
                let lines = memchr::memchr_iter(b'\n', black_box(&json)).count();
                assert_eq!(lines, 1_000_002);
            })
        });
    }
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let zone = zone();
    let json = dump(1_000_000);
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("1M_apps", |b| {
        b.iter(|| {
            let snapshot = Snapshot::from_json(black_box(json.as_bytes()), &zone).unwrap();
            assert_eq!(snapshot.app_count(), 1_000_000);
            snapshot
        })
    });
    group.finish();
}

/// `changed` app changes spread over a table of `apps`: a third moved, a third removed, a
/// third added.
fn changes(apps: u64, changed: u64) -> Vec<(String, Option<&'static str>)> {
    let step = apps / changed;
    (0..changed)
        .map(|i| match i % 3 {
            2 => ((FIRST_APP + 2 * apps + i).to_string(), Some("mt9")),
            1 => ((FIRST_APP + i * step).to_string(), None),
            _ => ((FIRST_APP + i * step).to_string(), Some("mt9")),
        })
        .collect()
}

fn bench_changes(c: &mut Criterion) {
    let zone = zone();
    let apps = 10_000_000;
    let base = Snapshot::from_json(dump(apps).as_bytes(), &zone).unwrap();
    let mut group = c.benchmark_group("changes_apply_10M");
    group.sample_size(20);
    for changed in [1u64, 1_000, 100_000] {
        let changes = changes(apps, changed);
        group.throughput(Throughput::Elements(changed));
        group.bench_with_input(
            BenchmarkId::from_parameter(changed),
            &changes,
            |b, changes| {
                b.iter(|| {
                    let applied = base
                        .with_changes(2, changes.iter().map(|(id, c)| (id.as_str(), *c)))
                        .unwrap();
                    assert_eq!(applied.serial, 2);
                    applied
                })
            },
        );
    }
    group.finish();
    // The overlay of 100k changes folded into new tables, off the query path.
    let changes = changes(apps, 100_000);
    let changed = base
        .with_changes(2, changes.iter().map(|(id, c)| (id.as_str(), *c)))
        .unwrap();
    let mut group = c.benchmark_group("fold_10M");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("100k_changes", |b| b.iter(|| changed.fold().unwrap()));
    group.finish();
}

criterion_group!(
    benches,
    bench_lookup,
    bench_lookup_strings,
    bench_lookup_overlay,
    bench_load,
    bench_scan,
    bench_changes
);
criterion_main!(benches);
