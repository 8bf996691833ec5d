//! A primary's reloads and its journal (`--journal`): a full export never undoes an UPDATE.
//!
//! - An export older than the zone served (its serial S lower, RFC 1982) whose changes after
//!   S the journal holds is reconciled: the export with the journal's records after S
//!   replayed on top ([`crate::journal::replay::reconcile`]). The same apps as served:
//!   `unchanged`. Else the result goes through the guard rails at the served serial + 1,
//!   and the record that leads to it is journaled before it is served, so that a restart
//!   (the dump plus the journal) does not roll it back.
//! - Any other dump put in service supersedes every record: the journal is emptied before
//!   the swap, so that a restart does not replay them on it.
//!
//! A secondary's journal holds the differences (IXFR) its primaries sent, each appended
//! before it is served ([`crate::journal::replay::record_of`]); a whole zone (AXFR) empties it
//! and is written as the dump. A restart is the dump (or the newer checkpoint) plus the
//! journal, then an IXFR for what is newer.

use std::sync::PoisonError;

use super::reloaded::ReloadError;
use super::running::{Loaded, Reloader};
use crate::journal::replay::{reconcile, Reconciled};
use crate::journal::{Change, Entry};
use crate::snapshot::guard::Difference;
use crate::snapshot::{AppKey, Snapshot};

impl Reloader {
    /// Reconciles a dump older than `live` with the journal, in `loaded`: the snapshot to
    /// install (none: nothing changes) and the record to journal. Returns the difference
    /// from `live` when it did, `None` when the dump is an ordinary reload.
    pub(super) fn reconcile(
        &self,
        live: &Snapshot,
        loaded: &mut Loaded,
    ) -> Result<Option<Difference>, ReloadError> {
        let (Some(journal), Some(export)) = (&self.journal, &loaded.snapshot) else {
            return Ok(None);
        };
        if loaded.transfer.is_some() {
            return Ok(None);
        }
        let entries = journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries()
            .map_err(|error| ReloadError::Journal(format!("cannot read it: {error}")))?;
        let export_serial = export.serial;
        let reconciled = reconcile(export, live, &entries).map_err(|error| {
            ReloadError::Journal(format!(
                "cannot replay it on the dump of serial {export_serial}: {error}"
            ))
        })?;
        let Reconciled::Replayed {
            snapshot,
            record,
            records,
        } = reconciled
        else {
            return Ok(None);
        };
        loaded.replayed = Some((export_serial, records));
        let Some(record) = record else {
            loaded.snapshot = None;
            return Ok(Some(Difference::default()));
        };
        let difference = difference_of(live, &record.changes);
        loaded.snapshot = Some(*snapshot);
        loaded.record = Some(record);
        Ok(Some(difference))
    }

    /// Before a new snapshot is swapped in: journals the record of a reconciled reload, or
    /// empties the journal for any other dump (it supersedes every record).
    pub(super) fn journal_install(&self, record: Option<&Entry>) -> Result<(), ReloadError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut journal = journal.lock().unwrap_or_else(PoisonError::into_inner);
        let written = match record {
            Some(record) => journal.append(std::slice::from_ref(record)),
            None => journal.reset(),
        };
        if let Some(updates) = &self.shared.updates {
            super::update::journal_facts(&journal, &updates.stats);
        }
        written.map_err(|error| ReloadError::Journal(format!("cannot write it: {error}")))
    }
}

/// The apps added, removed and moved by `changes` from `live`.
fn difference_of(live: &Snapshot, changes: &[Change]) -> Difference {
    let mut difference = Difference::default();
    for change in changes {
        let was = live.cluster_of(AppKey::new(change.app.as_bytes()));
        match (was, &change.cluster) {
            (None, Some(_)) => difference.added += 1,
            (Some(_), None) => difference.removed += 1,
            (Some(_), Some(_)) => difference.moved += 1,
            (None, None) => {}
        }
    }
    difference
}
