//! Hostile TCP clients, for measuring UDP service while they run (benches/edge.sh).
//!
//!     cnamed-attack --server ADDR:PORT --mode MODE [--connections N] [--duration SECS]
//!
//! Modes:
//! - `flood`: open connections and send nothing;
//! - `half`: send half a length prefix, then nothing;
//! - `slowloris`: send a 40-byte query one byte every 100 ms;
//! - `noread`: pipeline queries as fast as the server takes them and never read an answer.
//!
//! Every connection the server closes is opened again at once, so the attack keeps its size
//! for the whole run. Prints one key=value line: connections opened, closed by the server.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cnamed::testing::QueryBuilder;

/// How often every connection is looked at.
const TICK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flood,
    Half,
    Slowloris,
    NoRead,
}

struct Attacker {
    stream: TcpStream,
    /// Bytes of `payload` sent so far.
    sent: usize,
}

fn query_frame(id: u16) -> Vec<u8> {
    QueryBuilder::new("ws-123456.apps.example.com", 1)
        .id(id)
        .frame()
}

fn connect(server: SocketAddr, mode: Mode) -> std::io::Result<Attacker> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::STREAM,
        None,
    )?;
    if mode == Mode::NoRead {
        // A small window: unread answers back up into the server, not into our kernel.
        socket.set_recv_buffer_size(4096)?;
    }
    socket.connect_timeout(&server.into(), Duration::from_secs(1))?;
    let stream: TcpStream = socket.into();
    stream.set_nonblocking(true)?;
    Ok(Attacker { stream, sent: 0 })
}

/// Whether the server has closed the connection (EOF or reset); reads nothing else.
fn closed(stream: &mut TcpStream, mode: Mode) -> bool {
    if mode == Mode::NoRead {
        // Reading would be reading answers. A write error tells instead.
        return false;
    }
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// Sends this tick's share; returns false if the connection is gone.
fn push(attacker: &mut Attacker, mode: Mode, payload: &[u8]) -> bool {
    let chunk = match mode {
        Mode::Flood => return true,
        Mode::Half if attacker.sent >= 1 => return true,
        Mode::Half | Mode::Slowloris => 1,
        Mode::NoRead => usize::MAX,
    };
    loop {
        let start = attacker.sent % payload.len();
        let end = payload.len().min(start.saturating_add(chunk));
        match attacker.stream.write(&payload[start..end]) {
            Ok(n) => {
                attacker.sent += n;
                if mode != Mode::NoRead {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut server: Option<SocketAddr> = None;
    let mut mode = None;
    let mut connections = 1000usize;
    let mut duration = Duration::from_secs(10);
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            eprintln!("cnamed-attack: {} needs a value", pair[0]);
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--server" => server = value.parse().ok(),
            "--mode" => {
                mode = match value.as_str() {
                    "flood" => Some(Mode::Flood),
                    "half" => Some(Mode::Half),
                    "slowloris" => Some(Mode::Slowloris),
                    "noread" => Some(Mode::NoRead),
                    _ => None,
                }
            }
            "--connections" => connections = value.parse().unwrap_or(connections),
            "--duration" => {
                duration = Duration::from_secs_f64(value.parse().unwrap_or(10.0));
            }
            other => {
                eprintln!("cnamed-attack: unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(server), Some(mode)) = (server, mode) else {
        eprintln!("usage: cnamed-attack --server ADDR:PORT --mode flood|half|slowloris|noread [--connections N] [--duration SECS]");
        return ExitCode::from(2);
    };
    let _ = cnamed::sys::raise_fd_limit();
    let payload: Vec<u8> = match mode {
        Mode::NoRead => (0..1000).flat_map(query_frame).collect(),
        _ => query_frame(1),
    };
    let mut opened = 0u64;
    let mut refused = 0u64;
    let mut attackers: Vec<Option<Attacker>> = (0..connections).map(|_| None).collect();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let tick = Instant::now() + TICK;
        for slot in attackers.iter_mut() {
            let alive = match slot {
                Some(attacker) => {
                    !closed(&mut attacker.stream, mode) && push(attacker, mode, &payload)
                }
                None => false,
            };
            if !alive {
                *slot = match connect(server, mode) {
                    Ok(mut attacker) => {
                        opened += 1;
                        push(&mut attacker, mode, &payload);
                        Some(attacker)
                    }
                    Err(_) => {
                        refused += 1;
                        None
                    }
                };
            }
        }
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    let first = connections as u64;
    println!(
        "opened={opened} reopened={} connect_failures={refused}",
        opened.saturating_sub(first)
    );
    ExitCode::SUCCESS
}
