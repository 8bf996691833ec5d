use super::*;

fn snapshot(serial: u32, apps: &[(&str, &str)]) -> Snapshot {
    Snapshot::from_apps(serial, apps.iter().copied(), &crate::testing::zone()).unwrap()
}

fn entry(previous: u32, serial: u32, changes: &[(&str, Option<&str>)]) -> Entry {
    Entry {
        previous,
        serial,
        changes: changes
            .iter()
            .map(|(app, cluster)| Change {
                app: (*app).into(),
                before: None,
                cluster: cluster.map(Into::into),
            })
            .collect(),
    }
}

fn change(app: &str, before: Option<&str>, cluster: Option<&str>) -> Change {
    Change {
        app: app.into(),
        before: before.map(Into::into),
        cluster: cluster.map(Into::into),
    }
}

/// Apps and clusters, sorted: what a snapshot serves.
fn served(snapshot: &Snapshot) -> Vec<(String, String)> {
    let mut apps: Vec<_> = snapshot
        .apps()
        .into_iter()
        .map(|(app, cluster)| (app, cluster.to_owned()))
        .collect();
    apps.sort();
    apps
}

fn pairs(apps: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut apps: Vec<_> = apps
        .iter()
        .map(|(a, c)| ((*a).to_owned(), (*c).to_owned()))
        .collect();
    apps.sort();
    apps
}

#[test]
fn the_records_after_a_serial() {
    let entries = [
        entry(10, 11, &[("1", Some("eu"))]),
        entry(11, 15, &[("2", Some("eu"))]),
        entry(15, 16, &[("1", None)]),
    ];
    assert_eq!(after(&entries, 10), Ok(&entries[..]));
    assert_eq!(after(&entries, 11), Ok(&entries[1..]));
    // Inside a record's range: the record holds every change after it up to its serial.
    assert_eq!(after(&entries, 13), Ok(&entries[1..]));
    assert_eq!(after(&entries, 16), Ok(&[][..]));
    assert_eq!(after(&entries, 20), Ok(&[][..]));
    assert_eq!(after(&[], 5), Ok(&[][..]));
    assert_eq!(
        after(&entries, 9),
        Err(Gap {
            serial: 9,
            journal_from: 10
        })
    );
    // RFC 1982: the journal across the wrap of the serial.
    let wrapped = [entry(u32::MAX, 0, &[]), entry(0, 1, &[])];
    assert_eq!(
        after(&wrapped, u32::MAX - 1),
        Err(Gap {
            serial: u32::MAX - 1,
            journal_from: u32::MAX
        })
    );
    assert_eq!(after(&wrapped, 0), Ok(&wrapped[1..]));
}

#[test]
fn replay_applies_each_apps_last_state() {
    let dump = snapshot(10, &[("1", "us"), ("2", "us"), ("app-x", "us")]);
    let entries = [
        entry(10, 11, &[("1", Some("eu")), ("3", Some("eu"))]),
        entry(
            11,
            12,
            &[("1", Some("mt1")), ("2", None), ("4", Some("eu"))],
        ),
        // Added and removed again: nothing to remove from the dump.
        entry(12, 13, &[("4", None), ("app-x", Some("eu"))]),
    ];
    let (replayed, changes) = replay(&dump, &entries, 13).unwrap();
    assert_eq!(replayed.serial, 13);
    assert_eq!(changes, 4);
    assert_eq!(
        served(&replayed),
        pairs(&[("1", "mt1"), ("3", "eu"), ("app-x", "eu")])
    );
}

#[test]
fn changes_between_lists_what_differs() {
    let old = snapshot(1, &[("1", "us"), ("2", "us"), ("app-x", "eu")]);
    let new = snapshot(2, &[("1", "us"), ("2", "eu"), ("app-y", "eu")]);
    let mut changes = changes_between(&old, &new);
    changes.sort_by(|a, b| a.app.cmp(&b.app));
    let expected = [
        change("2", Some("us"), Some("eu")),
        change("app-x", Some("eu"), None),
        change("app-y", None, Some("eu")),
    ];
    assert_eq!(changes, expected);
    assert!(changes_between(&old, &old).is_empty());
    // Cluster indexes differ between snapshots: names are compared.
    let reordered = snapshot(3, &[("app-x", "eu"), ("2", "us"), ("1", "us")]);
    assert!(changes_between(&old, &reordered).is_empty());
}

/// The export race: an export taken at serial 10, the zone at 12 by two UPDATEs; reloading
/// the export keeps both, and the apps the export changed on its own (removed "2") follow
/// the export.
#[test]
fn an_older_export_keeps_the_journaled_changes() {
    let live_base = snapshot(10, &[("1", "us"), ("2", "us")]);
    let entries = [
        entry(10, 11, &[("new-1", Some("eu"))]),
        entry(11, 12, &[("1", Some("eu"))]),
    ];
    let (live, _) = replay(&live_base, &entries, 12).unwrap();
    // The same export: the same apps, nothing to install.
    match reconcile(&live_base, &live, &entries).unwrap() {
        Reconciled::Replayed {
            record, records, ..
        } => {
            assert_eq!((record, records), (None, 2));
        }
        other => panic!("{other:?}"),
    }
    // An export at 10 that says "1" is on "mt1" and "2" is gone: the journal's newer "1"
    // wins, the removal of "2" is the export's news.
    let export = snapshot(10, &[("1", "mt1"), ("app-z", "us")]);
    let Reconciled::Replayed {
        snapshot, record, ..
    } = reconcile(&export, &live, &entries).unwrap()
    else {
        panic!("not replayed");
    };
    assert_eq!(snapshot.serial, 13);
    assert_eq!(
        served(&snapshot),
        pairs(&[("1", "eu"), ("new-1", "eu"), ("app-z", "us")])
    );
    let mut record = record.expect("a record");
    record.changes.sort_by(|a, b| a.app.cmp(&b.app));
    let changes = [
        change("2", Some("us"), None),
        change("app-z", None, Some("us")),
    ];
    assert_eq!((record.previous, record.serial), (12, 13));
    assert_eq!(record.changes, changes);
}

#[test]
fn what_does_not_reconcile() {
    let live_base = snapshot(10, &[("1", "us")]);
    let entries = [entry(10, 11, &[("2", Some("eu"))])];
    let (live, _) = replay(&live_base, &entries, 11).unwrap();
    // Same serial or newer: an ordinary reload decides.
    for serial in [11, 12] {
        let export = snapshot(serial, &[("1", "us")]);
        assert!(matches!(
            reconcile(&export, &live, &entries).unwrap(),
            Reconciled::NotOlder
        ));
    }
    // Older than the journal reaches.
    let export = snapshot(9, &[("1", "us")]);
    assert!(matches!(
        reconcile(&export, &live, &entries).unwrap(),
        Reconciled::NotCovered
    ));
    // A journal that does not lead to the serial served (emptied since) covers nothing.
    assert!(matches!(
        reconcile(&live_base, &live, &[]).unwrap(),
        Reconciled::NotCovered
    ));
    let short = [entry(10, 11, &[])];
    let at_12 = live.with_changes(12, []).unwrap();
    assert!(matches!(
        reconcile(&live_base, &at_12, &short).unwrap(),
        Reconciled::NotCovered
    ));
}
