//! Counters, and their Prometheus text exposition (format 0.0.4).
//!
//! - `counters`: [`WorkerCounters`] (the query path's) and [`ServerStats`];
//! - `server`, `xfr`, `secondary`, `update`, `fleet`: each subsystem's families, rendered from its figures;
//! - `text` and `histogram`: the exposition format.
//!
//! Each worker owns a [`WorkerCounters`] and is its only writer: an increment is a relaxed
//! load and store of a value no other thread writes, which compiles to plain moves, with no
//! lock prefix and no cache line shared between workers. A scrape reads every worker's
//! counters with relaxed loads and sums them; a sum may miss increments in flight, never
//! tear one.

mod counters;
mod dnstap;
mod fleet;
mod histogram;
mod secondary;
mod server;
#[cfg(test)]
mod tests;
mod text;
mod update;
mod xfr;

use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use self::counters::{CloseReason, Counter, Limited, ServerStats, WorkerCounters};
pub use self::dnstap::DnstapStats;
pub use self::update::UpdateStats;
use crate::sys::unix_millis;
use crate::xfr::inbound::secondary::SecondaryStats;
use crate::xfr::outbound::fleet::Fleet;
use crate::xfr::outbound::XfrStats;

/// Everything the metrics endpoint reads: cheap to clone, safe to read from any thread.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) workers: Vec<Arc<WorkerCounters>>,
    pub(crate) stats: Arc<ServerStats>,
    /// Zone transfer counts; zeros when transfers are off.
    pub(crate) xfr: Arc<XfrStats>,
    /// A secondary's transfers in, with `--primary`.
    pub(crate) secondary: Option<Arc<SecondaryStats>>,
    /// DNS UPDATE and its journal, with `--update-key`.
    pub(crate) updates: Option<Arc<UpdateStats>>,
    /// What the `--notify` targets serve, with `--notify`.
    pub(crate) fleet: Option<Arc<Fleet>>,
    /// Query logs, with `--dnstap`.
    pub(crate) dnstap: Option<Arc<DnstapStats>>,
}

impl Metrics {
    /// Whether every worker started is still in its event loop.
    pub fn all_workers_running(&self) -> bool {
        self.stats.workers_running.load(Ordering::Relaxed) == self.workers.len() as u64
    }

    /// The Prometheus text exposition of every counter, workers summed.
    pub fn render(&self) -> String {
        let workers: Vec<&WorkerCounters> = self.workers.iter().map(|w| &**w).collect();
        let mut out = String::with_capacity(8192);
        server::render(&workers, &self.stats, &mut out);
        xfr::render(&self.xfr, &mut out);
        if let Some(secondary) = &self.secondary {
            secondary::render(secondary, unix_millis(), &mut out);
        }
        if let Some(updates) = &self.updates {
            update::render(updates, &mut out);
        }
        if let Some(fleet) = &self.fleet {
            fleet::render(fleet, self.stats.serial.get(), unix_millis(), &mut out);
        }
        if let Some(dnstap) = &self.dnstap {
            dnstap::render(dnstap, &mut out);
        }
        out
    }
}
