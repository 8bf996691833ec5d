//! How far long work has come: a dump being loaded, counted in bytes as they are read. Work
//! done within [`QUIET`] says nothing. Past it, a terminal gets one line redrawn every second
//! (bytes, rate, time left); the log (stderr not a terminal, or the journal) gets a line
//! every [`LOG_EVERY`], so that a 100M-app load is not 20 s of silence.

use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work shorter than this shows no progress.
pub const QUIET: Duration = Duration::from_secs(2);
/// Between log lines.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Between redraws on a terminal.
const DRAW_EVERY: Duration = Duration::from_secs(1);

/// Reports the bytes counted by its [`Counted`] readers until dropped.
pub struct Progress {
    done: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    reporter: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting `what` (e.g. "loading /var/lib/cnamed/apps.json") of `total` bytes
    /// (0: unknown, a pipe).
    pub fn start(what: String, total: u64) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = mpsc::channel();
        let terminal = std::io::stderr().is_terminal() && !crate::log::to_journal();
        let counted = Arc::clone(&done);
        let reporter = std::thread::Builder::new()
            .name("cnamed-progress".into())
            .spawn(move || {
                let started = Instant::now();
                let mut wait = QUIET;
                let mut drawn = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    let line = describe(&what, counted.load(Ordering::Relaxed), total, started);
                    if terminal {
                        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
                        drawn = true;
                        wait = DRAW_EVERY;
                    } else {
                        crate::log!(Info, "{line}");
                        wait = LOG_EVERY;
                    }
                }
                if drawn {
                    let _ = write!(std::io::stderr(), "\r\x1b[K");
                }
            })
            .ok();
        Self {
            done,
            stop: Some(stop),
            reporter,
        }
    }

    /// `reader`, its bytes counted as done.
    pub fn count<R: Read>(&self, reader: R) -> Counted<R> {
        Counted {
            reader,
            done: Arc::clone(&self.done),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.join();
        }
    }
}

/// A reader whose bytes count toward a [`Progress`].
pub struct Counted<R> {
    reader: R,
    done: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.reader.read(buf)?;
        self.done.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// "WHAT: 1200 of 1900 MB (63%), 120 MB/s, 6 s left", or the building once every byte is
/// in; amounts under 10 with a decimal.
fn describe(what: &str, done: u64, total: u64, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    let rate = done as f64 / seconds.max(1e-3);
    let megabytes = |bytes: f64| match bytes / 1e6 {
        small if small < 10.0 => format!("{small:.1}"),
        large => format!("{large:.0}"),
    };
    if total == 0 {
        return format!(
            "{what}: {} MB read, {} MB/s",
            megabytes(done as f64),
            megabytes(rate)
        );
    }
    if done >= total {
        return format!(
            "{what}: all {} MB read in {seconds:.0} s, building the tables",
            megabytes(total as f64)
        );
    }
    let left = (total - done) as f64 / rate.max(1.0);
    format!(
        "{what}: {} of {} MB ({:.0}%), {} MB/s, {left:.0} s left",
        megabytes(done as f64),
        megabytes(total as f64),
        done as f64 * 100.0 / total as f64,
        megabytes(rate)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_how_fast_and_how_long() {
        let started = Instant::now() - Duration::from_secs(4);
        let line = describe("loading d.json", 400_000_000, 1_000_000_000, started);
        assert!(
            line.starts_with("loading d.json: 400 of 1000 MB (40%), 100 MB/s, 6 s left"),
            "{line}"
        );
        let line = describe("loading d.json", 1_000_000_000, 1_000_000_000, started);
        assert!(line.contains("all 1000 MB read in 4 s, building"), "{line}");
        let line = describe("loading -", 8_000_000, 0, started);
        assert!(
            line.starts_with("loading -: 8.0 MB read, 2.0 MB/s"),
            "{line}"
        );
    }

    #[test]
    fn counted_readers_add_up() {
        let progress = Progress::start("test".into(), 10);
        let mut text = String::new();
        progress
            .count(&b"hello"[..])
            .read_to_string(&mut text)
            .unwrap();
        progress
            .count(&b"world"[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "helloworld");
        assert_eq!(progress.done.load(Ordering::Relaxed), 10);
        // Dropped within QUIET: nothing said, the reporter gone.
        drop(progress);
    }
}
