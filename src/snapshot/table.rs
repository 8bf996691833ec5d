//! The lookup table for numeric app IDs, the common case: open addressing with linear probing
//! over 12-byte slots (see `probe`), keyed by Fibonacci hashing (`key * 2^64/φ`, whose top
//! bits pick the home slot).
//!
//! It is built once from all pairs, sorted by home slot, so that building writes memory in
//! order instead of missing the cache on every insert (10M apps: ~270 MB of table), and equal
//! keys end up adjacent, which finds duplicates for free. A lookup is one multiply and, at the
//! load factor used (at most 0.6), almost always one cache line.

use super::probe::{distance, home, next, slot_count, sort_buckets};

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

/// Numeric apps being collected, 12 bytes each, in buckets by the top bits of their key's
/// hash: the table is then built bucket by bucket, each sorted on its own (on every core)
/// and written to the table's slots in order, and freed. A global sort of 100M apps missed
/// the caches at every step (3.7 s of a 100M-app load moving entries to their buckets in
/// place); and a load or reload never holds more than the table and the buckets not yet
/// written to it.
#[derive(Default)]
pub(crate) struct NumericBuilder {
    /// [`BUCKETS`] of them once an app is pushed.
    buckets: Vec<Vec<Slot>>,
    len: usize,
}

const BUCKET_BITS: u32 = 10;
const BUCKETS: usize = 1 << BUCKET_BITS;
/// The bytes of a numeric app in a dump, about: `"100000123": "mt1",` and a line feed.
const NUMERIC_ENTRY_BYTES: usize = 19;

/// How many apps each bucket of a builder held: to go back to, or to change from.
#[derive(Clone, Default)]
pub(crate) struct NumericMark(Vec<usize>);

impl NumericBuilder {
    fn bucket(key: u64) -> usize {
        (hash(key) >> (64 - BUCKET_BITS)) as usize
    }

    #[inline]
    pub(crate) fn push(&mut self, key: u64, cluster: u32) -> Result<(), BuildError> {
        if self.buckets.is_empty() {
            self.buckets.resize_with(BUCKETS, Vec::new);
        }
        let bucket = &mut self.buckets[Self::bucket(key)];
        if bucket.len() == bucket.capacity() {
            bucket.try_reserve(1).map_err(|_| BuildError::OutOfMemory)?;
        }
        bucket.push(Slot { key, cluster });
        self.len += 1;
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reserves, untouched, room in each bucket for its share of a dump of `size` bytes of
    /// numeric apps (about 19 bytes each; a tenth more for the spread between buckets):
    /// growing, each bucket was copied as it grew. Untouched room is never resident; when
    /// it cannot be had, the buckets grow as usual.
    pub(crate) fn reserve_for_dump(&mut self, size: u64) {
        let Ok(size) = usize::try_from(size) else {
            return;
        };
        let share = size / NUMERIC_ENTRY_BYTES / BUCKETS * 11 / 10;
        self.buckets.resize_with(BUCKETS, Vec::new);
        for bucket in &mut self.buckets {
            if bucket.try_reserve_exact(share).is_err() {
                return;
            }
        }
    }

    /// Empties the builder, keeping its memory for more.
    pub(crate) fn clear(&mut self) {
        self.buckets.iter_mut().for_each(Vec::clear);
        self.len = 0;
    }

    /// Moves `other`'s apps to this builder, leaving it empty.
    pub(crate) fn append(&mut self, other: &mut Self) -> Result<(), BuildError> {
        if other.len == 0 {
            return Ok(());
        }
        if self.buckets.is_empty() {
            self.buckets.resize_with(BUCKETS, Vec::new);
        }
        for (bucket, more) in self.buckets.iter_mut().zip(&mut other.buckets) {
            bucket
                .try_reserve(more.len())
                .map_err(|_| BuildError::OutOfMemory)?;
            bucket.extend_from_slice(more);
            more.clear();
        }
        self.len += std::mem::take(&mut other.len);
        Ok(())
    }

    pub(crate) fn mark(&self) -> NumericMark {
        NumericMark(self.buckets.iter().map(Vec::len).collect())
    }

    /// Back to `mark`, forgetting the apps pushed since.
    pub(crate) fn truncate(&mut self, mark: &NumericMark) {
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.truncate(mark.0.get(i).copied().unwrap_or(0));
        }
        self.len = self.buckets.iter().map(Vec::len).sum();
    }

    /// Replaces the cluster index of each app pushed since `mark` by `map` of it.
    pub(crate) fn map_clusters(&mut self, mark: &NumericMark, map: impl Fn(u32) -> u32) {
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            let from = mark.0.get(i).copied().unwrap_or(0);
            for slot in &mut bucket[from..] {
                slot.cluster = map(slot.cluster);
            }
        }
    }

    /// Builds the table, unless a key appears twice or memory for it cannot be had: each
    /// bucket sorted by hash (its keys' home order, where a key's duplicates are side by
    /// side), then in order each entry written to its home or the slot after the entry
    /// before, whichever is later; entries that pass the table's end wrap to its start.
    pub(crate) fn build(self) -> Result<NumericTable, BuildError> {
        let Self { mut buckets, len } = self;
        let count = slot_count(len);
        let mut slots = Vec::new();
        (slots.try_reserve_exact(count)).map_err(|_| BuildError::OutOfMemory)?;
        sort_buckets(&mut buckets, |slot: &Slot| hash(slot.key));
        let mut wrapped = Vec::new();
        for bucket in buckets {
            if let Some(pair) = bucket.windows(2).find(|pair| pair[0].key == pair[1].key) {
                return Err(BuildError::Duplicate(pair[0].key));
            }
            for slot in bucket {
                let at = home(hash(slot.key), count).max(slots.len());
                if at >= count {
                    wrapped.push(slot);
                    continue;
                }
                slots.resize(at, EMPTY_SLOT);
                slots.push(slot);
            }
        }
        slots.resize(count, EMPTY_SLOT);
        let mut table = NumericTable {
            slots: slots.into_boxed_slice(),
            len: len - wrapped.len(),
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
