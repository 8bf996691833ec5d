//! The writer thread: connects to the collector's socket, writes the workers' chunks to it
//! and gives them back, reconnecting with backoff when the collector goes away. A worker
//! never waits for it: while the collector is slow, chunks stay here and workers drop
//! frames; while it is absent, chunks come back at once and their frames are counted lost.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frames;
use super::Chunk;
use crate::log::{self, Level};
use crate::metrics::DnstapStats;

/// The first wait after a failed connection; it doubles to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the handshake and the FINISH may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// A blocked write looks up this often whether the server is stopping.
const WRITE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long the thread sleeps waiting for chunks, so that a reconnection is not late.
const IDLE_WAIT: Duration = Duration::from_millis(100);

pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) chunks: Receiver<Chunk>,
    /// Each worker's channel of empty chunks, by worker index.
    pub(super) returns: Vec<SyncSender<Chunk>>,
    pub(super) stats: Arc<DnstapStats>,
    /// Whether the server is stopping: a write to a stalled collector then gives up.
    pub(super) stopping: Box<dyn Fn() -> bool + Send>,
}

impl Writer {
    /// Runs until every worker has dropped its tap, then ends the stream (STOP, FINISH).
    pub(super) fn run(self) {
        let mut collector: Option<UnixStream> = None;
        let mut backoff = MIN_BACKOFF;
        let mut next_try = Instant::now();
        // The first failure of an outage is logged, not every retry.
        let mut outage_logged = false;
        loop {
            if collector.is_none() && Instant::now() >= next_try {
                match connect(&self.path) {
                    Ok(stream) => {
                        log::line(
                            Level::Info,
                            format_args!("dnstap: writing to {}", self.path.display()),
                        );
                        collector = Some(stream);
                        self.stats.connected.set(1);
                        self.stats.connections.add(1);
                        backoff = MIN_BACKOFF;
                        outage_logged = false;
                    }
                    Err(error) => {
                        if !outage_logged {
                            log::line(Level::Warning, format_args!("dnstap: cannot write to {}: {error} (retrying; cnamed_dnstap_dropped_frames_total counts what is lost)", self.path.display()));
                            outage_logged = true;
                        }
                        next_try = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let mut chunk = match self.chunks.recv_timeout(IDLE_WAIT) {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let frames = u64::from(chunk.frames);
            match collector.as_mut() {
                Some(stream) => match self.write_all(stream, &chunk.bytes[..chunk.len]) {
                    Ok(()) => self.stats.sent.add(frames),
                    Err(error) => {
                        log::line(
                            Level::Warning,
                            format_args!(
                                "dnstap: the collector at {} went away: {error} (reconnecting)",
                                self.path.display()
                            ),
                        );
                        outage_logged = true;
                        collector = None;
                        self.stats.connected.set(0);
                        self.stats.dropped_absent.add(frames);
                        next_try = Instant::now() + backoff;
                    }
                },
                None => self.stats.dropped_absent.add(frames),
            }
            chunk.len = 0;
            chunk.frames = 0;
            let worker = chunk.worker;
            // Each worker's channel holds all of its chunks: never full.
            let _ = self.returns[worker].try_send(chunk);
        }
        if let Some(mut stream) = collector {
            let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
            let _ = frames::finish(&mut stream);
            self.stats.connected.set(0);
        }
    }

    /// Writes `bytes` whole, or fails: a collector that takes nothing for as long as the
    /// server is stopping is given up.
    fn write_all(&self, stream: &mut UnixStream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if (self.stopping)() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the collector stopped reading while the server stops",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A connected, handshaken stream to the collector.
fn connect(path: &Path) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    frames::handshake(&mut stream)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(stream)
}
