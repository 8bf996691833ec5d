//! The lookup table for numeric app IDs, the common case: open addressing with linear probing
//! over 12-byte slots (see `probe`), keyed by Fibonacci hashing (`key * 2^64/φ`, whose top
//! bits pick the home slot).
//!
//! It is built once from all pairs, collected in buckets by the top bits of their hash: a
//! bucket's homes lie in one stretch of the table (2 MB at 100M apps), so its entries are
//! placed from the caches rather than missing them on every insert, and the buckets are
//! placed on every core, each thread its own stretch. A lookup is one multiply and, at the
//! load factor used (at most 0.6), almost always one cache line.

use super::probe::{distance, home, next, slot_count};

mod build;
pub(crate) use build::{NumericBuilder, NumericMark};

/// One slot, 12 bytes: `key + 1` in the first two words (low word first), the cluster in the
/// third; all zero when empty. Plain words, so that a table comes from zeroed memory
/// ([`crate::sys::try_zeroed_words`]): a build writes each slot once, on the thread that
/// fills its stretch, and never the whole table beforehand.
type Slot = [u32; 3];

/// The word of an empty slot. No app ID is `u64::MAX` (IDs have at most 19 digits), so no
/// key's word is zero.
const EMPTY: u64 = 0;
/// 2^64 / φ, odd: consecutive IDs land far apart.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

fn slot(key: u64, cluster: u32) -> Slot {
    let word = key.wrapping_add(1);
    [word as u32, (word >> 32) as u32, cluster]
}

/// The slot's key word: `key + 1`, or [`EMPTY`].
#[inline]
fn word(slot: &Slot) -> u64 {
    u64::from(slot[0]) | u64::from(slot[1]) << 32
}

/// Why a table was not built.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BuildError {
    /// This key appears twice.
    Duplicate(u64),
    OutOfMemory,
}

/// An immutable map from numeric app ID to cluster index.
pub(crate) struct NumericTable {
    slots: Box<[Slot]>,
    len: usize,
}

impl std::fmt::Debug for NumericTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumericTable")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn hash(key: u64) -> u64 {
    key.wrapping_mul(FIBONACCI)
}

impl NumericTable {
    /// Builds the table from (key, cluster) pairs, unless a key appears twice or memory for
    /// it cannot be had.
    #[cfg(test)]
    pub(crate) fn build(pairs: Vec<(u64, u32)>) -> Result<Self, BuildError> {
        let mut builder = NumericBuilder::default();
        for (key, cluster) in pairs {
            builder.push(key, cluster)?;
        }
        builder.build()
    }

    /// A copy of this table with `changes` applied in order: `(key, Some(cluster))` sets a
    /// key, `(key, None)` removes it. The slots are copied and changed in place, so a few
    /// changes cost a copy, not a build; a table that would pass its load factor is built
    /// again, larger.
    pub(crate) fn with_changes(&self, changes: &[(u64, Option<u32>)]) -> Result<Self, BuildError> {
        let inserted = changes
            .iter()
            .filter(|(_, cluster)| cluster.is_some())
            .count();
        if slot_count(self.len + inserted) > self.slots.len() {
            // Built again, larger, in the one allocation the table is built in: the entries
            // no change touches, then each changed key's last state. A map of the whole
            // table took 2.3 GB at 100M apps, and a fold peaked at 2.8x the steady RSS.
            let mut last: fxhash::FxHashMap<u64, Option<u32>> = fxhash::FxHashMap::default();
            last.extend(changes.iter().copied());
            let mut builder = NumericBuilder::default();
            for (key, cluster) in self.iter() {
                if !last.contains_key(&key) {
                    builder.push(key, cluster)?;
                }
            }
            for (&key, &cluster) in &last {
                if let Some(cluster) = cluster {
                    builder.push(key, cluster)?;
                }
            }
            return builder.build();
        }
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(self.slots.len())
            .map_err(|_| BuildError::OutOfMemory)?;
        slots.extend_from_slice(&self.slots);
        let mut table = Self {
            slots: slots.into_boxed_slice(),
            len: self.len,
        };
        for &(key, cluster) in changes {
            match cluster {
                Some(cluster) => {
                    table.insert(key, cluster);
                }
                None => table.remove(key),
            }
        }
        Ok(table)
    }

    /// Sets `key`; whether it was there before. The caller has checked there is room below
    /// the load factor.
    fn insert(&mut self, key: u64, cluster: u32) -> bool {
        let count = self.slots.len();
        let wanted = key.wrapping_add(1);
        let mut index = home(hash(key), count);
        loop {
            match word(&self.slots[index]) {
                EMPTY => break,
                word if word == wanted => break,
                _ => index = next(index, count),
            }
        }
        let was_there = word(&self.slots[index]) != EMPTY;
        if !was_there {
            self.len += 1;
        }
        self.slots[index] = slot(key, cluster);
        was_there
    }

    /// Removes `key` by shifting back the entries of its probe run that may move (no
    /// tombstones: lookups stay as short as after a build).
    fn remove(&mut self, key: u64) {
        let count = self.slots.len();
        let wanted = key.wrapping_add(1);
        let mut hole = home(hash(key), count);
        loop {
            match word(&self.slots[hole]) {
                EMPTY => return,
                found if found == wanted => break,
                _ => hole = next(hole, count),
            }
        }
        self.len -= 1;
        let mut index = hole;
        loop {
            index = next(index, count);
            let moving = word(&self.slots[index]);
            if moving == EMPTY {
                break;
            }
            // The entry at `index` may fill the hole unless its home lies cyclically in
            // (hole, index]: then the hole is before its home and a lookup would miss it.
            let home_ahead = distance(hole, home(hash(moving - 1), count), count);
            if home_ahead == 0 || home_ahead > distance(hole, index, count) {
                self.slots[hole] = self.slots[index];
                hole = index;
            }
        }
        self.slots[hole] = [0; 3];
    }

    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        let count = self.slots.len();
        let wanted = key.wrapping_add(1);
        let mut index = home(hash(key), count);
        // Terminates: the load factor keeps at least 40% of the slots empty.
        loop {
            let slot = &self.slots[index];
            match word(slot) {
                EMPTY => return None,
                found if found == wanted => return Some(slot[2]),
                _ => index = next(index, count),
            }
        }
    }

    /// Starts bringing `key`'s home slot into the caches (see [`crate::sys::prefetch`]).
    pub(crate) fn prefetch(&self, key: u64) {
        crate::sys::prefetch(&self.slots[home(hash(key), self.slots.len())]);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every (key, cluster), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.slots
            .iter()
            .filter(|slot| word(slot) != EMPTY)
            .map(|slot| (word(slot) - 1, slot[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_nothing_else() {
        for count in [0u64, 1, 7, 1000, 100_000] {
            let pairs: Vec<(u64, u32)> = (0..count)
                .map(|i| (i * 3 + 100_000, (i % 8) as u32))
                .collect();
            let table = NumericTable::build(pairs.clone()).unwrap();
            assert_eq!(table.len(), count as usize);
            for (key, cluster) in &pairs {
                assert_eq!(table.get(*key), Some(*cluster));
                assert_eq!(table.get(key + 1), None);
            }
            assert_eq!(table.get(0), None);
            assert_eq!(table.get(9_999_999_999_999_999_999), None);
            let mut all: Vec<_> = table.iter().collect();
            all.sort_unstable();
            assert_eq!(all, pairs);
        }
    }

    #[test]
    fn colliding_home_slots_probe_and_wrap() {
        // Keys whose home is the last slot of a small table collide there and wrap.
        let count = slot_count(5);
        let mut keys: Vec<u64> = (0..1_000_000u64)
            .filter(|&k| home(hash(k), count) == count - 1)
            .take(5)
            .collect();
        keys.sort_unstable();
        let pairs: Vec<_> = keys.iter().map(|&k| (k, k as u32)).collect();
        let table = NumericTable::build(pairs).unwrap();
        for &k in &keys {
            assert_eq!(table.get(k), Some(k as u32));
        }
    }

    /// Random sets and removals on copies, against a std map, in tables kept small so that
    /// probe runs are long and wrap around.
    #[test]
    fn changes_on_a_copy_match_a_map() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let pairs: Vec<(u64, u32)> = (0..40).map(|k| (k * 7, k as u32)).collect();
        let mut table = NumericTable::build(pairs.clone()).unwrap();
        let mut model: std::collections::HashMap<u64, u32> = pairs.into_iter().collect();
        for round in 0..300 {
            let changes: Vec<(u64, Option<u32>)> = (0..random(12))
                .map(|_| {
                    let key = random(400);
                    (key, (random(3) != 0).then_some(round))
                })
                .collect();
            let next = table.with_changes(&changes).unwrap();
            for &(key, cluster) in &changes {
                match cluster {
                    Some(cluster) => model.insert(key, cluster),
                    None => model.remove(&key),
                };
            }
            assert_eq!(next.len(), model.len());
            for key in 0..400 {
                assert_eq!(next.get(key), model.get(&key).copied(), "key {key}");
            }
            let mut all: Vec<_> = next.iter().collect();
            all.sort_unstable();
            let mut want: Vec<_> = model.iter().map(|(&k, &c)| (k, c)).collect();
            want.sort_unstable();
            assert_eq!(all, want);
            table = next;
        }
    }

    #[test]
    fn duplicates_are_reported() {
        assert_eq!(
            NumericTable::build(vec![(5, 0), (6, 1), (5, 2)]).err(),
            Some(BuildError::Duplicate(5))
        );
    }
}
