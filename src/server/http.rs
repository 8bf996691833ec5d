//! The metrics endpoint: a minimal HTTP/1.1 server for `GET /metrics`, and the probes
//! `/health` and `/ready` (and `HEAD` of each), on a thread of its own with its own event
//! loop. It starts before the dump is loaded, so that the probes can say "starting". Clients are served concurrently, up to
//! `MAX_CLIENTS` (one more closes the oldest), and each gets `REQUEST_DEADLINE` for its whole
//! exchange, so that slow or idle clients cannot hold a scrape up. Nothing here touches the
//! workers beyond reading their counters.

use std::io::{self, Read};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::metrics::Metrics;

/// A request head larger than this is refused.
const MAX_REQUEST: usize = 8192;
/// Connections served at once; one more closes the one that has waited longest.
const MAX_CLIENTS: usize = 128;
/// A client's whole exchange, request and response, must fit in this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
const LISTENER: Token = Token(usize::MAX);
/// After an accept fails (EMFILE), how long until it is tried again: the listener is
/// edge-triggered, so connections already queued raise no new event.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

const STARTING: u8 = 0;
const SERVING: u8 = 1;
const STOPPING: u8 = 2;

/// What the probes report, set by the server as it starts and stops.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
    /// The workers' counters, once they run.
    metrics: OnceLock<Metrics>,
}

impl Health {
    /// The workers run with a snapshot: ready.
    pub fn serving(&self, metrics: Metrics) {
        let _ = self.metrics.set(metrics);
        self.phase.store(SERVING, Ordering::Release);
    }

    /// Shutting down: not ready any more (workers drain their TCP answers meanwhile).
    pub fn stopping(&self) {
        self.phase.store(STOPPING, Ordering::Release);
    }

    /// `/health`: the workers run (all of them).
    fn healthy(&self) -> bool {
        self.phase.load(Ordering::Acquire) != STARTING
            && self.metrics.get().is_some_and(Metrics::all_workers_running)
    }

    /// `/ready`: healthy, serving a snapshot that has apps and not stopping, and for a
    /// secondary, its zone not expired (whatever `--on-expire` answers, an expired edge
    /// should not be preferred). An empty snapshot (a placeholder dump, an empty export)
    /// answers NXDOMAIN for every app: serving, not ready.
    fn ready(&self) -> bool {
        self.phase.load(Ordering::Acquire) == SERVING
            && self.healthy()
            && !self.expired()
            && !self.empty()
    }

    /// The snapshot served holds no apps.
    fn empty(&self) -> bool {
        self.metrics
            .get()
            .is_some_and(|metrics| metrics.stats.apps.get() == 0)
    }

    /// A secondary whose zone has expired.
    fn expired(&self) -> bool {
        self.metrics
            .get()
            .and_then(|metrics| metrics.secondary.as_ref())
            .is_some_and(|secondary| secondary.expired.load(Ordering::Relaxed))
    }
}

/// Serves the metrics and the probes on `listener` until the process exits.
pub fn spawn(listener: TcpListener, health: Arc<Health>) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    std::thread::Builder::new()
        .name("cnamed-metrics".into())
        .spawn(move || {
            let mut server = HttpServer {
                poll,
                listener,
                clients: Vec::new(),
                retry_accept: None,
                health,
            };
            // Errors of poll itself are not expected; the endpoint then stops, DNS does not.
            let _ = server.run();
        })
}

struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    /// The response once the request is complete, and how much of it is sent.
    response: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

struct HttpServer {
    poll: Poll,
    listener: mio::net::TcpListener,
    /// Slots indexed by token.
    clients: Vec<Option<Client>>,
    /// When to accept again after a failed accept.
    retry_accept: Option<Instant>,
    health: Arc<Health>,
}

impl HttpServer {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            let next = self.clients.iter().flatten().map(|c| c.deadline);
            let next = next.chain(self.retry_accept).min();
            let timeout = next.map(|at| at.saturating_duration_since(now));
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    Token(index) => self.drive(index),
                }
            }
            let now = Instant::now();
            if self.retry_accept.is_some_and(|at| at <= now) {
                self.accept();
            }
            for slot in &mut self.clients {
                if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                    *slot = None;
                }
            }
        }
    }

    fn accept(&mut self) {
        self.retry_accept = None;
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.retry_accept = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            };
            let open = self.clients.iter().flatten().count();
            if open >= MAX_CLIENTS {
                let oldest = self
                    .clients
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.as_ref().map(|c| (c.deadline, i)))
                    .min();
                if let Some((_, i)) = oldest {
                    self.clients[i] = None;
                }
            }
            let index = match self.clients.iter().position(Option::is_none) {
                Some(index) => index,
                None => {
                    self.clients.push(None);
                    self.clients.len() - 1
                }
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(index), interest)
                .is_err()
            {
                continue;
            }
            self.clients[index] = Some(Client {
                stream,
                request: Vec::new(),
                response: None,
                deadline: Instant::now() + REQUEST_DEADLINE,
            });
            self.drive(index);
        }
    }

    /// Reads, answers and writes until the socket would block; closes a client whose
    /// exchange is over or failed.
    fn drive(&mut self, index: usize) {
        let Some(Some(client)) = self.clients.get_mut(index) else {
            return;
        };
        if client.drive(&self.health).is_err() {
            self.clients[index] = None;
        }
    }
}

impl Client {
    /// Ok while the exchange goes on; an error closes the connection (done is an error too).
    fn drive(&mut self, health: &Health) -> io::Result<()> {
        let mut chunk = [0; 1024];
        while self.response.is_none() {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.request.extend_from_slice(&chunk[..n]);
                    if self.request.windows(4).any(|w| w == b"\r\n\r\n") {
                        self.response = Some((response(&self.request, health), 0));
                    } else if self.request.len() > MAX_REQUEST {
                        let refusal = head("431 Request Header Fields Too Large", "", 0, "");
                        self.response = Some((refusal.into_bytes(), 0));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let Some((bytes, sent)) = &mut self.response else {
            return Ok(());
        };
        if !super::write_pending(&mut self.stream, bytes, sent)? {
            return Ok(());
        }
        // Sent whole: `Connection: close`.
        Err(io::ErrorKind::ConnectionAborted.into())
    }
}

/// The response to a complete request head.
fn response(request: &[u8], health: &Health) -> Vec<u8> {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let bare = |status: &str, extra: &str| head(status, "text/plain", 0, extra).into_bytes();
    // RFC 9110 §9.3.2: HEAD gets the header fields GET would, Content-Length too.
    let with_body = |status: &str, content_type: &str, body: &str| {
        let mut out = head(status, content_type, body.len(), "").into_bytes();
        if method == b"GET" {
            out.extend_from_slice(body.as_bytes());
        }
        out
    };
    let probe = |up: bool| match up {
        true => with_body("200 OK", "text/plain", "ok\n"),
        false => with_body("503 Service Unavailable", "text/plain", "unavailable\n"),
    };
    match (method, path) {
        (b"GET" | b"HEAD", Some(b"/metrics")) => match health.metrics.get() {
            Some(metrics) => with_body(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &metrics.render(),
            ),
            None => probe(false),
        },
        (b"GET" | b"HEAD", Some(b"/health")) => probe(health.healthy()),
        (b"GET" | b"HEAD", Some(b"/ready")) if health.expired() => with_body(
            "503 Service Unavailable",
            "text/plain",
            "unavailable: the zone has expired (no primary confirmed it)\n",
        ),
        (b"GET" | b"HEAD", Some(b"/ready")) if health.empty() => with_body(
            "503 Service Unavailable",
            "text/plain",
            "unavailable: the snapshot served has no apps\n",
        ),
        (b"GET" | b"HEAD", Some(b"/ready")) => probe(health.ready()),
        (b"GET" | b"HEAD", Some(_)) => bare("404 Not Found", ""),
        // RFC 9110 §15.5.6: a 405 says which methods are allowed.
        (_, Some(_)) => bare("405 Method Not Allowed", "Allow: GET, HEAD\r\n"),
        (_, None) => bare("400 Bad Request", ""),
    }
}

fn head(status: &str, content_type: &str, length: usize, extra: &str) -> String {
    let content_type = if content_type.is_empty() {
        "text/plain"
    } else {
        content_type
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
    )
}
