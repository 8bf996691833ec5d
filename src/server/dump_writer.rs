//! A secondary writes each new snapshot to `--dump`, so that a restart during a primary
//! outage still answers. Writing a million-app dump takes a while: it is done off the reload
//! path, on a thread of its own at SCHED_IDLE, at most once per `MIN_INTERVAL`; a burst of
//! changes in between is written once, as its newest snapshot. Stopping writes what is
//! pending.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::ServerStats;
use crate::snapshot::save::save_dump;
use crate::snapshot::Snapshot;
use crate::sys;

/// Least time between the starts of two writes.
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// The writer thread and the channel that feeds it.
pub(super) struct DumpWriter {
    sender: Sender<Arc<Snapshot>>,
    thread: JoinHandle<()>,
}

impl DumpWriter {
    /// A writer of `path`, which notes in `stats` when it last wrote it.
    pub(super) fn spawn(path: PathBuf, stats: Arc<ServerStats>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cnamed-dump".into())
            .spawn(move || write_loop(&path, &receiver, &stats))?;
        Ok(Self { sender, thread })
    }

    /// Queues `snapshot` to be written; a newer one queued before the write starts replaces it.
    pub(super) fn write(&self, snapshot: Arc<Snapshot>) {
        let _ = self.sender.send(snapshot);
    }

    /// Writes what is pending and ends the thread.
    pub(super) fn finish(self) {
        drop(self.sender);
        let _ = self.thread.join();
    }
}

fn write_loop(path: &std::path::Path, receiver: &Receiver<Arc<Snapshot>>, stats: &ServerStats) {
    if let Err(error) = sys::set_thread_idle(sys::current_thread(), true) {
        crate::log!(Warning, "dump writer at normal priority: {error}");
    }
    let mut last_start: Option<Instant> = None;
    while let Ok(mut snapshot) = receiver.recv() {
        // Wait out the interval, keeping only the newest snapshot queued meanwhile; a
        // closed channel (stopping) writes at once.
        if let Some(start) = last_start {
            let ready = start + MIN_INTERVAL;
            loop {
                let left = ready.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(left) {
                    Ok(newer) => snapshot = newer,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        while let Ok(newer) = receiver.try_recv() {
            snapshot = newer;
        }
        last_start = Some(Instant::now());
        match save_dump(&snapshot, path) {
            Ok(()) => {
                stats.dump_modified_ms.set(sys::unix_millis());
                crate::log!(
                    Info,
                    "wrote {} (serial {}, {} apps) in {:.1} ms",
                    path.display(),
                    snapshot.serial,
                    snapshot.app_count(),
                    last_start.map_or(0.0, |start| start.elapsed().as_secs_f64() * 1e3)
                )
            }
            Err(error) => crate::log!(Warning, "cannot write {}: {error}", path.display()),
        }
    }
}
