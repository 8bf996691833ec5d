//! The control socket (`--control PATH`): the server side of [`crate::control`], on a thread
//! of its own with its own event loop, like the metrics endpoint.
//!
//! A status is answered here, from the [`StatusBoard`]. A reload request goes to the main
//! loop, which owns the reload policy, as an event that carries the way back; the loop
//! answers each request when the reload it joined is over, through a channel and this
//! loop's waker.
//! Clients are served concurrently: one that says nothing is closed after
//! `REQUEST_DEADLINE`, one that sends garbage gets an error line, and neither holds up
//! anyone else. A client waiting for a reload that hangs up is dropped at once; one still
//! waiting at its deadline (longer than the longest reload, see [`wait_deadline`]) is told
//! so; and waiting clients never take the last `STATUS_SLOTS` slots, so `status` always
//! gets an answer.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::events::{Event, Events as EventSender, Reason, ReloadRequest};
use super::status::StatusBoard;
use crate::control::{Request, MAX_REQUEST};
use crate::sys;

/// Clients served at once; one more closes the oldest that is not waiting for a reload.
const MAX_CLIENTS: usize = 32;
/// Slots that clients waiting for a reload never take: kept for `status`.
const STATUS_SLOTS: usize = 4;
/// The longest a dump reload may take to answer: the wait for idle time (5 s), then a load
/// of the largest dumps (100M apps load in about a minute), with room to spare.
const DUMP_RELOAD_WAIT: Duration = Duration::from_secs(600);
/// A client must send its request, and take its answer, within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The socket's mode: the service's user and group (a deploy job in the group) may connect.
const SOCKET_MODE: u32 = 0o660;
const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CLIENT: usize = 2;
/// Reads of one client per event, at most.
const MAX_READS: usize = 16;

/// The socket file, removed when this is dropped (at exit).
pub(super) struct SocketFile(PathBuf);

impl SocketFile {
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds the control socket at `path` with mode 0660. A socket file left by a server that
/// is gone is replaced; one that a running server answers on is not, and a file that is not
/// a socket (a typo naming the dump) is never touched: the server refuses to start.
pub(super) fn bind(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    let with_path = |error: io::Error| {
        io::Error::new(
            error.kind(),
            format!("control socket {}: {error}", path.display()),
        )
    };
    // Created with the mode asked for (the mask clears the rest), so that no one outside the
    // group can connect between bind and chmod.
    let bind = || sys::with_umask(0o777 & !SOCKET_MODE, || UnixListener::bind(path));
    let listener = match bind() {
        Ok(listener) => listener,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket());
            if !is_socket {
                return Err(with_path(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is there; not replacing it",
                )));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(with_path(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another server is answering on it",
                )));
            }
            std::fs::remove_file(path).map_err(with_path)?;
            bind().map_err(with_path)?
        }
        Err(error) => return Err(with_path(error)),
    };
    let file = SocketFile(path.to_owned());
    // Already so, unless a default ACL of the directory widened it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(with_path)?;
    Ok((listener, file))
}

/// How long a client may wait for a reload's answer: longer than the longest reload. A dump
/// reload: `DUMP_RELOAD_WAIT`. A secondary's refresh asks each primary at most twice (IXFR,
/// then AXFR), each transfer within `max_transfer_time_in`: twice that per primary, and a
/// minute more.
pub(super) fn wait_deadline(primaries: usize, max_transfer_time_in: Duration) -> Duration {
    let transfers = u32::try_from(2 * primaries).unwrap_or(u32::MAX);
    let refresh = max_transfer_time_in.saturating_mul(transfers) + Duration::from_secs(60);
    DUMP_RELOAD_WAIT.max(refresh)
}

/// Serves the control socket until the process exits. Reload requests go to the main loop
/// as events, with the way back for their answers; a client waits for one at most
/// `wait_deadline`.
pub(super) fn spawn(
    mut listener: UnixListener,
    events: EventSender,
    board: Arc<StatusBoard>,
    wait_deadline: Duration,
) -> io::Result<()> {
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (answers, answered) = mpsc::channel();
    let mut server = ControlServer {
        poll,
        listener,
        waker,
        answers,
        answered,
        clients: HashMap::new(),
        next_id: FIRST_CLIENT,
        events,
        board,
        wait_deadline,
    };
    std::thread::Builder::new()
        .name("cnamed-control".into())
        .spawn(move || {
            // Errors of poll itself are not expected; the channel then stops, DNS does not.
            if let Err(error) = server.run() {
                crate::log!(Error, "control socket stopped: {error}");
            }
        })?;
    Ok(())
}

enum Phase {
    /// Reading the request line.
    Reading(Vec<u8>),
    /// A reload is running for it.
    Waiting,
    /// Sending the answer: bytes and how many are sent.
    Writing(Vec<u8>, usize),
}

struct Client {
    stream: UnixStream,
    phase: Phase,
    /// When the client is closed, or (waiting for a reload) told it waited too long.
    deadline: Instant,
    accepted: Instant,
}

struct ControlServer {
    poll: Poll,
    listener: UnixListener,
    waker: Arc<Waker>,
    answers: Sender<(usize, String)>,
    answered: Receiver<(usize, String)>,
    /// By token: ids are never reused, so a late answer cannot reach another client.
    clients: HashMap<usize, Client>,
    next_id: usize,
    /// The main loop's inputs.
    events: EventSender,
    board: Arc<StatusBoard>,
    /// How long a client may wait for a reload's answer.
    wait_deadline: Duration,
}

impl ControlServer {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let next = self.clients.values().map(|c| c.deadline).min();
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.deliver(),
                    Token(id) => self.drive(id),
                }
            }
            let now = Instant::now();
            let overdue: Vec<usize> = self
                .clients
                .iter()
                .filter(|(_, c)| matches!(c.phase, Phase::Waiting) && c.deadline <= now)
                .map(|(&id, _)| id)
                .collect();
            for id in overdue {
                self.answer_overdue(id);
            }
            self.clients.retain(|_, c| c.deadline > now);
        }
    }

    /// Tells a client that waited `wait_deadline` for a reload that it gets no answer.
    fn answer_overdue(&mut self, id: usize) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let line = format!(
            "failed: no answer within {} s; the reload goes on (see cnamed status)\n",
            self.wait_deadline.as_secs()
        );
        client.phase = Phase::Writing(line.into_bytes(), 0);
        client.deadline = Instant::now() + REQUEST_DEADLINE;
        self.drive(id);
    }

    fn waiting(&self) -> usize {
        let waiting = self.clients.values();
        waiting
            .filter(|c| matches!(c.phase, Phase::Waiting))
            .count()
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // EMFILE and the like: the client retries; the next one raises an event.
                Err(_) => return,
            };
            if self.clients.len() >= MAX_CLIENTS {
                // Waiting clients leave `STATUS_SLOTS` at least: there is one to close.
                let oldest = self
                    .clients
                    .iter()
                    .filter(|(_, c)| !matches!(c.phase, Phase::Waiting))
                    .min_by_key(|(_, c)| c.accepted)
                    .map(|(&id, _)| id);
                match oldest {
                    Some(id) => drop(self.clients.remove(&id)),
                    None => continue,
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(id), interest)
                .is_err()
            {
                continue;
            }
            let now = Instant::now();
            self.clients.insert(
                id,
                Client {
                    stream,
                    phase: Phase::Reading(Vec::new()),
                    deadline: now + REQUEST_DEADLINE,
                    accepted: now,
                },
            );
            self.drive(id);
        }
    }

    /// Hands the signal loop's answers to their clients.
    fn deliver(&mut self) {
        while let Ok((id, line)) = self.answered.try_recv() {
            if let Some(client) = self.clients.get_mut(&id) {
                client.phase = Phase::Writing(format!("{line}\n").into_bytes(), 0);
                client.deadline = Instant::now() + REQUEST_DEADLINE;
                self.drive(id);
            }
        }
    }

    /// Moves a client on as far as its socket allows; closes it when it is done or failed,
    /// or when it hangs up while waiting for a reload.
    fn drive(&mut self, id: usize) {
        let waiting = self.waiting();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if matches!(client.phase, Phase::Waiting) {
            if client.hung_up() {
                self.clients.remove(&id);
            }
            return;
        }
        let Ok(request) = client.read_request() else {
            self.clients.remove(&id);
            return;
        };
        if let Some(request) = request {
            let answer = match request {
                Ok(Request::Reload { .. }) if waiting >= MAX_CLIENTS - STATUS_SLOTS => Some(
                    format!("failed: {waiting} clients wait for a reload already; ask again later"),
                ),
                Ok(Request::Reload { force }) => {
                    client.phase = Phase::Waiting;
                    client.deadline = Instant::now() + self.wait_deadline;
                    let answers = self.answers.clone();
                    let request = ReloadRequest::new(force, id, answers, Arc::clone(&self.waker));
                    match self.events.send(Event::Reload(Reason::Control(request))) {
                        true => None,
                        false => Some("failed: the server is stopping".to_owned()),
                    }
                }
                Ok(Request::Status { json: false }) => Some(self.board.text()),
                Ok(Request::Status { json: true }) => Some(self.board.json()),
                Err(why) => Some(format!("error: {why}\n")),
            };
            if let Some(mut answer) = answer {
                if !answer.ends_with('\n') {
                    answer.push('\n');
                }
                client.phase = Phase::Writing(answer.into_bytes(), 0);
            }
        }
        if client.write_answer().is_err() {
            self.clients.remove(&id);
        }
    }
}

impl Client {
    /// Whether a client waiting for a reload has gone: its end is closed (what it sends
    /// meanwhile is dropped).
    fn hung_up(&mut self) -> bool {
        let mut sink = [0; MAX_REQUEST];
        for _ in 0..MAX_READS {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Reads until a whole request line is in: `Some` once it is (or once it cannot be one),
    /// `None` while more is to come. An error closes the connection.
    fn read_request(&mut self) -> io::Result<Option<Result<Request, String>>> {
        let Phase::Reading(buffer) = &mut self.phase else {
            return Ok(None);
        };
        let mut chunk = [0; MAX_REQUEST];
        // Everything the client has sent is read, the excess of an overlong line discarded:
        // closing a Unix socket with unread data resets it, and the client would lose the
        // answer. A client that never stops sending is cut off after a few reads.
        for _ in 0..MAX_READS {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    let room = (MAX_REQUEST + 1).saturating_sub(buffer.len());
                    buffer.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let known = Request::parse(&buffer[..end]);
            return Ok(Some(known.ok_or_else(|| {
                "unknown request (reload, reload force, status, status json)".to_owned()
            })));
        }
        if buffer.len() > MAX_REQUEST {
            return Ok(Some(Err("request line too long".to_owned())));
        }
        Ok(None)
    }

    /// Writes what is left of the answer. Done is an error too: the connection closes.
    fn write_answer(&mut self) -> io::Result<()> {
        let Phase::Writing(bytes, sent) = &mut self.phase else {
            return Ok(());
        };
        if !super::write_pending(&mut self.stream, bytes, sent)? {
            return Ok(());
        }
        Err(io::ErrorKind::ConnectionAborted.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump reload gets ten minutes; a secondary's refresh twice the transfer limit per
    /// primary (IXFR then AXFR), and a minute more, when that is longer.
    #[test]
    fn clients_wait_longer_than_the_longest_reload() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(wait_deadline(0, minutes(10)), minutes(10));
        assert_eq!(wait_deadline(1, minutes(1)), minutes(10));
        assert_eq!(wait_deadline(2, minutes(10)), minutes(41));
    }
}
