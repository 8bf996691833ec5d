//! Sockets, worker threads and reload.
//!
//! Every worker owns one UDP socket and one TCP listener per listen address, all bound with
//! SO_REUSEPORT so the kernel spreads queries and connections across workers, and runs its
//! own mio event loop. Workers share nothing but [`Shared`]: the current snapshot behind
//! arc-swap and a shutdown flag. Signals are not handled here: the caller (main) waits for
//! them on its own thread and calls [`Running::reload`] or [`Running::shutdown`].

pub mod systemd;
mod tcp;
mod worker;

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
use crate::snapshot::{LoadError, Snapshot, Zone};

/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: i32 = 1024;
/// Tries at finding one port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;
/// Socket buffer we ask for, to ride out bursts; the kernel may cap it (net.core.rmem_max).
const UDP_BUFFER: usize = 4 << 20;

/// State every worker reads.
#[derive(Debug)]
pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    shutdown: AtomicBool,
}

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
    tcp_limits: TcpLimits,
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
    pub fn bind(
        config: &Config,
        zone: Zone,
        snapshot: Snapshot,
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
        Ok(Self {
            workers,
            local_addrs,
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(snapshot),
                shutdown: AtomicBool::new(false),
            }),
            zone,
            dump: config.dump.clone(),
            tcp_limits,
        })
    }

    /// The addresses actually bound, port 0 resolved, in the order of `--listen`.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Starts the worker threads and returns once every one of them is in its event loop.
    pub fn start(self) -> io::Result<Running> {
        let mut wakers = Vec::new();
        let mut threads = Vec::new();
        let (ready, started) = std::sync::mpsc::channel();
        for (index, sockets) in self.workers.into_iter().enumerate() {
            let worker = worker::Worker::new(
                sockets.udp,
                sockets.tcp,
                Arc::clone(&self.shared),
                self.tcp_limits,
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
}

impl Running {
    /// Loads the dump again and, only if it is valid, swaps it in. Workers pick it up on
    /// their next batch; queries in flight finish on the old snapshot.
    pub fn reload(&self) -> Result<Reloaded, LoadError> {
        let started = Instant::now();
        let snapshot = Snapshot::load(&self.dump, &self.zone)?;
        let report = Reloaded {
            apps: snapshot.app_count(),
            serial: snapshot.serial,
            elapsed: started.elapsed(),
        };
        // The old snapshot is dropped here, on this thread, unless a worker still holds it.
        drop(self.shared.snapshot.swap(Arc::new(snapshot)));
        Ok(report)
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Stops the workers and waits for them.
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
