//! Journal checkpoints (`--journal-max-size`): once the journal passes its bound, a thread
//! writes the zone served as a dump beside the journal (`<journal>.checkpoint`, atomically)
//! and then drops the records it holds from the journal. A start is the newer of the dump
//! and the checkpoint, plus the journal after it: nothing acknowledged depends on memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::shared::Shared;
use crate::journal::{checkpoint_path, sync_directory, Journal};
use crate::metrics::UpdateStats;
use crate::snapshot::save::save_dump;
use crate::snapshot::Snapshot;

/// What a checkpoint needs; one runs at a time (`running`).
#[derive(Clone)]
pub(super) struct Checkpointer {
    pub(super) shared: Arc<Shared>,
    pub(super) journal: Arc<Mutex<Journal>>,
    pub(super) stats: Arc<UpdateStats>,
    pub(super) running: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts a checkpoint of `snapshot` unless one is running.
    pub(super) fn start(&self, snapshot: Arc<Snapshot>) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let checkpointer = self.clone();
        let spawned = std::thread::Builder::new()
            .name("cnamed-checkpoint".into())
            .spawn(move || {
                if let Err(error) = checkpointer.write(&snapshot) {
                    checkpointer.stats.journal_errors.add(1);
                    crate::log!(
                        Error,
                        "journal checkpoint failed: {error}; the journal keeps every record"
                    );
                }
                checkpointer.running.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.running.store(false, Ordering::Release);
        }
    }

    /// The journal's length in bytes.
    pub(super) fn journal_len(&self) -> u64 {
        let journal = self.journal.lock();
        journal.unwrap_or_else(PoisonError::into_inner).len()
    }

    fn write(&self, snapshot: &Snapshot) -> std::io::Result<()> {
        let started = Instant::now();
        let (path, generation) = {
            let journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
            (journal.path().to_path_buf(), journal.generation())
        };
        let checkpoint = checkpoint_path(&path);
        let mut name = checkpoint.clone().into_os_string();
        name.push(".new");
        let written = std::path::PathBuf::from(name);
        // The slow part, off every lock: the zone as a dump.
        save_dump(snapshot, &written)?;
        let _installing = self
            .shared
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if journal.generation() != generation {
            // A dump superseded the journal meanwhile: this zone is history.
            drop(journal);
            return std::fs::remove_file(&written);
        }
        let before = journal.len();
        std::fs::rename(&written, &checkpoint)?;
        sync_directory(&checkpoint)?;
        journal.drop_through(snapshot.serial)?;
        if let Some(updates) = &self.shared.updates {
            super::update::journal_facts(&journal, &updates.stats);
        }
        crate::log!(
            Info,
            "journal checkpoint: serial {}, {} apps in {} ({:.1} s); journal {before} -> {} bytes",
            snapshot.serial,
            snapshot.app_count(),
            checkpoint.display(),
            started.elapsed().as_secs_f64(),
            journal.len()
        );
        Ok(())
    }
}
