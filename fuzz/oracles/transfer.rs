//! The oracle of the `transfer` fuzz target, shared with tests/fuzz_corpus.rs: a zone
//! transfer from a primary is untrusted input. The first byte picks AXFR (even) or IXFR from
//! the base snapshot's serial (odd); the rest is messages, each after a two-byte length, as
//! on TCP. Reading them never panics; an IXFR that resolves against the base and applies
//! gives exactly the base's mapping with the resolved changes (a model in a BTreeMap), and
//! answers for every changed app; a full zone that builds has one app per entry.

use std::collections::BTreeMap;

use cnamed::snapshot::guard::serial_is_newer;
use cnamed::snapshot::Snapshot;
use cnamed::xfr::inbound::reader::{Received, TransferReader};
use cnamed::xfr::inbound::resolve::resolve;

/// The snapshot an IXFR is applied to: serial 1, numeric and named apps on three clusters.
pub(crate) fn base_snapshot() -> &'static Snapshot {
    static BASE: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let zone = cnamed::config::Config::default().zone().unwrap();
        let apps = [
            ("1", "c0"),
            ("2", "c1"),
            ("3", "c1"),
            ("app-x", "c2"),
            ("0123", "c0"),
        ];
        Snapshot::from_apps(1, apps, &zone).unwrap()
    })
}

pub(crate) fn check(input: &[u8], base: &Snapshot) {
    let Some((&mode, mut rest)) = input.split_first() else {
        return;
    };
    let zone = &base.zone;
    let mut reader = match mode & 1 {
        0 => TransferReader::axfr(zone),
        _ => TransferReader::ixfr(zone, base.serial),
    }
    .unwrap();
    while let Some(prefix) = rest.get(..2) {
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let Some(message) = rest.get(2..2 + len) else {
            break;
        };
        rest = &rest[2 + len..];
        match reader.read_message(message) {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => return,
        }
    }
    let Ok(received) = reader.finish() else {
        return;
    };
    match received {
        Received::UpToDate(serial) => {
            assert!(mode & 1 == 1, "an AXFR is never up to date");
            assert!(!serial_is_newer(serial, base.serial));
        }
        Received::Full(transferred) => {
            // Built as it was read: its apps, checked as a dump's, build the same snapshot.
            let snapshot = &transferred.snapshot;
            assert_eq!(snapshot.serial, transferred.serial);
            let apps = snapshot.apps();
            let listed = apps.iter().map(|(app, cluster)| (app.as_str(), *cluster));
            let rebuilt = Snapshot::from_apps(snapshot.serial, listed, zone)
                .expect("a transferred zone's apps are valid");
            assert_eq!(rebuilt.apps(), apps);
            assert_eq!(snapshot.app_count(), apps.len());
        }
        Received::Incremental { serial, changes } => {
            assert!(mode & 1 == 1, "an AXFR is never incremental");
            let Ok(resolved) = resolve(base, &changes) else {
                return;
            };
            let mut model: BTreeMap<String, String> = base
                .apps()
                .into_iter()
                .map(|(app, cluster)| (app, cluster.to_owned()))
                .collect();
            for (app, cluster) in &resolved.changes {
                match cluster {
                    Some(cluster) => {
                        model.insert(app.to_string(), cluster.to_string());
                    }
                    None => {
                        assert!(model.remove(&**app).is_some(), "{app} removed, not there");
                    }
                }
            }
            let Ok(applied) = base.with_changes(
                serial,
                resolved
                    .changes
                    .iter()
                    .map(|(app, cluster)| (&**app, cluster.as_deref())),
            ) else {
                return;
            };
            assert_eq!(applied.serial, serial);
            let got: BTreeMap<String, String> = applied
                .apps()
                .into_iter()
                .map(|(app, cluster)| (app, cluster.to_owned()))
                .collect();
            assert_eq!(got, model);
            for (app, cluster) in &resolved.changes {
                let label = format!("ws-{app}");
                let answer = applied.cname(label.as_bytes());
                match cluster {
                    Some(cluster) => {
                        let record = answer.expect("a changed app answers");
                        let target = &record[10..];
                        let wanted = format!("ws-{cluster}");
                        assert_eq!(&target[1..1 + wanted.len()], wanted.as_bytes());
                    }
                    None => assert!(answer.is_none(), "{app} answers after its removal"),
                }
            }
        }
    }
}
