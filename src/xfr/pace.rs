//! How long a transfer may take and how slow it may go, in either direction: a deadline for
//! the whole transfer (BIND's `max-transfer-time-in`/`-out`) and a minimum rate over windows
//! of [`RATE_WINDOW`] (BIND's `min-transfer-rate-in`). A per-read timeout alone lets a peer
//! that sends a byte every few seconds hold a transfer forever.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The window the minimum rate is measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(30);

/// The limits of one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferLimits {
    /// The longest a whole transfer may take.
    pub max_time: Duration,
    /// Bytes per second, averaged over each [`RATE_WINDOW`]; 0: no minimum.
    pub min_rate: u64,
    /// The longest one read or write may wait.
    pub io_timeout: Duration,
}

/// Why a transfer was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TooSlow {
    /// It ran past `max_time`.
    Deadline(Duration),
    /// A window moved fewer bytes than the minimum rate asks.
    Rate { moved: u64, min_rate: u64 },
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deadline(limit) => write!(
                f,
                "the transfer took longer than its limit of {} s",
                limit.as_secs()
            ),
            Self::Rate { moved, min_rate } => write!(
                f,
                "{moved} bytes in {} s, under the minimum rate of {min_rate} bytes/s",
                RATE_WINDOW.as_secs()
            ),
        }
    }
}

impl From<TooSlow> for io::Error {
    fn from(slow: TooSlow) -> Self {
        Self::new(io::ErrorKind::TimedOut, slow.to_string())
    }
}

/// The clock of one transfer: when it started, and what the current window has moved.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    limits: TransferLimits,
    started: Instant,
    window_started: Instant,
    window_bytes: u64,
}

impl Pace {
    pub fn new(limits: TransferLimits, now: Instant) -> Self {
        Self {
            limits,
            started: now,
            window_started: now,
            window_bytes: 0,
        }
    }

    /// How long the next read or write may wait, or why the transfer must end now.
    pub fn next_wait(&mut self, now: Instant) -> Result<Duration, TooSlow> {
        let elapsed = now.saturating_duration_since(self.started);
        let left = self
            .limits
            .max_time
            .checked_sub(elapsed)
            .filter(|left| !left.is_zero())
            .ok_or(TooSlow::Deadline(self.limits.max_time))?;
        let in_window = now.saturating_duration_since(self.window_started);
        if in_window >= RATE_WINDOW {
            let wanted = self.limits.min_rate * RATE_WINDOW.as_secs();
            if self.window_bytes < wanted {
                return Err(TooSlow::Rate {
                    moved: self.window_bytes,
                    min_rate: self.limits.min_rate,
                });
            }
            self.window_started = now;
            self.window_bytes = 0;
        }
        // Wake when the window closes, to judge it even if nothing comes.
        let window_left = match self.limits.min_rate {
            0 => Duration::MAX,
            _ => RATE_WINDOW.saturating_sub(now.saturating_duration_since(self.window_started)),
        };
        let wait = left.min(self.limits.io_timeout).min(window_left);
        Ok(wait.max(Duration::from_millis(1)))
    }

    /// Counts `bytes` moved.
    pub fn moved(&mut self, bytes: usize) {
        self.window_bytes += bytes as u64;
    }
}

/// A TCP stream whose every read and write keeps to a [`Pace`]: each waits at most as long as
/// the transfer has left, and a window too slow ends it with a `TimedOut` error naming why.
pub struct PacedStream<'a> {
    stream: &'a TcpStream,
    pace: Pace,
}

impl<'a> PacedStream<'a> {
    pub fn new(stream: &'a TcpStream, limits: TransferLimits) -> Self {
        Self {
            stream,
            pace: Pace::new(limits, Instant::now()),
        }
    }

    /// Runs one read or write with the time it may take, repeating it across the windows
    /// while it times out without the transfer's limits being reached.
    fn paced<T>(
        &mut self,
        set_timeout: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
        mut op: impl FnMut(&TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        let started = Instant::now();
        loop {
            let wait = self.pace.next_wait(Instant::now())?;
            set_timeout(self.stream, Some(wait))?;
            match op(self.stream) {
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if started.elapsed() >= self.pace.limits.io_timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "nothing for {} s",
                                self.pace.limits.io_timeout.as_secs_f64()
                            ),
                        ));
                    }
                }
                other => return other,
            }
        }
    }
}

impl Read for PacedStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.paced(TcpStream::set_read_timeout, |mut s| s.read(buf))?;
        self.pace.moved(read);
        Ok(read)
    }
}

impl Write for PacedStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.paced(TcpStream::set_write_timeout, |mut s| s.write(buf))?;
        self.pace.moved(written);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TransferLimits = TransferLimits {
        max_time: Duration::from_secs(100),
        min_rate: 10,
        io_timeout: Duration::from_secs(30),
    };

    #[test]
    fn a_transfer_ends_at_its_deadline_however_it_trickles() {
        let start = Instant::now();
        let mut pace = Pace::new(LIMITS, start);
        let mut at = start;
        // 400 bytes every 29 s: above the rate, under every timeout.
        while at < start + Duration::from_secs(99) {
            let wait = pace.next_wait(at).unwrap();
            assert!(wait <= start + LIMITS.max_time - at, "{wait:?}");
            pace.moved(400);
            at += Duration::from_secs(29);
        }
        assert_eq!(
            pace.next_wait(start + LIMITS.max_time),
            Err(TooSlow::Deadline(LIMITS.max_time))
        );
    }

    #[test]
    fn a_window_under_the_minimum_rate_ends_the_transfer() {
        let start = Instant::now();
        let mut pace = Pace::new(LIMITS, start);
        pace.moved(299);
        // The wait never passes the window's end, to judge it in time.
        assert_eq!(
            pace.next_wait(start + Duration::from_secs(20)),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            pace.next_wait(start + RATE_WINDOW),
            Err(TooSlow::Rate {
                moved: 299,
                min_rate: 10
            })
        );
        // 300 bytes in the window is enough; the next window starts from nothing.
        let mut pace = Pace::new(LIMITS, start);
        pace.moved(300);
        assert!(pace.next_wait(start + RATE_WINDOW).is_ok());
        assert!(pace.next_wait(start + 2 * RATE_WINDOW).is_err());
        // No minimum: only the deadline.
        let mut pace = Pace::new(
            TransferLimits {
                min_rate: 0,
                ..LIMITS
            },
            start,
        );
        assert!(pace.next_wait(start + Duration::from_secs(99)).is_ok());
    }
}
