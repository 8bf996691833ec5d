//! The last good dump (`--last-good PATH`): a copy of the last dump the server installed,
//! written after each dump load that put one in service, and served at start when the dump
//! itself cannot be: unreadable, invalid, empty, or refused by the guard rails against the
//! copy (a rolled-back serial, a shrink), as a bad export that a reload refused but that
//! stayed on disk would be after a reboot.

use std::io;
use std::path::Path;

use super::guard::{check_difference, compare, Rules};
use super::{LoadError, Snapshot, Zone};

/// What start-up serves, and why it is not the dump when it is not.
#[derive(Debug)]
pub struct Chosen {
    pub snapshot: Snapshot,
    /// Why the dump was passed over for the last good copy; `None`: the dump is served.
    pub passed_over: Option<String>,
}

/// The snapshot to serve at start: the dump `loaded`, unless it failed, is empty or the
/// guard rails (all but the cluster rule, checked for both) refuse it against the last good
/// copy at `last_good`, which is then served. Without a usable copy, the dump's own outcome.
pub fn choose_at_start(
    loaded: Result<Snapshot, LoadError>,
    last_good: &Path,
    zone: &Zone,
    max_size: u64,
    rules: &Rules,
) -> Result<Chosen, LoadError> {
    let copy = match Snapshot::load(last_good, zone, max_size) {
        Ok(copy) if copy.app_count() > 0 => Some(copy),
        _ => None,
    };
    let why = match (&loaded, &copy) {
        (_, None) => None,
        (Err(error), Some(_)) => Some(error.to_string()),
        (Ok(dump), Some(_)) if dump.app_count() == 0 => Some("it has no apps".to_owned()),
        (Ok(dump), Some(copy)) => check_difference(copy, dump, compare(copy, dump), rules, false)
            .err()
            .map(|refusal| refusal.to_string()),
    };
    match (why, copy) {
        (Some(why), Some(snapshot)) => Ok(Chosen {
            snapshot,
            passed_over: Some(why),
        }),
        _ => loaded.map(|snapshot| Chosen {
            snapshot,
            passed_over: None,
        }),
    }
}

/// Writes `snapshot` as the last good copy at `path`, atomically and durably (a temporary
/// file beside it, fsynced, renamed).
pub fn save(snapshot: &Snapshot, path: &Path) -> io::Result<()> {
    super::save::save_dump(snapshot, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{snapshot, zone};

    fn rules() -> Rules {
        Rules {
            max_shrink_percent: 10,
            clusters: None,
        }
    }

    #[test]
    fn a_bad_dump_is_passed_over_for_the_last_good_copy() {
        let dir = std::env::temp_dir().join(format!("cnamed-last-good-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy_path = dir.join("last-good.json");
        let apps: Vec<String> = (0..100).map(|i| format!(r#""{i}": "eu""#)).collect();
        let good = snapshot(&format!(
            r#"{{"serial": 5, "apps": {{{}}}}}"#,
            apps.join(",")
        ));
        save(&good, &copy_path).unwrap();
        let zone = zone();
        let choose = |loaded| choose_at_start(loaded, &copy_path, &zone, u64::MAX, &rules());

        let newer = snapshot(&format!(
            r#"{{"serial": 6, "apps": {{{}}}}}"#,
            apps.join(",")
        ));
        let chosen = choose(Ok(newer)).unwrap();
        assert_eq!((chosen.snapshot.serial, chosen.passed_over), (6, None));
        for (dump, why) in [
            (r#"{"serial": 7, "apps": {}}"#, "no apps"),
            (r#"{"serial": 4, "apps": {"1": "eu"}}"#, "serial 4"),
            (r#"{"serial": 7, "apps": {"1": "eu"}}"#, "remove"),
        ] {
            let chosen = choose(Ok(snapshot(dump))).unwrap();
            assert_eq!(chosen.snapshot.serial, 5, "{dump}");
            let passed_over = chosen.passed_over.unwrap();
            assert!(passed_over.contains(why), "{dump}: {passed_over}");
        }
        let unreadable = Snapshot::load(&dir.join("missing.json"), &zone, u64::MAX);
        let chosen = choose(unreadable).unwrap();
        assert_eq!(chosen.snapshot.serial, 5);
        // Without a copy, the dump's own outcome.
        std::fs::remove_file(&copy_path).unwrap();
        assert!(choose(Snapshot::load(&dir.join("missing.json"), &zone, u64::MAX)).is_err());
        let empty = choose(Ok(snapshot(r#"{"serial": 7, "apps": {}}"#))).unwrap();
        assert_eq!((empty.snapshot.app_count(), empty.passed_over), (0, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
