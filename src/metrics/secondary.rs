//! A secondary's families.

use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram;
use super::text::{family, single};
use crate::xfr::inbound::secondary::{RefreshOutcome, SecondaryStats};
use crate::xfr::TransferType;

/// A secondary's families: transfers in, the primary's serial, time since the zone was
/// last confirmed, expiry.
pub(super) fn render(secondary: &SecondaryStats, now_ms: u64, out: &mut String) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
    let mut transfers = Vec::new();
    for (via, results) in TransferType::NAMES.iter().zip(&secondary.transfers) {
        for (result, n) in RefreshOutcome::NAMES.iter().zip(results) {
            transfers.push((format!("{{type=\"{via}\",result=\"{result}\"}}"), get(n)));
        }
    }
    family(
        out,
        "cnamed_secondary_transfers_total",
        "counter",
        "Transfers from the primaries by how the zone came (IXFR, or AXFR) and how they ended: the whole zone at start (initial), a new serial installed, up to date, failed (no primary answered, or the zone was refused). Failures before any primary answered count as AXFR.",
        &transfers,
    );
    let bytes: Vec<_> = TransferType::NAMES
        .iter()
        .zip(&secondary.bytes)
        .map(|(via, n)| (format!("{{type=\"{via}\"}}"), get(n)))
        .collect();
    family(
        out,
        "cnamed_secondary_transfer_bytes_total",
        "counter",
        "Bytes of zone transfer responses received from the primaries.",
        &bytes,
    );
    histogram::family(
        out,
        "cnamed_secondary_transfer_duration_seconds",
        "Refreshes that reached a primary (a new serial or up to date), by AXFR or IXFR: time on the wire, request to last message.",
        &histogram::by_type(&secondary.transfer_seconds),
    );
    single(
        out,
        "cnamed_secondary_primary_serial",
        "gauge",
        "The SOA serial the primary last gave.",
        get(&secondary.primary_serial),
    );
    let since = now_ms.saturating_sub(secondary.last_ok_ms.load(Ordering::Relaxed));
    single(
        out,
        "cnamed_secondary_seconds_since_refresh",
        "gauge",
        "Seconds since a primary last confirmed the zone current (a transfer or an up-to-date answer).",
        format!("{:.3}", since as f64 / 1e3),
    );
    single(
        out,
        "cnamed_secondary_expired",
        "gauge",
        "1 when no primary confirmed the zone for the SOA EXPIRE time (see --on-expire).",
        u8::from(secondary.expired.load(Ordering::Relaxed)),
    );
}
