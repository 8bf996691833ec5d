//! The NOTIFY sender (RFC 1996): after each new serial (and once at start), every `--notify`
//! target is told over UDP, again after 1, 2, 4 and 8 s until it acknowledges, then given up
//! on with a log line. Its own thread: reloads only drop a serial in its channel, queries
//! never wait on it. A newer serial replaces a round still retrying.
//!
//! The same thread keeps the fleet view ([`Fleet`]): once a target acknowledges (or the
//! NOTIFY is given up on), it asks the target for its SOA, 10 ms later and then with backoff
//! up to 250 ms, until the target serves the new serial; after that, every 30 s, so the view
//! stays current (a target restored from an old dump shows as behind). The cap is low
//! because a slow target (Knot applies an IXFR in seconds at 1M records) should be seen
//! live when it is, and one SOA query four times a second costs it nothing.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::snapshot::guard::serial_is_newer;
use crate::sys::unix_millis;
use crate::sys::{random_bytes, unix_seconds};
use crate::tsig::sign_request;
use crate::wire::Rcode;
use crate::xfr::outbound::fleet::Fleet;
use crate::xfr::outbound::{notify, XfrStats};

/// Sends per serial and target, the first included.
const TRIES: u32 = 5;
/// Wait before the first retry; doubled each time.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How often the thread looks at its socket and its clock.
const TICK: Duration = Duration::from_millis(20);
/// The first SOA query after an acknowledged NOTIFY, and the most time between two while
/// the target is behind.
const FIRST_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(250);
/// Between two SOA queries to a target that is live.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// The SOA queries to one target.
struct Poll {
    target: SocketAddr,
    id: u16,
    /// The serial it should reach.
    wanted: u32,
    /// When to ask next; `None` while its NOTIFY waits for an acknowledgement.
    next: Option<Instant>,
    /// Until the query after next.
    wait: Duration,
}

impl Poll {
    /// Asks from now on: soon, then backing off.
    fn start(&mut self, now: Instant) {
        if self.next.is_none() {
            self.next = Some(now + FIRST_POLL);
            self.wait = FIRST_POLL;
        }
    }
}

/// One target's NOTIFY waiting for its acknowledgement.
struct Pending {
    target: SocketAddr,
    id: u16,
    serial: u32,
    sent: u32,
    next: Instant,
}

/// Starts the thread for the targets of `fleet`; each serial sent on the returned channel
/// is announced, and the fleet view follows the targets.
pub(super) fn spawn(
    fleet: Arc<Fleet>,
    shared: Arc<Shared>,
    stats: Arc<XfrStats>,
) -> io::Result<mpsc::Sender<u32>> {
    let targets = fleet.targets().to_vec();
    let (sender, serials) = mpsc::channel::<u32>();
    let v4 = UdpSocket::bind("0.0.0.0:0")?;
    let v6 = UdpSocket::bind("[::]:0").ok();
    for socket in std::iter::once(&v4).chain(&v6) {
        socket.set_nonblocking(true)?;
    }
    std::thread::Builder::new()
        .name("cnamed-notify".into())
        .spawn(move || {
            // The apex is the zone's for the server's life: reloads change the apps, not the zone.
            let apex = shared.snapshot.load().zone.apex.clone();
            let mut rounds: Vec<Pending> = Vec::new();
            let mut polls: Vec<Poll> = (targets.iter())
                .map(|&target| Poll {
                    target,
                    id: random_id(),
                    wanted: 0,
                    next: None,
                    wait: FIRST_POLL,
                })
                .collect();
            loop {
                match serials.recv_timeout(TICK) {
                    Ok(serial) => {
                        fleet.published(serial, unix_millis());
                        for poll in &mut polls {
                            poll.wanted = serial;
                            poll.next = None;
                        }
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
                    let mut answers = Answers {
                        rounds: &mut rounds,
                        polls: &mut polls,
                        fleet: &fleet,
                        stats: &stats,
                        apex: &apex,
                    };
                    answers.receive(socket);
                }
                let now = Instant::now();
                for poll in &mut polls {
                    if poll.next.is_some_and(|next| next <= now) {
                        let socket = match poll.target {
                            SocketAddr::V4(_) => Some(&v4),
                            SocketAddr::V6(_) => v6.as_ref(),
                        };
                        let mut query = [0u8; 512];
                        if let (Some(socket), Some(len)) =
                            (socket, notify::soa_query(poll.id, &apex, &mut query))
                        {
                            let _ = socket.send_to(&query[..len], poll.target);
                        }
                        poll.next = Some(now + poll.wait);
                        poll.wait = (poll.wait * 2).min(MAX_POLL);
                    }
                }
                rounds.retain_mut(|pending| {
                    if pending.next > now {
                        return true;
                    }
                    if pending.sent == TRIES {
                        // It may have the serial anyway (by its own refresh): ask.
                        if let Some(poll) = polls.iter_mut().find(|p| p.target == pending.target) {
                            poll.start(now);
                        }
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

/// What the thread receives on its sockets, and where it goes.
struct Answers<'a> {
    rounds: &'a mut Vec<Pending>,
    polls: &'a mut Vec<Poll>,
    fleet: &'a Fleet,
    stats: &'a XfrStats,
    apex: &'a [u8],
}

impl Answers<'_> {
    /// Reads every datagram waiting on `socket`: a NOTIFY's acknowledgement ends its round
    /// (an error RCODE too, logged) and starts the SOA queries; an answer to an SOA query
    /// updates the fleet view.
    fn receive(&mut self, socket: &UdpSocket) {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let response = &buf[..len];
            let Some(poll) = self.polls.iter_mut().find(|poll| poll.target == from) else {
                continue;
            };
            if let Some(serial) = notify::soa_answer_serial(response, poll.id, self.apex) {
                self.fleet.seen(from, serial, unix_millis());
                if !serial_is_newer(poll.wanted, serial) {
                    // Live: from now on, a look now and then.
                    poll.next = Some(Instant::now() + IDLE_POLL);
                    poll.wait = FIRST_POLL;
                }
                continue;
            }
            let Some(at) = (self.rounds.iter()).position(|p| {
                p.target == from && notify::acknowledgement(response, p.id).is_some()
            }) else {
                continue;
            };
            let pending = self.rounds.swap_remove(at);
            poll.start(Instant::now());
            match notify::acknowledgement(response, pending.id) {
                Some(Rcode::NOERROR) => {
                    self.stats.notifies_acked.fetch_add(1, Ordering::Relaxed);
                }
                Some(rcode) => {
                    self.stats.notifies_failed.fetch_add(1, Ordering::Relaxed);
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
}
