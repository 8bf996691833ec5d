//! Recent changes over a snapshot's base tables: what a zone transfer's difference or an
//! UPDATE changed since the tables were built, so that a change costs what it changes and
//! not a copy of the tables.
//!
//! An overlay maps app IDs to their state now: on a cluster, or gone. A lookup asks the
//! overlay first, then the base. Overlays are small (a fold merges one into new base tables
//! once it passes `FOLD_AT` entries) and their entries are plain data; the next version
//! shares the older changes and copies only the recent ones (two layers, see [`Overlay`]).
//! An entry that says what the base says is not kept.

use std::sync::Arc;

use fxhash::FxHashMap;

use super::dump::OwnedAppId;
use crate::wire::name::fold_label;
use crate::wire::MAX_LABEL;

/// Entries past which an overlay should be folded into new base tables. Each change copies
/// the recent layer (at most `RECENT_MAX` entries); a fold copies the base tables.
pub const FOLD_AT: usize = 100_000;

/// A string app ID in lower case, inline: an overlay entry allocates nothing of its own.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct NamedId {
    len: u8,
    /// Zero past `len`, so that equal IDs are equal arrays.
    bytes: [u8; MAX_LABEL],
}

impl NamedId {
    /// The ID `id` in lower case; `None` if it is longer than a label.
    pub(super) fn fold(id: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_LABEL];
        let len = fold_label(id, &mut bytes)?.len();
        Some(Self {
            len: len as u8,
            bytes,
        })
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Changes over the base: each app's cluster now, `None` when it went. Two layers, so that
/// a change does not copy every earlier one: `settled` is shared by every version made since
/// it was last merged, `recent` (at most [`RECENT_MAX`] entries) is copied with each new
/// version, and merged into a new `settled` when full: a change copies a few thousand
/// entries, and all of them once every `RECENT_MAX` changes.
#[derive(Clone, Default, Debug)]
pub(super) struct Overlay {
    settled: Arc<Layer<Option<u32>>>,
    /// `None`: as the base says (hides what `settled` says).
    recent: Layer<Option<Option<u32>>>,
    /// Entries that differ from the base, over both layers.
    len: usize,
}

/// One layer of an overlay.
#[derive(Clone, Debug)]
struct Layer<T> {
    numeric: FxHashMap<u64, T>,
    named: FxHashMap<NamedId, T>,
}

impl<T> Default for Layer<T> {
    fn default() -> Self {
        Self {
            numeric: FxHashMap::default(),
            named: FxHashMap::default(),
        }
    }
}

impl<T> Layer<T> {
    fn len(&self) -> usize {
        self.numeric.len() + self.named.len()
    }
}

/// Entries of `recent` past which it is merged into `settled`.
const RECENT_MAX: usize = 4096;

impl std::fmt::Debug for NamedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// An app ID as an overlay keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OverlayKey {
    Numeric(u64),
    Named(NamedId),
}

impl OverlayKey {
    pub(super) fn of(id: &OwnedAppId) -> Self {
        match id {
            OwnedAppId::Numeric(number) => Self::Numeric(*number),
            OwnedAppId::Named { bytes, len } => {
                let mut inline = [0u8; MAX_LABEL];
                inline[..usize::from(*len)].copy_from_slice(&bytes[..usize::from(*len)]);
                Self::Named(NamedId {
                    len: *len,
                    bytes: inline,
                })
            }
        }
    }
}

impl Overlay {
    /// Entries that differ from the base.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The state of numeric app `id`, if the overlay changed it: `Some(None)` when it went.
    #[inline]
    pub(super) fn numeric(&self, id: u64) -> Option<Option<u32>> {
        if !self.recent.numeric.is_empty() {
            if let Some(&state) = self.recent.numeric.get(&id) {
                return state;
            }
        }
        self.settled.numeric.get(&id).copied()
    }

    /// The state of string app `id` (any case), if the overlay changed it.
    pub(super) fn named(&self, id: &[u8]) -> Option<Option<u32>> {
        if self.recent.named.is_empty() && self.settled.named.is_empty() {
            return None;
        }
        self.get(&OverlayKey::Named(NamedId::fold(id)?))
    }

    pub(super) fn get(&self, key: &OverlayKey) -> Option<Option<u32>> {
        match key {
            OverlayKey::Numeric(id) => self.numeric(*id),
            OverlayKey::Named(id) => match self.recent.named.get(id) {
                Some(&state) => state,
                None => self.settled.named.get(id).copied(),
            },
        }
    }

    /// Records `key`'s state; `base` is what the base tables say, and an entry equal to it
    /// is not kept.
    pub(super) fn set(&mut self, key: OverlayKey, state: Option<u32>, base: Option<u32>) {
        let was_changed = self.get(&key).is_some();
        let changed = state != base;
        let in_settled = match key {
            OverlayKey::Numeric(id) => self.settled.numeric.contains_key(&id),
            OverlayKey::Named(id) => self.settled.named.contains_key(&id),
        };
        // As the base, with nothing settled to hide: no entry at all.
        let entry = match (changed, in_settled) {
            (true, _) => Some(Some(state)),
            (false, true) => Some(None),
            (false, false) => None,
        };
        match (key, entry) {
            (OverlayKey::Numeric(id), Some(entry)) => drop(self.recent.numeric.insert(id, entry)),
            (OverlayKey::Numeric(id), None) => drop(self.recent.numeric.remove(&id)),
            (OverlayKey::Named(id), Some(entry)) => drop(self.recent.named.insert(id, entry)),
            (OverlayKey::Named(id), None) => drop(self.recent.named.remove(&id)),
        }
        self.len = self.len + usize::from(changed) - usize::from(was_changed);
        if self.recent.len() > RECENT_MAX {
            self.settle();
        }
    }

    /// Merges `recent` into a new `settled`.
    fn settle(&mut self) {
        let mut settled = Layer::clone(&self.settled);
        for (id, entry) in self.recent.numeric.drain() {
            match entry {
                Some(state) => drop(settled.numeric.insert(id, state)),
                None => drop(settled.numeric.remove(&id)),
            }
        }
        for (id, entry) in self.recent.named.drain() {
            match entry {
                Some(state) => drop(settled.named.insert(id, state)),
                None => drop(settled.named.remove(&id)),
            }
        }
        self.settled = Arc::new(settled);
    }

    /// Every numeric entry: the app and its state.
    pub(super) fn numeric_entries(&self) -> impl Iterator<Item = (u64, Option<u32>)> + '_ {
        let recent = &self.recent.numeric;
        let settled = self
            .settled
            .numeric
            .iter()
            .filter(move |(id, _)| !recent.contains_key(id))
            .map(|(&id, &state)| (id, state));
        settled.chain(recent.iter().filter_map(|(&id, &entry)| Some((id, entry?))))
    }

    /// Every string entry: the app (lower case) and its state.
    pub(super) fn named_entries(&self) -> impl Iterator<Item = (&[u8], Option<u32>)> + '_ {
        let recent = &self.recent.named;
        let settled = self
            .settled
            .named
            .iter()
            .filter(move |(id, _)| !recent.contains_key(*id))
            .map(|(id, &state)| (id.as_bytes(), state));
        settled.chain(
            recent
                .iter()
                .filter_map(|(id, &entry)| Some((id.as_bytes(), entry?))),
        )
    }

    /// Keeps the entries `keep` says to (after a fold: those the new base does not say).
    /// Leaves one layer.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(OverlayKey, Option<u32>) -> bool) {
        self.settle();
        let mut settled = Layer::clone(&self.settled);
        settled
            .numeric
            .retain(|&id, &mut state| keep(OverlayKey::Numeric(id), state));
        settled
            .named
            .retain(|&id, &mut state| keep(OverlayKey::Named(id), state));
        self.len = settled.len();
        self.settled = Arc::new(settled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_equal_to_the_base_are_not_kept() {
        let mut overlay = Overlay::default();
        let key = OverlayKey::Numeric(7);
        overlay.set(key, Some(2), Some(1));
        assert_eq!(overlay.numeric(7), Some(Some(2)));
        overlay.set(key, Some(1), Some(1));
        assert_eq!((overlay.numeric(7), overlay.len()), (None, 0));
        overlay.set(key, None, Some(1));
        assert_eq!(overlay.numeric(7), Some(None));
    }

    #[test]
    fn string_ids_are_found_in_any_case() {
        let mut overlay = Overlay::default();
        let key = OverlayKey::Named(NamedId::fold(b"My-App").unwrap());
        overlay.set(key, Some(3), None);
        assert_eq!(overlay.named(b"MY-APP"), Some(Some(3)));
        assert_eq!(overlay.named(b"my-app"), Some(Some(3)));
        assert_eq!(overlay.named(b"my-ap"), None);
        assert_eq!(overlay.named(&[b'a'; 64]), None);
        let entries: Vec<_> = overlay.named_entries().collect();
        assert_eq!(entries, [(&b"my-app"[..], Some(3))]);
    }

    /// Two layers behave as one map: random sets across many merges of the recent layer
    /// agree with a plain map of what differs from the base, entry by entry and in count.
    #[test]
    fn two_layers_agree_with_one_map() {
        let mut overlay = Overlay::default();
        let mut model: std::collections::HashMap<u64, Option<u32>> = Default::default();
        let base = |id: u64| (id % 3 != 0).then_some((id % 5) as u32);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut versions = Vec::new();
        for step in 0..40_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let id = seed % 9_000;
            let state = match seed >> 60 {
                0..=3 => None,
                n => Some((n % 6) as u32),
            };
            overlay.set(OverlayKey::Numeric(id), state, base(id));
            if state == base(id) {
                model.remove(&id);
            } else {
                model.insert(id, state);
            }
            if step % 5_000 == 0 {
                versions.push((overlay.clone(), model.clone()));
            }
        }
        // Older versions are untouched by the changes made after them.
        versions.push((overlay, model));
        for (overlay, model) in &versions {
            assert_eq!(overlay.len(), model.len());
            for id in 0..9_000 {
                assert_eq!(overlay.numeric(id), model.get(&id).copied(), "app {id}");
            }
            let mut entries: Vec<_> = overlay.numeric_entries().collect();
            entries.sort_unstable();
            let mut expected: Vec<_> = model.iter().map(|(&id, &s)| (id, s)).collect();
            expected.sort_unstable();
            assert_eq!(entries, expected);
        }
        let (mut last, model) = versions.pop().unwrap();
        last.retain(|key, _| matches!(key, OverlayKey::Numeric(id) if id % 2 == 0));
        let even = model.keys().filter(|id| *id % 2 == 0).count();
        assert_eq!((last.len(), last.numeric_entries().count()), (even, even));
    }
}
