//! The process and its threads: the open-file limit and the scheduling policy of a thread.

use std::io;

/// Raises the soft limit on open files to the hard limit, so that a worker can hold as
/// many TCP connections as the operator allows. Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// A thread's kernel ID, for [`set_thread_idle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId(libc::pid_t);

/// The calling thread's kernel ID.
pub fn current_thread() -> ThreadId {
    // SAFETY: gettid has no preconditions.
    ThreadId(unsafe { libc::gettid() })
}

/// Moves a thread of this process to SCHED_IDLE (`idle`: it runs only when its core has
/// nothing else to do, and a waking worker preempts it at once) or back to SCHED_OTHER.
pub fn set_thread_idle(thread: ThreadId, idle: bool) -> io::Result<()> {
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `thread` names a thread of ours; priority 0 is valid for both policies.
    let result = unsafe { libc::sched_setscheduler(thread.0, policy, &param) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
