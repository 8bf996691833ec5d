//! Changes applied to a snapshot: recorded in a copy of its overlay, the base tables shared
//! (a change costs what it changes), and folded into new base tables off the query path.

use std::sync::Arc;

use super::clusters::Clusters;
use super::dump::{app_id, strings_error, OUT_OF_MEMORY};
use super::error::EntryError;
use super::overlay::{Overlay, OverlayKey};
use super::{Snapshot, Tables, Zone};
use crate::wire::MAX_LABEL;

/// A snapshot's overlay, clusters and app count after changes.
pub(super) struct Applied {
    pub(super) overlay: Overlay,
    pub(super) clusters: Vec<Box<str>>,
    pub(super) cnames: Vec<Box<[u8]>>,
    pub(super) app_count: usize,
}

/// What a snapshot is made of, borrowed.
pub(super) struct Current<'a> {
    pub(super) tables: &'a Tables,
    pub(super) overlay: &'a Overlay,
    pub(super) clusters: &'a [Box<str>],
    pub(super) cnames: &'a [Box<[u8]>],
    pub(super) app_count: usize,
}

/// `current` with `changes` applied in order: `(app, Some(cluster))` puts an app on a
/// cluster (added or moved), `(app, None)` removes one the zone has. Apps and clusters are
/// checked as a dump's; the error names the first that is not.
pub(super) fn apply_changes<'a>(
    current: Current<'_>,
    zone: &Zone,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Applied, EntryError> {
    let mut clusters = Clusters::new(zone, current.clusters.to_vec(), current.cnames.to_vec());
    let max_app = MAX_LABEL - 1 - zone.longest_service;
    let mut overlay = current.overlay.clone();
    let mut app_count = current.app_count;
    for (app, cluster) in changes {
        let id = app_id(app, max_app)?;
        let cluster = match cluster {
            Some(name) => Some(
                clusters
                    .intern(name)
                    .map_err(|why| format!("app {id}: cluster {name:?} {why}"))?,
            ),
            None => None,
        };
        let key = OverlayKey::of(&id);
        let base = current.tables.get(&key);
        let before = overlay.set(key, cluster, base).unwrap_or(base);
        match (before, cluster) {
            (None, None) => {
                return Err(EntryError(format!(
                    "app {id} is removed but not in the zone"
                )))
            }
            (None, Some(_)) => app_count += 1,
            (Some(_), None) => app_count -= 1,
            (Some(_), Some(_)) => {}
        }
    }
    let (clusters, cnames) = clusters.into_parts();
    Ok(Applied {
        overlay,
        clusters,
        cnames,
        app_count,
    })
}

/// New base tables: `tables` with `overlay` merged in (copies of the tables, changed).
pub(super) fn fold(tables: &Tables, overlay: &Overlay) -> Result<Arc<Tables>, EntryError> {
    let numeric: Vec<(u64, Option<u32>)> = overlay.numeric_entries().collect();
    let named: Vec<(&[u8], Option<u32>)> = overlay.named_entries().collect();
    let numeric_apps = tables
        .numeric_apps
        .with_changes(&numeric)
        .map_err(|_| OUT_OF_MEMORY.to_owned())?;
    let named_apps = tables
        .named_apps
        .with_changes(&named)
        .map_err(|error| strings_error(error, 0))?;
    Ok(Arc::new(Tables {
        numeric_apps,
        named_apps,
    }))
}

/// Base tables with an overlay merged in, from [`Snapshot::fold`]: for
/// [`Snapshot::rebased`].
pub struct Folded {
    from: Arc<Tables>,
    /// The overlay merged in: what may differ between `from` and `tables`.
    overlay: Overlay,
    tables: Arc<Tables>,
}

impl Snapshot {
    /// New base tables with the overlay merged in: a copy of the tables, so slow at scale,
    /// for a thread of its own; the snapshots served meanwhile are untouched.
    pub fn fold(&self) -> Result<Folded, EntryError> {
        Ok(Folded {
            from: Arc::clone(&self.tables),
            overlay: self.overlay.clone(),
            tables: fold(&self.tables, &self.overlay)?,
        })
    }

    /// This snapshot over `folded`'s tables, its overlay only what they do not say yet (the
    /// changes since the fold began); `None` when this snapshot's tables are not the ones
    /// that were folded (a load replaced them meanwhile).
    pub fn rebased(&self, folded: &Folded) -> Option<Self> {
        if !Arc::ptr_eq(&self.tables, &folded.from) {
            return None;
        }
        let mut overlay = self.overlay.clone();
        overlay.rebase(
            &folded.overlay,
            |key| self.tables.get(key),
            |key| folded.tables.get(key),
        );
        Some(Self {
            zone: self.zone.clone(),
            serial: self.serial,
            dump_modified_ms: self.dump_modified_ms,
            soa_answer: self.soa_answer.clone(),
            soa_negative: self.soa_negative.clone(),
            tables: Arc::clone(&folded.tables),
            overlay,
            app_count: self.app_count,
            clusters: self.clusters.clone(),
            cnames: self.cnames.clone(),
        })
    }
}
