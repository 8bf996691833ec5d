//! A secondary facing a bad primary (hardening round three, items 1 to 3, 14): one that
//! trickles a transfer, NOTIFY floods from a primary's (forgeable) address, and what the
//! secondary reports of its start-up transfer. Replies are decoded with hickory-proto.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn dump(serial: u32, apps: u32) -> String {
    let entries: Vec<String> = (0..apps)
        .map(|i| format!(r#""{i}": "c{}""#, i % 3))
        .collect();
    format!(
        r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
        entries.join(",")
    )
}

/// A primary that takes connections and answers each request a byte at a time, one every
/// `gap`, of a message that never ends: per-read timeouts never fire. Counts connections;
/// stops when the returned flag is set.
fn trickling_primary(gap: Duration) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (connections, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (counted, stopped) = (Arc::clone(&connections), Arc::clone(&stop));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let stopped = Arc::clone(&stopped);
            std::thread::spawn(move || {
                let mut request = [0u8; 512];
                let _ = stream.read(&mut request);
                // A frame of 65535 bytes, starting with the request's ID: the rest never
                // completes.
                let mut bytes = vec![0xFF, 0xFF, request[2], request[3], 0x84, 0x00];
                bytes.resize(65_537, 0);
                for byte in bytes {
                    if stopped.load(Ordering::SeqCst) || stream.write_all(&[byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            });
        }
    });
    (addr, connections, stop)
}

/// A primary that trickles is abandoned at `--max-transfer-time-in`, and the next one gives
/// the zone: the secondary starts serving (before, the 30 s per-read timeout never fired and
/// it never started). Its start-up AXFR is logged as a transfer and counted as
/// `result="initial"`, its dump has a modification time in `status`, and a refresh asks the
/// primary that answered first.
#[test]
fn a_trickling_primary_is_abandoned_for_the_next() {
    let (slow, connections, stop) = trickling_primary(Duration::from_millis(200));
    let primary_dump = temp_dump("trickle-primary", &dump(5, 100));
    let good = Cnamed::start_dump(&primary_dump, &["--xfr-allow", "127.0.0.1"]);
    let secondary_dump = temp_dump("trickle-secondary", "not a dump yet");
    let control = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trickle-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&control);
    let (slow_arg, good_arg) = (slow.to_string(), good.addr.to_string());
    let mut secondary = Cnamed::start_dump(
        &secondary_dump,
        &[
            "--primary",
            &slow_arg,
            "--primary",
            &good_arg,
            "--max-transfer-time-in",
            "2",
            "--min-transfer-rate",
            "0",
            "--metrics",
            "127.0.0.1:0",
            "--control",
            control.to_str().unwrap(),
        ],
    );
    let abandoned = secondary.seen_log("took longer than its limit of 2 s");
    assert!(
        abandoned.iter().any(|line| line.contains(&slow_arg)),
        "{abandoned:?}"
    );
    let start = secondary.seen_log("AXFR from");
    assert!(
        start
            .iter()
            .any(|line| line.contains(&format!("AXFR from {good_arg}: serial 5, 100 apps"))),
        "{start:?}"
    );
    assert!(
        secondary.seen_log("loaded").is_empty(),
        "no dump was loaded"
    );
    assert_eq!(serial_of(&secondary), 5);

    let metrics = metrics_addr(&mut secondary);
    let initial = r#"cnamed_secondary_transfers_total{type="AXFR",result="initial"}"#;
    let samples = wait_metric(metrics, initial, 1.0);
    assert!(samples[r#"cnamed_secondary_transfer_bytes_total{type="AXFR"}"#] > 0.0);
    assert_eq!(
        samples[r#"cnamed_secondary_transfers_total{type="AXFR",result="changed"}"#],
        0.0
    );
    // The zone is written as the dump once it serves, by the dump writer.
    secondary.wait_log_seen("wrote ");
    let status = std::process::Command::new(binary())
        .args(["status", "--control", control.to_str().unwrap()])
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(!status.contains("dump_modified: never"), "{status}");
    assert!(
        status.contains(&format!("last_transfer: AXFR from {good_arg}: initial")),
        "{status}"
    );

    // A refresh asks the primary that answered first: the trickler sees no new connection.
    let asked = connections.load(Ordering::SeqCst);
    secondary.signal("HUP");
    let line = secondary.wait_log("reloaded");
    assert!(line.contains("unchanged"), "{line}");
    assert_eq!(connections.load(Ordering::SeqCst), asked);
    stop.store(true, Ordering::SeqCst);
    drop(good);
}

/// A NOTIFY for the zone from the primary's address, with the SOA of `serial` in its answer
/// section when given (RFC 1996 §3.7).
fn notify(id: u16, serial: Option<u32>) -> Vec<u8> {
    let apex = Name::from_ascii("apps.example.com.").unwrap();
    let mut message = Message::new();
    message
        .set_id(id)
        .set_op_code(OpCode::Notify)
        .set_authoritative(true);
    message.add_query(hickory_proto::op::Query::query(
        apex.clone(),
        RecordType::SOA,
    ));
    if let Some(serial) = serial {
        let soa = SOA::new(
            Name::from_ascii("ns1.example.com.").unwrap(),
            Name::from_ascii("hostmaster.apps.example.com.").unwrap(),
            serial,
            3600,
            600,
            604_800,
            60,
        );
        message.add_answer(Record::from_rdata(apex, 60, RData::SOA(soa)));
    }
    encode(&message)
}

/// Sends `count` NOTIFYs without waiting, then one more and its acknowledgement, so that the
/// workers have taken them all.
fn flood(server: &Cnamed, count: u16, serial: Option<u32>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.addr).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut sink = [0u8; 512];
    for id in 0..count {
        let _ = socket.send(&notify(id, serial));
        while socket.recv(&mut sink).is_ok() {}
    }
    let last = udp_exchange(server.addr, &notify(count, serial), true);
    assert!(last.is_some(), "the last NOTIFY is acknowledged");
}

fn refreshes(metrics: SocketAddr) -> f64 {
    let (_, body) = http_get(metrics, "GET", "/metrics");
    let samples = parse_metrics(&body);
    ["changed", "up_to_date", "failed"]
        .iter()
        .flat_map(|result| {
            ["AXFR", "IXFR"].map(|via| {
                let name = format!(
                    r#"cnamed_secondary_transfers_total{{type="{via}",result="{result}"}}"#
                );
                samples[&name]
            })
        })
        .sum()
}

/// 3,000 NOTIFYs from the primary's address, without a serial or with one already served,
/// make no refresh within `--min-refresh` and no log line each (before: a log line and a
/// refresh per NOTIFY, back to back); a NOTIFY that announces a newer serial refreshes at
/// once, however recent the last refresh.
#[test]
fn notify_floods_coalesce_and_a_newer_serial_refreshes_at_once() {
    let primary_dump = temp_dump("flood-primary", &dump(1, 50));
    let mut primary = Cnamed::start_dump(&primary_dump, &["--xfr-allow", "127.0.0.1"]);
    let secondary_dump = temp_dump("flood-secondary", "not a dump yet");
    let primary_arg = primary.addr.to_string();
    let mut secondary = Cnamed::start_dump(
        &secondary_dump,
        &[
            "--primary",
            &primary_arg,
            "--min-refresh",
            "3600",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let metrics = metrics_addr(&mut secondary);
    assert_eq!(serial_of(&secondary), 1);
    // The primary moves on; nobody tells the secondary truthfully yet.
    std::fs::write(&primary_dump, dump(2, 50)).unwrap();
    primary.signal("HUP");
    primary.wait_log("reloaded");

    flood(&secondary, 3000, None);
    flood(&secondary, 3000, Some(1));
    std::thread::sleep(SILENCE);
    assert_eq!(refreshes(metrics), 0.0, "no refresh within --min-refresh");
    assert_eq!(serial_of(&secondary), 1);
    let lines = secondary.drain_log();
    let notify_lines = lines.iter().filter(|line| line.contains("NOTIFY")).count();
    assert_eq!(notify_lines, 0, "{lines:?}");

    // The truth: serial 2 is announced, once, and taken at once. (Two such NOTIFYs could
    // make two refreshes: one arriving while the first runs is one more after it.)
    let acknowledged = udp_exchange(secondary.addr, &notify(9999, Some(2)), true);
    assert!(acknowledged.is_some());
    let line = secondary.wait_log("NOTIFY from 127.0.0.1");
    assert!(line.contains("announces serial 2"), "{line}");
    secondary.wait_log("reloaded");
    assert_eq!(serial_of(&secondary), 2);
    // The NOTIFYs held back meanwhile coalesce into at most one refresh, after the hour.
    let before = refreshes(metrics);
    flood(&secondary, 1000, Some(2));
    std::thread::sleep(SILENCE);
    assert_eq!(refreshes(metrics), before);
}

/// A refresh that fails logs one error line (before: two, one from the refresh and one from
/// the reload that ran it), naming the primary and why, and the old zone keeps serving.
#[test]
fn a_failed_refresh_logs_one_line() {
    let primary_dump = temp_dump("failed-refresh-primary", &dump(3, 10));
    let primary = Cnamed::start_dump(&primary_dump, &["--xfr-allow", "127.0.0.1"]);
    let secondary_dump = temp_dump("failed-refresh-secondary", "not a dump yet");
    let primary_arg = primary.addr.to_string();
    let mut secondary = Cnamed::start_dump(&secondary_dump, &["--primary", &primary_arg]);
    // Its dump written (the path names the test: "failed" is in it).
    secondary.wait_log_seen("wrote ");
    drop(primary);
    let _ = secondary.drain_log();
    secondary.signal("HUP");
    let line = secondary.wait_log("failed");
    assert!(
        line.contains("refresh from the primaries failed, still serving serial 3")
            && line.contains(&primary_arg),
        "{line}"
    );
    std::thread::sleep(SILENCE);
    let errors: Vec<String> = secondary
        .drain_log()
        .into_iter()
        .filter(|line| line.contains("error"))
        .collect();
    assert!(errors.is_empty(), "more error lines: {errors:?}");
    assert_eq!(serial_of(&secondary), 3);
}
