//! Open addressing with linear probing over a table of any size, shared by the numeric and
//! string app tables. The home slot of a hash is `hash * slots / 2^64` (a multiply instead
//! of a power-of-two mask), so a table is sized to its load factor exactly: at 100M apps a
//! power of two would have cost up to twice the slots.

/// Slots for `len` entries at a load factor of at most 0.6: a hit probes 1.75 slots on
/// average, a miss (an NXDOMAIN flood) 3.6, where 0.7 would cost 6.1; at least 40% of the
/// slots stay empty, which ends every probe.
pub(super) fn slot_count(len: usize) -> usize {
    (len * 5 / 3 + 1).max(16)
}

/// The home slot of `hash` in a table of `count` slots.
#[inline]
pub(super) fn home(hash: u64, count: usize) -> usize {
    ((u128::from(hash) * count as u128) >> 64) as usize
}

/// The home slot of a 32-bit `tag` in a table of `count` (< 2^32) slots.
#[inline]
pub(super) fn home32(tag: u32, count: usize) -> usize {
    ((u64::from(tag) * count as u64) >> 32) as usize
}

/// Below this many entries a table's entries are sorted on one thread, in one piece.
const PARALLEL_SORT_MIN: usize = 1 << 20;
/// Entries per bucket aimed at when splitting by hash: a bucket's sort stays in the caches.
const BUCKET_ENTRIES: usize = 1 << 15;

/// Sorts `entries` by `hash`, whose top bits are spread evenly (a key's hash, or a tag
/// shifted up), without a global sort: the entries are split in place into buckets by the
/// top bits of their hash (an American flag sort: each entry moved once, straight to its
/// bucket), then each bucket is sorted on its own, the buckets shared among every core this
/// process may use (a build runs with all of them at start; a reload's threads share the
/// loader's SCHED_IDLE priority). One thread when no other can be had.
pub(super) fn sort_by_hash<T: Send + Copy>(entries: &mut [T], hash: impl Fn(&T) -> u64 + Sync) {
    let len = entries.len();
    if len < PARALLEL_SORT_MIN {
        entries.sort_unstable_by_key(hash);
        return;
    }
    let bits = (len / BUCKET_ENTRIES)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(8, 16);
    let bucket_of = |entry: &T| (hash(entry) >> (64 - bits)) as usize;
    let mut ends = vec![0usize; 1 << bits];
    for entry in entries.iter() {
        ends[bucket_of(entry)] += 1;
    }
    let mut heads = Vec::with_capacity(ends.len());
    let mut sum = 0;
    for end in &mut ends {
        heads.push(sum);
        sum += *end;
        *end = sum;
    }
    let starts = heads.clone();
    for bucket in 0..ends.len() {
        while heads[bucket] < ends[bucket] {
            // Follow the cycle from the first entry not in place: each entry taken goes to
            // the next free place of its bucket, displacing the one there.
            let mut entry = entries[heads[bucket]];
            let mut home = bucket_of(&entry);
            while home != bucket {
                std::mem::swap(&mut entry, &mut entries[heads[home]]);
                heads[home] += 1;
                home = bucket_of(&entry);
            }
            entries[heads[bucket]] = entry;
            heads[bucket] += 1;
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Each thread sorts a run of whole buckets holding about its share of the entries.
    let mut pieces = Vec::with_capacity(threads);
    let mut rest = &mut *entries;
    let mut taken = 0;
    let mut first_bucket = 0;
    for thread in 1..=threads {
        let share = len * thread / threads;
        let last_bucket = match thread {
            _ if thread == threads => ends.len(),
            _ => ends.partition_point(|&end| end <= share).max(first_bucket),
        };
        let end = match last_bucket {
            0 => 0,
            _ => ends[last_bucket - 1],
        };
        let (piece, tail) = rest.split_at_mut(end - taken);
        pieces.push((piece, taken, first_bucket..last_bucket));
        rest = tail;
        taken = end;
        first_bucket = last_bucket;
    }
    on_threads(
        pieces,
        |(piece, offset, buckets): (&mut [T], usize, std::ops::Range<usize>)| {
            for bucket in buckets {
                piece[starts[bucket] - offset..ends[bucket] - offset].sort_unstable_by_key(&hash);
            }
        },
    );
}

/// Runs `work` on each of `jobs`, one thread each (this one among them; jobs are taken in
/// order as threads come free), and returns the results in the jobs' order. Jobs whose
/// thread cannot be had run on this one.
pub(super) fn on_threads<J: Send, R: Send>(jobs: Vec<J>, work: impl Fn(J) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};
    let count = jobs.len();
    let jobs: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|job| Mutex::new(Some(job))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let taken = AtomicUsize::new(0);
    let worker = || loop {
        let i = taken.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else {
            return;
        };
        let job = job.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(job) = job {
            let result = work(job);
            *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..count {
            let thread = std::thread::Builder::new().name("cnamed-build".into());
            if thread.spawn_scoped(scope, worker).is_err() {
                crate::log!(Warning, "no thread to build a table with: building on one");
                break;
            }
        }
        worker();
    });
    results
        .into_iter()
        .map(|result| {
            let result = result.into_inner().unwrap_or_else(PoisonError::into_inner);
            result.expect("every job ran: a panic in one ended the scope")
        })
        .collect()
}

/// Turns `entries`, sorted by home slot, into a table of `count` slots in their own
/// allocation: grown to `count` (large blocks grow by remapping, without a copy), each entry
/// moved, last first, to where linear probing puts it. In sorted order an entry's slot is its
/// home or one past the entry before it: never before its own index, so moving from the last
/// entry down never overwrites one not yet moved; a bit per entry marks where each run of
/// adjacent entries starts. Entries of a last run that passes the table's end are returned,
/// for the caller to insert (they wrap to the start). `None` when memory cannot be had.
pub(super) fn spread_in_place<T: Copy>(
    entries: &mut Vec<T>,
    count: usize,
    empty: T,
    home_of: impl Fn(&T) -> usize,
) -> Option<Vec<T>> {
    let len = entries.len();
    let mut run_starts = vec![0u64; len.div_ceil(64)];
    let mut end = 0;
    for (i, entry) in entries.iter().enumerate() {
        let home = home_of(entry);
        if i == 0 || home >= end {
            run_starts[i / 64] |= 1 << (i % 64);
            end = home;
        }
        end += 1;
    }
    let wrapped: Vec<T> = entries.drain(len - end.saturating_sub(count)..).collect();
    let placed = entries.len();
    reserve(entries, count - placed, true)?;
    entries.resize(count, empty);
    let is_start = |i: usize| run_starts[i / 64] & (1 << (i % 64)) != 0;
    let (mut start, mut start_home) = (placed, 0);
    for i in (0..placed).rev() {
        if i < start {
            start = i;
            while !is_start(start) {
                start -= 1;
            }
            start_home = home_of(&entries[start]);
        }
        let target = start_home + (i - start);
        if target != i {
            entries[target] = entries[i];
            entries[i] = empty;
        }
    }
    Some(wrapped)
}

/// Room for `additional` more entries in a string table's buffer (amortized growth, or
/// exactly that much), advised for transparent huge pages (`sys::advise_huge_pages`)
/// whenever the allocation changes, before the room is written: a string lookup's two
/// dependent misses are each cheaper without a TLB miss in front of it. (The numeric
/// table stays on the kernel's default pages: its lookups are one cache line, fast enough
/// without, and huge pages made a 100M-app load 4.7 s slower, 12.5 -> 17.1 s.) `None` when
/// memory cannot be had.
pub(super) fn reserve<T>(buffer: &mut Vec<T>, additional: usize, exact: bool) -> Option<()> {
    let capacity = buffer.capacity();
    if exact {
        buffer.try_reserve_exact(additional).ok()?;
    } else {
        buffer.try_reserve(additional).ok()?;
    }
    if buffer.capacity() != capacity {
        crate::sys::advise_huge_pages(buffer);
    }
    Some(())
}

/// The slot after `index`, wrapping.
#[inline]
pub(super) fn next(index: usize, count: usize) -> usize {
    let next = index + 1;
    if next == count {
        0
    } else {
        next
    }
}

/// How many steps forward, wrapping, from slot `from` to slot `to`.
#[inline]
pub(super) fn distance(from: usize, to: usize, count: usize) -> usize {
    if to >= from {
        to - from
    } else {
        to + count - from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_hash_sorts() {
        let mut state = 7u64;
        let mut values: Vec<(u32, u64)> = (0..PARALLEL_SORT_MIN as u64 + 1000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                ((state >> 32) as u32, i)
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        sort_by_hash(&mut values, |&(key, _)| u64::from(key) << 32);
        assert!(values.is_sorted_by_key(|&(key, _)| key));
        // Equal keys in any order: the same entries once sorted by both.
        values.sort_unstable();
        assert_eq!(values, expected);
    }

    #[test]
    fn jobs_on_threads_give_results_in_order() {
        let results = on_threads((0..5u64).collect(), |job| job * 10);
        assert_eq!(results, [0, 10, 20, 30, 40]);
        assert!(on_threads(Vec::<u64>::new(), |job| job).is_empty());
    }

    #[test]
    fn homes_cover_the_table_in_hash_order() {
        assert_eq!(home(0, 10), 0);
        assert_eq!(home(u64::MAX, 10), 9);
        assert_eq!(home(1 << 63, 10), 5);
        assert_eq!(next(9, 10), 0);
        assert_eq!(distance(8, 1, 10), 3);
        assert_eq!(distance(1, 8, 10), 7);
        assert_eq!(slot_count(0), 16);
        assert_eq!(slot_count(6_000_000), 10_000_001);
    }
}
