//! A zone transfer on a thread of its own: the connection a worker handed over, answered
//! with the AXFR of the snapshot served when it was asked for (a reload meanwhile changes
//! nothing in it), then closed gracefully.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::snapshot::Snapshot;
use crate::xfr::axfr::{axfr, MAX_MESSAGE};
use crate::xfr::Request;

/// A client that takes no data for this long loses its transfer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the last message, how long the client gets to close first (so that our close is
/// not a reset that could destroy what it has not read).
const LINGER: Duration = Duration::from_secs(2);

/// Starts the transfer for `request` on a new thread. The request holds a transfer slot,
/// given back when the thread ends; if no thread can be had, the connection is closed.
pub(super) fn start(stream: mio::net::TcpStream, request: Request, snapshot: Arc<Snapshot>) {
    let stream = TcpStream::from(stream);
    let spawned = std::thread::Builder::new()
        .name("cnamed-axfr".into())
        .spawn(move || {
            let started = Instant::now();
            let peer = request.peer;
            let outcome = send_axfr(stream, &request, &snapshot);
            let stats = &request.stats;
            match &outcome {
                Ok((records, bytes)) => {
                    stats.completed.fetch_add(1, Ordering::Relaxed);
                    stats.records.fetch_add(*records, Ordering::Relaxed);
                    stats.bytes.fetch_add(*bytes, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            match outcome {
                Ok((records, bytes)) => crate::log!(
                    Info,
                    "AXFR to {peer}: serial {}, {records} records, {bytes} bytes, {:.1} ms",
                    snapshot.serial,
                    started.elapsed().as_secs_f64() * 1e3
                ),
                Err(error) => crate::log!(
                    Warning,
                    "AXFR to {peer} (serial {}) failed: {error}",
                    snapshot.serial
                ),
            }
        });
    if let Err(error) = spawned {
        crate::log!(Warning, "AXFR refused: no thread for it: {error}");
    }
}

/// Writes every message of the transfer, each with its length prefix; returns the records
/// and bytes sent.
fn send_axfr(
    mut stream: TcpStream,
    request: &Request,
    snapshot: &Snapshot,
) -> io::Result<(u64, u64)> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut transfer = axfr(snapshot);
    let mut frame = vec![0u8; 2 + MAX_MESSAGE];
    let mut bytes = 0u64;
    while let Some(len) = transfer.next_message(request.id, request.question(), &mut frame[2..]) {
        frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
        stream.write_all(&frame[..2 + len])?;
        bytes += 2 + len as u64;
    }
    // Our side is done; read (and drop) until the client closes, for at most LINGER.
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let mut sink = [0u8; 512];
    let deadline = Instant::now() + LINGER;
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok((transfer.records(), bytes))
}
