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

/// A numeric app while the table is being built; packed to 12 bytes like a slot.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Entry {
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

/// Numeric apps being collected, 12 bytes each, in buckets by the top bits of their key's
/// hash: the table is then filled bucket by bucket, each bucket's entries into the stretch of
/// slots their homes lie in, on every core, each bucket freed once placed. A global sort of
/// 100M apps by home missed the caches at every step, and sorting each bucket still cost a
/// quarter of a load; and a load or reload never holds more than the table and the buckets
/// not yet placed in it.
#[derive(Default)]
pub(crate) struct NumericBuilder {
    /// [`BUCKETS`] of them once an app is pushed.
    buckets: Vec<Vec<Entry>>,
    /// Apps pushed and not yet in their buckets: moved there [`PENDING`] at a time, in a
    /// loop that does nothing else, where a push straight to its bucket waited for that
    /// bucket's end to come from memory on almost every app (42% of reading a numeric dump,
    /// against 10% now). A reader's steps between apps leave the processor no room to have
    /// many such writes under way at once; this loop does.
    pending: Vec<Entry>,
    /// Apps in the buckets and pending.
    len: usize,
    /// A bucket could not grow while moving pending apps (in [`Self::mark`]): the build fails.
    out_of_memory: bool,
}

/// Apps pending at most: 48 KiB, read back from the caches.
const PENDING: usize = 4096;

const BUCKET_BITS: u32 = 10;
const BUCKETS: usize = 1 << BUCKET_BITS;
/// The bytes of a numeric app in a dump, about: `"100000123": "mt1",` and a line feed.
const NUMERIC_ENTRY_BYTES: usize = 19;
/// Below this many apps a table is filled on one thread: a thread costs more than it saves.
const PARALLEL_FILL_MIN: usize = 1 << 20;

/// How many apps each bucket of a builder held: to go back to, or to change from.
#[derive(Clone, Default)]
pub(crate) struct NumericMark(Vec<usize>);

impl NumericBuilder {
    fn bucket(key: u64) -> usize {
        (hash(key) >> (64 - BUCKET_BITS)) as usize
    }

    /// The first slot a key of `bucket` may have as its home, in a table of `count` slots.
    fn first_home(bucket: usize, count: usize) -> usize {
        home((bucket as u64) << (64 - BUCKET_BITS), count)
    }

    #[inline]
    pub(crate) fn push(&mut self, key: u64, cluster: u32) -> Result<(), BuildError> {
        if self.pending.len() == self.pending.capacity() {
            self.flush()?;
            (self.pending)
                .try_reserve_exact(PENDING)
                .map_err(|_| BuildError::OutOfMemory)?;
        }
        self.pending.push(Entry { key, cluster });
        self.len += 1;
        Ok(())
    }

    /// Moves the pending apps to their buckets.
    fn flush(&mut self) -> Result<(), BuildError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.buckets.is_empty() {
            self.buckets.resize_with(BUCKETS, Vec::new);
        }
        for &entry in &self.pending {
            let bucket = &mut self.buckets[Self::bucket(entry.key)];
            if bucket.len() == bucket.capacity() && bucket.try_reserve(1).is_err() {
                self.out_of_memory = true;
                return Err(BuildError::OutOfMemory);
            }
            bucket.push(entry);
        }
        self.pending.clear();
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
        self.pending.clear();
        self.len = 0;
    }

    /// Moves `other`'s apps to this builder, leaving it empty.
    pub(crate) fn append(&mut self, other: &mut Self) -> Result<(), BuildError> {
        if other.len == 0 {
            return Ok(());
        }
        self.flush()?;
        other.flush()?;
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

    /// Where the builder stands, its pending apps moved to their buckets first (when memory
    /// for that cannot be had, the build fails).
    pub(crate) fn mark(&mut self) -> NumericMark {
        let _ = self.flush();
        NumericMark(self.buckets.iter().map(Vec::len).collect())
    }

    /// Back to `mark`, forgetting the apps pushed since.
    pub(crate) fn truncate(&mut self, mark: &NumericMark) {
        self.pending.clear();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.truncate(mark.0.get(i).copied().unwrap_or(0));
        }
        self.len = self.buckets.iter().map(Vec::len).sum();
    }

    /// Replaces the cluster index of each app pushed since `mark` by `map` of it.
    pub(crate) fn map_clusters(&mut self, mark: &NumericMark, map: impl Fn(u32) -> u32) {
        for entry in &mut self.pending {
            entry.cluster = map(entry.cluster);
        }
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            let from = mark.0.get(i).copied().unwrap_or(0);
            for entry in &mut bucket[from..] {
                entry.cluster = map(entry.cluster);
            }
        }
    }

    /// Builds the table, unless a key appears twice or memory for it cannot be had. Each
    /// thread takes a run of whole buckets (about its share of the apps) and the slots from
    /// its first bucket's first home to the next run's: an entry goes to its home or the
    /// first empty slot after it, where a duplicate key is met; the few entries that would
    /// pass the end of their thread's slots are inserted afterwards, on this thread.
    pub(crate) fn build(self) -> Result<NumericTable, BuildError> {
        let threads = match self.len < PARALLEL_FILL_MIN {
            true => 1,
            false => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        self.build_on(threads)
    }

    /// [`Self::build`] on up to `threads` threads.
    fn build_on(mut self, threads: usize) -> Result<NumericTable, BuildError> {
        if self.out_of_memory {
            return Err(BuildError::OutOfMemory);
        }
        self.flush()?;
        let Self {
            mut buckets, len, ..
        } = self;
        let count = slot_count(len);
        let mut slots = crate::sys::try_zeroed_words(count).ok_or(BuildError::OutOfMemory)?;
        let ends = run_ends(&buckets, threads);
        let mut stretches = Vec::with_capacity(ends.len());
        let (mut buckets_left, mut slots_left) = (&mut buckets[..], &mut slots[..]);
        let (mut first_bucket, mut first_slot) = (0, 0);
        for (run, &end) in ends.iter().enumerate() {
            let end_slot = match run + 1 == ends.len() {
                true => count,
                false => Self::first_home(end, count),
            };
            let (run_buckets, rest) = buckets_left.split_at_mut(end - first_bucket);
            let (run_slots, rest_slots) = slots_left.split_at_mut(end_slot - first_slot);
            stretches.push((run_buckets, run_slots, first_slot));
            (buckets_left, slots_left) = (rest, rest_slots);
            (first_bucket, first_slot) = (end, end_slot);
        }
        let filled = super::probe::on_threads(stretches, |(buckets, slots, first)| {
            fill(buckets, slots, first, count)
        });
        let mut table = NumericTable {
            slots: slots.into_boxed_slice(),
            len: 0,
        };
        let mut spilled = Vec::new();
        for stretch in filled {
            let (placed, spills) = stretch?;
            table.len += placed;
            spilled.push(spills);
        }
        for entry in spilled.into_iter().flatten() {
            if table.insert(entry.key, entry.cluster) {
                return Err(BuildError::Duplicate(entry.key));
            }
        }
        Ok(table)
    }
}

/// Splits `buckets` into up to `runs` runs of whole buckets, each holding about an equal
/// share of the entries: where each run ends (the bucket after it).
fn run_ends(buckets: &[Vec<Entry>], runs: usize) -> Vec<usize> {
    let total: usize = buckets.iter().map(Vec::len).sum();
    let mut ends = Vec::with_capacity(runs);
    let mut taken = 0;
    for (bucket, entries) in buckets.iter().enumerate() {
        taken += entries.len();
        if ends.len() + 1 < runs && taken >= total * (ends.len() + 1) / runs {
            ends.push(bucket + 1);
        }
    }
    if ends.last() != Some(&buckets.len()) {
        ends.push(buckets.len());
    }
    ends
}

/// Places the entries of `buckets` in `slots`, a table of `count` slots from slot `first`
/// on, each bucket freed once placed: each entry at its home or the first empty slot after
/// it. How many were placed, and those that would pass the end of `slots` (for the caller
/// to insert; they wrap when `slots` ends the table).
fn fill(
    buckets: &mut [Vec<Entry>],
    slots: &mut [Slot],
    first: usize,
    count: usize,
) -> Result<(usize, Vec<Entry>), BuildError> {
    let mut placed = 0;
    let mut spilled = Vec::new();
    // Slots before this have been written (see `touch`).
    let mut touched = 0;
    for bucket in buckets {
        for entry in std::mem::take(bucket) {
            let key = entry.key;
            let wanted = key.wrapping_add(1);
            let mut at = home(hash(key), count) - first;
            loop {
                if at >= touched {
                    touched = touch(slots, touched, at);
                }
                let Some(found) = slots.get_mut(at) else {
                    spilled.push(entry);
                    break;
                };
                match word(found) {
                    EMPTY => {
                        *found = slot(key, entry.cluster);
                        placed += 1;
                        break;
                    }
                    word if word == wanted => return Err(BuildError::Duplicate(key)),
                    _ => at += 1,
                }
            }
        }
    }
    Ok((placed, spilled))
}

/// Slots per write that touches a page: a page is 4,096 bytes, so a write every 341 slots
/// (4,092 bytes) lands on each.
const SLOTS_PER_PAGE: usize = 4096 / size_of::<Slot>();
/// Slots touched ahead at a time: 64 KiB.
const TOUCH_AHEAD: usize = 16 * SLOTS_PER_PAGE;

/// Writes a zero slot every page from `from` to past `at` (fresh slots: they are zero
/// already), and returns where that ends. A page of the table is written before it is read:
/// read first, an untouched page was mapped to the kernel's shared zero page and the write
/// after it copied that and flushed the TLBs of every core the process runs on (a fifth of
/// a 100M-app build, in interrupts).
fn touch(slots: &mut [Slot], from: usize, at: usize) -> usize {
    let end = (at + TOUCH_AHEAD).min(slots.len());
    for index in (from..end).step_by(SLOTS_PER_PAGE) {
        slots[index] = [0; 3];
    }
    end
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

    /// Entries whose probe passes the end of their thread's stretch are placed afterwards,
    /// and a duplicate among them is still found.
    #[test]
    fn entries_past_a_stretch_are_placed_after() {
        let filler: Vec<u64> = (0..50_000u64).map(|i| i * 7 + 3).collect();
        let extra = 6;
        let count = slot_count(filler.len() + extra);
        let mut builder = NumericBuilder::default();
        for &key in &filler {
            builder.push(key, 1).unwrap();
        }
        let ends = run_ends(&builder.buckets, 2);
        let boundary = NumericBuilder::first_home(ends[0], count);
        let crowded: Vec<u64> = (1_000_000_000u64..)
            .filter(|&key| home(hash(key), count) == boundary - 1)
            .take(extra)
            .collect();
        for &key in &crowded {
            builder.push(key, 2).unwrap();
        }
        assert_eq!(
            run_ends(&builder.buckets, 2),
            ends,
            "the stretches stay as planned"
        );
        let mut with_duplicate = NumericBuilder::default();
        for &key in filler.iter().chain(&crowded).chain(&crowded[3..4]) {
            with_duplicate.push(key, 3).unwrap();
        }
        let table = builder.build_on(2).unwrap();
        assert_eq!(table.len(), filler.len() + extra);
        for &key in &filler {
            assert_eq!(table.get(key), Some(1));
        }
        for &key in &crowded {
            assert_eq!(table.get(key), Some(2));
        }
        assert_eq!(table.iter().count(), table.len());
        assert_eq!(
            with_duplicate.build_on(2).err(),
            Some(BuildError::Duplicate(crowded[3]))
        );
    }

    #[test]
    fn runs_share_the_entries() {
        let sizes = |sizes: &[usize]| -> Vec<Vec<Entry>> {
            let entry = Entry { key: 0, cluster: 0 };
            sizes.iter().map(|&size| vec![entry; size]).collect()
        };
        assert_eq!(run_ends(&sizes(&[5, 5, 5, 5]), 2), [2, 4]);
        assert_eq!(run_ends(&sizes(&[9, 1, 0, 0]), 2), [1, 4]);
        assert_eq!(run_ends(&sizes(&[0, 0, 0, 9]), 3), [4]);
        assert_eq!(run_ends(&sizes(&[]), 2), [0]);
        assert_eq!(run_ends(&sizes(&[1, 1, 1]), 8), [1, 2, 3]);
    }

    #[test]
    fn duplicates_are_reported() {
        assert_eq!(
            NumericTable::build(vec![(5, 0), (6, 1), (5, 2)]).err(),
            Some(BuildError::Duplicate(5))
        );
    }
}
