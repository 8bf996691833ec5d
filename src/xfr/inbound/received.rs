//! What a transfer in gave: the whole zone, the changes since a serial, or word that the
//! primary has nothing newer; read by `reader`, used by `client` and `resolve`.

use crate::snapshot::Snapshot;

/// The zone a complete AXFR carried, built into a snapshot as it arrived (the SOA timers
/// are this server's until the caller sets the primary's).
#[derive(Debug)]
pub struct Transferred {
    pub serial: u32,
    pub snapshot: Box<Snapshot>,
}

/// One CNAME record an IXFR deletes or adds: app and cluster in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub app: Box<str>,
    /// Index into the zone's services.
    pub service: usize,
    pub cluster: Box<str>,
    pub added: bool,
}

/// What a transfer gave.
#[derive(Debug)]
pub enum Received {
    /// The primary has nothing newer: its serial.
    UpToDate(u32),
    /// The whole zone (AXFR, or IXFR answered AXFR-style).
    Full(Transferred),
    /// The records changed from the serial asked for to `serial`.
    Incremental { serial: u32, changes: Vec<Change> },
}
