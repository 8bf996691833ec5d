//! One TCP connection's life: frames read into its inbox, answered straight into its outbox,
//! written as the peer reads, until it closes, times out or drains at shutdown.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;

use crate::answer::Transport;
use crate::dnstap::{self, Exchange, Protocol, Tap};
use crate::metrics::CloseReason;
use crate::server::pipeline::{handle, HandOff, Handled, Serving};
use crate::wire::MAX_TCP;

/// Bytes of the length prefix (RFC 1035 §4.2.2).
const PREFIX: usize = 2;
/// A largest message with its prefix.
pub(super) const MAX_FRAME: usize = PREFIX + MAX_TCP;

/// Who is at either end of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ends {
    pub(crate) client: SocketAddr,
    /// The listener's address, for dnstap.
    pub(crate) server: SocketAddr,
}

pub(super) struct Connection {
    pub(super) stream: TcpStream,
    ends: Ends,
    /// Received bytes, `inbox[read_at..received]` not yet answered.
    inbox: Box<[u8]>,
    read_at: usize,
    received: usize,
    /// Responses, `outbox[sent..queued]` not yet written.
    outbox: Box<[u8]>,
    sent: usize,
    queued: usize,
    pub(super) last_active: Instant,
    /// Since when a message has been half received or an answer unsent without a message
    /// completing either way; `None` when nothing is pending.
    pub(super) stalled_since: Option<Instant>,
    peer_done: bool,
    /// Shutdown: answer the queries already read, send every answer, then linger.
    draining: bool,
    /// Our side is shut down (FIN sent after the last answer); what the client still sends
    /// is read and discarded until it closes, so that the close is not a reset, which would
    /// destroy answers the client has not read yet.
    lingering: bool,
    /// An accepted zone transfer, or an UPDATE: the connection goes to another thread once
    /// the answers before it are sent; no later message is read here.
    handoff: Option<HandOff>,
}

/// What to do with a connection after driving it.
#[derive(PartialEq, Eq)]
pub(super) enum State {
    /// Waiting for readiness.
    Open,
    /// The turn's budget ran out with work left: drive again next turn.
    Busy,
    Close(CloseReason),
    /// Its answers are sent and a transfer or an UPDATE came: hand it to another thread.
    HandOff,
}

impl Connection {
    pub(super) fn new(stream: TcpStream, ends: Ends, buffers: Buffers) -> Self {
        Self {
            stream,
            ends,
            inbox: buffers.inbox,
            read_at: 0,
            received: 0,
            outbox: buffers.outbox,
            sent: 0,
            queued: 0,
            last_active: Instant::now(),
            stalled_since: None,
            peer_done: false,
            draining: false,
            lingering: false,
            handoff: None,
        }
    }

    /// Shutdown: answer the queries already read, send every answer, then linger.
    pub(super) fn start_draining(&mut self) {
        self.draining = true;
    }

    /// For a hand-off: the stream, where it goes, the bytes received and not answered (from
    /// the UPDATE on; a transfer's connection reads nothing more), and the buffers for the
    /// next connection.
    pub(super) fn into_handoff(self) -> (TcpStream, Option<HandOff>, Vec<u8>, Buffers) {
        let pending = match self.handoff {
            Some(HandOff::Update) => self.inbox[self.read_at..self.received].to_vec(),
            _ => Vec::new(),
        };
        let buffers = Buffers {
            inbox: self.inbox,
            outbox: self.outbox,
        };
        (self.stream, self.handoff, pending, buffers)
    }

    /// The buffers, for the next connection.
    pub(super) fn into_buffers(self) -> Buffers {
        Buffers {
            inbox: self.inbox,
            outbox: self.outbox,
        }
    }

    /// Answers, writes and reads until nothing moves. Edge-triggered readiness means every
    /// path must run until the socket would block.
    pub(super) fn drive(&mut self, serving: &Serving<'_>, budget: &mut usize) -> State {
        if self.lingering {
            return self.discard_input();
        }
        loop {
            if *budget == 0 {
                return State::Busy;
            }
            let answered = self.answer_frames(serving, budget);
            let Ok(wrote) = self.flush() else {
                return State::Close(CloseReason::Peer);
            };
            if self.handoff.is_some() {
                if self.sent == self.queued {
                    return State::HandOff;
                }
                // Earlier answers still going out: wait until the peer reads them.
                if wrote {
                    continue;
                }
                return State::Open;
            }
            let Ok(read) = self.fill() else {
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

    /// Answers complete queries while the outbox has room for a largest response and the
    /// budget lasts.
    fn answer_frames(&mut self, serving: &Serving<'_>, budget: &mut usize) -> bool {
        let mut answered = false;
        while *budget > 0 && self.handoff.is_none() && self.has_frame() {
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
            let client = Some(self.ends.client.ip());
            let answer = match handle(serving, Transport::Tcp, query, client, out, None) {
                Handled::Answer(len) => len,
                Handled::HandOff(handoff) => {
                    if let Some(tap) = serving.tap {
                        log_exchange(tap, self.ends, query, None);
                    }
                    // An UPDATE stays in the inbox, for the thread that answers it.
                    if let HandOff::Transfer(_) = handoff {
                        self.read_at = start + len;
                    }
                    self.handoff = Some(handoff);
                    *budget -= 1;
                    return true;
                }
                // Over TCP an UPDATE goes with its connection, never into the pool.
                Handled::Update(_) => None,
            };
            if let Some(tap) = serving.tap {
                let response = answer.map(|len| &out[..len]);
                log_exchange(tap, self.ends, query, response);
            }
            if let Some(response_len) = answer {
                self.outbox[self.queued..self.queued + PREFIX]
                    .copy_from_slice(&(response_len as u16).to_be_bytes());
                self.queued += PREFIX + response_len;
            }
            self.read_at = start + len;
            *budget -= 1;
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
        // Draining reads nothing new: queries still on the way are not in flight yet.
        if self.peer_done || self.draining {
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

/// A connection's inbox and outbox. Kept when the connection closes and handed to the next
/// one as they are: lengths say what is valid, so they need no zeroing, and a flood of
/// short connections costs neither an allocation nor a 192 KiB memset each.
/// Logs a query answered over TCP (and its response, if one was written) to dnstap, when
/// it is one of the sample. The answer is written as the query is read: one time for both.
#[inline(never)]
fn log_exchange(tap: &RefCell<Tap>, ends: Ends, query: &[u8], response: Option<&[u8]>) {
    let mut tap = tap.borrow_mut();
    if !tap.sampled() {
        return;
    }
    let now = dnstap::now();
    tap.log(&Exchange {
        protocol: Protocol::Tcp,
        client: ends.client,
        server: ends.server,
        query,
        response,
        query_time: now,
        response_time: now,
    });
}

pub(super) struct Buffers {
    inbox: Box<[u8]>,
    outbox: Box<[u8]>,
}

impl Buffers {
    pub(super) fn new() -> Self {
        Self {
            inbox: vec![0; MAX_FRAME].into_boxed_slice(),
            outbox: vec![0; 2 * MAX_FRAME].into_boxed_slice(),
        }
    }
}
