//! One worker: a mio event loop over its UDP sockets, TCP listeners and connections.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};

use super::tcp::Connections;
use super::{Shared, TcpLimits};
use crate::answer::{respond, Transport};
use crate::sys::{UdpBatch, BATCH};

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
}

impl Worker {
    pub(super) fn new(
        udp: Vec<std::net::UdpSocket>,
        listeners: Vec<std::net::TcpListener>,
        shared: Arc<Shared>,
        limits: TcpLimits,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp: Vec<UdpSocket> = udp.into_iter().map(UdpSocket::from_std).collect();
        let mut listeners: Vec<TcpListener> =
            listeners.into_iter().map(TcpListener::from_std).collect();
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
        })
    }

    pub(super) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Serves until shutdown. `ready` is told once everything the loop needs is allocated.
    pub(super) fn run(mut self, ready: std::sync::mpsc::Sender<()>) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        let _ = ready.send(());
        drop(ready);
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let first_listener = FIRST_SOCKET + self.udp.len();
        loop {
            let timeout = if self.udp_pending.contains(&true) {
                Duration::ZERO
            } else {
                next_sweep.saturating_duration_since(Instant::now())
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                return Ok(());
            }
            for event in events.iter() {
                match event.token().0 {
                    0 => {}
                    token if token < first_listener => {
                        self.udp_pending[token - FIRST_SOCKET] = true
                    }
                    token if token < CONN_BASE => self.accept(token - first_listener),
                    token => {
                        let snapshot = self.shared.snapshot.load();
                        self.connections.drive(Token(token), &snapshot);
                    }
                }
            }
            for i in 0..self.udp.len() {
                if self.udp_pending[i] {
                    self.udp_pending[i] = self.serve_udp(i);
                }
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.connections.close_idle(now);
                next_sweep = now + SWEEP_EVERY;
            }
        }
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
            let snapshot = self.shared.snapshot.load();
            self.batch
                .answer_each(|query, out| respond(query, &snapshot, Transport::Udp, out));
            drop(snapshot);
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
            match self.listeners[i].accept() {
                Ok((stream, _peer)) => {
                    let snapshot = self.shared.snapshot.load();
                    self.connections
                        .add(self.poll.registry(), stream, &snapshot);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // ECONNABORTED, EMFILE and friends: this connection is lost, the listener
                // is fine. Stop for this turn so that EMFILE cannot spin.
                Err(_) => return,
            }
        }
    }
}
