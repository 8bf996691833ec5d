//! A zone transfer on a thread of its own: the connection a worker handed over, answered
//! with the AXFR or IXFR of the snapshot served when it was asked for (a reload meanwhile
//! changes nothing in it), then closed gracefully.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::snapshot::Snapshot;
use crate::sys::{current_thread, set_thread_idle, unix_seconds};
use crate::tsig::{sign, Chain, Signing};
use crate::wire::MAX_TCP;
use crate::xfr::outbound::axfr::axfr;
use crate::xfr::outbound::ixfr::ixfr;
use crate::xfr::outbound::message::{Stream, MAX_MESSAGE};
use crate::xfr::outbound::udp::tsig_error;
use crate::xfr::outbound::{Auth, IxfrStyle, RequestKind, TransferRequest};

use super::shared::Shared;

/// A client that takes no data for this long loses its transfer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the last message, how long the client gets to close first (so that our close is
/// not a reset that could destroy what it has not read).
const LINGER: Duration = Duration::from_secs(2);

/// Starts the transfer for `request` on a new thread. The request holds a transfer slot,
/// given back once the zone is sent (or the thread ends); if no thread can be had, the
/// connection is closed. An IXFR is answered from `shared`'s history: the differences since
/// the client's serial, the SOA alone when it is current, the whole zone when its serial is
/// not in the history.
pub(super) fn start(
    stream: mio::net::TcpStream,
    request: TransferRequest,
    snapshot: Arc<Snapshot>,
    shared: Arc<Shared>,
) {
    let stream = TcpStream::from(stream);
    let spawned = std::thread::Builder::new()
        .name("cnamed-xfr".into())
        .spawn(move || {
            let mut request = request;
            // Queries first: a transfer gets the CPU the workers leave (SCHED_IDLE).
            let _ = set_thread_idle(current_thread(), true);
            let started = Instant::now();
            // With its port, so that one secondary's transfers can be told from another's
            // behind the same address (a fleet on one host, NAT).
            let peer = stream
                .peer_addr()
                .map_or_else(|_| request.peer.to_string(), |addr| addr.to_string());
            let kind = request.kind;
            let (deltas, style) = match (kind, shared.xfr.as_ref()) {
                (RequestKind::Ixfr { serial }, Some(gate)) => {
                    match gate.ixfr_path(serial, &snapshot) {
                        Some(deltas) if deltas.is_empty() => (deltas, Some(IxfrStyle::UpToDate)),
                        Some(deltas) => (deltas, Some(IxfrStyle::Incremental)),
                        None => (Vec::new(), Some(IxfrStyle::Full)),
                    }
                }
                _ => (Vec::new(), None),
            };
            let outcome = match style {
                None | Some(IxfrStyle::Full) => send(stream, &mut request, axfr(&snapshot)),
                Some(_) => send(stream, &mut request, ixfr(&snapshot, &deltas)),
            };
            let stats = &request.stats;
            let index = kind.index();
            match &outcome {
                Ok((records, bytes)) => {
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
            match outcome {
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
        });
    if let Err(error) = spawned {
        crate::log!(Warning, "zone transfer refused: no thread for it: {error}");
    }
}

/// Writes every message of the transfer, each with its length prefix and, when the request
/// was signed, its TSIG (every message, chained to the one before); returns the records and
/// bytes sent. A request whose TSIG failed gets one NOTAUTH message instead.
fn send(
    mut stream: TcpStream,
    request: &mut TransferRequest,
    mut transfer: impl Stream,
) -> io::Result<(u64, u64)> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    // A message fills at most MAX_MESSAGE bytes; its TSIG goes in the room after them.
    let mut frame = vec![0u8; 2 + MAX_TCP];
    if let Auth::Failed { error, .. } = &request.auth {
        let len = tsig_error(request, &mut frame[2..])
            .ok_or_else(|| io::Error::other("no room for the TSIG error"))?;
        frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
        stream.write_all(&frame[..2 + len])?;
        let failure = io::Error::other(format!("TSIG error {error}, answered NOTAUTH"));
        request.release_slot();
        linger(&stream)?;
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
    linger(&stream)?;
    Ok((transfer.records(), bytes))
}

/// Our side is done; reads (and drops) until the client closes, for at most `LINGER`, so
/// that our close is not a reset.
fn linger(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let mut sink = [0u8; 512];
    let deadline = Instant::now() + LINGER;
    while Instant::now() < deadline {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}
