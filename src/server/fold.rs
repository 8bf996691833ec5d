//! Folding the overlay of changes into new base tables, on a thread of its own: a copy of
//! the tables (seconds at 100M apps) must never hold up a query, an UPDATE or a reload.
//!
//! The copy runs at the lowest priority, so that a busy worker keeps its core; the install
//! (under the lock every install takes) runs at normal priority, or an UPDATE waiting for
//! that lock would wait for a thread the scheduler hardly runs (a priority inversion:
//! measured, an UPDATE answered after a second).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::shared::Shared;
use crate::metrics::ServerStats;
use crate::snapshot::{fold_at, Snapshot};
use crate::sys::{current_thread, lower_thread_priority};

/// Starts a fold of `snapshot`'s overlay if it passed [`fold_at`] entries and no fold runs.
/// Changes installed while it runs stay in the overlay of the snapshot it swaps in.
pub(super) fn fold_if_due(
    shared: &Arc<Shared>,
    snapshot: &Arc<Snapshot>,
    stats: &Arc<ServerStats>,
) {
    stats.overlay_entries.set(snapshot.overlay_len() as u64);
    if snapshot.overlay_len() < fold_at(snapshot.app_count())
        || shared.folding.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let (shared, snapshot, stats) = (Arc::clone(shared), Arc::clone(snapshot), Arc::clone(stats));
    let spawned = std::thread::Builder::new()
        .name("cnamed-fold".into())
        .spawn(move || {
            fold(&shared, &snapshot, &stats);
            shared.folding.store(false, Ordering::Release);
        });
    if let Err(error) = spawned {
        crate::log!(Warning, "cannot start a fold of the changes: {error}");
    }
}

/// Folds `snapshot`'s overlay and swaps in the snapshot served then, rebased on the new
/// tables (unless a load replaced the tables meanwhile: then the fold is dropped).
fn fold(shared: &Shared, snapshot: &Snapshot, stats: &ServerStats) {
    let started = Instant::now();
    let changes = snapshot.overlay_len();
    let copy = std::thread::scope(|scope| {
        let copier = std::thread::Builder::new()
            .name("cnamed-fold-copy".into())
            .spawn_scoped(scope, || {
                let _ = lower_thread_priority(current_thread());
                snapshot.fold()
            });
        match copier {
            Ok(copier) => copier
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No second thread: copy at this one's priority.
            Err(_) => snapshot.fold(),
        }
    });
    let folded = match copy {
        Ok(folded) => folded,
        Err(error) => {
            crate::log!(Warning, "cannot fold {changes} changes: {error}");
            return;
        }
    };
    let _installing = shared
        .installing
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let Some(rebased) = shared.snapshot.load().rebased(&folded) else {
        return;
    };
    let left = rebased.overlay_len();
    drop(shared.snapshot.swap(Arc::new(rebased)));
    stats.overlay_entries.set(left as u64);
    stats.folds.add(1);
    stats.fold_micros.add(started.elapsed().as_micros() as u64);
    crate::log!(
        Info,
        "folded {changes} changes into the tables in {:.1} ms ({left} made since)",
        started.elapsed().as_secs_f64() * 1e3
    );
}
