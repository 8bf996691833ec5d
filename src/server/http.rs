//! The metrics endpoint: a minimal HTTP/1.1 server for `GET /metrics`, on its own thread,
//! one connection at a time. Scrapes are rare and small; nothing here touches the workers
//! beyond reading their counters.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::metrics::Metrics;

/// A request head larger than this is refused.
const MAX_REQUEST: usize = 8192;
/// A client gets this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `metrics` on `listener` until the process exits.
pub fn spawn(listener: TcpListener, metrics: Metrics) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("cnamed-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                // A client that fails or times out costs only its own connection.
                let _ = stream.and_then(|stream| answer(stream, &metrics));
            }
        })
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
        if request.len() > MAX_REQUEST {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", "");
        }
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (b"GET" | b"HEAD", Some(b"/metrics")) => {
            let body = metrics.render();
            let body = if method == b"HEAD" { "" } else { &body };
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        (b"GET" | b"HEAD", Some(_)) => respond(&mut stream, "404 Not Found", "", ""),
        (_, Some(_)) => respond(&mut stream, "405 Method Not Allowed", "", ""),
        (_, None) => respond(&mut stream, "400 Bad Request", "", ""),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> io::Result<()> {
    let content_type = if content_type.is_empty() {
        "text/plain"
    } else {
        content_type
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
