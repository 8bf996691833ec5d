//! The NOTIFY sender (RFC 1996): after each new serial (and once at start), every `--notify`
//! target is told over UDP, again after 1, 2, 4 and 8 s until it acknowledges, then given up
//! on with a log line. Its own thread: reloads only drop a serial in its channel, queries
//! never wait on it. A newer serial replaces a round still retrying.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::sys::{random_bytes, unix_seconds};
use crate::tsig::sign_request;
use crate::wire::Rcode;
use crate::xfr::outbound::{notify, XfrStats};

/// Sends per serial and target, the first included.
const TRIES: u32 = 5;
/// Wait before the first retry; doubled each time.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How often the thread looks at its socket and its clock.
const TICK: Duration = Duration::from_millis(20);

/// One target's NOTIFY waiting for its acknowledgement.
struct Pending {
    target: SocketAddr,
    id: u16,
    serial: u32,
    sent: u32,
    next: Instant,
}

/// Starts the thread for `targets`; each serial sent on the returned channel is announced.
pub(super) fn spawn(
    targets: Vec<SocketAddr>,
    shared: Arc<Shared>,
    stats: Arc<XfrStats>,
) -> io::Result<mpsc::Sender<u32>> {
    let (sender, serials) = mpsc::channel::<u32>();
    let v4 = UdpSocket::bind("0.0.0.0:0")?;
    let v6 = UdpSocket::bind("[::]:0").ok();
    for socket in std::iter::once(&v4).chain(&v6) {
        socket.set_nonblocking(true)?;
    }
    std::thread::Builder::new()
        .name("cnamed-notify".into())
        .spawn(move || {
            let mut rounds: Vec<Pending> = Vec::new();
            loop {
                match serials.recv_timeout(TICK) {
                    Ok(serial) => {
                        rounds.retain(|p| p.serial == serial);
                        for &target in &targets {
                            if !rounds.iter().any(|p| p.target == target) {
                                rounds.push(Pending {
                                    target,
                                    id: random_id(),
                                    serial,
                                    sent: 0,
                                    next: Instant::now(),
                                });
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                for socket in std::iter::once(&v4).chain(&v6) {
                    receive_acks(socket, &mut rounds, &stats);
                }
                let now = Instant::now();
                rounds.retain_mut(|pending| {
                    if pending.next > now {
                        return true;
                    }
                    if pending.sent == TRIES {
                        stats.notifies_failed.fetch_add(1, Ordering::Relaxed);
                        crate::log!(
                            Warning,
                            "NOTIFY of serial {} to {} not acknowledged after {TRIES} tries",
                            pending.serial,
                            pending.target
                        );
                        return false;
                    }
                    let socket = match pending.target {
                        SocketAddr::V4(_) => Some(&v4),
                        SocketAddr::V6(_) => v6.as_ref(),
                    };
                    if let Some(socket) = socket {
                        if send(socket, pending, &shared).is_ok() {
                            stats.notifies_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    pending.next = now + FIRST_RETRY * 2u32.pow(pending.sent);
                    pending.sent += 1;
                    true
                });
            }
        })?;
    Ok(sender)
}

fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // A failure leaves 0: an ID guessed is at worst a spoofed acknowledgement.
    let _ = random_bytes(&mut id);
    u16::from_be_bytes(id)
}

/// Sends the NOTIFY of `pending`, with the SOA served now, signed with the first TSIG key
/// when there are keys.
fn send(socket: &UdpSocket, pending: &Pending, shared: &Shared) -> io::Result<()> {
    let snapshot = shared.snapshot.load();
    let mut out = [0u8; 1024];
    let len = notify::message(
        pending.id,
        &snapshot.zone.apex,
        snapshot.soa_answer(),
        &mut out,
    )
    .ok_or_else(|| io::Error::other("NOTIFY does not fit"))?;
    let keys = shared.tsig_keys.load();
    let len = match keys.as_deref().and_then(|keys| keys.first()) {
        Some(key) => {
            sign_request(&mut out, len, key, u64::from(unix_seconds()))
                .ok_or_else(|| io::Error::other("no room for the TSIG"))?
                .0
        }
        None => len,
    };
    socket.send_to(&out[..len], pending.target).map(drop)
}

/// Takes the acknowledgements waiting on `socket` off `rounds`: an answer from the target
/// with the NOTIFY's ID. An error RCODE ends the round too, logged.
fn receive_acks(socket: &UdpSocket, rounds: &mut Vec<Pending>, stats: &XfrStats) {
    let mut buf = [0u8; 4096];
    while let Ok((len, from)) = socket.recv_from(&mut buf) {
        let response = &buf[..len];
        let Some(at) = rounds
            .iter()
            .position(|p| p.target == from && notify::acknowledgement(response, p.id).is_some())
        else {
            continue;
        };
        let pending = rounds.swap_remove(at);
        match notify::acknowledgement(response, pending.id) {
            Some(Rcode::NOERROR) => {
                stats.notifies_acked.fetch_add(1, Ordering::Relaxed);
            }
            Some(rcode) => {
                stats.notifies_failed.fetch_add(1, Ordering::Relaxed);
                crate::log!(
                    Warning,
                    "NOTIFY of serial {} refused by {} (RCODE {})",
                    pending.serial,
                    from,
                    rcode.0
                );
            }
            None => {}
        }
    }
}
