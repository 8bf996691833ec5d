//! DNS over TCP (RFC 7766): framing, pipelining, partial I/O, idle timeout, connection cap.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

fn query_with_id(name: &str, id: u16) -> Vec<u8> {
    let mut message = query(name, RecordType::A);
    message.set_id(id);
    encode(&message)
}

/// Whether the server closes `stream` (EOF or reset) within its read timeout.
fn is_closed(stream: &mut std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn pipelined_queries_are_answered_in_order() {
    let server = Cnamed::start(&[]);
    let names = [
        "ws-123456.apps.example.com.",
        "ws-999.apps.example.com.",
        "api-my-app.apps.example.com.",
        "apps.example.com.",
        "example.org.",
    ];
    let mut stream = server.tcp_connect();
    let all: Vec<u8> = names
        .iter()
        .enumerate()
        .flat_map(|(i, name)| frame(&query_with_id(name, i as u16)))
        .collect();
    stream.write_all(&all).unwrap();
    let expected = [
        ResponseCode::NoError,
        ResponseCode::NXDomain,
        ResponseCode::NoError,
        ResponseCode::NoError,
        ResponseCode::Refused,
    ];
    for (i, rcode) in expected.into_iter().enumerate() {
        let reply = decode(&read_frame(&mut stream).unwrap());
        assert_eq!(reply.id(), i as u16);
        assert_eq!(reply.response_code(), rcode);
    }
    // The connection stays open for more.
    stream
        .write_all(&frame(&query_with_id(names[0], 99)))
        .unwrap();
    assert_eq!(decode(&read_frame(&mut stream).unwrap()).id(), 99);
}

#[test]
fn queries_split_across_segments_are_reassembled() {
    let server = Cnamed::start(&[]);
    let mut stream = server.tcp_connect();
    stream.set_nodelay(true).unwrap();
    let framed = frame(&query_with_id("sockjs-345678.apps.example.com.", 7));
    for byte in &framed {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let reply = decode(&read_frame(&mut stream).unwrap());
    assert_eq!(reply.id(), 7);
    match reply.answers()[0].data() {
        Some(RData::CNAME(target)) => assert_eq!(target.0.to_ascii(), "sockjs-eu.example.com."),
        other => panic!("{other:?}"),
    }
}

#[test]
fn answers_still_go_out_after_the_client_half_closes() {
    let server = Cnamed::start(&[]);
    let mut stream = server.tcp_connect();
    let framed: Vec<u8> = (0..3)
        .flat_map(|i| frame(&query_with_id("ws-123456.apps.example.com.", i)))
        .collect();
    stream.write_all(&framed).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    for i in 0..3 {
        assert_eq!(decode(&read_frame(&mut stream).unwrap()).id(), i);
    }
    assert!(is_closed(&mut stream));
}

#[test]
fn many_answers_unread_then_read() {
    // 2000 pipelined queries, written before reading anything: the server must apply
    // backpressure without losing or reordering answers.
    let server = Cnamed::start(&[]);
    let mut stream = server.tcp_connect();
    let count = 2000u16;
    let all: Vec<u8> = (0..count)
        .flat_map(|i| frame(&query_with_id("api-234567.apps.example.com.", i)))
        .collect();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&all).unwrap());
    for i in 0..count {
        assert_eq!(decode(&read_frame(&mut stream).unwrap()).id(), i);
    }
    sender.join().unwrap();
}

#[test]
fn idle_connections_are_closed() {
    let server = Cnamed::start(&["--tcp-idle-timeout", "1"]);
    let mut idle = server.tcp_connect();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    assert!(is_closed(&mut idle));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    // A half-sent frame does not keep a connection alive either.
    let mut partial = server.tcp_connect();
    partial
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    partial.write_all(&[0, 40, 1, 2, 3]).unwrap();
    assert!(is_closed(&mut partial));
}

#[test]
fn at_the_cap_the_least_recently_active_connection_goes() {
    let server = Cnamed::start(&["--threads", "1", "--tcp-max-connections", "2"]);
    let name = "ws-123456.apps.example.com.";
    let mut first = server.tcp_connect();
    first.write_all(&frame(&query_with_id(name, 1))).unwrap();
    read_frame(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut second = server.tcp_connect();
    second.write_all(&frame(&query_with_id(name, 2))).unwrap();
    read_frame(&mut second).unwrap();
    let mut third = server.tcp_connect();
    third.write_all(&frame(&query_with_id(name, 3))).unwrap();
    assert_eq!(decode(&read_frame(&mut third).unwrap()).id(), 3);
    assert!(is_closed(&mut first), "the oldest connection was closed");
    second.write_all(&frame(&query_with_id(name, 4))).unwrap();
    assert_eq!(decode(&read_frame(&mut second).unwrap()).id(), 4);
}

#[test]
fn slow_senders_and_non_readers_are_cut_off_by_the_io_timeout() {
    // Idle timeout far away: only the I/O timeout can close these.
    let server = Cnamed::start(&["--tcp-idle-timeout", "60", "--tcp-io-timeout", "300"]);
    // Slowloris: one byte of a 40-byte frame every 100 ms keeps the connection active but
    // never completes a message.
    let mut slow = server.tcp_connect();
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    let mut frame_bytes = vec![0u8, 40];
    frame_bytes.extend_from_slice(&[b'x'; 40]);
    for byte in &frame_bytes {
        if slow.write_all(std::slice::from_ref(byte)).is_err() || is_closed(&mut slow) {
            closed = true;
            break;
        }
    }
    let waited = started.elapsed();
    assert!(closed, "still open after {waited:?}");
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");

    // A steady client that completes messages is not cut off, however long it stays.
    let mut steady = server.tcp_connect();
    for i in 0..8 {
        steady
            .write_all(&frame(&query_with_id("ws-123456.apps.example.com.", i)))
            .unwrap();
        assert_eq!(decode(&read_frame(&mut steady).unwrap()).id(), i);
        std::thread::sleep(Duration::from_millis(100));
    }
}
