//! Zone transfers both ways (AXFR, RFC 5936; IXFR, RFC 1995; TSIG, RFC 8945): a cnamed
//! primary checked with hickory-proto, dig and kdig, and cnamed's own transfer client.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use hickory_proto::serialize::txt::Parser;

/// `{"serial": S, "apps": {...}}` with `apps` apps, every fifth a string ID.
fn dump(serial: u32, apps: u32, cluster_shift: u32) -> String {
    let entries: Vec<String> = (0..apps)
        .map(|i| match i % 5 {
            0 => format!(r#""app-{i}": "c{}""#, (i + cluster_shift) % 4),
            _ => format!(r#""{i}": "c{}""#, (i + cluster_shift) % 4),
        })
        .collect();
    format!(
        r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
        entries.join(",")
    )
}

fn axfr_query(id: u16) -> Vec<u8> {
    let mut query = Message::new();
    query.set_id(id);
    query.add_query(hickory_proto::op::Query::query(
        "apps.example.com.".parse().unwrap(),
        RecordType::AXFR,
    ));
    encode(&query)
}

/// Sends an AXFR on `stream` and reads messages until the closing SOA (or the first message,
/// if it is an error); returns the messages.
fn read_axfr(stream: &mut TcpStream) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut soas = 0;
    while let Some(frame) = read_frame(stream) {
        let message = Message::from_bytes(&frame).expect("hickory decodes every message");
        let error = message.response_code() != ResponseCode::NoError;
        soas += message
            .answers()
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        messages.push(message);
        if error || soas >= 2 {
            break;
        }
    }
    messages
}

fn records(messages: &[Message]) -> Vec<Record> {
    messages.iter().flat_map(|m| m.answers().to_vec()).collect()
}

fn key(record: &Record) -> (String, RecordType, String) {
    (
        record.name().to_lowercase().to_ascii(),
        record.record_type(),
        record
            .data()
            .map(|d| d.to_string().to_lowercase())
            .unwrap_or_default(),
    )
}

fn connect(server: &Cnamed) -> TcpStream {
    let stream = server.tcp_connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// An allowed client gets every record of `cnamed zonefile`, SOA first and last, in
/// messages hickory decodes; dig agrees on the count. Not allowed: REFUSED.
#[test]
fn axfr_carries_the_zone_file() {
    let dump_path = temp_dump("axfr", &dump(9, 20_000, 0));
    let server = Cnamed::start_dump(&dump_path, &["--xfr-allow", "127.0.0.0/8"]);
    let mut stream = connect(&server);
    stream.write_all(&frame(&axfr_query(4242))).unwrap();
    let messages = read_axfr(&mut stream);
    assert!(messages.len() > 1, "{} messages", messages.len());
    for message in &messages {
        assert_eq!(message.id(), 4242);
        assert!(message.authoritative());
        assert_eq!(message.response_code(), ResponseCode::NoError);
    }
    let all = records(&messages);
    assert_eq!(all.len(), 1 + 1 + 20_000 * 3 + 1);
    assert_eq!(all[0].record_type(), RecordType::SOA);
    assert_eq!(all.last().unwrap().record_type(), RecordType::SOA);

    let zonefile = std::process::Command::new(binary())
        .arg("zonefile")
        .arg("--dump")
        .arg(&dump_path)
        .output()
        .unwrap();
    let text = String::from_utf8(zonefile.stdout).unwrap();
    let (_, zone) = Parser::new(text.as_str(), None, None).parse().unwrap();
    let expected: BTreeSet<_> = zone
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .map(key)
        .collect();
    let transferred: BTreeSet<_> = all.iter().map(key).collect();
    assert!(expected == transferred, "AXFR and zonefile differ");

    let dig = std::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &server.addr.port().to_string()])
        .args(["apps.example.com", "AXFR"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&dig.stdout);
    assert!(out.contains("XFR size: 60003 records"), "{out}");

    let outsiders = Cnamed::start_dump(&dump_path, &["--xfr-allow", "10.0.0.0/8"]);
    let mut stream = connect(&outsiders);
    stream.write_all(&frame(&axfr_query(1))).unwrap();
    let refused = read_axfr(&mut stream);
    assert_eq!(refused[0].response_code(), ResponseCode::Refused);
}

/// Queries before the AXFR on the same connection are answered first, in order.
#[test]
fn pipelined_queries_are_answered_before_the_transfer() {
    let server = Cnamed::start(&["--xfr-allow", "127.0.0.1"]);
    let mut stream = connect(&server);
    let soa = encode(&query("apps.example.com.", RecordType::SOA));
    let mut both = frame(&soa);
    both.extend_from_slice(&frame(&axfr_query(77)));
    stream.write_all(&both).unwrap();
    let first = decode(&read_frame(&mut stream).unwrap());
    assert_eq!(first.answers()[0].record_type(), RecordType::SOA);
    assert_eq!(first.answers().len(), 1);
    let transfer = read_axfr(&mut stream);
    assert_eq!(transfer[0].id(), 77);
    assert_eq!(records(&transfer).len(), 1 + 1 + 6 * 3 + 1);
}

/// A transfer keeps the snapshot it started with while a reload swaps in another; the next
/// transfer has the new one.
#[test]
fn a_transfer_keeps_its_snapshot_through_a_reload() {
    let dump_path = temp_dump("axfr-reload", &dump(100, 100_000, 0));
    let socket = std::env::temp_dir().join(format!("cnamed-axfr-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let server = Cnamed::start_dump(
        &dump_path,
        &[
            "--xfr-allow",
            "127.0.0.0/8",
            "--control",
            socket.to_str().unwrap(),
        ],
    );
    let mut stream = connect(&server);
    stream.write_all(&frame(&axfr_query(5))).unwrap();
    let first = Message::from_bytes(&read_frame(&mut stream).unwrap()).unwrap();
    // Every app moves one cluster on, with a new serial.
    std::fs::write(&dump_path, dump(101, 100_000, 1)).unwrap();
    let reload = std::process::Command::new(binary())
        .args(["reload", "--control", socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(reload.status.code(), Some(0), "{reload:?}");
    let mut messages = vec![first];
    messages.extend(read_axfr(&mut stream));
    let old = records(&messages);
    assert_eq!(old.len(), 1 + 1 + 300_000 + 1);
    let serials: Vec<String> = old
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .map(|r| r.data().unwrap().to_string())
        .collect();
    assert!(
        serials.iter().all(|soa| soa.contains(" 100 ")),
        "{serials:?}"
    );
    let app_7 = |records: &[Record]| {
        records
            .iter()
            .find(|r| r.name().to_ascii() == "ws-7.apps.example.com.")
            .map(|r| r.data().unwrap().to_string())
    };
    assert_eq!(app_7(&old).as_deref(), Some("ws-c3.example.com."));

    let mut stream = connect(&server);
    stream.write_all(&frame(&axfr_query(6))).unwrap();
    let new = records(&read_axfr(&mut stream));
    assert_eq!(app_7(&new).as_deref(), Some("ws-c0.example.com."));
    let _ = std::fs::remove_file(&socket);
}

/// At most four transfers at once: a fifth is REFUSED while four clients hold theirs (not
/// reading), and served once one of them goes.
#[test]
fn concurrent_transfers_are_capped() {
    let dump_path = temp_dump("axfr-cap", &dump(1, 300_000, 0));
    let mut server = Cnamed::start_dump(
        &dump_path,
        &["--xfr-allow", "127.0.0.0/8", "--metrics", "127.0.0.1:0"],
    );
    let metrics = metrics_addr(&mut server);
    let mut holders: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut stream = connect(&server);
            stream.write_all(&frame(&axfr_query(i))).unwrap();
            stream
        })
        .collect();
    // Each transfer thread now blocks on a full socket: about 10 MB each, unread.
    std::thread::sleep(Duration::from_millis(500));
    let mut fifth = connect(&server);
    fifth.write_all(&frame(&axfr_query(5))).unwrap();
    let refused = read_axfr(&mut fifth);
    assert_eq!(refused[0].response_code(), ResponseCode::Refused);

    let mut reader = holders.pop().unwrap();
    let done = read_axfr(&mut reader);
    assert_eq!(records(&done).len(), 1 + 1 + 900_000 + 1);
    drop(reader);
    std::thread::sleep(Duration::from_millis(300));
    let mut sixth = connect(&server);
    sixth.write_all(&frame(&axfr_query(6))).unwrap();
    let served = read_axfr(&mut sixth);
    assert_eq!(served[0].response_code(), ResponseCode::NoError);
    drop(sixth);
    drop(holders);
    // Counted: two completed (the one read, the sixth), one refused, three failed (never
    // read, then closed), and the records and bytes of the completed ones.
    let transfers =
        |result: &str| format!("cnamed_xfr_transfers_total{{type=\"AXFR\",result=\"{result}\"}}");
    // Each is counted when its thread ends, in no particular order: wait for both counts.
    wait_metric_for(metrics, &transfers("failed"), 3.0, Duration::from_secs(15));
    let m = wait_metric_for(
        metrics,
        &transfers("completed"),
        2.0,
        Duration::from_secs(15),
    );
    assert_eq!(m[&transfers("completed")], 2.0);
    // Each completed one timed, 900k records taking more than a bucket's first bound.
    assert_eq!(m["cnamed_xfr_duration_seconds_count{type=\"AXFR\"}"], 2.0);
    assert_eq!(
        m["cnamed_xfr_duration_seconds_bucket{type=\"AXFR\",le=\"0.0001\"}"],
        0.0
    );
    assert!(m["cnamed_xfr_duration_seconds_sum{type=\"AXFR\"}"] > 0.0);
    assert_eq!(m[&transfers("refused_busy")], 1.0);
    assert_eq!(m[&transfers("failed")], 3.0);
    assert_eq!(
        m["cnamed_xfr_records_total{type=\"AXFR\"}"],
        2.0 * 900_003.0
    );
    assert!(m["cnamed_xfr_bytes_total{type=\"AXFR\"}"] > 2.0 * 30e6);
}

/// With `--tsig-key-file`, a transfer must be signed (RFC 8945): dig and kdig, whose TSIG
/// code is not ours, transfer with the key and check every message's signature; a wrong
/// secret gets BADSIG, an unknown key BADKEY (both NOTAUTH), an unsigned request REFUSED.
#[test]
fn tsig_signed_transfers() {
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let keys = temp_dump(
        "tsig-keys",
        &format!(
            "key \"xfr-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n\
             key \"big\" {{ algorithm hmac-sha512; secret \"{secret}\"; }};\n"
        ),
    );
    let dump_path = temp_dump("tsig-dump", &dump(3, 20_000, 0));
    let server = Cnamed::start_dump(
        &dump_path,
        &[
            "--xfr-allow",
            "127.0.0.0/8",
            "--tsig-key-file",
            keys.to_str().unwrap(),
        ],
    );
    let port = server.addr.port().to_string();
    let run = |program: &str, key: &str| {
        let output = std::process::Command::new(program)
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "-y",
                key,
                "apps.example.com",
                "AXFR",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let good = format!("hmac-sha256:xfr-key:{secret}");
    let out = run("dig", &good);
    assert!(out.contains("XFR size: 60003 records"), "{out}");
    assert!(!out.to_lowercase().contains("tsig verify failure"), "{out}");
    let out = run("kdig", &good);
    assert!(out.contains("60003 records"), "{out}");
    let out = run("kdig", &format!("hmac-sha512:big:{secret}"));
    assert!(out.contains("60003 records"), "{out}");

    let wrong = "hmac-sha256:xfr-key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = run("kdig", wrong);
    assert!(out.contains("BADSIG"), "{out}");
    let out = run("kdig", &format!("hmac-sha256:nobody:{secret}"));
    assert!(out.contains("BADKEY"), "{out}");

    let mut stream = connect(&server);
    stream.write_all(&frame(&axfr_query(1))).unwrap();
    let unsigned = read_axfr(&mut stream);
    assert_eq!(unsigned[0].response_code(), ResponseCode::Refused);
}

/// A request signed with the right key but 1,000 s off the clock: NOTAUTH, TSIG error
/// BADTIME, the answer signed and carrying the server's time (RFC 8945 §5.2.3). The request is
/// made by our signer (dig and kdig cannot set the time); the RCODE is read by hickory.
#[test]
fn tsig_badtime_is_answered_signed_with_our_time() {
    use cnamed::tsig::{self, Algorithm, Chain, Key, Signing};
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let keys = temp_dump(
        "tsig-badtime",
        &format!("key \"xfr-key\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};"),
    );
    let server = Cnamed::start(&[
        "--xfr-allow",
        "127.0.0.0/8",
        "--tsig-key-file",
        keys.to_str().unwrap(),
    ]);
    let key = Key {
        name: b"\x07xfr-key\x00".to_vec(),
        algorithm: Algorithm::HmacSha256,
        secret: tsig::keyfile::parse(&std::fs::read_to_string(&keys).unwrap())
            .unwrap()
            .remove(0)
            .secret,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut query = axfr_query(31);
    let len = query.len();
    query.resize(len + 200, 0);
    let signing = Signing::new(&key, &key.name, Chain::Query, now - 1000);
    let (end, _) = tsig::sign(&mut query, len, &signing).unwrap();
    query.truncate(end);
    let mut stream = connect(&server);
    stream.write_all(&frame(&query)).unwrap();
    let reply = read_frame(&mut stream).expect("an answer");
    assert_eq!(
        Message::from_bytes(&reply).unwrap().response_code().low(),
        9
    );
    let tsig = tsig::find(&reply).unwrap().expect("a TSIG record");
    assert_eq!(tsig.error, tsig::BADTIME);
    assert_eq!(tsig.time_signed, now - 1000, "the request's time");
    assert_eq!(tsig.mac.len(), 32, "signed");
    let ours = tsig.other.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
    assert!(ours.abs_diff(now) < 10, "our time in Other Data: {ours}");
}

/// Ordinary queries signed with TSIG (secondaries sign their SOA refresh) get signed answers
/// over UDP and TCP, checked by dig and kdig; a wrong secret gets NOTAUTH with BADSIG, and a
/// server without a key file answers BADKEY rather than an unsigned answer. Keys follow
/// reloads.
#[test]
fn signed_queries_get_signed_answers() {
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let keys = temp_dump(
        "tsig-queries",
        &format!("key \"edge\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};"),
    );
    let mut signed = Cnamed::start(&["--tsig-key-file", keys.to_str().unwrap()]);
    let keyless = Cnamed::start(&[]);
    let ask = |program: &str, server: &Cnamed, key: &str, transport: &str, name: &str| {
        let port = server.addr.port().to_string();
        let output = std::process::Command::new(program)
            .args(["@127.0.0.1", "-p", &port, "-y", key, transport, name, "A"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let good = format!("hmac-sha256:edge:{secret}");
    for transport in ["+notcp", "+tcp"] {
        let out = ask("dig", &signed, &good, transport, "apps.example.com");
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("TSIG PSEUDOSECTION"), "{out}");
        assert!(!out.contains("verify"), "dig checked the signature: {out}");
        let out = ask(
            "kdig",
            &signed,
            &good,
            transport,
            "ws-123456.apps.example.com",
        );
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("ws-mt1.example.com"), "{out}");
        assert!(out.contains("TSIG PSEUDOSECTION"), "{out}");
        assert!(!out.to_lowercase().contains("warning"), "{out}");
    }
    let wrong = "hmac-sha256:edge:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = ask("kdig", &signed, wrong, "+notcp", "apps.example.com");
    // kdig shows the TSIG error as the status (the header says NOTAUTH).
    assert!(
        out.contains("status: BADSIG") && out.contains("ANSWER: 0"),
        "{out}"
    );
    let out = ask("kdig", &keyless, &good, "+tcp", "apps.example.com");
    assert!(
        out.contains("status: BADKEY") && out.contains("ANSWER: 0"),
        "{out}"
    );
    // The unsigned path is untouched.
    let out = std::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &signed.addr.port().to_string()])
        .args(["apps.example.com", "SOA"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("status: NOERROR"));

    // Keys are read again on reload: a rolled key works at once, the retired one is
    // unknown; a broken key file fails the reload and the keys in use stay.
    let rolled = "hmac-sha256:edge2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    std::fs::write(
        &keys,
        "key \"edge2\" { algorithm hmac-sha256; secret \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"; };",
    )
    .unwrap();
    signed.signal("HUP");
    signed.wait_log("reloaded");
    let out = ask("kdig", &signed, rolled, "+notcp", "apps.example.com");
    assert!(
        out.contains("status: NOERROR") && out.contains("TSIG"),
        "{out}"
    );
    let out = ask("kdig", &signed, &good, "+notcp", "apps.example.com");
    assert!(out.contains("status: BADKEY"), "{out}");
    std::fs::write(&keys, "key \"edge3\" { algorithm md5; };").unwrap();
    signed.signal("HUP");
    let line = signed.wait_log("reload failed");
    assert!(line.contains("TSIG key"), "{line}");
    let out = ask("kdig", &signed, rolled, "+notcp", "apps.example.com");
    assert!(out.contains("status: NOERROR"), "{out}");
}

/// Every message of one transfer on a new connection, until the server closes it. A transfer
/// REFUSED is asked again (for 30 s): the four slots of the transfers before may not be
/// given back yet when their threads wait for a busy core.
fn transfer(server: &Cnamed, query: &[u8]) -> Vec<Message> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = connect(server);
        stream.write_all(&frame(query)).unwrap();
        let mut messages = Vec::new();
        while let Some(frame) = read_frame(&mut stream) {
            let message = Message::from_bytes(&frame).expect("hickory decodes every message");
            let refused = message.response_code() == ResponseCode::Refused;
            messages.push(message);
            if refused {
                break;
            }
        }
        let refused =
            matches!(&messages[..], [only] if only.response_code() == ResponseCode::Refused);
        if !refused || std::time::Instant::now() > deadline {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn soa_serial(record: &Record) -> Option<u32> {
    match record.data() {
        Some(hickory_proto::rr::RData::SOA(soa)) => Some(soa.serial()),
        _ => None,
    }
}

/// After reloads that move, add and remove apps, an IXFR from a serial in the history gets
/// the differences in order (RFC 1995): applied to the old zone's AXFR they give the new
/// zone's AXFR exactly. A current (or newer) client gets the SOA alone; one older than the
/// history gets the whole zone; the metrics say which.
#[test]
fn ixfr_sends_the_differences() {
    let json = |serial: u32, apps: std::ops::Range<u32>, moved: u32| {
        let entries: Vec<String> = apps
            .map(|i| {
                let cluster = (i + u32::from(i % 100 < moved)) % 4;
                match i % 5 {
                    0 => format!(r#""app-{i}": "c{cluster}""#),
                    _ => format!(r#""{i}": "c{cluster}""#),
                }
            })
            .collect();
        format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        )
    };
    let dump_path = temp_dump("ixfr", &json(1, 0..5000, 0));
    let mut server = Cnamed::start_dump(
        &dump_path,
        &[
            "--xfr-allow",
            "127.0.0.0/8",
            "--metrics",
            "127.0.0.1:0",
            "--ixfr-history",
            "2",
        ],
    );
    let metrics = metrics_addr(&mut server);
    let zone = |messages: &[Message]| -> BTreeSet<_> {
        records(messages)
            .iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .map(key)
            .collect()
    };
    let zone1 = zone(&transfer(&server, &axfr_query(1)));
    // Serial 2: 1% moved, 1% added, 1% removed; serial 3: another 1% moved.
    std::fs::write(&dump_path, json(2, 50..5050, 1)).unwrap();
    server.signal("HUP");
    let line = server.wait_log("reloaded");
    assert!(
        line.contains("50 added, 50 removed, 49 moved") && line.contains("for IXFR"),
        "{line}"
    );
    let zone2 = zone(&transfer(&server, &axfr_query(2)));
    std::fs::write(&dump_path, json(3, 50..5050, 2)).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    let zone3 = zone(&transfer(&server, &axfr_query(2)));

    let messages = transfer(&server, &ixfr_query(3, 1));
    let all = records(&messages);
    let soas: Vec<u32> = all.iter().filter_map(soa_serial).collect();
    assert_eq!(soas, [3, 1, 2, 2, 3, 3], "current, then each difference");
    assert!(messages.iter().all(|m| m.id() == 3 && m.authoritative()));
    assert_eq!(messages[0].queries()[0].query_type(), RecordType::IXFR);
    let mut applied = zone1.clone();
    let mut deleting = false;
    for record in &all[1..all.len() - 1] {
        if soa_serial(record).is_some() {
            deleting = !deleting;
        } else if deleting {
            assert!(
                applied.remove(&key(record)),
                "{record} deleted but not there"
            );
        } else {
            assert!(applied.insert(key(record)), "{record} added but there");
        }
    }
    assert_eq!(applied, zone3);
    // Nothing but the changes: each record deleted or added once per difference.
    let changes = |a: &BTreeSet<_>, b: &BTreeSet<_>| a.symmetric_difference(b).count();
    assert_eq!(
        all.len(),
        6 + changes(&zone1, &zone2) + changes(&zone2, &zone3)
    );
    assert!(changes(&zone1, &zone2) > 0 && changes(&zone2, &zone3) > 0);

    for current in [3, 99] {
        let up_to_date = records(&transfer(&server, &ixfr_query(4, current)));
        assert_eq!(up_to_date.len(), 1);
        assert_eq!(soa_serial(&up_to_date[0]), Some(3));
    }
    let full = transfer(&server, &ixfr_query(5, 0));
    assert_eq!(zone(&full), zone3, "not in the history: the whole zone");
    assert_eq!(full[0].queries()[0].query_type(), RecordType::IXFR);

    let style = |s: &str| format!("cnamed_ixfr_answers_total{{style=\"{s}\"}}");
    let m = wait_metric_for(metrics, &style("full"), 1.0, Duration::from_secs(10));
    assert_eq!(m[&style("incremental")], 1.0);
    assert_eq!(m[&style("up_to_date")], 2.0);
    assert_eq!(m["cnamed_ixfr_history_deltas"], 2.0);
    assert!(m["cnamed_xfr_bytes_total{type=\"IXFR\"}"] > 0.0);
}

/// NOTIFY (RFC 1996): sent at start and after each new serial to every `--notify` target,
/// with the SOA; sent again with the same ID until acknowledged; signed when there are keys.
/// After an acknowledgement, SOA queries ask the target what it serves (the fleet view).
#[test]
fn notify_until_acknowledged() {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::serialize::binary::BinEncodable;
    let secondary = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let target = secondary.local_addr().unwrap().to_string();
    let keys = temp_dump(
        "notify-keys",
        "key \"edge\" { algorithm hmac-sha256; secret \"PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=\"; };",
    );
    let keyring = cnamed::tsig::keyfile::load(&keys).unwrap();
    let dump_path = temp_dump("notify", &dump(5, 100, 0));
    let mut server = Cnamed::start_dump(
        &dump_path,
        &[
            "--notify",
            &target,
            "--tsig-key-file",
            keys.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let metrics = metrics_addr(&mut server);
    // Once a NOTIFY is acknowledged, the primary asks the target its SOA (the fleet view):
    // those that come before a NOTIFY are skipped here, unanswered (counted).
    let soa_queries = std::cell::Cell::new(0);
    let receive = || loop {
        let mut buf = [0u8; 1024];
        let (len, from) = secondary.recv_from(&mut buf).expect("a NOTIFY");
        let message = Message::from_bytes(&buf[..len]).expect("hickory decodes it");
        if message.op_code() == OpCode::Query {
            assert_eq!(message.message_type(), MessageType::Query);
            assert_eq!(message.queries()[0].query_type(), RecordType::SOA);
            soa_queries.set(soa_queries.get() + 1);
            continue;
        }
        assert_eq!(message.op_code(), OpCode::Notify);
        assert_eq!(message.queries()[0].query_type(), RecordType::SOA);
        let signed = cnamed::tsig::find(&buf[..len]).unwrap().expect("signed");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let verdict = cnamed::tsig::verify(&buf[..len], &signed, &keyring, now);
        assert!(
            matches!(verdict, cnamed::tsig::Verdict::Valid { .. }),
            "{verdict:?}"
        );
        return (message, from);
    };
    let (first, _) = receive();
    assert_eq!(soa_serial(&first.answers()[0]), Some(5));
    // Not answered: the same NOTIFY comes again after about a second; this one is answered.
    let started = std::time::Instant::now();
    let (again, from) = receive();
    assert_eq!(again.id(), first.id());
    assert!(started.elapsed() > Duration::from_millis(500));
    let mut ack = again.clone();
    ack.set_message_type(MessageType::Response);
    secondary.send_to(&ack.to_bytes().unwrap(), from).unwrap();
    let acked = "cnamed_notifies_total{result=\"acknowledged\"}";
    let m = wait_metric_for(metrics, acked, 1.0, Duration::from_secs(5));
    assert_eq!(m["cnamed_notifies_total{result=\"sent\"}"], 2.0);

    std::fs::write(&dump_path, dump(6, 100, 1)).unwrap();
    server.signal("HUP");
    let (next, from) = receive();
    assert_eq!(soa_serial(&next.answers()[0]), Some(6));
    assert_ne!(next.id(), first.id());
    let mut ack = next.clone();
    ack.set_message_type(MessageType::Response);
    secondary.send_to(&ack.to_bytes().unwrap(), from).unwrap();
    wait_metric_for(metrics, acked, 2.0, Duration::from_secs(5));
    // Now the SOA queries of the fleet view come, 10 ms after the acknowledgement and then
    // backing off; nothing else does.
    let mut buf = [0u8; 1024];
    let (len, _) = secondary.recv_from(&mut buf).expect("an SOA query");
    let query = Message::from_bytes(&buf[..len]).unwrap();
    assert_eq!(query.op_code(), OpCode::Query);
    assert_eq!(query.queries()[0].query_type(), RecordType::SOA);
    assert_eq!(query.queries()[0].name().to_ascii(), "apps.example.com.");
}

/// IXFR over UDP (RFC 1995 §2): the differences when they fit one 512-byte datagram, else
/// the current SOA alone (the client then asks over TCP); REFUSED outside `--xfr-allow`.
#[test]
fn ixfr_over_udp() {
    let json = |serial: u32, moved: &[u32]| {
        let entries: Vec<String> = (0..200)
            .map(|i| format!(r#""{i}": "c{}""#, u32::from(moved.contains(&i))))
            .collect();
        format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        )
    };
    let dump_path = temp_dump("ixfr-udp", &json(1, &[]));
    let mut server = Cnamed::start_dump(&dump_path, &["--xfr-allow", "127.0.0.1/32"]);
    std::fs::write(&dump_path, json(2, &[7])).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    std::fs::write(&dump_path, json(3, &[7, 8, 9, 10, 11, 12, 13])).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");

    // Serial 2 -> 3 moved six apps: too large for 512 bytes, so the SOA alone.
    let reply = Message::from_bytes(&server.udp(&ixfr_query(1, 2))).unwrap();
    let serials: Vec<_> = reply.answers().iter().filter_map(soa_serial).collect();
    assert_eq!(serials, [3]);
    assert_eq!(reply.answers().len(), 1);
    // From 1 the sequence is longer still; from 3, current: the SOA alone.
    for from in [1, 3] {
        let reply = Message::from_bytes(&server.udp(&ixfr_query(2, from))).unwrap();
        assert_eq!(reply.answers().len(), 1);
    }
    // A one-app change fits: reload to 4 with app 13 back, then ask from 3.
    std::fs::write(&dump_path, json(4, &[7, 8, 9, 10, 11, 12])).unwrap();
    server.signal("HUP");
    server.wait_log("serial 4");
    let bytes = server.udp(&ixfr_query(3, 3));
    assert!(bytes.len() <= 512, "{}", bytes.len());
    let reply = Message::from_bytes(&bytes).unwrap();
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert!(reply.authoritative());
    let serials: Vec<_> = reply.answers().iter().filter_map(soa_serial).collect();
    assert_eq!(serials, [4, 3, 4, 4]);
    let cnames = reply.answers().len() - 4;
    assert_eq!(cnames, 6, "three CNAMEs of app 13 out, three in");

    // Not allowed: REFUSED, as any transfer.
    let outsider = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    outsider
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    outsider.send_to(&ixfr_query(4, 3), server.addr).unwrap();
    let mut buf = [0u8; 512];
    let len = outsider.recv(&mut buf).unwrap();
    let reply = Message::from_bytes(&buf[..len]).unwrap();
    assert_eq!(reply.response_code(), ResponseCode::Refused);
}

/// The AXFR client (cnamed as a secondary, issue 13) takes the zone from a cnamed primary,
/// TSIG checked on every message, and gets the dump's mapping; a wrong key, an unsigned
/// request to a keyed primary and a refusing primary are errors that say so.
#[test]
fn axfr_client_takes_the_zone() {
    use cnamed::xfr::inbound::client::fetch_axfr;
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let keys = temp_dump(
        "client-keys",
        &format!("key \"edge\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};"),
    );
    let dump_path = temp_dump("client", &dump(17, 30_000, 0));
    let server = Cnamed::start_dump(
        &dump_path,
        &[
            "--xfr-allow",
            "127.0.0.1",
            "--tsig-key-file",
            keys.to_str().unwrap(),
        ],
    );
    let zone = cnamed::config::Config::default().zone().unwrap();
    let key = cnamed::tsig::keyfile::load(&keys).unwrap().remove(0);
    let timeout = cnamed::xfr::pace::TransferLimits {
        io_timeout: Duration::from_secs(10),
        ..cnamed::xfr::inbound::client::DEFAULT_LIMITS
    };
    let got = fetch_axfr(server.addr, &zone, Some(&key), timeout).unwrap();
    assert_eq!(got.serial, 17);
    let local =
        cnamed::snapshot::Snapshot::from_json(dump(17, 30_000, 0).as_bytes(), &zone).unwrap();
    assert_eq!(got.snapshot.apps(), local.apps());

    let mut wrong = key.clone();
    wrong.secret = vec![0; 32];
    let error = fetch_axfr(server.addr, &zone, Some(&wrong), timeout)
        .unwrap_err()
        .to_string();
    assert!(error.contains("BADSIG"), "{error}");
    let error = fetch_axfr(server.addr, &zone, None, timeout)
        .unwrap_err()
        .to_string();
    assert!(error.contains("RCODE 5"), "{error}");
    let open = Cnamed::start_dump(&dump_path, &[]);
    let error = fetch_axfr(open.addr, &zone, None, timeout)
        .unwrap_err()
        .to_string();
    assert!(error.contains("RCODE 5"), "{error}");
}

/// `serve --primary` (the start of issue 13): a secondary cnamed takes the zone from a cnamed
/// primary at start and after a signed NOTIFY from it (AXFR, TSIG checked), writes it to its
/// --dump, and serves that dump when restarted with the primary gone.
#[test]
fn a_secondary_follows_its_primary_on_start_and_reload() {
    let secret = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
    let keys = temp_dump(
        "secondary-keys",
        &format!("key \"edge\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};"),
    );
    let keys = keys.to_str().unwrap();
    let primary_dump = temp_dump("primary", &dump(1, 2000, 0));
    let mut primary = Cnamed::start_dump(
        &primary_dump,
        &["--xfr-allow", "127.0.0.1", "--tsig-key-file", keys],
    );
    let secondary_dump = temp_dump("secondary", "not a dump yet");
    let primary_addr = primary.addr.to_string();
    let args = ["--primary", primary_addr.as_str(), "--tsig-key-file", keys];
    let mut secondary = Cnamed::start_dump(&secondary_dump, &args);
    let cluster_of = |server: &Cnamed, app: u32| {
        let reply = decode(&server.udp(&encode(&query(
            &format!("ws-{app}.apps.example.com."),
            RecordType::A,
        ))));
        reply.answers()[0].data().unwrap().to_string()
    };
    assert_eq!(cluster_of(&secondary, 7), "ws-c3.example.com.");
    // Written once it serves, by the dump writer.
    secondary.wait_log_seen("wrote ");
    let saved = std::fs::read_to_string(&secondary_dump).unwrap();
    assert!(
        saved.starts_with(r#"{"serial": 1, "apps": {"#),
        "{saved:.60}"
    );

    std::fs::write(&primary_dump, dump(2, 2000, 1)).unwrap();
    primary.signal("HUP");
    primary.wait_log("reloaded");
    // A NOTIFY from the primary's address (this test, on 127.0.0.1): unsigned while keys are
    // configured, REFUSED and nothing happens; signed, acknowledged and the zone reloaded.
    use hickory_proto::op::{MessageType, OpCode};
    let mut notify = Message::new();
    notify
        .set_id(77)
        .set_op_code(OpCode::Notify)
        .set_authoritative(true);
    notify.add_query(hickory_proto::op::Query::query(
        "apps.example.com.".parse().unwrap(),
        RecordType::SOA,
    ));
    let unsigned = encode(&notify);
    let reply = decode(&secondary.udp(&unsigned));
    assert_eq!(reply.response_code(), ResponseCode::Refused);
    let key = cnamed::tsig::keyfile::parse(&std::fs::read_to_string(keys).unwrap())
        .unwrap()
        .remove(0);
    let mut signed = unsigned.clone();
    let len = signed.len();
    signed.resize(len + 200, 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signing = cnamed::tsig::Signing::new(&key, &key.name, cnamed::tsig::Chain::Query, now);
    let (end, _) = cnamed::tsig::sign(&mut signed, len, &signing).unwrap();
    signed.truncate(end);
    let bytes = secondary.udp(&signed);
    let reply = decode(&bytes);
    assert_eq!(reply.message_type(), MessageType::Response);
    assert_eq!(reply.op_code(), OpCode::Notify);
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert!(cnamed::tsig::find(&bytes).unwrap().is_some(), "signed");
    let line = secondary.wait_log("reloaded");
    assert!(line.contains("serial 2 (was 1)"), "{line}");
    assert_eq!(secondary.seen_log("NOTIFY from 127.0.0.1").len(), 1);
    assert_eq!(cluster_of(&secondary, 7), "ws-c0.example.com.");
    // The dump is written off the reload path (a crash before that loses only this write).
    let written = |secondary: &Cnamed| {
        let lines = secondary.seen_log("(serial 2, 2000 apps)");
        lines.iter().any(|line| line.contains("wrote"))
    };
    if !written(&secondary) {
        secondary.wait_log("(serial 2, 2000 apps)");
    }
    assert!(written(&secondary));

    drop(primary);
    drop(secondary);
    let restarted = Cnamed::start_dump(&secondary_dump, &args);
    let lines = restarted.seen_log("no primary gave the zone");
    assert!(
        lines.len() == 1 && lines[0].contains("loading"),
        "{lines:?}"
    );
    assert_eq!(cluster_of(&restarted, 7), "ws-c0.example.com.");
}

/// A secondary keeps current without NOTIFY (the primary's SOA REFRESH of 1 s), by IXFR,
/// takes a NOTIFY over TCP, and once the primary is gone for its EXPIRE, says so (metrics,
/// status, /ready) and answers SERVFAIL (`--on-expire servfail`) until the primary is back.
#[test]
fn a_secondary_refreshes_by_ixfr_and_expires_without_its_primary() {
    // The primary comes back on the same port.
    let fixed = format!("127.0.0.1:{}", fixed_port());
    // The apps of `dump(1, 1000, 0)`, then 3 removed, 6 moved, 1001 added.
    let changed = |serial: u32| {
        let mut entries: Vec<String> = (0..1000u32)
            .filter(|&i| i != 3)
            .map(|i| {
                let cluster = if i == 6 { 9 } else { i % 4 };
                match i % 5 {
                    0 => format!(r#""app-{i}": "c{cluster}""#),
                    _ => format!(r#""{i}": "c{cluster}""#),
                }
            })
            .collect();
        entries.push(r#""1001": "c2""#.into());
        format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        )
    };
    let primary_dump = temp_dump("refresh-primary", &dump(1, 1000, 0));
    let primary_args = [
        "--listen",
        fixed.as_str(),
        "--xfr-allow",
        "127.0.0.1",
        "--soa-timers",
        "1,1,4",
    ];
    let mut primary = Cnamed::start_dump(&primary_dump, &primary_args);
    let secondary_dump = temp_dump("refresh-secondary", "not a dump yet");
    let control = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("refresh-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&control);
    let mut secondary = Cnamed::start_dump(
        &secondary_dump,
        &[
            "--primary",
            fixed.as_str(),
            "--on-expire",
            "servfail",
            "--metrics",
            "127.0.0.1:0",
            "--control",
            control.to_str().unwrap(),
        ],
    );
    let status = || {
        let output = std::process::Command::new(binary())
            .args(["status", "--control", control.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let metrics = metrics_addr(&mut secondary);
    let target =
        |server: &Cnamed, app: u32| target_of(server, &format!("ws-{app}.apps.example.com."));
    assert_eq!(target(&secondary, 6).as_deref(), Some("ws-c2.example.com."));

    // No NOTIFY: the SOA timer (REFRESH 1 s, from the primary's SOA) finds serial 2.
    std::fs::write(&primary_dump, changed(2)).unwrap();
    primary.signal("HUP");
    primary.wait_log("reloaded");
    let line = secondary.wait_log("reloaded");
    assert!(line.contains("serial 2 (was 1)"), "{line}");
    assert!(line.contains("1 added, 1 removed, 1 moved"), "{line}");
    for app in [3, 6, 7, 1001] {
        assert_eq!(target(&secondary, app), target(&primary, app), "app {app}");
    }
    assert_eq!(target(&secondary, 6).as_deref(), Some("ws-c9.example.com."));
    let ixfr = r#"cnamed_secondary_transfers_total{type="IXFR",result="changed"}"#;
    let samples = wait_metric(metrics, ixfr, 1.0);
    assert_eq!(samples[ixfr], 1.0);
    let axfr = r#"cnamed_secondary_transfers_total{type="AXFR",result="changed"}"#;
    assert_eq!(samples[axfr], 0.0, "the start's AXFR is not a refresh");
    assert!(samples[r#"cnamed_secondary_transfer_bytes_total{type="IXFR"}"#] > 0.0);
    assert_eq!(samples["cnamed_secondary_primary_serial"], 2.0);
    // Later refreshes find nothing newer.
    let up_to_date = r#"cnamed_secondary_transfers_total{type="IXFR",result="up_to_date"}"#;
    wait_metric_for(metrics, up_to_date, 1.0, Duration::from_secs(5));
    let text = status();
    for line in [
        format!("primaries: {fixed}"),
        "primary_serial: 2".to_owned(),
        format!("last_transfer: IXFR from {fixed}: up_to_date"),
        "soa_timers: refresh 1 s, retry 1 s, expire 4 s".to_owned(),
        "expired: no".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} not in\n{text}");
    }
    // In JSON, a yes/no is a boolean and the last transfer an object (hardening round
    // three, item 14), decoded by serde_json.
    let output = std::process::Command::new(binary())
        .args(["status", "--json", "--control", control.to_str().unwrap()])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["expired"], serde_json::Value::Bool(false), "{json}");
    let last = &json["last_transfer"];
    assert_eq!(last["type"], "IXFR", "{json}");
    assert_eq!(last["primary"], fixed.to_string().as_str(), "{json}");
    assert_eq!(last["result"], "up_to_date", "{json}");
    assert!(last["bytes"].is_u64() && last["error"].is_null(), "{json}");

    // A NOTIFY over TCP from the primary's address is acknowledged.
    use hickory_proto::op::{MessageType, OpCode};
    let mut notify = Message::new();
    notify
        .set_id(78)
        .set_op_code(OpCode::Notify)
        .set_authoritative(true);
    notify.add_query(hickory_proto::op::Query::query(
        "apps.example.com.".parse().unwrap(),
        RecordType::SOA,
    ));
    let reply = decode(&secondary.tcp(&encode(&notify)));
    assert_eq!(reply.message_type(), MessageType::Response);
    assert_eq!(reply.op_code(), OpCode::Notify);
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    secondary.wait_log("NOTIFY from 127.0.0.1");

    // The primary goes: after EXPIRE (4 s) without a refresh, the zone expires.
    drop(primary);
    let expired = wait_metric_for(
        metrics,
        "cnamed_secondary_expired",
        1.0,
        Duration::from_secs(10),
    );
    assert_eq!(expired["cnamed_secondary_expired"], 1.0);
    assert!(expired[r#"cnamed_secondary_transfers_total{type="AXFR",result="failed"}"#] >= 1.0);
    secondary.wait_log("EXPIRED");
    let text = status();
    assert!(text.contains("expired: YES: answering SERVFAIL"), "{text}");
    assert!(
        text.contains("last_transfer: failed: zone transfer: "),
        "{text}"
    );
    let (status, body) = http_get(metrics, "GET", "/ready");
    assert_eq!((status, body.contains("expired")), (503, true), "{body}");
    let query_6 = encode(&query("ws-6.apps.example.com.", RecordType::A));
    for reply in secondary.both(&query_6) {
        let reply = decode(&reply);
        assert_eq!(reply.response_code(), ResponseCode::ServFail);
        assert!(reply.answers().is_empty());
    }

    // Back, with serial 3: the secondary catches up and answers again.
    std::fs::write(&primary_dump, changed(3)).unwrap();
    let _primary = Cnamed::start_dump(&primary_dump, &primary_args);
    let recovered = wait_metric_for(
        metrics,
        "cnamed_secondary_primary_serial",
        3.0,
        Duration::from_secs(10),
    );
    assert_eq!(recovered["cnamed_secondary_primary_serial"], 3.0);
    secondary.wait_log("no longer expired");
    let samples = wait_metric(metrics, "cnamed_secondary_expired", 0.0);
    assert_eq!(samples["cnamed_secondary_expired"], 0.0);
    assert_eq!(http_get(metrics, "GET", "/ready").0, 200);
    let reply = decode(&secondary.udp(&query_6));
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(target(&secondary, 6).as_deref(), Some("ws-c9.example.com."));
}

/// A fake primary on loopback: answers each TCP request by `answer` (the request's QTYPE and
/// the request) with the framed messages it returns, for `connections` connections.
fn fake_primary(
    connections: usize,
    answer: impl Fn(u16, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let Some(request) = read_frame(&mut stream) else {
                continue;
            };
            let question_end = 12 + raw_question(&request).len();
            let qtype = u16::from_be_bytes([request[question_end - 4], request[question_end - 3]]);
            for message in answer(qtype, &request) {
                let mut framed = (message.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&message);
                let _ = stream.write_all(&framed);
            }
        }
    });
    addr
}

/// The messages of `stream` for the request `request` (its ID and question echoed).
fn messages_for(
    request: &[u8],
    mut stream: impl cnamed::xfr::outbound::message::Stream,
) -> Vec<Vec<u8>> {
    let id = u16::from_be_bytes([request[0], request[1]]);
    let question = raw_question(request).to_vec();
    let mut buf = vec![0u8; cnamed::xfr::outbound::message::MAX_MESSAGE];
    let mut messages = Vec::new();
    while let Some(len) = stream.next_message(id, &question, &mut buf) {
        messages.push(buf[..len].to_vec());
    }
    messages
}

/// IXFR refused (NOTIMP), or a difference that does not apply to the zone served: the
/// refresh falls back to AXFR from the same primary and gets the zone.
#[test]
fn a_refresh_falls_back_to_axfr() {
    use cnamed::xfr::inbound::client::{refresh, Refreshed};
    use cnamed::xfr::outbound::history::Delta;
    use cnamed::xfr::TransferType;
    use std::sync::Arc;
    let zone = cnamed::config::Config::default().zone().unwrap();
    let snapshot = |serial, apps: &[(&str, &str)]| {
        cnamed::snapshot::Snapshot::from_apps(serial, apps.iter().copied(), &zone).unwrap()
    };
    let live = snapshot(1, &[("1", "c0"), ("2", "c1")]);
    let newer = Arc::new(snapshot(3, &[("1", "c1"), ("2", "c1"), ("7", "c2")]));
    let timeout = cnamed::xfr::pace::TransferLimits {
        io_timeout: Duration::from_secs(5),
        ..cnamed::xfr::inbound::client::DEFAULT_LIMITS
    };

    let zone_served = Arc::clone(&newer);
    let refusing = fake_primary(2, move |qtype, request| match qtype {
        251 => {
            let mut reply = request[..12 + raw_question(request).len()].to_vec();
            reply[2] |= 0x80;
            reply[3] = 4; // NOTIMP
            reply[6..12].fill(0);
            vec![reply]
        }
        _ => messages_for(request, cnamed::xfr::outbound::axfr::axfr(&zone_served)),
    });
    let got = refresh(&[refusing], None, &live, timeout).unwrap();
    assert_eq!((got.via, got.serial), (TransferType::Axfr, 3));
    let Refreshed::Changed {
        snapshot: built,
        changes: None,
    } = got.refreshed
    else {
        panic!("not a full zone")
    };
    assert_eq!(built.apps(), newer.apps());

    // The primary's difference is from another zone at serial 1: app 2 on c0, which the zone
    // served does not have.
    let other = snapshot(1, &[("1", "c0"), ("2", "c0")]);
    let delta = [Arc::new(Delta::between(&other, &newer))];
    let zone_served = Arc::clone(&newer);
    let wrong = fake_primary(2, move |qtype, request| match qtype {
        251 => messages_for(
            request,
            cnamed::xfr::outbound::ixfr::ixfr(&zone_served, &delta),
        ),
        _ => messages_for(request, cnamed::xfr::outbound::axfr::axfr(&zone_served)),
    });
    let got = refresh(&[wrong], None, &live, timeout).unwrap();
    assert_eq!((got.via, got.serial), (TransferType::Axfr, 3));
    let Refreshed::Changed {
        snapshot: built, ..
    } = got.refreshed
    else {
        panic!("not a full zone")
    };
    assert_eq!(built.apps(), newer.apps());

    // A difference that applies is applied, and says which apps changed.
    let delta = [Arc::new(Delta::between(&live, &newer))];
    let zone_served = Arc::clone(&newer);
    let good = fake_primary(1, move |_, request| {
        messages_for(
            request,
            cnamed::xfr::outbound::ixfr::ixfr(&zone_served, &delta),
        )
    });
    let got = refresh(&[good], None, &live, timeout).unwrap();
    assert_eq!((got.via, got.serial), (TransferType::Ixfr, 3));
    let Refreshed::Changed {
        snapshot: built,
        changes: Some(resolved),
    } = got.refreshed
    else {
        panic!("not applied")
    };
    assert_eq!(built.apps(), newer.apps());
    assert_eq!(
        (resolved.difference.added, resolved.difference.moved),
        (1, 1)
    );
}

/// The primary's log names the client of a transfer by address and port, so that two
/// secondaries behind one address can be told apart (hardening round three, item 14).
#[test]
fn transfers_are_logged_with_the_clients_port() {
    let dump_path = temp_dump("axfr-log", &dump(3, 10, 0));
    let mut server = Cnamed::start_dump(&dump_path, &["--xfr-allow", "127.0.0.0/8"]);
    let mut stream = connect(&server);
    let client = stream.local_addr().unwrap();
    stream.write_all(&frame(&axfr_query(7))).unwrap();
    assert!(!read_axfr(&mut stream).is_empty());
    let line = server.wait_log("AXFR to");
    assert!(
        line.contains(&format!("AXFR to {client}: serial 3")),
        "{line}"
    );
}
