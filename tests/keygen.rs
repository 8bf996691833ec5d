//! `cnamed keygen` with real peers: dig reads its BIND form, kdig takes the `-y` line of its
//! Knot form, and Knot `include:`s that form and transfers the zone from cnamed with it. A
//! key of the same name and another secret is refused, so a pass means the secret was used.
//! (dig, kdig and knotd are installed by .ci/run.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;

/// `cnamed keygen ARGS`, written to a file under the target directory.
fn keygen(file: &str, args: &[&str]) -> PathBuf {
    let output = Command::new(binary())
        .arg("keygen")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("keygen-{file}-{}", std::process::id()));
    std::fs::write(&path, &output.stdout).unwrap();
    path
}

/// A client's output, stdout and stderr together.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run installs it): {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Whether a client's AXFR output says the zone came: dig's size line, or kdig's count of
/// records received, and no error.
fn transferred(output: &str) -> bool {
    let kdig = output.contains(";; Received") && output.contains(" records)");
    let failed = output.contains(";; ERROR") || output.contains("Transfer failed");
    (output.contains("XFR size:") || kdig) && !failed
}

fn server_with(keys: &Path) -> Cnamed {
    Cnamed::start_dump(
        &sample_dump(),
        &[
            "--xfr-allow",
            "127.0.0.1",
            "--tsig-key-file",
            keys.to_str().unwrap(),
        ],
    )
}

#[test]
fn dig_transfers_with_the_bind_form() {
    let key = keygen("bind", &["xfr-key"]);
    let other = keygen("bind-other", &["xfr-key"]);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("key \"xfr-key\" {\n\talgorithm hmac-sha256;"),
        "{text}"
    );
    assert_ne!(text, std::fs::read_to_string(&other).unwrap());
    let server = server_with(&key);
    let port = server.addr.port().to_string();
    let axfr = |key: &Path| {
        let key = key.to_str().unwrap();
        let args = [
            "-k",
            key,
            "@127.0.0.1",
            "-p",
            &port,
            "apps.example.com",
            "AXFR",
        ];
        run("dig", &args)
    };
    let good = axfr(&key);
    assert!(transferred(&good), "{good}");
    assert!(good.contains("ws-123456.apps.example.com."), "{good}");
    assert!(good.contains("TSIG\thmac-sha256."), "signed: {good}");
    let bad = axfr(&other);
    assert!(bad.contains("BADSIG") && !transferred(&bad), "{bad}");
    let _ = std::fs::remove_file(key);
    let _ = std::fs::remove_file(other);
}

#[test]
fn kdig_transfers_with_the_knot_form_line() {
    let key = keygen(
        "knot",
        &["--format", "knot", "--algorithm", "hmac-sha512", "xfr-key"],
    );
    let text = std::fs::read_to_string(&key).unwrap();
    let line = text.lines().next().unwrap().strip_prefix("# ").unwrap();
    assert!(line.starts_with("hmac-sha512:xfr-key:"), "{text}");
    let server = server_with(&key);
    let port = server.addr.port().to_string();
    let axfr = |line: &str| {
        let args = [
            "-y",
            line,
            "@127.0.0.1",
            "-p",
            &port,
            "apps.example.com",
            "AXFR",
        ];
        run("kdig", &args)
    };
    let good = axfr(line);
    assert!(transferred(&good), "{good}");
    assert!(good.contains("ws-123456.apps.example.com."), "{good}");
    let zeros = format!("hmac-sha512:xfr-key:{}", "A".repeat(86) + "==");
    let bad = axfr(&zeros);
    assert!(bad.contains("BADSIG") && !transferred(&bad), "{bad}");
    let _ = std::fs::remove_file(key);
}

#[test]
fn knot_includes_the_knot_form_and_transfers_with_it() {
    let key = keygen("knot-include", &["--format", "knot", "xfr-key"]);
    let server = server_with(&key);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("keygen-knotd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = fixed_port();
    let (dir_text, key_text) = (dir.display(), key.display());
    let conf = format!(
        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir_text}\n\
         database:\n    storage: {dir_text}\n\
         log:\n  - target: stderr\n    any: info\n\
         include: {key_text}\n\
         remote:\n  - id: cnamed\n    address: 127.0.0.1@{primary}\n    key: xfr-key\n\
         zone:\n  - domain: apps.example.com\n    storage: {dir_text}\n    master: cnamed\n\
         \x20   zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n",
        primary = server.addr.port(),
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    let mut knot = Reaped::new(
        Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("knotd must be installed (.ci/run installs knot)"),
    );
    // Knot serves the app once it has the zone: transferred with the key.
    let knot_addr = format!("127.0.0.1:{port}").parse().unwrap();
    let ask = encode(&query("ws-123456.apps.example.com.", RecordType::CNAME));
    let deadline = Instant::now() + Duration::from_secs(30);
    let target = loop {
        let reply = udp_exchange(knot_addr, &ask, true).map(|r| decode(&r));
        let target = reply.as_ref().and_then(cname_target);
        if target.is_some() || Instant::now() > deadline {
            break target;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(server);
    let _ = knot.kill();
    let output = knot.wait_with_output();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&key);
    assert_eq!(
        target.as_deref(),
        Some("ws-mt1.example.com."),
        "Knot's log:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
