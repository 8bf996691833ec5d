//! DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries answered in order,
//! partial reads and writes, an idle timeout and a per-worker connection cap.
//!
//! Each connection owns an inbox big enough for the largest message and an outbox for two
//! largest responses, made at accept; answering writes straight into the outbox, so the
//! query path allocates nothing.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::TcpLimits;
use crate::answer::{respond_to, Context, Transport};
use crate::cookie::Secrets;
use crate::metrics::{CloseReason, WorkerCounters};
use crate::snapshot::Snapshot;
use crate::wire::MAX_TCP;

/// What answering needs, borrowed for one event.
pub(super) struct Serving<'a> {
    pub(super) snapshot: &'a Snapshot,
    pub(super) cookies: &'a Secrets,
    pub(super) counters: &'a WorkerCounters,
    /// Unix seconds, for cookies.
    pub(super) now: u32,
}

/// Bytes of the length prefix (RFC 1035 §4.2.2).
const PREFIX: usize = 2;
const MAX_FRAME: usize = PREFIX + MAX_TCP;

struct Connection {
    stream: TcpStream,
    peer: IpAddr,
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
    /// Shutdown: answer the queries already read, send every answer, then linger.
    draining: bool,
    /// Our side is shut down (FIN sent after the last answer); what the client still sends
    /// is read and discarded until it closes, so that the close is not a reset, which would
    /// destroy answers the client has not read yet.
    lingering: bool,
}

/// What to do with a connection after driving it.
#[derive(PartialEq, Eq)]
enum State {
    Open,
    Close(CloseReason),
}

impl Connection {
    fn new(stream: TcpStream, peer: IpAddr) -> Self {
        Self {
            stream,
            peer,
            inbox: vec![0; MAX_FRAME].into_boxed_slice(),
            read_at: 0,
            received: 0,
            outbox: vec![0; 2 * MAX_FRAME].into_boxed_slice(),
            sent: 0,
            queued: 0,
            last_active: Instant::now(),
            stalled_since: None,
            peer_done: false,
            draining: false,
            lingering: false,
        }
    }

    /// Answers, writes and reads until nothing moves. Edge-triggered readiness means every
    /// path must run until the socket would block.
    fn drive(&mut self, serving: &Serving<'_>) -> State {
        if self.lingering {
            return self.discard_input();
        }
        loop {
            let answered = self.answer_frames(serving);
            let Ok(wrote) = self.flush() else {
                return State::Close(CloseReason::Peer);
            };
            // Draining reads nothing new: queries still on the way are not in flight yet.
            let read = if self.draining {
                Ok(false)
            } else {
                self.fill()
            };
            let Ok(read) = read else {
                return State::Close(CloseReason::Peer);
            };
            if answered || wrote {
                self.stalled_since = None;
            }
            let finished = self.sent == self.queued && !self.has_frame();
            if self.peer_done && finished {
                return State::Close(CloseReason::Peer);
            }
            if self.draining && finished {
                self.lingering = true;
                let _ = self.stream.shutdown(Shutdown::Write);
                return self.discard_input();
            }
            if !(answered || wrote || read) {
                let pending = self.received > self.read_at || self.queued > self.sent;
                self.stalled_since =
                    pending.then(|| self.stalled_since.unwrap_or_else(Instant::now));
                return State::Open;
            }
        }
    }

    /// Reads and drops whatever the client sends, until it closes.
    fn discard_input(&mut self) -> State {
        loop {
            match self.stream.read(&mut self.inbox) {
                Ok(0) => return State::Close(CloseReason::Shutdown),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return State::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return State::Close(CloseReason::Shutdown),
            }
        }
    }

    fn has_frame(&self) -> bool {
        let pending = &self.inbox[self.read_at..self.received];
        pending.len() >= PREFIX
            && pending.len() >= PREFIX + usize::from(u16::from_be_bytes([pending[0], pending[1]]))
    }

    /// Answers every complete query while the outbox has room for a largest response.
    fn answer_frames(&mut self, serving: &Serving<'_>) -> bool {
        let context = Context {
            transport: Transport::Tcp,
            client: Some(self.peer),
            now: serving.now,
            cookies: Some(serving.cookies),
            truncate: false,
        };
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
            let summary = respond_to(query, serving.snapshot, &context, out);
            serving.counters.record(Transport::Tcp, &summary);
            if let Some(response_len) = summary.len {
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

    pub(super) fn open(&self) -> usize {
        self.open
    }

    /// Takes a new connection, closing the least recently active one if at the cap.
    pub(super) fn add(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        peer: IpAddr,
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
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut connection = Connection::new(stream, peer);
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
        serving.counters.tcp_accepted(self.open);
        self.drive(token, serving);
    }

    pub(super) fn drive(&mut self, token: Token, serving: &Serving<'_>) {
        let index = token.0 - self.base;
        let state = match self.slots.get_mut(index) {
            Some(Some(connection)) => connection.drive(serving),
            _ => return,
        };
        if let State::Close(reason) = state {
            self.close(index, reason, serving.counters);
        }
    }

    /// Shutdown: every connection finishes the answers asked for so far, then closes.
    pub(super) fn drain(&mut self, serving: &Serving<'_>) {
        for index in 0..self.slots.len() {
            if let Some(connection) = &mut self.slots[index] {
                connection.draining = true;
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
            // Dropping the stream deregisters it (closing the fd removes it from epoll).
            let _ = connection.stream.shutdown(Shutdown::Both);
            self.free.push(index);
            self.open -= 1;
            counters.tcp_closed(reason, self.open);
        }
    }
}
