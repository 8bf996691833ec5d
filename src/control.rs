//! The control channel's protocol and its client: `cnamed reload` and `cnamed status` talk to
//! a running server over the Unix stream socket it serves with `--control`.
//!
//! A request is one line; the server answers and closes the connection:
//!
//! ```text
//! reload | reload force   ->  one line: "reloaded: ..." | "unchanged: ..." | "refused: ..." | "failed: ..."
//! status | status json    ->  "key: value" lines, or one JSON object
//! anything else           ->  "error: ..."
//! ```
//!
//! A reload is answered once it is over: the new snapshot is live, or it was refused.
//!
//! `cnamed wait` asks `status json` until the fleet view (its `notify_targets`) says every
//! `--notify` target serves the serial waited for.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Where `cnamed reload` and `cnamed status` look when not told: the shipped unit's
/// RuntimeDirectory.
pub const DEFAULT_SOCKET: &str = "/run/cnamed/control";
/// Longest request line the server reads.
pub const MAX_REQUEST: usize = 64;
/// How long `cnamed status` waits for its answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Reload the dump; `force` overrides the guard rails that give way.
    Reload { force: bool },
    /// Report what is served; `json` for machines.
    Status { json: bool },
}

impl Request {
    /// The request line, without its newline.
    pub fn line(self) -> &'static str {
        match self {
            Self::Reload { force: false } => "reload",
            Self::Reload { force: true } => "reload force",
            Self::Status { json: false } => "status",
            Self::Status { json: true } => "status json",
        }
    }

    /// Reads a request line (without its newline); `None` for anything else.
    pub fn parse(line: &[u8]) -> Option<Self> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        [
            Self::Reload { force: false },
            Self::Reload { force: true },
            Self::Status { json: false },
            Self::Status { json: true },
        ]
        .into_iter()
        .find(|request| request.line().as_bytes() == line)
    }
}

/// The first word of a reload answer that means the new mapping is live (or already was).
pub fn reload_succeeded(answer: &str) -> bool {
    answer.starts_with("reloaded:") || answer.starts_with("unchanged:")
}

/// Why a client got no answer.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached: no server, or no permission.
    Connect(io::Error),
    /// The connection broke, or closed before a whole answer came.
    NoAnswer(io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(error) => write!(f, "cannot reach the server: {error}"),
            Self::NoAnswer(error) => write!(f, "no answer from the server: {error}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `request` to the server at `socket` and returns its whole answer. A reload waits as
/// long as the reload takes; a status at most `STATUS_TIMEOUT`.
pub fn ask(socket: &Path, request: Request) -> Result<String, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(ClientError::Connect)?;
    let timeout = match request {
        Request::Reload { .. } => None,
        Request::Status { .. } => Some(STATUS_TIMEOUT),
    };
    let no_answer = ClientError::NoAnswer;
    stream.set_read_timeout(timeout).map_err(no_answer)?;
    writeln!(stream, "{}", request.line()).map_err(no_answer)?;
    let mut answer = String::new();
    let mut reader = BufReader::new(stream);
    loop {
        match reader.read_line(&mut answer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => return Err(no_answer(error)),
        }
    }
    if !answer.ends_with('\n') {
        return Err(no_answer(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(answer)
}

/// How often `cnamed wait` asks the server.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// How a wait for the fleet ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// Every `--notify` target serves `serial` or a newer one.
    Live { serial: u32, targets: usize },
    /// The time ran out: the targets not live at `serial`, each with what it serves.
    Behind { serial: u32, behind: Vec<String> },
    /// The server has no `--notify` targets: nothing can confirm a change is out.
    NoTargets,
}

/// Asks the server at `socket` (its status, every 20 ms) until every `--notify` target is
/// live at `serial` (default: the serial it serves when first asked), or `timeout` passes.
pub fn wait_live(
    socket: &Path,
    serial: Option<u32>,
    timeout: Duration,
) -> Result<Waited, ClientError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut wanted = serial;
    loop {
        let answer = ask(socket, Request::Status { json: true })?;
        let status: serde_json::Value = serde_json::from_str(&answer).map_err(|error| {
            ClientError::NoAnswer(io::Error::new(io::ErrorKind::InvalidData, error))
        })?;
        let serial =
            *wanted.get_or_insert_with(|| status["serial"].as_u64().unwrap_or_default() as u32);
        let Some(targets) = status["notify_targets"].as_array() else {
            return Ok(Waited::NoTargets);
        };
        let behind: Vec<String> = targets
            .iter()
            .filter(|target| {
                let seen = target["serial"].as_u64().map(|seen| seen as u32);
                !seen.is_some_and(|seen| !crate::snapshot::guard::serial_is_newer(serial, seen))
            })
            .map(|target| {
                let name = target["target"].as_str().unwrap_or("?");
                match target["serial"].as_u64() {
                    Some(seen) => format!("{name} (serial {seen})"),
                    None => format!("{name} (never answered)"),
                }
            })
            .collect();
        if behind.is_empty() {
            let targets = targets.len();
            return Ok(Waited::Live { serial, targets });
        }
        if std::time::Instant::now() >= deadline {
            return Ok(Waited::Behind { serial, behind });
        }
        std::thread::sleep(WAIT_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Reload { force: false },
            Request::Reload { force: true },
            Request::Status { json: false },
            Request::Status { json: true },
        ] {
            assert_eq!(Request::parse(request.line().as_bytes()), Some(request));
            assert!(request.line().len() < MAX_REQUEST);
        }
        assert_eq!(
            Request::parse(b"reload\r"),
            Some(Request::Reload { force: false })
        );
        for garbage in [
            &b""[..],
            b"reload --force",
            b"RELOAD",
            b"status  json",
            b"\xff",
        ] {
            assert_eq!(Request::parse(garbage), None, "{garbage:?}");
        }
    }
}
