//! A server whose workers run: reload and shutdown, and what the metrics endpoint reads.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::checkpoint::Checkpointer;
use super::dump_writer::DumpWriter;
use super::events::Event;
use super::refresh::TransferInfo;
use super::reloaded::{ReloadError, Reloaded};
use super::shared::Shared;
use crate::cookie::Secrets;
use crate::journal::replay::record_of;
use crate::journal::{Entry, Journal};
use crate::metrics::{Metrics, ServerStats};
use crate::snapshot::guard::{check_difference, compare, Difference, Rules};
use crate::snapshot::{Snapshot, Zone};
use crate::sys::unix_millis;
use crate::tsig::keyfile;
use crate::tsig::Key;
use crate::xfr::inbound::client::{refresh, Refreshed};
use crate::xfr::inbound::resolve::Resolved;
use crate::xfr::inbound::secondary::SecondaryStats;
use crate::xfr::pace::TransferLimits;

/// What a reload needs: shared with the thread that runs it, which a stop may abandon.
pub(super) struct Reloader {
    pub(super) shared: Arc<Shared>,
    pub(super) zone: Zone,
    pub(super) dump: PathBuf,
    pub(super) cookie_secret_file: Option<PathBuf>,
    pub(super) tsig_key_file: Option<PathBuf>,
    /// Each new serial goes to the NOTIFY thread, when there are `--notify` targets.
    pub(super) notify: Option<mpsc::Sender<u32>>,
    /// With primaries, a reload transfers the zone from them (IXFR, else AXFR) instead of
    /// reading the dump, and has the dump written after installing it.
    pub(super) primaries: Vec<SocketAddr>,
    /// How long and how slowly a transfer from them may go.
    pub(super) transfer_limits: TransferLimits,
    /// A secondary's state: the last transfer, timers, expiry.
    pub(super) secondary: Option<Arc<SecondaryStats>>,
    /// Writes a secondary's dump; taken out when stopping, to write what is pending. With
    /// a journal, only a whole zone (AXFR) is written: a difference goes to the journal.
    pub(super) dump_writer: Mutex<Option<DumpWriter>>,
    /// With a journal: its bound (`--journal-max-size`) and the checkpoints past it.
    pub(super) checkpoint: Option<(u64, Checkpointer)>,
    pub(super) max_dump_size: u64,
    /// `--last-good`: where each dump installed is copied.
    pub(super) last_good: Option<PathBuf>,
    pub(super) rules: Rules,
    /// With UPDATE: the journal, shared with the committer. A reload of an older export
    /// replays it, any other new dump empties it (see reconcile.rs).
    pub(super) journal: Option<Arc<Mutex<Journal>>>,
    pub(super) stats: Arc<ServerStats>,
}

/// A dump, and the cookie secrets and TSIG keys if there are files, loaded and checked but
/// not serving.
pub(super) struct Loaded {
    /// `None`: the primary had nothing newer than the snapshot served (or a reconciled
    /// export has the same apps).
    pub(super) snapshot: Option<Snapshot>,
    /// The apps an IXFR changed, when the snapshot came from one: no comparison needed.
    changes: Option<Resolved>,
    pub(super) transfer: Option<TransferInfo>,
    /// An export reconciled with the journal: the record that leads to it.
    pub(super) record: Option<Entry>,
    /// ... and the export's serial, and the journal records replayed on it.
    pub(super) replayed: Option<(u32, usize)>,
    secrets: Option<Secrets>,
    keys: Option<Vec<Key>>,
    elapsed: Duration,
}

impl Reloader {
    /// Loads the dump (a secondary: refreshes from its primaries), and the cookie secret and
    /// TSIG key files if there are, again and, only if all are valid, swaps them in. Workers
    /// pick them up on their next batch; queries in flight finish on the old snapshot.
    pub(super) fn reload(&self, force: bool) -> Result<Reloaded, ReloadError> {
        let started = self.attempted();
        let outcome = self.install(self.load(), force);
        self.stats.reload_seconds.observe(started.elapsed());
        outcome
    }

    /// Notes the time of a reload attempt, for the metrics; returns it, to time the reload.
    pub(super) fn attempted(&self) -> Instant {
        self.stats.last_reload_attempt_ms.set(unix_millis());
        Instant::now()
    }

    /// Loads and checks the cookie secrets, the TSIG keys, and the dump or (a secondary) what
    /// the primaries have; touches nothing being served.
    pub(super) fn load(&self) -> Result<Loaded, ReloadError> {
        let started = Instant::now();
        let secrets = match &self.cookie_secret_file {
            Some(path) => Some(Secrets::load(path).map_err(ReloadError::CookieSecret)?),
            None => None,
        };
        let keys = match &self.tsig_key_file {
            Some(path) => Some(keyfile::load(path).map_err(ReloadError::TsigKeys)?),
            None => None,
        };
        if self.primaries.is_empty() {
            let snapshot = Snapshot::load(&self.dump, &self.zone, self.max_dump_size)
                .map_err(ReloadError::Dump)?;
            return Ok(Loaded {
                snapshot: Some(snapshot),
                changes: None,
                transfer: None,
                record: None,
                replayed: None,
                secrets,
                keys,
                elapsed: started.elapsed(),
            });
        }
        let key = keys
            .as_ref()
            .and_then(|keys| keys.first().cloned())
            .or_else(|| {
                self.shared
                    .tsig_keys
                    .load()
                    .as_deref()
                    .and_then(|k| k.first().cloned())
            });
        let live = self.shared.snapshot.load_full();
        let primaries = self.primaries_in_order();
        let fetched = refresh(&primaries, key.as_ref(), &live, self.transfer_limits)
            .map_err(ReloadError::Transfer)?;
        let transfer = TransferInfo {
            primary: fetched.primary,
            via: fetched.via,
            serial: fetched.serial,
            bytes: fetched.bytes,
            timers: fetched.timers,
            fetch_time: fetched.fetch_time,
            build_time: fetched.build_time,
        };
        let (snapshot, changes) = match fetched.refreshed {
            Refreshed::UpToDate => (None, None),
            Refreshed::Changed { snapshot, changes } => (Some(*snapshot), changes),
        };
        Ok(Loaded {
            snapshot,
            changes,
            transfer: Some(transfer),
            record: None,
            replayed: None,
            secrets,
            keys,
            elapsed: started.elapsed(),
        })
    }

    /// The primaries in the order a refresh asks them: the one that last gave the zone
    /// first (a primary that failed is not asked first again while another answers), then
    /// the others in `--primary` order.
    fn primaries_in_order(&self) -> Vec<SocketAddr> {
        let mut primaries = self.primaries.clone();
        let good = self.secondary.as_ref().and_then(|s| s.last_good_primary());
        if let Some(first) = good.and_then(|good| primaries.iter().position(|&p| p == good)) {
            primaries[..=first].rotate_right(1);
        }
        primaries
    }

    /// Copies a dump just installed to `--last-good`, before the reload answers; a failure
    /// is a warning and a metric, never a failed reload.
    fn save_last_good(&self, snapshot: &Snapshot) {
        let Some(path) = &self.last_good else {
            return;
        };
        match crate::snapshot::last_good::save(snapshot, path) {
            Ok(()) => self.stats.last_good_serving.set(0),
            Err(error) => {
                self.stats.last_good_write_failures.add(1);
                crate::log!(
                    Warning,
                    "cannot write the last good copy {}: {error}",
                    path.display()
                );
            }
        }
    }

    /// Puts a load in service if the guard rails let it (all but the cluster rule give way
    /// to `force`), or counts why not. Only one reload installs at a time.
    pub(super) fn install(
        &self,
        loaded: Result<Loaded, ReloadError>,
        force: bool,
    ) -> Result<Reloaded, ReloadError> {
        let transfer = loaded.as_ref().ok().and_then(|loaded| loaded.transfer);
        let outcome = self.install_checked(loaded, force);
        if let Some(secondary) = &self.secondary {
            super::refresh::record(secondary, transfer, &outcome);
        }
        outcome
    }

    fn install_checked(
        &self,
        loaded: Result<Loaded, ReloadError>,
        force: bool,
    ) -> Result<Reloaded, ReloadError> {
        let stats = &self.stats;
        let _installing = self
            .shared
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let live = self.shared.snapshot.load_full();
        let checked = loaded.and_then(|mut loaded| {
            let reconciled = self.reconcile(&live, &mut loaded)?;
            let Some(snapshot) = &loaded.snapshot else {
                // Up to date: the live snapshot stays, as after an unchanged reload.
                return Ok((loaded, live.serial, Difference::default()));
            };
            let difference = match (&loaded.changes, reconciled) {
                (Some(resolved), _) => resolved.difference,
                (None, Some(difference)) => difference,
                (None, None) => compare(&live, snapshot),
            };
            match check_difference(&live, snapshot, difference, &self.rules, force) {
                Ok(difference) => {
                    if difference.is_empty() && snapshot.serial == live.serial {
                        loaded.snapshot = None;
                    }
                    Ok((loaded, live.serial, difference))
                }
                Err(refusal) => Err(ReloadError::Refused(refusal)),
            }
        });
        let (mut loaded, previous_serial, difference) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                stats.reloads_refused[error.reason_index()].add(1);
                return Err(error);
            }
        };
        let mut done = Reloaded {
            apps: loaded
                .snapshot
                .as_ref()
                .map_or(live.app_count(), Snapshot::app_count),
            serial: loaded.snapshot.as_ref().map_or(live.serial, |s| s.serial),
            previous_serial,
            difference,
            elapsed: loaded.elapsed,
            difference_time: None,
            replayed: loaded.replayed,
        };
        if let Some(secrets) = loaded.secrets {
            self.shared.cookies.store(Arc::new(secrets));
        }
        if let Some(keys) = loaded.keys {
            self.shared.tsig_keys.store(Some(Arc::new(keys)));
        }
        let snapshot = match loaded.snapshot {
            Some(snapshot) if !done.unchanged() => snapshot,
            _ => {
                stats.reloads_unchanged.add(1);
                return Ok(done);
            }
        };
        // A secondary journals the difference its primary sent; a whole zone empties the
        // journal (it supersedes every record) and is written as the dump.
        let whole_zone = loaded.changes.is_none();
        if let (Some(resolved), true) = (&loaded.changes, self.secondary.is_some()) {
            loaded.record = Some(record_of(&live, &snapshot, &resolved.changes));
        }
        // Before the swap: nothing served may depend on memory alone.
        if let Err(error) = self.journal_install(loaded.record.as_ref()) {
            stats.reloads_refused[error.reason_index()].add(1);
            return Err(error);
        }
        if self.primaries.is_empty() {
            // A secondary's dump is written after the swap; the writer notes when.
            stats.dump_modified_ms.set(snapshot.dump_modified_ms);
        }
        if let Some(gate) = &self.shared.xfr {
            // Before the swap: a transfer that sees the new serial finds its delta.
            let started = Instant::now();
            let changed: Option<Vec<&str>> = match (&loaded.changes, &loaded.record) {
                (Some(resolved), _) => Some(resolved.changes.iter().map(|(a, _)| &**a).collect()),
                (None, Some(record)) => Some(record.changes.iter().map(|c| &*c.app).collect()),
                (None, None) => None,
            };
            gate.record_reload(&live, &snapshot, changed);
            done.difference_time = Some(started.elapsed());
        }
        drop(live);
        let snapshot = Arc::new(snapshot);
        // The old snapshot is dropped here, on this thread, unless a worker still holds it.
        drop(self.shared.snapshot.swap(Arc::clone(&snapshot)));
        super::fold::fold_if_due(&self.shared, &snapshot, &self.stats);
        stats.reloads_ok.add(1);
        stats.last_reload_ok_ms.set(unix_millis());
        stats.apps.set(done.apps as u64);
        stats.serial.set(u64::from(done.serial));
        if let Some(notify) = &self.notify {
            let _ = notify.send(done.serial);
        }
        stats.load_micros.set(done.elapsed.as_micros() as u64);
        if self.primaries.is_empty() {
            self.save_last_good(&snapshot);
        }
        if let Some((max_size, checkpointer)) = &self.checkpoint {
            if loaded.record.is_some() && checkpointer.journal_len() > *max_size {
                checkpointer.start(Arc::clone(&snapshot));
            }
        }
        // What a restart serves when no primary answers.
        if let Some(writer) = &*self
            .dump_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            if whole_zone || self.journal.is_none() {
                writer.write(snapshot);
            }
        }
        Ok(done)
    }
}

/// Serving workers.
pub struct Running {
    pub(super) reloader: Arc<Reloader>,
    pub(super) wakers: Vec<Arc<mio::Waker>>,
    pub(super) threads: Vec<JoinHandle<io::Result<()>>>,
    /// The dnstap writer, with `--dnstap`: it ends once the workers have.
    pub(super) dnstap_writer: Option<JoinHandle<()>>,
    pub(super) metrics: Metrics,
    /// The main loop's inputs, until the loop takes them.
    pub(super) inbox: Option<Receiver<Event>>,
}

impl Running {
    /// Reloads the dump (or refreshes from the primaries), the cookie secrets and the TSIG
    /// keys (see `Reloader::reload`), on this thread;
    /// `force` overrides the guard rails that give way to it.
    pub fn reload(&self, force: bool) -> Result<Reloaded, ReloadError> {
        self.reloader.reload(force)
    }

    /// What a reload on another thread needs.
    pub(super) fn reloader(&self) -> Arc<Reloader> {
        Arc::clone(&self.reloader)
    }

    /// What the metrics endpoint serves.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Has a secondary's dump writer write the snapshot served (a zone transferred at start).
    pub(super) fn write_dump(&self) {
        let writer = self.reloader.dump_writer.lock();
        if let Some(writer) = &*writer.unwrap_or_else(PoisonError::into_inner) {
            writer.write(self.snapshot());
        }
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.reloader.shared.snapshot.load_full()
    }

    /// Stops the workers and waits for them: each stops accepting and reading UDP at once,
    /// and finishes the TCP answers already asked for within `DRAIN_TIMEOUT`. A reload still
    /// running elsewhere does not delay this.
    pub fn shutdown(self) -> io::Result<()> {
        self.reloader.shared.shutdown.store(true, Ordering::Release);
        let writer = self
            .reloader
            .dump_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            writer.finish();
        }
        for waker in &self.wakers {
            waker.wake()?;
        }
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| io::Error::other("a worker thread panicked"))??;
        }
        // The workers' taps are gone: the writer sends what they left and ends the stream.
        if let Some(writer) = self.dnstap_writer {
            writer
                .join()
                .map_err(|_| io::Error::other("the dnstap writer panicked"))?;
        }
        Ok(())
    }
}
