//! DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries answered in order,
//! partial reads and writes, an idle timeout and a per-worker connection cap.
//!
//! Each connection owns an inbox big enough for the largest message and an outbox for two
//! largest responses, made at accept; answering writes straight into the outbox, so the
//! query path allocates nothing.
//!
//! Fairness: a worker answers at most `TURN_BUDGET` TCP queries per turn of its event loop,
//! whatever the number of connections, and a connection that still has work when the budget
//! runs out waits in a round-robin queue for the next turn. Its UDP sockets get their turn in
//! between, so clients that pipeline without end (or never read) cannot take a worker from
//! UDP, nor from other TCP clients.

mod connection;

use std::collections::VecDeque;
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

pub(super) use self::connection::Ends;
use self::connection::{Buffers, Connection, State, MAX_FRAME};
use crate::metrics::{CloseReason, WorkerCounters};
use crate::server::pipeline::HandOff;
use crate::server::pipeline::Serving;
use crate::server::shared::TcpLimits;

/// TCP queries a worker answers per turn of its loop: as many as one UDP socket's turn.
const TURN_BUDGET: usize = 1024;
/// The kernel's send buffer per connection. Fixed (no autotuning to megabytes), so that a
/// client that never reads stalls, and is cut off by the I/O timeout, after a bounded number
/// of answers, and the kernel memory of many connections stays bounded.
const SEND_BUFFER: usize = 2 * MAX_FRAME;

/// A worker's connections, in slots whose index is the mio token minus `base`.
pub(super) struct Connections {
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    open: usize,
    base: usize,
    limits: TcpLimits,
    /// Queries still to answer this turn.
    budget: usize,
    /// Connections with work left over from an earlier turn, in turn order; `queued` marks
    /// the slots in it so that none is queued twice.
    busy: VecDeque<usize>,
    queued: Vec<bool>,
    /// Buffers of closed connections, for the next ones.
    spare: Vec<Buffers>,
    /// Connections that asked for a zone transfer or sent an UPDATE, for the worker to hand
    /// on, with the bytes they sent that are not answered yet.
    handoffs: Vec<(TcpStream, HandOff, Vec<u8>)>,
}

impl Connections {
    pub(super) fn new(base: usize, limits: TcpLimits) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            base,
            limits,
            budget: TURN_BUDGET,
            busy: VecDeque::new(),
            queued: Vec::new(),
            spare: Vec::new(),
            handoffs: Vec::new(),
        }
    }

    /// Starts a turn of the event loop with a full budget.
    pub(super) fn new_turn(&mut self) {
        self.budget = TURN_BUDGET;
    }

    /// Drives the connections left with work by earlier turns, oldest first, while the
    /// budget lasts; those it does not reach keep their place.
    pub(super) fn drive_busy(&mut self, serving: &Serving<'_>) {
        for _ in 0..self.busy.len() {
            if self.budget == 0 {
                break;
            }
            let Some(index) = self.busy.pop_front() else {
                break;
            };
            self.queued[index] = false;
            self.drive(Token(self.base + index), serving);
        }
    }

    /// Whether some connection has work waiting for the next turn.
    pub(super) fn has_busy(&self) -> bool {
        !self.busy.is_empty()
    }

    pub(super) fn open(&self) -> usize {
        self.open
    }

    /// Takes a new connection, closing the least recently active one if at the cap.
    pub(super) fn add(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        ends: Ends,
        serving: &Serving<'_>,
    ) {
        if self.open >= self.limits.max_connections {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| slot.as_ref().map(|c| (c.last_active, i)))
                .min();
            match oldest {
                Some((_, i)) => self.close(i, CloseReason::Cap, serving.counters),
                None => return,
            }
        }
        // Responses are written whole; Nagle would hold back the second of two pipelined.
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.queued.push(false);
            // Room for every connection, so that queueing never allocates.
            self.busy
                .reserve(self.slots.len().saturating_sub(self.busy.len()));
            self.slots.len() - 1
        });
        let buffers = self.spare.pop().unwrap_or_else(Buffers::new);
        let mut connection = Connection::new(stream, ends, buffers);
        let token = Token(self.base + index);
        if registry
            .register(
                &mut connection.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.free.push(index);
            self.keep_buffers(connection);
            return;
        }
        self.slots[index] = Some(connection);
        self.open += 1;
        serving.counters.tcp_accepted(self.open);
        self.drive(token, serving);
    }

    pub(super) fn drive(&mut self, token: Token, serving: &Serving<'_>) {
        let index = token.0 - self.base;
        let state = match self.slots.get_mut(index) {
            Some(Some(connection)) => connection.drive(serving, &mut self.budget),
            _ => return,
        };
        match state {
            State::Open => {}
            State::Busy => {
                if !self.queued[index] {
                    self.queued[index] = true;
                    self.busy.push_back(index);
                }
            }
            State::Close(reason) => self.close(index, reason, serving.counters),
            State::HandOff => self.hand_off(index, serving.counters),
        }
    }

    /// Connections handed off since the last call: the worker deregisters them and starts
    /// their transfers.
    pub(super) fn take_handoffs(&mut self) -> std::vec::Drain<'_, (TcpStream, HandOff, Vec<u8>)> {
        self.handoffs.drain(..)
    }

    fn hand_off(&mut self, index: usize, counters: &WorkerCounters) {
        if let Some(connection) = self.slots[index].take() {
            self.free.push(index);
            self.open -= 1;
            counters.tcp_closed(CloseReason::Transfer, self.open);
            let (stream, handoff, pending, buffers) = connection.into_handoff();
            if self.spare.len() < self.limits.max_connections {
                self.spare.push(buffers);
            }
            if let Some(handoff) = handoff {
                self.handoffs.push((stream, handoff, pending));
            }
        }
    }

    /// Shutdown: every connection finishes the answers asked for so far, then closes.
    pub(super) fn drain(&mut self, serving: &Serving<'_>) {
        for index in 0..self.slots.len() {
            if let Some(connection) = &mut self.slots[index] {
                connection.start_draining();
                self.drive(Token(self.base + index), serving);
            }
        }
    }

    /// Closes connections idle for longer than the idle timeout, or stalled mid-message for
    /// longer than the I/O timeout.
    pub(super) fn close_idle(&mut self, now: Instant, counters: &WorkerCounters) {
        let limits = self.limits;
        for index in 0..self.slots.len() {
            let Some(c) = &self.slots[index] else {
                continue;
            };
            if now.duration_since(c.last_active) > limits.idle_timeout {
                self.close(index, CloseReason::Idle, counters);
            } else if c
                .stalled_since
                .is_some_and(|since| now.duration_since(since) > limits.io_timeout)
            {
                self.close(index, CloseReason::IoTimeout, counters);
            }
        }
    }

    /// Closes every connection: the drain timed out or finished.
    pub(super) fn close_all(&mut self, counters: &WorkerCounters) {
        for index in 0..self.slots.len() {
            self.close(index, CloseReason::Shutdown, counters);
        }
    }

    fn close(&mut self, index: usize, reason: CloseReason, counters: &WorkerCounters) {
        if let Some(connection) = self.slots[index].take() {
            let _ = connection.stream.shutdown(Shutdown::Both);
            self.free.push(index);
            self.open -= 1;
            counters.tcp_closed(reason, self.open);
            self.keep_buffers(connection);
        }
    }

    /// Closes the connection's socket (which also removes it from epoll) and keeps its
    /// buffers, as many as there can be connections.
    fn keep_buffers(&mut self, connection: Connection) {
        if self.spare.len() < self.limits.max_connections {
            self.spare.push(connection.into_buffers());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::cookie::Secrets;
    use crate::snapshot::Snapshot;
    use crate::testing::QueryBuilder;

    fn query_frame(id: u16) -> Vec<u8> {
        QueryBuilder::new("ws-123456.apps.example.com", 1)
            .id(id)
            .frame()
    }

    /// Answers waiting on a client socket, read without blocking.
    fn answers_waiting(client: &mut std::net::TcpStream) -> usize {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 65536];
        client.set_nonblocking(true).unwrap();
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        client.set_nonblocking(false).unwrap();
        let mut frames = 0;
        let mut at = 0;
        while at + 2 <= bytes.len() {
            at += 2 + usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
            frames += 1;
        }
        assert_eq!(at, bytes.len(), "whole frames");
        frames
    }

    const BACKLOG: usize = 5000;

    /// A client with thousands of queries pipelined gets `TURN_BUDGET` answers a turn, and
    /// another client's single query waits at most for the connections ahead of it in the
    /// round-robin queue, not for the first client's backlog.
    #[test]
    fn busy_connections_take_turns() {
        let zone = Config::default().zone().unwrap();
        let snapshot =
            Snapshot::from_json(include_bytes!("../../../data/apps.json"), &zone).unwrap();
        let cookies = Secrets::new([1; 16], None);
        let counters = WorkerCounters::default();
        let serving = Serving {
            now: 0,
            ..Serving::new(&snapshot, &cookies, &counters)
        };
        let poll = mio::Poll::new().unwrap();
        let limits = TcpLimits {
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(60),
            max_connections: 8,
        };
        let mut connections = Connections::new(100, limits);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut heavy = std::net::TcpStream::connect(addr).unwrap();
        let mut light = std::net::TcpStream::connect(addr).unwrap();
        let backlog: Vec<u8> = (0..BACKLOG as u16).flat_map(query_frame).collect();
        let mut writer = heavy.try_clone().unwrap();
        let writing = std::thread::spawn(move || writer.write_all(&backlog).unwrap());
        light.write_all(&query_frame(7)).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // queries reach the server's kernel

        // Turn 1: both connections arrive; the heavy one takes the whole budget.
        connections.new_turn();
        for _ in 0..2 {
            let (stream, peer) = listener.accept().unwrap();
            stream.set_nonblocking(true).unwrap();
            let stream = TcpStream::from_std(stream);
            let ends = Ends {
                client: peer,
                server: addr,
            };
            connections.add(poll.registry(), stream, ends, &serving);
        }
        assert_eq!(answers_waiting(&mut heavy), TURN_BUDGET);
        assert_eq!(answers_waiting(&mut light), 0);
        assert!(connections.has_busy());

        // Turn 2: the heavy one was queued first and goes first again.
        connections.new_turn();
        connections.drive_busy(&serving);
        assert_eq!(answers_waiting(&mut heavy), TURN_BUDGET);
        assert_eq!(answers_waiting(&mut light), 0);

        // Turn 3: the light one's turn comes before the heavy backlog is done.
        connections.new_turn();
        connections.drive_busy(&serving);
        assert_eq!(answers_waiting(&mut light), 1);
        // The light query cost one answer of the turn; the heavy one had the rest.
        assert_eq!(answers_waiting(&mut heavy), TURN_BUDGET - 1);

        // Later turns finish the backlog (driven as readiness would, until it is all read).
        let mut answered = 3 * TURN_BUDGET - 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while answered < BACKLOG && Instant::now() < deadline {
            connections.new_turn();
            connections.drive(Token(100), &serving);
            answered += answers_waiting(&mut heavy);
        }
        assert_eq!(answered, BACKLOG);
        writing.join().unwrap();
    }
}
