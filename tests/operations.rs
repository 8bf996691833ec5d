//! What an operator sees of a running server: log levels (plain and under journald) and
//! resource problems, logged once and counted.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn log_lines_carry_their_level() {
    let dump = temp_dump("levels", r#"{"serial": 5, "apps": {"1": "a"}}"#);
    let mut server = Cnamed::start_dump(&dump, &[]);
    std::fs::write(&dump, r#"{"serial": 4, "apps": {"1": "b"}}"#).unwrap();
    server.signal("HUP");
    let refused = server.wait_log("reload failed");
    assert!(
        refused.starts_with("cnamed: error: reload failed"),
        "{refused}"
    );
    server.signal("TERM");
    let stopped = server.wait_log("stopped");
    assert_eq!(stopped, "cnamed: info: stopped");
}

/// Under systemd, stderr is the journal's stream and JOURNAL_STREAM names its device and
/// inode: the level goes out as the syslog priority prefix. Here a shell sets it to the
/// stderr pipe's, as systemd would.
#[test]
fn under_journald_levels_are_priorities() {
    let journal = [
        "sh",
        "-c",
        r#"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@""#,
    ];
    let dump = temp_dump("journal", r#"{"serial": 5, "apps": {"1": "a"}}"#);
    let mut server = Cnamed::start_under(&journal, &dump, &[], &[]);
    std::fs::write(&dump, r#"{"serial": 6, "apps": {}}"#).unwrap();
    server.signal("HUP");
    let refused = server.wait_log("reload failed");
    assert!(refused.starts_with("<3>reload failed"), "{refused}");
    std::fs::write(&dump, r#"{"serial": 6, "apps": {"1": "b"}}"#).unwrap();
    server.signal("HUP");
    let reloaded = server.wait_log("reloaded");
    assert!(reloaded.starts_with("<6>reloaded"), "{reloaded}");

    // A JOURNAL_STREAM that is not stderr (inherited by a child whose stderr was
    // redirected) is ignored.
    let stale = ["sh", "-c", r#"JOURNAL_STREAM=1:1 exec "$0" "$@""#];
    let mut server = Cnamed::start_under(&stale, &dump, &[], &[]);
    server.signal("TERM");
    assert_eq!(server.wait_log("stopped"), "cnamed: info: stopped");
}

/// At the open-file limit, accepts fail: the start warns that the limit is too low, the first
/// failure is logged once, every failure is counted, and serving goes on.
#[test]
fn open_file_limit_is_warned_logged_once_and_counted() {
    let limited = ["sh", "-c", r#"ulimit -n 64 && exec "$0" "$@""#];
    let extra = ["--threads", "1", "--metrics", "127.0.0.1:0"];
    let mut server = Cnamed::start_under(&limited, &sample_dump(), &extra, &[]);
    let warning = server.seen_log("open-file limit 64");
    assert!(
        warning.len() == 1 && warning[0].starts_with("cnamed: warning: "),
        "{warning:?}"
    );
    let metrics = metrics_addr(&mut server);
    let mut connections: Vec<_> = (0..100).map(|_| server.tcp_connect()).collect();
    let failed = server.wait_log("cannot accept TCP connections");
    assert!(failed.starts_with("cnamed: warning: "), "{failed}");
    // The last connection waits in the listen queue. Once descriptors are free again it is
    // accepted and answered, though no new connection raises an event on the listener.
    let mut queued = connections.pop().unwrap();
    drop(connections);
    let question = encode(&query(
        "ws-123456.apps.example.com.",
        hickory_proto::rr::RecordType::CNAME,
    ));
    std::io::Write::write_all(&mut queued, &frame(&question)).unwrap();
    let answer = decode(&read_frame(&mut queued).expect("the queued connection is answered"));
    assert_eq!(answer.answers().len(), 1);
    let key = "cnamed_tcp_accept_errors_total";
    let m = wait_metric_for(metrics, key, 1.0, Duration::from_secs(5));
    assert!(m[key] >= 1.0, "{}", m[key]);
    // Still serving, and the accept failure was logged once, whatever the count.
    let reply = decode(&server.tcp(&encode(&query(
        "ws-123456.apps.example.com.",
        hickory_proto::rr::RecordType::CNAME,
    ))));
    assert_eq!(reply.answers().len(), 1);
    server.signal("TERM");
    server.wait_log("stopped");
    assert_eq!(server.seen_log("cannot accept").len(), 1, "logged once");
}

/// A control socket path of this test's own.
fn control_path(test: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("control");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs `cnamed ARGS --control SOCKET`: (exit code, stdout, stderr).
fn ctl(socket: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(binary())
        .args(args)
        .arg("--control")
        .arg(socket)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `{"serial": S, "apps": {"0": "c0", ...}}` with `apps` numeric apps on `clusters`
/// clusters, app i on cluster i % clusters; `shift` moves every app one cluster on.
fn dump_json(serial: u32, apps: std::ops::Range<u32>, shift: u32) -> String {
    let entries: Vec<String> = apps
        .map(|i| format!(r#""{i}": "c{}""#, (i + shift) % 4))
        .collect();
    format!(
        r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
        entries.join(",")
    )
}

/// The CNAME target of `ws-{app}`, decoded by hickory; `None` for NXDOMAIN.
fn target(server: &Cnamed, app: u32) -> Option<String> {
    target_of(server, &format!("ws-{app}.apps.example.com."))
}

/// Every name of apps 0..200 and 1000 (never present) as served now.
fn answers(server: &Cnamed) -> Vec<Option<String>> {
    (0..200)
        .chain([1000])
        .map(|app| target(server, app))
        .collect()
}

/// Each guard rail refuses its reload: `cnamed reload` exits 1 and says why, every answer
/// stays as it was (checked over DNS), and the old serial is still served. `--force`
/// overrides the serial, empty and shrink rails; a reload of the same serial and content is
/// a success that changes nothing.
#[test]
fn guard_rails_refuse_over_the_control_socket() {
    let socket = control_path("guard");
    let dump = temp_dump("guard", &dump_json(100, 0..200, 0));
    let socket_arg = socket.to_str().unwrap();
    let mut server = Cnamed::start_dump(&dump, &["--control", socket_arg]);
    let before = answers(&server);
    assert_eq!(before[7].as_deref(), Some("ws-c3.example.com."));
    assert_eq!(before[200], None);

    let (code, out, _) = ctl(&socket, &["reload"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("unchanged: serial 100, 200 apps"), "{out}");

    let refusals = [
        (
            dump_json(99, 0..200, 1),
            "serial 99 is not newer than the live serial 100",
        ),
        (dump_json(100, 0..200, 1), "serial 100 is not newer"),
        (
            r#"{"serial": 101, "apps": {}}"#.to_owned(),
            "the dump has no apps",
        ),
        (
            dump_json(101, 0..179, 1),
            "removes 21 of the 200 live apps (10.5%), over --max-shrink 10%",
        ),
        (r#"{"apps": {"1": "c1"}}"#.to_owned(), r#"no "serial""#),
        ("{\"serial\": 101, \"apps\": {\"1\": ".to_owned(), "EOF"),
    ];
    for (json, why) in &refusals {
        std::fs::write(&dump, json).unwrap();
        let (code, out, err) = ctl(&socket, &["reload"]);
        assert_eq!(code, 1, "{why}: {out}{err}");
        assert!(err.contains(why), "{why}: {err}");
        assert!(err.contains("still serving serial 100"), "{err}");
        assert_eq!(answers(&server), before, "{why}: answers changed");
        assert_eq!(serial_of(&server), 100);
    }
    // 10% may go.
    std::fs::write(&dump, dump_json(101, 0..180, 1)).unwrap();
    let (code, out, _) = ctl(&socket, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("reloaded: serial 101 (was 100), 180 apps: 0 added, 20 removed, 180 moved"),
        "{out}"
    );
    assert_eq!(target(&server, 7).as_deref(), Some("ws-c0.example.com."));
    assert_eq!(target(&server, 190), None);

    // Forced: a rollback to a shrunk zone.
    std::fs::write(&dump, dump_json(5, 0..10, 0)).unwrap();
    assert_eq!(ctl(&socket, &["reload"]).0, 1);
    let (code, out, _) = ctl(&socket, &["reload", "--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("reloaded: serial 5 (was 101), 10 apps"),
        "{out}"
    );
    assert_eq!(serial_of(&server), 5);
    assert_eq!(target(&server, 7).as_deref(), Some("ws-c3.example.com."));
    assert_eq!(target(&server, 10), None);

    // SIGHUP goes through the same rails.
    std::fs::write(&dump, r#"{"serial": 6, "apps": {}}"#).unwrap();
    server.signal("HUP");
    let line = server.wait_log("still serving serial 5");
    assert!(line.contains("the dump has no apps"), "{line}");
    let (code, status, _) = ctl(&socket, &["status"]);
    assert_eq!(code, 0);
    assert!(
        status.contains("last_reload_result: refused: the dump has no apps"),
        "{status}"
    );
    assert_eq!(serial_of(&server), 5);
}

/// `--clusters` holds from the first load on, and no `--force` overrides it.
#[test]
fn clusters_outside_the_list_are_refused_at_start_and_reload() {
    let dump = temp_dump("clusters", &dump_json(1, 0..8, 0));
    let check = std::process::Command::new(binary())
        .args(["check", "--clusters", "c0,c1,c2", "--dump"])
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains(r#"app "3" maps to cluster "c3", which --clusters does not list"#),
        "{err}"
    );

    let socket = control_path("clusters");
    let socket_arg = socket.to_str().unwrap();
    let mut server = Cnamed::start_dump(
        &dump,
        &["--clusters", "C0,c1,c2,c3", "--control", socket_arg],
    );
    std::fs::write(&dump, dump_json(2, 0..8, 0).replace("\"c3\"", "\"c33\"")).unwrap();
    for args in [&["reload"][..], &["reload", "--force"]] {
        let (code, _, err) = ctl(&socket, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains(r#"cluster "c33", which --clusters does not list"#),
            "{err}"
        );
    }
    assert_eq!(target(&server, 3).as_deref(), Some("ws-c3.example.com."));
    assert_eq!(serial_of(&server), 1);
    server.signal("TERM");
    server.wait_log("stopped");
}

/// The status, in text and JSON (decoded by serde_json), says what is served and how the last
/// reload went; unreachable servers exit 2.
#[test]
fn status_reports_what_is_served() {
    let socket = control_path("status");
    let dump = temp_dump("status", &dump_json(42, 0..10, 0));
    let socket_arg = socket.to_str().unwrap();
    let mut server = Cnamed::start_dump(
        &dump,
        &["--control", socket_arg, "--metrics", "127.0.0.1:0"],
    );
    let (code, text, _) = ctl(&socket, &["status"]);
    assert_eq!(code, 0);
    for line in [
        "serial: 42\n",
        "apps: 10\n",
        "clusters: 4\n",
        "zone: apps.example.com\n",
        "workers: 2\n",
        "last_reload: never\n",
        "last_reload_result: none\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(
        text.contains(&format!("listen: {}\n", server.addr)),
        "{text}"
    );
    assert!(
        text.contains(&format!("dump: {}\n", dump.display())),
        "{text}"
    );

    std::fs::write(&dump, dump_json(43, 0..11, 0)).unwrap();
    assert_eq!(ctl(&socket, &["reload"]).0, 0);
    let (code, json, _) = ctl(&socket, &["status", "--json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["serial"], 43);
    assert_eq!(status["apps"], 11);
    assert_eq!(status["workers"], 2);
    assert_eq!(status["listen"][0], server.addr.to_string());
    assert!(status["last_reload_result"]
        .as_str()
        .unwrap()
        .starts_with("reloaded: serial 43 (was 42), 11 apps: 1 added"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for key in ["loaded", "last_reload", "dump_modified"] {
        let at = status[key].as_f64().unwrap();
        assert!(at > now - 60.0 && at <= now + 1.0, "{key}: {at}");
    }
    assert!(status["uptime_seconds"].as_f64().unwrap() < 60.0);
    assert!(status["metrics"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(
        status["version"],
        format!("cnamed {}", env!("CARGO_PKG_VERSION"))
    );

    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(!socket.exists(), "the socket is removed at exit");
    let (code, _, err) = ctl(&socket, &["status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot reach the server"), "{err}");
    assert_eq!(ctl(&socket, &["reload"]).0, 2);
}

/// The socket is 0660; a stale socket file is replaced, a live one is not taken over; a
/// client that says nothing or sends garbage holds up no one, and is closed.
#[test]
fn control_socket_permissions_and_hostile_clients() {
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::net::{UnixListener, UnixStream};
    let socket = control_path("hostile");
    // A stale socket file, as a killed server leaves it.
    drop(UnixListener::bind(&socket).unwrap());
    let socket_arg = socket.to_str().unwrap();
    let _server = Cnamed::start(&["--control", socket_arg]);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let second = std::process::Command::new(binary())
        .args(["--listen", "127.0.0.1:0", "--control", socket_arg])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another server is answering on it"), "{err}");

    let mut silent = UnixStream::connect(&socket).unwrap();
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"\x00\xffrm -rf /\n").unwrap();
    let mut answer = String::new();
    garbage.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("error: unknown request"), "{answer}");
    let mut endless = UnixStream::connect(&socket).unwrap();
    endless.write_all(&[b'x'; 200]).unwrap();
    let mut answer = String::new();
    endless.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "error: request line too long\n");
    // Meanwhile, with the silent client still connected:
    let (code, text, _) = ctl(&socket, &["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("serial: 2026112601"), "{text}");
    // The silent client is closed after its deadline.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(silent.read_to_end(&mut rest).unwrap(), 0);
}

/// A reload request waiting when the server stops gets an answer, not a hang: exit 1.
#[test]
fn a_waiting_reload_is_answered_at_stop() {
    let socket = control_path("stop");
    let dump = temp_dump("stop", r#"{"serial": 1, "apps": {"1": "a"}}"#);
    let socket_arg = socket.to_str().unwrap();
    let mut server = Cnamed::start_dump(&dump, &["--control", socket_arg]);
    // The dump becomes a FIFO nobody writes: the reload waits on it.
    std::fs::remove_file(&dump).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&dump)
        .status()
        .unwrap()
        .success());
    let client = {
        let socket = socket.clone();
        std::thread::spawn(move || ctl(&socket, &["reload"]))
    };
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let (code, _, err) = client.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("failed: the server is stopping"), "{err}");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    let _ = std::fs::remove_file(&dump);
}

/// `/health` and `/ready` on the metrics listener, through a server's life: both 503 while
/// the first dump loads (a FIFO the test writes late), both 200 while serving and during a
/// reload, `/ready` 503 once stopping while the workers drain a TCP connection.
#[test]
fn probes_follow_the_server_through_its_life() {
    use std::process::{Command, Stdio};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join(format!("apps-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&dump);
    assert!(Command::new("mkfifo")
        .arg(&dump)
        .status()
        .unwrap()
        .success());
    // The server logs its addresses only once serving: both are picked here.
    // Below the ephemeral range, where no concurrent `:0` bind takes them meanwhile.
    let free_port = || std::net::SocketAddr::from(([127, 0, 0, 1], fixed_port()));
    let (metrics, dns) = (free_port(), free_port());
    let mut child = Reaped::new(
        Command::new(binary())
            .args(["--threads", "2", "--listen"])
            .arg(dns.to_string())
            .arg("--metrics")
            .arg(metrics.to_string())
            .arg("--dump")
            .arg(&dump)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let probe = |path: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match std::net::TcpStream::connect(metrics) {
                Ok(_) => return http_get(metrics, "GET", path).0,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(error) => panic!("{error}"),
            }
        }
    };
    // Loading: the FIFO has no writer yet.
    assert_eq!(probe("/health"), 503);
    assert_eq!(probe("/ready"), 503);
    assert_eq!(probe("/metrics"), 503);
    assert!(head(metrics, "/ready").starts_with("HTTP/1.1 503 "));
    std::fs::write(&dump, r#"{"serial": 1, "apps": {"1": "a"}}"#).unwrap();
    let serving = |path: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while probe(path) != 200 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        probe(path)
    };
    assert_eq!(serving("/ready"), 200);
    assert_eq!(probe("/health"), 200);
    let head_response = head(metrics, "/health");
    assert!(
        head_response.starts_with("HTTP/1.1 200 OK\r\n"),
        "{head_response}"
    );
    assert!(
        head_response.contains("Content-Length: 3\r\n"),
        "{head_response}"
    );
    assert!(
        head_response.ends_with("\r\n\r\n"),
        "no body: {head_response}"
    );
    let m = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    assert_eq!(m["cnamed_workers_running"], 2.0);

    // A reload waiting on the FIFO: still ready, the old snapshot serves.
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    };
    kill("-HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(probe("/ready"), 200);
    assert_eq!(probe("/health"), 200);
    std::fs::write(&dump, r#"{"serial": 2, "apps": {"1": "b"}}"#).unwrap();

    // Stopping: a TCP connection with a query half sent keeps a worker draining.
    let mut held = std::net::TcpStream::connect(dns).unwrap();
    std::io::Write::write_all(&mut held, &[0]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(probe("/ready"), 503, "not ready while stopping");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_file(&dump);
}

/// The whole response to `HEAD path`.
fn head(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A reader that has gone (`cnamed --help | head -0`) leaves the short commands' stdout
/// closed: they exit 0 quietly, as `zonefile` does, never panic (SIGABRT in a release
/// build). Hardening round three, item 15.
#[test]
fn a_closed_stdout_ends_the_short_commands_quietly() {
    let dump = sample_dump();
    let dump = dump.to_str().unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["help"],
        &["check", "--dump", dump],
        &["zonefile", "--dump", dump],
    ] {
        // A socket whose peer is closed: every write fails with EPIPE, whenever it comes.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(ours);
        let output = std::process::Command::new(binary())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `--control PATH` naming a file that is not a socket (a typo pointing at the dump) leaves
/// it alone: cnamed refuses to start and says why; only a socket nobody answers on is
/// replaced. Hardening round three, item 11.
#[test]
fn the_control_flag_never_deletes_a_file_that_is_not_a_socket() {
    let path = control_path("not-a-socket");
    std::fs::write(&path, "{\"serial\": 1, \"apps\": {}}\n").unwrap();
    let mut child = std::process::Command::new(binary())
        .args(["--listen", "127.0.0.1:0", "--dump"])
        .arg(sample_dump())
        .arg("--control")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(Reaped::new)
        .unwrap();
    // It must refuse at once; a server that started instead is stopped, and the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a socket"), "{stderr}");
    let kept = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        kept, "{\"serial\": 1, \"apps\": {}}\n",
        "the file is untouched"
    );
    std::fs::remove_file(&path).unwrap();
}

/// A snapshot of 0 apps (the package's placeholder dump, an empty export) serves, but is
/// not ready: `/ready` answers 503 and says why, `/health` 200; the first reload with apps
/// makes it ready. Hardening round three, item 13.
#[test]
fn an_empty_snapshot_is_not_ready() {
    let dump = temp_dump("empty-not-ready", r#"{"serial": 1, "apps": {}}"#);
    let mut server = Cnamed::start_dump(&dump, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&mut server);
    let (status, body) = http_get(metrics, "GET", "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no apps"), "{body}");
    assert_eq!(http_get(metrics, "GET", "/health").0, 200);
    std::fs::write(&dump, r#"{"serial": 2, "apps": {"123456": "mt1"}}"#).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    assert_eq!(http_get(metrics, "GET", "/ready").0, 200);
    let _ = std::fs::remove_file(&dump);
}

/// The control client's errors carry a level, as every other error line does, and one
/// cluster is "1 cluster" (hardening round three, item 14).
#[test]
fn control_client_errors_have_a_level_and_counts_read_right() {
    let socket = control_path("levels");
    let dump = temp_dump("levels", r#"{"serial": 5, "apps": {"1": "eu", "2": "eu"}}"#);
    let out = std::process::Command::new(binary())
        .args(["check", "--dump"])
        .arg(&dump)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with(": ok, 2 apps, 1 cluster, serial 5\n"),
        "{text}"
    );
    let socket_arg = socket.to_str().unwrap();
    let mut server = Cnamed::start_dump(&dump, &["--control", socket_arg]);
    let started = server.seen_log("serving");
    assert!(
        started
            .iter()
            .any(|line| line.contains(" with 2 apps, 1 cluster, serial 5 on ")),
        "{started:?}"
    );
    std::fs::write(&dump, "{ not json").unwrap();
    let (code, _, err) = ctl(&socket, &["reload"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("cnamed: error: "), "{err}");
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    let (code, _, err) = ctl(&socket, &["status"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("cnamed: error: "), "{err}");
    let _ = std::fs::remove_file(&dump);
}

/// `check` reads the TSIG key file as `serve` does, and a bad one exits 2 as a bad cookie
/// file does; Knot's `keymgr -t` output is a key file (hardening round three, item 9).
#[test]
fn key_files_are_checked_as_configuration() {
    let garbage = temp_dump("garbage-keys", "this is not a key file");
    for command in ["check", "serve"] {
        let output = std::process::Command::new(binary())
            .args([command, "--listen", "127.0.0.1:0", "--dump"])
            .arg(sample_dump())
            .arg("--tsig-key-file")
            .arg(&garbage)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("TSIG key"), "{command}: {stderr}");
    }
    let keymgr = std::process::Command::new("keymgr")
        .args(["-t", "edge-key", "hmac-sha256"])
        .output()
        .expect("keymgr must be installed (.ci/run installs knot)");
    assert!(keymgr.status.success());
    let keys = temp_dump("keymgr-keys", &String::from_utf8(keymgr.stdout).unwrap());
    let output = std::process::Command::new(binary())
        .args(["check", "--dump"])
        .arg(sample_dump())
        .arg("--tsig-key-file")
        .arg(&keys)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let _ = std::fs::remove_file(&garbage);
    let _ = std::fs::remove_file(&keys);
}

/// Descriptors the process holds, from /proc.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// During a stuck reload (its dump a FIFO nobody writes), 40 impatient `reload` clients that
/// hang up are dropped at once, and `status` still gets its answer. Before, each stayed as a
/// dead connection until the reload ended, the 33rd took the last slot and `status` got
/// "Broken pipe" (hardening round three, item 10).
#[test]
fn clients_waiting_for_a_stuck_reload_are_dropped_when_they_hang_up() {
    use std::io::Write;
    let socket = control_path("impatient");
    let dump = temp_dump("impatient", r#"{"serial": 1, "apps": {"1": "a"}}"#);
    let server = Cnamed::start_dump(&dump, &["--control", socket.to_str().unwrap()]);
    std::fs::remove_file(&dump).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&dump)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    // At rest once every thread has opened what it keeps (on a busy box some do so after
    // the "serving" line): a status answered, and the count the same twice 200 ms apart.
    let (code, out, err) = ctl(&socket, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut at_rest = open_descriptors(server.pid());
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = open_descriptors(server.pid());
        if now == at_rest {
            break;
        }
        at_rest = now;
    }
    // One patient client holds the reload (it waits on the FIFO).
    let mut patient = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    patient.write_all(b"reload\n").unwrap();
    for _ in 0..40 {
        let mut impatient = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        impatient.write_all(b"reload\n").unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, out, err) = ctl(&socket, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("serial: 1"), "{out}");
    // The hung-up clients are gone: the patient one and the listener's are left.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open = open_descriptors(server.pid());
        if open <= at_rest + 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} open, {at_rest} at rest"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(patient);
    let _ = std::fs::remove_file(&dump);
}

/// `{"serial": S, "apps": {...}}` with `apps` apps on cluster eu.
fn eu_dump(serial: u32, apps: u32) -> String {
    let entries: Vec<String> = (0..apps).map(|i| format!(r#""{i}": "eu""#)).collect();
    format!(
        r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
        entries.join(",")
    )
}

/// The serial and app count of a dump file, read with serde_json.
fn dump_facts(path: &std::path::Path) -> (u64, usize) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (
        json["serial"].as_u64().unwrap(),
        json["apps"].as_object().unwrap().len(),
    )
}

/// With `--last-good`, each dump installed (at start, and by each reload before it answers)
/// is copied there, and a restart whose dump is truncated, empty or rolled back serves the
/// copy instead, with an error line and a metric; before, a truncated dump stopped the
/// service and an empty one served 0 apps (hardening round three, item 12). A copy that
/// cannot be written is a warning and a metric, never a failed reload.
#[test]
fn the_last_good_copy_serves_when_the_dump_cannot() {
    let dump = temp_dump("last-good-dump", &eu_dump(5, 100));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("last-good-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("last-good.json");
    let _ = std::fs::remove_file(&copy);
    let args = [
        "--last-good",
        copy.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut server = Cnamed::start_dump(&dump, &args);
    assert_eq!(dump_facts(&copy), (5, 100), "written at start");
    std::fs::write(&dump, eu_dump(6, 101)).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    assert_eq!(dump_facts(&copy), (6, 101), "written by the reload");
    drop(server);

    let full = eu_dump(7, 101);
    for (bad, why) in [
        (full[..full.len() / 2].to_owned(), "EOF"),
        (eu_dump(7, 0), "no apps"),
        (eu_dump(4, 101), "serial 4"),
    ] {
        std::fs::write(&dump, &bad).unwrap();
        let mut server = Cnamed::start_dump(&dump, &args);
        let line = server.seen_log("answering from the last good copy");
        assert!(line.len() == 1 && line[0].contains(why), "{why}: {line:?}");
        assert_eq!(serial_of(&server), 6);
        let metrics = metrics_addr(&mut server);
        let samples = wait_metric(metrics, "cnamed_last_good_serving", 1.0);
        assert_eq!(samples["cnamed_snapshot_apps"], 101.0);
        assert_eq!(http_get(metrics, "GET", "/ready").0, 200);
        assert_eq!(dump_facts(&copy), (6, 101), "the copy is kept");
    }

    // A copy that cannot be written: the reload still installs the dump.
    let unwritable = dir.join("no-such-dir").join("last-good.json");
    std::fs::write(&dump, eu_dump(8, 101)).unwrap();
    let unwritable_args = [
        "--last-good",
        unwritable.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut server = Cnamed::start_dump(&dump, &unwritable_args);
    assert_eq!(server.seen_log("cannot write the last good copy").len(), 1);
    std::fs::write(&dump, eu_dump(9, 101)).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    assert_eq!(serial_of(&server), 9);
    let metrics = metrics_addr(&mut server);
    wait_metric(metrics, "cnamed_last_good_write_failures_total", 1.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
