//! Log lines to stderr that can never stop or stall serving. `eprintln!` panics when stderr
//! is a pipe whose reader has gone (EPIPE), which aborts a release build, and blocks while a
//! full pipe is not read. Here lines go through a bounded queue to one writer thread that
//! ignores write errors; a line that finds the queue full is dropped and counted, and the
//! next line that gets through says how many were lost.
//!
//! Every line has a [`Level`]. When stderr is the journal (systemd sets `JOURNAL_STREAM` to
//! its device and inode), the level goes out as the syslog priority prefix `<N>`
//! (sd-daemon(3)), so that `journalctl -p err` shows failed reloads; elsewhere lines read
//! `cnamed: error: ...`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sys;

/// Lines waiting for the writer; more are dropped rather than waited for.
const QUEUE: usize = 256;

/// How much a line matters, as syslog priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed: a reload refused, the server unable to start.
    Error = 3,
    /// Something degraded: a resource limit reached, a notification lost.
    Warning = 4,
    /// Start, reloads, stop.
    Info = 6,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// Whether stderr is the journal: `JOURNAL_STREAM` names the device and inode of the stream
/// systemd connected, and stderr is still that stream (not redirected by a wrapper).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(stderr) => dev.parse() == Ok(stderr.dev()) && ino.parse() == Ok(stderr.ino()),
        Err(_) => false,
    }
}

static JOURNAL: OnceLock<bool> = OnceLock::new();

/// Whether stderr is the journal (then lines carry their priority, and nothing is redrawn).
pub fn to_journal() -> bool {
    *JOURNAL.get_or_init(stderr_is_journal)
}

/// How a line starts: the priority for the journal, else the program and level.
fn prefix(level: Level) -> String {
    if to_journal() {
        format!("<{}>", level as u8)
    } else {
        format!("cnamed: {}: ", level.name())
    }
}

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
            // it must never be the one a server signal is delivered to, where the default
            // action would end the process.
            sys::with_signals_blocked(&sys::SERVER_SIGNALS, || {
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

/// Queues `message` as one line for stderr, prefixed by its level; never blocks, never
/// fails.
pub fn line(level: Level, message: std::fmt::Arguments<'_>) {
    let Some(writer) = writer() else {
        return;
    };
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    let mut text = String::new();
    if lost > 0 {
        text.push_str(&format!(
            "{}{lost} log lines dropped (stderr is not being read)\n",
            prefix(Level::Warning)
        ));
    }
    text.push_str(&format!("{}{message}\n", prefix(level)));
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

/// Logs a line unless `done` says it was logged before: for problems that could repeat per
/// query or per connection (send errors, the open-file limit), logged once per process.
pub fn once(done: &AtomicBool, level: Level, message: std::fmt::Arguments<'_>) {
    if !done.swap(true, Ordering::Relaxed) {
        line(level, message);
    }
}

/// `log!(Info, "reloaded {}", path)`: one line on stderr at a [`Level`], through
/// [`line()`](fn@line).
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::line($crate::log::Level::$level, format_args!($($arg)*))
    };
}
/// `n` and `noun`, in the plural but for one: "1 cluster", "4 clusters", "0 clusters".
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
