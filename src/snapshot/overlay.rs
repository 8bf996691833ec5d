//! Recent changes over a snapshot's base tables: what a zone transfer's difference or an
//! UPDATE changed since the tables were built, so that a change costs what it changes and
//! not a copy of the tables.
//!
//! An overlay maps app IDs to their state now: on a cluster, or gone. A lookup asks the
//! overlay first, then the base. Overlays are small (a fold merges one into new base tables
//! once it passes `FOLD_AT` entries) and their entries are plain data, so a copy for the
//! next version is a copy of memory. An entry that says what the base says is not kept.

use fxhash::FxHashMap;

use super::dump::OwnedAppId;
use crate::wire::name::fold_label;
use crate::wire::MAX_LABEL;

/// Entries past which an overlay should be folded into new base tables. Each change copies
/// the overlay (about 24 bytes an entry); a fold copies the base tables.
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

/// Recent changes: each app's cluster now, `None` when it went.
#[derive(Clone, Default, Debug)]
pub(super) struct Overlay {
    numeric: FxHashMap<u64, Option<u32>>,
    named: FxHashMap<NamedId, Option<u32>>,
}

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
    pub(super) fn len(&self) -> usize {
        self.numeric.len() + self.named.len()
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.numeric.is_empty() && self.named.is_empty()
    }

    /// The state of numeric app `id` here: `None` when the overlay does not know it.
    #[inline]
    pub(super) fn numeric(&self, id: u64) -> Option<Option<u32>> {
        self.numeric.get(&id).copied()
    }

    /// The state of string app `id` (any case) here: `None` when the overlay does not know it.
    pub(super) fn named(&self, id: &[u8]) -> Option<Option<u32>> {
        if self.named.is_empty() {
            return None;
        }
        self.named.get(&NamedId::fold(id)?).copied()
    }

    pub(super) fn get(&self, key: &OverlayKey) -> Option<Option<u32>> {
        match key {
            OverlayKey::Numeric(id) => self.numeric.get(id).copied(),
            OverlayKey::Named(id) => self.named.get(id).copied(),
        }
    }

    /// Records `state` for `key`; `base` is what the base tables say, so that an entry equal
    /// to it is dropped instead.
    pub(super) fn set(&mut self, key: OverlayKey, state: Option<u32>, base: Option<u32>) {
        match (key, state == base) {
            (OverlayKey::Numeric(id), false) => drop(self.numeric.insert(id, state)),
            (OverlayKey::Numeric(id), true) => drop(self.numeric.remove(&id)),
            (OverlayKey::Named(id), false) => drop(self.named.insert(id, state)),
            (OverlayKey::Named(id), true) => drop(self.named.remove(&id)),
        }
    }

    /// The numeric entries, in no particular order.
    pub(super) fn numeric_entries(&self) -> impl Iterator<Item = (u64, Option<u32>)> + '_ {
        self.numeric.iter().map(|(&id, &state)| (id, state))
    }

    /// The string entries, in no particular order.
    pub(super) fn named_entries(&self) -> impl Iterator<Item = (&[u8], Option<u32>)> + '_ {
        self.named.iter().map(|(id, &state)| (id.as_bytes(), state))
    }

    /// Only the entries `keep` keeps.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(OverlayKey, Option<u32>) -> bool) {
        self.numeric
            .retain(|&id, &mut state| keep(OverlayKey::Numeric(id), state));
        self.named
            .retain(|&id, &mut state| keep(OverlayKey::Named(id), state));
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
}
