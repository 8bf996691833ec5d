//! The client side of zone transfers (cnamed as a secondary): asks a primary for the zone
//! over TCP, by AXFR or by IXFR from the serial served, signed with TSIG when a key is
//! given, checks every response's signature and the zone's shape (`reader`), and returns
//! what came: the whole mapping, the changes, or word that nothing is newer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use super::error::TransferError;
use super::reader::{Received, TransferReader, Transferred};
use super::resolve::{resolve, Resolved};
use crate::progress::Progress;
use crate::snapshot::{Snapshot, Zone};
use crate::sys::{random_bytes, unix_seconds};
use crate::tsig::{self, sign_request, ChainError, Key, ResponseChain};
use crate::wire::{flags, Class, Rtype, HEADER_LEN, MAX_TCP};
use crate::xfr::pace::{PacedStream, TransferLimits};
use crate::xfr::{Timers, TransferType};

/// How long a transfer waits on a primary for each read or write.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);

/// The read buffer of a transfer in.
const READ_BUFFER: usize = 1 << 20;

/// The limits of a transfer in by default: `--max-transfer-time-in` 600 s,
/// `--min-transfer-rate` 1024 bytes/s, and [`TRANSFER_TIMEOUT`] a read.
pub const DEFAULT_LIMITS: TransferLimits = TransferLimits {
    max_time: Duration::from_secs(600),
    min_rate: 1024,
    io_timeout: TRANSFER_TIMEOUT,
};

/// What to ask a primary for.
#[derive(Clone, Copy)]
pub enum Ask<'a> {
    Axfr,
    /// The changes since this snapshot's serial (RFC 1995); its SOA goes in the request.
    Ixfr(&'a Snapshot),
}

/// A transfer's answer and what it cost on the wire.
#[derive(Debug)]
pub struct Fetched {
    pub received: Received,
    /// Bytes of the response messages, without the TCP length prefixes.
    pub bytes: u64,
    pub messages: u64,
    /// The primary's SOA REFRESH, RETRY and EXPIRE.
    pub timers: Option<Timers>,
}

/// Why a transfer failed, and whether the primary itself said no (then an IXFR may be
/// asked again as AXFR) or could not be talked to.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    /// The primary answered, with an error RCODE or a zone we could not use.
    pub answered: bool,
}

/// Fetches the zone at `zone`'s apex from `primary`, within `limits` (a deadline for the
/// whole transfer, a minimum rate, a timeout per read or write). The error says what went
/// wrong: connection, time, RCODE, TSIG, or the first record not of cnamed's shape.
pub fn fetch(
    primary: SocketAddr,
    zone: &Zone,
    key: Option<&Key>,
    limits: TransferLimits,
    ask: Ask<'_>,
) -> Result<Fetched, FetchError> {
    let unreachable = |message: String| FetchError {
        message,
        answered: false,
    };
    let refused = |message: String| FetchError {
        message: format!("{primary}: {message}"),
        answered: true,
    };
    let mut id = [0u8; 2];
    random_bytes(&mut id).map_err(|error| unreachable(format!("no random ID: {error}")))?;
    let id = u16::from_be_bytes(id);
    let mut query = vec![0u8; 2 + 512];
    let body = &mut query[2..];
    body[..2].copy_from_slice(&id.to_be_bytes());
    body[4..6].copy_from_slice(&1u16.to_be_bytes());
    let qtype = match ask {
        Ask::Axfr => Rtype::AXFR,
        Ask::Ixfr(_) => Rtype::IXFR,
    };
    let mut len = HEADER_LEN;
    let mut put = |part: &[u8]| {
        body[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    };
    put(&zone.apex);
    put(&qtype.0.to_be_bytes());
    put(&Class::IN.0.to_be_bytes());
    if let Ask::Ixfr(snapshot) = ask {
        // The authority section holds our SOA (RFC 1995 §3), its owner the question's name.
        put(&[0xC0, HEADER_LEN as u8]);
        put(snapshot.soa_answer());
        body[8..10].copy_from_slice(&1u16.to_be_bytes());
    }
    let mut chain = None;
    if let Some(key) = key {
        let (signed, mac) = sign_request(body, len, key, u64::from(unix_seconds()))
            .ok_or_else(|| unreachable("no room for the TSIG".into()))?;
        len = signed;
        chain = Some(ResponseChain::new(key, mac));
    }
    query[..2].copy_from_slice(&(len as u16).to_be_bytes());
    query.truncate(2 + len);

    let failed = |what: &str, error: io::Error| unreachable(format!("{primary}: {what}: {error}"));
    let connected = TcpStream::connect_timeout(&primary, limits.io_timeout)
        .map_err(|e| failed("connect", e))?;
    let mut stream = PacedStream::new(&connected, limits);
    stream.write_all(&query).map_err(|e| failed("send", e))?;
    // A transfer past progress::QUIET says how far it has come (the size is not known
    // beforehand): on a terminal for `cnamed fetch`, in the log for a server's.
    let kind = match ask {
        Ask::Axfr => "AXFR",
        Ask::Ixfr(_) => "IXFR",
    };
    let progress = Progress::start(format!("{kind} of {} from {primary}", zone.apex_text), 0);
    // Read in large gulps: a 64 KB message comes in several pieces, each a system call (and
    // a timeout set) without the buffer.
    let mut stream = io::BufReader::with_capacity(READ_BUFFER, progress.count(stream));
    let mut reader = match ask {
        Ask::Axfr => TransferReader::axfr(zone),
        // Twice the zone's CNAMEs (every app moved: deleted and added), and some room for
        // a small zone growing.
        Ask::Ixfr(snapshot) => TransferReader::ixfr(zone, snapshot.serial).map(|reader| {
            let records = snapshot.app_count() * zone.services.len();
            reader.with_max_changes(2 * records + 100_000)
        }),
    }
    .map_err(|error| unreachable(error.0))?;
    let mut message = vec![0u8; MAX_TCP];
    let (mut bytes, mut messages) = (0u64, 0u64);
    loop {
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .map_err(|e| failed("read", e))?;
        let len = usize::from(u16::from_be_bytes(prefix));
        let message = &mut message[..len];
        stream.read_exact(message).map_err(|e| failed("read", e))?;
        bytes += len as u64;
        messages += 1;
        if message.get(..2) != Some(&id.to_be_bytes()[..]) {
            return Err(unreachable(format!("{primary}: a message with another ID")));
        }
        let rcode = message
            .get(3)
            .map_or(0, |&low| u16::from(low) & flags::RCODE_MASK);
        if rcode != 0 {
            let tsig_error = tsig::find(message).ok().flatten().map(|tsig| tsig.error);
            return Err(refused(match tsig_error {
                Some(error) if error != 0 => {
                    format!("TSIG: {}", describe(ChainError::Error(error)))
                }
                _ => format!("the primary answered {qtype:?} with RCODE {rcode}"),
            }));
        }
        let signed = match &mut chain {
            Some(chain) => chain
                .verify(message, u64::from(unix_seconds()))
                .map_err(|error| unreachable(format!("{primary}: TSIG: {}", describe(error))))?,
            None => true,
        };
        if reader
            .read_message(message)
            .map_err(|error| refused(error.0))?
        {
            if !signed {
                return Err(unreachable(format!(
                    "{primary}: TSIG: the last message is not signed"
                )));
            }
            break;
        }
    }
    let timers = reader.timers();
    let received = reader.finish().map_err(|error| refused(error.0))?;
    Ok(Fetched {
        received,
        bytes,
        messages,
        timers,
    })
}

/// Fetches the whole zone from `primary` by AXFR.
pub fn fetch_axfr(
    primary: SocketAddr,
    zone: &Zone,
    key: Option<&Key>,
    limits: TransferLimits,
) -> Result<Transferred, TransferError> {
    match fetch(primary, zone, key, limits, Ask::Axfr) {
        Ok(Fetched {
            received: Received::Full(zone),
            ..
        }) => Ok(zone),
        Ok(_) => Err(TransferError(vec![format!(
            "{primary}: an AXFR answered as IXFR"
        )])),
        Err(error) => Err(TransferError(vec![error.message])),
    }
}

fn describe(error: ChainError) -> String {
    match error {
        ChainError::Unsigned => "a message is not signed".into(),
        ChainError::Malformed => "an unreadable TSIG record".into(),
        ChainError::WrongKey => "signed with another key".into(),
        ChainError::BadMac => "a wrong MAC".into(),
        ChainError::BadTime => "signed out of the time window".into(),
        ChainError::Error(16) => "the primary answered BADSIG".into(),
        ChainError::Error(17) => "the primary answered BADKEY".into(),
        ChainError::Error(18) => "the primary answered BADTIME".into(),
        ChainError::Error(code) => format!("the primary answered TSIG error {code}"),
    }
}

/// A whole zone transferred at start: the snapshot, and the transfer it came by.
#[derive(Debug)]
pub struct Initial {
    pub snapshot: Snapshot,
    pub transfer: InitialTransfer,
}

/// A secondary's start-up AXFR: from whom, and what it cost.
#[derive(Clone, Copy, Debug)]
pub struct InitialTransfer {
    pub primary: SocketAddr,
    pub bytes: u64,
    pub timers: Option<Timers>,
}

/// The zone from the first of `primaries` that gives it by AXFR within `limits`, signed
/// with `key`; a primary that fails or runs past the limits leaves it to the next.
pub fn transfer_zone(
    primaries: &[SocketAddr],
    zone: &Zone,
    key: Option<&Key>,
    limits: TransferLimits,
) -> Result<Initial, TransferError> {
    let mut errors = Vec::new();
    for &primary in primaries {
        match fetch(primary, zone, key, limits, Ask::Axfr) {
            Ok(Fetched {
                received: Received::Full(transferred),
                timers,
                bytes,
                ..
            }) => {
                let snapshot = built_zone(transferred, timers);
                let transfer = InitialTransfer {
                    primary,
                    bytes,
                    timers,
                };
                return Ok(Initial { snapshot, transfer });
            }
            Ok(_) => errors.push(format!("{primary}: an AXFR answered as IXFR")),
            Err(error) => errors.push(error.message),
        }
        warn_if_more(primaries, primary, &errors);
    }
    Err(TransferError(errors))
}

/// Says why `primary` gave nothing when another is asked next (the last one's error is the
/// caller's to report).
fn warn_if_more(primaries: &[SocketAddr], primary: SocketAddr, errors: &[String]) {
    if let (Some(error), Some(&last)) = (errors.last(), primaries.last()) {
        if last != primary {
            crate::log!(Warning, "{error}; asking the next primary");
        }
    }
}

/// The snapshot of a whole zone transferred, with the primary's SOA timers, which a
/// secondary serves as they are.
fn built_zone(transferred: Transferred, timers: Option<Timers>) -> Snapshot {
    with_timers(*transferred.snapshot, timers)
}

/// `snapshot` with the primary's SOA timers.
fn with_timers(snapshot: Snapshot, timers: Option<Timers>) -> Snapshot {
    match timers {
        Some(t) => snapshot.with_soa_timers([t.refresh, t.retry, t.expire]),
        None => snapshot,
    }
}

/// What a refresh from the primaries found.
#[derive(Debug)]
pub enum Refreshed {
    /// The primary has nothing newer than the snapshot served.
    UpToDate,
    /// A new snapshot: built from a whole zone, or the one served with the changes applied.
    Changed {
        snapshot: Box<Snapshot>,
        /// The apps that changed, when known without comparing the snapshots (IXFR).
        changes: Option<Resolved>,
    },
}

/// A refresh: what it found, from whom, how, and what it cost.
#[derive(Debug)]
pub struct Refresh {
    pub refreshed: Refreshed,
    pub primary: SocketAddr,
    pub via: TransferType,
    /// The primary's serial.
    pub serial: u32,
    pub bytes: u64,
    pub timers: Option<Timers>,
    /// Time on the wire (request to last message) and building the snapshot: applying the
    /// difference to a copy, or building from the whole zone.
    pub fetch_time: Duration,
    pub build_time: Duration,
}

/// Brings `live` up to date from the first of `primaries` that answers: IXFR from its
/// serial, applied to a copy of it; AXFR from the same primary when the IXFR is refused,
/// answered with an error, or does not apply. Each transfer keeps to `limits`.
pub fn refresh(
    primaries: &[SocketAddr],
    key: Option<&Key>,
    live: &Snapshot,
    limits: TransferLimits,
) -> Result<Refresh, TransferError> {
    let zone = &live.zone;
    let mut errors = Vec::new();
    for &primary in primaries {
        match incremental(primary, key, live, limits) {
            Ok(refresh) => return Ok(refresh),
            Err(error) if !error.answered => {
                errors.push(error.message);
                warn_if_more(primaries, primary, &errors);
                continue;
            }
            Err(error) => {
                crate::log!(Info, "IXFR: {}; asking AXFR", error.message);
            }
        }
        let started = Instant::now();
        match fetch(primary, zone, key, limits, Ask::Axfr) {
            Ok(Fetched {
                received: Received::Full(transferred),
                bytes,
                timers,
                ..
            }) => {
                // The tables are built as the records arrive: the time on the wire is the
                // build's too.
                let fetch_time = started.elapsed();
                let build_time = Duration::ZERO;
                let serial = transferred.serial;
                let snapshot = built_zone(transferred, timers);
                // The guard rails compare it with the live one: the same serial and content
                // is "unchanged".
                let refreshed = Refreshed::Changed {
                    snapshot: Box::new(snapshot),
                    changes: None,
                };
                return Ok(Refresh {
                    refreshed,
                    primary,
                    via: TransferType::Axfr,
                    serial,
                    bytes,
                    timers,
                    fetch_time,
                    build_time,
                });
            }
            Ok(_) => errors.push(format!("{primary}: an AXFR answered as IXFR")),
            Err(error) => errors.push(error.message),
        }
        warn_if_more(primaries, primary, &errors);
    }
    Err(TransferError(errors))
}

/// IXFR from `primary`: nothing newer, the changes applied to a copy of `live`, or a whole
/// zone when the primary answers AXFR-style.
fn incremental(
    primary: SocketAddr,
    key: Option<&Key>,
    live: &Snapshot,
    limits: TransferLimits,
) -> Result<Refresh, FetchError> {
    let zone = &live.zone;
    let refused = |message: String| FetchError {
        message: format!("{primary}: {message}"),
        answered: true,
    };
    let started = Instant::now();
    let fetched = fetch(primary, zone, key, limits, Ask::Ixfr(live))?;
    let fetch_time = started.elapsed();
    let built = Instant::now();
    let (refreshed, serial) = match fetched.received {
        Received::UpToDate(serial) => (Refreshed::UpToDate, serial),
        Received::Full(transferred) => {
            let serial = transferred.serial;
            let snapshot = Box::new(built_zone(transferred, fetched.timers));
            let changes = None;
            (Refreshed::Changed { snapshot, changes }, serial)
        }
        Received::Incremental { serial, changes } => {
            let resolved = resolve(live, &changes).map_err(|error| refused(error.0))?;
            let snapshot = live
                .with_changes(
                    serial,
                    resolved
                        .changes
                        .iter()
                        .map(|(app, cluster)| (&**app, cluster.as_deref())),
                )
                .map_err(|error| refused(error.0))?;
            let changes = Some(resolved);
            let snapshot = Box::new(with_timers(snapshot, fetched.timers));
            (Refreshed::Changed { snapshot, changes }, serial)
        }
    };
    Ok(Refresh {
        refreshed,
        primary,
        via: TransferType::Ixfr,
        serial,
        bytes: fetched.bytes,
        timers: fetched.timers,
        fetch_time,
        build_time: built.elapsed(),
    })
}
