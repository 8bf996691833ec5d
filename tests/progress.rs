//! Progress on long work: a load that takes longer than a couple of seconds says how far it
//! has come (to the log here, stderr not being a terminal); one that does not says nothing.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn a_slow_load_logs_how_far_it_has_come() {
    // A FIFO fed half a dump, then, after a pause longer than the quiet time, the rest.
    let fifo = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("progress-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let apps: Vec<String> = (1..=20_000).map(|i| format!("\"{i}\": \"mt1\"")).collect();
    let json = format!("{{\"serial\": 1, \"apps\": {{{}}}}}", apps.join(",\n"));
    let check = Reaped::new(
        Command::new(binary())
            .args(["check", "--dump", fifo.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let half = json.len() / 2;
    writer.write_all(&json.as_bytes()[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    writer.write_all(&json.as_bytes()[half..]).unwrap();
    drop(writer);
    let output = check.wait_with_output();
    let _ = std::fs::remove_file(&fifo);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("loading ") && l.contains("MB read"))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.starts_with("cnamed: info: loading "), "{line}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("20000 apps"));

    // A quick load: no progress at all.
    let dump = temp_dump("progress-quick", &json);
    let output = Command::new(binary())
        .args(["check", "--dump", dump.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("loading "), "{stderr}");
}
