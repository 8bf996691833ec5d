//! What each reload changed, kept for IXFR (RFC 1995): for the last `--ixfr-history` serials,
//! the apps whose CNAMEs went or came, and the CNAME records of their clusters then and now.
//! A moved app is in both lists. Nothing refers to a snapshot, so an old one is freed as soon
//! as nothing serves it.

use std::collections::VecDeque;
use std::sync::Arc;

use fxhash::FxHashMap;

use super::message::{target_suffixes, Suffix};
use crate::journal::Entry;
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::{expand_target, AppKey, Snapshot, Zone};
use crate::wire::name::name_to_wire;
use crate::wire::record::push_record_tail;
use crate::wire::{Class, Rtype};

/// An app ID held by a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedKey {
    Numeric(u64),
    Named(Box<[u8]>),
}

impl OwnedKey {
    fn new(key: AppKey<'_>) -> Self {
        match key {
            AppKey::Numeric(id) => Self::Numeric(id),
            AppKey::Named(id) => Self::Named(id.into()),
        }
    }

    pub fn key(&self) -> AppKey<'_> {
        match self {
            Self::Numeric(id) => AppKey::Numeric(*id),
            Self::Named(id) => AppKey::Named(id),
        }
    }
}

/// The CNAME records of one side of a delta: per cluster and service, as the snapshot had
/// them, with where their targets point into the apex.
#[derive(Debug)]
pub struct Side {
    /// Apps and their cluster, indexing `cnames` by `cluster * services + service`.
    pub apps: Vec<(OwnedKey, u32)>,
    pub cnames: Vec<Option<Box<[u8]>>>,
    pub(super) suffixes: Vec<Option<Suffix>>,
}

impl Side {
    fn of(snapshot: &Snapshot) -> Self {
        let services = snapshot.zone.services.len();
        let records = || {
            (0..snapshot.cluster_count() * services)
                .map(|i| snapshot.cname_record((i / services) as u32, i % services))
        };
        Self {
            apps: Vec::new(),
            cnames: records().map(|record| record.map(Box::from)).collect(),
            suffixes: target_suffixes(records(), &snapshot.zone.apex),
        }
    }

    /// No apps yet, and the CNAME records of `clusters` (lower-case names) in `zone`; a
    /// name that makes no target has none.
    fn of_clusters(zone: &Zone, clusters: &[&str]) -> Self {
        let mut cnames = Vec::with_capacity(clusters.len() * zone.services.len());
        for cluster in clusters {
            for service in &zone.services {
                let service = std::str::from_utf8(service).unwrap_or_default();
                let target = expand_target(&zone.target_template, service, cluster);
                cnames.push(name_to_wire(&target).ok().map(|wire| {
                    let mut record = Vec::new();
                    push_record_tail(
                        &mut record,
                        Rtype::CNAME,
                        Class::IN,
                        zone.cname_ttl,
                        &[&wire],
                    );
                    record.into_boxed_slice()
                }));
            }
        }
        let suffixes = target_suffixes(cnames.iter().map(Option::as_deref), &zone.apex);
        Self {
            apps: Vec::new(),
            cnames,
            suffixes,
        }
    }

    /// The CNAME record of `service` on `cluster`.
    pub fn cname(&self, cluster: u32, service: usize, services: usize) -> Option<&[u8]> {
        self.cnames
            .get(cluster as usize * services + service)?
            .as_deref()
    }
}

/// One reload's change of the zone, from serial `from` to `to`.
#[derive(Debug)]
pub struct Delta {
    pub from: u32,
    pub to: u32,
    pub removed: Side,
    pub added: Side,
}

impl Delta {
    /// The difference from `old` to `new`: one lookup in `old` per app of `new`, and one in
    /// `new` per app of `old`.
    pub fn between(old: &Snapshot, new: &Snapshot) -> Self {
        let (mut removed, mut added) = (Side::of(old), Side::of(new));
        // Cluster indexes differ between snapshots: map new ones to old ones once.
        let to_old: Vec<Option<u32>> = (0..new.cluster_count() as u32)
            .map(|i| {
                let name = new.cluster_name(i);
                (0..old.cluster_count() as u32).find(|&j| old.cluster_name(j) == name)
            })
            .collect();
        for (app, cluster) in new.app_entries() {
            match old.cluster_of(app) {
                None => added.apps.push((OwnedKey::new(app), cluster)),
                Some(before) if to_old[cluster as usize] != Some(before) => {
                    removed.apps.push((OwnedKey::new(app), before));
                    added.apps.push((OwnedKey::new(app), cluster));
                }
                Some(_) => {}
            }
        }
        for (app, cluster) in old.app_entries() {
            if new.cluster_of(app).is_none() {
                removed.apps.push((OwnedKey::new(app), cluster));
            }
        }
        Self {
            from: old.serial,
            to: new.serial,
            removed,
            added,
        }
    }

    /// The difference from `old` to `new` among `apps` (lower-case IDs), the only ones that
    /// changed: what an applied IXFR knows without walking the zone.
    pub fn among<'a>(
        old: &Snapshot,
        new: &Snapshot,
        apps: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let (mut removed, mut added) = (Side::of(old), Side::of(new));
        for app in apps {
            let key = AppKey::new(app.as_bytes());
            let (before, after) = (old.cluster_of(key), new.cluster_of(key));
            let same = match (before, after) {
                (Some(before), Some(after)) => old.cluster_name(before) == new.cluster_name(after),
                _ => false,
            };
            if same {
                continue;
            }
            if let Some(before) = before {
                removed.apps.push((OwnedKey::new(key), before));
            }
            if let Some(after) = after {
                added.apps.push((OwnedKey::new(key), after));
            }
        }
        Self {
            from: old.serial,
            to: new.serial,
            removed,
            added,
        }
    }

    /// The difference from serial `from` to `current`, condensed from the journal's
    /// `records` (every record after `from`, the first starting at it): per app, its
    /// cluster before the first record that touches it and in `current` (RFC 1995 §4
    /// allows a condensed difference).
    pub fn from_journal(from: u32, current: &Snapshot, records: &[Entry]) -> Self {
        let mut first_before: FxHashMap<&str, Option<&str>> = FxHashMap::default();
        let mut order: Vec<&str> = Vec::new();
        for change in records.iter().flat_map(|record| &record.changes) {
            first_before.entry(&change.app).or_insert_with(|| {
                order.push(&change.app);
                change.before.as_deref()
            });
        }
        let zone = &current.zone;
        // The clusters apps left, by name: one may be gone from the zone now.
        let mut old_names: Vec<&str> = Vec::new();
        let mut removed_apps = Vec::new();
        let mut added = Side::of(current);
        for app in order {
            let key = AppKey::new(app.as_bytes());
            let now = current.cluster_of(key);
            let before = first_before[app];
            if before.is_some() && before == now.and_then(|c| current.cluster_name(c)) {
                continue;
            }
            if let Some(before) = before {
                let index = old_names
                    .iter()
                    .position(|n| *n == before)
                    .unwrap_or_else(|| {
                        old_names.push(before);
                        old_names.len() - 1
                    });
                removed_apps.push((OwnedKey::new(key), index as u32));
            }
            if let Some(now) = now {
                added.apps.push((OwnedKey::new(key), now));
            }
        }
        let mut removed = Side::of_clusters(zone, &old_names);
        removed.apps = removed_apps;
        Self {
            from,
            to: current.serial,
            removed,
            added,
        }
    }

    /// Heap bytes held, roughly: what `--ixfr-history` costs.
    pub fn heap_bytes(&self) -> usize {
        [&self.removed, &self.added]
            .iter()
            .map(|side| {
                let names: usize = side
                    .apps
                    .iter()
                    .map(|(key, _)| match key {
                        OwnedKey::Named(id) => id.len(),
                        OwnedKey::Numeric(_) => 0,
                    })
                    .sum();
                let records: usize = side.cnames.iter().flatten().map(|r| r.len()).sum();
                side.apps.capacity() * size_of::<(OwnedKey, u32)>() + names + records
            })
            .sum()
    }
}

/// The deltas of the last reloads, oldest first, each one's `to` the next one's `from`.
#[derive(Debug)]
pub struct History {
    deltas: VecDeque<Arc<Delta>>,
    limit: usize,
}

impl History {
    /// A history of at most `limit` deltas (0: none kept, IXFR always answered in full).
    pub fn new(limit: usize) -> Self {
        Self {
            deltas: VecDeque::new(),
            limit,
        }
    }

    /// Whether deltas are kept at all.
    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Adds the newest delta, forgetting the oldest beyond the limit. A delta that does not
    /// continue the chain (a forced reload to an older serial) starts it again.
    pub fn push(&mut self, delta: Delta) {
        if self.limit == 0 {
            return;
        }
        let continues = self
            .deltas
            .back()
            .map_or(true, |last| last.to == delta.from);
        if !continues || !serial_is_newer(delta.to, delta.from) {
            self.deltas.clear();
            if !serial_is_newer(delta.to, delta.from) {
                return;
            }
        }
        // A serial seen again inside the history would make the path ambiguous.
        while self
            .deltas
            .iter()
            .any(|d| d.from == delta.to || d.to == delta.to)
        {
            self.deltas.pop_front();
        }
        self.deltas.push_back(Arc::new(delta));
        while self.deltas.len() > self.limit {
            self.deltas.pop_front();
        }
    }

    /// Forgets every delta: the zone changed in a way no difference describes.
    pub fn clear(&mut self) {
        self.deltas.clear();
    }

    /// The deltas from `serial` to `current`, in order; `None` when `serial` is not in the
    /// history (too old, or never served), and empty when it is `current`.
    pub fn path(&self, serial: u32, current: u32) -> Option<Vec<Arc<Delta>>> {
        if serial == current {
            return Some(Vec::new());
        }
        let start = self.deltas.iter().position(|d| d.from == serial)?;
        let mut path = Vec::new();
        for delta in self.deltas.iter().skip(start) {
            path.push(Arc::clone(delta));
            if delta.to == current {
                return Some(path);
            }
        }
        None
    }

    /// Deltas kept, and their heap bytes.
    pub fn size(&self) -> (usize, usize) {
        let bytes = self.deltas.iter().map(|d| d.heap_bytes()).sum();
        (self.deltas.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(serial: u32, apps: &[(&str, &str)]) -> Snapshot {
        let zone = crate::testing::zone();
        Snapshot::from_apps(serial, apps.iter().copied(), &zone).unwrap()
    }

    fn apps(side: &Side) -> Vec<(String, String)> {
        let mut apps: Vec<_> = side
            .apps
            .iter()
            .map(|(key, cluster)| {
                let id = match key.key() {
                    AppKey::Numeric(id) => id.to_string(),
                    AppKey::Named(id) => String::from_utf8_lossy(id).into_owned(),
                };
                let services = crate::testing::zone().services.len();
                let target = side.cname(*cluster, 0, services).unwrap();
                (id, String::from_utf8_lossy(&target[10..]).into_owned())
            })
            .collect();
        apps.sort();
        apps
    }

    #[test]
    fn a_delta_holds_exactly_what_changed() {
        let old = snapshot(1, &[("1", "eu"), ("2", "eu"), ("3", "us"), ("app-x", "us")]);
        // 1 stays, 2 moves, 3 goes, app-x moves, 4 and app-y come; "mt9" is a new cluster
        // that reorders the indexes.
        let new = snapshot(
            2,
            &[
                ("1", "eu"),
                ("2", "mt9"),
                ("app-x", "eu"),
                ("4", "us"),
                ("app-y", "mt9"),
            ],
        );
        let delta = Delta::between(&old, &new);
        assert_eq!((delta.from, delta.to), (1, 2));
        let name = |id: &str, cluster: &str| {
            let label = format!("ws-{cluster}");
            let target = format!("{}{label}\x07example\x03com\x00", label.len() as u8 as char);
            (id.to_string(), target)
        };
        assert_eq!(
            apps(&delta.removed),
            [name("2", "eu"), name("3", "us"), name("app-x", "us")]
        );
        assert_eq!(
            apps(&delta.added),
            [
                name("2", "mt9"),
                name("4", "us"),
                name("app-x", "eu"),
                name("app-y", "mt9")
            ]
        );
        assert!(delta.heap_bytes() > 0);
        // Told which apps changed (and one that did not), the same delta.
        let among = Delta::among(&old, &new, ["1", "2", "3", "app-x", "4", "app-y"]);
        assert_eq!(apps(&among.removed), apps(&delta.removed));
        assert_eq!(apps(&among.added), apps(&delta.added));
    }

    #[test]
    fn paths_through_the_history() {
        let s = |serial| snapshot(serial, &[("1", "eu")]);
        let mut history = History::new(3);
        for serial in 1..=5u32 {
            history.push(Delta::between(&s(serial), &s(serial + 1)));
        }
        // Kept: 3->4, 4->5, 5->6.
        assert_eq!(history.size().0, 3);
        let serials = |path: Vec<Arc<Delta>>| path.iter().map(|d| d.to).collect::<Vec<_>>();
        assert_eq!(history.path(6, 6).map(serials), Some(vec![]));
        assert_eq!(history.path(3, 6).map(serials), Some(vec![4, 5, 6]));
        assert_eq!(history.path(4, 5).map(serials), Some(vec![5]));
        assert!(history.path(2, 6).is_none(), "too old");
        assert!(history.path(7, 6).is_none(), "never served");
        // A forced reload back to serial 4 starts again.
        history.push(Delta::between(&s(6), &s(4)));
        assert_eq!(history.size().0, 0);
        assert!(history.path(3, 4).is_none());
        history.push(Delta::between(&s(4), &s(5)));
        assert_eq!(history.path(4, 5).map(serials), Some(vec![5]));
        let mut off = History::new(0);
        off.push(Delta::between(&s(1), &s(2)));
        assert!(off.path(1, 2).is_none());
    }
}
