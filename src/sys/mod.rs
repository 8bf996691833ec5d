//! The only module with `unsafe`: the system calls std, socket2 and mio lack, behind a safe
//! API, one file per concern. Linux only: recvmmsg/sendmmsg, SCHED_IDLE and gettid are
//! Linux's, and SO_REUSEPORT balancing is as Linux does it.
#![allow(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("cnamed runs on Linux only (recvmmsg, sendmmsg, SO_REUSEPORT, SCHED_IDLE)");

mod clock;
mod counting_alloc;
mod memory;
mod process;
mod random;
mod signal;
mod udp;

pub use clock::{monotonic_usec, unix_millis, unix_seconds};
pub use memory::{advise_huge_pages, prefetch, try_zeroed_words};
pub use process::{
    current_thread, host_name, lower_thread_priority, process_usage, raise_fd_limit,
    set_thread_idle, with_umask, ProcessUsage, ThreadId,
};
pub use random::random_bytes;
pub use signal::{
    block_signals, wait_for_signal, with_signals_blocked, SERVER_SIGNALS, SIGHUP, SIGINT, SIGTERM,
    SIGUSR1,
};
pub use udp::{UdpBatch, BATCH, RECV_SLOT, SEND_SLOT};

/// What only tests and tools use, re-exported by `crate::testing`.
pub(crate) mod testing {
    pub use super::counting_alloc::CountingAllocator;
    pub use super::udp::{send_connected, wait_readable};
}
