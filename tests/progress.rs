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

/// A FIFO, and a writer thread that feeds it `json` in two halves with a pause longer than
/// the quiet time between them.
fn paused_fifo(name: &str, json: String) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
    let fifo = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("progress-{name}-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let path = fifo.clone();
    let feeder = std::thread::spawn(move || {
        let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let half = json.len() / 2;
        writer.write_all(&json.as_bytes()[..half]).unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        writer.write_all(&json.as_bytes()[half..]).unwrap();
    });
    (fifo, feeder)
}

/// On a terminal (a pseudo-terminal made by `script`), the line is redrawn in place: a
/// carriage return and an erase before each, and erased at the end.
#[test]
fn a_slow_load_on_a_terminal_redraws_one_line() {
    let apps: Vec<String> = (1..=20_000).map(|i| format!("\"{i}\": \"mt1\"")).collect();
    let json = format!("{{\"serial\": 1, \"apps\": {{{}}}}}", apps.join(",\n"));
    let (fifo, feeder) = paused_fifo("tty", json);
    let command = format!("{} check --dump {}", binary(), fifo.display());
    // util-linux's script: -q quiet, -e the command's exit code, -f flush as it comes.
    let output = Reaped::new(
        Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (bsdutils) is on every Debian system"),
    )
    .wait_with_output();
    feeder.join().unwrap();
    let _ = std::fs::remove_file(&fifo);
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    let redraws = screen.matches("\r\x1b[Kloading ").count();
    assert!(redraws >= 1, "no redrawn line: {screen:?}");
    assert!(
        !screen.contains("cnamed: info: loading"),
        "a terminal gets no log line of progress: {screen:?}"
    );
    assert!(screen.contains("20000 apps"), "{screen:?}");
}

/// A proxy to `upstream` that passes the request on and the answer back, pausing longer than
/// the quiet time halfway through the answer.
fn pausing_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut server = std::net::TcpStream::connect(upstream).unwrap();
        let mut request = [0u8; 1024];
        let n = client.read(&mut request).unwrap();
        server.write_all(&request[..n]).unwrap();
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).unwrap();
        let half = answer.len() / 2;
        client.write_all(&answer[..half]).unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        let _ = client.write_all(&answer[half..]);
    });
    addr
}

#[test]
fn a_slow_fetch_logs_how_far_it_has_come() {
    let apps: Vec<String> = (1..=20_000).map(|i| format!("\"{i}\": \"mt1\"")).collect();
    let json = format!("{{\"serial\": 7, \"apps\": {{{}}}}}", apps.join(","));
    let primary = Cnamed::start_dump(
        &temp_dump("progress-primary", &json),
        &["--xfr-allow", "127.0.0.1"],
    );
    let proxy = pausing_proxy(primary.addr);
    let output = Command::new(binary())
        .args(["fetch", "--primary", &proxy.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let expected = format!("cnamed: info: AXFR of apps.example.com from {proxy}: ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.contains(" MB read, "), "{line}");
    // The zone came whole: the dump written holds every app.
    let dump: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(dump["serial"], 7);
    assert_eq!(dump["apps"].as_object().unwrap().len(), 20_000);
}
