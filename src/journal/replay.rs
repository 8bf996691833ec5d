//! What the journal's records make of a dump: pure functions of snapshots and records, for a
//! start (the dump plus the records after its serial) and for a reload of an export older
//! than the zone served (the export plus the records after its serial, so that a full export
//! never undoes an acknowledged UPDATE).

use std::fmt;

use fxhash::FxHashMap;

use super::{Change, Entry};
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::{AppKey, EntryError, Snapshot};

/// The journal starts after a serial: the changes between are in neither the snapshot at
/// that serial nor the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub serial: u32,
    /// The serial the journal's first record applies to.
    pub journal_from: u32,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the journal starts at serial {}, after serial {}: the changes between are in neither",
            self.journal_from, self.serial
        )
    }
}

/// The records a snapshot at `serial` lacks: those after it (RFC 1982). Records are in
/// serial order, each applying to the serial of the one before.
pub fn after(entries: &[Entry], serial: u32) -> Result<&[Entry], Gap> {
    let Some(first) = entries
        .iter()
        .position(|entry| serial_is_newer(entry.serial, serial))
    else {
        return Ok(&[]);
    };
    let from = entries[first].previous;
    if from != serial && !serial_is_newer(serial, from) {
        return Err(Gap {
            serial,
            journal_from: from,
        });
    }
    Ok(&entries[first..])
}

/// `snapshot` with the changes of `entries` applied, at `serial`: one change per app, its
/// last state. Returns the snapshot and how many app changes it applied.
pub fn replay(
    snapshot: &Snapshot,
    entries: &[Entry],
    serial: u32,
) -> Result<(Snapshot, usize), EntryError> {
    // App -> its last state, in the order first changed.
    let mut order: Vec<&str> = Vec::new();
    let mut state: FxHashMap<&str, Option<&str>> = FxHashMap::default();
    for change in entries.iter().flat_map(|entry| &entry.changes) {
        if state
            .insert(&change.app, change.cluster.as_deref())
            .is_none()
        {
            order.push(&change.app);
        }
    }
    let changes: Vec<(&str, Option<&str>)> = order
        .iter()
        .map(|app| (*app, state[app]))
        // An app the snapshot does not have and the journal removes: nothing to remove.
        .filter(|(app, cluster)| {
            cluster.is_some() || snapshot.cluster_of(AppKey::new(app.as_bytes())).is_some()
        })
        .collect();
    let replayed = snapshot.with_changes(serial, changes.iter().copied())?;
    Ok((replayed, changes.len()))
}

/// Every app whose cluster differs from `old` to `new` (added, moved or removed), with its
/// state in both: the record that leads from one to the other. Walks both zones.
pub fn changes_between(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let text = |key: AppKey<'_>| -> Box<str> {
        match key {
            AppKey::Numeric(id) => id.to_string().into(),
            AppKey::Named(id) => String::from_utf8_lossy(id).into(),
        }
    };
    let mut changes = Vec::new();
    for (app, cluster) in new.app_entries() {
        let now = new.cluster_name(cluster);
        let before = old.cluster_name_of(app);
        if before != now {
            changes.push(Change {
                app: text(app),
                before: before.map(Into::into),
                cluster: now.map(Into::into),
            });
        }
    }
    for (app, cluster) in old.app_entries() {
        if new.cluster_of(app).is_none() {
            changes.push(Change {
                app: text(app),
                before: old.cluster_name(cluster).map(Into::into),
                cluster: None,
            });
        }
    }
    changes
}

/// The record of a difference (`changes`: each app's cluster now, `None` when it went) that
/// takes `live` to `new`, with each app's cluster before: a secondary journals what its
/// primary sent.
pub fn record_of(
    live: &Snapshot,
    new: &Snapshot,
    changes: &[(Box<str>, Option<Box<str>>)],
) -> Entry {
    let changes = changes
        .iter()
        .map(|(app, cluster)| Change {
            app: app.clone(),
            before: live
                .cluster_name_of(AppKey::new(app.as_bytes()))
                .map(Into::into),
            cluster: cluster.clone(),
        })
        .collect();
    Entry {
        previous: live.serial,
        serial: new.serial,
        changes,
    }
}

/// A reload of an export against the zone served and the journal.
#[derive(Debug)]
pub enum Reconciled {
    /// The export's serial is not older than the zone's: an ordinary reload.
    NotOlder,
    /// The journal does not hold every change from the export's serial to the zone's.
    NotCovered,
    /// The export with the journal's records after its serial replayed, at the zone's
    /// serial + 1, and the record that leads from the zone to it (`None`: the same apps on
    /// the same clusters, nothing to install).
    Replayed {
        snapshot: Box<Snapshot>,
        record: Option<Entry>,
        /// Journal records replayed on the export.
        records: usize,
    },
}

/// Reconciles `export` with the zone `live` and the journal's `entries`. Where the export
/// and a record after its serial disagree, the record wins: it is newer.
pub fn reconcile(
    export: &Snapshot,
    live: &Snapshot,
    entries: &[Entry],
) -> Result<Reconciled, EntryError> {
    if !serial_is_newer(live.serial, export.serial) {
        return Ok(Reconciled::NotOlder);
    }
    let newer = match after(entries, export.serial) {
        Ok(newer) if newer.last().map(|e| e.serial) == Some(live.serial) => newer,
        _ => return Ok(Reconciled::NotCovered),
    };
    let serial = live.serial.wrapping_add(1);
    let (snapshot, _) = replay(export, newer, serial)?;
    let changes = changes_between(live, &snapshot);
    let record = (!changes.is_empty()).then_some(Entry {
        previous: live.serial,
        serial,
        changes,
    });
    Ok(Reconciled::Replayed {
        snapshot: Box::new(snapshot),
        record,
        records: newer.len(),
    })
}

#[cfg(test)]
mod tests;
