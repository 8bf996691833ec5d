//! A global allocator that counts allocations while switched on: how the zero-allocation
//! property of the query path is tested rather than hoped for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, counting `alloc` and `realloc` calls from every thread while
/// [`CountingAllocator::count`] runs. Install it with `#[global_allocator]` in a test binary.
pub struct CountingAllocator {
    counting: AtomicBool,
    allocations: AtomicUsize,
}

impl CountingAllocator {
    pub const fn new() -> Self {
        Self {
            counting: AtomicBool::new(false),
            allocations: AtomicUsize::new(0),
        }
    }

    /// Runs `work` and returns how many allocations any thread made meanwhile.
    pub fn count(&self, work: impl FnOnce()) -> usize {
        self.allocations.store(0, Ordering::SeqCst);
        self.counting.store(true, Ordering::SeqCst);
        work();
        self.counting.store(false, Ordering::SeqCst);
        self.allocations.load(Ordering::SeqCst)
    }

    fn note(&self) {
        if self.counting.load(Ordering::Relaxed) {
            self.allocations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for CountingAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed unchanged to the system allocator, which upholds the
// GlobalAlloc contract; counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: `ptr` came from `System`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
