//! Building a numeric table: apps collected in buckets by hash, then placed in the table on
//! every core, each thread a run of buckets and the stretch of slots their homes lie in.

use super::{hash, slot, word, BuildError, NumericTable, Slot, EMPTY};
use crate::snapshot::probe::{home, on_threads, slot_count};

/// A numeric app while the table is being built; packed to 12 bytes like a slot.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Entry {
    key: u64,
    cluster: u32,
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
        let filled = on_threads(stretches, |(buckets, slots, first)| {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
