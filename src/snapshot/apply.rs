//! A snapshot's maps with a zone transfer's difference (IXFR) applied: copied, not rebuilt.

use fxhash::FxHashMap;

use super::clusters::Clusters;
use super::dump::{app_id, strings_error, OwnedAppId, Parsed, OUT_OF_MEMORY};
use super::error::EntryError;
use super::strings::StringTable;
use super::table::NumericTable;
use super::zone::Zone;
use crate::wire::MAX_LABEL;

/// A snapshot's maps, borrowed.
pub(super) struct Base<'a> {
    pub(super) numeric_apps: &'a NumericTable,
    pub(super) named_apps: &'a StringTable,
    pub(super) clusters: &'a [Box<str>],
    pub(super) cnames: &'a [Box<[u8]>],
}

/// The maps of `base` with `changes` applied in order: `(app, Some(cluster))` puts an app on
/// a cluster (added or moved), `(app, None)` removes one the zone has. Apps and clusters are
/// checked as a dump's; the error names the first that is not. The maps are copied, not
/// rebuilt: for a zone transfer's difference (IXFR).
pub(super) fn apply_changes<'a>(
    base: Base<'_>,
    zone: &Zone,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Parsed, EntryError> {
    let mut clusters = Clusters::new(zone, base.clusters.to_vec(), base.cnames.to_vec());
    let max_app = MAX_LABEL - 1 - zone.longest_service;
    let mut numeric: FxHashMap<u64, Option<u32>> = FxHashMap::default();
    // The string IDs' changes in order, and the state so far of each one changed.
    let mut named: Vec<(Box<[u8]>, Option<u32>)> = Vec::new();
    let mut named_now: FxHashMap<Box<[u8]>, Option<u32>> = FxHashMap::default();
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
        let missing = || EntryError(format!("app {id} is removed but not in the zone"));
        match (&id, cluster) {
            (OwnedAppId::Numeric(number), _) => {
                // A removal is checked against the state so far: earlier changes of the same
                // app, else the base.
                if cluster.is_none() {
                    let present = match numeric.get(number) {
                        Some(earlier) => earlier.is_some(),
                        None => base.numeric_apps.get(*number).is_some(),
                    };
                    if !present {
                        return Err(missing());
                    }
                }
                numeric.insert(*number, cluster);
            }
            (OwnedAppId::Named { bytes, len }, _) => {
                let name: Box<[u8]> = bytes[..usize::from(*len)].into();
                if cluster.is_none() {
                    let present = match named_now.get(&name) {
                        Some(earlier) => earlier.is_some(),
                        None => base.named_apps.get(&name).is_some(),
                    };
                    if !present {
                        return Err(missing());
                    }
                }
                named_now.insert(name.clone(), cluster);
                named.push((name, cluster));
            }
        }
    }
    let numeric: Vec<_> = numeric.into_iter().collect();
    let named: Vec<(&[u8], Option<u32>)> = named.iter().map(|(id, c)| (&**id, *c)).collect();
    let named = base
        .named_apps
        .with_changes(&named)
        .map_err(|error| strings_error(error, 0))?;
    let numeric_apps = base
        .numeric_apps
        .with_changes(&numeric)
        .map_err(|_| OUT_OF_MEMORY.to_owned())?;
    let (names, cnames) = clusters.into_parts();
    Ok(Parsed {
        serial: 0,
        numeric_apps,
        named_apps: named,
        clusters: names,
        cnames,
    })
}
