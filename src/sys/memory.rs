//! How the large lookup tables meet the memory: transparent huge pages, and prefetching.

use std::ops::Range;

/// Buffers at least this large are advised: glibc maps allocations of 32 MiB and more on
/// their own (its largest mmap threshold), so the advice never outlives the buffer on
/// memory the allocator hands out again.
const MIN_ADVISED: usize = 32 << 20;
/// The huge page size of x86-64 (and of arm64 with 4K pages): only whole ones are advised.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back `buffer`'s allocation, its whole capacity, with transparent
/// huge pages from now on (madvise MADV_HUGEPAGE, which THP's default `madvise` mode
/// waits for). A random lookup in a table of hundreds of MB then rarely misses the TLB:
/// string IDs at 10M apps, 45-47 ns instead of 60-62 (criterion), for a load about 0.5 s
/// slower (the kernel clears each 2 MB page whole before it is written). Pages touched
/// before stay small until khugepaged merges them, so callers advise before they write.
/// A no-op for small buffers and where THP is `never` or missing (the error is of no use:
/// the table works the same, slower).
pub fn advise_huge_pages<T>(buffer: &Vec<T>) {
    let bytes = buffer.capacity() * size_of::<T>();
    let Some(range) = advised_range(buffer.as_ptr() as usize, bytes) else {
        return;
    };
    // SAFETY: the range lies inside `buffer`'s allocation, mapped while it is borrowed,
    // and starts on a page boundary; MADV_HUGEPAGE changes how the kernel backs those pages,
    // never what they hold.
    unsafe {
        libc::madvise(
            range.start as *mut libc::c_void,
            range.len(),
            libc::MADV_HUGEPAGE,
        );
    }
}

/// `count` arrays of zero words from the allocator's zeroed memory: a large allocation is
/// fresh pages from the kernel, zero until written, so nothing is written here and each page
/// is first touched (and cleared) by whichever thread writes it. A table built on every core
/// then costs no pass over its memory beforehand, and its resident size grows only as it is
/// filled. `None` when the memory cannot be had.
pub fn try_zeroed_words<const N: usize>(count: usize) -> Option<Vec<[u32; N]>> {
    let layout = std::alloc::Layout::array::<[u32; N]>(count).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout's size is not zero.
    let words = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<[u32; N]>();
    if words.is_null() {
        return None;
    }
    // SAFETY: `words` was allocated by the global allocator with the layout of `count`
    // arrays, which is the size and alignment a Vec of that capacity frees with; all zero
    // bytes are valid u32s, so all `count` arrays are initialized.
    Some(unsafe { Vec::from_raw_parts(words, count, count) })
}

/// Asks the CPU to bring the cache line holding `value` into its caches, without waiting
/// for it (PREFETCHT0 on x86-64; nothing elsewhere). A lookup in a table of gigabytes misses
/// the caches: asking for the slots of a batch of keys first lets their misses overlap.
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory; the address comes from a
    // reference, so it is a valid one anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The whole huge pages inside `bytes` at `address`, when the buffer is large enough.
fn advised_range(address: usize, bytes: usize) -> Option<Range<usize>> {
    if bytes < MIN_ADVISED {
        return None;
    }
    let start = address.next_multiple_of(HUGE_PAGE);
    let end = (address + bytes) / HUGE_PAGE * HUGE_PAGE;
    (start < end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_words_are_zero() {
        let words = try_zeroed_words::<3>(100_000).unwrap();
        assert_eq!(words.len(), 100_000);
        assert!(words.iter().all(|word| *word == [0; 3]));
        assert!(try_zeroed_words::<3>(0).unwrap().is_empty());
        assert!(try_zeroed_words::<3>(usize::MAX / 4).is_none());
    }

    #[test]
    fn only_whole_huge_pages_of_large_buffers_are_advised() {
        let mb = 1 << 20;
        assert_eq!(advised_range(4096, 31 * mb), None);
        assert_eq!(advised_range(4096 + 16, 40 * mb), Some(2 * mb..40 * mb));
        assert_eq!(advised_range(2 * mb, 32 * mb), Some(2 * mb..34 * mb));
        assert_eq!(advised_range(2 * mb, 33 * mb), Some(2 * mb..34 * mb));
    }
}
