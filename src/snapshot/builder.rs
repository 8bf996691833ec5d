//! A snapshot built app by app, as the dump loader builds one: each entry checked and pushed
//! into the tables' builders (16 bytes a numeric app, its bytes a string one), the tables
//! built once at the end. A zone transferred in comes this way, so a secondary's cold start
//! costs what a dump load costs, not a map of strings per app.

use super::dump::AppsBuilder;
use super::{EntryError, Snapshot, Zone};

/// Apps collected for one snapshot of `zone`.
pub struct SnapshotBuilder<'z> {
    zone: &'z Zone,
    apps: AppsBuilder<'z>,
}

impl<'z> SnapshotBuilder<'z> {
    pub fn new(zone: &'z Zone) -> Self {
        Self {
            zone,
            apps: AppsBuilder::new(zone),
        }
    }

    /// Adds `app` on `cluster`, both checked as a dump's entries are; the error names the
    /// app. A duplicate is found by [`Self::finish`].
    pub fn add(&mut self, app: &str, cluster: &str) -> Result<(), EntryError> {
        self.apps.add(app, cluster)
    }

    /// The index of cluster `name`, checked as a dump's clusters are: for
    /// [`Self::add_on`], which then costs no lookup of the name.
    pub fn cluster(&mut self, name: &str) -> Result<u32, EntryError> {
        self.apps.cluster(name)
    }

    /// The name of cluster `index`.
    pub fn cluster_name(&self, index: u32) -> Option<&str> {
        self.apps.cluster_name(index)
    }

    /// Adds `app` on the cluster of index `cluster`.
    pub fn add_on(&mut self, app: &str, cluster: u32) -> Result<(), EntryError> {
        self.apps.add_on(app, cluster)
    }

    /// Adds app `app`, a label already checked as a hostname label (any case) that is not a
    /// number, on the cluster of index `cluster`.
    pub fn add_checked_label(&mut self, app: &[u8], cluster: u32) -> Result<(), EntryError> {
        self.apps.add_checked_label(app, cluster)
    }

    /// Adds the app whose ID is the decimal form of `id` (no leading zero) on the cluster
    /// of index `cluster`.
    pub fn add_numeric(&mut self, id: u64, cluster: u32) -> Result<(), EntryError> {
        self.apps.add_numeric(id, cluster)
    }

    /// The snapshot at `serial`; the error names a duplicate app.
    pub fn finish(self, serial: u32) -> Result<Snapshot, EntryError> {
        let mut parsed = self.apps.finish()?;
        parsed.serial = serial;
        Ok(Snapshot::from_parsed(parsed, self.zone))
    }
}
