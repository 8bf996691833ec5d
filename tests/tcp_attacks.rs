//! Hostile TCP clients: a flood of connections that never send, half-sent length prefixes,
//! and clients that pipeline queries but never read the answers. None of them may stall UDP
//! service or keep an honest TCP client from being answered.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const NAME: &str = "ws-123456.apps.example.com.";

/// UDP and a fresh TCP connection both answer correctly, now.
fn still_serving(server: &Cnamed) {
    for _ in 0..50 {
        let reply = decode(&server.udp(&encode(&query(NAME, RecordType::A))));
        assert_eq!(reply.answers().len(), 1);
    }
    let reply = decode(&server.tcp(&encode(&query(NAME, RecordType::A))));
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(reply.answers().len(), 1);
}

#[test]
fn connection_flood_leaves_udp_and_new_clients_served() {
    // The test holds a thousand sockets, if the machine's hard limit allows.
    let files = cnamed::sys::raise_fd_limit().unwrap();
    let flood = 1200.min(files.saturating_sub(200) as usize);
    assert!(
        flood >= 300,
        "open-file limit {files} is too low for this test"
    );
    // 2 workers, each capped at a sixth of the flood: three times what fits, sending nothing.
    let cap = flood / 6;
    let mut server = Cnamed::start(&[
        "--tcp-max-connections",
        &cap.to_string(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&mut server);
    let flood: Vec<TcpStream> = (0..flood).map(|_| server.tcp_connect()).collect();
    still_serving(&server);
    let accepted = (flood.len() + 1) as f64;
    let m = wait_metric(metrics, "cnamed_tcp_connections_accepted_total", accepted);
    assert_eq!(m["cnamed_tcp_connections_accepted_total"], accepted);
    let at_cap = m["cnamed_tcp_connections_closed_total{reason=\"cap\"}"];
    assert!(
        at_cap >= (flood.len() - 2 * cap) as f64,
        "the oldest were closed at the cap: {at_cap}"
    );
    assert!(m["cnamed_tcp_connections_open"] <= (2 * cap) as f64);
    drop(flood);
}

#[test]
fn half_frames_and_non_readers_are_cut_off_while_others_are_served() {
    cnamed::sys::raise_fd_limit().unwrap();
    let mut server = Cnamed::start(&[
        "--tcp-io-timeout",
        "300",
        "--tcp-max-connections",
        "1000",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&mut server);
    // Half a length prefix, or a prefix announcing 100 bytes and 10 of them.
    let mut half_frames: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut stream = server.tcp_connect();
            let partial: &[u8] = if i % 2 == 0 {
                &[0]
            } else {
                &[0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
            };
            stream.write_all(partial).unwrap();
            stream
        })
        .collect();
    // 5 clients each pipeline 100,000 queries (7 MB of answers, more than the kernel's
    // socket buffers take) and never read: the server must stop reading them
    // (backpressure), then close them, without blocking anyone else.
    let non_readers = 5;
    let queries: Vec<u8> = (0..100_000u32)
        .flat_map(|id| {
            let mut message = query(NAME, RecordType::A);
            message.set_id(id as u16);
            frame(&encode(&message))
        })
        .collect();
    let threads: Vec<std::thread::JoinHandle<()>> = (0..non_readers)
        .map(|_| {
            let mut stream = connect_small_window(server.addr);
            stream
                .set_write_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let queries = queries.clone();
            std::thread::spawn(move || {
                // Blocks once every buffer is full; fails once the server closes.
                let _ = stream.write_all(&queries);
                std::thread::sleep(Duration::from_secs(6));
            })
        })
        .collect();
    let started = Instant::now();
    still_serving(&server);
    let io_timeout = "cnamed_tcp_connections_closed_total{reason=\"io_timeout\"}";
    let expected = (half_frames.len() + non_readers) as f64;
    let m = wait_metric_for(metrics, io_timeout, expected, Duration::from_secs(5));
    assert_eq!(m[io_timeout], expected, "{m:#?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for stream in &mut half_frames {
        let mut byte = [0];
        assert!(
            matches!(stream.read(&mut byte), Ok(0) | Err(_)),
            "a half frame's connection is closed"
        );
    }
    still_serving(&server);
    for thread in threads {
        thread.join().unwrap();
    }
}
