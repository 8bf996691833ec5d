//! A secondary's SOA timers (RFC 1035 §3.3.13, RFC 1996 §3): a refresh is started REFRESH
//! seconds after the zone was last confirmed current, RETRY seconds after a failed attempt,
//! so a lost NOTIFY costs at most REFRESH; EXPIRE seconds without a confirmation marks the
//! zone expired (see `--on-expire`). The refresh itself is an ordinary reload, asked of the
//! main loop as an event, so it coalesces with NOTIFYs and operators' reloads.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::events::{Event, Reason};
use super::shared::Shared;
use crate::sys;
use crate::xfr::inbound::secondary::SecondaryStats;

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
