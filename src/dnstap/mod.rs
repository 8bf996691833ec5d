//! dnstap query logs (`--dnstap PATH`): each worker's [`Tap`] encodes AUTH_QUERY and
//! AUTH_RESPONSE messages ([`message`]) into chunks of Frame Streams data frames
//! ([`frames`]), and one writer thread ([`writer`]) sends the chunks to the collector's Unix
//! socket (fstrm_capture, dnstap-read's files, a vector or dnscollector pipeline).
//!
//! The query path stays what it was: a worker writes into chunks it owns, made at start,
//! and passes them on through bounded channels; it never allocates, never waits for the
//! collector, and a frame with no chunk to go in is dropped and counted
//! (`cnamed_dnstap_dropped_frames_total`).

mod frames;
mod message;
mod tap;
mod writer;

use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use self::frames::CONTENT_TYPE;
pub use self::message::{encode, max_len, Event, Kind, Protocol};
pub use self::tap::{now, Exchange, Tap};
use crate::metrics::{Counter, DnstapStats};

/// Bytes of one chunk: room for the largest frame (a 65,535-byte message with its fields)
/// and, under load, for a few hundred ordinary ones per write.
const CHUNK_BYTES: usize = 128 * 1024;
/// Chunks per worker: what may wait for, or be in, a write to the collector before the
/// worker drops frames (a megabyte a worker).
const CHUNKS_PER_WORKER: usize = 8;

/// `--dnstap`, `--dnstap-sample`, `--dnstap-messages`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The collector's Unix socket.
    pub path: PathBuf,
    /// One query in `sample` is logged.
    pub sample: u32,
    pub messages: Messages,
}

/// Which messages of a logged query go to the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Messages {
    Queries,
    Responses,
    Both,
}

impl FromStr for Messages {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "queries" => Ok(Self::Queries),
            "responses" => Ok(Self::Responses),
            "both" => Ok(Self::Both),
            _ => Err(()),
        }
    }
}

/// A run of data frames, each with its length prefix, as they go on the wire.
pub(crate) struct Chunk {
    bytes: Box<[u8]>,
    len: usize,
    frames: u32,
    /// The worker it goes back to.
    worker: usize,
}

impl Chunk {
    fn new(worker: usize) -> Self {
        Self {
            bytes: vec![0; CHUNK_BYTES].into_boxed_slice(),
            len: 0,
            frames: 0,
            worker,
        }
    }

    fn room(&self) -> usize {
        self.bytes.len() - self.len
    }
}

/// What the taps write into every frame.
pub struct Identity {
    /// `--identity`, else the host name.
    pub identity: Vec<u8>,
    /// The version string; empty under `--version-string none`.
    pub version: Vec<u8>,
    /// The zone's apex in wire form.
    pub zone: Vec<u8>,
}

/// The writer thread started, and a tap for each of `workers`.
pub struct Started {
    pub taps: Vec<Tap>,
    pub stats: Arc<DnstapStats>,
    pub writer: JoinHandle<()>,
}

/// Makes every worker's chunks and starts the writer thread. `stopping` tells the writer
/// that the server is stopping (a stalled collector is then given up).
pub fn start(
    settings: &Settings,
    identity: Identity,
    workers: usize,
    stopping: Box<dyn Fn() -> bool + Send>,
) -> io::Result<Started> {
    let (to_writer, chunks) = sync_channel(workers * CHUNKS_PER_WORKER);
    let identity = Arc::new(identity);
    let mut taps = Vec::with_capacity(workers);
    let mut returns = Vec::with_capacity(workers);
    let mut dropped_slow = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (to_worker, returned) = sync_channel(CHUNKS_PER_WORKER);
        for _ in 0..CHUNKS_PER_WORKER {
            let _ = to_worker.try_send(Chunk::new(worker));
        }
        let dropped = Arc::new(Counter::default());
        dropped_slow.push(Arc::clone(&dropped));
        taps.push(Tap::new(
            settings,
            Arc::clone(&identity),
            to_writer.clone(),
            returned,
            dropped,
        ));
        returns.push(to_worker);
    }
    let stats = Arc::new(DnstapStats::new(dropped_slow));
    let writer = writer::Writer {
        path: settings.path.clone(),
        chunks,
        returns,
        stats: Arc::clone(&stats),
        stopping,
    };
    let writer = std::thread::Builder::new()
        .name("cnamed-dnstap".into())
        .spawn(move || writer.run())?;
    Ok(Started {
        taps,
        stats,
        writer,
    })
}
