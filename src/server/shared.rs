//! What every worker reads, and the workers' settings.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use super::events::Events;
use super::update::Updates;
use crate::cookie::Secrets;
use crate::snapshot::Snapshot;
use crate::tsig::Key;
use crate::xfr::inbound::secondary::SecondaryStats;
use crate::xfr::outbound::fleet::Fleet;
use crate::xfr::outbound::Gate;

/// How long a stopping worker keeps finishing TCP answers already asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// State every worker reads: swapped by reloads, set by shutdown.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) cookies: ArcSwap<Secrets>,
    /// The keys of `--tsig-key-file`, swapped by reloads; `None` without the flag.
    pub(crate) tsig_keys: ArcSwapOption<Vec<Key>>,
    pub(crate) shutdown: AtomicBool,
    /// Zone transfers, when `--xfr-allow` lets anyone transfer.
    pub(crate) xfr: Option<Gate>,
    /// The addresses of `--primary`: a NOTIFY from one of them starts a reload.
    pub(crate) primaries: Vec<IpAddr>,
    /// A secondary's state (`--primary`): whether its zone has expired.
    pub(crate) secondary: Option<Arc<SecondaryStats>>,
    /// The main loop's inputs: an accepted NOTIFY and the refresh timer ask for reloads.
    pub(crate) events: Events,
    /// Held by whoever makes the next snapshot from the one served and swaps it in (a
    /// reload, an UPDATE's commit, a fold), so that none undoes another's.
    pub(crate) installing: Mutex<()>,
    /// A fold of the overlay runs (at most one at a time).
    pub(crate) folding: AtomicBool,
    /// DNS UPDATE, with `--update-key`: where workers queue them.
    pub(crate) updates: Option<Updates>,
    /// The `--notify` targets' serials, when there are targets: the NOTIFY thread's SOA
    /// polls and the IXFRs they ask for feed it.
    pub(crate) fleet: Option<Arc<Fleet>>,
}

/// Limits of the TCP side, per worker.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A connection with a message half received or an answer unsent, and no message
    /// completed either way for this long, is closed (Slowloris, clients that never read).
    pub io_timeout: Duration,
    /// At this many connections, accepting one closes the least recently active.
    pub max_connections: usize,
}

/// Response rate limiting settings (see [`crate::rrl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second per /24 or /56 and response class, for the whole server.
    pub rate: u32,
    pub slip: u32,
    /// Picks the buckets, the same for every worker; random per process.
    pub hash_key: [u8; 16],
}
