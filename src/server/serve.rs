//! Start-up of the whole server: the first snapshot (a dump, the last good copy, or a
//! secondary's AXFR), the sockets, the workers, the metrics and control endpoints, then the
//! main loop until a stop.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::{self, Health};
use super::main_loop;
use super::status::StatusBoard;
use super::systemd::Notifier;
use super::{control, Server, TcpLimits};
use crate::config::Config;
use crate::cookie::Secrets;
use crate::journal::{replay, Journal};
use crate::snapshot::{Snapshot, Zone};
use crate::sys;
pub use crate::xfr::inbound::client::InitialTransfer;
use crate::xfr::inbound::secondary::{LastTransfer, RefreshOutcome};
use crate::xfr::TransferType;

/// Descriptors a worker needs besides its TCP connections: its sockets, listeners, epoll and
/// waker, with room to spare.
const FDS_PER_WORKER: u64 = 16;

/// Warns at start when the open-file limit cannot hold every worker's TCP connections: past
/// it, accepts fail (counted by `cnamed_tcp_accept_errors_total`).
fn check_fd_limit(limit: io::Result<u64>, config: &Config) {
    let workers = config.threads.max(1) as u64;
    let needed = workers * (config.tcp_max_connections as u64 + FDS_PER_WORKER);
    match limit {
        Ok(limit) if limit >= needed => {}
        Ok(limit) => crate::log!(
            Warning,
            "open-file limit {limit} is below the {needed} that {workers} workers with --tcp-max-connections {} need: TCP accepts will fail past it (raise LimitNOFILE)",
            config.tcp_max_connections
        ),
        Err(error) => crate::log!(Warning, "cannot read or raise the open-file limit: {error}"),
    }
}

/// `cnamed serve`: starts the metrics endpoint (its probes say "starting"), loads the first
/// snapshot with `load`, binds, starts the workers, tells systemd, then reloads on SIGHUP and
/// control requests until SIGTERM or SIGINT stops it.
/// The first snapshot, how long it took, and where it came from: the transfer it came by, if
/// it did, or the last good copy instead of the dump.
pub struct FirstLoad {
    pub snapshot: Snapshot,
    pub elapsed: Duration,
    pub transfer: Option<InitialTransfer>,
    pub from_last_good: bool,
}

pub fn serve(
    config: &Config,
    zone: Zone,
    secrets: Secrets,
    load: impl FnOnce() -> io::Result<FirstLoad>,
) -> io::Result<()> {
    main_loop::block()?;
    let health = Arc::new(Health::default());
    let metrics_addr = match config.metrics {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr).map_err(|error| {
                io::Error::new(error.kind(), format!("cannot bind metrics {addr}: {error}"))
            })?;
            let bound = listener.local_addr()?;
            http::spawn(listener, Arc::clone(&health))?;
            Some(bound)
        }
        None => None,
    };
    let FirstLoad {
        snapshot,
        elapsed: load_time,
        transfer,
        from_last_good,
    } = load()?;
    match transfer {
        Some(transfer) => crate::log!(
            Info,
            "AXFR from {}: serial {}, {} apps, {} bytes in {:.1} ms",
            transfer.primary,
            snapshot.serial,
            snapshot.app_count(),
            transfer.bytes,
            load_time.as_secs_f64() * 1e3
        ),
        None => crate::log!(
            Info,
            "loaded {}: {} apps in {:.1} ms",
            match (&config.last_good, from_last_good) {
                (Some(last_good), true) => last_good,
                _ => &config.dump,
            }
            .display(),
            snapshot.app_count(),
            load_time.as_secs_f64() * 1e3
        ),
    }
    let transferred = transfer.is_some();
    let (snapshot, journal) = match &config.journal {
        Some(path) => {
            let snapshot = newer_checkpoint(path, snapshot, &zone, config.max_dump_size)?;
            let secondary = !config.primary.is_empty();
            let (snapshot, journal) = open_journal(path, snapshot, secondary)?;
            (snapshot, Some(journal))
        }
        None => (snapshot, None),
    };
    let (apps, clusters, serial) = (
        snapshot.app_count(),
        snapshot.cluster_count(),
        snapshot.serial,
    );
    let limits = TcpLimits {
        idle_timeout: config.tcp_idle_timeout,
        io_timeout: config.tcp_io_timeout,
        max_connections: config.tcp_max_connections,
    };
    // Soft: without it, fewer TCP connections fit, and accept failures say so.
    check_fd_limit(sys::raise_fd_limit(), config);
    let mut server = Server::bind(config, zone, snapshot, secrets, limits)?;
    if let Some(journal) = journal {
        server = server.with_journal(journal);
    }
    server.set_load_time(load_time);
    server
        .stats
        .last_good_serving
        .set(u64::from(from_last_good));
    if let (Some(transfer), Some(secondary)) = (transfer, &server.secondary) {
        secondary.record(
            LastTransfer {
                primary: Some(transfer.primary),
                via: Some(TransferType::Axfr),
                outcome: RefreshOutcome::Initial,
                error: None,
                bytes: transfer.bytes,
                at_ms: sys::unix_millis(),
            },
            Some(serial),
            transfer.timers,
        );
    }
    // Removed at exit, when this is dropped.
    let control_socket = match &config.control {
        Some(path) => Some(control::bind(path)?),
        None => None,
    };
    let local_addrs = server.local_addrs().to_vec();
    let addrs: Vec<String> = local_addrs.iter().map(ToString::to_string).collect();
    let running = server.start()?;
    if transferred {
        // Written by the dump writer, off the way to serving (at 10M string IDs the write
        // was a third of a cold start).
        running.write_dump();
    }
    let notifier = Notifier::from_env();
    let clusters = crate::log::count(clusters, "cluster");
    crate::log!(
        Info,
        "serving {} with {apps} apps, {clusters}, serial {serial} on {} (udp, tcp), {} workers",
        config.zone,
        addrs.join(" "),
        config.threads
    );
    health.serving(running.metrics());
    if let Some(addr) = metrics_addr {
        crate::log!(Info, "metrics on http://{addr}/metrics");
    }
    let mut board = StatusBoard::new(
        Arc::clone(&running.reloader.shared),
        Arc::clone(&running.metrics.stats),
        config.zone.clone(),
        config.dump.clone(),
        local_addrs,
        config.threads,
        metrics_addr,
    );
    board.journal = config.journal.clone();
    board.fleet = running.metrics.fleet.clone();
    let board = Arc::new(board);
    let control_file = match control_socket {
        Some((listener, file)) => {
            let events = running.reloader.shared.events.clone();
            let wait = control::wait_deadline(config.primary.len(), config.max_transfer_time_in);
            control::spawn(listener, events, Arc::clone(&board), wait)?;
            crate::log!(Info, "control socket {}", file.path().display());
            Some(file)
        }
        None => None,
    };
    notifier.ready(&format!("serving {apps} apps, serial {serial}"));
    let control = main_loop::Control {
        health: &health,
        notifier: &notifier,
        dump: &config.dump,
        board,
    };
    let stopped = main_loop::handle_until_stop(running, control);
    drop(control_file);
    stopped
}

/// The newer of `snapshot` (the dump) and the journal's checkpoint, if it has one: what the
/// journal is replayed on. A checkpoint that does not load stops the start (the records it
/// holds are no longer in the journal).
fn newer_checkpoint(
    journal: &Path,
    snapshot: Snapshot,
    zone: &Zone,
    max_size: u64,
) -> io::Result<Snapshot> {
    let path = crate::journal::checkpoint_path(journal);
    if !path.exists() {
        return Ok(snapshot);
    }
    let checkpoint = Snapshot::load(&path, zone, max_size).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("journal checkpoint {}: {error}", path.display()),
        )
    })?;
    if !crate::snapshot::guard::serial_is_newer(checkpoint.serial, snapshot.serial) {
        return Ok(snapshot);
    }
    crate::log!(
        Info,
        "journal checkpoint {}: serial {}, {} apps, newer than the dump (serial {}): starting from it",
        path.display(),
        checkpoint.serial,
        checkpoint.app_count(),
        snapshot.serial
    );
    Ok(checkpoint)
}

/// Opens the journal at `path` and replays on `snapshot` the changes it holds after the
/// snapshot's serial (RFC 1982), as one change to the serial of the last: a start serves
/// every acknowledged UPDATE. A record that does not apply, or a journal that starts after
/// the dump (changes in neither), stops a primary's start: a journal that does not belong to
/// this dump must not be half applied. A `secondary`'s journal only spares it transfers (its
/// primaries have every change): one that does not follow the dump is emptied, with a
/// warning, and the primaries bring the zone up to date. A dump newer than every record
/// supersedes them: the journal is emptied.
fn open_journal(
    path: &Path,
    snapshot: Snapshot,
    secondary: bool,
) -> io::Result<(Snapshot, Journal)> {
    let started = Instant::now();
    let failed =
        |kind, why: String| io::Error::new(kind, format!("journal {}: {why}", path.display()));
    let mut opened =
        Journal::open(path).map_err(|error| failed(error.kind(), error.to_string()))?;
    if opened.cut > 0 {
        crate::log!(
            Warning,
            "journal {}: {} bytes after the last whole record cut (a write torn by a crash)",
            path.display(),
            opened.cut
        );
    }
    let records = opened.entries.len();
    let not_following = |mut journal: Journal, snapshot: Snapshot, why: String| {
        if !secondary {
            return Err(failed(io::ErrorKind::InvalidData, why));
        }
        journal
            .reset()
            .map_err(|error| failed(error.kind(), format!("cannot empty it: {error}")))?;
        crate::log!(
            Warning,
            "journal {}: {why}; emptied, the primaries bring the zone up to date",
            path.display()
        );
        Ok((snapshot, journal))
    };
    let after = match replay::after(&opened.entries, snapshot.serial) {
        Ok(after) => after,
        Err(gap) => {
            let why = format!(
                "{gap}; start from a dump of serial {} or later, or move the journal away",
                gap.journal_from
            );
            return not_following(opened.journal, snapshot, why);
        }
    };
    let Some(last) = after.last().map(|entry| entry.serial) else {
        let superseded =
            opened.entries.last().map(|entry| entry.serial) != Some(snapshot.serial) && records > 0;
        if superseded {
            opened
                .journal
                .reset()
                .map_err(|error| failed(error.kind(), format!("cannot empty it: {error}")))?;
        }
        crate::log!(
            Info,
            "journal {}: {records} records, none after serial {}{}",
            path.display(),
            snapshot.serial,
            if superseded {
                ": the dump supersedes them, journal emptied"
            } else {
                ""
            }
        );
        return Ok((snapshot, opened.journal));
    };
    let (replayed, changes) = match replay::replay(&snapshot, after, last) {
        Ok(replayed) => replayed,
        Err(error) => {
            let why = format!("cannot replay on serial {}: {error}", snapshot.serial);
            return not_following(opened.journal, snapshot, why);
        }
    };
    crate::log!(
        Info,
        "journal {}: {records} records, {} replayed from serial {} to {last} in {:.1} ms",
        path.display(),
        crate::log::count(changes, "app change"),
        snapshot.serial,
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok((replayed, opened.journal))
}
