//! The main loop and the reload policy. The loop blocks on its inputs, typed events
//! (events.rs): reloads asked for by SIGHUP, a NOTIFY, the refresh timer or a control client;
//! the end of the reload running; SIGTERM and SIGINT, which stop. Signals are blocked in
//! every thread and taken by one thread that turns them into events, outside any handler;
//! workers only see the snapshot swapped and, at the end, the shutdown flag.
//!
//! A reload runs on a thread of its own, so the loop keeps taking events: a stop starts the
//! graceful stop at once, whatever the reload is doing (a dump on a hung file system or a
//! FIFO nobody writes is abandoned), and reloads asked for during a reload make at most one
//! more reload, started when it ends: each request is answered by the first reload that
//! started after it came (forced if any request in it asked for force).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::{
    self, Event, Events, Notified, Reason, ReloadOutcome, ReloadRequest, ReportOnDrop,
};
use super::http::Health;
use super::reloaded::{ReloadError, Reloaded};
use super::running::{Reloader, Running};
use super::status::StatusBoard;
use super::systemd::Notifier;
use crate::snapshot::guard::serial_is_newer;
use crate::sys;

/// How long a reload may wait for idle CPU before it takes its fair share.
const IDLE_RELOAD_GRACE: Duration = Duration::from_secs(5);

/// Blocks the server's signals in this thread and every thread it spawns afterwards: call it
/// before any worker exists, so that only the thread of `events::forward_signals` sees them.
pub(super) fn block() -> io::Result<()> {
    sys::block_signals(&sys::SERVER_SIGNALS)
}

/// Who a reload is for: a signal or the timer, NOTIFYs, control clients waiting for its
/// answer, or several of them.
#[derive(Default)]
struct Askers {
    /// SIGHUP or the refresh timer.
    signalled: bool,
    notified: Option<Notifies>,
    requests: Vec<ReloadRequest>,
}

/// The NOTIFYs a refresh answers: the first, how many, and whether one announced a serial
/// newer than both the one served and the primary's last (then the refresh starts at once).
struct Notifies {
    first: Notified,
    count: u64,
    urgent: Option<u32>,
}

impl Askers {
    /// Adds who asks; a NOTIFY is urgent when its serial is newer than the one served (the
    /// worker's judgement) and than `primary_serial`, the primary's last.
    fn add(&mut self, reason: Reason, primary_serial: u32) {
        match reason {
            Reason::Control(request) => self.requests.push(request),
            Reason::Hangup | Reason::RefreshTimer => self.signalled = true,
            Reason::Notify(notified) => {
                let notifies = self.notified.get_or_insert(Notifies {
                    first: notified,
                    count: 0,
                    urgent: None,
                });
                notifies.count += 1;
                let newer = |serial| serial_is_newer(serial, primary_serial);
                if notified.newer && notified.serial.is_some_and(newer) {
                    notifies.urgent = notified.serial;
                }
            }
        }
    }

    fn any(&self) -> bool {
        self.signalled || self.notified.is_some() || !self.requests.is_empty()
    }

    /// Whether the reload may start now: at once for the operator, the timer and a NOTIFY
    /// of a newer serial; any other NOTIFY waits for `earliest`.
    fn due(&self, earliest: Instant) -> bool {
        let urgent = self.notified.as_ref().is_some_and(|n| n.urgent.is_some());
        self.signalled || !self.requests.is_empty() || urgent || Instant::now() >= earliest
    }

    fn force(&self) -> bool {
        self.requests.iter().any(ReloadRequest::force)
    }

    /// Logs the NOTIFYs this reload answers, once for all of them.
    fn log_notifies(&self) {
        let Some(notifies) = &self.notified else {
            return;
        };
        let from = notifies.first.from;
        let more = match notifies.count {
            1 => String::new(),
            n => format!(" ({n} NOTIFYs since the last refresh)"),
        };
        match notifies.urgent {
            Some(serial) => crate::log!(
                Info,
                "NOTIFY from {from} announces serial {serial}: refreshing from the primaries{more}"
            ),
            None => crate::log!(
                Info,
                "NOTIFY from {from}: refreshing from the primaries{more}"
            ),
        }
    }

    fn answer(self, line: &str) {
        for request in self.requests {
            request.answer(line);
        }
    }
}

/// What the loop works with besides the workers.
pub(super) struct Control<'a> {
    pub(super) health: &'a Health,
    pub(super) notifier: &'a Notifier,
    pub(super) dump: &'a Path,
    pub(super) board: Arc<StatusBoard>,
}

/// Reloads when asked (see [`Reason`]), logging the outcome, answering control clients and
/// telling systemd; returns after stopping the workers on SIGTERM or SIGINT.
pub(super) fn handle_until_stop(mut running: Running, control: Control<'_>) -> io::Result<()> {
    let Control {
        health,
        notifier,
        dump,
        board,
    } = control;
    let inbox = running
        .inbox
        .take()
        .ok_or_else(|| io::Error::other("the main loop runs once"))?;
    let events = running.reloader.shared.events.clone();
    events::forward_signals(events.clone())?;
    let secondary = running.reloader.secondary.clone();
    // A secondary's refreshes that no operator, timer or newer serial asked for start at
    // most once per `--min-refresh`, counted from the start of the previous one (the
    // start-up transfer the first).
    let min_refresh = secondary.as_ref().map_or(Duration::ZERO, |s| s.min_refresh);
    let mut last_refresh = Instant::now();
    // Who the reload running is for, if one is; who the next one is for.
    let mut running_for: Option<Askers> = None;
    let mut next = Askers::default();
    loop {
        // A deferred refresh waits for its time, or for an event that makes it due.
        let deferred = running_for.is_none() && next.any();
        let event = match deferred {
            true => match inbox.recv_timeout(
                (last_refresh + min_refresh).saturating_duration_since(Instant::now()),
            ) {
                Ok(event) => Some(event),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::other("the event channel closed"))
                }
            },
            // Every sender but ours gone cannot happen while we hold `events`.
            false => Some(
                inbox
                    .recv()
                    .map_err(|_| io::Error::other("the event channel closed"))?,
            ),
        };
        // A reload just ended with another to follow: systemd still sees one reload.
        let mut chained = false;
        match event {
            None => {}
            Some(Event::Reload(reason)) => {
                let primary_serial = secondary
                    .as_ref()
                    .map_or(0, |s| s.primary_serial.load(Ordering::Relaxed) as u32);
                next.add(reason, primary_serial);
            }
            Some(Event::Reloaded(outcome)) => {
                let (status, line) = report(outcome, &running, dump);
                board.record_reload(&line);
                if let Some(askers) = running_for.take() {
                    askers.answer(&line);
                }
                chained = next.any() && next.due(last_refresh + min_refresh);
                if !chained {
                    notifier.ready(&status);
                }
            }
            Some(Event::Stop) => {
                if running_for.is_some() {
                    crate::log!(Warning, "stopping: the reload in progress is abandoned");
                }
                notifier.stopping();
                health.stopping();
                let mut waiting = running_for
                    .map(|askers| askers.requests)
                    .unwrap_or_default();
                waiting.append(&mut next.requests);
                answer_stopping(waiting, &inbox);
                running.shutdown()?;
                crate::log!(Info, "stopped");
                return Ok(());
            }
        }
        if running_for.is_none() && next.any() && next.due(last_refresh + min_refresh) {
            let askers = std::mem::take(&mut next);
            if !chained {
                notifier.reloading();
            }
            askers.log_notifies();
            events.notifies_taken();
            last_refresh = Instant::now();
            start_reload(running.reloader(), askers.force(), events.clone())?;
            running_for = Some(askers);
        }
    }
}

/// Tells the control clients `waiting`, and those whose requests are still in `inbox`,
/// that no reload will answer them.
fn answer_stopping(mut waiting: Vec<ReloadRequest>, inbox: &Receiver<Event>) {
    while let Ok(event) = inbox.try_recv() {
        if let Event::Reload(Reason::Control(request)) = event {
            waiting.push(request);
        }
    }
    for request in waiting {
        request.answer("failed: the server is stopping");
    }
}

/// Logs how a reload ended (`None`: its thread died); returns the status for systemd and the
/// answer line for control clients.
fn report(outcome: ReloadOutcome, running: &Running, dump: &Path) -> (String, String) {
    match outcome {
        Some(Ok(done)) => {
            let source = match running.reloader.primaries.is_empty() {
                true => dump.display().to_string(),
                false => "from the primaries".to_owned(),
            };
            crate::log!(Info, "reloaded {source}: {done}");
            let status = format!("serving {} apps, serial {}", done.apps, done.serial);
            let line = if done.unchanged() {
                done.to_string()
            } else {
                format!("reloaded: {done}")
            };
            (status, line)
        }
        failed => {
            let error = match failed {
                Some(Err(error)) => error,
                _ => ReloadError::Died,
            };
            let serving = running.snapshot();
            let what = match running.reloader.primaries.is_empty() {
                true => "reload",
                false => "refresh from the primaries",
            };
            crate::log!(
                Error,
                "{what} failed, still serving serial {}: {error}",
                serving.serial
            );
            let status = format!(
                "reload failed, serving {} apps, serial {}: {error}",
                serving.app_count(),
                serving.serial
            );
            let line = match error {
                ReloadError::Refused(_) => {
                    format!("{error}; still serving serial {}", serving.serial)
                }
                _ => format!("failed: {error}; still serving serial {}", serving.serial),
            };
            (status, line)
        }
    }
}

/// Starts a reload on its own thread; its outcome arrives as [`Event::Reloaded`], even if
/// the thread dies.
fn start_reload(reloader: Arc<Reloader>, force: bool, events: Events) -> io::Result<()> {
    std::thread::Builder::new()
        .name("cnamed-reload".into())
        .spawn(move || {
            let mut report = ReportOnDrop::new(events);
            let started = reloader.attempted();
            let outcome = reload_in_idle_time(&reloader, force);
            reloader.stats.reload_seconds.observe(started.elapsed());
            report.set(outcome);
        })?;
    Ok(())
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
/// privileged or not. A secondary's refreshes skip the idle wait (see below).
fn reload_in_idle_time(reloader: &Arc<Reloader>, force: bool) -> Result<Reloaded, ReloadError> {
    if !reloader.primaries.is_empty() {
        // A secondary's refresh is mostly an IXFR of a few changes applied in milliseconds,
        // and its deadline is the fleet's: waiting for idle time on a saturated edge would
        // hold a change back for the whole grace period.
        return reloader.install(reloader.load(), force);
    }
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
