//! DNS Cookies (RFC 7873, RFC 9018 server cookies) over real sockets: learning a server
//! cookie, presenting it to another server of the same fleet, secret rollover by SIGHUP,
//! malformed options, and the cookie support of dig and kdig.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const SECRET_1: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const SECRET_2: &str = "445536bcd2513298075a5d379663c962";
const CLIENT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn secret_file(test: &str, text: &str) -> PathBuf {
    temp_dump(&format!("{test}-cookie-secret"), text)
}

fn start(secrets: &Path) -> (Cnamed, SocketAddr) {
    let mut server = Cnamed::start(&[
        "--cookie-secret-file",
        secrets.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&mut server);
    (server, metrics)
}

fn ask(server: &Cnamed, cookie: &[u8]) -> Message {
    let message = with_cookie(query("ws-123456.apps.example.com.", RecordType::A), cookie);
    decode(&server.udp(&encode(&message)))
}

/// Asks with `cookie`; checks the answer is whole and carries a fresh server cookie.
fn exchange(server: &Cnamed, cookie: &[u8]) -> Vec<u8> {
    let reply = ask(server, cookie);
    assert_eq!(reply.response_code(), ResponseCode::NoError);
    assert_eq!(reply.answers().len(), 1);
    let back = reply_cookie(&reply).expect("a cookie in the reply");
    assert_eq!(back.len(), 24, "client cookie and a 16-byte server cookie");
    assert_eq!(back[..8], cookie[..8], "our client cookie echoed");
    assert_eq!(back[8..12], [1, 0, 0, 0], "version 1, reserved zero");
    let stamp = u32::from_be_bytes(back[12..16].try_into().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(stamp.abs_diff(now) <= 5, "timestamp {stamp} is now ({now})");
    back
}

fn verdicts(metrics: SocketAddr) -> [f64; 3] {
    let m = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    ["client_only", "bad_server_cookie", "valid"]
        .map(|verdict| m[&format!("cnamed_cookies_total{{verdict=\"{verdict}\"}}")])
}

#[test]
fn fleet_shares_cookies_and_rolls_secrets_over() {
    let file_a = secret_file("fleet-a", &format!("{SECRET_1}\n"));
    let file_b = secret_file("fleet-b", &format!("# box b\n{SECRET_1}\n"));
    let (a, metrics_a) = start(&file_a);
    let (mut b, metrics_b) = start(&file_b);

    let from_a = exchange(&a, &CLIENT);
    assert_eq!(verdicts(metrics_a), [1.0, 0.0, 0.0]);
    // Box b holds the same secret: a's cookie is valid there.
    exchange(&b, &from_a);
    assert_eq!(verdicts(metrics_b), [0.0, 0.0, 1.0]);

    // Rollover on b: the new secret makes cookies, the old is still accepted.
    std::fs::write(&file_b, format!("{SECRET_2}\n{SECRET_1}\n")).unwrap();
    b.signal("HUP");
    b.wait_log("reloaded");
    let from_b = exchange(&b, &from_a);
    assert_eq!(
        verdicts(metrics_b),
        [0.0, 0.0, 2.0],
        "old cookie still valid"
    );
    // a does not know the new secret yet: the cookie is treated as client-only, the answer
    // is whole and carries a fresh cookie (never FORMERR or BADCOOKIE).
    exchange(&a, &from_b);
    assert_eq!(verdicts(metrics_a), [1.0, 1.0, 0.0]);

    // The old secret retired on b.
    std::fs::write(&file_b, format!("{SECRET_2}\n")).unwrap();
    b.signal("HUP");
    b.wait_log("reloaded");
    exchange(&b, &from_a);
    exchange(&b, &from_b);
    assert_eq!(verdicts(metrics_b), [0.0, 1.0, 3.0]);

    // A bad secret file keeps the old secrets serving.
    std::fs::write(&file_b, "not hex\n").unwrap();
    b.signal("HUP");
    let line = b.wait_log("reload failed");
    assert!(line.contains("cookie secret"), "{line}");
    exchange(&b, &from_b);
    assert_eq!(verdicts(metrics_b), [0.0, 1.0, 4.0]);
}

#[test]
fn malformed_and_foreign_cookies() {
    let file = secret_file("malformed", SECRET_1);
    let (server, metrics) = start(&file);
    // RFC 7873 §5.2.2: a COOKIE option shorter than 8 bytes, or with a server part shorter
    // than 8 or longer than 32, is FORMERR, with no cookie in the reply.
    for len in [0, 5, 9, 15, 41] {
        let reply = ask(&server, &vec![7; len]);
        assert_eq!(reply.response_code(), ResponseCode::FormErr, "{len} bytes");
        assert_eq!(reply_cookie(&reply), None);
    }
    // Server cookies of every allowed length that we did not make: a normal answer.
    for len in [16, 24, 40] {
        exchange(&server, &vec![7; len]);
    }
    let m = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    assert_eq!(m["cnamed_formerr_total{cause=\"cookie\"}"], 5.0);
    assert_eq!(
        m["cnamed_cookies_total{verdict=\"bad_server_cookie\"}"],
        3.0
    );
    // Over TCP, the same cookie protocol.
    let message = with_cookie(query("ws-123456.apps.example.com.", RecordType::A), &CLIENT);
    let reply = decode(&server.tcp(&encode(&message)));
    assert_eq!(reply_cookie(&reply).unwrap()[..8], CLIENT);
}

/// The COOKIE line of dig or kdig output, as hex.
fn cookie_line(output: &str) -> &str {
    output
        .lines()
        .find_map(|line| line.split("COOKIE: ").nth(1))
        .unwrap_or_else(|| panic!("no COOKIE line in:\n{output}"))
}

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed (.ci/run installs it): {e}"));
    assert!(output.status.success(), "{tool} {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn dig_and_kdig_cookies_and_rollover() {
    let file = secret_file("tools", SECRET_1);
    let (server, metrics) = start(&file);
    let at = format!("@{}", server.addr.ip());
    let port = server.addr.port().to_string();
    let name = "ws-123456.apps.example.com";

    // dig sends a client cookie and checks ours comes back with it: "(good)".
    let out = run("dig", &[&at, "-p", &port, "+cookie", "+norec", name, "A"]);
    let line = cookie_line(&out);
    assert!(line.ends_with("(good)"), "{line}");
    let learned = line.split_whitespace().next().unwrap();
    assert_eq!(learned.len(), 48, "{line}");
    assert!(out.contains("status: NOERROR"), "{out}");
    // dig presenting the full cookie it learned: valid.
    let out = run(
        "dig",
        &[&at, "-p", &port, &format!("+cookie={learned}"), name, "A"],
    );
    assert!(cookie_line(&out).ends_with("(good)"), "{out}");

    // kdig, with a cookie of its own, then the full one it got back.
    let out = run("kdig", &[&at, "-p", &port, "+cookie", name, "A"]);
    let line = cookie_line(&out);
    let kdig_cookie = line.split_whitespace().next().unwrap();
    assert_eq!(kdig_cookie.len(), 48, "{line}");
    assert_eq!(unhex(kdig_cookie)[8], 1, "an RFC 9018 cookie");
    let out = run(
        "kdig",
        &[
            &at,
            "-p",
            &port,
            &format!("+cookie={kdig_cookie}"),
            name,
            "A",
        ],
    );
    assert!(out.contains("status: NOERROR"), "{out}");

    assert_eq!(verdicts(metrics), [2.0, 0.0, 2.0]);

    // Rollover, as the tools see it: the cookies they learned stay valid while the old
    // secret is still accepted, and are replaced (not refused) once it is retired.
    let mut server = server;
    let present = |tool: &str, cookie: &str| {
        let out = run(
            tool,
            &[&at, "-p", &port, &format!("+cookie={cookie}"), name, "A"],
        );
        assert!(out.contains("status: NOERROR"), "{out}");
        let fresh = cookie_line(&out)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(fresh[..16], cookie[..16], "the client cookie is echoed");
        fresh
    };
    std::fs::write(&file, format!("{SECRET_2}\n{SECRET_1}\n")).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    let dig_new = present("dig", learned);
    let kdig_new = present("kdig", kdig_cookie);
    assert_eq!(
        verdicts(metrics),
        [2.0, 0.0, 4.0],
        "old cookies still valid"
    );
    std::fs::write(&file, format!("{SECRET_2}\n")).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    present("dig", learned);
    present("kdig", kdig_cookie);
    assert_eq!(verdicts(metrics), [2.0, 2.0, 4.0], "old cookies retired");
    present("dig", &dig_new);
    present("kdig", &kdig_new);
    assert_eq!(verdicts(metrics), [2.0, 2.0, 6.0], "new cookies valid");
}

/// RFC 7873 §5.4: a query with no question and a COOKIE option is how a client asks for a
/// server cookie (`dig +cookie +header-only`): NOERROR with the cookie, not FORMERR. Without a
/// COOKIE option, QDCOUNT=0 stays FORMERR.
#[test]
fn cookie_only_query_gets_a_server_cookie() {
    let file = secret_file("cookie_only", SECRET_1);
    let (server, _metrics) = start(&file);
    let at = format!("@{}", server.addr.ip());
    let port = server.addr.port().to_string();
    let out = run("dig", &[&at, "-p", &port, "+cookie", "+header-only"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(cookie_line(&out).ends_with("(good)"), "{out}");

    // The same by hand, decoded by hickory, over UDP and TCP.
    let cookie_opt = [
        &[0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8][..],
        &CLIENT,
    ]
    .concat();
    let packet = raw_query(9, 0x0100, [0, 0, 0, 1], &cookie_opt);
    for bytes in [server.udp(&packet), server.tcp(&packet)] {
        let reply = decode(&bytes);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.query_count(), 0);
        assert_eq!(reply.answer_count(), 0);
        let cookie = reply_cookie(&reply).expect("a server cookie");
        assert_eq!(cookie.len(), 24);
        assert_eq!(cookie[..8], CLIENT);
    }
    let plain_opt = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0];
    let reply = decode(&server.udp(&raw_query(9, 0x0100, [0, 0, 0, 1], &plain_opt)));
    assert_eq!(reply.response_code(), ResponseCode::FormErr);
}

/// The secret file as the README describes it: `#` starts a comment, after a secret too; a
/// secret is 32 hex digits, signs and all other characters refused at start (exit 2).
#[test]
fn secret_file_comments_and_signs() {
    let file = secret_file(
        "comments",
        &format!("# fleet secrets\n{SECRET_1}  # new\n{SECRET_2} # old\n"),
    );
    let (server, metrics) = start(&file);
    exchange(&server, &CLIENT);
    drop((server, metrics));
    let signed = secret_file("signed", &"+0".repeat(16));
    let output = Command::new(binary())
        .arg("--cookie-secret-file")
        .arg(&signed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1"));
}
