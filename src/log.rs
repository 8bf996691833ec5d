//! Log lines to stderr that can never stop or stall serving. `eprintln!` panics when stderr
//! is a pipe whose reader has gone (EPIPE), which aborts a release build, and blocks while a
//! full pipe is not read. Here lines go through a bounded queue to one writer thread that
//! ignores write errors; a line that finds the queue full is dropped and counted, and the
//! next line that gets through says how many were lost.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sys;

/// Lines waiting for the writer; more are dropped rather than waited for.
const QUEUE: usize = 256;

enum Entry {
    Line(String),
    /// Answered once every entry before it is written.
    Flush(SyncSender<()>),
}

static WRITER: OnceLock<Option<SyncSender<Entry>>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn writer() -> Option<&'static SyncSender<Entry>> {
    WRITER
        .get_or_init(|| {
            let (sender, entries) = mpsc::sync_channel::<Entry>(QUEUE);
            // This thread may start before the server blocks its signals (main logs first);
            // it must never be the one a SIGHUP or SIGTERM is delivered to, where the default
            // action would end the process.
            let signals = [sys::SIGHUP, sys::SIGTERM, sys::SIGINT];
            sys::with_signals_blocked(&signals, || {
                std::thread::Builder::new()
                    .name("cnamed-log".into())
                    .spawn(move || {
                        for entry in entries {
                            match entry {
                                // A closed or broken stderr loses the line, nothing else.
                                Entry::Line(line) => {
                                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                                }
                                Entry::Flush(done) => {
                                    let _ = done.send(());
                                }
                            }
                        }
                    })
            })
            .ok()
            .map(|_| sender)
        })
        .as_ref()
}

/// Queues `cnamed: ` and `message` as one line for stderr; never blocks, never fails.
pub fn line(message: std::fmt::Arguments<'_>) {
    let Some(writer) = writer() else {
        return;
    };
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    let mut text = String::new();
    if lost > 0 {
        text.push_str(&format!(
            "cnamed: {lost} log lines dropped (stderr is not being read)\n"
        ));
    }
    text.push_str(&format!("cnamed: {message}\n"));
    if let Err(TrySendError::Full(_)) = writer.try_send(Entry::Line(text)) {
        DROPPED.fetch_add(lost + 1, Ordering::Relaxed);
    }
}

/// Waits at most `timeout` for the lines queued so far to be written: the last lines before
/// the process exits.
pub fn flush(timeout: Duration) {
    let Some(writer) = writer() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    let (done, written) = mpsc::sync_channel(1);
    let mut entry = Entry::Flush(done);
    loop {
        match writer.try_send(entry) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                entry = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

/// `log!("reloaded {}", path)`: one line on stderr, through [`line()`](fn@line).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}
