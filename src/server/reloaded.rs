//! How a reload ended: what it loaded ([`Reloaded`]), or why the old state keeps serving
//! ([`ReloadError`]). Told to the main loop, the control clients, the log and the metrics.

use std::fmt;
use std::time::Duration;

use crate::cookie::SecretError;
use crate::snapshot::guard::{Difference, Refusal};
use crate::snapshot::LoadError;
use crate::tsig::keyfile::KeyFileError;
use crate::xfr::inbound::client::TransferError;

/// Why a reload kept the old state.
#[derive(Debug)]
pub enum ReloadError {
    Dump(LoadError),
    CookieSecret(SecretError),
    TsigKeys(KeyFileError),
    /// No `--primary` gave the zone.
    Transfer(TransferError),
    /// The dump loaded, but the guard rails refuse it.
    Refused(Refusal),
    /// The journal could not be read, replayed on the dump or written.
    Journal(String),
    /// The thread running the reload ended without a result.
    Died,
}

impl ReloadError {
    /// The metric label index of this failure (see [`Refusal::NAMES`]).
    pub fn reason_index(&self) -> usize {
        match self {
            Self::Refused(refusal) => refusal.index(),
            Self::Dump(_)
            | Self::CookieSecret(_)
            | Self::TsigKeys(_)
            | Self::Transfer(_)
            | Self::Journal(_)
            | Self::Died => Refusal::INVALID,
        }
    }
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dump(error) => error.fmt(f),
            Self::CookieSecret(error) => write!(f, "cookie secret {error}"),
            Self::TsigKeys(error) => write!(f, "TSIG key {error}"),
            Self::Transfer(error) => write!(f, "zone transfer: {error}"),
            Self::Refused(refusal) if refusal.forcible() => {
                write!(f, "refused: {refusal} (cnamed reload --force overrides)")
            }
            Self::Refused(refusal) => write!(f, "refused: {refusal}"),
            Self::Journal(why) => write!(f, "journal: {why}"),
            Self::Died => f.write_str("the reload thread died"),
        }
    }
}

impl std::error::Error for ReloadError {}

/// What a successful reload loaded.
#[derive(Clone, Copy, Debug)]
pub struct Reloaded {
    pub apps: usize,
    pub serial: u32,
    /// The serial served before.
    pub previous_serial: u32,
    /// Apps added, removed and moved; empty with the same serial: nothing changed.
    pub difference: Difference,
    pub elapsed: Duration,
    /// Time spent recording the difference for IXFR, when transfers are on.
    pub difference_time: Option<Duration>,
    /// An export older than the zone, reconciled with the journal: its serial, and the
    /// journal records replayed on it.
    pub replayed: Option<(u32, usize)>,
}

impl Reloaded {
    /// The same serial and content as before: the old snapshot keeps serving.
    pub fn unchanged(&self) -> bool {
        self.serial == self.previous_serial && self.difference.is_empty()
    }
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.elapsed.as_secs_f64() * 1e3;
        let replayed = match self.replayed {
            Some((serial, records)) => format!(
                " (the dump of serial {serial} with {} after it replayed)",
                crate::log::count(records, "journal record")
            ),
            None => String::new(),
        };
        if self.unchanged() {
            write!(
                f,
                "unchanged: serial {}, {} apps{replayed}, {millis:.1} ms",
                self.serial, self.apps
            )
        } else {
            write!(
                f,
                "serial {} (was {}), {} apps: {} added, {} removed, {} moved{replayed}, {millis:.1} ms",
                self.serial,
                self.previous_serial,
                self.apps,
                self.difference.added,
                self.difference.removed,
                self.difference.moved
            )?;
            match self.difference_time {
                Some(time) => write!(f, " (+{:.1} ms for IXFR)", time.as_secs_f64() * 1e3),
                None => Ok(()),
            }
        }
    }
}
