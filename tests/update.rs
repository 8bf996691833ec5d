//! DNS UPDATE (RFC 2136) with `--update-key` and `--journal`: messages built by hickory-proto
//! (an independent encoder), signed with cnamed's TSIG signer and, in one test, by nsupdate
//! and knsupdate (real clients with their own TSIG code); answers read by hickory; what
//! queries see after NOERROR; what a restart after `kill -9` serves.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cnamed::tsig::{self, Algorithm, Key};
use common::*;
use hickory_proto::op::update_message::{self, UpdateMessage as _};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

const ZONE: &str = "apps.example.com.";
const SECRET: &str = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";
const SERVICES: [&str; 3] = ["ws", "sockjs", "api"];

/// A key file with `upd` (may update) and `other` (in the file, not an update key).
fn key_file(test: &str) -> PathBuf {
    temp_dump(
        &format!("{test}-keys"),
        &format!(
            "key \"upd\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
             key \"other\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n"
        ),
    )
}

fn key(name: &str, secret: &str) -> Key {
    let text = format!("key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};");
    let mut keys = tsig::keyfile::parse(&text).unwrap();
    let key = keys.remove(0);
    assert_eq!(key.algorithm, Algorithm::HmacSha256);
    key
}

/// A fresh journal path for `test` (none there yet).
fn journal_path(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("journals");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}-{}.journal", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A primary taking UPDATEs signed with `upd`, apps 1 (eu) and 2 (us) at serial 100.
fn start(dump: &Path, keys: &Path, journal: &Path, extra: &[&str]) -> Cnamed {
    let mut args = vec![
        "--tsig-key-file",
        keys.to_str().unwrap(),
        "--update-key",
        "upd",
        "--journal",
        journal.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Cnamed::start_dump(dump, &args)
}

fn base_dump(test: &str) -> PathBuf {
    temp_dump(test, r#"{"serial": 100, "apps": {"1": "eu", "2": "us"}}"#)
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn cname(service: &str, app: &str, cluster: &str) -> Record {
    Record::from_rdata(
        name(&format!("{service}-{app}.{ZONE}")),
        300,
        RData::CNAME(CNAME(name(&format!("{service}-{cluster}.example.com.")))),
    )
}

/// The three CNAMEs of `app` on `cluster`: adding them adds or moves the app.
fn set(app: &str, cluster: &str) -> Vec<Record> {
    SERVICES.iter().map(|s| cname(s, app, cluster)).collect()
}

/// The deletions of `app`'s three names (class ANY, type ANY).
fn delete(app: &str) -> Vec<Record> {
    SERVICES
        .iter()
        .map(|s| {
            let mut record = Record::with(name(&format!("{s}-{app}.{ZONE}")), RecordType::ANY, 0);
            record.set_dns_class(DNSClass::ANY);
            record
        })
        .collect()
}

/// An UPDATE of `zone` with these prerequisites and updates, unsigned.
fn update_for(zone: &str, id: u16, prerequisites: Vec<Record>, updates: Vec<Record>) -> Vec<u8> {
    let placeholder = Record::from_rdata(
        name(&format!("placeholder.{zone}")),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    );
    let mut message: Message =
        update_message::create(RecordSet::from(placeholder), name(zone), false);
    message.take_answers();
    message.take_name_servers();
    message.set_id(id);
    for record in prerequisites {
        message.add_pre_requisite(record);
    }
    for record in updates {
        message.add_update(record);
    }
    message.to_bytes().unwrap()
}

fn update(id: u16, updates: Vec<Record>) -> Vec<u8> {
    update_for(ZONE, id, Vec::new(), updates)
}

/// `message` signed with `key` now.
fn signed(mut message: Vec<u8>, key: &Key) -> Vec<u8> {
    let len = message.len();
    message.resize(len + 200, 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (end, _) = tsig::sign_request(&mut message, len, key, now).unwrap();
    message.truncate(end);
    message
}

/// The RCODE of an answer, read by hickory, which must echo the ID and be an UPDATE reply.
fn rcode(answer: &[u8], id: u16) -> ResponseCode {
    let message = Message::from_bytes(answer).expect("hickory decodes the answer");
    assert_eq!(message.id(), id);
    assert_eq!(u8::from(message.op_code()), 5, "opcode UPDATE");
    assert!(message.header().message_type() == hickory_proto::op::MessageType::Response);
    message.response_code()
}

fn tsig_error(answer: &[u8]) -> Option<u16> {
    tsig::find(answer).ok().flatten().map(|tsig| tsig.error)
}

fn target(server: &Cnamed, service: &str, app: &str) -> Option<String> {
    target_of(server, &format!("{service}-{app}.{ZONE}"))
}

/// Every service of `app` answers `cluster` (or nothing, for `None`).
fn assert_app(server: &Cnamed, app: &str, cluster: Option<&str>) {
    for service in SERVICES {
        let want = cluster.map(|c| format!("{service}-{c}.example.com."));
        assert_eq!(target(server, service, app), want, "{service}-{app}");
    }
}

#[test]
fn updates_are_acknowledged_live_and_survive_kill_9() {
    let (dump, keys, journal) = (
        base_dump("update-live"),
        key_file("update-live"),
        journal_path("update-live"),
    );
    let upd = key("upd", SECRET);
    let mut server = start(&dump, &keys, &journal, &[]);
    assert_eq!(serial_of(&server), 100);
    // A new app over UDP: live at once, serial + 1.
    let answer = server.udp(&signed(update(1, set("3", "eu")), &upd));
    assert_eq!(rcode(&answer, 1), ResponseCode::NoError);
    assert!(
        tsig::find(&answer).unwrap().is_some(),
        "the answer is signed"
    );
    assert_app(&server, "3", Some("eu"));
    assert_eq!(serial_of(&server), 101);
    // A move over TCP, delete + add in one message.
    let mut move_1 = delete("1");
    move_1.extend(set("1", "mt9"));
    let answer = server.tcp(&signed(update(2, move_1), &upd));
    assert_eq!(rcode(&answer, 2), ResponseCode::NoError);
    assert_app(&server, "1", Some("mt9"));
    // A removal; then an UPDATE that changes nothing keeps the serial.
    let answer = server.udp(&signed(update(3, delete("2")), &upd));
    assert_eq!(rcode(&answer, 3), ResponseCode::NoError);
    assert_app(&server, "2", None);
    assert_eq!(serial_of(&server), 103);
    let answer = server.udp(&signed(update(4, set("3", "eu")), &upd));
    assert_eq!(rcode(&answer, 4), ResponseCode::NoError);
    assert_eq!(serial_of(&server), 103);
    server.wait_log("UPDATE from");

    // kill -9, then the same flags: the changes and the serial come back from the journal.
    drop(server);
    let server = start(&dump, &keys, &journal, &[]);
    assert_eq!(server.seen_log("replayed from serial 100 to 103").len(), 1);
    assert_eq!(serial_of(&server), 103);
    assert_app(&server, "1", Some("mt9"));
    assert_app(&server, "2", None);
    assert_app(&server, "3", Some("eu"));
}

#[test]
fn refusals_and_tsig_errors_answer_as_the_rfcs_say() {
    let (dump, keys, journal) = (
        base_dump("update-refusals"),
        key_file("update-refusals"),
        journal_path("update-refusals"),
    );
    let upd = key("upd", SECRET);
    let server = start(&dump, &keys, &journal, &[]);
    let add = || set("5", "eu");
    // Unsigned, or signed by a key of the file that may not update: REFUSED.
    assert_eq!(
        rcode(&server.udp(&update(10, add())), 10),
        ResponseCode::Refused
    );
    let other = signed(update(11, add()), &key("other", SECRET));
    assert_eq!(rcode(&server.udp(&other), 11), ResponseCode::Refused);
    // A key not in the file: NOTAUTH, BADKEY; a bad signature: NOTAUTH, BADSIG.
    let unknown = server.udp(&signed(update(12, add()), &key("nobody", SECRET)));
    assert_eq!(rcode(&unknown, 12), ResponseCode::NotAuth);
    assert_eq!(tsig_error(&unknown), Some(tsig::BADKEY));
    let wrong_secret = key("upd", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let bad = server.tcp(&signed(update(13, add()), &wrong_secret));
    assert_eq!(rcode(&bad, 13), ResponseCode::NotAuth);
    assert_eq!(tsig_error(&bad), Some(tsig::BADSIG));
    // Another zone: NOTAUTH; a name outside the zone: NOTZONE.
    let other_zone = signed(update_for("example.org.", 14, vec![], vec![]), &upd);
    assert_eq!(rcode(&server.udp(&other_zone), 14), ResponseCode::NotAuth);
    let outside = Record::from_rdata(
        name("ws-5.example.org."),
        300,
        RData::CNAME(CNAME(name("ws-eu.example.com."))),
    );
    let outside = signed(update(15, vec![outside]), &upd);
    assert_eq!(rcode(&server.udp(&outside), 15), ResponseCode::NotZone);
    // Two services of three, a target that is no cluster's: REFUSED, nothing changes.
    let mut partial = add();
    partial.pop();
    let partial = signed(update(16, partial), &upd);
    assert_eq!(rcode(&server.udp(&partial), 16), ResponseCode::Refused);
    let mut elsewhere = add();
    elsewhere[0] = Record::from_rdata(
        name(&format!("ws-5.{ZONE}")),
        300,
        RData::CNAME(CNAME(name("www.example.net."))),
    );
    let elsewhere = signed(update(17, elsewhere), &upd);
    assert_eq!(rcode(&server.udp(&elsewhere), 17), ResponseCode::Refused);
    // Prerequisites: app 1's name must not be in use (it is): YXDOMAIN; app 5's must be.
    let mut in_use = Record::with(name(&format!("ws-1.{ZONE}")), RecordType::ANY, 0);
    in_use.set_dns_class(DNSClass::NONE);
    let message = signed(update_for(ZONE, 18, vec![in_use], add()), &upd);
    assert_eq!(rcode(&server.udp(&message), 18), ResponseCode::YXDomain);
    let mut exists = Record::with(name(&format!("ws-5.{ZONE}")), RecordType::ANY, 0);
    exists.set_dns_class(DNSClass::ANY);
    let message = signed(update_for(ZONE, 19, vec![exists], add()), &upd);
    assert_eq!(rcode(&server.udp(&message), 19), ResponseCode::NXDomain);
    assert_app(&server, "5", None);
    assert_eq!(serial_of(&server), 100, "nothing refused changed the zone");
    // The prerequisite that holds: the app is added, with a serial the SOA sets.
    let mut absent = Record::with(name(&format!("ws-5.{ZONE}")), RecordType::ANY, 0);
    absent.set_dns_class(DNSClass::NONE);
    let mut updates = add();
    let soa = SOA::new(
        name("ns1.example.com."),
        name("hostmaster.apps.example.com."),
        5000,
        3600,
        600,
        604_800,
        60,
    );
    updates.push(Record::from_rdata(name(ZONE), 3600, RData::SOA(soa)));
    let message = signed(update_for(ZONE, 20, vec![absent], updates), &upd);
    assert_eq!(rcode(&server.tcp(&message), 20), ResponseCode::NoError);
    assert_app(&server, "5", Some("eu"));
    assert_eq!(serial_of(&server), 5000);
}

/// Many UPDATEs pipelined on one connection and several connections at once: every one is
/// answered NOERROR and every app is served (commits grouped, none lost).
#[test]
fn pipelined_and_concurrent_updates_all_land() {
    let (dump, keys, journal) = (
        base_dump("update-many"),
        key_file("update-many"),
        journal_path("update-many"),
    );
    let server = start(&dump, &keys, &journal, &[]);
    let addr = server.addr;
    let clients: Vec<_> = (0..4u16)
        .map(|client| {
            std::thread::spawn(move || {
                let upd = key("upd", SECRET);
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut batch = Vec::new();
                for i in 0..25u16 {
                    let app = format!("{}", 1000 + client * 100 + i);
                    batch.extend(frame(&signed(update(i, set(&app, "eu")), &upd)));
                }
                stream.write_all(&batch).unwrap();
                (0..25u16)
                    .map(|i| {
                        let answer = read_frame(&mut stream).expect("an answer");
                        rcode(&answer, i)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        let rcodes = client.join().unwrap();
        assert!(
            rcodes.iter().all(|r| *r == ResponseCode::NoError),
            "{rcodes:?}"
        );
    }
    for client in 0..4 {
        for i in 0..25 {
            let app = format!("{}", 1000 + client * 100 + i);
            assert_eq!(
                target(&server, "api", &app).as_deref(),
                Some("api-eu.example.com.")
            );
        }
    }
    assert_eq!(serial_of(&server), 200);
}

/// nsupdate (BIND) and knsupdate (Knot), with their own TSIG code, add and move apps.
#[test]
fn nsupdate_and_knsupdate_update() {
    let (dump, keys, journal) = (
        base_dump("update-clients"),
        key_file("update-clients"),
        journal_path("update-clients"),
    );
    let server = start(&dump, &keys, &journal, &[]);
    let port = server.addr.port();
    for (program, app, cluster) in [("nsupdate", "61", "eu"), ("knsupdate", "62", "us")] {
        let mut script = format!("server 127.0.0.1 {port}\nzone {ZONE}\n");
        for service in SERVICES {
            script += &format!(
                "update add {service}-{app}.{ZONE} 300 CNAME {service}-{cluster}.example.com.\n"
            );
        }
        script += "send\n";
        let mut child = std::process::Command::new(program)
            .args(["-y", &format!("hmac-sha256:upd:{SECRET}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let output = wait_output(child, Duration::from_secs(30));
        assert!(
            output.status.success(),
            "{program}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_app(&server, app, Some(cluster));
    }
}

/// dnspython (Debian's python3-dnspython, run by the system's Python): an app added over TCP,
/// moved with a prerequisite, and deleted over UDP, each answer's TSIG checked by dnspython
/// (it raises on a bad one); a prerequisite that fails answers NXRRSET.
#[test]
fn dnspython_updates() {
    let (dump, keys, journal) = (
        base_dump("update-dnspython"),
        key_file("update-dnspython"),
        journal_path("update-dnspython"),
    );
    let server = start(&dump, &keys, &journal, &[]);
    let script = format!(
        r#"
import sys, dns.update, dns.query, dns.tsigkeyring, dns.rcode, dns.tsig
keyring = dns.tsigkeyring.from_text({{"upd": ("hmac-sha256", "{SECRET}")}})
services = {SERVICES:?}
port = {port}
def update(app, cluster=None, require=None):
    u = dns.update.Update("{ZONE}", keyring=keyring, keyname="upd", keyalgorithm=dns.tsig.HMAC_SHA256)
    for s in services:
        if require:
            u.present(f"{{s}}-{{app}}", "CNAME", f"{{s}}-{{require}}.example.com.")
        if cluster:
            u.replace(f"{{s}}-{{app}}", 300, "CNAME", f"{{s}}-{{cluster}}.example.com.")
        else:
            u.delete(f"{{s}}-{{app}}")
    return u
def send(u, tcp):
    r = (dns.query.tcp if tcp else dns.query.udp)(u, "127.0.0.1", port=port, timeout=10)
    return dns.rcode.to_text(r.rcode())
print(send(update("81", "eu"), True))
print(send(update("81", "us", require="eu"), True))
print(send(update("81", "ap", require="eu"), False))
print(send(update("2"), False))
"#,
        port = server.addr.port()
    );
    let child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (with python3-dnspython)");
    let output = wait_output(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rcodes: Vec<&str> = stdout.lines().collect();
    assert_eq!(rcodes, ["NOERROR", "NOERROR", "NXRRSET", "NOERROR"]);
    assert_app(&server, "81", Some("us"));
    assert_app(&server, "2", None);
    assert_eq!(serial_of(&server), 103);
}

/// Waits for `child` (killed past `timeout`, so that no test hangs on a client).
fn wait_output(child: std::process::Child, timeout: Duration) -> std::process::Output {
    let child = Reaped::new(child);
    let deadline = Instant::now() + timeout;
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output();
    let _ = watchdog.join();
    output
}

/// A client streams UPDATEs (one new app each) while the server is killed with SIGKILL at a
/// random moment; after a restart with the same flags every acknowledged app is served. Three
/// rounds on one journal.
#[test]
fn nothing_acknowledged_is_lost_to_kill_9() {
    use std::hash::{BuildHasher, RandomState};
    let (dump, keys, journal) = (
        base_dump("update-kill"),
        key_file("update-kill"),
        journal_path("update-kill"),
    );
    let mut acknowledged: Vec<String> = Vec::new();
    let random = RandomState::new();
    for round in 0..3u64 {
        let server = start(&dump, &keys, &journal, &[]);
        for app in &acknowledged {
            assert_eq!(
                target(&server, "ws", app).as_deref(),
                Some("ws-eu.example.com."),
                "app {app}, acknowledged before round {round}"
            );
        }
        let addr = server.addr;
        let client = std::thread::spawn(move || {
            let upd = key("upd", SECRET);
            let mut done = Vec::new();
            let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
                return done;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            for i in 0..10_000u32 {
                let app = format!("k{round}-{i}");
                let message = signed(update(i as u16, set(&app, "eu")), &upd);
                if stream.write_all(&frame(&message)).is_err() {
                    break;
                }
                match read_frame(&mut stream) {
                    Some(answer) if rcode(&answer, i as u16) == ResponseCode::NoError => {
                        done.push(app)
                    }
                    _ => break,
                }
            }
            done
        });
        let wait = 50 + random.hash_one(round) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        drop(server); // SIGKILL
        let done = client.join().unwrap();
        eprintln!(
            "round {round}: killed after {wait} ms, {} acknowledged",
            done.len()
        );
        assert!(
            !done.is_empty() || round > 0 || wait < 100,
            "some updates went through"
        );
        acknowledged.extend(done);
    }
    let server = start(&dump, &keys, &journal, &[]);
    for app in &acknowledged {
        assert_eq!(
            target(&server, "ws", app).as_deref(),
            Some("ws-eu.example.com."),
            "app {app}"
        );
    }
    assert!(!acknowledged.is_empty());
}

/// The metrics count UPDATEs by RCODE, the app changes and the journal; `cnamed status`
/// shows the journal.
#[test]
fn metrics_and_status_show_updates_and_the_journal() {
    let (dump, keys, journal) = (
        base_dump("update-metrics"),
        key_file("update-metrics"),
        journal_path("update-metrics"),
    );
    let control = journal.with_extension("control");
    let upd = key("upd", SECRET);
    let mut server = start(
        &dump,
        &keys,
        &journal,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--control",
            control.to_str().unwrap(),
        ],
    );
    let addr = metrics_addr(&mut server);
    for (id, app) in [(1, "7"), (2, "8")] {
        let answer = server.udp(&signed(update(id, set(app, "eu")), &upd));
        assert_eq!(rcode(&answer, id), ResponseCode::NoError);
    }
    let answer = server.udp(&update(3, set("9", "eu")));
    assert_eq!(rcode(&answer, 3), ResponseCode::Refused);
    let (code, body) = http_get(addr, "GET", "/metrics");
    assert_eq!(code, 200);
    let metrics = parse_metrics(&body);
    let value = |name: &str| metrics.get(name).copied().unwrap_or(-1.0);
    assert_eq!(value("cnamed_updates_total{rcode=\"NOERROR\"}"), 2.0);
    assert_eq!(value("cnamed_updates_total{rcode=\"REFUSED\"}"), 1.0);
    assert_eq!(value("cnamed_update_app_changes_total"), 2.0);
    assert_eq!(value("cnamed_journal_records"), 2.0);
    assert_eq!(value("cnamed_journal_oldest_serial"), 101.0);
    let on_disk = std::fs::metadata(&journal).unwrap().len() as f64;
    assert_eq!(value("cnamed_journal_bytes"), on_disk);
    assert_eq!(value("cnamed_overlay_entries"), 2.0);
    // Each acknowledged UPDATE was its own commit (answered before the next was sent); the
    // histogram is written once its answers are out.
    let commits = "cnamed_update_commit_duration_seconds_count";
    let metrics = wait_metric(addr, commits, 2.0);
    assert_eq!(metrics[commits], 2.0);
    let all = "cnamed_update_commit_duration_seconds_bucket{le=\"+Inf\"}";
    assert_eq!(metrics[all], 2.0);
    assert!(metrics["cnamed_update_commit_duration_seconds_sum"] > 0.0);
    let status = std::process::Command::new(binary())
        .args(["status", "--control", control.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("journal_records: 2"), "{text}");
    assert!(text.contains("updates_acknowledged: 2"), "{text}");
    assert!(
        text.contains(&format!("journal: {}", journal.display())),
        "{text}"
    );
}

/// `cnamed update`: set and delete apps with the same options as `serve`, a serial, exit 1 on
/// a refusal (naming the RCODE), 2 when nothing answers.
#[test]
fn cnamed_update_sets_and_deletes_apps() {
    let (dump, keys, journal) = (
        base_dump("update-cli"),
        key_file("update-cli"),
        journal_path("update-cli"),
    );
    let server = start(&dump, &keys, &journal, &["--clusters", "eu,us,mt9"]);
    let run = |server_addr: &str, args: &[&str]| {
        let output = std::process::Command::new(binary())
            .arg("update")
            .args([
                "--server",
                server_addr,
                "--tsig-key-file",
                keys.to_str().unwrap(),
                "--update-key",
                "upd",
            ])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let addr = server.addr.to_string();
    let (code, stderr) = run(&addr, &["set", "70", "eu", "71", "US"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_app(&server, "70", Some("eu"));
    assert_app(&server, "71", Some("us"));
    assert_eq!(serial_of(&server), 101);
    let (code, stderr) = run(&addr, &["--serial", "900", "set", "1", "mt9"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_app(&server, "1", Some("mt9"));
    assert_eq!(serial_of(&server), 900);
    let (code, stderr) = run(&addr, &["delete", "70", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_app(&server, "70", None);
    assert_app(&server, "2", None);
    // A cluster outside --clusters: REFUSED, exit 1.
    let (code, stderr) = run(&addr, &["set", "72", "ap9"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("REFUSED"), "{stderr}");
    // A key of the file that --update-key does not name: REFUSED.
    let (code, stderr) = run(&addr, &["--key", "other", "set", "72", "eu"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("REFUSED"), "{stderr}");
    // Nothing listening: exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, stderr) = run(&closed_addr, &["set", "72", "eu"]);
    assert_eq!(code, Some(2), "{stderr}");
    // Bad usage: exit 2 before anything is sent.
    let (code, _) = run(&addr, &["set", "72"]);
    assert_eq!(code, Some(2));
}

/// `cnamed reload` over the control socket: exit code, stdout, stderr.
fn reload(control: &Path) -> (i32, String, String) {
    let output = std::process::Command::new(binary())
        .args(["reload", "--control", control.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A dump at `serial` of apps 1..=20 on eu, with `edits` on top (cluster "" removes).
fn export(serial: u32, edits: &[(&str, &str)]) -> String {
    let mut apps: Vec<(String, String)> = (1..=20).map(|i| (i.to_string(), "eu".into())).collect();
    for (app, cluster) in edits {
        apps.retain(|(a, _)| a != app);
        if !cluster.is_empty() {
            apps.push(((*app).into(), (*cluster).into()));
        }
    }
    let apps: Vec<String> = apps.iter().map(|(a, c)| format!("{a:?}: {c:?}")).collect();
    format!(r#"{{"serial": {serial}, "apps": {{{}}}}}"#, apps.join(", "))
}

/// Full exports never undo an UPDATE: an export older than the zone is reloaded with the
/// journal's changes after its serial replayed on top (a journaled change beats the export
/// where they disagree), under a new serial, journaled so that a restart keeps it; an
/// export at the same serial with other content is refused; a newer one supersedes the
/// journal (emptied); an older one the journal does not reach back to is refused.
#[test]
fn exports_never_undo_updates() {
    let test = "update-reconcile";
    let (dump, keys, journal) = (
        temp_dump(test, &export(100, &[])),
        key_file(test),
        journal_path(test),
    );
    let control = journal.with_extension("control");
    let flags = ["--control", control.to_str().unwrap()];
    let upd = key("upd", SECRET);
    let server = start(&dump, &keys, &journal, &flags);
    // Two UPDATEs after the export of serial 100: a new app, a move.
    let answer = server.udp(&signed(update(1, set("500", "eu")), &upd));
    assert_eq!(rcode(&answer, 1), ResponseCode::NoError);
    let mut move_1 = delete("1");
    move_1.extend(set("1", "us"));
    let answer = server.tcp(&signed(update(2, move_1), &upd));
    assert_eq!(rcode(&answer, 2), ResponseCode::NoError);
    assert_eq!(serial_of(&server), 102);

    // The export race: an export of serial 100 reloaded now. It lacks app 500, says app 1
    // is on mt9 (older than the journaled move) and removes app 2 (its own news).
    std::fs::write(&dump, export(100, &[("1", "mt9"), ("2", "")])).unwrap();
    let (code, out, err) = reload(&control);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("serial 103 (was 102), 20 apps: 0 added, 1 removed, 0 moved")
            && out.contains("the dump of serial 100 with 2 journal records after it replayed"),
        "{out}"
    );
    assert_app(&server, "500", Some("eu"));
    assert_app(&server, "1", Some("us"));
    assert_app(&server, "2", None);
    assert_app(&server, "3", Some("eu"));
    // Again: the same apps, nothing new.
    let (code, out, _) = reload(&control);
    assert_eq!(code, 0);
    assert!(out.starts_with("unchanged: serial 103"), "{out}");

    // kill -9 and the same flags: the reconciled zone comes back (dump + journal).
    drop(server);
    let server = start(&dump, &keys, &journal, &flags);
    assert_eq!(serial_of(&server), 103);
    assert_app(&server, "500", Some("eu"));
    assert_app(&server, "1", Some("us"));
    assert_app(&server, "2", None);

    // The same serial, other content: refused, as before there was a journal.
    std::fs::write(&dump, export(103, &[("3", "")])).unwrap();
    let (code, _, err) = reload(&control);
    assert_eq!(code, 1);
    assert!(err.contains("serial 103 is not newer"), "{err}");
    assert_app(&server, "3", Some("eu"));

    // A newer export supersedes the journal: its apps are the zone, the journal is emptied.
    std::fs::write(&dump, export(200, &[])).unwrap();
    let (code, out, err) = reload(&control);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("serial 200 (was 103)"), "{out}");
    assert_app(&server, "500", None);
    assert_app(&server, "2", Some("eu"));
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
    // Older than the journal reaches (it starts after 200 now): refused.
    std::fs::write(&dump, export(150, &[("4", "us")])).unwrap();
    let (code, _, err) = reload(&control);
    assert_eq!(code, 1);
    assert!(err.contains("serial 150 is not newer"), "{err}");

    // UPDATEs after the new export, kill -9: the export plus the journal since.
    std::fs::write(&dump, export(200, &[])).unwrap();
    let answer = server.udp(&signed(update(3, set("600", "us")), &upd));
    assert_eq!(rcode(&answer, 3), ResponseCode::NoError);
    drop(server);
    let server = start(&dump, &keys, &journal, &flags);
    assert_eq!(serial_of(&server), 201);
    assert_app(&server, "600", Some("us"));
    assert_app(&server, "500", None);
    drop(server);

    // An export older than where the journal starts: the start refuses, naming both.
    std::fs::write(&dump, export(150, &[])).unwrap();
    let output = std::process::Command::new(binary())
        .args([
            "serve",
            "--zone",
            "apps.example.com",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--dump", dump.to_str().unwrap()])
        .args([
            "--tsig-key-file",
            keys.to_str().unwrap(),
            "--update-key",
            "upd",
        ])
        .args(["--journal", journal.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the journal starts at serial 200, after serial 150"),
        "{stderr}"
    );
}

/// `--journal-max-size`: past it the zone is written beside the journal as a checkpoint and
/// the records it holds dropped; after `kill -9` a start from the same (old) dump serves
/// every acknowledged change: the checkpoint, then the journal after it.
#[test]
fn the_journal_is_bounded_by_checkpoints() {
    let test = "update-checkpoint";
    let (dump, keys, journal) = (base_dump(test), key_file(test), journal_path(test));
    let checkpoint = PathBuf::from(format!("{}.checkpoint", journal.display()));
    let _ = std::fs::remove_file(&checkpoint);
    let upd = key("upd", SECRET);
    let flags = ["--journal-max-size", "1000"];
    let mut server = start(&dump, &keys, &journal, &flags);
    for i in 0..40u16 {
        let answer = server.udp(&signed(update(i, set(&format!("c{i}"), "eu")), &upd));
        assert_eq!(rcode(&answer, i), ResponseCode::NoError);
    }
    let line = server.wait_log("journal checkpoint: serial");
    assert!(checkpoint.exists(), "{line}");
    // Every record in the journal is after the checkpoint's serial.
    let at: u32 = line
        .split("serial ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("the checkpoint's serial");
    let opened = cnamed::journal::Journal::open(&journal).unwrap();
    assert!(opened.entries.iter().all(|e| e.serial > at), "{line}");
    assert!(opened.entries.len() < 40);
    drop(opened);
    drop(server);
    let server = start(&dump, &keys, &journal, &flags);
    assert!(!server
        .seen_log("newer than the dump (serial 100): starting from it")
        .is_empty());
    assert_eq!(serial_of(&server), 140);
    for i in 0..40 {
        assert_app(&server, &format!("c{i}"), Some("eu"));
    }
    assert_app(&server, "1", Some("eu"));
}

/// An IXFR request for `serial` over TCP, signed with `key`: the records of every message,
/// read until the transfer's last SOA (of `current`, the serial served).
fn ixfr_records(server: &Cnamed, serial: u32, current: u32, key: &Key) -> Vec<Record> {
    let mut stream = server.tcp_connect();
    stream
        .write_all(&frame(&signed(ixfr_query(7, serial), key)))
        .unwrap();
    let mut records: Vec<Record> = Vec::new();
    let at_current = |records: &[Record]| {
        records
            .iter()
            .filter(|r| matches!(r.data(), Some(RData::SOA(soa)) if soa.serial() == current))
            .count()
    };
    // AXFR-style ends at the second SOA of the current serial; incremental (an SOA second)
    // at the third.
    let done = |records: &[Record]| {
        let incremental = records
            .get(1)
            .is_some_and(|r| r.record_type() == RecordType::SOA);
        at_current(records) >= if incremental { 3 } else { 2 }
    };
    while !done(&records) {
        let frame = read_frame(&mut stream).expect("the transfer goes on");
        let message = Message::from_bytes(&frame).expect("hickory decodes every message");
        assert_eq!(message.response_code(), ResponseCode::NoError);
        records.extend(message.answers().iter().cloned());
    }
    records
}

/// (name, cluster target) of the CNAMEs between the `from`th and `to`th SOA records.
fn cnames_between(records: &[Record], from: usize, to: usize) -> Vec<(String, String)> {
    let soas: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].record_type() == RecordType::SOA)
        .collect();
    let mut cnames: Vec<(String, String)> = records[soas[from] + 1..soas[to]]
        .iter()
        .filter_map(|r| match r.data() {
            Some(RData::CNAME(target)) => Some((r.name().to_ascii(), target.0.to_ascii())),
            _ => None,
        })
        .collect();
    cnames.sort();
    cnames
}

fn expect(apps: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut cnames: Vec<(String, String)> = apps
        .iter()
        .flat_map(|(app, cluster)| {
            SERVICES.iter().map(move |s| {
                (
                    format!("{s}-{app}.{ZONE}"),
                    format!("{s}-{cluster}.example.com."),
                )
            })
        })
        .collect();
    cnames.sort();
    cnames
}

/// IXFR from a serial the history in memory no longer has (`--ixfr-history 1`) is answered
/// from the journal, as one condensed difference (RFC 1995 §4); from a serial older than the
/// journal, AXFR-style.
#[test]
fn ixfr_is_answered_from_the_journal() {
    let test = "update-ixfr";
    let (dump, keys, journal) = (base_dump(test), key_file(test), journal_path(test));
    let upd = key("upd", SECRET);
    // The difference is most of this two-app zone: past the default --max-ixfr-ratio, which
    // would answer it whole.
    let flags = [
        "--xfr-allow",
        "127.0.0.1",
        "--ixfr-history",
        "1",
        "--max-ixfr-ratio",
        "unlimited",
    ];
    let mut server = start(&dump, &keys, &journal, &flags);
    let mut move_1 = delete("1");
    move_1.extend(set("1", "us"));
    for (id, updates) in [
        (1, set("10", "eu")),
        (2, move_1),
        (3, delete("2")),
        (4, set("11", "eu")),
    ] {
        let answer = server.tcp(&signed(update(id, updates), &upd));
        assert_eq!(rcode(&answer, id), ResponseCode::NoError);
    }
    assert_eq!(serial_of(&server), 104);
    // From the dump's serial: every change since, condensed.
    let records = ixfr_records(&server, 100, 104, &upd);
    let serials: Vec<u32> = records
        .iter()
        .filter_map(|r| match r.data() {
            Some(RData::SOA(soa)) => Some(soa.serial()),
            _ => None,
        })
        .collect();
    assert_eq!(serials, [104, 100, 104, 104]);
    assert_eq!(
        cnames_between(&records, 1, 2),
        expect(&[("1", "eu"), ("2", "us")])
    );
    assert_eq!(
        cnames_between(&records, 2, 3),
        expect(&[("1", "us"), ("10", "eu"), ("11", "eu")])
    );
    server.wait_log("IXFR from 100 (incremental)");
    // From the middle of the journal.
    let records = ixfr_records(&server, 102, 104, &upd);
    assert_eq!(cnames_between(&records, 1, 2), expect(&[("2", "us")]));
    assert_eq!(cnames_between(&records, 2, 3), expect(&[("11", "eu")]));
    // Older than the journal: the whole zone.
    let records = ixfr_records(&server, 99, 104, &upd);
    assert_eq!(
        cnames_between(&records, 0, 1),
        expect(&[("1", "us"), ("10", "eu"), ("11", "eu")])
    );
}

/// Past 100k changes the overlay is folded into new base tables on a thread of its own while
/// UPDATEs keep arriving: the changes made during the fold are kept over the new tables,
/// every app is served as its last UPDATE left it, and the fold is counted.
#[test]
fn a_fold_keeps_every_change() {
    let test = "update-fold";
    let (dump, keys, journal) = (base_dump(test), key_file(test), journal_path(test));
    let upd = key("upd", SECRET);
    let mut server = start(&dump, &keys, &journal, &["--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&mut server);
    let app = |n: u32| format!("f{n}");
    let send = |id: u16, updates: Vec<Record>| {
        let answer = server.tcp(&signed(update(id, updates), &upd));
        assert_eq!(rcode(&answer, id), ResponseCode::NoError, "UPDATE {id}");
    };
    // 105,000 new apps start a fold.
    const BATCH: u32 = 500;
    for batch in 0..210u16 {
        let first = u32::from(batch) * BATCH;
        send(
            batch,
            (first..first + BATCH)
                .flat_map(|n| set(&app(n), "eu"))
                .collect(),
        );
    }
    // Meanwhile (the fold of a zone this small takes milliseconds: some of these land
    // before its install, some after): moves and removals of apps already folded.
    for round in 0..20u16 {
        let mut updates = Vec::new();
        for n in (u32::from(round)..105_000).step_by(1_000) {
            updates.extend(match n % 2 {
                0 => set(&app(n), "us"),
                _ => delete(&app(n)),
            });
        }
        send(1_000 + round, updates);
    }
    let metrics = wait_metric(addr, "cnamed_folds_total", 1.0);
    assert!(metrics["cnamed_folds_total"] >= 1.0, "no fold counted");
    let folded = server.wait_log("changes into the tables");
    let entries = metrics["cnamed_overlay_entries"];
    assert!(
        entries < 100_000.0,
        "{entries} overlay entries after: {folded}"
    );
    let expected = |n: u32| match (n % 1_000 < 20, n % 2) {
        (false, _) => Some("eu"),
        (true, 0) => Some("us"),
        (true, _) => None,
    };
    for n in (0..105_000).step_by(97).chain(0..40).chain(1_000..1_040) {
        assert_app(&server, &app(n), expected(n));
    }
    assert_app(&server, "1", Some("eu"));
    assert_eq!(serial_of(&server), 100 + 230);
}
