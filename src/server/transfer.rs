//! A zone transfer on a thread of its own: the connection a worker handed over, answered
//! with the AXFR or IXFR of the snapshot served when it was asked for (a reload meanwhile
//! changes nothing in it), then closed gracefully.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::snapshot::Snapshot;
use crate::sys::{current_thread, lower_thread_priority, unix_seconds};
use crate::tsig::{sign, Chain, Signing};
use crate::wire::MAX_TCP;
use crate::xfr::inbound::client::DEFAULT_LIMITS;
use crate::xfr::outbound::axfr::axfr;
use crate::xfr::outbound::ixfr::ixfr;
use crate::xfr::outbound::message::{Stream, MAX_MESSAGE};
use crate::xfr::outbound::udp::tsig_error;
use crate::xfr::outbound::{Auth, Gate, IxfrStyle, RequestKind, TransferRequest};
use crate::xfr::pace::{PacedStream, TransferLimits};

use super::shared::Shared;

/// After the last message, how long the client gets to close first (so that our close is
/// not a reset that could destroy what it has not read).
const LINGER: Duration = Duration::from_secs(2);
/// Connections lingering at once. The transfer slot is given back before lingering (so that
/// a client can start its next transfer at once); beyond this many, a connection is closed
/// at once, after taking what the client had sent, so descriptors stay bounded however
/// many clients never close.
const MAX_LINGERING: usize = 64;
/// How often the lingering connections are looked at.
const LINGER_TICK: Duration = Duration::from_millis(20);

/// A transfer waiting for a thread of the pool.
pub(super) struct Job {
    stream: mio::net::TcpStream,
    request: TransferRequest,
    snapshot: Arc<Snapshot>,
}

/// The threads of zone transfers out: one per transfer slot, which send, and one that keeps
/// the connections lingering after. However clients behave (connections that never close,
/// readers that stall), transfers cost these threads and no more.
pub(super) fn spawn_pool(shared: &Arc<Shared>, threads: usize) -> io::Result<TransferQueue> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let (lingering, closing) = mpsc::channel::<TcpStream>();
    std::thread::Builder::new()
        .name("cnamed-linger".into())
        .spawn(move || linger_loop(&closing))?;
    for _ in 0..threads {
        let (queue, shared, lingering) =
            (Arc::clone(&queue), Arc::clone(shared), lingering.clone());
        std::thread::Builder::new()
            .name("cnamed-xfr".into())
            .spawn(move || {
                // Queries first: a transfer gets little of a core the workers keep busy (nice
                // 19), but not nothing, as SCHED_IDLE would give on a box that never idles:
                // secondaries must get their zone before it expires.
                let _ = lower_thread_priority(current_thread());
                loop {
                    let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { return };
                    if let Some(stream) = run(job, &shared) {
                        let _ = lingering.send(stream);
                    }
                }
            })?;
    }
    Ok(jobs)
}

/// Where workers hand transfers to the pool.
pub(super) type TransferQueue = Sender<Job>;

/// Queues the transfer for `request` on the pool. The request holds a transfer slot, so a
/// thread of the pool is free or about to be; the slot is given back once the zone is sent.
/// An IXFR is answered from the history: the differences since the client's serial, the SOA
/// alone when it is current, the whole zone when its serial is not in the history.
pub(super) fn start(
    queue: &TransferQueue,
    stream: mio::net::TcpStream,
    request: TransferRequest,
    snapshot: Arc<Snapshot>,
) {
    let _ = queue.send(Job {
        stream,
        request,
        snapshot,
    });
}

/// Sends one transfer and logs it; returns the connection to linger on, if it got that far.
fn run(job: Job, shared: &Shared) -> Option<TcpStream> {
    let Job {
        stream,
        mut request,
        snapshot,
    } = job;
    let stream = TcpStream::from(stream);
    let started = Instant::now();
    // With its port, so that one secondary's transfers can be told from another's behind
    // the same address (a fleet on one host, NAT).
    let peer = stream
        .peer_addr()
        .map_or_else(|_| request.peer.to_string(), |addr| addr.to_string());
    let kind = request.kind;
    if let (RequestKind::Ixfr { serial }, Some(fleet)) = (kind, &shared.fleet) {
        // A `--notify` target asking for what follows `serial` has `serial`.
        fleet.reported(request.peer, serial, crate::sys::unix_millis());
    }
    let (deltas, style) = match (kind, shared.xfr.as_ref()) {
        (RequestKind::Ixfr { serial }, Some(gate)) => match gate.ixfr_path(serial, &snapshot) {
            Some(deltas) if deltas.is_empty() => (deltas, Some(IxfrStyle::UpToDate)),
            Some(deltas) => (deltas, Some(IxfrStyle::Incremental)),
            None => (Vec::new(), Some(IxfrStyle::Full)),
        },
        _ => (Vec::new(), None),
    };
    let limits = shared.xfr.as_ref().map_or(DEFAULT_LIMITS, Gate::limits);
    let outcome = match style {
        None | Some(IxfrStyle::Full) => send(&stream, &mut request, axfr(&snapshot), limits),
        Some(_) => send(&stream, &mut request, ixfr(&snapshot, &deltas), limits),
    };
    let stats = &request.stats;
    let index = kind.index();
    match &outcome {
        Ok((records, bytes)) => {
            // Timed before counted: a scrape that sees the count sees the time.
            stats.durations[index].observe(started.elapsed());
            stats.completed[index].fetch_add(1, Ordering::Relaxed);
            stats.records[index].fetch_add(*records, Ordering::Relaxed);
            stats.bytes[index].fetch_add(*bytes, Ordering::Relaxed);
            if let Some(style) = style {
                stats.ixfr_styles[style as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(_) => {
            stats.failed[index].fetch_add(1, Ordering::Relaxed);
        }
    }
    let what = match (kind, style) {
        (RequestKind::Ixfr { serial }, Some(style)) => format!(
            "IXFR from {serial} ({})",
            IxfrStyle::NAMES[style as usize].replace('_', " ")
        ),
        _ => "AXFR".to_owned(),
    };
    match &outcome {
        Ok((records, bytes)) => crate::log!(
            Info,
            "{what} to {peer}: serial {}, {records} records, {bytes} bytes, {:.1} ms",
            snapshot.serial,
            started.elapsed().as_secs_f64() * 1e3
        ),
        Err(error) => crate::log!(
            Warning,
            "{what} to {peer} (serial {}) failed: {error}",
            snapshot.serial
        ),
    }
    // The slot is back already (`send` gave it up after the last message); the linger
    // thread keeps the connection.
    match outcome {
        Ok(_) => Some(stream),
        // A NOTAUTH answer was sent: linger so that the client reads it.
        Err(_) if stream.shutdown(Shutdown::Write).is_ok() => Some(stream),
        Err(_) => None,
    }
}

/// Writes every message of the transfer, each with its length prefix and, when the request
/// was signed, its TSIG (every message, chained to the one before), within `limits` (a
/// client reading too slowly loses the transfer); returns the records and bytes sent. A
/// request whose TSIG failed gets one NOTAUTH message instead.
fn send(
    connection: &TcpStream,
    request: &mut TransferRequest,
    mut transfer: impl Stream,
    limits: TransferLimits,
) -> io::Result<(u64, u64)> {
    connection.set_nonblocking(false)?;
    connection.set_nodelay(true)?;
    let mut stream = PacedStream::new(connection, limits);
    // A message fills at most MAX_MESSAGE bytes; its TSIG goes in the room after them.
    let mut frame = vec![0u8; 2 + MAX_TCP];
    if let Auth::Failed { error, .. } = &request.auth {
        let len = tsig_error(request, &mut frame[2..])
            .ok_or_else(|| io::Error::other("no room for the TSIG error"))?;
        frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
        stream.write_all(&frame[..2 + len])?;
        let failure = io::Error::other(format!("TSIG error {error}, answered NOTAUTH"));
        request.release_slot();
        return Err(failure);
    }
    let mut bytes = 0u64;
    let mut chain = match &request.auth {
        Auth::Valid { mac, .. } => Chain::Request(*mac),
        _ => Chain::Unsigned,
    };
    while let Some(mut len) = transfer.next_message(
        request.id,
        request.question(),
        &mut frame[2..2 + MAX_MESSAGE],
    ) {
        if let Auth::Valid { key, key_name, .. } = &request.auth {
            let signing = Signing::new(key, key_name, chain, u64::from(unix_seconds()));
            let (signed, mac) = sign(&mut frame[2..], len, &signing)
                .ok_or_else(|| io::Error::other("no room for the TSIG record"))?;
            len = signed;
            chain = Chain::Prior(mac);
        }
        frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
        stream.write_all(&frame[..2 + len])?;
        bytes += 2 + len as u64;
    }
    request.release_slot();
    connection.shutdown(Shutdown::Write)?;
    Ok((transfer.records(), bytes))
}

/// Keeps the connections whose transfer is sent until their client closes, at most
/// `LINGER` each, so that our close is not a reset that could destroy what the client has
/// not read; reads (and drops) what they send meanwhile. Beyond `MAX_LINGERING`, a new one is
/// closed at once, after taking what its client had sent.
fn linger_loop(closing: &Receiver<TcpStream>) {
    let mut lingering: Vec<(TcpStream, Instant)> = Vec::new();
    let mut sink = [0u8; 512];
    loop {
        let wait = match lingering.is_empty() {
            true => Duration::MAX,
            false => LINGER_TICK,
        };
        match closing.recv_timeout(wait) {
            Ok(stream) => {
                if stream.set_nonblocking(true).is_ok() {
                    if lingering.len() < MAX_LINGERING {
                        lingering.push((stream, Instant::now() + LINGER));
                    } else {
                        while matches!((&stream).read(&mut sink), Ok(n) if n > 0) {}
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        lingering.retain(|(stream, deadline)| loop {
            match (&*stream).read(&mut sink) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return now < *deadline,
                Err(_) => return false,
            }
        });
    }
}
