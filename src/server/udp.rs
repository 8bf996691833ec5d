//! The UDP half of a worker, where a packet's walk starts: a batch of datagrams is read with
//! recvmmsg, each goes through the pipeline (`pipeline::handle`: answered, rate limited,
//! signed, counted), and the answers leave with one sendmmsg.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::pipeline::{handle, Handled, RateLimit, Serving};
use super::shared::Shared;
use super::update::{Job, Reply};
use crate::answer::Transport;
use crate::dnstap::{self, Exchange, Protocol, Tap};
use crate::metrics::WorkerCounters;
use crate::rrl::RateLimiter;
use crate::sys::{UdpBatch, BATCH};

/// Batches read from one UDP socket before other sockets get a turn.
const BATCHES_PER_TURN: usize = 16;
/// Set once a send error has been logged: one line per process, the metric counts the rest.
static SEND_ERROR_LOGGED: AtomicBool = AtomicBool::new(false);

/// A worker's UDP sockets, its batch buffers and its rate limiter.
pub(super) struct UdpSide {
    sockets: Vec<UdpSocket>,
    /// Each socket's own address, for dnstap.
    locals: Vec<SocketAddr>,
    /// Sockets that may still hold datagrams after their turn ended.
    pending: Vec<bool>,
    batch: UdpBatch,
    rate_limiter: Option<RateLimiter>,
    /// The rate limiter's clock starts here.
    started: Instant,
    /// UPDATEs of the batch being answered, by their index in it, for the committer; room
    /// for a whole batch is made at start.
    updates: Vec<(usize, Vec<u8>)>,
}

impl UdpSide {
    pub(super) fn new(
        sockets: Vec<std::net::UdpSocket>,
        rate_limiter: Option<RateLimiter>,
    ) -> Self {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            pending: vec![false; sockets.len()],
            locals: sockets
                .iter()
                .map(|socket| socket.local_addr().unwrap_or(unknown))
                .collect(),
            sockets: sockets.into_iter().map(UdpSocket::from_std).collect(),
            batch: UdpBatch::new(),
            rate_limiter,
            started: Instant::now(),
            updates: Vec::with_capacity(BATCH),
        }
    }

    /// Registers socket `i` under token `first + i`.
    pub(super) fn register(&mut self, registry: &Registry, first: usize) -> io::Result<()> {
        for (i, socket) in self.sockets.iter_mut().enumerate() {
            registry.register(socket, Token(first + i), Interest::READABLE)?;
        }
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Socket `i` became readable.
    pub(super) fn mark_pending(&mut self, i: usize) {
        if let Some(pending) = self.pending.get_mut(i) {
            *pending = true;
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        self.pending.contains(&true)
    }

    /// Shutdown: closes every socket.
    pub(super) fn close(&mut self) {
        self.sockets.clear();
        self.locals.clear();
        self.pending.clear();
    }

    /// Gives each socket with datagrams waiting its turn; with `tap`, what was answered is
    /// logged.
    pub(super) fn serve_pending(
        &mut self,
        shared: &Shared,
        counters: &WorkerCounters,
        tap: Option<&RefCell<Tap>>,
    ) {
        for i in 0..self.sockets.len() {
            if self.pending[i] {
                self.pending[i] = self.serve(i, shared, counters, tap);
            }
        }
    }

    /// Answers datagrams on socket `i` for one turn. Returns whether it may hold more.
    fn serve(
        &mut self,
        i: usize,
        shared: &Shared,
        counters: &WorkerCounters,
        tap: Option<&RefCell<Tap>>,
    ) -> bool {
        let socket = self.sockets[i].as_fd();
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
            let query_time = tap.map(|_| dnstap::now());
            let (snapshot, cookies) = (shared.snapshot.load(), shared.cookies.load());
            let mut answer = UdpAnswer {
                serving: Serving::new(&snapshot, &cookies, counters).with_shared(shared),
                rate_limiter: self.rate_limiter.as_mut(),
                now_ms: self.started.elapsed().as_millis() as u64,
                index: 0,
                updates: &mut self.updates,
            };
            self.batch
                .answer_each(|query, sender, out| answer.answer(query, sender, out));
            drop((snapshot, cookies));
            if !self.updates.is_empty() {
                queue_updates(&mut self.updates, &self.batch, i, shared);
            }
            let sent = self.batch.send(socket);
            if let Some(error) = sent.error {
                counters.udp_send_failed(sent.failed);
                crate::log::once(
                    &SEND_ERROR_LOGGED,
                    crate::log::Level::Warning,
                    format_args!("UDP replies dropped: {error} (logged once; cnamed_udp_send_errors_total counts them)"),
                );
            }
            if let (Some(tap), Some(query_time)) = (tap, query_time) {
                log_batch(
                    &mut tap.borrow_mut(),
                    &self.batch,
                    self.locals[i],
                    query_time,
                );
            }
            // A short batch means the queue ran dry during the call. Every datagram that
            // arrives later raises a new edge, so there is no need to spend a system call
            // on seeing EAGAIN.
            if received < BATCH {
                return false;
            }
        }
        true
    }
}

/// Queues the batch's UPDATEs for the committer, which answers them from socket `i`'s
/// address; a full queue drops them (the client tries again).
#[cold]
fn queue_updates(pending: &mut Vec<(usize, Vec<u8>)>, batch: &UdpBatch, i: usize, shared: &Shared) {
    for (index, message) in pending.drain(..) {
        let (Some(updates), Some(peer)) = (&shared.updates, batch.peer(index)) else {
            continue;
        };
        let reply = Reply::Udp { socket: i };
        updates.submit_udp(Job {
            message,
            peer,
            reply,
        });
    }
}

/// Logs the sampled datagrams of a batch just answered to dnstap, each with its reply (none
/// for a datagram dropped, rate limited away, or left to the committer).
#[inline(never)]
fn log_batch(tap: &mut Tap, batch: &UdpBatch, server: SocketAddr, query_time: Duration) {
    let response_time = dnstap::now();
    for i in 0..batch.len() {
        if !tap.sampled() {
            continue;
        }
        let (query, Some(client)) = (batch.received(i), batch.peer(i)) else {
            continue;
        };
        if query.is_empty() {
            continue; // larger than any DNS message: never read
        }
        tap.log(&Exchange {
            protocol: Protocol::Udp,
            client,
            server,
            query,
            response: batch.response(i),
            query_time,
            response_time,
        });
    }
}

/// Everything one UDP batch is answered with.
struct UdpAnswer<'a> {
    serving: Serving<'a>,
    rate_limiter: Option<&'a mut RateLimiter>,
    /// The rate limiter's clock.
    now_ms: u64,
    /// The index in the batch of the next datagram.
    index: usize,
    /// Where UPDATEs go until the batch is answered.
    updates: &'a mut Vec<(usize, Vec<u8>)>,
}

impl UdpAnswer<'_> {
    /// Answers one datagram through the pipeline, rate limiter included.
    #[inline]
    fn answer(&mut self, query: &[u8], sender: Option<IpAddr>, out: &mut [u8]) -> Option<usize> {
        let mut rate_limit = self.rate_limiter.as_deref_mut().map(|limiter| RateLimit {
            limiter,
            now_ms: self.now_ms,
        });
        let index = self.index;
        self.index += 1;
        match handle(
            &self.serving,
            Transport::Udp,
            query,
            sender,
            out,
            rate_limit.as_mut(),
        ) {
            Handled::Answer(len) => len,
            // Over UDP a transfer (IXFR) is answered in place, never handed off.
            Handled::HandOff(_) => None,
            Handled::Update(message) => {
                // Within the capacity made at start: a batch holds at most BATCH.
                self.updates.push((index, message));
                None
            }
        }
    }
}
