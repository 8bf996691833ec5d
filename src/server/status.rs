//! What `cnamed status` reports, gathered from the live snapshot, the counters and the
//! signal loop's record of the last reload.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::shared::Shared;
use crate::config::VERSION_STRING;
use crate::metrics::ServerStats;
use crate::sys;
use crate::xfr::inbound::secondary::{LastTransfer, OnExpire, RefreshOutcome, SecondaryStats};
use crate::xfr::outbound::fleet::Fleet;
use crate::xfr::TransferType;

/// What `cnamed status` reports: fixed facts, the live snapshot and counters, and the last
/// reload's outcome, which the signal loop records.
pub(super) struct StatusBoard {
    pub(super) shared: Arc<Shared>,
    pub(super) stats: Arc<ServerStats>,
    pub(super) zone: String,
    pub(super) dump: PathBuf,
    pub(super) listen: Vec<SocketAddr>,
    pub(super) workers: usize,
    pub(super) metrics: Option<SocketAddr>,
    /// `--journal`, with `--update-key`.
    pub(super) journal: Option<PathBuf>,
    /// What the `--notify` targets serve.
    pub(super) fleet: Option<Arc<Fleet>>,
    /// Unix milliseconds and the answer line of the last reload.
    last_reload: Mutex<Option<(u64, String)>>,
}

impl StatusBoard {
    pub(super) fn new(
        shared: Arc<Shared>,
        stats: Arc<ServerStats>,
        zone: String,
        dump: PathBuf,
        listen: Vec<SocketAddr>,
        workers: usize,
        metrics: Option<SocketAddr>,
    ) -> Self {
        Self {
            shared,
            stats,
            zone,
            dump,
            listen,
            workers,
            metrics,
            journal: None,
            fleet: None,
            last_reload: Mutex::new(None),
        }
    }

    /// Records how the last reload ended (its answer line).
    pub(super) fn record_reload(&self, line: &str) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((sys::unix_millis(), line.to_owned()));
    }

    fn facts(&self) -> Vec<(&'static str, Fact)> {
        let snapshot = self.shared.snapshot.load();
        let stats = &self.stats;
        let now = sys::unix_millis();
        let started = stats.start_time_ms.get();
        let last = self
            .last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let listen: Vec<String> = self.listen.iter().map(ToString::to_string).collect();
        let mut facts = vec![
            ("version", Fact::Text(VERSION_STRING.to_owned())),
            ("zone", Fact::Text(self.zone.clone())),
            ("serial", Fact::Number(u64::from(snapshot.serial))),
            ("apps", Fact::Number(snapshot.app_count() as u64)),
            ("clusters", Fact::Number(snapshot.cluster_count() as u64)),
            ("dump", Fact::Text(self.dump.display().to_string())),
            ("dump_modified", Fact::Time(stats.dump_modified_ms.get())),
            ("loaded", Fact::Time(loaded_at(stats, started))),
            (
                "load_seconds",
                Fact::Seconds(stats.load_micros.get() as f64 / 1e6),
            ),
            (
                "last_reload",
                Fact::Time(last.as_ref().map_or(0, |(at, _)| *at)),
            ),
            (
                "last_reload_result",
                Fact::Text(last.map_or_else(|| "none".to_owned(), |(_, line)| line)),
            ),
            (
                "uptime_seconds",
                Fact::Seconds(now.saturating_sub(started) as f64 / 1e3),
            ),
            ("workers", Fact::Number(self.workers as u64)),
            ("listen", Fact::List(listen)),
            (
                "metrics",
                self.metrics.map_or(Fact::Off, |addr| {
                    Fact::Text(format!("http://{addr}/metrics"))
                }),
            ),
        ];
        facts.push((
            "overlay_entries",
            Fact::Number(snapshot.overlay_len() as u64),
        ));
        if let (Some(updates), Some(journal)) = (&self.shared.updates, &self.journal) {
            let stats = &updates.stats;
            facts.extend([
                ("journal", Fact::Text(journal.display().to_string())),
                ("journal_bytes", Fact::Number(stats.journal_bytes.get())),
                ("journal_records", Fact::Number(stats.journal_records.get())),
                (
                    "journal_oldest_serial",
                    Fact::Number(stats.journal_oldest_serial.get()),
                ),
                (
                    "updates_acknowledged",
                    Fact::Number(stats.answered_count("NOERROR")),
                ),
                ("update_app_changes", Fact::Number(stats.app_changes.get())),
            ]);
        }
        if let Some(secondary) = &self.shared.secondary {
            facts.extend(secondary_facts(secondary, now));
        }
        if let Some(fleet) = &self.fleet {
            facts.push(("notify_targets", fleet_fact(fleet, snapshot.serial, now)));
        }
        facts
    }

    /// `key: value` lines for people.
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        for (key, fact) in self.facts() {
            let value = match fact {
                Fact::Text(text) => text,
                Fact::Number(n) => n.to_string(),
                Fact::Seconds(s) => format!("{s:.3}"),
                Fact::Time(0) => "never".to_owned(),
                Fact::Time(ms) => rfc3339(ms / 1000),
                Fact::List(items) => items.join(" "),
                Fact::Off => "off".to_owned(),
                Fact::Flag(_, text) | Fact::Record(text, _) => text,
            };
            let _ = writeln!(out, "{key}: {value}");
        }
        out
    }

    /// One JSON object; times as Unix seconds (0: never).
    pub(super) fn json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .facts()
            .into_iter()
            .map(|(key, fact)| {
                let value = match fact {
                    Fact::Text(text) => serde_json::Value::from(text),
                    Fact::Number(n) => serde_json::Value::from(n),
                    Fact::Seconds(s) => serde_json::Value::from(s),
                    Fact::Time(ms) => serde_json::Value::from(ms as f64 / 1e3),
                    Fact::List(items) => serde_json::Value::from(items),
                    Fact::Off => serde_json::Value::Null,
                    Fact::Flag(on, _) => serde_json::Value::Bool(on),
                    Fact::Record(_, value) => value,
                };
                (key.to_owned(), value)
            })
            .collect();
        let mut out = serde_json::Value::Object(object).to_string();
        out.push('\n');
        out
    }
}

/// A secondary's primaries, their serial, the last transfer and the zone's freshness.
fn secondary_facts(secondary: &SecondaryStats, now: u64) -> Vec<(&'static str, Fact)> {
    let primaries = secondary
        .primaries
        .iter()
        .map(ToString::to_string)
        .collect();
    let last = secondary.last();
    let last_ok = secondary.last_ok_ms.load(Ordering::Relaxed);
    let timers = secondary.timers();
    let expired = secondary.expired.load(Ordering::Relaxed);
    let transfer = last.as_ref().map_or_else(
        || "none".to_owned(),
        |last| {
            let result = RefreshOutcome::NAMES[last.outcome as usize];
            let source = match (last.via, last.primary) {
                (Some(via), Some(primary)) => {
                    format!("{} from {primary}: ", TransferType::NAMES[via as usize])
                }
                _ => String::new(),
            };
            match &last.error {
                Some(error) => format!("{source}{result}: {error}"),
                None => format!("{source}{result}, {} bytes", last.bytes),
            }
        },
    );
    vec![
        ("primaries", Fact::List(primaries)),
        (
            "primary_serial",
            Fact::Number(secondary.primary_serial.load(Ordering::Relaxed)),
        ),
        (
            "last_transfer",
            Fact::Record(transfer, transfer_json(last.as_ref())),
        ),
        (
            "last_transfer_time",
            Fact::Time(last.map_or(0, |last| last.at_ms)),
        ),
        (
            "seconds_since_refresh",
            Fact::Seconds(now.saturating_sub(last_ok) as f64 / 1e3),
        ),
        (
            "soa_timers",
            Fact::Text(format!(
                "refresh {} s, retry {} s, expire {} s",
                timers.refresh, timers.retry, timers.expire
            )),
        ),
        (
            "expired",
            Fact::Flag(
                expired,
                match (expired, secondary.on_expire) {
                    (false, _) => "no".to_owned(),
                    (true, OnExpire::Serve) => "YES: serving the last mapping".to_owned(),
                    (true, OnExpire::Servfail) => "YES: answering SERVFAIL".to_owned(),
                },
            ),
        ),
    ]
}

/// The `--notify` targets against the serial served: how many are live, then each with
/// the serial it last answered, when, and how far behind it is. In JSON, a list of objects.
fn fleet_fact(fleet: &Fleet, serial: u32, now: u64) -> Fact {
    let view = fleet.view(serial, now);
    let live = view.iter().filter(|target| target.live).count();
    let mut text = format!("{live} of {} live at serial {serial}", view.len());
    let mut json = Vec::new();
    for target in &view {
        let state = match (target.seen, target.live) {
            (None, _) => "never answered".to_owned(),
            (Some((seen, _)), true) => format!("serial {seen}"),
            (Some((seen, _)), false) => format!(
                "serial {seen}, BEHIND by {} for {:.1} s",
                target.lag_serials.unwrap_or_default(),
                target.lag_seconds
            ),
        };
        let age = target.seen.map_or_else(String::new, |(_, at)| {
            format!(", seen {:.1} s ago", now.saturating_sub(at) as f64 / 1e3)
        });
        let _ = write!(text, "; {} {state}{age}", target.target);
        json.push(serde_json::json!({
            "target": target.target.to_string(),
            "serial": target.seen.map(|(serial, _)| serial),
            "seen": target.seen.map(|(_, at)| at as f64 / 1e3),
            "live": target.live,
            "lag_serials": target.lag_serials,
            "lag_seconds": target.lag_seconds,
        }));
    }
    Fact::Record(text, serde_json::Value::from(json))
}

/// The last transfer in as a JSON object (`null` before the first): its type and primary
/// (`null` when none answered), result, bytes and error.
fn transfer_json(last: Option<&LastTransfer>) -> serde_json::Value {
    let Some(last) = last else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "type": last.via.map(|via| TransferType::NAMES[via as usize]),
        "primary": last.primary.map(|primary| primary.to_string()),
        "result": RefreshOutcome::NAMES[last.outcome as usize],
        "bytes": last.bytes,
        "error": last.error,
    })
}

/// When the snapshot being served was loaded: the last successful reload, else the start.
fn loaded_at(stats: &ServerStats, started: u64) -> u64 {
    match stats.last_reload_ok_ms.get() {
        0 => started,
        at => at,
    }
}

enum Fact {
    Text(String),
    Number(u64),
    Seconds(f64),
    /// Unix milliseconds, 0 for never.
    Time(u64),
    List(Vec<String>),
    /// A feature turned off.
    Off,
    /// A yes or no: its line of text, and a JSON boolean.
    Flag(bool, String),
    /// Something with parts: its line of text, and a JSON object of the parts.
    Record(String, serde_json::Value),
}

/// `2026-11-28T02:22:45Z` from Unix seconds (proleptic Gregorian, UTC).
fn rfc3339(unix: u64) -> String {
    let (days, rest) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_832_565), "2026-11-28T02:22:45Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
