//! Sockets, worker threads and reload.
//!
//! Every worker owns one UDP socket and one TCP listener per listen address, all bound with
//! SO_REUSEPORT so the kernel spreads queries and connections across workers, and runs its
//! own mio event loop. Workers share nothing but [`Shared`]: the current snapshot and cookie
//! secrets behind arc-swap and a shutdown flag; each counts into its own
//! [`WorkerCounters`]. Signals are not handled here: the caller (main) waits for them on its
//! own thread and calls [`Running::reload`] or [`Running::shutdown`].

pub mod http;
pub mod systemd;
mod tcp;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;
use crate::cookie::{SecretError, Secrets};
use crate::metrics::{self, ServerStats, WorkerCounters};
use crate::snapshot::{LoadError, Snapshot, Zone};
use crate::sys;

/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: i32 = 1024;
/// Tries at finding one port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;
/// Socket buffer we ask for, to ride out bursts; the kernel may cap it (net.core.rmem_max).
const UDP_BUFFER: usize = 4 << 20;

/// How long a stopping worker keeps finishing TCP answers already asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// State every worker reads.
#[derive(Debug)]
pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    cookies: ArcSwap<Secrets>,
    shutdown: AtomicBool,
}

/// Response rate limiting settings (see [`crate::rrl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second per /24 or /56, for the whole server.
    pub rate: u32,
    pub slip: u32,
}

/// Why a reload kept the old state.
#[derive(Debug)]
pub enum ReloadError {
    Dump(LoadError),
    CookieSecret(SecretError),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dump(error) => error.fmt(f),
            Self::CookieSecret(error) => write!(f, "cookie secret {error}"),
        }
    }
}

impl std::error::Error for ReloadError {}

/// Limits of the TCP side, per worker.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A connection with a message half received or an answer unsent, and no message
    /// completed either way for this long, is closed (Slowloris, clients that never read).
    pub io_timeout: Duration,
    /// At this many connections, accepting one closes the least recently active.
    pub max_connections: usize,
}

/// One worker's UDP socket and TCP listener for one address.
type SocketPair = (std::net::UdpSocket, std::net::TcpListener);

/// One worker's bound, not yet running sockets.
struct WorkerSockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

/// Sockets bound for every worker, ready to run.
pub struct Server {
    workers: Vec<WorkerSockets>,
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    zone: Zone,
    dump: PathBuf,
    cookie_secret_file: Option<PathBuf>,
    tcp_limits: TcpLimits,
    rrl: Option<RrlSettings>,
    stats: Arc<ServerStats>,
}

/// What a successful reload loaded.
#[derive(Clone, Copy, Debug)]
pub struct Reloaded {
    pub apps: usize,
    pub serial: u32,
    pub elapsed: Duration,
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
        let threads = config.threads.max(1);
        let mut workers: Vec<WorkerSockets> = (0..threads)
            .map(|_| WorkerSockets {
                udp: Vec::new(),
                tcp: Vec::new(),
            })
            .collect();
        let mut local_addrs = Vec::new();
        for &requested in &config.listen {
            let mut attempts = 0;
            let (addr, sockets) = loop {
                match bind_all(requested, threads) {
                    // Port 0: the free UDP port the kernel picked may be taken for TCP (by
                    // any client's ephemeral port); pick another.
                    Err(error)
                        if requested.port() == 0
                            && error.kind() == io::ErrorKind::AddrInUse
                            && attempts < PORT_ATTEMPTS =>
                    {
                        attempts += 1;
                    }
                    result => break result?,
                }
            };
            for (worker, (udp, tcp)) in workers.iter_mut().zip(sockets) {
                worker.udp.push(udp);
                worker.tcp.push(tcp);
            }
            local_addrs.push(addr);
        }
        let stats = ServerStats::default();
        stats.apps.set(snapshot.app_count() as u64);
        stats.serial.set(u64::from(snapshot.serial));
        stats.start_time_ms.set(sys::unix_millis());
        Ok(Self {
            workers,
            local_addrs,
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(snapshot),
                cookies: ArcSwap::from_pointee(cookies),
                shutdown: AtomicBool::new(false),
            }),
            zone,
            dump: config.dump.clone(),
            cookie_secret_file: config.cookie_secret_file.clone(),
            tcp_limits,
            rrl: config.rrl_rate.map(|rate| RrlSettings {
                rate,
                slip: config.rrl_slip,
            }),
            stats: Arc::new(stats),
        })
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
        for (index, sockets) in self.workers.into_iter().enumerate() {
            let worker_counters = Arc::new(WorkerCounters::default());
            counters.push(Arc::clone(&worker_counters));
            let worker = worker::Worker::new(
                sockets,
                Arc::clone(&self.shared),
                worker_counters,
                self.tcp_limits,
                self.rrl
                    .map(|rrl| crate::rrl::RateLimiter::new(rrl.rate, rrl.slip, workers)),
            )?;
            wakers.push(worker.waker());
            let ready = ready.clone();
            let thread = std::thread::Builder::new()
                .name(format!("cnamed-worker-{index}"))
                .spawn(move || worker.run(ready))?;
            threads.push(thread);
        }
        drop(ready);
        // Every worker reports in, or drops its sender by failing first.
        for _ in &threads {
            if started.recv().is_err() {
                break;
            }
        }
        Ok(Running {
            shared: self.shared,
            wakers,
            threads,
            zone: self.zone,
            dump: self.dump,
            cookie_secret_file: self.cookie_secret_file,
            metrics: Metrics {
                workers: counters,
                stats: self.stats,
            },
        })
    }
}

/// Serving workers.
pub struct Running {
    shared: Arc<Shared>,
    wakers: Vec<Arc<mio::Waker>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    zone: Zone,
    dump: PathBuf,
    cookie_secret_file: Option<PathBuf>,
    metrics: Metrics,
}

/// Everything the metrics endpoint reads: cheap to clone, safe to read from any thread.
#[derive(Clone, Debug)]
pub struct Metrics {
    workers: Vec<Arc<WorkerCounters>>,
    stats: Arc<ServerStats>,
}

impl Metrics {
    /// The Prometheus text exposition of every counter, workers summed.
    pub fn render(&self) -> String {
        let workers: Vec<&WorkerCounters> = self.workers.iter().map(|w| &**w).collect();
        let mut out = String::with_capacity(8192);
        metrics::render(&workers, &self.stats, &mut out);
        out
    }
}

impl Running {
    /// Loads the dump, and the cookie secret file if there is one, again and, only if both
    /// are valid, swaps them in. Workers pick them up on their next batch; queries in flight
    /// finish on the old snapshot.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let stats = &self.metrics.stats;
        stats.last_reload_attempt_ms.set(sys::unix_millis());
        let result = self.load_and_swap();
        match &result {
            Ok(done) => {
                stats.reloads_ok.add(1);
                stats.apps.set(done.apps as u64);
                stats.serial.set(u64::from(done.serial));
                stats.load_micros.set(done.elapsed.as_micros() as u64);
            }
            Err(_) => stats.reloads_failed.add(1),
        }
        result
    }

    fn load_and_swap(&self) -> Result<Reloaded, ReloadError> {
        let started = Instant::now();
        let secrets = match &self.cookie_secret_file {
            Some(path) => Some(Secrets::load(path).map_err(ReloadError::CookieSecret)?),
            None => None,
        };
        let snapshot = Snapshot::load(&self.dump, &self.zone).map_err(ReloadError::Dump)?;
        let report = Reloaded {
            apps: snapshot.app_count(),
            serial: snapshot.serial,
            elapsed: started.elapsed(),
        };
        if let Some(secrets) = secrets {
            self.shared.cookies.store(Arc::new(secrets));
        }
        // The old snapshot is dropped here, on this thread, unless a worker still holds it.
        drop(self.shared.snapshot.swap(Arc::new(snapshot)));
        Ok(report)
    }

    /// What the metrics endpoint serves.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Stops the workers and waits for them: each stops accepting and reading UDP at once,
    /// and finishes the TCP answers already asked for within `DRAIN_TIMEOUT`.
    pub fn shutdown(self) -> io::Result<()> {
        self.shared.shutdown.store(true, Ordering::Release);
        for waker in &self.wakers {
            waker.wake()?;
        }
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| io::Error::other("a worker thread panicked"))??;
        }
        Ok(())
    }
}

/// Binds a UDP socket and a TCP listener for each of `threads` workers on `requested`. The
/// first bind resolves port 0; every later socket uses the same port.
fn bind_all(requested: SocketAddr, threads: usize) -> io::Result<(SocketAddr, Vec<SocketPair>)> {
    let mut addr = requested;
    let mut sockets = Vec::with_capacity(threads);
    for _ in 0..threads {
        let udp = udp_socket(addr)?;
        addr = udp.local_addr()?;
        sockets.push((udp, tcp_listener(addr)?));
    }
    Ok((addr, sockets))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    prepare(&socket, addr)?;
    // Soft: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(e, "udp", addr))?;
    Ok(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    prepare(&socket, addr)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(e, "tcp", addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn prepare(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(())
}

fn bind_error(error: io::Error, transport: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot bind {transport} {addr}: {error}"),
    )
}
