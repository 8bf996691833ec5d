//! Zone transfers, one folder per direction, over the vocabulary both share.
//!
//! - [`outbound`]: a primary's side: who may transfer (`--xfr-allow`), the AXFR and IXFR
//!   streams made from the snapshot served (RFC 5936, RFC 1995), the history of changes that
//!   IXFR answers from, and NOTIFY out (RFC 1996);
//! - [`inbound`]: a secondary's side (`--primary`): the client that asks, the reader that
//!   checks what a primary sends and turns it into a snapshot, and the secondary's state
//!   (SOA timers, expiry);
//! - [`pace`]: the deadline and minimum rate of a transfer, either way.

pub mod inbound;
pub mod outbound;
pub mod pace;

/// The two kinds of zone transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    Axfr,
    Ixfr,
}

impl TransferType {
    /// Metric label values, in declaration order (`as usize` indexes them).
    pub const NAMES: [&'static str; 2] = ["AXFR", "IXFR"];
}

/// REFRESH, RETRY and EXPIRE of an SOA, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

impl Timers {
    /// The timers of SOA RDATA (they follow the SERIAL, before MINIMUM), if it is long
    /// enough to hold them.
    pub fn of_soa(rdata: &[u8]) -> Option<Self> {
        let at = rdata.len().checked_sub(16)?;
        let word = |i: usize| {
            let bytes: [u8; 4] = rdata[at + i..at + i + 4].try_into().ok()?;
            Some(u32::from_be_bytes(bytes))
        };
        Some(Self {
            refresh: word(0)?,
            retry: word(4)?,
            expire: word(8)?,
        })
    }
}
