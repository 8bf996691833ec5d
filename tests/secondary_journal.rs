//! A secondary's journal (`--journal` with `--primary`, issue 24): the differences its
//! primary sends are appended to the journal, not written as whole dumps; a restart is the
//! dump plus the journal (then an IXFR for what is newer), even without the primary; past
//! `--journal-max-size` a checkpoint takes the records. Answers decoded by hickory-proto.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// `{"serial": S, "apps": {...}}`: apps 0..2000 on c0..c3, then round `r`'s changes: apps
/// below `r` moved to c9, apps 1000..1000+r deleted, apps 5000..5000+r added on c5.
fn dump(serial: u32, round: u32) -> String {
    let mut apps: Vec<String> = Vec::new();
    for app in 0..2000u32 {
        let cluster = match app < round {
            true => 9,
            false => app % 4,
        };
        if !(1000..1000 + round).contains(&app) {
            apps.push(format!(r#""{app}": "c{cluster}""#));
        }
    }
    apps.extend((5000..5000 + round).map(|app| format!(r#""{app}": "c5""#)));
    format!(r#"{{"serial": {serial}, "apps": {{{}}}}}"#, apps.join(","))
}

/// What round `round` serves for `app`.
fn expected(app: u32, round: u32) -> Option<String> {
    let cluster = match app {
        5000.. if app < 5000 + round => 5,
        2000.. => return None,
        1000..=1999 if app < 1000 + round => return None,
        _ if app < round => 9,
        _ => app % 4,
    };
    Some(format!("ws-c{cluster}.example.com."))
}

fn check_round(server: &Cnamed, round: u32) {
    for app in (0..round + 3)
        .chain(998..1000 + round + 2)
        .chain(4999..5000 + round + 2)
    {
        let target = target_of(server, &format!("ws-{app}.apps.example.com."));
        assert_eq!(target, expected(app, round), "app {app} at round {round}");
    }
}

fn wait_serial(server: &Cnamed, serial: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while serial_of(server) != serial {
        assert!(Instant::now() < deadline, "serial {serial} never served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A path in the test directory with nothing there yet.
fn fresh(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("secondary-journal");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}", std::process::id()));
    for suffix in ["", ".checkpoint", ".new"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    path
}

struct Fleet {
    primary: Cnamed,
    primary_dump: PathBuf,
    /// The secondary's fixed address, which the primary NOTIFYs.
    secondary_listen: String,
    secondary_dump: PathBuf,
    journal: PathBuf,
    primary_listen: String,
}

impl Fleet {
    fn new(test: &str) -> Self {
        let primary_listen = format!("127.0.0.1:{}", fixed_port());
        let secondary_listen = format!("127.0.0.1:{}", fixed_port());
        let primary_dump = temp_dump(&format!("{test}-primary"), &dump(1, 0));
        let primary = Cnamed::start_dump(
            &primary_dump,
            &[
                "--listen",
                &primary_listen,
                "--xfr-allow",
                "127.0.0.1",
                "--notify",
                &secondary_listen,
            ],
        );
        Self {
            primary,
            primary_dump,
            secondary_listen,
            secondary_dump: fresh(&format!("{test}-secondary.json")),
            journal: fresh(&format!("{test}.journal")),
            primary_listen,
        }
    }

    fn secondary(&self, extra: &[&str]) -> Cnamed {
        let mut args = vec![
            "--listen",
            &self.secondary_listen,
            "--primary",
            &self.primary_listen,
            "--journal",
            self.journal.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Cnamed::start_dump(&self.secondary_dump, &args)
    }

    /// The primary at `round`, serial `round + 1`.
    fn publish(&mut self, round: u32) {
        std::fs::write(&self.primary_dump, dump(round + 1, round)).unwrap();
        self.primary.signal("HUP");
        self.primary
            .wait_log(&format!("serial {} (was {})", round + 1, round));
    }
}

/// `kill -9`, and waits for the end.
fn kill_9(server: &mut Cnamed) {
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
}

fn modified(path: &Path) -> (std::time::SystemTime, u64) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.modified().unwrap(), meta.len())
}

#[test]
fn differences_go_to_the_journal_and_a_restart_is_dump_plus_journal() {
    let mut fleet = Fleet::new("sj-restart");
    let mut secondary = fleet.secondary(&[]);
    // The first start has no dump: a whole transfer, written as the dump once it serves.
    assert_eq!(secondary.seen_log("AXFR from").len(), 1);
    secondary.wait_log_seen("wrote ");
    let dump_after_start = modified(&fleet.secondary_dump);
    for round in 1..=20 {
        fleet.publish(round);
        wait_serial(&secondary, round + 1);
    }
    check_round(&secondary, 20);
    // Twenty differences, not one whole dump: the dump is as the start wrote it, and the
    // journal holds 20 records of 3 changes each, in bytes proportional to them.
    assert_eq!(modified(&fleet.secondary_dump), dump_after_start);
    let journal_bytes = std::fs::metadata(&fleet.journal).unwrap().len();
    assert!(
        (20 * 3 * 8..20 * 200).contains(&journal_bytes),
        "{journal_bytes} journal bytes for 20 records of 3 changes"
    );

    // kill -9; the primary moves on meanwhile.
    kill_9(&mut secondary);
    drop(secondary);
    fleet.publish(21);
    let mut secondary = fleet.secondary(&[]);
    let replayed = secondary.seen_log("replayed from serial 1 to 21");
    assert!(
        replayed.len() == 1 && replayed[0].contains("20 records"),
        "{replayed:?}"
    );
    // Then an IXFR brings what it missed: no whole transfer.
    wait_serial(&secondary, 22);
    check_round(&secondary, 21);
    let metrics = metrics_addr(&mut secondary);
    let ixfr = r#"cnamed_secondary_transfers_total{type="IXFR",result="changed"}"#;
    let samples = wait_metric(metrics, ixfr, 1.0);
    let axfr = r#"cnamed_secondary_transfers_total{type="AXFR",result="changed"}"#;
    assert_eq!(samples[axfr], 0.0);
    // Timed before it was counted.
    let timed = r#"cnamed_secondary_transfer_duration_seconds_count{type="IXFR"}"#;
    assert!(samples[timed] >= samples[ixfr], "{samples:?}");
    assert!(samples[r#"cnamed_secondary_transfer_duration_seconds_sum{type="IXFR"}"#] > 0.0);
    assert!(secondary.seen_log("AXFR from").is_empty());
    assert_eq!(modified(&fleet.secondary_dump), dump_after_start);

    // Without the primary, a restart still serves every change it had.
    kill_9(&mut secondary);
    drop(secondary);
    kill_9(&mut fleet.primary);
    let secondary = fleet.secondary(&[]);
    assert_eq!(serial_of(&secondary), 22);
    check_round(&secondary, 21);
}

#[test]
fn past_its_bound_the_journal_is_checkpointed() {
    let mut fleet = Fleet::new("sj-checkpoint");
    let mut secondary = fleet.secondary(&["--journal-max-size", "300"]);
    secondary.wait_log_seen("wrote ");
    for round in 1..=12 {
        fleet.publish(round);
        wait_serial(&secondary, round + 1);
    }
    // The checkpoint is written off the refresh path: wait for it.
    let mut checkpoint = fleet.journal.clone().into_os_string();
    checkpoint.push(".checkpoint");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&checkpoint).exists() {
        assert!(Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let journal_bytes = std::fs::metadata(&fleet.journal).unwrap().len();
    assert!(journal_bytes < 1_000, "{journal_bytes} bytes: not cut back");
    kill_9(&mut secondary);
    drop(secondary);
    kill_9(&mut fleet.primary);
    // The newer of the dump and the checkpoint, plus the journal after it.
    let secondary = fleet.secondary(&[]);
    assert_eq!(secondary.seen_log("newer than the dump").len(), 1);
    assert_eq!(serial_of(&secondary), 13);
    check_round(&secondary, 12);
}

/// A journal that does not follow the dump (here: the dump replaced by an older one) does
/// not stop a secondary: it is emptied with a warning and the primary brings the zone.
#[test]
fn a_journal_that_does_not_follow_the_dump_is_emptied() {
    let mut fleet = Fleet::new("sj-gap");
    let mut secondary = fleet.secondary(&[]);
    secondary.wait_log_seen("wrote ");
    let first_dump = std::fs::read(&fleet.secondary_dump).unwrap();
    for round in 1..=3 {
        fleet.publish(round);
        wait_serial(&secondary, round + 1);
    }
    kill_9(&mut secondary);
    drop(secondary);
    // An operator restores a dump of serial 0 (older than the journal's first record).
    let old = String::from_utf8(first_dump)
        .unwrap()
        .replacen("\"serial\": 1", "\"serial\": 0", 1);
    assert!(old.contains("\"serial\": 0"), "{old}");
    std::fs::write(&fleet.secondary_dump, old).unwrap();
    let secondary = fleet.secondary(&[]);
    let lines = secondary.seen_log("emptied, the primaries bring the zone up to date");
    assert!(
        lines.len() == 1 && lines[0].contains("warning"),
        "{lines:?}"
    );
    wait_serial(&secondary, 4);
    check_round(&secondary, 3);
}
