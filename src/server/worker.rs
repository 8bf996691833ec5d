//! One worker: a mio event loop over its UDP sockets, TCP listeners and connections.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};

use super::tcp::{Connections, Serving};
use super::{Shared, TcpLimits, WorkerSockets, DRAIN_TIMEOUT};
use crate::answer::{respond_to, Transport};
use crate::cookie::{self, Secrets};
use crate::metrics::{Limited, WorkerCounters};
use crate::rrl::{RateLimiter, Verdict};
use crate::snapshot::Snapshot;
use crate::sys::{unix_seconds, UdpBatch, BATCH};

const WAKER: Token = Token(0);
/// UDP sockets take tokens from here, then listeners, then connections from `CONN_BASE`.
const FIRST_SOCKET: usize = 1;
const CONN_BASE: usize = 1 << 20;
/// Batches read from one UDP socket before other sockets get a turn.
const BATCHES_PER_TURN: usize = 16;
/// How often idle TCP connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
const EVENT_CAPACITY: usize = 256;

pub(super) struct Worker {
    poll: Poll,
    waker: Arc<Waker>,
    udp: Vec<UdpSocket>,
    /// Sockets that may still hold datagrams after their turn ended.
    udp_pending: Vec<bool>,
    listeners: Vec<TcpListener>,
    connections: Connections,
    batch: UdpBatch,
    shared: Arc<Shared>,
    counters: Arc<WorkerCounters>,
    rate_limiter: Option<RateLimiter>,
    /// The rate limiter's clock starts here.
    started: Instant,
}

impl Worker {
    pub(super) fn new(
        sockets: WorkerSockets,
        shared: Arc<Shared>,
        counters: Arc<WorkerCounters>,
        limits: TcpLimits,
        rate_limiter: Option<RateLimiter>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp: Vec<UdpSocket> = sockets.udp.into_iter().map(UdpSocket::from_std).collect();
        let mut listeners: Vec<TcpListener> =
            sockets.tcp.into_iter().map(TcpListener::from_std).collect();
        for (i, socket) in udp.iter_mut().enumerate() {
            poll.registry()
                .register(socket, Token(FIRST_SOCKET + i), Interest::READABLE)?;
        }
        let first_listener = FIRST_SOCKET + udp.len();
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(first_listener + i), Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            waker,
            udp_pending: vec![false; udp.len()],
            udp,
            listeners,
            connections: Connections::new(CONN_BASE, limits),
            batch: UdpBatch::new(),
            shared,
            counters,
            rate_limiter,
            started: Instant::now(),
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
            let timeout = if self.udp_pending.contains(&true) || self.connections.has_busy() {
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
                let serving = serving(&self.counters, &snapshot, &cookies);
                self.connections.drive_busy(&serving);
            }
            for event in events.iter() {
                match event.token().0 {
                    0 => {}
                    token if token < first_listener => {
                        if let Some(pending) = self.udp_pending.get_mut(token - FIRST_SOCKET) {
                            *pending = true;
                        }
                    }
                    token if token < CONN_BASE => self.accept(token - first_listener),
                    token => {
                        let (snapshot, cookies) = self.load_shared();
                        let serving = serving(&self.counters, &snapshot, &cookies);
                        self.connections.drive(Token(token), &serving);
                    }
                }
            }
            for i in 0..self.udp.len() {
                if self.udp_pending[i] {
                    self.udp_pending[i] = self.serve_udp(i);
                }
            }
            let now = Instant::now();
            if let Some(deadline) = drain_deadline {
                if self.connections.open() == 0 || now >= deadline {
                    self.connections.close_all(&self.counters);
                    return Ok(());
                }
            }
            if now >= next_sweep {
                self.connections.close_idle(now, &self.counters);
                next_sweep = now + SWEEP_EVERY;
            }
        }
    }

    /// Shutdown: closes the UDP sockets and listeners (the kernel refuses new connections
    /// from here on), and lets open connections finish what they were asked.
    fn stop_listening(&mut self) {
        self.udp.clear();
        self.udp_pending.clear();
        self.listeners.clear();
        let (snapshot, cookies) = self.load_shared();
        let serving = serving(&self.counters, &snapshot, &cookies);
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

    /// Answers datagrams on socket `i` for one turn. Returns whether it may hold more.
    fn serve_udp(&mut self, i: usize) -> bool {
        let socket = self.udp[i].as_fd();
        for _ in 0..BATCHES_PER_TURN {
            let received = match self.batch.recv(socket) {
                Ok(0) => return false,
                Ok(received) => received,
                // WouldBlock: drained. Other errors (e.g. ICMP-induced ECONNREFUSED) concern
                // one peer; the socket stays usable, and under edge-triggered polling we must
                // keep reading until it is drained (WouldBlock or a short batch).
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => continue,
            };
            let (snapshot, cookies) = self.load_shared();
            let mut answer = UdpAnswer {
                serving: serving(&self.counters, &snapshot, &cookies),
                rate_limiter: self.rate_limiter.as_mut(),
                now_ms: self.started.elapsed().as_millis() as u64,
            };
            self.batch
                .answer_each(|query, sender, out| answer.answer(query, sender, out));
            drop((snapshot, cookies));
            self.batch.send(socket);
            // A short batch means the queue ran dry during the call. Every datagram that
            // arrives later raises a new edge, so there is no need to spend a system call
            // on seeing EAGAIN.
            if received < BATCH {
                return false;
            }
        }
        true
    }

    fn accept(&mut self, i: usize) {
        loop {
            let Some(listener) = self.listeners.get(i) else {
                return; // closed by shutdown
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let (snapshot, cookies) = self.load_shared();
                    let serving = serving(&self.counters, &snapshot, &cookies);
                    self.connections
                        .add(self.poll.registry(), stream, peer.ip(), &serving);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // ECONNABORTED, EMFILE and friends: this connection is lost, the listener
                // is fine. Stop for this turn so that EMFILE cannot spin.
                Err(_) => return,
            }
        }
    }
}

/// Everything one UDP batch is answered with.
struct UdpAnswer<'a> {
    serving: Serving<'a>,
    rate_limiter: Option<&'a mut RateLimiter>,
    /// The rate limiter's clock.
    now_ms: u64,
}

impl UdpAnswer<'_> {
    /// Answers one datagram, then lets the rate limiter drop or truncate the response; a
    /// query with a valid server cookie is not limited (its source address is proven).
    fn answer(&mut self, query: &[u8], sender: Option<IpAddr>, out: &mut [u8]) -> Option<usize> {
        let serving = &self.serving;
        let context = serving.context(Transport::Udp, sender);
        let mut summary = respond_to(query, serving.snapshot, &context, out);
        if let (Some(limiter), Some(_), Some(client)) =
            (self.rate_limiter.as_deref_mut(), summary.len, sender)
        {
            if summary.cookie != Some(cookie::Check::Valid) {
                match limiter.check(client, self.now_ms) {
                    Verdict::Send => {}
                    Verdict::Drop => {
                        serving.counters.rate_limited(Limited::Dropped);
                        summary.len = None;
                    }
                    Verdict::Slip => {
                        serving.counters.rate_limited(Limited::Slipped);
                        summary.truncate(out);
                    }
                }
            }
        }
        serving.counters.record(Transport::Udp, &summary);
        summary.len
    }
}

fn serving<'a>(
    counters: &'a WorkerCounters,
    snapshot: &'a Snapshot,
    cookies: &'a Secrets,
) -> Serving<'a> {
    Serving {
        snapshot,
        cookies,
        counters,
        now: unix_seconds(),
    }
}
