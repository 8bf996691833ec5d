//! One worker: a mio event loop over its UDP sockets, TCP listeners and connections.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::pipeline::{HandOff, Serving};
use super::shared::{Shared, TcpLimits, DRAIN_TIMEOUT};
use super::socket::WorkerSockets;
use super::tcp::{Connections, Ends};
use super::transfer::{self, TransferQueue};
use super::udp::UdpSide;
use super::update;
use crate::cookie::Secrets;
use crate::dnstap::Tap;
use crate::metrics::WorkerCounters;
use crate::rrl::RateLimiter;
use crate::snapshot::Snapshot;

const WAKER: Token = Token(0);
/// UDP sockets take tokens from here, then listeners, then connections from `CONN_BASE`.
const FIRST_SOCKET: usize = 1;
const CONN_BASE: usize = 1 << 20;
/// How often idle TCP connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
const EVENT_CAPACITY: usize = 256;
/// Set once an accept error has been logged: one line per process, the metric counts the rest.
static ACCEPT_ERROR_LOGGED: AtomicBool = AtomicBool::new(false);

pub(super) struct Worker {
    poll: Poll,
    waker: Arc<Waker>,
    udp: UdpSide,
    listeners: Vec<TcpListener>,
    /// Each listener's own address, for dnstap.
    listener_addrs: Vec<SocketAddr>,
    /// Listeners whose last accept failed with something other than WouldBlock.
    accept_stalled: Vec<bool>,
    connections: Connections,
    shared: Arc<Shared>,
    /// Where zone transfers go, with `--xfr-allow`.
    transfers: Option<TransferQueue>,
    counters: Arc<WorkerCounters>,
    /// Query logs, with `--dnstap`.
    tap: Option<RefCell<Tap>>,
}

/// What a worker starts with besides its sockets.
pub(super) struct WorkerSetup {
    pub(super) shared: Arc<Shared>,
    /// Where zone transfers go, with `--xfr-allow`.
    pub(super) transfers: Option<TransferQueue>,
    pub(super) counters: Arc<WorkerCounters>,
    pub(super) limits: TcpLimits,
    pub(super) rate_limiter: Option<RateLimiter>,
    pub(super) tap: Option<Tap>,
}

impl Worker {
    pub(super) fn new(sockets: WorkerSockets, setup: WorkerSetup) -> io::Result<Self> {
        let WorkerSetup {
            shared,
            transfers,
            counters,
            limits,
            rate_limiter,
            tap,
        } = setup;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp = UdpSide::new(sockets.udp, rate_limiter);
        udp.register(poll.registry(), FIRST_SOCKET)?;
        let mut listeners: Vec<TcpListener> =
            sockets.tcp.into_iter().map(TcpListener::from_std).collect();
        let first_listener = FIRST_SOCKET + udp.len();
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let listener_addrs = listeners
            .iter()
            .map(|listener| listener.local_addr().unwrap_or(unknown))
            .collect();
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(first_listener + i), Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            waker,
            udp,
            accept_stalled: vec![false; listeners.len()],
            listeners,
            listener_addrs,
            connections: Connections::new(CONN_BASE, limits),
            shared,
            transfers,
            counters,
            tap: tap.map(RefCell::new),
        })
    }

    pub(super) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Serves until shutdown, then drains. `ready` is told once everything the loop needs
    /// is allocated.
    pub(super) fn run(mut self, ready: std::sync::mpsc::Sender<()>) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        // arc-swap registers a thread on its first load, with an allocation: do it now.
        drop(self.load_shared());
        let _ = ready.send(());
        drop(ready);
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let mut drain_deadline = None;
        let first_listener = FIRST_SOCKET + self.udp.len();
        loop {
            let wake_at = drain_deadline.map_or(next_sweep, |deadline| next_sweep.min(deadline));
            let timeout = if self.udp.has_pending() || self.connections.has_busy() {
                Duration::ZERO
            } else {
                wake_at.saturating_duration_since(Instant::now())
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            if drain_deadline.is_none() && self.shared.shutdown.load(Ordering::Acquire) {
                drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                self.stop_listening();
            }
            self.connections.new_turn();
            if self.connections.has_busy() {
                let (snapshot, cookies) = self.load_shared();
                let serving = Serving::new(&snapshot, &cookies, &self.counters)
                    .with_shared(&self.shared)
                    .with_tap(self.tap.as_ref());
                self.connections.drive_busy(&serving);
            }
            for event in events.iter() {
                match event.token().0 {
                    0 => {}
                    token if token < first_listener => self.udp.mark_pending(token - FIRST_SOCKET),
                    token if token < CONN_BASE => self.accept(token - first_listener),
                    token => {
                        let (snapshot, cookies) = self.load_shared();
                        let serving = Serving::new(&snapshot, &cookies, &self.counters)
                            .with_shared(&self.shared)
                            .with_tap(self.tap.as_ref());
                        self.connections.drive(Token(token), &serving);
                    }
                }
            }
            for (mut stream, handoff, pending) in self.connections.take_handoffs() {
                // The other thread owns the socket from here; this worker's loop forgets it.
                let _ = self.poll.registry().deregister(&mut stream);
                match (handoff, &self.transfers) {
                    (HandOff::Transfer(request), Some(queue)) => {
                        let snapshot = self.shared.snapshot.load_full();
                        transfer::start(queue, stream, request, snapshot);
                    }
                    // Not admitted without `--xfr-allow`: dropped, closed.
                    (HandOff::Transfer(request), None) => drop((stream, request)),
                    (HandOff::Update, _) => update::start_connection(&self.shared, stream, pending),
                }
            }
            self.udp
                .serve_pending(&self.shared, &self.counters, self.tap.as_ref());
            let now = Instant::now();
            if let Some(deadline) = drain_deadline {
                if self.connections.open() == 0 || now >= deadline {
                    self.connections.close_all(&self.counters);
                    return Ok(());
                }
            }
            if now >= next_sweep {
                if let Some(tap) = &self.tap {
                    tap.borrow_mut().flush();
                }
                self.connections.close_idle(now, &self.counters);
                next_sweep = now + SWEEP_EVERY;
                // Listeners are edge-triggered: one whose accept failed (EMFILE) gets no new
                // event for the connections already queued, so it is retried here.
                for i in 0..self.accept_stalled.len() {
                    if self.accept_stalled[i] {
                        self.accept(i);
                    }
                }
            }
        }
    }

    /// Shutdown: closes the UDP sockets and listeners (the kernel refuses new connections
    /// from here on), and lets open connections finish what they were asked.
    fn stop_listening(&mut self) {
        self.udp.close();
        self.listeners.clear();
        self.accept_stalled.clear();
        let (snapshot, cookies) = self.load_shared();
        let serving = Serving::new(&snapshot, &cookies, &self.counters)
            .with_shared(&self.shared)
            .with_tap(self.tap.as_ref());
        self.connections.drain(&serving);
    }

    fn load_shared(
        &self,
    ) -> (
        arc_swap::Guard<Arc<Snapshot>>,
        arc_swap::Guard<Arc<Secrets>>,
    ) {
        (self.shared.snapshot.load(), self.shared.cookies.load())
    }

    fn accept(&mut self, i: usize) {
        loop {
            let Some(listener) = self.listeners.get(i) else {
                return; // closed by shutdown
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let (snapshot, cookies) = self.load_shared();
                    let serving = Serving::new(&snapshot, &cookies, &self.counters)
                        .with_shared(&self.shared)
                        .with_tap(self.tap.as_ref());
                    let ends = Ends {
                        client: peer,
                        server: self.listener_addrs[i],
                    };
                    self.connections
                        .add(self.poll.registry(), stream, ends, &serving);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_stalled[i] = false;
                    return;
                }
                // ECONNABORTED, EMFILE and friends: the listener is fine. Stop for this turn
                // so that EMFILE cannot spin; the next sweep tries again.
                Err(error) => {
                    self.accept_stalled[i] = true;
                    self.counters.tcp_accept_failed();
                    crate::log::once(
                        &ACCEPT_ERROR_LOGGED,
                        crate::log::Level::Warning,
                        format_args!("cannot accept TCP connections: {error} (logged once; cnamed_tcp_accept_errors_total counts them)"),
                    );
                    return;
                }
            }
        }
    }
}
