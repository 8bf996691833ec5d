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
