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
