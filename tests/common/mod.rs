//! A real `cnamed` process on a free loopback port, and an independent decoder (hickory-proto)
//! for what it sends back.
#![allow(dead_code)] // Each test binary uses a different part of this.
#![allow(unreachable_pub)] // A module of each test crate; `pub` is for the test files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // As dead_code above: each test binary uses some of these.
pub use cnamed::testing::{raw_message as raw_query, tcp_frame as frame};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

pub const IDENTITY: &str = "test-box-1";
const START_TIMEOUT: Duration = Duration::from_secs(20);
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long "no reply" is waited for.
pub const SILENCE: Duration = Duration::from_millis(300);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_cnamed")
}

pub fn sample_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/apps.json")
}

/// A command that runs cnamed through `wrapper` (a command that ends by running the program
/// and arguments after it), or directly when `wrapper` is empty.
pub fn command_under(wrapper: &[&str]) -> Command {
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary());
            command
        }
        None => Command::new(binary()),
    }
}

/// Writes `json` to a fresh file for one test.
pub fn temp_dump(test: &str, json: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dumps");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}-{}.json", std::process::id()));
    std::fs::write(&path, json).unwrap();
    path
}

/// A loopback port free for both UDP and TCP, for a server that must come back on the same
/// port. It is drawn below the kernel's ephemeral range (32768 and up), so no `:0` bind of a
/// concurrent test can take it between this probe and the server's bind: cnamed binds with
/// SO_REUSEPORT, and a port shared with another test's server sent transfers to the wrong one.
pub fn fixed_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    let mut attempt = 0u32;
    loop {
        let port = 20_000 + (random.hash_one((std::process::id(), attempt)) % 12_000) as u16;
        let udp = UdpSocket::bind(("127.0.0.1", port));
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
        attempt += 1;
    }
}

/// A child process killed and reaped on drop, so that a test that fails (panics) leaves no
/// process behind: a server, or a load generator.
pub struct Reaped(Option<Child>);

impl Reaped {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// Waits for the child's end and all it wrote to the pipes taken.
    pub fn wait_with_output(mut self) -> std::process::Output {
        let child = self.0.take().expect("a child until consumed");
        child.wait_with_output().unwrap()
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a child until consumed")
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child until consumed")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running server; killed on drop.
pub struct Cnamed {
    /// Killed and reaped when the server is dropped.
    child: Reaped,
    /// The first listen address; `addrs` has them all, in `--listen` order.
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    log: Receiver<String>,
    /// Every line `wait_log` has read, matching or not.
    seen: Vec<String>,
}

impl Cnamed {
    /// Starts the sample dump with two workers and a fixed identity, plus `extra` flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_dump(&sample_dump(), extra)
    }

    pub fn start_dump(dump: &Path, extra: &[&str]) -> Self {
        Self::start_with(dump, extra, &[])
    }

    /// Starts with extra environment variables.
    pub fn start_with(dump: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Self {
        Self::start_under(&[], dump, extra, env)
    }

    /// Starts through `wrapper` (a command that ends by running the program and arguments
    /// after it, e.g. `sh -c 'ulimit -n 64 && exec "$0" "$@"'`), or directly when empty.
    pub fn start_under(
        wrapper: &[&str],
        dump: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Self {
        let mut child = command_under(wrapper)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--threads",
                "2",
                "--identity",
                IDENTITY,
            ])
            .arg("--dump")
            .arg(dump)
            .args(extra)
            .envs(env.iter().map(|(key, value)| (*key, *value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cnamed starts");
        let stderr = child.stderr.take().unwrap();
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child: Reaped::new(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            addrs: Vec::new(),
            log,
            seen: Vec::new(),
        };
        let ready = server.wait_log("serving");
        let addrs = ready
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split(" (udp").next())
            .expect("addresses in the start line");
        server.addrs = addrs.split(' ').map(|a| a.parse().unwrap()).collect();
        server.addr = server.addrs[0];
        server
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let exit = self.child.try_wait().ok().flatten();
                    panic!(
                        "no log line with {needle:?} (exit: {exit:?}); the lines so far:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// A line with `needle` among those read so far, or the next one: for a line that may
    /// come before or after one waited for (a secondary's dump written as it starts).
    pub fn wait_log_seen(&mut self, needle: &str) -> String {
        match self.seen_log(needle).first() {
            Some(line) => line.to_string(),
            None => self.wait_log(needle),
        }
    }

    /// The lines `wait_log` has read so far (those before "serving" included) that contain
    /// `needle`.
    pub fn seen_log(&self, needle: &str) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|line| line.contains(needle))
            .map(String::as_str)
            .collect()
    }

    /// The log lines that arrived since the last wait, consumed.
    pub fn drain_log(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends one datagram; returns the reply, if one comes within `SILENCE` or
    /// `REPLY_TIMEOUT` (whichever `expect_reply` picks).
    pub fn udp_raw(&self, packet: &[u8], expect_reply: bool) -> Option<Vec<u8>> {
        udp_exchange(self.addr, packet, expect_reply)
    }

    pub fn udp(&self, packet: &[u8]) -> Vec<u8> {
        self.udp_raw(packet, true).expect("a UDP reply")
    }

    pub fn tcp_connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        stream
    }

    /// One query over a new TCP connection.
    pub fn tcp(&self, packet: &[u8]) -> Vec<u8> {
        let mut stream = self.tcp_connect();
        stream.write_all(&frame(packet)).unwrap();
        read_frame(&mut stream).expect("a TCP reply")
    }

    /// The reply over UDP and over TCP, which must agree but for TC.
    pub fn both(&self, packet: &[u8]) -> [Vec<u8>; 2] {
        [self.udp(packet), self.tcp(packet)]
    }
}

/// Sends one datagram to `server`; returns the reply, waiting `REPLY_TIMEOUT` if one is
/// expected, else `SILENCE`.
pub fn udp_exchange(server: SocketAddr, packet: &[u8], expect_reply: bool) -> Option<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .unwrap();
    let socket = UdpSocket::bind(local).unwrap();
    socket
        .set_read_timeout(Some(if expect_reply { REPLY_TIMEOUT } else { SILENCE }))
        .unwrap();
    socket.send_to(packet, server).unwrap();
    let mut buf = [0u8; 65536];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => Some(buf[..len].to_vec()),
        Err(_) => None,
    }
}

pub fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).ok()?;
    let mut message = vec![0u8; u16::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut message).ok()?;
    Some(message)
}

/// A query built by hickory: RD set, no EDNS.
pub fn query(name: &str, rtype: RecordType) -> Message {
    query_class(name, rtype, DNSClass::IN)
}

pub fn query_class(name: &str, rtype: RecordType, class: DNSClass) -> Message {
    let mut message = Message::new();
    let mut question = Query::query(raw_name(name), rtype);
    question.set_query_class(class);
    message
        .set_id(0x4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(question);
    message
}

/// A name from dotted text, labels taken as raw bytes (so "-123456" or "a_b" work too).
pub fn raw_name(text: &str) -> Name {
    let labels = text
        .split('.')
        .filter(|label| !label.is_empty())
        .map(str::as_bytes);
    Name::from_labels(labels).unwrap()
}

/// Adds an OPT with this payload size.
pub fn with_edns(mut message: Message, payload: u16) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_version(0);
    message.set_edns(edns);
    message
}

pub fn encode(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap()
}

/// Decodes with hickory and checks that nothing trails the message.
pub fn decode(bytes: &[u8]) -> Message {
    let mut decoder = BinDecoder::new(bytes);
    let message = Message::read(&mut decoder).expect("hickory decodes the reply");
    assert!(decoder.is_empty(), "{} trailing bytes", decoder.len());
    message
}

/// The NS names in a reply's answer section, sorted.
pub fn ns_names(reply: &Message) -> Vec<String> {
    let mut names: Vec<String> = reply
        .answers()
        .iter()
        .map(|r| match r.data() {
            Some(hickory_proto::rr::RData::NS(ns)) => ns.0.to_ascii(),
            other => panic!("not NS: {other:?}"),
        })
        .collect();
    names.sort();
    names
}

/// The raw question section of a message with one question: bytes 12.. up to QTYPE+QCLASS.
pub fn raw_question(packet: &[u8]) -> &[u8] {
    let mut at = 12;
    while packet[at] != 0 {
        at += 1 + packet[at] as usize;
    }
    &packet[12..at + 5]
}

/// The metrics endpoint's address, from the start log of a server run with `--metrics`.
pub fn metrics_addr(server: &mut Cnamed) -> SocketAddr {
    // Logged before the start line, or (before the probes started first) after it.
    let seen = server
        .seen_log("metrics on http://")
        .first()
        .map(|l| l.to_string());
    let line = seen.unwrap_or_else(|| server.wait_log("metrics on http://"));
    let rest = line.split("http://").nth(1).unwrap();
    rest.trim_end_matches("/metrics").parse().unwrap()
}

/// One HTTP/1.1 request over a plain TcpStream: (status code, body).
pub fn http_get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header end");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), length, "body length as announced");
    (status, body.to_owned())
}

/// The samples of a Prometheus text exposition, by `name{labels}`. Checks the format as it
/// goes: every sample belongs to a family announced by HELP and TYPE lines.
pub fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    let mut families = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    families.insert(format!("{name}{suffix}"));
                }
            } else {
                families.insert(name.to_owned());
            }
        } else if line.starts_with("# HELP ") {
        } else {
            let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            let family = key.split('{').next().unwrap();
            assert!(families.contains(family), "{family} has no TYPE line");
            samples.insert(key.to_owned(), value.parse().unwrap());
        }
    }
    samples
}

/// Scrapes until `key` reaches `at_least` (counters move just after the replies leave).
pub fn wait_metric(
    addr: SocketAddr,
    key: &str,
    at_least: f64,
) -> std::collections::BTreeMap<String, f64> {
    wait_metric_for(addr, key, at_least, REPLY_TIMEOUT)
}

/// Scrapes until `key` reaches `at_least`, or `timeout` has passed.
pub fn wait_metric_for(
    addr: SocketAddr,
    key: &str,
    at_least: f64,
    timeout: Duration,
) -> std::collections::BTreeMap<String, f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = http_get(addr, "GET", "/metrics");
        assert_eq!(status, 200);
        let samples = parse_metrics(&body);
        let value = *samples.get(key).unwrap_or_else(|| panic!("no {key}"));
        if value >= at_least || Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `message` with an EDNS COOKIE option holding `cookie`.
pub fn with_cookie(message: Message, cookie: &[u8]) -> Message {
    use hickory_proto::rr::rdata::opt::EdnsOption;
    let mut message = with_edns(message, 1232);
    let edns = message.extensions_mut().as_mut().unwrap();
    edns.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    message
}

/// The COOKIE option of a reply, if it has one.
pub fn reply_cookie(reply: &Message) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match reply
        .extensions()
        .as_ref()?
        .options()
        .get(EdnsCode::Cookie)?
    {
        EdnsOption::Unknown(10, data) => Some(data.clone()),
        other => panic!("cookie option decoded as {other:?}"),
    }
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A TCP connection whose receive window stays small (4 KiB), so that answers it does not
/// read back up into the server instead of into the kernel's buffers.
pub fn connect_small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&addr.into(), REPLY_TIMEOUT)
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    stream
}

/// The CNAME target `qname` (type A, over UDP) is answered with; `None` without one.
pub fn target_of(server: &Cnamed, qname: &str) -> Option<String> {
    cname_target(&decode(&server.udp(&encode(&query(qname, RecordType::A)))))
}

/// The target of a reply's first answer when it is a CNAME.
pub fn cname_target(reply: &Message) -> Option<String> {
    match reply.answers().first().and_then(|r| r.data()) {
        Some(hickory_proto::rr::RData::CNAME(target)) => Some(target.0.to_ascii()),
        _ => None,
    }
}

/// The apex SOA serial served, over TCP.
pub fn serial_of(server: &Cnamed) -> u32 {
    let reply = decode(&server.tcp(&encode(&query("apps.example.com.", RecordType::SOA))));
    match reply.answers()[0].data() {
        Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial(),
        other => panic!("{other:?}"),
    }
}

/// An IXFR request from `serial`: the question, and the client's SOA in authority.
pub fn ixfr_query(id: u16, serial: u32) -> Vec<u8> {
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::RData;
    let mut query = Message::new();
    query.set_id(id);
    let apex: Name = "apps.example.com.".parse().unwrap();
    query.add_query(Query::query(apex.clone(), RecordType::IXFR));
    let soa = SOA::new(
        "ns1.example.com.".parse().unwrap(),
        "hostmaster.apps.example.com.".parse().unwrap(),
        serial,
        3600,
        600,
        604800,
        60,
    );
    query.add_name_server(hickory_proto::rr::Record::from_rdata(
        apex,
        0,
        RData::SOA(soa),
    ));
    encode(&query)
}
