//! The systemd notify protocol, with a UnixDatagram socket in the test playing systemd.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).expect("a notification");
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

#[test]
fn ready_reloading_ready_stopping() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let systemd = UnixDatagram::bind(&socket_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dump = temp_dump("notify", r#"{"serial": 11, "apps": {"1": "a", "2": "b"}}"#);
    let mut server = Cnamed::start_with(&dump, &[], &[("NOTIFY_SOCKET", &socket_path)]);

    assert_eq!(next(&systemd), "READY=1\nSTATUS=serving 2 apps, serial 11");

    std::fs::write(&dump, r#"{"serial": 12, "apps": {"1": "a", "2": "a"}}"#).unwrap();
    server.signal("HUP");
    let reloading = next(&systemd);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .expect("MONOTONIC_USEC=<number>");
    assert!(usec > 0);
    assert_eq!(next(&systemd), "READY=1\nSTATUS=serving 2 apps, serial 12");

    std::fs::write(&dump, r#"{"serial": 13, "apps": {"1": "a b"}}"#).unwrap();
    server.signal("HUP");
    assert!(next(&systemd).starts_with("RELOADING=1\n"));
    let after_failure = next(&systemd);
    assert!(
        after_failure.starts_with("READY=1\nSTATUS=reload failed, serving 2 apps, serial 12: "),
        "{after_failure}"
    );
    assert_eq!(after_failure.lines().count(), 2, "STATUS is one line");

    server.signal("TERM");
    assert_eq!(next(&systemd), "STOPPING=1");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn abstract_notify_socket() {
    let name = format!("cnamed-test-{}", std::process::id());
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name.as_bytes(),
        )
        .unwrap();
    let systemd = UnixDatagram::bind_addr(&addr).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let value = std::path::PathBuf::from(format!("@{name}"));
    let _server = Cnamed::start_with(&sample_dump(), &[], &[("NOTIFY_SOCKET", &value)]);
    assert!(next(&systemd).starts_with("READY=1\nSTATUS=serving 6 apps"));
}

fn data_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The shipped unit's command line with the shipped options (`CNAMED_OPTS` from
/// /etc/default/cnamed), and the flags the defaults file suggests adding (an edge's,
/// dnstap's), are ones cnamed accepts: run as `check` against the sample dump, with a real
/// secret file. `ExecReload` is a `cnamed reload`.
#[test]
fn shipped_unit_command_line_is_accepted() {
    let unit = data_file("data/systemd/cnamed.service");
    let defaults = data_file("data/default/cnamed");
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let reload = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecReload="))
        .expect("an ExecReload line");
    assert!(reload.starts_with("/usr/bin/cnamed reload "), "{reload}");
    let options = defaults
        .lines()
        .find_map(|line| line.strip_prefix("CNAMED_OPTS="))
        .expect("CNAMED_OPTS")
        .trim_matches('"');
    let suggested: Vec<&str> = defaults
        .lines()
        .filter_map(|line| line.strip_prefix("#   --"))
        .collect();
    assert_eq!(suggested.len(), 3, "the edge flags and dnstap's");
    let suggested = suggested
        .iter()
        .map(|line| format!("--{line}"))
        .collect::<Vec<_>>()
        .join(" ");
    let secret = temp_dump("unit-secret", "e5e973e5a6b2a43f48e7dc849e37bfcf\n");
    let exec = exec.replace("$CNAMED_OPTS", options);
    let mut args: Vec<String> = exec
        .split_whitespace()
        .chain(suggested.split_whitespace())
        .skip(1)
        .map(|arg| match arg {
            "serve" => "check".to_owned(),
            "/var/lib/cnamed/apps.json" => sample_dump().display().to_string(),
            "/etc/cnamed/cookie-secret" => secret.display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    assert!(
        args.contains(&"--cookie-secret-file".to_owned()) && args.contains(&"--control".to_owned()),
        "{args:?}"
    );
    args.retain(|arg| !arg.is_empty());
    let output = std::process::Command::new(binary())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok, 6 apps"));
}

/// `systemd-analyze verify` reports nothing on the shipped unit (the binary path pointed at
/// the one built here; man pages are checked by the package script, where cnamed(8) is
/// installed), and its exposure score stays at most 2.0 (Knot's unit: 7.0, NSD's: 5.0).
#[test]
fn shipped_unit_verifies_clean_and_is_hardened() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("cnamed.service");
    std::fs::write(
        &unit,
        data_file("data/systemd/cnamed.service").replace("/usr/bin/cnamed", binary()),
    )
    .unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (the systemd package; .ci/run installs it)");
    let report = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && report.trim().is_empty(),
        "{report}"
    );

    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let score: f64 = text
        .lines()
        .find_map(|line| line.split("exposure level for cnamed.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no score in {text}"));
    assert!(score <= 2.0, "exposure {score}");
    let _ = std::fs::remove_dir_all(&dir);
}
