//! Randomness from the kernel, for secrets (cookies, the rate limiter's hash key).

use std::io::{self, Read};

/// Fills `out` from /dev/urandom.
pub fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(out)
}
