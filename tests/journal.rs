//! The journal survives `kill -9`: a writer process appends commits and prints each serial
//! once `append` returned (fsynced); killed at a random point and reopened, the journal holds
//! every printed serial, in order, and nothing it cannot read (issue 23, its first part).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cnamed::journal::{Change, Entry, Journal};
use common::*;

/// The child's side: set by the test in the environment of its own binary.
const CHILD: &str = "CNAMED_JOURNAL_WRITER";

fn commit(serial: u32) -> Entry {
    let changes = (0..1 + serial % 50)
        .map(|i| Change {
            app: format!("app-{serial}-{i}").into(),
            before: (i % 3 == 0).then(|| "old".into()),
            cluster: (i % 7 != 0).then(|| format!("c{}", i % 4).into()),
        })
        .collect();
    Entry {
        previous: serial - 1,
        serial,
        changes,
    }
}

#[test]
fn acknowledged_commits_survive_kill_9() {
    if let Some(path) = std::env::var_os(CHILD) {
        // The writer: append commits one by one (some two together, as group commit does),
        // saying each serial once it is on disk, until killed.
        let mut journal = Journal::open(std::path::Path::new(&path)).unwrap().journal;
        let mut serial = 1;
        loop {
            let group: Vec<Entry> = (serial..serial + 1 + serial % 2).map(commit).collect();
            journal.append(&group).unwrap();
            for entry in &group {
                println!("{}", entry.serial);
            }
            serial += group.len() as u32;
        }
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    for round in 0..5u64 {
        let path = dir.join(format!("kill-{}-{round}.jnl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut writer = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "acknowledged_commits_survive_kill_9",
                "--nocapture",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map(Reaped::new)
            .unwrap();
        let stdout = writer.stdout.take().unwrap();
        let (acknowledged, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(serial) = line.trim().parse::<u32>() {
                    let _ = acknowledged.send(serial);
                }
            }
        });
        // Some commits, then SIGKILL at a point that differs from round to round.
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a commit");
        std::thread::sleep(Duration::from_millis(20 + 37 * round));
        writer.kill().unwrap();
        writer.wait().unwrap();
        let mut said = vec![first];
        said.extend(lines.iter());
        let opened = Journal::open(&path).unwrap();
        let kept: Vec<u32> = opened.entries.iter().map(|e| e.serial).collect();
        assert_eq!(
            kept,
            (1..=kept.len() as u32).collect::<Vec<_>>(),
            "in order, no gap"
        );
        let last_said = *said.last().unwrap();
        assert!(
            kept.len() as u32 >= last_said,
            "round {round}: serial {last_said} was acknowledged, {} kept",
            kept.len()
        );
        for entry in &opened.entries {
            assert_eq!(*entry, commit(entry.serial), "read back as written");
        }
        let _ = std::fs::remove_file(&path);
    }
}
