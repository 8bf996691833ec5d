//! The fleet view (issue 24): a primary asks each `--notify` target for its SOA and knows
//! which serial it serves; `cnamed status` and the metrics show it, and `cnamed wait` and
//! `cnamed update --wait` return once every target serves a serial, or name the ones behind.
//! Two cnamed secondaries on loopback; answers read with hickory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hickory_proto::rr::{RData, RecordType};

const SECRET: &str = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";

/// `cnamed ARGS`: exit code, stdout, stderr.
fn cnamed(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary()).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A path under the target directory for `test`, nothing there yet.
fn fresh_path(test: &str) -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A secondary of `primary` listening (also) on `port`, keeping its dump at `dump`.
fn secondary(dump: &Path, port: u16, primary: &Cnamed, keys: &Path) -> Cnamed {
    let listen = format!("127.0.0.1:{port}");
    let primary = primary.addr.to_string();
    Cnamed::start_dump(
        dump,
        &[
            "--listen",
            &listen,
            "--primary",
            &primary,
            "--tsig-key-file",
            keys.to_str().unwrap(),
        ],
    )
}

fn target_of(server: &Cnamed, app: &str) -> Option<String> {
    let reply = decode(&server.tcp(&encode(&query(
        &format!("ws-{app}.apps.example.com."),
        RecordType::CNAME,
    ))));
    reply
        .answers()
        .iter()
        .find_map(|record| match record.data() {
            Some(RData::CNAME(target)) => Some(target.0.to_ascii()),
            _ => None,
        })
}

#[test]
fn wait_returns_once_every_target_serves_the_serial() {
    let keys = temp_dump(
        "fleet-view-keys",
        &format!("key \"upd\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};"),
    );
    let json = r#"{"serial": 100, "apps": {"1": "eu", "2": "us"}}"#;
    let primary_dump = temp_dump("fleet-view-primary", json);
    let journal = fresh_path("fleet-view-journal");
    let control = fresh_path("fleet-view-control");
    let (port1, port2) = (fixed_port(), fixed_port());
    let (notify1, notify2) = (format!("127.0.0.1:{port1}"), format!("127.0.0.1:{port2}"));
    let mut primary = Cnamed::start_dump(
        &primary_dump,
        &[
            "--tsig-key-file",
            keys.to_str().unwrap(),
            "--update-key",
            "upd",
            "--journal",
            journal.to_str().unwrap(),
            "--xfr-allow",
            "127.0.0.1",
            "--notify",
            &notify1,
            "--notify",
            &notify2,
            "--control",
            control.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let control = control.to_str().unwrap();
    // No secondary yet: a short wait times out, naming both.
    let (code, _, stderr) = cnamed(&["wait", "--control", control, "--timeout", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&notify1) && stderr.contains(&notify2),
        "{stderr}"
    );
    assert!(stderr.contains("never answered"), "{stderr}");

    let dump1 = temp_dump("fleet-view-edge1", "");
    let dump2 = temp_dump("fleet-view-edge2", "");
    let edge1 = secondary(&dump1, port1, &primary, &keys);
    let edge2 = secondary(&dump2, port2, &primary, &keys);
    let (code, stdout, stderr) = cnamed(&["wait", "--control", control, "--timeout", "20"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("serial 100 on all 2"), "{stdout}");
    // The view in status, for machines and people.
    let (_, status, _) = cnamed(&["status", "--json", "--control", control]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let targets = status["notify_targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    for target in targets {
        assert_eq!(target["serial"], 100, "{target}");
        assert_eq!(target["live"], true, "{target}");
    }
    let (_, text, _) = cnamed(&["status", "--control", control]);
    assert!(
        text.contains("notify_targets: 2 of 2 live at serial 100"),
        "{text}"
    );

    // One edge stops; an update with --wait times out naming it, the other has the change.
    drop(edge2);
    let primary_addr = primary.addr.to_string();
    let update = |extra: &[&str]| {
        let mut args = vec![
            "update",
            "--server",
            &primary_addr,
            "--tsig-key-file",
            keys.to_str().unwrap(),
            "--control",
            control,
        ];
        args.extend_from_slice(extra);
        cnamed(&args)
    };
    let (code, _, stderr) = update(&["--wait", "--timeout", "2", "set", "500", "eu"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not live at serial 101"), "{stderr}");
    assert!(
        stderr.contains(&format!("{notify2} (serial 100)")),
        "{stderr}"
    );
    assert!(!stderr.contains(&notify1), "{stderr}");
    assert_eq!(
        target_of(&edge1, "500").as_deref(),
        Some("ws-eu.example.com.")
    );
    let metrics = metrics_addr(&mut primary);
    let samples = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    let sample = |name: &str, target: &str| samples[&format!("{name}{{target=\"{target}\"}}")];
    assert_eq!(sample("cnamed_notify_target_live", &notify1), 1.0);
    assert_eq!(sample("cnamed_notify_target_live", &notify2), 0.0);
    assert_eq!(sample("cnamed_notify_target_lag_serials", &notify2), 1.0);
    assert!(sample("cnamed_notify_target_lag_seconds", &notify2) >= 1.0);
    assert_eq!(sample("cnamed_notify_target_serial", &notify1), 101.0);

    // It comes back (from the dump it wrote) and catches up: the wait for 101 returns.
    let edge2 = secondary(&dump2, port2, &primary, &keys);
    let (code, stdout, stderr) = cnamed(&[
        "wait",
        "--control",
        control,
        "--serial",
        "101",
        "--timeout",
        "20",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("serial 101 on all 2"), "{stdout}");
    assert_eq!(
        target_of(&edge2, "500").as_deref(),
        Some("ws-eu.example.com.")
    );
    // An update with --wait that every edge takes: exit 0.
    let (code, _, stderr) = update(&["--wait", "set", "501", "us"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        target_of(&edge2, "501").as_deref(),
        Some("ws-us.example.com.")
    );
    assert_eq!(
        target_of(&edge1, "501").as_deref(),
        Some("ws-us.example.com.")
    );

    // No server at the socket: exit 2.
    let gone = fresh_path("fleet-view-gone");
    let (code, _, _) = cnamed(&["wait", "--control", gone.to_str().unwrap()]);
    assert_eq!(code, 2);
}

/// A server without --notify targets cannot confirm anything: `wait` says so, exit 1.
#[test]
fn wait_without_targets_fails() {
    let control = fresh_path("fleet-view-none");
    let _server = Cnamed::start(&["--control", control.to_str().unwrap()]);
    let (code, _, stderr) = cnamed(&["wait", "--control", control.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no --notify targets"), "{stderr}");
}

/// A target that asks for IXFR from a serial has it: the request counts in the view (here
/// the target answers no SOA query at all, as one behind a firewall that lets transfers
/// out would not).
#[test]
fn an_ixfr_request_from_a_target_counts() {
    use std::io::Write;
    let json = r#"{"serial": 100, "apps": {"1": "eu", "2": "us"}}"#;
    let primary_dump = temp_dump("fleet-view-ixfr", json);
    let control = fresh_path("fleet-view-ixfr-control");
    // Nothing listens at the target: the primary's NOTIFYs and SOA polls go unanswered.
    let target = format!("127.0.0.2:{}", fixed_port());
    let primary = Cnamed::start_dump(
        &primary_dump,
        &[
            "--xfr-allow",
            "127.0.0.0/8",
            "--notify",
            &target,
            "--control",
            control.to_str().unwrap(),
        ],
    );
    let control = control.to_str().unwrap();
    let (code, _, stderr) = cnamed(&["wait", "--control", control, "--timeout", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&target), "{stderr}");
    // An IXFR request from the target's address (another port), carrying serial 100.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&primary.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    let query = ixfr_query(7, 100);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).unwrap();
    let answer = decode(&read_frame(&mut stream).expect("an IXFR answer"));
    assert_eq!(answer.id(), 7);
    let (code, stdout, stderr) = cnamed(&["wait", "--control", control, "--timeout", "5"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, status, _) = cnamed(&["status", "--control", control]);
    assert!(
        status.contains(&target) && status.contains("100"),
        "{status}"
    );
}
