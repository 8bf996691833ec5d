//! The ceiling of the kernel path: a UDP "server" that does no DNS work. It receives a batch
//! (recvmmsg), sets QR on each datagram and sends it back (sendmmsg), with the same sockets and
//! batching as cnamed's workers. Bench-only.
//!
//!     cnamed-reflector ADDR:PORT [THREADS]

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::ExitCode;

use std::time::Duration;

use cnamed::sys::UdpBatch;
use cnamed::testing::wait_readable;
use socket2::{Domain, Protocol, Socket, Type};

fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    let mut batch = UdpBatch::new();
    loop {
        match batch.recv(socket.as_fd()) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_readable(&[socket.as_fd()], Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(e),
        }
        batch.answer_each(|query, _sender, out| {
            if query.len() < 12 || query.len() > out.len() {
                return None;
            }
            out[..query.len()].copy_from_slice(query);
            out[2] |= 0x80;
            Some(query.len())
        });
        batch.send(socket.as_fd());
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(Ok(addr)) = args.next().map(|a| a.parse::<SocketAddr>()) else {
        eprintln!("usage: cnamed-reflector ADDR:PORT [THREADS]");
        return ExitCode::from(2);
    };
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || serve(addr)))
        .collect();
    eprintln!("cnamed-reflector: reflecting on {addr} with {threads} threads");
    for handle in handles {
        if let Ok(Err(error)) = handle.join() {
            eprintln!("cnamed-reflector: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
