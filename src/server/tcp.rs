//! DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries answered in order,
//! partial reads and writes, an idle timeout and a per-worker connection cap.
//!
//! Each connection owns an inbox big enough for the largest message and an outbox for two
//! largest responses, made at accept; answering writes straight into the outbox, so the
//! query path allocates nothing.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::TcpLimits;
use crate::answer::{respond, Transport};
use crate::snapshot::Snapshot;
use crate::wire::MAX_TCP;

/// Bytes of the length prefix (RFC 1035 §4.2.2).
const PREFIX: usize = 2;
const MAX_FRAME: usize = PREFIX + MAX_TCP;

struct Connection {
    stream: TcpStream,
    /// Received bytes, `inbox[read_at..received]` not yet answered.
    inbox: Box<[u8]>,
    read_at: usize,
    received: usize,
    /// Responses, `outbox[sent..queued]` not yet written.
    outbox: Box<[u8]>,
    sent: usize,
    queued: usize,
    last_active: Instant,
    /// Since when a message has been half received or an answer unsent without a message
    /// completing either way; `None` when nothing is pending.
    stalled_since: Option<Instant>,
    peer_done: bool,
}

/// What to do with a connection after driving it.
#[derive(PartialEq, Eq)]
enum State {
    Open,
    Close,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            inbox: vec![0; MAX_FRAME].into_boxed_slice(),
            read_at: 0,
            received: 0,
            outbox: vec![0; 2 * MAX_FRAME].into_boxed_slice(),
            sent: 0,
            queued: 0,
            last_active: Instant::now(),
            stalled_since: None,
            peer_done: false,
        }
    }

    /// Answers, writes and reads until nothing moves. Edge-triggered readiness means every
    /// path must run until the socket would block.
    fn drive(&mut self, snapshot: &Snapshot) -> State {
        loop {
            let answered = self.answer_frames(snapshot);
            let Ok(wrote) = self.flush() else {
                return State::Close;
            };
            let Ok(read) = self.fill() else {
                return State::Close;
            };
            if answered || wrote {
                self.stalled_since = None;
            }
            if self.peer_done && self.sent == self.queued && !self.has_frame() {
                return State::Close;
            }
            if !(answered || wrote || read) {
                let pending = self.received > self.read_at || self.queued > self.sent;
                self.stalled_since =
                    pending.then(|| self.stalled_since.unwrap_or_else(Instant::now));
                return State::Open;
            }
        }
    }

    fn has_frame(&self) -> bool {
        let pending = &self.inbox[self.read_at..self.received];
        pending.len() >= PREFIX
            && pending.len() >= PREFIX + usize::from(u16::from_be_bytes([pending[0], pending[1]]))
    }

    /// Answers every complete query while the outbox has room for a largest response.
    fn answer_frames(&mut self, snapshot: &Snapshot) -> bool {
        let mut answered = false;
        while self.has_frame() {
            if self.outbox.len() - self.queued < MAX_FRAME {
                self.outbox.copy_within(self.sent..self.queued, 0);
                self.queued -= self.sent;
                self.sent = 0;
                if self.outbox.len() - self.queued < MAX_FRAME {
                    break; // Backpressure: the peer is not reading its answers.
                }
            }
            let start = self.read_at + PREFIX;
            let len = usize::from(u16::from_be_bytes([
                self.inbox[self.read_at],
                self.inbox[self.read_at + 1],
            ]));
            let query = &self.inbox[start..start + len];
            let out = &mut self.outbox[self.queued + PREFIX..self.queued + MAX_FRAME];
            if let Some(response_len) = respond(query, snapshot, Transport::Tcp, out) {
                self.outbox[self.queued..self.queued + PREFIX]
                    .copy_from_slice(&(response_len as u16).to_be_bytes());
                self.queued += PREFIX + response_len;
            }
            self.read_at = start + len;
            answered = true;
        }
        answered
    }

    fn flush(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while self.sent < self.queued {
            match self.stream.write(&self.outbox[self.sent..self.queued]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    self.last_active = Instant::now();
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.queued {
            self.sent = 0;
            self.queued = 0;
        }
        Ok(wrote)
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.peer_done {
            return Ok(false);
        }
        if self.read_at > 0 {
            self.inbox.copy_within(self.read_at..self.received, 0);
            self.received -= self.read_at;
            self.read_at = 0;
        }
        if self.received == self.inbox.len() {
            return Ok(false); // A whole frame waits for outbox room.
        }
        loop {
            match self.stream.read(&mut self.inbox[self.received..]) {
                Ok(0) => {
                    self.peer_done = true;
                    return Ok(true);
                }
                Ok(n) => {
                    self.received += n;
                    self.last_active = Instant::now();
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A worker's connections, in slots whose index is the mio token minus `base`.
pub(super) struct Connections {
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    open: usize,
    base: usize,
    limits: TcpLimits,
}

impl Connections {
    pub(super) fn new(base: usize, limits: TcpLimits) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            base,
            limits,
        }
    }

    /// Takes a new connection, closing the least recently active one if at the cap.
    pub(super) fn add(&mut self, registry: &Registry, stream: TcpStream, snapshot: &Snapshot) {
        if self.open >= self.limits.max_connections {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| slot.as_ref().map(|c| (c.last_active, i)))
                .min();
            match oldest {
                Some((_, i)) => self.close(i),
                None => return,
            }
        }
        // Responses are written whole; Nagle would hold back the second of two pipelined.
        let _ = stream.set_nodelay(true);
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut connection = Connection::new(stream);
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
            return;
        }
        self.slots[index] = Some(connection);
        self.open += 1;
        self.drive(token, snapshot);
    }

    pub(super) fn drive(&mut self, token: Token, snapshot: &Snapshot) {
        let index = token.0 - self.base;
        let state = match self.slots.get_mut(index) {
            Some(Some(connection)) => connection.drive(snapshot),
            _ => return,
        };
        if state == State::Close {
            self.close(index);
        }
    }

    /// Closes connections idle for longer than the idle timeout, or stalled mid-message for
    /// longer than the I/O timeout.
    pub(super) fn close_idle(&mut self, now: Instant) {
        let limits = self.limits;
        for index in 0..self.slots.len() {
            let expired = self.slots[index].as_ref().is_some_and(|c| {
                now.duration_since(c.last_active) > limits.idle_timeout
                    || c.stalled_since
                        .is_some_and(|since| now.duration_since(since) > limits.io_timeout)
            });
            if expired {
                self.close(index);
            }
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(connection) = self.slots[index].take() {
            // Dropping the stream deregisters it (closing the fd removes it from epoll).
            let _ = connection.stream.shutdown(Shutdown::Both);
            self.free.push(index);
            self.open -= 1;
        }
    }
}
