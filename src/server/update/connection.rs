//! A TCP connection that sent an UPDATE, on a thread of its own: each UPDATE waits for the
//! committer (a control plane's batches, one after another), other messages are answered
//! here, until the client closes or stays idle.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::{Job, Reply};
use crate::answer::signed::sign_response;
use crate::answer::{respond_to, Context, Transport};
use crate::server::shared::Shared;
use crate::sys::unix_seconds;
use crate::wire::update::UPDATE;
use crate::wire::{Header, MAX_TCP};

/// A connection with nothing sent for this long is closed.
const IDLE: Duration = Duration::from_secs(10);

/// Serves `stream`, whose first unanswered bytes are `pending`, on a new thread; the
/// connection's place (`Updates::reserve_connection`) is given back when it ends.
pub(in crate::server) fn start_connection(
    shared: &Arc<Shared>,
    stream: mio::net::TcpStream,
    pending: Vec<u8>,
) {
    let shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("cnamed-update-tcp".into())
        .spawn(move || {
            let stream = TcpStream::from(stream);
            if let Err(error) = serve(&shared, &stream, pending) {
                if !matches!(
                    error.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::WouldBlock
                ) {
                    crate::log!(Warning, "UPDATE connection closed: {error}");
                }
            }
            let _ = stream.shutdown(Shutdown::Both);
            if let Some(updates) = &shared.updates {
                updates.release_connection();
            }
        });
    if let Err(error) = spawned {
        crate::log!(
            Warning,
            "cannot start a thread for an UPDATE connection: {error}"
        );
    }
}

/// Reads frames until the client is done, answering each in turn.
fn serve(shared: &Shared, stream: &TcpStream, mut pending: Vec<u8>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let mut reader = stream;
    let mut writer = stream;
    let mut out = vec![0u8; 2 + MAX_TCP];
    loop {
        let message = next_frame(&mut reader, &mut pending)?;
        let Some(len) = answer(shared, &message, peer, &mut out[2..]) else {
            continue;
        };
        out[..2].copy_from_slice(&(len as u16).to_be_bytes());
        writer.write_all(&out[..2 + len])?;
    }
}

/// The next message: from what was read already, else from the stream.
fn next_frame(stream: &mut impl Read, pending: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if pending.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
            if pending.len() >= 2 + len {
                let message = pending[2..2 + len].to_vec();
                pending.drain(..2 + len);
                return Ok(message);
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&chunk[..read]);
    }
}

/// An UPDATE goes to the committer and its answer comes back; anything else is answered
/// by the rules, signed when it was.
fn answer(shared: &Shared, message: &[u8], peer: SocketAddr, out: &mut [u8]) -> Option<usize> {
    let is_update = Header::new(message)
        .is_some_and(|header| !header.is_response() && header.opcode() == UPDATE);
    if let (true, Some(updates)) = (is_update, &shared.updates) {
        let (reply, answered) = mpsc::channel();
        let job = Job {
            message: message.to_vec(),
            peer,
            reply: Reply::Tcp(reply),
        };
        if !updates.submit(job) {
            return None;
        }
        let answer = answered.recv().ok()?;
        let len = answer.len().min(out.len());
        out[..len].copy_from_slice(&answer[..len]);
        return Some(len);
    }
    let snapshot = shared.snapshot.load_full();
    let cookies = shared.cookies.load_full();
    let context = Context {
        transport: Transport::Tcp,
        client: Some(peer.ip()),
        now: unix_seconds(),
        cookies: Some(&cookies),
    };
    let summary = respond_to(message, &snapshot, &context, out);
    let len = summary.len?;
    if !summary.signed {
        return Some(len);
    }
    let keys = shared.tsig_keys.load_full();
    let keys = keys.as_deref().map_or(&[][..], Vec::as_slice);
    sign_response(message, out, len, keys, u64::from(unix_seconds()))
}
