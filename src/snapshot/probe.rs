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

/// Below this many entries a table's entries are sorted on one thread.
const PARALLEL_SORT_MIN: usize = 1 << 20;

/// Sorts `entries` by `key` on two threads when there are many: split around the median
/// key in place, each half sorted by its own thread (a build runs with both cores' help at
/// start; a reload's threads share the loader's SCHED_IDLE priority). One thread when a
/// second cannot be had.
pub(super) fn sort_by_key<T: Send, K: Ord>(entries: &mut [T], key: impl Fn(&T) -> K + Sync) {
    if entries.len() < PARALLEL_SORT_MIN {
        entries.sort_unstable_by_key(key);
        return;
    }
    let middle = entries.len() / 2;
    entries.select_nth_unstable_by_key(middle, &key);
    let (low, high) = entries.split_at_mut(middle);
    let key = &key;
    let spawned = std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("cnamed-sort".into())
            .spawn_scoped(scope, || low.sort_unstable_by_key(key));
        high.sort_unstable_by_key(key);
        helper.is_ok()
    });
    if !spawned {
        crate::log!(Warning, "no second thread to sort with: sorting on one");
        entries[..middle].sort_unstable_by_key(key);
    }
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
    pages: Pages,
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
    reserve(entries, count - placed, true, pages)?;
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

/// What backs a table's memory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pages {
    /// The kernel's default. The numeric table: its lookups are one cache line, fast enough
    /// without, and huge pages made a 100M-app load 4.7 s slower (12.5 -> 17.1 s).
    Default,
    /// Transparent huge pages advised (`sys::advise_huge_pages`). The string table: two
    /// dependent misses per lookup, each cheaper without a TLB miss in front of it.
    Huge,
}

/// Room for `additional` more entries in a table's buffer (amortized growth, or exactly
/// that much), advised for huge pages, if asked, whenever the allocation changes, before
/// the room is written. `None` when memory cannot be had.
pub(super) fn reserve<T>(
    buffer: &mut Vec<T>,
    additional: usize,
    exact: bool,
    pages: Pages,
) -> Option<()> {
    let capacity = buffer.capacity();
    if exact {
        buffer.try_reserve_exact(additional).ok()?;
    } else {
        buffer.try_reserve(additional).ok()?;
    }
    if pages == Pages::Huge && buffer.capacity() != capacity {
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
    fn sorting_on_two_threads_sorts() {
        let mut state = 7u64;
        let mut values: Vec<(u32, u64)> = (0..PARALLEL_SORT_MIN as u64 + 1000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                ((state >> 40) as u32, i)
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable_by_key(|&(key, i)| (key, i));
        sort_by_key(&mut values, |&(key, i)| (key, i));
        assert_eq!(values, expected);
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
