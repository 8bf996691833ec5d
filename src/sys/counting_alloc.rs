//! A global allocator that counts allocations while switched on: how the zero-allocation
//! property of the query path is tested rather than hoped for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, counting `alloc` and `realloc` calls from every thread while
/// [`CountingAllocator::count`] runs, or from the workers only while
/// [`CountingAllocator::count_workers`] runs. Install it with `#[global_allocator]` in a test
/// binary.
pub struct CountingAllocator {
    counting: AtomicBool,
    workers_only: AtomicBool,
    allocations: AtomicUsize,
}

/// The name every worker thread's name starts with.
const WORKER_NAME: &[u8] = b"cnamed-worker";

thread_local! {
    /// Whether this thread is a worker: 0 not known yet, 1 yes, 2 no. Const-initialised and
    /// without a destructor, so reading it never allocates.
    static WORKER: Cell<u8> = const { Cell::new(0) };
}

/// Whether the calling thread is a server worker, by its name (read once, with prctl: no
/// allocation, as `std::thread::current` could make).
fn is_worker() -> bool {
    WORKER.with(|worker| {
        if worker.get() == 0 {
            let mut name = [0u8; 16];
            // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into `name`.
            let read = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
            let yes = read == 0 && name.starts_with(WORKER_NAME);
            worker.set(if yes { 1 } else { 2 });
        }
        worker.get() == 1
    })
}

impl CountingAllocator {
    pub const fn new() -> Self {
        Self {
            counting: AtomicBool::new(false),
            workers_only: AtomicBool::new(false),
            allocations: AtomicUsize::new(0),
        }
    }

    /// Runs `work` and returns how many allocations any thread made meanwhile.
    pub fn count(&self, work: impl FnOnce()) -> usize {
        self.count_in(false, work)
    }

    /// Runs `work` and returns how many allocations the server's workers made meanwhile:
    /// for windows where other threads (an UPDATE's committer, a transfer) must allocate.
    pub fn count_workers(&self, work: impl FnOnce()) -> usize {
        self.count_in(true, work)
    }

    fn count_in(&self, workers_only: bool, work: impl FnOnce()) -> usize {
        self.allocations.store(0, Ordering::SeqCst);
        self.workers_only.store(workers_only, Ordering::SeqCst);
        self.counting.store(true, Ordering::SeqCst);
        work();
        self.counting.store(false, Ordering::SeqCst);
        self.allocations.load(Ordering::SeqCst)
    }

    fn note(&self) {
        if self.counting.load(Ordering::Relaxed)
            && (!self.workers_only.load(Ordering::Relaxed) || is_worker())
        {
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

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller upholds `alloc_zeroed`'s contract, which we pass on.
        unsafe { System.alloc_zeroed(layout) }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates and frees one byte through `allocator` on a thread named `name`.
    fn allocate_on(allocator: &'static CountingAllocator, name: &str) {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let layout = Layout::from_size_align(1, 1).unwrap();
                // SAFETY: a non-zero layout; the pointer is freed with the same layout.
                unsafe {
                    let pointer = allocator.alloc(layout);
                    allocator.dealloc(pointer, layout);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn workers_are_told_by_their_thread_name() {
        static ALLOCATOR: CountingAllocator = CountingAllocator::new();
        let workers = ALLOCATOR.count_workers(|| {
            allocate_on(&ALLOCATOR, "cnamed-worker-3");
            allocate_on(&ALLOCATOR, "cnamed-update");
        });
        assert_eq!(workers, 1);
        let all = ALLOCATOR.count(|| {
            allocate_on(&ALLOCATOR, "cnamed-worker-3");
            allocate_on(&ALLOCATOR, "cnamed-update");
        });
        assert_eq!(all, 2);
    }
}
