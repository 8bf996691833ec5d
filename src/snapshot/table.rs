//! The lookup table for numeric app IDs, the common case: open addressing with linear probing
//! over 12-byte slots (see `probe`), keyed by Fibonacci hashing (`key * 2^64/φ`, whose top
//! bits pick the home slot).
//!
//! It is built once from all pairs, sorted by home slot, so that building writes memory in
//! order instead of missing the cache on every insert (10M apps: ~270 MB of table), and equal
//! keys end up adjacent, which finds duplicates for free. A lookup is one multiply and, at the
//! load factor used (at most 0.6), almost always one cache line.

use super::probe::{distance, home, next, slot_count, sort_by_hash, spread_in_place, Pages};

/// Marks an empty slot. No app ID is this large: IDs have at most 19 digits.
const EMPTY: u64 = u64::MAX;
/// 2^64 / φ, odd: consecutive IDs land far apart.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// One slot; packed so that 10M apps take 12 bytes a slot rather than 16.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Slot {
    key: u64,
    cluster: u32,
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

const EMPTY_SLOT: Slot = Slot {
    key: EMPTY,
    cluster: 0,
};

/// Numeric apps being collected, 12 bytes each, in the allocation their table is then built
/// in: a 100M-app load or reload never holds a list of pairs and the table at once.
#[derive(Default)]
pub(crate) struct NumericBuilder {
    slots: Vec<Slot>,
}

impl NumericBuilder {
    /// A builder with room for the table of `slots` slots, so that the build does not move
    /// what it collected.
    fn with_capacity(slots: usize) -> Result<Self, BuildError> {
        let mut builder = Self::default();
        (builder.slots)
            .try_reserve_exact(slots)
            .map_err(|_| BuildError::OutOfMemory)?;
        Ok(builder)
    }

    #[inline]
    pub(crate) fn push(&mut self, key: u64, cluster: u32) -> Result<(), BuildError> {
        if self.slots.len() == self.slots.capacity() {
            (self.slots)
                .try_reserve(1)
                .map_err(|_| BuildError::OutOfMemory)?;
        }
        self.slots.push(Slot { key, cluster });
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Empties the builder, keeping its memory for more.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }

    /// Moves `other`'s apps after this builder's, leaving it empty.
    pub(crate) fn append(&mut self, other: &mut Self) -> Result<(), BuildError> {
        (self.slots)
            .try_reserve(other.slots.len())
            .map_err(|_| BuildError::OutOfMemory)?;
        self.slots.extend_from_slice(&other.slots);
        other.slots.clear();
        Ok(())
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        self.slots.truncate(len);
    }

    /// Replaces the cluster index of each app from the `from`th on by `map` of it.
    pub(crate) fn map_clusters(&mut self, from: usize, map: impl Fn(u32) -> u32) {
        for slot in &mut self.slots[from..] {
            slot.cluster = map(slot.cluster);
        }
    }

    /// Builds the table in place (see `probe::spread_in_place`), unless a key appears twice
    /// or memory for it cannot be had.
    pub(crate) fn build(self) -> Result<NumericTable, BuildError> {
        let mut slots = self.slots;
        let len = slots.len();
        let count = slot_count(len);
        let home_of = |slot: &Slot| home(hash(slot.key), count);
        // Home slots grow with the hash, and the hash of a key is unique to it: sorting by
        // hash alone orders by home and keeps a key's duplicates side by side.
        sort_by_hash(&mut slots, |slot| hash(slot.key));
        if let Some(pair) = slots.windows(2).find(|pair| pair[0].key == pair[1].key) {
            return Err(BuildError::Duplicate(pair[0].key));
        }
        let wrapped = spread_in_place(&mut slots, count, EMPTY_SLOT, Pages::Default, home_of)
            .ok_or(BuildError::OutOfMemory)?;
        let placed = len - wrapped.len();
        let mut table = NumericTable {
            slots: slots.into_boxed_slice(),
            len: placed,
        };
        for slot in wrapped {
            table.insert(slot.key, slot.cluster);
        }
        Ok(table)
    }
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
            let mut builder = NumericBuilder::with_capacity(slot_count(self.len + inserted))?;
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
                Some(cluster) => table.insert(key, cluster),
                None => table.remove(key),
            }
        }
        Ok(table)
    }

    /// Sets `key`; the caller has checked there is room below the load factor.
    fn insert(&mut self, key: u64, cluster: u32) {
        let count = self.slots.len();
        let mut index = home(hash(key), count);
        while self.slots[index].key != EMPTY && self.slots[index].key != key {
            index = next(index, count);
        }
        if self.slots[index].key == EMPTY {
            self.len += 1;
        }
        self.slots[index] = Slot { key, cluster };
    }

    /// Removes `key` by shifting back the entries of its probe run that may move (no
    /// tombstones: lookups stay as short as after a build).
    fn remove(&mut self, key: u64) {
        let count = self.slots.len();
        let mut hole = home(hash(key), count);
        loop {
            let found = self.slots[hole].key;
            match found {
                EMPTY => return,
                _ if found == key => break,
                _ => hole = next(hole, count),
            }
        }
        self.len -= 1;
        let mut index = hole;
        loop {
            index = next(index, count);
            let moving = self.slots[index].key;
            if moving == EMPTY {
                break;
            }
            // The entry at `index` may fill the hole unless its home lies cyclically in
            // (hole, index]: then the hole is before its home and a lookup would miss it.
            let home_ahead = distance(hole, home(hash(moving), count), count);
            if home_ahead == 0 || home_ahead > distance(hole, index, count) {
                self.slots[hole] = self.slots[index];
                hole = index;
            }
        }
        self.slots[hole] = Slot {
            key: EMPTY,
            cluster: 0,
        };
    }

    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        let count = self.slots.len();
        let mut index = home(hash(key), count);
        // Terminates: the load factor keeps at least 40% of the slots empty.
        loop {
            let slot = self.slots[index];
            if slot.key == key {
                return Some(slot.cluster);
            }
            if slot.key == EMPTY {
                return None;
            }
            index = next(index, count);
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
            .filter(|slot| slot.key != EMPTY)
            .map(|slot| (slot.key, slot.cluster))
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
