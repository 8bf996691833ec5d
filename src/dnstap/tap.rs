//! A worker's end of dnstap: it samples queries, encodes their frames into a chunk of its
//! own and hands full chunks to the writer thread. Chunks circulate (worker -> writer ->
//! worker) through bounded channels made at start, so the worker neither allocates nor
//! waits: with no empty chunk at hand a frame is dropped and counted.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::frames::DATA_PREFIX;
use super::message::{encode, max_len, Event, Kind, Protocol};
use super::{Chunk, Identity, Messages, Settings};
use crate::metrics::Counter;

/// Past this many bytes a chunk goes to the writer after its frame: chunks are large enough
/// for any frame, written once half full.
pub(super) const FLUSH_AT: usize = super::CHUNK_BYTES / 2;

/// One worker's tap.
pub struct Tap {
    sample: u32,
    /// Queries until the next one logged.
    countdown: u32,
    messages: Messages,
    /// What every frame says of this server.
    identity: Arc<Identity>,
    /// The chunk being filled; `None` while every chunk of this worker is with the writer.
    chunk: Option<Chunk>,
    to_writer: SyncSender<Chunk>,
    returned: Receiver<Chunk>,
    /// Frames dropped for want of an empty chunk (the collector is slower than the queries).
    dropped: Arc<Counter>,
}

/// One exchange as a transport saw it.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    pub protocol: Protocol,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub query: &'a [u8],
    /// The response sent, if one was.
    pub response: Option<&'a [u8]>,
    pub query_time: Duration,
    pub response_time: Duration,
}

impl Tap {
    pub(super) fn new(
        settings: &Settings,
        identity: Arc<Identity>,
        to_writer: SyncSender<Chunk>,
        returned: Receiver<Chunk>,
        dropped: Arc<Counter>,
    ) -> Self {
        Self {
            sample: settings.sample.max(1),
            // The first query is logged: a collector sees a server's traffic at once.
            countdown: 1,
            messages: settings.messages,
            identity,
            chunk: None,
            to_writer,
            returned,
            dropped,
        }
    }

    /// Whether the next query is one of the `--dnstap-sample` to log.
    #[inline]
    pub fn sampled(&mut self) -> bool {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.sample;
            true
        } else {
            false
        }
    }

    /// Logs a sampled exchange: its query, its response, or both, as `--dnstap-messages`
    /// says.
    pub fn log(&mut self, exchange: &Exchange<'_>) {
        let event = |kind, message| Event {
            kind,
            protocol: exchange.protocol,
            client: exchange.client,
            server: exchange.server,
            query_time: exchange.query_time,
            response_time: exchange.response_time,
            message,
            zone: &[],
        };
        if self.messages != Messages::Responses {
            self.frame(&event(Kind::AuthQuery, exchange.query));
        }
        if let (true, Some(response)) = (self.messages != Messages::Queries, exchange.response) {
            self.frame(&event(Kind::AuthResponse, response));
        }
    }

    /// Hands a chunk holding frames to the writer: at a sweep, so that a quiet server's
    /// frames do not wait for a chunk to fill, and as the worker stops.
    pub fn flush(&mut self) {
        send_chunk(&mut self.chunk, &self.to_writer, &self.dropped);
    }

    fn frame(&mut self, event: &Event<'_>) {
        let Self {
            identity,
            chunk,
            to_writer,
            returned,
            dropped,
            ..
        } = self;
        let Identity {
            identity,
            version,
            zone,
        } = &**identity;
        let event = Event { zone, ..*event };
        let needed = DATA_PREFIX + max_len(identity, version, &event);
        if chunk.as_ref().map_or(true, |chunk| chunk.room() < needed) {
            send_chunk(chunk, to_writer, dropped);
            if chunk.is_none() {
                // A chunk is made for its worker and always goes back to it.
                *chunk = returned.try_recv().ok();
            }
        }
        let Some(filling) = chunk.as_mut() else {
            dropped.add(1);
            return;
        };
        let start = filling.len;
        let payload = &mut filling.bytes[start + DATA_PREFIX..];
        let Some(len) = encode(identity, version, &event, payload) else {
            dropped.add(1); // Larger than a chunk: cannot happen with a DNS message.
            return;
        };
        filling.bytes[start..start + DATA_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        filling.len += DATA_PREFIX + len;
        filling.frames += 1;
        if filling.len >= FLUSH_AT {
            send_chunk(chunk, to_writer, dropped);
        }
    }
}

/// Sends the chunk in hand to the writer if it holds frames (an empty one is kept).
fn send_chunk(chunk: &mut Option<Chunk>, to_writer: &SyncSender<Chunk>, dropped: &Counter) {
    if !chunk.as_ref().is_some_and(|chunk| chunk.frames > 0) {
        return;
    }
    let Some(full) = chunk.take() else {
        return;
    };
    // The channel has room for every chunk there is: it is never full. Should the writer be
    // gone, the frames are lost and counted.
    if let Err(TrySendError::Full(lost) | TrySendError::Disconnected(lost)) =
        to_writer.try_send(full)
    {
        dropped.add(u64::from(lost.frames));
    }
}

impl Drop for Tap {
    /// A worker's last frames go to the writer as it stops.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The wall clock, as dnstap's times count it.
#[inline]
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
