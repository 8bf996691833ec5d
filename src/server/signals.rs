//! The signal loop and the reload policy: SIGHUP reloads, SIGTERM and SIGINT stop. Signals
//! are blocked in every thread and taken here, on one thread, outside any handler; workers
//! only see the snapshot swapped and, at the end, the shutdown flag.

use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::running::{ReloadError, Reloaded, Running};
use super::systemd::Notifier;
use crate::sys;

/// The signals the server takes.
const SIGNALS: [i32; 3] = [sys::SIGHUP, sys::SIGTERM, sys::SIGINT];

/// How long a reload may wait for idle CPU before it takes its fair share.
const IDLE_RELOAD_GRACE: Duration = Duration::from_secs(5);

/// Blocks the server's signals in this thread and every thread it spawns afterwards: call it
/// before any worker exists, so that only [`handle_until_stop`] ever sees them.
pub(super) fn block() -> io::Result<()> {
    sys::block_signals(&SIGNALS)
}

/// Reloads on every SIGHUP, logging the outcome and telling systemd; returns after stopping
/// the workers on SIGTERM or SIGINT. `dump` is named in the logs.
pub(super) fn handle_until_stop(
    running: Running,
    notifier: &Notifier,
    dump: &Path,
) -> io::Result<()> {
    loop {
        match sys::wait_for_signal(&SIGNALS)? {
            sys::SIGHUP => {
                notifier.reloading();
                let status = match reload_in_idle_time(&running) {
                    Ok(done) => {
                        eprintln!(
                            "cnamed: reloaded {}: {} apps, serial {}, {:.1} ms",
                            dump.display(),
                            done.apps,
                            done.serial,
                            done.elapsed.as_secs_f64() * 1e3
                        );
                        format!("serving {} apps, serial {}", done.apps, done.serial)
                    }
                    Err(error) => {
                        let serving = running.snapshot();
                        eprintln!(
                            "cnamed: reload failed, still serving serial {}: {error}",
                            serving.serial
                        );
                        format!(
                            "reload failed, serving {} apps, serial {}: {error}",
                            serving.app_count(),
                            serving.serial
                        )
                    }
                };
                notifier.ready(&status);
            }
            _ => {
                notifier.stopping();
                running.shutdown()?;
                eprintln!("cnamed: stopped");
                return Ok(());
            }
        }
    }
}

/// Reloads on a thread that first runs only in the workers' idle time (SCHED_IDLE), so that
/// parsing a dump on a core shared with a worker does not delay queries. A box saturated for
/// longer than `IDLE_RELOAD_GRACE` has no idle time: the reload then runs at normal priority,
/// so that new mappings always arrive.
fn reload_in_idle_time(running: &Running) -> Result<Reloaded, ReloadError> {
    std::thread::scope(|scope| {
        let (started, thread) = mpsc::channel();
        let (finished, done) = mpsc::channel::<()>();
        let loader = scope.spawn(move || {
            let _ = started.send(sys::current_thread());
            // Soft: without SCHED_IDLE the reload simply runs at normal priority.
            let _ = sys::set_thread_idle(sys::current_thread(), true);
            let result = running.reload();
            drop(finished);
            result
        });
        // Disconnected means finished; a timeout means no idle time came in the grace period.
        if done.recv_timeout(IDLE_RELOAD_GRACE) == Err(mpsc::RecvTimeoutError::Timeout) {
            if let Ok(thread) = thread.recv() {
                let _ = sys::set_thread_idle(thread, false);
            }
        }
        loader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
