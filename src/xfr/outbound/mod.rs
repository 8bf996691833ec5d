//! A primary's side of zone transfers, made from the snapshot being served:
//!
//! - `gate` and `prefix`: who may transfer (`--xfr-allow`, TSIG) and how many at once;
//! - `axfr` and `ixfr`: the streams of messages (RFC 5936, RFC 1995), written by `message`;
//! - `history`: what the last reloads changed, which IXFR answers from;
//! - `udp`: the answers that fit one message (IXFR over UDP, a TSIG failure's NOTAUTH);
//! - `notify`: NOTIFY messages (RFC 1996), sent to secondaries and answered from primaries,
//!   and the SOA queries that ask a secondary its serial;
//! - `fleet`: which serial each `--notify` target was last seen serving.
//!
//! A TCP connection whose query is an allowed AXFR or IXFR for the apex is handed, once its
//! earlier answers are sent, to a thread of its own (see `server::transfer`): transfers never
//! take a worker's time, and a transfer keeps the snapshot it started with.

pub mod axfr;
pub mod fleet;
mod gate;
pub mod history;
pub mod ixfr;
pub mod message;
pub mod notify;
mod prefix;
pub mod udp;

use std::sync::atomic::AtomicU64;

pub use self::gate::{Auth, Gate, TransferRequest, DEFAULT_MAX_IXFR_RATIO};
pub use self::prefix::Prefix;
use super::TransferType;

/// Transfers served at once; one more is refused (REFUSED, as for a client not allowed).
pub const MAX_TRANSFERS: usize = 4;

/// What a transfer request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Axfr,
    /// IXFR from the client's `serial` (RFC 1995).
    Ixfr {
        serial: u32,
    },
}

impl RequestKind {
    /// AXFR or IXFR, whatever the serial.
    pub fn transfer_type(self) -> TransferType {
        match self {
            Self::Axfr => TransferType::Axfr,
            Self::Ixfr { .. } => TransferType::Ixfr,
        }
    }

    /// Where this kind is counted in [`XfrStats`]' arrays.
    pub fn index(self) -> usize {
        self.transfer_type() as usize
    }
}

/// How an IXFR was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IxfrStyle {
    /// The differences since the client's serial.
    Incremental,
    /// The client is current: the SOA alone.
    UpToDate,
    /// The client's serial is not in the history: the whole zone, as AXFR.
    Full,
}

impl IxfrStyle {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 3] = ["incremental", "up_to_date", "full"];
}

/// Counts of transfers by [`TransferType`], written by the transfer threads and the workers, read
/// by the metrics.
#[derive(Debug, Default)]
pub struct XfrStats {
    pub completed: [AtomicU64; 2],
    /// How long completed transfers took, from the request taken to the last message sent.
    pub durations: [crate::histogram::Histogram; 2],
    /// Ended early: the client went away or stopped reading, or its TSIG failed.
    pub failed: [AtomicU64; 2],
    /// Allowed, but refused because `MAX_TRANSFERS` were running.
    pub refused_busy: [AtomicU64; 2],
    pub records: [AtomicU64; 2],
    pub bytes: [AtomicU64; 2],
    /// IXFR answers by [`IxfrStyle`].
    pub ixfr_styles: [AtomicU64; 3],
    /// Deltas kept for IXFR, and their heap bytes.
    pub history_deltas: AtomicU64,
    pub history_bytes: AtomicU64,
    /// NOTIFY messages sent (retries too), acknowledged, and rounds given up or refused.
    pub notifies_sent: AtomicU64,
    pub notifies_acked: AtomicU64,
    pub notifies_failed: AtomicU64,
}
