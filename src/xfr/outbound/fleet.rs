//! The fleet view of a primary: for each `--notify` target, the last serial it was seen
//! serving and when. A target is **live at serial N** when it answers an SOA query for the
//! zone with a serial at or past N (RFC 1982). The NOTIFY thread asks each target for its
//! SOA after every new serial until it has it (`server::notify`); `cnamed status`, the
//! metrics and `cnamed wait` read the view here.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use crate::snapshot::guard::serial_is_newer;

/// Serials remembered with the time they were first served, for the lag in seconds.
const PUBLISHED: usize = 1024;

/// What the primary knows of its targets.
#[derive(Debug)]
pub struct Fleet {
    targets: Vec<SocketAddr>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per target (in `targets`' order): the last serial seen and when (Unix ms).
    seen: Vec<Option<(u32, u64)>>,
    /// Serials served, oldest first, with the Unix ms when each was first served.
    published: VecDeque<(u32, u64)>,
}

/// One target as the view gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetView {
    pub target: SocketAddr,
    /// The last serial it answered, and when (Unix ms); `None` before its first answer.
    pub seen: Option<(u32, u64)>,
    /// Whether it serves the serial asked about, or a newer one.
    pub live: bool,
    /// Serials it is behind (RFC 1982 distance); `None` before its first answer.
    pub lag_serials: Option<u32>,
    /// Since the first serial it lacks was served (0 when live).
    pub lag_seconds: f64,
}

impl Fleet {
    pub fn new(targets: Vec<SocketAddr>) -> Self {
        let state = State {
            seen: vec![None; targets.len()],
            published: VecDeque::new(),
        };
        Self {
            targets,
            state: Mutex::new(state),
        }
    }

    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `serial` is served from `at_ms` on (kept once, the first time).
    pub fn published(&self, serial: u32, at_ms: u64) {
        let mut state = self.state();
        if state.published.iter().any(|&(known, _)| known == serial) {
            return;
        }
        if state.published.len() == PUBLISHED {
            state.published.pop_front();
        }
        state.published.push_back((serial, at_ms));
    }

    /// Records that `target` answered `serial` at `at_ms`. An older serial than one seen
    /// before is recorded too: the target went back (restored from an old dump), and the
    /// view must say so.
    pub fn seen(&self, target: SocketAddr, serial: u32, at_ms: u64) {
        if let Some(index) = self.targets.iter().position(|&known| known == target) {
            self.state().seen[index] = Some((serial, at_ms));
        }
    }

    /// What an IXFR request from `address` says: the client has `serial`. It counts for the
    /// target at that address if exactly one has it (targets on one host, told apart by
    /// port, cannot be told apart by a request from an ephemeral port), and only forward:
    /// a late request must not undo a newer SOA answer.
    pub fn reported(&self, address: IpAddr, serial: u32, at_ms: u64) {
        let mut at = self.targets.iter().enumerate();
        let Some((index, _)) = at.find(|(_, target)| target.ip() == address) else {
            return;
        };
        if at.any(|(_, target)| target.ip() == address) {
            return;
        }
        let mut state = self.state();
        let newer = match state.seen[index] {
            Some((have, _)) => serial_is_newer(serial, have),
            None => true,
        };
        if newer {
            state.seen[index] = Some((serial, at_ms));
        }
    }

    /// Every target against `serial` (usually the one served now), at `now_ms`.
    pub fn view(&self, serial: u32, now_ms: u64) -> Vec<TargetView> {
        let state = self.state();
        self.targets
            .iter()
            .zip(&state.seen)
            .map(|(&target, &seen)| {
                let live = seen.is_some_and(|(have, _)| !serial_is_newer(serial, have));
                let lag_serials = seen.map(|(have, _)| match live {
                    true => 0,
                    false => serial.wrapping_sub(have),
                });
                // The first serial it lacks: the oldest published one newer than its own.
                let behind_since = (!live).then(|| {
                    state
                        .published
                        .iter()
                        .find(|&&(published, _)| match seen {
                            Some((have, _)) => serial_is_newer(published, have),
                            None => true,
                        })
                        .map_or(now_ms, |&(_, at)| at)
                });
                TargetView {
                    target,
                    seen,
                    live,
                    lag_serials,
                    lag_seconds: behind_since
                        .map_or(0.0, |at| now_ms.saturating_sub(at) as f64 / 1e3),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_live_at_a_serial_or_past_it() {
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "[::1]:3".parse().unwrap(),
        );
        let fleet = Fleet::new(vec![a, b, c]);
        fleet.published(10, 1_000);
        fleet.published(11, 5_000);
        fleet.published(11, 9_000);
        fleet.seen(a, 11, 6_000);
        fleet.seen(b, 10, 2_000);
        fleet.seen("127.0.0.1:9".parse().unwrap(), 11, 6_000);
        let view = fleet.view(11, 8_000);
        assert_eq!(view.len(), 3);
        assert!(view[0].live);
        assert_eq!((view[0].lag_serials, view[0].lag_seconds), (Some(0), 0.0));
        // b lacks 11, served since 5 s.
        assert!(!view[1].live);
        assert_eq!((view[1].lag_serials, view[1].lag_seconds), (Some(1), 3.0));
        // c never answered: behind since the first serial known.
        assert!(!view[2].live);
        assert_eq!((view[2].lag_serials, view[2].lag_seconds), (None, 7.0));
        // Live at an older serial; across the wrap of serial arithmetic.
        assert!(fleet.view(10, 8_000)[1].live);
        fleet.seen(b, 3, 8_500);
        fleet.published(u32::MAX, 8_600);
        fleet.published(3, 8_700);
        let view = fleet.view(3, 9_000);
        assert!(view[1].live, "3 is past 4294967295");
        assert_eq!(view[1].lag_serials, Some(0));
    }

    #[test]
    fn an_ixfr_request_reports_the_serial_it_carries() {
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "192.0.2.1:53".parse().unwrap(),
            "192.0.2.2:53".parse().unwrap(),
            "192.0.2.2:5300".parse().unwrap(),
        );
        let fleet = Fleet::new(vec![a, b, c]);
        fleet.published(7, 1_000);
        fleet.reported(a.ip(), 7, 2_000);
        // Two targets at one address: a request cannot say which.
        fleet.reported(b.ip(), 7, 2_000);
        // Nobody's.
        fleet.reported("192.0.2.9".parse().unwrap(), 7, 2_000);
        let view = fleet.view(7, 3_000);
        assert_eq!(view[0].seen, Some((7, 2_000)));
        assert!(view[0].live);
        assert_eq!((view[1].seen, view[2].seen), (None, None));
        // Only forward: an SOA answer of 8, then a late request from 7.
        fleet.seen(a, 8, 4_000);
        fleet.reported(a.ip(), 7, 5_000);
        assert_eq!(fleet.view(8, 6_000)[0].seen, Some((8, 4_000)));
    }
}
