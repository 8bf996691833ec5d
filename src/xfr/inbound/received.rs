//! What a transfer in gave: the whole zone, the changes since a serial, or word that the
//! primary has nothing newer; read by `reader`, used by `client` and `resolve`.

/// The zone a complete AXFR carried.
#[derive(Debug)]
pub struct Transferred {
    pub serial: u32,
    /// Every app with its cluster, in no set order.
    pub apps: Vec<(Box<str>, Box<str>)>,
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
