//! Recent changes over a snapshot's base tables: what a zone transfer's difference or an
//! UPDATE changed since the tables were built, so that a change costs what it changes and
//! not a copy of the tables.
//!
//! An overlay maps app IDs to their state now: on a cluster, or gone. A lookup asks the
//! overlay first, then the base. Overlays are small (a fold merges one into new base tables
//! once it passes [`fold_at`] entries) and their entries are plain data; the next version
//! shares the older changes and copies only the recent ones (three layers, see [`Overlay`]).
//! An entry that says what the base says is not kept.

use std::sync::Arc;

use fxhash::FxHashMap;

use super::dump::OwnedAppId;
use crate::wire::name::fold_label;
use crate::wire::MAX_LABEL;

/// Entries past which the overlay of a zone of `apps` apps is folded into new base tables.
/// A fold copies the base (`apps` entries) once per this many changes, and a merge into the
/// overlay's `settled` layer copies it once per `MIDDLE_MIN` changes or more: at the square
/// root of `2 · apps · MIDDLE_MIN` both cost a change at most about the same (5 entries at
/// 1M apps, 55 at 100M, where a fixed 100k made it 1,000). Never below 100k.
pub fn fold_at(apps: usize) -> usize {
    let balanced = (2.0 * apps as f64 * MIDDLE_MIN as f64).sqrt() as usize;
    balanced.max(100_000)
}

/// A string app ID in lower case, inline in `N` bytes: an overlay entry allocates nothing of
/// its own. Two sizes, so that the usual short ID copies a third of a long one's bytes when a
/// layer is copied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct InlineId<const N: usize> {
    len: u8,
    /// Zero past `len`, so that equal IDs are equal arrays.
    bytes: [u8; N],
}

/// IDs of up to 23 bytes: 24 bytes inline.
type ShortId = InlineId<23>;
/// IDs of up to a label.
type LongId = InlineId<MAX_LABEL>;

impl<const N: usize> InlineId<N> {
    /// `id` (lower case already); `None` if it does not fit.
    fn new(id: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; N];
        bytes.get_mut(..id.len())?.copy_from_slice(id);
        Some(Self {
            len: id.len() as u8,
            bytes,
        })
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl<const N: usize> std::hash::Hash for InlineId<N> {
    /// The ID's bytes only: hashing the zeros past them would cost more than the ID.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl<const N: usize> std::fmt::Debug for InlineId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// An app ID as an overlay keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OverlayKey {
    Numeric(u64),
    Short(ShortId),
    Long(LongId),
}

impl OverlayKey {
    pub(super) fn of(id: &OwnedAppId) -> Self {
        match id {
            OwnedAppId::Numeric(number) => Self::Numeric(*number),
            OwnedAppId::Named { bytes, len } => {
                let id = &bytes[..usize::from(*len)];
                match ShortId::new(id) {
                    Some(short) => Self::Short(short),
                    None => {
                        let mut long = LongId {
                            len: *len,
                            bytes: [0; MAX_LABEL],
                        };
                        long.bytes[..id.len()].copy_from_slice(id);
                        Self::Long(long)
                    }
                }
            }
        }
    }

    /// The key of string ID `id`, lower case already; `None` if longer than a label.
    fn named(id: &[u8]) -> Option<Self> {
        match ShortId::new(id) {
            Some(short) => Some(Self::Short(short)),
            None => LongId::new(id).map(Self::Long),
        }
    }
}

/// Changes over the base: each app's cluster now, `None` when it went. Three layers, so that
/// a change does not copy every earlier one: `recent` (at most [`RECENT_MAX`] entries) is
/// copied with each new version and merged into a new `middle` when full; `middle` (at most
/// [`middle_max`] of `settled`'s size) is shared by the versions made meanwhile and merged
/// into a new `settled` when full; `settled` is shared until the next merge. A change copies
/// about `RECENT_MAX / 2 / batch + middle / 2 / RECENT_MAX + settled / middle` entries: a few
/// dozen, where two layers copied hundreds once the overlay passed 100k (the merge into
/// `settled` copies it).
#[derive(Clone, Default, Debug)]
pub(super) struct Overlay {
    settled: Arc<Layer<Option<u32>>>,
    /// `None`: as the base says (hides what `settled` says).
    middle: Arc<Layer<Option<Option<u32>>>>,
    /// `None`: as the base says (hides what `middle` and `settled` say).
    recent: Layer<Option<Option<u32>>>,
    /// Entries that differ from the base, over the layers.
    len: usize,
}

/// One layer of an overlay.
#[derive(Clone, Debug)]
struct Layer<T> {
    numeric: FxHashMap<u64, T>,
    short: FxHashMap<ShortId, T>,
    long: FxHashMap<LongId, T>,
}

impl<T> Default for Layer<T> {
    fn default() -> Self {
        Self {
            numeric: FxHashMap::default(),
            short: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }
}

impl<T: Copy> Layer<T> {
    fn len(&self) -> usize {
        self.numeric.len() + self.short.len() + self.long.len()
    }

    fn has_named(&self) -> bool {
        !self.short.is_empty() || !self.long.is_empty()
    }

    #[inline]
    fn get(&self, key: &OverlayKey) -> Option<T> {
        match key {
            OverlayKey::Numeric(id) => self.numeric.get(id),
            OverlayKey::Short(id) => self.short.get(id),
            OverlayKey::Long(id) => self.long.get(id),
        }
        .copied()
    }

    /// Sets `key` to `value`, or removes it when `None`.
    fn put(&mut self, key: OverlayKey, value: Option<T>) {
        match (key, value) {
            (OverlayKey::Numeric(id), Some(value)) => drop(self.numeric.insert(id, value)),
            (OverlayKey::Numeric(id), None) => drop(self.numeric.remove(&id)),
            (OverlayKey::Short(id), Some(value)) => drop(self.short.insert(id, value)),
            (OverlayKey::Short(id), None) => drop(self.short.remove(&id)),
            (OverlayKey::Long(id), Some(value)) => drop(self.long.insert(id, value)),
            (OverlayKey::Long(id), None) => drop(self.long.remove(&id)),
        }
    }

    /// Empties the layer, keeping its memory.
    fn clear(&mut self) {
        self.numeric.clear();
        self.short.clear();
        self.long.clear();
    }

    /// Every entry.
    fn entries(&self) -> impl Iterator<Item = (OverlayKey, T)> + '_ {
        let numeric = self
            .numeric
            .iter()
            .map(|(&id, &v)| (OverlayKey::Numeric(id), v));
        let short = self
            .short
            .iter()
            .map(|(&id, &v)| (OverlayKey::Short(id), v));
        let long = self.long.iter().map(|(&id, &v)| (OverlayKey::Long(id), v));
        numeric.chain(short).chain(long)
    }

    /// Every string entry: the ID and the value.
    fn named(&self) -> impl Iterator<Item = (&[u8], T)> + '_ {
        let short = self.short.iter().map(|(id, &v)| (id.as_bytes(), v));
        short.chain(self.long.iter().map(|(id, &v)| (id.as_bytes(), v)))
    }

    fn retain(&mut self, mut keep: impl FnMut(OverlayKey, T) -> bool) {
        self.numeric
            .retain(|&id, &mut v| keep(OverlayKey::Numeric(id), v));
        self.short
            .retain(|&id, &mut v| keep(OverlayKey::Short(id), v));
        self.long
            .retain(|&id, &mut v| keep(OverlayKey::Long(id), v));
    }
}

/// Entries of `recent` past which it is merged into `middle`.
const RECENT_MAX: usize = 1024;
/// Entries of `middle` past which it is merged into `settled`, at the least.
const MIDDLE_MIN: usize = 16 * 1024;

/// Entries of `middle` past which it is merged into a `settled` of `settled` entries: the
/// bound at which the two merges cost a change the same (`middle / 2 / RECENT_MAX` entries
/// copied into `middle`, `settled / middle` into `settled`). A large `settled` is the costly
/// copy (fresh pages for tens of megabytes, where `middle`'s allocator reuses its memory),
/// so it is copied less often as it grows: 61k at 1.8M entries, where 16k copied it four
/// times as often.
fn middle_max(settled: usize) -> usize {
    let balanced = (2.0 * RECENT_MAX as f64 * settled as f64).sqrt() as usize;
    balanced.max(MIDDLE_MIN)
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
        for layer in [&self.recent, &*self.middle] {
            if !layer.numeric.is_empty() {
                if let Some(&state) = layer.numeric.get(&id) {
                    return state;
                }
            }
        }
        self.settled.numeric.get(&id).copied()
    }

    /// The state of string app `id` (any case), if the overlay changed it.
    pub(super) fn named(&self, id: &[u8]) -> Option<Option<u32>> {
        if !self.recent.has_named() && !self.middle.has_named() && !self.settled.has_named() {
            return None;
        }
        let mut folded = [0u8; MAX_LABEL];
        self.get(&OverlayKey::named(fold_label(id, &mut folded)?)?)
    }

    pub(super) fn get(&self, key: &OverlayKey) -> Option<Option<u32>> {
        match self.recent.get(key) {
            Some(state) => state,
            None => self.below_recent(key),
        }
    }

    /// The state `middle` and `settled` give `key`.
    fn below_recent(&self, key: &OverlayKey) -> Option<Option<u32>> {
        match self.middle.get(key) {
            Some(state) => state,
            None => self.settled.get(key),
        }
    }

    /// Records `key`'s state; `base` is what the base tables say, and an entry equal to it
    /// is not kept. Returns the state the overlay had for `key` before (as [`Self::get`]).
    pub(super) fn set(
        &mut self,
        key: OverlayKey,
        state: Option<u32>,
        base: Option<u32>,
    ) -> Option<Option<u32>> {
        // One probe of each layer: the lower ones are large, and each probe a cache miss.
        let below = self.below_recent(&key);
        let previous = match self.recent.get(&key) {
            Some(entry) => entry,
            None => below,
        };
        let changed = state != base;
        // As the base, with nothing below to hide: no entry at all.
        let entry = match (changed, below.is_some()) {
            (true, _) => Some(Some(state)),
            (false, true) => Some(None),
            (false, false) => None,
        };
        self.recent.put(key, entry);
        self.len = self.len + usize::from(changed) - usize::from(previous.is_some());
        if self.recent.len() > RECENT_MAX {
            self.merge_recent();
            if self.middle.len() > middle_max(self.settled.len()) {
                self.merge_middle();
            }
        }
        previous
    }

    /// Merges `recent` into a new `middle`.
    fn merge_recent(&mut self) {
        let mut middle = Layer::clone(&self.middle);
        for (key, entry) in self.recent.entries() {
            // "As the base" over nothing settled needs no entry.
            let keep = entry.is_some() || self.settled.get(&key).is_some();
            middle.put(key, keep.then_some(entry));
        }
        self.middle = Arc::new(middle);
        self.recent.clear();
    }

    /// Merges `middle` into a new `settled`.
    fn merge_middle(&mut self) {
        let mut settled = Layer::clone(&self.settled);
        for (key, entry) in self.middle.entries() {
            settled.put(key, entry);
        }
        self.settled = Arc::new(settled);
        self.middle = Arc::default();
    }

    /// Every numeric entry: the app and its state.
    pub(super) fn numeric_entries(&self) -> impl Iterator<Item = (u64, Option<u32>)> + '_ {
        let (recent, middle) = (&self.recent.numeric, &self.middle.numeric);
        let settled = self.settled.numeric.iter();
        let settled = settled
            .filter(move |(id, _)| !recent.contains_key(id) && !middle.contains_key(id))
            .map(|(&id, &state)| (id, state));
        let middle = middle
            .iter()
            .filter(move |(id, _)| !recent.contains_key(id));
        let middle = middle.filter_map(|(&id, &entry)| Some((id, entry?)));
        let recent = recent.iter().filter_map(|(&id, &entry)| Some((id, entry?)));
        settled.chain(middle).chain(recent)
    }

    /// Every string entry: the app (lower case) and its state.
    pub(super) fn named_entries(&self) -> impl Iterator<Item = (&[u8], Option<u32>)> + '_ {
        let (recent, middle) = (&self.recent, &*self.middle);
        let hidden_short =
            move |id: &ShortId| recent.short.contains_key(id) || middle.short.contains_key(id);
        let hidden_long =
            move |id: &LongId| recent.long.contains_key(id) || middle.long.contains_key(id);
        let short = self
            .settled
            .short
            .iter()
            .filter(move |(id, _)| !hidden_short(id));
        let long = self
            .settled
            .long
            .iter()
            .filter(move |(id, _)| !hidden_long(id));
        let settled = short
            .map(|(id, &state)| (id.as_bytes(), state))
            .chain(long.map(|(id, &state)| (id.as_bytes(), state)));
        let middle_short = middle
            .short
            .iter()
            .filter(move |(id, _)| !recent.short.contains_key(*id));
        let middle_long = middle
            .long
            .iter()
            .filter(move |(id, _)| !recent.long.contains_key(*id));
        let middle = middle_short
            .map(|(id, &entry)| (id.as_bytes(), entry))
            .chain(middle_long.map(|(id, &entry)| (id.as_bytes(), entry)))
            .filter_map(|(id, entry)| Some((id, entry?)));
        let recent = recent.named().filter_map(|(id, entry)| Some((id, entry?)));
        settled.chain(middle).chain(recent)
    }

    /// This overlay, made over the `old` base tables, over `new` ones: those a fold made of
    /// `old` and `folded` (an earlier version of this overlay). Keeps the entries `new` does
    /// not say and, for an app `folded` changed that this overlay leaves to the base (changed
    /// back while the fold ran: a new app deleted, a moved one moved back), what `old` says
    /// where `new` says otherwise. Leaves one layer.
    pub(super) fn rebase(
        &mut self,
        folded: &Self,
        old: impl Fn(&OverlayKey) -> Option<u32>,
        new: impl Fn(&OverlayKey) -> Option<u32>,
    ) {
        let folded_keys = (folded.settled.entries().map(|(key, _)| key))
            .chain(folded.middle.entries().map(|(key, _)| key))
            .chain(folded.recent.entries().map(|(key, _)| key));
        let restored: Vec<(OverlayKey, Option<u32>)> = folded_keys
            .filter(|key| self.get(key).is_none())
            .filter_map(|key| {
                let state = old(&key);
                (new(&key) != state).then_some((key, state))
            })
            .collect();
        self.retain(|key, state| new(&key) != state);
        let settled = Arc::make_mut(&mut self.settled);
        for (key, state) in restored {
            settled.put(key, Some(state));
        }
        self.len = settled.len();
    }

    /// Keeps the entries `keep` says to. Leaves one layer.
    fn retain(&mut self, keep: impl FnMut(OverlayKey, Option<u32>) -> bool) {
        self.merge_recent();
        self.merge_middle();
        let mut settled = Layer::clone(&self.settled);
        settled.retain(keep);
        self.len = settled.len();
        self.settled = Arc::new(settled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        let key = OverlayKey::named(b"my-app").unwrap();
        overlay.set(key, Some(3), None);
        assert_eq!(overlay.named(b"MY-APP"), Some(Some(3)));
        assert_eq!(overlay.named(b"my-app"), Some(Some(3)));
        assert_eq!(overlay.named(b"my-ap"), None);
        assert_eq!(overlay.named(&[b'a'; 64]), None);
        let entries: Vec<_> = overlay.named_entries().collect();
        assert_eq!(entries, [(&b"my-app"[..], Some(3))]);
        // Past 23 bytes an ID is kept in the long form, found the same way.
        let long = b"an-app-id-of-forty-bytes-0123456789abcde";
        overlay.set(OverlayKey::named(long).unwrap(), Some(4), None);
        assert_eq!(overlay.named(&long.to_ascii_uppercase()), Some(Some(4)));
        assert_eq!(overlay.named(&long[..39]), None);
        let mut entries: Vec<_> = overlay.named_entries().collect();
        entries.sort_unstable();
        assert_eq!(entries, [(&long[..], Some(4)), (&b"my-app"[..], Some(3))]);
        assert_eq!(overlay.len(), 2);
    }

    /// The layers behave as one map: random sets across many merges of the layers agree
    /// with a plain map of what differs from the base, entry by entry and in count, for
    /// numeric, short and long string IDs.
    #[test]
    fn the_middle_layer_grows_with_the_settled_one() {
        assert_eq!(middle_max(0), MIDDLE_MIN);
        assert_eq!(middle_max(100_000), MIDDLE_MIN);
        assert_eq!(middle_max(1_800_000), 60_715);
        let mut overlay = Overlay::default();
        let mut largest_middle = 0;
        for id in 0..300_000 {
            overlay.set(OverlayKey::Numeric(id), Some(1), None);
            largest_middle = largest_middle.max(overlay.middle.len());
            assert!(overlay.recent.len() <= RECENT_MAX);
            assert!(overlay.middle.len() <= middle_max(overlay.settled.len()));
        }
        assert!(largest_middle > MIDDLE_MIN + RECENT_MAX, "{largest_middle}");
        assert_eq!(overlay.len(), 300_000);
        for id in (0..300_000).step_by(997) {
            assert_eq!(overlay.get(&OverlayKey::Numeric(id)), Some(Some(1)));
        }
    }

    #[test]
    fn the_layers_agree_with_one_map() {
        const APPS: u64 = 40_000;
        let name = |id: u64| match id % 3 {
            0 => None,
            1 => Some(format!("app{id}")),
            _ => Some(format!("a-long-app-id-past-23-bytes-{id}")),
        };
        let key = |id: u64| match name(id) {
            None => OverlayKey::Numeric(id),
            Some(name) => OverlayKey::named(name.as_bytes()).unwrap(),
        };
        let mut overlay = Overlay::default();
        let mut model: HashMap<u64, Option<u32>> = Default::default();
        let base = |id: u64| (id % 7 != 0).then_some((id % 5) as u32);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut versions = Vec::new();
        for step in 0..150_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let id = seed % APPS;
            let state = match seed >> 60 {
                0..=3 => None,
                n => Some((n % 6) as u32),
            };
            let previous = overlay.set(key(id), state, base(id));
            let expected = model.get(&id).copied();
            assert_eq!(previous, expected, "app {id} before step {step}");
            if state == base(id) {
                model.remove(&id);
            } else {
                model.insert(id, state);
            }
            if step % 15_000 == 0 {
                versions.push((overlay.clone(), model.clone()));
            }
        }
        // Older versions are untouched by the changes made after them.
        versions.push((overlay, model));
        let entries = |overlay: &Overlay| {
            let mut entries: Vec<(String, Option<u32>)> = overlay
                .numeric_entries()
                .map(|(id, state)| (id.to_string(), state))
                .chain(
                    (overlay.named_entries())
                        .map(|(id, state)| (String::from_utf8(id.to_vec()).unwrap(), state)),
                )
                .collect();
            entries.sort_unstable();
            entries
        };
        for (overlay, model) in &versions {
            assert_eq!(overlay.len(), model.len());
            for id in 0..APPS {
                assert_eq!(overlay.get(&key(id)), model.get(&id).copied(), "app {id}");
            }
            let mut expected: Vec<_> = model
                .iter()
                .map(|(&id, &state)| (name(id).unwrap_or(id.to_string()), state))
                .collect();
            expected.sort_unstable();
            assert_eq!(entries(overlay), expected);
        }
        let (mut last, model) = versions.pop().unwrap();
        last.retain(|key, _| matches!(key, OverlayKey::Numeric(id) if id % 2 == 0));
        let even = model
            .keys()
            .filter(|id| *id % 3 == 0 && *id % 2 == 0)
            .count();
        assert_eq!((last.len(), entries(&last).len()), (even, even));
    }

    /// A fold at random points of random changes: after each rebase, every app reads as a
    /// plain map of the changes says, and the overlay keeps only what the new base does not.
    #[test]
    fn a_rebase_keeps_what_every_app_is() {
        const APPS: u64 = 5_000;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base: HashMap<u64, u32> = (0..APPS)
            .filter(|id| id % 3 != 0)
            .map(|id| (id, (id % 4) as u32))
            .collect();
        let mut truth = base.clone();
        let mut overlay = Overlay::default();
        for round in 0..6 {
            let mut change = |overlay: &mut Overlay, truth: &mut HashMap<u64, u32>, n: usize| {
                for _ in 0..n {
                    let r = next();
                    let id = r % APPS;
                    let state = (r >> 61 != 0).then_some(((r >> 32) % 4) as u32);
                    overlay.set(OverlayKey::Numeric(id), state, base.get(&id).copied());
                    match state {
                        Some(cluster) => drop(truth.insert(id, cluster)),
                        None => drop(truth.remove(&id)),
                    }
                }
            };
            change(&mut overlay, &mut truth, 20_000);
            // The fold: the base with the overlay merged in, while changes go on.
            let folded = overlay.clone();
            let new = truth.clone();
            change(&mut overlay, &mut truth, 3_000 + round * 500);
            let old = base.clone();
            overlay.rebase(
                &folded,
                |key| match key {
                    OverlayKey::Numeric(id) => old.get(id).copied(),
                    _ => None,
                },
                |key| match key {
                    OverlayKey::Numeric(id) => new.get(id).copied(),
                    _ => None,
                },
            );
            base = new;
            let mut differing = 0;
            for id in 0..APPS {
                let read = match overlay.numeric(id) {
                    Some(state) => state,
                    None => base.get(&id).copied(),
                };
                assert_eq!(read, truth.get(&id).copied(), "app {id}, round {round}");
                differing += usize::from(base.get(&id) != truth.get(&id));
            }
            assert_eq!(overlay.len(), differing, "round {round}");
        }
    }
}
