//! dnstap with real tools: `fstrm_capture` (Debian's fstrm-bin) listens on the socket
//! `--dnstap` names and writes what cnamed sends to a file, and BIND's `dnstap-read`
//! decodes it. Also: sampling and the message choice, a collector that stops reading (the
//! answers go on, frames are dropped and counted), and one that is not there yet (cnamed
//! connects once it is). (fstrm_capture and dnstap-read are installed by .ci/run.)

mod collector;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;

/// A fresh directory for one test's socket and capture file.
fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dnstap-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `fstrm_capture` listening on `socket`, writing to `file`; killed on drop.
fn capture(socket: &Path, file: &Path) -> Reaped {
    let child = Command::new("fstrm_capture")
        .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
        .arg(socket)
        .arg("-w")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fstrm_capture must be installed (.ci/run installs fstrm-bin)");
    let child = Reaped::new(child);
    wait_until(|| socket.exists(), "fstrm_capture's socket");
    child
}

/// Stops `fstrm_capture` as an operator would (SIGINT: it closes its file), and waits.
fn stop_capture(capture: Reaped) {
    let status = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = capture.wait_with_output();
    assert!(
        output.status.code().is_some() || output.status.success(),
        "{output:?}"
    );
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `dnstap-read ARGS FILE`'s output.
fn dnstap_read(args: &[&str], file: &Path) -> String {
    let output = Command::new("dnstap-read")
        .args(args)
        .arg(file)
        .output()
        .expect("dnstap-read must be installed (.ci/run installs bind9-dnsutils)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A server logging to the collector at `socket`, with metrics and `extra` flags.
fn logging_to(socket: &Path, extra: &[&str]) -> Cnamed {
    let mut flags = vec![
        "--dnstap",
        socket.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ];
    flags.extend_from_slice(extra);
    Cnamed::start(&flags)
}

/// Stops the server with SIGTERM (the writer sends what is left, then STOP) and waits.
fn stop_server(mut server: Cnamed) {
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

fn metric(server: &mut Cnamed, key: &str) -> f64 {
    let (_, body) = http_get(metrics_addr(server), "GET", "/metrics");
    *parse_metrics(&body)
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

/// A UDP socket of the test's own, so that its port can be looked for in the log.
fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    socket
}

fn ask(socket: &UdpSocket, server: SocketAddr, name: &str) -> Vec<u8> {
    socket
        .send_to(&encode(&query(name, RecordType::A)), server)
        .unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn fstrm_capture_and_dnstap_read_decode_queries_and_responses() {
    let dir = temp_dir("capture");
    let (socket, file) = (dir.join("dnstap.sock"), dir.join("out.fstrm"));
    let capturing = capture(&socket, &file);
    let mut server = logging_to(&socket, &[]);
    server.wait_log_seen("dnstap: writing to");
    let udp = client();
    let udp_port = udp.local_addr().unwrap().port();
    let reply = decode(&ask(&udp, server.addr, "ws-123456.apps.example.com"));
    assert_eq!(cname_target(&reply).as_deref(), Some("ws-mt1.example.com."));
    let mut tcp = server.tcp_connect();
    let tcp_port = tcp.local_addr().unwrap().port();
    tcp.write_all(&frame(&encode(&query(
        "nope-1.apps.example.com",
        RecordType::AAAA,
    ))))
    .unwrap();
    read_frame(&mut tcp).expect("a TCP reply");
    drop(tcp);
    // A sweep (every 250 ms) hands the frames to the writer.
    let addr = metrics_addr(&mut server);
    wait_metric(addr, "cnamed_dnstap_frames_total", 4.0);
    assert_eq!(metric(&mut server, "cnamed_dnstap_connected"), 1.0);
    let port = server.addr.port();
    stop_server(server);
    stop_capture(capturing);

    let lines = dnstap_read(&[], &file);
    let expected = [
        format!("AQ 127.0.0.1:{udp_port} -> 127.0.0.1:{port} UDP"),
        format!("AR 127.0.0.1:{udp_port} <- 127.0.0.1:{port} UDP"),
        format!("AQ 127.0.0.1:{tcp_port} -> 127.0.0.1:{port} TCP"),
        format!("AR 127.0.0.1:{tcp_port} <- 127.0.0.1:{port} TCP"),
    ];
    let names = [
        "ws-123456.apps.example.com/IN/A",
        "ws-123456.apps.example.com/IN/A",
        "nope-1.apps.example.com/IN/AAAA",
        "nope-1.apps.example.com/IN/AAAA",
    ];
    // Workers hand their frames over at their own sweeps: the order across them is free.
    let logged: Vec<&str> = lines.lines().collect();
    assert_eq!(logged.len(), 4, "{lines}");
    for (expected, name) in expected.iter().zip(names) {
        let found = logged
            .iter()
            .any(|line| line.contains(expected.as_str()) && line.ends_with(name));
        assert!(found, "no line with {expected:?} for {name} in {lines}");
    }
    // The whole messages, and the fields of the envelope.
    let yaml = dnstap_read(&["-y"], &file);
    assert_eq!(
        yaml.matches(&format!("identity: {IDENTITY}")).count(),
        4,
        "{yaml}"
    );
    assert_eq!(yaml.matches("version: cnamed ").count(), 4, "{yaml}");
    assert_eq!(
        yaml.matches("query_zone: apps.example.com.").count(),
        4,
        "{yaml}"
    );
    assert_eq!(yaml.matches("type: AUTH_QUERY").count(), 2, "{yaml}");
    assert_eq!(yaml.matches("type: AUTH_RESPONSE").count(), 2, "{yaml}");
    let messages = dnstap_read(&["-p"], &file);
    assert!(
        messages.contains("ws-123456.apps.example.com. 300\tIN\tCNAME\tws-mt1.example.com."),
        "{messages}"
    );
    assert!(messages.contains("status: NXDOMAIN"), "{messages}");
}

#[test]
fn one_query_in_n_and_only_the_messages_asked_for_are_logged() {
    let dir = temp_dir("sample");
    let (socket, file) = (dir.join("dnstap.sock"), dir.join("out.fstrm"));
    let capturing = capture(&socket, &file);
    let mut server = logging_to(
        &socket,
        &[
            "--threads",
            "1",
            "--dnstap-sample",
            "10",
            "--dnstap-messages",
            "responses",
        ],
    );
    server.wait_log_seen("dnstap: writing to");
    let udp = client();
    for i in 0..45 {
        ask(
            &udp,
            server.addr,
            &format!("ws-{}.apps.example.com", 1000 + i),
        );
    }
    let addr = metrics_addr(&mut server);
    wait_metric(addr, "cnamed_dnstap_frames_total", 5.0);
    // Another sweep or two: nothing more comes.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(metric(&mut server, "cnamed_dnstap_frames_total"), 5.0);
    stop_server(server);
    stop_capture(capturing);
    let lines = dnstap_read(&[], &file);
    let logged: Vec<&str> = lines.lines().collect();
    // The 1st, 11th, 21st, 31st and 41st queries' responses: one in ten, from the first.
    let names: Vec<String> = [1000, 1010, 1020, 1030, 1040]
        .iter()
        .map(|app| format!("ws-{app}.apps.example.com/IN/A"))
        .collect();
    assert_eq!(logged.len(), 5, "{lines}");
    for (line, name) in logged.iter().zip(&names) {
        assert!(line.contains(" AR "), "{line}");
        assert!(
            line.ends_with(name.as_str()),
            "{line:?} should end with {name}"
        );
    }
}

/// A collector that takes the handshake, then reads nothing more until `release` says so.
fn stalled_collector(socket: &Path, release: Receiver<()>) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        collector::accept_handshake(&mut stream);
        let _ = release.recv();
        drop(stream);
    })
}

#[test]
fn a_stalled_collector_costs_frames_never_answers() {
    let dir = temp_dir("stalled");
    let socket = dir.join("dnstap.sock");
    let (release, released) = std::sync::mpsc::channel();
    let collector = stalled_collector(&socket, released);
    let mut server = logging_to(&socket, &[]);
    server.wait_log_seen("dnstap: writing to");
    // Far more frames than the socket buffer and every chunk hold: about 12 MB.
    let sockets: Vec<UdpSocket> = (0..4).map(|_| client()).collect();
    let packet = encode(&query("ws-123456.apps.example.com", RecordType::A));
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    for _ in 0..500 {
        for socket in &sockets {
            for _ in 0..20 {
                socket.send_to(&packet, server.addr).unwrap();
            }
        }
        for socket in &sockets {
            for _ in 0..20 {
                if socket.recv_from(&mut buf).is_ok() {
                    answered += 1;
                }
            }
        }
    }
    let addr = metrics_addr(&mut server);
    let samples = wait_metric(
        addr,
        "cnamed_dnstap_dropped_frames_total{reason=\"collector_slow\"}",
        1.0,
    );
    let dropped = samples["cnamed_dnstap_dropped_frames_total{reason=\"collector_slow\"}"];
    assert!(dropped > 0.0, "{samples:?}");
    // Every query was answered (a lost datagram on loopback is the kernel's, and rare).
    assert!(
        answered >= 40_000 * 99 / 100,
        "{answered} of 40000 answered"
    );
    // The server still stops promptly: the writer gives the stalled collector up.
    let started = Instant::now();
    stop_server(server);
    assert!(started.elapsed() < Duration::from_secs(15));
    release.send(()).unwrap();
    collector.join().unwrap();
}

#[test]
fn an_absent_collector_is_connected_to_once_it_listens() {
    let dir = temp_dir("absent");
    let (socket, file) = (dir.join("dnstap.sock"), dir.join("out.fstrm"));
    let mut server = logging_to(&socket, &[]);
    server.wait_log_seen("dnstap: cannot write to");
    let udp = client();
    ask(&udp, server.addr, "ws-123456.apps.example.com");
    let addr = metrics_addr(&mut server);
    wait_metric(
        addr,
        "cnamed_dnstap_dropped_frames_total{reason=\"collector_absent\"}",
        2.0,
    );
    assert_eq!(metric(&mut server, "cnamed_dnstap_connected"), 0.0);
    // The collector comes: cnamed connects within its backoff (at most 5 s).
    let capturing = capture(&socket, &file);
    server.wait_log("dnstap: writing to");
    wait_metric(addr, "cnamed_dnstap_connected", 1.0);
    ask(&udp, server.addr, "api-123456.apps.example.com");
    wait_metric(addr, "cnamed_dnstap_frames_total", 2.0);
    stop_server(server);
    stop_capture(capturing);
    let lines = dnstap_read(&[], &file);
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        lines.contains("api-123456.apps.example.com/IN/A"),
        "{lines}"
    );
    assert!(!lines.contains("ws-123456"), "{lines}");
}

#[test]
fn a_collector_that_refuses_dnstap_is_not_written_to() {
    // A reader that answers READY with FINISH (it takes another content type).
    let dir = temp_dir("refusing");
    let socket = dir.join("dnstap.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let refusing = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        collector::read_ready(&mut stream);
        stream.write_all(&collector::FINISH).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        rest
    });
    let mut server = Cnamed::start(&["--dnstap", socket.to_str().unwrap()]);
    let line = server.wait_log_seen("dnstap: cannot write to");
    assert!(line.contains("not ACCEPT"), "{line}");
    stop_server(server);
    assert!(
        refusing.join().unwrap().is_empty(),
        "nothing after the refusal"
    );
}
