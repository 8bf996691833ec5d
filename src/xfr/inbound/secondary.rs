//! What a secondary (`serve --primary`) knows about its primaries: the last transfer, the
//! SOA timers the primary set, when the zone was last confirmed current, and whether it has
//! expired (RFC 1035 §3.3.13, RFC 1996). Read by the metrics, `cnamed status`, the refresh
//! timer and the health endpoint; written by reloads.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::xfr::{Timers, TransferType};

/// What a secondary does once its zone has expired: no refresh confirmed it for EXPIRE
/// seconds (`--on-expire`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnExpire {
    /// Keep answering from the last mapping, and say so: an error log line per failed
    /// retry, `expired` in `cnamed status` and the metrics, and `/ready` failing. An edge
    /// with a day-old mapping still sends almost every client to the right cluster; one
    /// that stops sends none.
    #[default]
    Serve,
    /// Answer every query SERVFAIL, as RFC 1035 has a secondary do with an expired zone
    /// (resolvers then try another server).
    Servfail,
}

impl FromStr for OnExpire {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "serve" => Ok(Self::Serve),
            "servfail" => Ok(Self::Servfail),
            _ => Err(format!("{text:?} is not serve or servfail")),
        }
    }
}

/// How a refresh ended, for the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new serial was installed.
    Changed,
    /// The primary had nothing newer.
    UpToDate,
    /// No primary answered, or what came was refused.
    Failed,
    /// The whole zone transferred at start, before serving.
    Initial,
}

impl RefreshOutcome {
    pub const NAMES: [&'static str; 4] = ["changed", "up_to_date", "failed", "initial"];
}

/// The last transfer in.
#[derive(Clone, Debug)]
pub struct LastTransfer {
    pub primary: Option<SocketAddr>,
    pub via: Option<TransferType>,
    pub outcome: RefreshOutcome,
    /// The error, for a failure.
    pub error: Option<String>,
    pub bytes: u64,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A secondary's state, shared by reloads, the refresh timer and the readers.
#[derive(Debug)]
pub struct SecondaryStats {
    pub primaries: Vec<SocketAddr>,
    pub on_expire: OnExpire,
    /// `--min-refresh`: the least time between refreshes that no operator or newer serial
    /// asked for; timers set lower by a primary are raised to it.
    pub min_refresh: Duration,
    /// Refreshes by how the zone came (AXFR, IXFR) and how they ended.
    pub transfers: [[AtomicU64; 4]; 2],
    /// Response bytes received, by AXFR and IXFR.
    pub bytes: [AtomicU64; 2],
    /// Time on the wire of refreshes that reached a primary, by AXFR and IXFR.
    pub transfer_seconds: [crate::histogram::Histogram; 2],
    /// Unix milliseconds of the last refresh that reached a primary and ended with the zone
    /// current (changed or up to date); the start, before the first.
    pub last_ok_ms: AtomicU64,
    /// Unix milliseconds of the last refresh attempt.
    pub last_attempt_ms: AtomicU64,
    /// Whether the last attempt failed: the next comes after RETRY, not REFRESH.
    pub failing: AtomicBool,
    /// No refresh recorded yet: the first comes at once, to learn the primary's timers
    /// (the start's AXFR, or a dump loaded when none answered, leaves them unknown).
    unrefreshed: AtomicBool,
    /// The serial the primary last gave.
    pub primary_serial: AtomicU64,
    timers: [AtomicU32; 3],
    pub expired: AtomicBool,
    last: Mutex<Option<LastTransfer>>,
    /// The primary that last gave the zone (changed or up to date): a refresh asks it first.
    last_good: Mutex<Option<SocketAddr>>,
}

impl SecondaryStats {
    /// A secondary started at `now_ms`, going by `timers` (its own zone's: `--soa-timers`)
    /// until a primary gives its own.
    pub fn new(
        primaries: Vec<SocketAddr>,
        on_expire: OnExpire,
        min_refresh: Duration,
        timers: Timers,
        now_ms: u64,
    ) -> Self {
        Self {
            primaries,
            on_expire,
            min_refresh,
            transfers: Default::default(),
            bytes: Default::default(),
            transfer_seconds: Default::default(),
            last_ok_ms: AtomicU64::new(now_ms),
            last_attempt_ms: AtomicU64::new(now_ms),
            failing: AtomicBool::new(false),
            unrefreshed: AtomicBool::new(true),
            primary_serial: AtomicU64::new(0),
            timers: [timers.refresh, timers.retry, timers.expire].map(AtomicU32::new),
            expired: AtomicBool::new(false),
            last: Mutex::new(None),
            last_good: Mutex::new(None),
        }
    }

    /// The primary's SOA timers, or the zone's own before the first transfer.
    pub fn timers(&self) -> Timers {
        let [refresh, retry, expire] = self.timers.each_ref().map(|t| t.load(Ordering::Relaxed));
        Timers {
            refresh,
            retry,
            expire,
        }
    }

    /// Records a refresh. A success confirms the zone (and ends an expiry).
    pub fn record(&self, last: LastTransfer, serial: Option<u32>, timers: Option<Timers>) {
        let via = last.via.map(|via| via as usize);
        if let Some(via) = via {
            self.transfers[via][last.outcome as usize].fetch_add(1, Ordering::Relaxed);
            self.bytes[via].fetch_add(last.bytes, Ordering::Relaxed);
        } else {
            // Failed before any primary answered: counted under AXFR, the transfer asked
            // for last.
            self.transfers[TransferType::Axfr as usize][last.outcome as usize]
                .fetch_add(1, Ordering::Relaxed);
        }
        self.last_attempt_ms.store(last.at_ms, Ordering::Relaxed);
        self.unrefreshed.store(false, Ordering::Relaxed);
        let ok = last.outcome != RefreshOutcome::Failed;
        self.failing.store(!ok, Ordering::Relaxed);
        if let Some(primary) = last.primary.filter(|_| ok) {
            *self
                .last_good
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(primary);
        }
        if ok {
            self.last_ok_ms.store(last.at_ms, Ordering::Relaxed);
            if self.expired.swap(false, Ordering::Relaxed) {
                crate::log!(Info, "the zone is current again: no longer expired");
            }
        }
        if let Some(serial) = serial {
            self.primary_serial
                .store(u64::from(serial), Ordering::Relaxed);
        }
        if let Some(timers) = timers {
            for (slot, value) in
                self.timers
                    .iter()
                    .zip([timers.refresh, timers.retry, timers.expire])
            {
                slot.store(value, Ordering::Relaxed);
            }
        }
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(last);
    }

    /// The primary that last gave the zone, if any did.
    pub fn last_good_primary(&self) -> Option<SocketAddr> {
        *self
            .last_good
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last transfer in, if any.
    pub fn last(&self) -> Option<LastTransfer> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the next refresh is due, Unix milliseconds: REFRESH after the last success, or
    /// RETRY after a failed attempt (RFC 1035 §3.3.13), each at least `min_refresh` (a
    /// primary serving 0/0 would have us refresh without pause).
    pub fn next_refresh_ms(&self) -> u64 {
        if self.unrefreshed.load(Ordering::Relaxed) {
            return 0;
        }
        let timers = self.timers();
        let floor = self.min_refresh.as_millis() as u64;
        let after = |timer: u32| (u64::from(timer) * 1000).max(floor);
        match self.failing.load(Ordering::Relaxed) {
            true => self.last_attempt_ms.load(Ordering::Relaxed) + after(timers.retry),
            false => self.last_ok_ms.load(Ordering::Relaxed) + after(timers.refresh),
        }
    }

    /// Whether the zone has gone EXPIRE seconds without a refresh that reached a primary;
    /// marks it expired (logged once, loudly) when it just has.
    pub fn check_expiry(&self, now_ms: u64) -> bool {
        let since = now_ms.saturating_sub(self.last_ok_ms.load(Ordering::Relaxed));
        let expired = since > u64::from(self.timers().expire) * 1000;
        if expired && !self.expired.swap(true, Ordering::Relaxed) {
            let policy = match self.on_expire {
                OnExpire::Serve => "serving the last mapping (--on-expire serve)",
                OnExpire::Servfail => "answering SERVFAIL (--on-expire servfail)",
            };
            crate::log!(
                Error,
                "the zone has EXPIRED: no primary confirmed it for {} s; {policy}",
                since / 1000
            );
        }
        expired
    }

    /// Whether queries get SERVFAIL: expired under `--on-expire servfail`.
    pub fn refusing(&self) -> bool {
        self.on_expire == OnExpire::Servfail && self.expired.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stats: &SecondaryStats, outcome: RefreshOutcome, at_ms: u64) {
        let last = LastTransfer {
            primary: None,
            via: Some(TransferType::Ixfr),
            outcome,
            error: None,
            bytes: 100,
            at_ms,
        };
        let timers = Timers {
            refresh: 10,
            retry: 2,
            expire: 30,
        };
        stats.record(last, Some(5), Some(timers));
    }

    #[test]
    fn refresh_retry_and_expire_follow_the_primary_timers() {
        let own = Timers {
            refresh: 100,
            retry: 5,
            expire: 1000,
        };
        let stats = SecondaryStats::new(Vec::new(), OnExpire::Servfail, Duration::ZERO, own, 1_000);
        // Before any refresh: one at once.
        assert_eq!(stats.next_refresh_ms(), 0);
        // The zone's own timers until a primary answers.
        let stats = SecondaryStats::new(Vec::new(), OnExpire::Servfail, Duration::ZERO, own, 1_000);
        stats.record(
            LastTransfer {
                primary: None,
                via: None,
                outcome: RefreshOutcome::Failed,
                error: Some("down".into()),
                bytes: 0,
                at_ms: 1_000,
            },
            None,
            None,
        );
        assert_eq!(stats.next_refresh_ms(), 6_000, "own RETRY");
        record(&stats, RefreshOutcome::UpToDate, 2_000);
        assert_eq!(stats.next_refresh_ms(), 12_000);
        record(&stats, RefreshOutcome::Failed, 12_000);
        assert_eq!(stats.next_refresh_ms(), 14_000, "RETRY after a failure");
        assert!(!stats.check_expiry(32_000));
        assert!(!stats.refusing());
        assert!(stats.check_expiry(32_001), "30 s after the last success");
        assert!(stats.refusing());
        record(&stats, RefreshOutcome::Changed, 40_000);
        assert!(!stats.expired.load(Ordering::Relaxed));
        assert!(!stats.refusing());
        let counts = stats.transfers[TransferType::Ixfr as usize].each_ref();
        assert_eq!(counts.map(|n| n.load(Ordering::Relaxed)), [1, 1, 1, 0]);
    }

    /// A primary's REFRESH and RETRY below `--min-refresh` are raised to it (a primary
    /// serving 0/0 had a secondary refresh every 250 ms), while `timers` still says what
    /// the primary set (hardening round three, item 3).
    #[test]
    fn timers_below_the_minimum_are_raised_to_it() {
        let own = Timers {
            refresh: 100,
            retry: 5,
            expire: 1000,
        };
        let stats = SecondaryStats::new(
            Vec::new(),
            OnExpire::Serve,
            Duration::from_secs(2),
            own,
            1_000,
        );
        let zero = Timers {
            refresh: 0,
            retry: 0,
            expire: 30,
        };
        let mut last = LastTransfer {
            primary: None,
            via: Some(TransferType::Ixfr),
            outcome: RefreshOutcome::UpToDate,
            error: None,
            bytes: 10,
            at_ms: 5_000,
        };
        stats.record(last.clone(), Some(1), Some(zero));
        assert_eq!(stats.next_refresh_ms(), 7_000, "REFRESH 0 waits 2 s");
        last.outcome = RefreshOutcome::Failed;
        last.at_ms = 8_000;
        stats.record(last, None, None);
        assert_eq!(stats.next_refresh_ms(), 10_000, "RETRY 0 waits 2 s");
        assert_eq!(
            stats.timers(),
            zero,
            "the primary's own timers are reported"
        );
    }

    #[test]
    fn soa_timers_are_read_from_rdata() {
        let mut rdata = b"\x02ns\x00\x05admin\x00".to_vec();
        for value in [7u32, 3600, 600, 86400, 60] {
            rdata.extend_from_slice(&value.to_be_bytes());
        }
        let timers = Timers::of_soa(&rdata).unwrap();
        assert_eq!(
            (timers.refresh, timers.retry, timers.expire),
            (3600, 600, 86400)
        );
        assert_eq!(Timers::of_soa(&rdata[..10]), None);
    }
}
