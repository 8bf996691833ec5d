//! DNS UPDATE in the server (`--update-key`, `--journal`): workers never wait for a disk.
//!
//! - Over UDP a worker copies the message into a buffer of a pool made at start (no
//!   allocation on its path) and queues it for the committer, which answers from a copy of
//!   the socket it came on. The pool or the queue full: SERVFAIL at once.
//! - Over TCP the connection goes, with what it has sent, to a thread of its own
//!   (connection.rs, at most [`MAX_CONNECTIONS`]), which queues each UPDATE and answers the
//!   other messages itself.
//! - One committer thread (commit.rs) takes what is queued together (group commit): checks
//!   each message's TSIG, judges it ([`crate::update::judge`]) against the zone as the
//!   messages before it left it, appends every change to the journal with one fsync, swaps
//!   in the new snapshot (an overlay on the same tables), records the differences for IXFR,
//!   tells the secondaries, and only then answers: an acknowledged change is on disk and
//!   served.

mod commit;
mod connection;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

pub(super) use commit::{journal_facts, spawn_committer, write_answer, Committer};
pub(super) use connection::start_connection;

use crate::metrics::UpdateStats;
use crate::wire::MAX_TCP;

/// UPDATE datagrams waiting for the committer at most: beyond, SERVFAIL.
const POOL: usize = 64;
/// Messages queued for the committer at most (TCP senders wait beyond).
const QUEUE: usize = 256;
/// TCP connections with UPDATEs served at once: beyond, SERVFAIL.
pub(super) const MAX_CONNECTIONS: usize = 16;

/// Where the committer sends an answer.
#[derive(Debug)]
pub(super) enum Reply {
    /// Over UDP, to the job's peer, from a copy of the socket of this listen address (its
    /// index).
    Udp { socket: usize },
    /// To the thread of a TCP connection.
    Tcp(mpsc::Sender<Vec<u8>>),
}

/// One UPDATE for the committer.
#[derive(Debug)]
pub(super) struct Job {
    /// The message; a buffer of the pool when it came over UDP.
    pub(super) message: Vec<u8>,
    pub(super) peer: SocketAddr,
    pub(super) reply: Reply,
}

/// What workers share to queue UPDATEs: the pool of UDP buffers and the committer's queue.
#[derive(Debug)]
pub(crate) struct Updates {
    /// The committer's figures, for the metrics and status.
    pub(crate) stats: Arc<UpdateStats>,
    jobs: SyncSender<Job>,
    free: Mutex<Vec<Vec<u8>>>,
    connections: AtomicUsize,
}

impl Updates {
    /// The queue and the pool, and the committer's end of the queue.
    pub(super) fn new() -> (Self, Receiver<Job>) {
        let (jobs, inbox) = mpsc::sync_channel(QUEUE);
        let mut free = Vec::with_capacity(POOL);
        free.extend((0..POOL).map(|_| Vec::with_capacity(MAX_TCP)));
        let updates = Self {
            stats: Arc::default(),
            jobs,
            free: Mutex::new(free),
            connections: AtomicUsize::new(0),
        };
        (updates, inbox)
    }

    /// `message` copied into a buffer of the pool, or `None` when every buffer is queued.
    pub(super) fn take_buffer(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        buffer.clear();
        // Within its capacity (a largest message): no allocation.
        buffer.extend_from_slice(message);
        Some(buffer)
    }

    /// A buffer back to the pool (one of the pool's only: others are dropped).
    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < POOL && buffer.capacity() >= MAX_TCP {
            free.push(buffer);
        }
    }

    /// Queues a datagram's UPDATE without waiting; a full queue gives the buffer back and
    /// says so.
    pub(super) fn submit_udp(&self, job: Job) -> bool {
        match self.jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                self.give_back(job.message);
                false
            }
        }
    }

    /// Queues a TCP connection's UPDATE, waiting for room.
    fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// Takes a place for a TCP connection's thread, if one is left.
    pub(super) fn reserve_connection(&self) -> bool {
        let taken = self.connections.fetch_add(1, Ordering::AcqRel);
        if taken >= MAX_CONNECTIONS {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
