//! Signals, taken synchronously on one thread: blocked everywhere, waited for with sigwait.

use std::io;
use std::mem::MaybeUninit;

/// The signals the server handles.
pub use libc::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

/// Every signal the server takes on its signal thread: SIGHUP reloads, SIGTERM and SIGINT
/// stop, SIGUSR1 is ignored. Blocked in every other thread, where their default action would
/// end the process.
pub const SERVER_SIGNALS: [libc::c_int; 4] = [SIGHUP, SIGTERM, SIGINT, SIGUSR1];

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset takes valid signal
    // numbers, and our callers pass libc constants.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks `signals` in the calling thread and in every thread it spawns afterwards, so that
/// only [`wait_for_signal`] receives them, on one thread, outside any handler.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = signal_set(signals);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

/// Waits for one of `signals` (which must be blocked) and returns it.
pub fn wait_for_signal(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = signal_set(signals);
    let mut signal = 0;
    // SAFETY: `set` is initialised and `signal` is a valid place to write.
    let result = unsafe { libc::sigwait(&set, &mut signal) };
    if result == 0 {
        Ok(signal)
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

/// Runs `f` with `signals` blocked in the calling thread, then restores its mask: a thread
/// `f` spawns starts with them blocked, so that none can be delivered to it, not even before
/// its first instruction.
pub fn with_signals_blocked<T>(signals: &[libc::c_int], f: impl FnOnce() -> T) -> T {
    let set = signal_set(signals);
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised and `old` is a valid place for the kernel to write.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) } == 0;
    let result = f();
    if blocked {
        // SAFETY: `old` was written by the successful call above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
    }
    result
}
