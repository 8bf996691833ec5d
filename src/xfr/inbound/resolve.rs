//! An incremental transfer's records resolved against the snapshot served: which apps it
//! moves, adds and removes, refused if a record does not fit (RFC 1995 §4).

use fxhash::FxHashMap;

use super::reader::{Change, ReadError};
use crate::snapshot::guard::Difference;
use crate::snapshot::{AppKey, Snapshot};
use crate::wire::name::wire_to_text;

/// An incremental transfer's records turned into per-app changes against `snapshot`.
#[derive(Debug)]
pub struct Resolved {
    /// Apps whose cluster changed: the new one, `None` when the app went.
    pub changes: Vec<(Box<str>, Option<Box<str>>)>,
    pub difference: Difference,
}

/// Applies `changes` record by record to the apps they touch, as `snapshot` has them: a
/// deleted record must be there, an added one must not clash, and every app must end with a
/// CNAME per service on one cluster, or none. The error names the first that does not.
pub fn resolve(snapshot: &Snapshot, changes: &[Change]) -> Result<Resolved, ReadError> {
    let zone = &snapshot.zone;
    let services = zone.services.len();
    // App -> (cluster before, cluster per service now).
    type State = (Option<Box<str>>, Vec<Option<Box<str>>>);
    let mut states: FxHashMap<&str, State> = FxHashMap::default();
    let record = |change: &Change| {
        format!(
            "{}-{}.{} -> cluster {}",
            String::from_utf8_lossy(&zone.services[change.service]),
            change.app,
            wire_to_text(&zone.apex),
            change.cluster
        )
    };
    for change in changes {
        let (_, now) = states.entry(&change.app).or_insert_with(|| {
            let before = snapshot
                .cluster_of(AppKey::new(change.app.as_bytes()))
                .and_then(|index| snapshot.cluster_name(index))
                .map(Box::from);
            (before.clone(), vec![before; services])
        });
        let slot = &mut now[change.service];
        match (change.added, slot.as_deref()) {
            (false, Some(cluster)) if cluster == &*change.cluster => *slot = None,
            (false, _) => {
                return Err(format!(
                    "the difference deletes {}, which the zone does not have",
                    record(change)
                )
                .into())
            }
            (true, None) => *slot = Some(change.cluster.clone()),
            (true, Some(cluster)) if cluster == &*change.cluster => {}
            (true, Some(cluster)) => {
                return Err(format!(
                    "the difference adds {} beside the one to {cluster}",
                    record(change)
                )
                .into())
            }
        }
    }
    let mut resolved = Resolved {
        changes: Vec::new(),
        difference: Difference::default(),
    };
    for (app, (before, now)) in states {
        let after = match &now[..] {
            [first, rest @ ..] if rest.iter().all(|other| other == first) => first.clone(),
            _ => {
                return Err(format!(
                    "app {app} would have CNAMEs for some services only, or on two clusters"
                )
                .into())
            }
        };
        match (&before, &after) {
            (None, None) => continue,
            (Some(old), Some(new)) if old == new => continue,
            (None, Some(_)) => resolved.difference.added += 1,
            (Some(_), None) => resolved.difference.removed += 1,
            (Some(_), Some(_)) => resolved.difference.moved += 1,
        }
        resolved.changes.push((app.into(), after));
    }
    Ok(resolved)
}
