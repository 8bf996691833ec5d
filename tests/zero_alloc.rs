//! The query path performs no heap allocation: a counting global allocator watches every
//! thread of an in-process server while thousands of mixed queries go through real UDP and TCP
//! sockets, after a warm-up. Cookies, response rate limiting and the per-worker counters are
//! all on.
//!
//! This test has no libtest harness (`harness = false`): the harness's own bookkeeping thread
//! allocates while tests run, which a process-wide count would blame on the server.

mod collector;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use cnamed::answer::{respond, respond_to, Context, Transport};
use cnamed::config::Config;
use cnamed::cookie::Secrets;
use cnamed::server::{Server, TcpLimits};
use cnamed::snapshot::Snapshot;
use cnamed::testing::{raw_message, tcp_frame, CountingAllocator, QueryBuilder};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

fn question(name: &str, qtype: u16, qclass: u16) -> QueryBuilder {
    QueryBuilder::new(name, qtype).class(qclass)
}

/// An OPT for 4096 bytes with DO set, this version and these options.
fn with_opt(query: QueryBuilder, version: u8, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut query = query.edns(4096).edns_version(version).edns_flags(0x8000);
    for (code, data) in options {
        query = query.option(*code, data);
    }
    query.build()
}

/// Good, NXDOMAIN, apex, refused, CHAOS, malformed, EDNS with NSID, cookies good and bad,
/// BADVERS, NOTIMP.
fn mixed_queries() -> Vec<Vec<u8>> {
    let response = question("ws-123456.apps.example.com", 1, 1).flags(0x8100);
    let plain = [
        question("ws-123456.apps.example.com", 1, 1),
        question("WS-My-App.Apps.Example.Com", 28, 1),
        question("api-999.apps.example.com", 1, 1),
        question("x.ws-123456.apps.example.com", 1, 1),
        question("apps.example.com", 6, 1),
        question("apps.example.com", 2, 1),
        question("apps.example.com", 1, 1),
        question("example.org", 1, 1),
        question("apps.example.com", 252, 1),
        question("id.server", 16, 3),
        question("version.bind", 16, 3),
        question("ws-123456.apps.example.com", 250, 1),
    ];
    let mut queries: Vec<Vec<u8>> = plain.iter().map(QueryBuilder::build).collect();
    queries.extend([
        with_opt(question("ws-123456.apps.example.com", 1, 1), 0, &[(3, &[])]),
        with_opt(
            question("sockjs-345678.apps.example.com", 1, 1),
            0,
            &[(10, &[1, 2, 3, 4, 5, 6, 7, 8])],
        ),
        with_opt(
            question("ws-123456.apps.example.com", 1, 1),
            0,
            &[(10, &[9; 24])],
        ),
        with_opt(
            question("ws-123456.apps.example.com", 1, 1),
            0,
            &[(10, &[1, 2, 3, 4, 5])],
        ),
        with_opt(question("ws-123456.apps.example.com", 1, 1), 1, &[]),
        raw_message(0x1234, 0x0100, [0, 0, 0, 0], &[]),
        raw_message(0x1234, 0x0100, [1, 0, 0, 0], &[0xC0, 0x0C, 0, 1, 0, 1]),
        raw_message(0x1234, 0x7800, [0, 0, 0, 0], &[]),
        response.build(),
        vec![1, 2, 3],
    ]);
    queries
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Equal, except that a server cookie, which ends the message and holds the time, may come
/// from another second (its 4-byte timestamp and 8-byte hash differ then).
fn same_reply(got: &[u8], expected: &[u8]) -> bool {
    got.len() == expected.len()
        && (got == expected || got[..got.len() - 12] == expected[..expected.len() - 12])
}

/// A TCP connection from 127.0.0.2, the address allowed to transfer.
fn transfer_client(server: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn main() {
    // A secondary's refresh timer starts reloads with SIGHUP; no signal loop runs here, so
    // the signals stay blocked and pending, as the server's own threads have them.
    cnamed::sys::block_signals(&cnamed::sys::SERVER_SIGNALS).unwrap();
    query_path_allocates_nothing(false);
    query_path_allocates_nothing(true);
    updates_leave_the_workers_allocation_free();
    a_secondary_following_changes_allocates_nothing();
    dnstap_logging_every_query_allocates_nothing();
    println!("zero_alloc: 5 passed, 0 failed");
}

/// As a primary, or as a secondary (`--primary`: its refresh timer, dump writer and expiry
/// checks running; the primary, at an address nothing answers, is never reached).
fn query_path_allocates_nothing(secondary: bool) {
    let config = Config {
        primary: match secondary {
            true => vec!["127.0.0.9:53".parse().unwrap()],
            false => Vec::new(),
        },
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 2,
        identity: Some("alloc-test".into()),
        dump: concat!(env!("CARGO_MANIFEST_DIR"), "/data/apps.json").into(),
        // High enough never to limit this test's queries, so that replies can be compared.
        rrl_rate: Some(1_000_000),
        // Transfers on, for a client this test's queries never come from (127.0.0.1 still
        // gets REFUSED for AXFR, as the pure answer path says).
        xfr_allow: vec!["127.0.0.2".parse().unwrap()],
        ..Config::default()
    };
    let secrets = Secrets::new([7; 16], None);
    let zone = config.zone().unwrap();
    // The sample apps, and 200,000 more so that a transfer of the zone (about 20 MB) outlasts
    // what socket buffers hold and is still running while queries are counted.
    let sample = std::fs::read_to_string(&config.dump).unwrap();
    let more: String = (0..200_000)
        .map(|i| format!(r#""{}": "mt1","#, 7_000_000 + i))
        .collect();
    let json = sample.replacen(r#""apps": {"#, &format!(r#""apps": {{{more}"#), 1);
    let snapshot = Snapshot::from_json(json.as_bytes(), &zone).unwrap();
    let queries = mixed_queries();

    // The pure answer path.
    let mut out = vec![0u8; 65535];
    let with_cookies = |transport| Context {
        client: Some("127.0.0.1".parse().unwrap()),
        now: 1_800_000_000,
        cookies: Some(&secrets),
        ..Context::new(transport)
    };
    let direct = ALLOCATOR.count(|| {
        for _ in 0..1000 {
            for query in &queries {
                for transport in [Transport::Udp, Transport::Tcp] {
                    std::hint::black_box(respond(query, &snapshot, transport, &mut out));
                    let context = with_cookies(transport);
                    std::hint::black_box(respond_to(query, &snapshot, &context, &mut out));
                }
            }
        }
    });
    assert_eq!(direct, 0, "respond() allocated");

    // The whole server: sockets, batches, event loops, snapshot loads.
    let limits = tcp_limits();
    let server = Server::bind(&config, zone, snapshot, secrets.clone(), limits).unwrap();
    let addr = server.local_addrs()[0];
    let running = server.start().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();

    // Warm-up, recording each reply (None: no reply expected) to compare against later.
    let mut expected: Vec<Option<Vec<u8>>> = Vec::new();
    let mut buf = [0u8; 65536];
    for query in &queries {
        udp.send_to(query, addr).unwrap();
        let context = Context {
            now: unix_now(),
            ..with_cookies(Transport::Udp)
        };
        let reply = respond_to(query, &running.snapshot(), &context, &mut out)
            .len
            .map(|len| out[..len].to_vec());
        if let Some(reply) = &reply {
            let (len, _) = udp.recv_from(&mut buf).unwrap();
            assert!(same_reply(&buf[..len], reply), "{query:?}");
        }
        expected.push(reply);
        tcp.write_all(&tcp_frame(query)).unwrap();
    }
    let tcp_replies = expected.iter().filter(|r| r.is_some()).count();
    for _ in 0..tcp_replies {
        let mut prefix = [0u8; 2];
        tcp.read_exact(&mut prefix).unwrap();
        tcp.read_exact(&mut buf[..u16::from_be_bytes(prefix) as usize])
            .unwrap();
    }

    // A transfer starts, and stalls: its client reads one message and stops.
    let mut transfer = transfer_client(addr);
    transfer
        .write_all(&tcp_frame(&question("apps.example.com", 252, 1).build()))
        .unwrap();
    let mut prefix = [0u8; 2];
    transfer.read_exact(&mut prefix).unwrap();
    transfer
        .read_exact(&mut buf[..u16::from_be_bytes(prefix) as usize])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let framed: Vec<Vec<u8>> = queries.iter().map(|query| tcp_frame(query)).collect();
    let rounds = 500;
    let mut wrong = 0;
    let served = ALLOCATOR.count(|| {
        for _ in 0..rounds {
            for ((query, framed), reply) in queries.iter().zip(&framed).zip(&expected) {
                udp.send_to(query, addr).unwrap();
                let Some(reply) = reply else { continue };
                let (len, _) = udp.recv_from(&mut buf).unwrap();
                wrong += usize::from(!same_reply(&buf[..len], reply));
                tcp.write_all(framed).unwrap();
                let mut prefix = [0u8; 2];
                tcp.read_exact(&mut prefix).unwrap();
                let len = u16::from_be_bytes(prefix) as usize;
                tcp.read_exact(&mut buf[..len]).unwrap();
                wrong += usize::from(!same_reply(&buf[..len], reply));
            }
        }
    });
    // The transfer was running all along: the rest of it is still there to read.
    transfer.read_exact(&mut prefix).unwrap();
    let next = u16::from_be_bytes(prefix) as usize;
    transfer.read_exact(&mut buf[..next]).unwrap();
    assert!(
        next > 60_000,
        "a full message of the transfer: {next} bytes"
    );
    drop(transfer);
    running.shutdown().unwrap();
    assert_eq!(wrong, 0, "replies differ from the pure answer path");
    assert_eq!(
        served,
        0,
        "{served} allocations over {} queries (secondary: {secondary})",
        rounds * queries.len() * 2
    );
}

/// A signed UPDATE adding app `app` on cluster eu (its three CNAMEs), built by hickory.
fn update_adding(id: u16, app: u32, key: &cnamed::tsig::Key) -> Vec<u8> {
    use hickory_proto::op::update_message::{self, UpdateMessage as _};
    use hickory_proto::rr::rdata::CNAME;
    use hickory_proto::rr::{Name, RData, Record, RecordSet};
    use hickory_proto::serialize::binary::BinEncodable;
    let name = |text: &str| Name::from_ascii(text).unwrap();
    let cname = |service: &str| {
        Record::from_rdata(
            name(&format!("{service}-{app}.apps.example.com.")),
            300,
            RData::CNAME(CNAME(name(&format!("{service}-eu.example.com.")))),
        )
    };
    let mut message = update_message::create(
        RecordSet::from(cname("ws")),
        name("apps.example.com."),
        false,
    );
    message.take_answers();
    message.set_id(id);
    message.add_update(cname("sockjs"));
    message.add_update(cname("api"));
    let mut bytes = message.to_bytes().unwrap();
    let len = bytes.len();
    bytes.resize(len + 200, 0);
    let (end, _) = cnamed::tsig::sign_request(&mut bytes, len, key, unix_now().into()).unwrap();
    bytes.truncate(end);
    bytes
}

/// UPDATEs arrive over UDP while queries are answered: the workers copy each into a buffer of
/// the pool and queue it, and allocate nothing; the committer (which must allocate: the
/// journal record, the new overlay) is not counted. Every UPDATE is acknowledged and served.
fn updates_leave_the_workers_allocation_free() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zero-alloc");
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join(format!("keys-{}", std::process::id()));
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let key_text = format!("key \"upd\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};");
    std::fs::write(&keys, &key_text).unwrap();
    let journal = dir.join(format!("journal-{}", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 2,
        identity: Some("alloc-test".into()),
        dump: concat!(env!("CARGO_MANIFEST_DIR"), "/data/apps.json").into(),
        tsig_key_file: Some(keys.clone()),
        update_keys: vec!["upd".into()],
        journal: Some(journal.clone()),
        ..Config::default()
    };
    let zone = config.zone().unwrap();
    let snapshot = Snapshot::load(&config.dump, &zone, u64::MAX).unwrap();
    let limits = tcp_limits();
    let opened = cnamed::journal::Journal::open(&journal).unwrap();
    let server = Server::bind(&config, zone, snapshot, Secrets::new([7; 16], None), limits)
        .unwrap()
        .with_journal(opened.journal);
    let addr = server.local_addrs()[0];
    let running = server.start().unwrap();
    let key = cnamed::tsig::keyfile::parse(&key_text).unwrap().remove(0);
    let updates: Vec<Vec<u8>> = (0..300u16)
        .map(|i| update_adding(i, 8_000_000 + u32::from(i), &key))
        .collect();
    let queries = mixed_queries();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Warm-up: one UPDATE and one round of queries (first use of every path).
    sender
        .send_to(&update_adding(999, 8_999_999, &key), addr)
        .unwrap();
    let mut buf = [0u8; 65536];
    sender.recv_from(&mut buf).unwrap();
    for query in &queries {
        udp.send_to(query, addr).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    while udp.recv_from(&mut buf).is_ok_and(|(len, _)| len > 0) {
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
    }
    // Some of the mixed queries get no answer (silence is their answer): wait briefly.
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();

    let mut acknowledged = 0;
    let workers = ALLOCATOR.count_workers(|| {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut buf = [0u8; 4096];
                for update in &updates {
                    sender.send_to(update, addr).unwrap();
                    if let Ok((len, _)) = sender.recv_from(&mut buf) {
                        acknowledged += usize::from(len >= 12 && buf[3] & 0xF == 0);
                    }
                }
            });
            for _ in 0..50 {
                for query in &queries {
                    udp.send_to(query, addr).unwrap();
                    let _ = udp.recv_from(&mut buf);
                }
            }
        });
    });
    let snapshot = running.snapshot();
    running.shutdown().unwrap();
    assert_eq!(
        acknowledged,
        updates.len(),
        "every UPDATE acknowledged NOERROR"
    );
    assert!(
        snapshot.cname(b"api-8000299").is_some(),
        "the last app is served"
    );
    assert_eq!(
        workers, 0,
        "{workers} allocations by the workers with UPDATEs arriving"
    );
}

/// A primary in a process of its own (its workers and transfer threads are not this
/// process's), killed on drop.
struct Primary {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Primary {
    fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cnamed"))
            .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let serving = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("serving"))
            .expect("the primary starts");
        // The rest of its log, read so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let addr = serving
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .expect("the address in the start line");
        Self { child, addr }
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A secondary with a journal follows 100 changes of its primary (an UPDATE there, then a
/// refresh here: an IXFR applied, journaled and swapped in) while queries are answered: its
/// workers allocate nothing; the refreshes (which must) are not counted.
fn a_secondary_following_changes_allocates_nothing() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zero-alloc");
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id();
    let keys = dir.join(format!("secondary-keys-{pid}"));
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let key_text = format!("key \"upd\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};");
    std::fs::write(&keys, &key_text).unwrap();
    let (primary_journal, journal) = (
        dir.join(format!("primary-journal-{pid}")),
        dir.join(format!("secondary-journal-{pid}")),
    );
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/data/apps.json");
    // The secondary's own dump: written only if a refresh falls back to a whole zone.
    let dump = dir.join(format!("secondary-dump-{pid}.json"));
    std::fs::copy(sample, &dump).unwrap();
    for path in [&primary_journal, &journal] {
        let _ = std::fs::remove_file(path);
    }
    let primary = Primary::start(&[
        "--dump",
        sample,
        "--xfr-allow",
        "127.0.0.1",
        "--tsig-key-file",
        keys.to_str().unwrap(),
        "--update-key",
        "upd",
        "--journal",
        primary_journal.to_str().unwrap(),
    ]);
    let config = Config {
        primary: vec![primary.addr],
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 2,
        identity: Some("alloc-test".into()),
        dump: dump.clone(),
        tsig_key_file: Some(keys.clone()),
        journal: Some(journal.clone()),
        ..Config::default()
    };
    let zone = config.zone().unwrap();
    let snapshot = Snapshot::load(&config.dump, &zone, u64::MAX).unwrap();
    let first_serial = snapshot.serial;
    let limits = tcp_limits();
    let opened = cnamed::journal::Journal::open(&journal).unwrap();
    let server = Server::bind(&config, zone, snapshot, Secrets::new([7; 16], None), limits)
        .unwrap()
        .with_journal(opened.journal);
    let addr = server.local_addrs()[0];
    let running = server.start().unwrap();
    let key = cnamed::tsig::keyfile::parse(&key_text).unwrap().remove(0);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 65536];
    // One change: the primary acknowledges it, the secondary refreshes (IXFR).
    let mut change = |id: u16| {
        sender
            .send_to(
                &update_adding(id, 9_000_000 + u32::from(id), &key),
                primary.addr,
            )
            .unwrap();
        let (len, _) = sender.recv_from(&mut buf).unwrap();
        assert!(len >= 12 && buf[3] & 0xF == 0, "UPDATE {id} acknowledged");
        running.reload(false).unwrap()
    };
    let queries = mixed_queries();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Warm-up: a change, and a round of queries.
    change(0);
    let mut answer = [0u8; 65536];
    for query in &queries {
        udp.send_to(query, addr).unwrap();
        let _ = udp.recv_from(&mut answer);
    }
    let workers = ALLOCATOR.count_workers(|| {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut answer = [0u8; 65536];
                for _ in 0..30 {
                    for query in &queries {
                        udp.send_to(query, addr).unwrap();
                        let _ = udp.recv_from(&mut answer);
                    }
                }
            });
            for id in 1..=100 {
                let reloaded = change(id);
                assert!(!reloaded.unchanged(), "change {id} not transferred");
            }
        });
    });
    let snapshot = running.snapshot();
    running.shutdown().unwrap();
    drop(primary);
    assert_eq!(snapshot.serial, first_serial.wrapping_add(101));
    assert!(
        snapshot.cname(b"api-9000100").is_some(),
        "the last app is served"
    );
    let journaled = cnamed::journal::Journal::open(&journal).unwrap();
    assert_eq!(journaled.entries.len(), 101, "every difference journaled");
    assert_eq!(
        workers, 0,
        "{workers} allocations by a secondary's workers with changes arriving"
    );
}

/// A dnstap collector in this process: it answers the handshake (READY with ACCEPT) and
/// reads what comes into one buffer, allocating nothing once started. Returns the bytes read
/// when the stream ends.
fn collector(listener: std::os::unix::net::UnixListener) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        collector::accept_handshake(&mut stream);
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => n,
            };
            total += n;
            // STOP ends the stream; FINISH lets the writer go at once.
            if buf[..n].ends_with(&collector::STOP) {
                let _ = stream.write_all(&collector::FINISH);
            }
        }
    })
}

/// dnstap on, every query and response logged: the workers encode frames into chunks made at
/// start and pass them to the writer thread, which writes them to the collector. Nothing on
/// either side allocates once warm.
fn dnstap_logging_every_query_allocates_nothing() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zero-alloc");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("dnstap-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let collecting = collector(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 2,
        identity: Some("alloc-test".into()),
        dump: concat!(env!("CARGO_MANIFEST_DIR"), "/data/apps.json").into(),
        dnstap: Some(path.clone()),
        ..Config::default()
    };
    let zone = config.zone().unwrap();
    let snapshot = Snapshot::load(&config.dump, &zone, u64::MAX).unwrap();
    let server = Server::bind(
        &config,
        zone,
        snapshot,
        Secrets::new([7; 16], None),
        tcp_limits(),
    )
    .unwrap();
    let addr = server.local_addrs()[0];
    let running = server.start().unwrap();
    let queries = mixed_queries();
    let framed: Vec<Vec<u8>> = queries.iter().map(|query| tcp_frame(query)).collect();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut exchange = |rounds: usize| {
        for _ in 0..rounds {
            for (query, framed) in queries.iter().zip(&framed) {
                udp.send_to(query, addr).unwrap();
                let _ = udp.recv_from(&mut buf);
                tcp.write_all(framed).unwrap();
            }
            // The TCP answers, read as they come (the unanswered ones time out).
            while tcp.read(&mut buf).is_ok_and(|n| n > 0) {}
        }
    };
    // Warm-up: every path once, and a chunk or two through the writer and back.
    exchange(3);
    std::thread::sleep(Duration::from_millis(600));
    let allocations = ALLOCATOR.count(|| {
        exchange(40);
        // A sweep hands the last chunks to the writer, which writes them.
        std::thread::sleep(Duration::from_millis(600));
    });
    let metrics = running.metrics().render();
    running.shutdown().unwrap();
    let read = collecting.join().unwrap();
    let sent: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cnamed_dnstap_frames_total "))
        .expect("the dnstap metrics")
        .parse()
        .unwrap();
    // Every round logs each UDP query and, over TCP, each query with its answer.
    assert!(sent >= (43 * queries.len()) as f64, "{sent} frames sent");
    assert!(read > 100 * sent as usize, "{read} bytes for {sent} frames");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations with every query logged to dnstap"
    );
}

/// TCP limits no test here reaches.
fn tcp_limits() -> TcpLimits {
    TcpLimits {
        idle_timeout: Duration::from_secs(60),
        io_timeout: Duration::from_secs(60),
        max_connections: 16,
    }
}
