//! The signal loop and the reload policy: SIGHUP reloads, SIGTERM and SIGINT stop. Signals
//! are blocked in every thread and taken here, on one thread, outside any handler; workers
//! only see the snapshot swapped and, at the end, the shutdown flag.
//!
//! A reload runs on a thread of its own, so the loop keeps taking signals: SIGTERM starts the
//! graceful stop at once, whatever the reload is doing (a dump on a hung file system or a
//! FIFO nobody writes is abandoned), and SIGHUPs that arrive during a reload make at most one
//! more reload, started when it ends.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use super::running::{ReloadError, Reloaded, Reloader, Running};
use super::systemd::Notifier;
use crate::sys;

/// The signals the server takes.
const SIGNALS: [i32; 3] = [sys::SIGHUP, sys::SIGTERM, sys::SIGINT];

/// How long a reload may wait for idle CPU before it takes its fair share.
const IDLE_RELOAD_GRACE: Duration = Duration::from_secs(5);
/// While a reload runs, how often the loop looks whether it has finished.
const RELOAD_POLL: Duration = Duration::from_millis(20);

/// Blocks the server's signals in this thread and every thread it spawns afterwards: call it
/// before any worker exists, so that only [`handle_until_stop`] ever sees them.
pub(super) fn block() -> io::Result<()> {
    sys::block_signals(&SIGNALS)
}

type Outcome = Result<Reloaded, ReloadError>;

/// Reloads on SIGHUP, logging the outcome and telling systemd; returns after stopping the
/// workers on SIGTERM or SIGINT. `dump` is named in the logs.
pub(super) fn handle_until_stop(
    running: Running,
    notifier: &Notifier,
    dump: &Path,
) -> io::Result<()> {
    let mut reload: Option<Receiver<Outcome>> = None;
    // A SIGHUP came while a reload ran: one more when it ends.
    let mut again = false;
    loop {
        let signal = match reload {
            None => Some(sys::wait_for_signal(&SIGNALS)?),
            Some(_) => sys::wait_for_signal_timeout(&SIGNALS, RELOAD_POLL)?,
        };
        match signal {
            None => {}
            Some(sys::SIGHUP) if reload.is_some() => again = true,
            Some(sys::SIGHUP) => {
                notifier.reloading();
                reload = Some(start_reload(running.reloader(), false)?);
            }
            Some(_) => {
                if reload.is_some() {
                    crate::log!(Warning, "stopping: the reload in progress is abandoned");
                }
                notifier.stopping();
                running.shutdown()?;
                crate::log!(Info, "stopped");
                return Ok(());
            }
        }
        let finished = match reload.as_ref().map(Receiver::try_recv) {
            None | Some(Err(TryRecvError::Empty)) => continue,
            Some(Ok(outcome)) => Some(outcome),
            Some(Err(TryRecvError::Disconnected)) => None,
        };
        let status = report(finished, &running, dump);
        if std::mem::take(&mut again) {
            reload = Some(start_reload(running.reloader(), false)?);
        } else {
            reload = None;
            notifier.ready(&status);
        }
    }
}

/// Logs how a reload ended (`None`: its thread died) and returns the status for systemd.
fn report(outcome: Option<Outcome>, running: &Running, dump: &Path) -> String {
    match outcome {
        Some(Ok(done)) => {
            crate::log!(Info, "reloaded {}: {done}", dump.display());
            format!("serving {} apps, serial {}", done.apps, done.serial)
        }
        failed => {
            let error = match failed {
                Some(Err(error)) => error.to_string(),
                _ => "the reload thread died".to_owned(),
            };
            let serving = running.snapshot();
            crate::log!(
                Error,
                "reload failed, still serving serial {}: {error}",
                serving.serial
            );
            format!(
                "reload failed, serving {} apps, serial {}: {error}",
                serving.app_count(),
                serving.serial
            )
        }
    }
}

/// Starts a reload on its own thread; its outcome arrives on the receiver.
fn start_reload(reloader: Arc<Reloader>, force: bool) -> io::Result<Receiver<Outcome>> {
    let (outcome, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("cnamed-reload".into())
        .spawn(move || {
            let _ = outcome.send(reload_in_idle_time(&reloader, force));
        })?;
    Ok(receiver)
}

/// Loads waiting for idle time that a reload has already given up on (see below): while one
/// is, the next reload waits out the grace and loads at normal priority without starting
/// another, so that they cannot pile up on a saturated box.
static IDLE_LOADERS: AtomicUsize = AtomicUsize::new(0);

/// Reloads, first in the workers' idle time only (a loader thread at SCHED_IDLE), so that
/// parsing a dump on a core shared with a worker does not delay queries. A box saturated for
/// longer than `IDLE_RELOAD_GRACE` has no idle time: the loader is then raised to normal
/// priority, or, where that is refused (leaving SCHED_IDLE needs CAP_SYS_NICE, which the
/// shipped unit does not give), this thread, at normal priority, loads again and installs its
/// load; the idle loader's, if it ever comes, is dropped. New mappings always arrive,
/// privileged or not.
fn reload_in_idle_time(reloader: &Arc<Reloader>, force: bool) -> Outcome {
    reloader.attempted();
    if IDLE_LOADERS.load(Ordering::Relaxed) > 0 {
        // The box has had no idle time since: give it the same grace, then load at normal
        // priority, so that saturated reloads come at most one per grace period.
        std::thread::sleep(IDLE_RELOAD_GRACE);
        return reloader.install(reloader.load(), force);
    }
    let (loaded, first) = mpsc::channel();
    let (started, thread) = mpsc::channel();
    let idle_loader = {
        let reloader = Arc::clone(reloader);
        move || {
            IDLE_LOADERS.fetch_add(1, Ordering::Relaxed);
            let _ = started.send(sys::current_thread());
            if let Err(error) = sys::set_thread_idle(sys::current_thread(), true) {
                crate::log!(
                    Warning,
                    "reload at normal priority: SCHED_IDLE refused: {error}"
                );
            }
            // A receiver gone means the reload went on without this load: it is dropped.
            let _ = loaded.send(reloader.load());
            IDLE_LOADERS.fetch_sub(1, Ordering::Relaxed);
        }
    };
    if std::thread::Builder::new()
        .name("cnamed-load-idle".into())
        .spawn(idle_loader)
        .is_err()
    {
        return reloader.install(reloader.load(), force);
    }
    // Disconnected: the loader died without a result.
    match first.recv_timeout(IDLE_RELOAD_GRACE) {
        Ok(result) => return reloader.install(result, force),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return reloader.install(reloader.load(), force)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }
    let raised = thread
        .recv()
        .map_err(|_| io::Error::other("the loader is gone"))
        .and_then(|thread| sys::set_thread_idle(thread, false));
    if let Err(error) = raised {
        crate::log!(
            Warning,
            "reload: no idle time for {} s and normal priority refused ({error}): loading again at normal priority",
            IDLE_RELOAD_GRACE.as_secs()
        );
        // This thread runs at normal priority: the load happens here.
        return reloader.install(reloader.load(), force);
    }
    match first.recv() {
        Ok(result) => reloader.install(result, force),
        Err(_) => reloader.install(reloader.load(), force),
    }
}
