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

/// Runs `f` with the process's file mode creation mask set to `mask`, then restores it: a
/// file `f` creates (a Unix socket by bind) never exists with wider permissions than
/// `0o777 & !mask`, with no window before a chmod. The mask is the process's: call it only
/// where no other thread creates files meanwhile (start-up).
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask only swaps the process's creation mask; it cannot fail or touch memory.
    let old = unsafe { libc::umask(mask as libc::mode_t) };
    let result = f();
    // SAFETY: as above, putting back the mask that was in place.
    unsafe { libc::umask(old) };
    result
}

/// A thread's kernel ID, for [`set_thread_idle`] and [`lower_thread_priority`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId(libc::pid_t);

/// The host name (gethostname(2): no /proc access needed, so `ProcSubset=pid` units work).
pub fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the kernel writes at most that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let len = buffer.iter().position(|&b| b == 0)?;
    String::from_utf8(buffer[..len].to_vec()).ok()
}

/// The calling thread's kernel ID.
pub fn current_thread() -> ThreadId {
    // SAFETY: gettid has no preconditions.
    ThreadId(unsafe { libc::gettid() })
}

/// Gives a thread of this process the lowest priority of the ordinary policy (nice 19): it
/// still gets a small share (about 1.5% against a thread at nice 0) of a core that is never
/// idle, where SCHED_IDLE would get none. Lowering needs no privilege.
pub fn lower_thread_priority(thread: ThreadId) -> io::Result<()> {
    // SAFETY: `thread` names a thread of ours (setpriority with PRIO_PROCESS and a thread ID
    // applies to that thread alone on Linux); 19 is a valid nice value.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, thread.0 as libc::id_t, 19) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves a thread of this process to SCHED_IDLE (`idle`: it runs only when its core has
/// nothing else to do, and a waking worker preempts it at once) or back to SCHED_OTHER.
pub fn set_thread_idle(thread: ThreadId, idle: bool) -> io::Result<()> {
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    // Zeroed: priority 0, and zero for the fields only some C libraries have (musl's
    // SCHED_SPORADIC ones).
    // SAFETY: sched_param is plain integers and timespecs, for which all zeroes is valid.
    let param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: `thread` names a thread of ours; priority 0 is valid for both policies.
    let result = unsafe { libc::sched_setscheduler(thread.0, policy, &param) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The process's resource use, for the standard `process_*` metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessUsage {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
}

/// Reads the process's resource use from /proc; a figure that cannot be read is 0.
pub fn process_usage() -> ProcessUsage {
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces and parentheses: fields are counted after its end.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime, are the 12th and 13th after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu_ticks = field(11) + field(12);
    let resident_pages = field(21);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0);
    ProcessUsage {
        resident_bytes: resident_pages * page.max(0) as u64,
        cpu_seconds: cpu_ticks as f64 / ticks.max(1) as f64,
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64),
        max_fds,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_made_under_a_mask_has_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("cnamed-umask-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        with_umask(0o077, || std::fs::write(&path, b"x")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mode, 0o600);
    }

    use super::*;

    #[test]
    fn usage_is_read() {
        // Burn a little CPU so that at least one tick is counted.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let usage = process_usage();
        assert!(usage.resident_bytes > 1 << 20, "{usage:?}");
        assert!(usage.cpu_seconds > 0.0, "{usage:?}");
        assert!(usage.open_fds >= 3, "{usage:?}");
        assert!(usage.max_fds >= usage.open_fds, "{usage:?}");
    }
}
