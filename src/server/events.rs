//! The control loop's inputs, as typed messages on one channel: a reload asked for (by a
//! signal, a NOTIFY, the refresh timer or a control client, which waits for the answer), a
//! reload finished, or a stop. The loop (`signals.rs`) blocks on the channel and wakes only
//! for these; signals from outside reach it through a thread that turns them into events.
//!
//! The channel is bounded and its slots are allocated once, so a worker can post a NOTIFY's
//! refresh without allocating or blocking ([`Events::try_send`]): when it is full, reloads
//! are already waiting, and the refresh they make covers the NOTIFY.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;

use mio::Waker;

use super::reloaded::{ReloadError, Reloaded};
use crate::sys;

/// Events that may wait for the loop; beyond them, a worker's NOTIFY is covered by those.
const CAPACITY: usize = 64;

/// How a reload ended; `None`: its thread died without saying.
pub(super) type ReloadOutcome = Option<Result<Reloaded, ReloadError>>;

/// What the control loop is asked.
pub(crate) enum Event {
    /// Reload the mapping (a secondary refreshes from its primaries), for this reason.
    Reload(Reason),
    /// The reload running has ended.
    Reloaded(ReloadOutcome),
    /// SIGTERM or SIGINT: stop gracefully.
    Stop,
}

/// Why a reload is asked for.
pub(crate) enum Reason {
    /// SIGHUP, from the operator or systemd.
    Hangup,
    /// A NOTIFY from one of our primaries, accepted.
    Notify(Notified),
    /// The secondary's SOA timer (REFRESH or RETRY) ran out.
    RefreshTimer,
    /// A control client, waiting for the answer.
    Control(ReloadRequest),
}

/// An accepted NOTIFY: who sent it, and the serial it announced (RFC 1996 §3.7), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Notified {
    pub(crate) from: IpAddr,
    pub(crate) serial: Option<u32>,
    /// The serial is newer than the one served: refresh at once.
    pub(crate) newer: bool,
}

/// A reload asked for over the control socket, waiting for its answer.
pub(super) struct ReloadRequest {
    force: bool,
    /// The control client, by its token.
    client: usize,
    /// The control thread's inbox of answers, and its waker.
    answers: Sender<(usize, String)>,
    waker: Arc<Waker>,
}

impl ReloadRequest {
    /// A reload for control client `client`, answered through `answers` and `waker`.
    pub(super) fn new(
        force: bool,
        client: usize,
        answers: Sender<(usize, String)>,
        waker: Arc<Waker>,
    ) -> Self {
        Self {
            force,
            client,
            answers,
            waker,
        }
    }

    pub(super) fn force(&self) -> bool {
        self.force
    }

    /// Sends the client its answer line. A client gone meanwhile loses nothing.
    pub(super) fn answer(self, line: &str) {
        let _ = self.answers.send((self.client, line.to_owned()));
        let _ = self.waker.wake();
    }
}

/// A sender of events to the control loop; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Events {
    sender: SyncSender<Event>,
    /// A NOTIFY without a newer serial is waiting for the loop: others like it add nothing
    /// (a flood of them, forged or not, costs one event), until the loop takes it.
    notify_pending: Arc<AtomicBool>,
}

impl Events {
    /// Posts an accepted NOTIFY, for the workers: never blocks or allocates. One announcing
    /// a newer serial always goes; any other only if none is waiting already.
    pub(crate) fn notify(&self, notified: Notified) -> bool {
        if !notified.newer && self.notify_pending.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.try_send(Event::Reload(Reason::Notify(notified)))
    }

    /// The loop has taken the waiting NOTIFYs into a refresh: the next one is news.
    pub(crate) fn notifies_taken(&self) {
        self.notify_pending.store(false, Ordering::Release);
    }

    /// Posts `event` unless the channel is full or the loop is gone; never blocks or
    /// allocates, for the workers. Returns whether it was posted.
    pub(crate) fn try_send(&self, event: Event) -> bool {
        match self.sender.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Posts `event`, waiting while the loop catches up; `false` once the loop is gone.
    pub(crate) fn send(&self, event: Event) -> bool {
        self.sender.send(event).is_ok()
    }
}

/// A new channel: the senders, and the loop's end.
pub(crate) fn channel() -> (Events, Receiver<Event>) {
    let (sender, receiver) = mpsc::sync_channel(CAPACITY);
    let events = Events {
        sender,
        notify_pending: Arc::new(AtomicBool::new(false)),
    };
    (events, receiver)
}

/// Turns the server's signals into events, on a thread of its own: SIGHUP reloads, SIGTERM
/// and SIGINT stop, SIGUSR1 is taken and ignored (its default action would end the
/// process). The signals must already be blocked in every thread (`main_loop::block`). The
/// thread ends once the loop is gone.
pub(super) fn forward_signals(events: Events) -> io::Result<()> {
    std::thread::Builder::new()
        .name("cnamed-signals".into())
        .spawn(move || loop {
            let event = match sys::wait_for_signal(&sys::SERVER_SIGNALS) {
                Ok(sys::SIGHUP) => Event::Reload(Reason::Hangup),
                Ok(sys::SIGTERM | sys::SIGINT) => Event::Stop,
                Ok(_) => continue,
                Err(error) => {
                    crate::log!(Error, "cannot wait for signals: {error}; stopping");
                    Event::Stop
                }
            };
            let stop = matches!(event, Event::Stop);
            if !events.send(event) || stop {
                return;
            }
        })?;
    Ok(())
}

/// Sends the reload's outcome when dropped, so that the loop hears of a reload thread that
/// panicked too (as `None`).
pub(super) struct ReportOnDrop {
    events: Events,
    outcome: ReloadOutcome,
}

impl ReportOnDrop {
    pub(super) fn new(events: Events) -> Self {
        Self {
            events,
            outcome: None,
        }
    }

    pub(super) fn set(&mut self, outcome: Result<Reloaded, ReloadError>) {
        self.outcome = Some(outcome);
    }
}

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        self.events.send(Event::Reloaded(self.outcome.take()));
    }
}
