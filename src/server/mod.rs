//! Sockets, worker threads, the main loop and reload.
//!
//! Every worker owns one UDP socket and one TCP listener per listen address (socket.rs), all
//! bound with SO_REUSEPORT so the kernel spreads queries and connections across workers, and
//! runs its own mio event loop (worker.rs: its UDP half in udp.rs, where a packet's walk
//! starts, its connections in tcp/). Both transports hand each message to one pipeline
//! (pipeline/): its kind decided once, its handler, then expiry, rate limiting, signing and
//! counting in one order. A zone transfer over TCP goes to a thread of its own (transfer.rs).
//! Workers share nothing but `Shared` (shared.rs): the current snapshot and cookie secrets
//! behind arc-swap, the shutdown flag, and the sender of the main loop's events; each counts
//! into its own [`WorkerCounters`].
//!
//! The main loop (main_loop.rs) blocks on typed events (events.rs): reloads asked for by
//! SIGHUP, a NOTIFY, the refresh timer (refresh.rs) or the control socket (control.rs),
//! reloads finished, and SIGTERM; it reloads through the `Reloader` (running.rs) and stops
//! through [`Running::shutdown`]. [`serve`] (serve.rs) puts it all together at start.

mod checkpoint;
mod control;
mod dump_writer;
mod events;
mod fold;
pub mod http;
mod main_loop;
mod notify;
mod pipeline;
mod reconcile;
mod refresh;
mod reloaded;
mod running;
mod serve;
mod shared;
mod socket;
mod status;
pub mod systemd;
mod tcp;
mod transfer;
mod udp;
mod update;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use self::dump_writer::DumpWriter;
use self::events::Event;
pub use self::reloaded::{ReloadError, Reloaded};
use self::running::Reloader;
pub use self::running::Running;
pub use self::serve::{serve, FirstLoad, InitialTransfer};
use self::shared::Shared;
pub use self::shared::{RrlSettings, TcpLimits, DRAIN_TIMEOUT};
use self::socket::{bind_workers, WorkerSockets};
use crate::config::Config;
use crate::cookie::Secrets;
use crate::dnstap;
use crate::journal::Journal;
pub use crate::metrics::Metrics;
use crate::metrics::{ServerStats, WorkerCounters};
use crate::rrl::RateLimiter;
use crate::snapshot::guard::Rules;
use crate::snapshot::{Snapshot, Zone};
use crate::sys;
use crate::xfr::inbound::secondary::SecondaryStats;
use crate::xfr::outbound::fleet::Fleet;
use crate::xfr::outbound::{Gate, MAX_TRANSFERS};
use crate::xfr::pace::TransferLimits;
use crate::xfr::Timers;

/// Sockets bound for every worker, ready to run.
pub struct Server {
    workers: Vec<WorkerSockets>,
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    zone: Zone,
    dump: PathBuf,
    cookie_secret_file: Option<PathBuf>,
    tsig_key_file: Option<PathBuf>,
    /// `--primary`: where reloads take the zone from.
    primaries: Vec<SocketAddr>,
    /// How long and how slowly a transfer from them may go.
    transfer_limits: TransferLimits,
    /// A secondary's state, with `--primary`.
    secondary: Option<Arc<SecondaryStats>>,
    max_dump_size: u64,
    last_good: Option<PathBuf>,
    rules: Rules,
    tcp_limits: TcpLimits,
    rrl: Option<RrlSettings>,
    stats: Arc<ServerStats>,
    /// The main loop's inputs; senders are in `shared`.
    inbox: Receiver<Event>,
    /// With `--update-key`: the committer's queue and the keys (wire names).
    updates: Option<UpdateSetup>,
    /// `--journal`: a primary's of UPDATEs, a secondary's of what its primaries sent.
    journal: Option<Journal>,
    /// `--journal-max-size`.
    journal_max_size: u64,
    /// `--dnstap`, and what each frame says of this server.
    dnstap: Option<(dnstap::Settings, dnstap::Identity)>,
}

/// What the committer gets at start.
struct UpdateSetup {
    inbox: Receiver<update::Job>,
    keys: Vec<Vec<u8>>,
}

impl Server {
    /// Binds every socket of every worker, so that address errors surface before serving.
    /// A listen address with port 0 gets one free port, shared by UDP, TCP and all workers.
    /// `cookies` are the secrets loaded from `config.cookie_secret_file`, or random ones.
    pub fn bind(
        config: &Config,
        zone: Zone,
        snapshot: Snapshot,
        cookies: Secrets,
        tcp_limits: TcpLimits,
    ) -> io::Result<Self> {
        let tsig_keys = match &config.tsig_key_file {
            Some(path) => Some(
                crate::tsig::keyfile::load(path)
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?,
            ),
            None => None,
        };
        let dnstap = config.dnstap_settings().map(|settings| {
            let identity = dnstap::Identity {
                identity: config.identity().into_bytes(),
                version: config.version().unwrap_or_default().as_bytes().to_vec(),
                zone: zone.apex.clone(),
            };
            (settings, identity)
        });
        let (workers, local_addrs) = bind_workers(&config.listen, config.threads.max(1))?;
        let stats = ServerStats::default();
        let secondary = match config.primary.is_empty() {
            true => None,
            false => Some(Arc::new(SecondaryStats::new(
                config.primary.clone(),
                config.on_expire,
                config.min_refresh,
                Timers {
                    refresh: config.soa_timers[0],
                    retry: config.soa_timers[1],
                    expire: config.soa_timers[2],
                },
                sys::unix_millis(),
            ))),
        };
        stats.apps.set(snapshot.app_count() as u64);
        stats.serial.set(u64::from(snapshot.serial));
        stats.dump_modified_ms.set(snapshot.dump_modified_ms);
        stats.start_time_ms.set(sys::unix_millis());
        let (events, inbox) = events::channel();
        let (updates, update_setup) = match config.update_keys.is_empty() {
            true => (None, None),
            false => {
                let keys = update_key_names(config, tsig_keys.as_deref().unwrap_or(&[]))?;
                let (updates, inbox) = update::Updates::new();
                let setup = UpdateSetup { inbox, keys };
                (Some(updates), Some(setup))
            }
        };
        Ok(Self {
            workers,
            local_addrs,
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(snapshot),
                cookies: ArcSwap::from_pointee(cookies),
                tsig_keys: ArcSwapOption::new(tsig_keys.map(Arc::new)),
                primaries: config.primary.iter().map(SocketAddr::ip).collect(),
                secondary: secondary.clone(),
                shutdown: AtomicBool::new(false),
                events,
                installing: Mutex::new(()),
                folding: AtomicBool::new(false),
                updates,
                fleet: (!config.notify.is_empty())
                    .then(|| Arc::new(Fleet::new(config.notify.clone()))),
                xfr: match config.xfr_allow.is_empty() {
                    true => None,
                    false => Some(
                        Gate::new(config.xfr_allow.clone(), MAX_TRANSFERS, config.ixfr_history)
                            .with_per_address(config.max_transfers_per_address)
                            .with_max_ixfr_ratio(config.max_ixfr_ratio)
                            .with_limits(config.transfer_limits_out()),
                    ),
                },
            }),
            zone,
            dump: config.dump.clone(),
            cookie_secret_file: config.cookie_secret_file.clone(),
            tsig_key_file: config.tsig_key_file.clone(),
            primaries: config.primary.clone(),
            transfer_limits: config.transfer_limits_in(),
            secondary,
            max_dump_size: config.max_dump_size,
            last_good: config.last_good.clone(),
            rules: config
                .guard_rules()
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?,
            tcp_limits,
            rrl: match config.rrl_rate {
                Some(rate) => {
                    let mut hash_key = [0; 16];
                    sys::random_bytes(&mut hash_key)?;
                    Some(RrlSettings {
                        rate,
                        slip: config.rrl_slip,
                        hash_key,
                    })
                }
                None => None,
            },
            stats: Arc::new(stats),
            inbox,
            updates: update_setup,
            journal: None,
            journal_max_size: config.journal_max_size,
            dnstap,
        })
    }

    /// The journal (`--journal`), opened and replayed by the caller: a primary's of UPDATEs,
    /// a secondary's of the differences its primaries sent.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The addresses actually bound, port 0 resolved, in the order of `--listen`.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Records how long the first snapshot took to load, for the metrics.
    pub fn set_load_time(&self, elapsed: Duration) {
        self.stats.load_micros.set(elapsed.as_micros() as u64);
    }

    /// Starts the worker threads and returns once every one of them is in its event loop.
    pub fn start(self) -> io::Result<Running> {
        let mut wakers = Vec::new();
        let mut threads = Vec::new();
        let mut counters = Vec::new();
        let (ready, started) = std::sync::mpsc::channel();
        let workers = self.workers.len();
        // The transfer threads, which workers hand transfers to, when anyone may transfer.
        let transfers = match self.shared.xfr {
            Some(_) => Some(transfer::spawn_pool(&self.shared, MAX_TRANSFERS)?),
            None => None,
        };
        // The committer answers UPDATEs over UDP from copies of the first worker's sockets:
        // every worker's socket of a listen address has that address.
        let reply_sockets = match (&self.updates, self.workers.first()) {
            (Some(_), Some(first)) => first
                .udp
                .iter()
                .map(std::net::UdpSocket::try_clone)
                .collect::<io::Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        // The dnstap writer, and a tap for each worker, with `--dnstap`.
        let (mut taps, dnstap_stats, dnstap_writer) = match self.dnstap {
            Some((settings, identity)) => {
                let shared = Arc::clone(&self.shared);
                let stopping = Box::new(move || shared.shutdown.load(Ordering::Acquire));
                let started = dnstap::start(&settings, identity, workers, stopping)?;
                (started.taps, Some(started.stats), Some(started.writer))
            }
            None => (Vec::new(), None, None),
        };
        let mut taps = taps.drain(..);
        for (index, sockets) in self.workers.into_iter().enumerate() {
            let worker_counters = Arc::new(WorkerCounters::default());
            counters.push(Arc::clone(&worker_counters));
            let setup = worker::WorkerSetup {
                shared: Arc::clone(&self.shared),
                transfers: transfers.clone(),
                counters: worker_counters,
                limits: self.tcp_limits,
                rate_limiter: self
                    .rrl
                    .map(|rrl| RateLimiter::new(rrl.rate, rrl.slip, workers, rrl.hash_key)),
                tap: taps.next(),
            };
            let worker = worker::Worker::new(sockets, setup)?;
            wakers.push(worker.waker());
            let ready = ready.clone();
            let stats = Arc::clone(&self.stats);
            let thread = std::thread::Builder::new()
                .name(format!("cnamed-worker-{index}"))
                .spawn(move || {
                    let _running = WorkerRunning::new(stats);
                    worker.run(ready)
                })?;
            threads.push(thread);
        }
        drop(ready);
        // Every worker reports in, or drops its sender by failing first.
        for _ in &threads {
            if started.recv().is_err() {
                break;
            }
        }
        let xfr_stats = self
            .shared
            .xfr
            .as_ref()
            .map(Gate::stats)
            .unwrap_or_default();
        let fleet_view = self.shared.fleet.clone();
        let notify = match &self.shared.fleet {
            None => None,
            Some(fleet) => {
                let fleet = Arc::clone(fleet);
                let serials =
                    notify::spawn(fleet, Arc::clone(&self.shared), Arc::clone(&xfr_stats))?;
                // The secondaries learn the serial of a (re)started primary at once.
                let _ = serials.send(self.shared.snapshot.load().serial);
                Some(serials)
            }
        };
        let update_stats = self
            .shared
            .updates
            .as_ref()
            .map(|updates| Arc::clone(&updates.stats))
            .unwrap_or_default();
        let journal = self.journal.map(|journal| Arc::new(Mutex::new(journal)));
        let checkpoint = journal.as_ref().map(|journal| {
            let checkpointer = checkpoint::Checkpointer {
                shared: Arc::clone(&self.shared),
                journal: Arc::clone(journal),
                stats: Arc::clone(&update_stats),
                running: Arc::default(),
            };
            (self.journal_max_size, checkpointer)
        });
        if let (Some(gate), Some(journal)) = (&self.shared.xfr, &journal) {
            gate.set_journal(Arc::clone(journal));
        }
        if let Some(setup) = self.updates {
            let (Some(journal), Some(checkpoint)) = (&journal, &checkpoint) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "UPDATE needs a journal",
                ));
            };
            update::spawn_committer(update::Committer {
                shared: Arc::clone(&self.shared),
                journal: Arc::clone(journal),
                checkpoint: checkpoint.clone(),
                inbox: setup.inbox,
                reply_sockets,
                notify: notify.clone(),
                update_keys: setup.keys,
                clusters: self.rules.clusters.clone(),
                stats: Arc::clone(&self.stats),
                update_stats,
            })?;
        }
        let dump_writer = match &self.secondary {
            Some(secondary) => {
                refresh::spawn(Arc::clone(&self.shared), Arc::clone(secondary))?;
                Some(DumpWriter::spawn(
                    self.dump.clone(),
                    Arc::clone(&self.stats),
                )?)
            }
            None => None,
        };
        let update_stats = self
            .shared
            .updates
            .as_ref()
            .map(|updates| Arc::clone(&updates.stats));
        Ok(Running {
            reloader: Arc::new(Reloader {
                shared: self.shared,
                zone: self.zone,
                dump: self.dump,
                cookie_secret_file: self.cookie_secret_file,
                tsig_key_file: self.tsig_key_file,
                notify,
                primaries: self.primaries,
                transfer_limits: self.transfer_limits,
                secondary: self.secondary.clone(),
                dump_writer: Mutex::new(dump_writer),
                checkpoint,
                max_dump_size: self.max_dump_size,
                last_good: self.last_good,
                rules: self.rules,
                journal,
                stats: Arc::clone(&self.stats),
            }),
            wakers,
            threads,
            dnstap_writer,
            inbox: Some(self.inbox),
            metrics: Metrics {
                workers: counters,
                stats: self.stats,
                xfr: xfr_stats,
                secondary: self.secondary,
                updates: update_stats,
                fleet: fleet_view,
                dnstap: dnstap_stats,
            },
        })
    }
}

/// The wire names of `--update-key`, each a key of the key file.
fn update_key_names(config: &Config, keys: &[crate::tsig::Key]) -> io::Result<Vec<Vec<u8>>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    config
        .update_keys
        .iter()
        .map(|name| {
            let wire = crate::wire::name::name_to_wire(&name.to_ascii_lowercase())
                .map_err(|why| invalid(format!("--update-key {name:?}: {why}")))?;
            match keys.iter().any(|key| key.name == wire) {
                true => Ok(wire),
                false => Err(invalid(format!(
                    "--update-key {name:?} is not a key of --tsig-key-file"
                ))),
            }
        })
        .collect()
}

/// Writes `bytes[*sent..]` to a non-blocking stream until all is sent (`Ok(true)`) or it
/// would block (`Ok(false)`), for the metrics and control endpoints' answers.
fn write_pending(stream: &mut impl io::Write, bytes: &[u8], sent: &mut usize) -> io::Result<bool> {
    while *sent < bytes.len() {
        match stream.write(&bytes[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Counts a worker thread in `workers_running` for as long as it lives, however it ends.
struct WorkerRunning(Arc<ServerStats>);

impl WorkerRunning {
    fn new(stats: Arc<ServerStats>) -> Self {
        stats.workers_running.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for WorkerRunning {
    fn drop(&mut self) {
        self.0.workers_running.fetch_sub(1, Ordering::Relaxed);
    }
}
