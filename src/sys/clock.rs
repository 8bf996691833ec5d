//! Clocks: the wall clock as DNS counts it (Unix seconds) and the monotonic clock systemd
//! reads.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds; 0 if the clock is before 1970.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Unix time in seconds, truncated to 32 bits as SOA serials and cookie timestamps hold it
/// (both compared in serial number arithmetic, RFC 1982, so the wrap in 2106 is harmless).
pub fn unix_seconds() -> u32 {
    (unix_millis() / 1000) as u32
}

/// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC= expects.
pub fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}
