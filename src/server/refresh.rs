//! A secondary's SOA timers (RFC 1035 §3.3.13, RFC 1996 §3): a refresh is started REFRESH
//! seconds after the zone was last confirmed current, RETRY seconds after a failed attempt,
//! so a lost NOTIFY costs at most REFRESH; EXPIRE seconds without a confirmation marks the
//! zone expired (see `--on-expire`). The refresh itself is an ordinary reload, asked of the
//! main loop as an event, so it coalesces with NOTIFYs and operators' reloads.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::events::{Event, Reason};
use super::reloaded::{ReloadError, Reloaded};
use super::shared::Shared;
use crate::sys;
use crate::xfr::inbound::secondary::{LastTransfer, RefreshOutcome, SecondaryStats};
use crate::xfr::{Timers, TransferType};

/// How often the timers are looked at.
const TICK: Duration = Duration::from_millis(250);
/// A refresh asked for but never recorded (a reload stuck on a dead primary's 30 s
/// timeouts, several in turn) is asked again after this long.
const ASK_AGAIN: Duration = Duration::from_secs(300);

pub(super) fn spawn(shared: Arc<Shared>, secondary: Arc<SecondaryStats>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cnamed-refresh".into())
        .spawn(move || run(&shared, &secondary))?;
    Ok(())
}

fn run(shared: &Shared, secondary: &SecondaryStats) {
    // When this thread last asked for a refresh.
    let mut asked_ms = 0u64;
    while !shared.shutdown.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        let now = sys::unix_millis();
        secondary.check_expiry(now);
        let recorded_since = secondary.last_attempt_ms.load(Ordering::Relaxed) >= asked_ms;
        let stuck = now.saturating_sub(asked_ms) > ASK_AGAIN.as_millis() as u64;
        if now >= secondary.next_refresh_ms() && (recorded_since || stuck) {
            crate::log!(Info, "SOA timer: refreshing the zone from the primaries");
            asked_ms = now;
            shared.events.send(Event::Reload(Reason::RefreshTimer));
        }
    }
}

/// Where a secondary's load came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct TransferInfo {
    pub(super) primary: SocketAddr,
    pub(super) via: TransferType,
    pub(super) serial: u32,
    pub(super) bytes: u64,
    pub(super) timers: Option<Timers>,
    pub(super) fetch_time: Duration,
    pub(super) build_time: Duration,
}

/// Records a secondary's refresh: from whom, how, and how it ended.
pub(super) fn record(
    secondary: &SecondaryStats,
    transfer: Option<TransferInfo>,
    outcome: &Result<Reloaded, ReloadError>,
) {
    let (outcome, error) = match outcome {
        Ok(reloaded) if reloaded.unchanged() => (RefreshOutcome::UpToDate, None),
        Ok(_) => (RefreshOutcome::Changed, None),
        Err(error) => (RefreshOutcome::Failed, Some(error.to_string())),
    };
    // A failure is logged once, by the main loop, as every reload's is.
    match (&error, transfer) {
        (None, Some(t)) if outcome == RefreshOutcome::Changed => crate::log!(
            Info,
            "{} from {}: serial {}, {} bytes in {:.1} ms, snapshot ready in {:.1} ms",
            TransferType::NAMES[t.via as usize],
            t.primary,
            t.serial,
            t.bytes,
            t.fetch_time.as_secs_f64() * 1e3,
            t.build_time.as_secs_f64() * 1e3
        ),
        _ => {}
    }
    if let Some(t) = transfer.filter(|_| outcome != RefreshOutcome::Failed) {
        secondary.transfer_seconds[t.via as usize].observe(t.fetch_time);
    }
    let last = LastTransfer {
        primary: transfer.map(|t| t.primary),
        via: transfer.map(|t| t.via),
        outcome,
        error,
        bytes: transfer.map_or(0, |t| t.bytes),
        at_ms: sys::unix_millis(),
    };
    secondary.record(
        last,
        transfer.map(|t| t.serial),
        transfer.and_then(|t| t.timers),
    );
}
