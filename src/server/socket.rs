//! Binding: one UDP socket and one TCP listener per listen address for every worker, all
//! with SO_REUSEPORT, so the kernel spreads queries and connections across workers.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: i32 = 1024;
/// Tries at finding one port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;
/// Socket buffer we ask for, to ride out bursts; the kernel may cap it (net.core.rmem_max).
const UDP_BUFFER: usize = 4 << 20;

/// One worker's UDP socket and TCP listener for one address.
type SocketPair = (std::net::UdpSocket, std::net::TcpListener);

/// One worker's bound, not yet running sockets, one of each per listen address.
pub(crate) struct WorkerSockets {
    pub(crate) udp: Vec<std::net::UdpSocket>,
    pub(crate) tcp: Vec<std::net::TcpListener>,
}

/// Binds every socket of `threads` workers on every address of `listen`, so that address
/// errors surface before serving. Returns the workers' sockets and the addresses bound, in
/// the order of `listen`: an address with port 0 gets one free port, shared by UDP, TCP and
/// all workers.
pub(crate) fn bind_workers(
    listen: &[SocketAddr],
    threads: usize,
) -> io::Result<(Vec<WorkerSockets>, Vec<SocketAddr>)> {
    let mut workers: Vec<WorkerSockets> = (0..threads)
        .map(|_| WorkerSockets {
            udp: Vec::new(),
            tcp: Vec::new(),
        })
        .collect();
    let mut local_addrs = Vec::new();
    for &requested in listen {
        let mut attempts = 0;
        let (addr, sockets) = loop {
            let bound = match requested.port() {
                0 => free_port(requested).and_then(|addr| bind_all(addr, threads)),
                _ => refuse_if_served(requested).and_then(|()| bind_all(requested, threads)),
            };
            match bound {
                // Port 0: the free UDP port the kernel picked may be taken for TCP (by any
                // client's ephemeral port), or by another server since; pick another.
                Err(error)
                    if requested.port() == 0
                        && error.kind() == io::ErrorKind::AddrInUse
                        && attempts < PORT_ATTEMPTS =>
                {
                    attempts += 1;
                }
                result => break result?,
            }
        };
        for (worker, (udp, tcp)) in workers.iter_mut().zip(sockets) {
            worker.udp.push(udp);
            worker.tcp.push(tcp);
        }
        local_addrs.push(addr);
    }
    Ok((workers, local_addrs))
}

/// SO_REUSEPORT lets any process of the same user bind the same address, and the kernel then
/// splits queries between the two: a second cnamed started by mistake would serve half the
/// queries from other data. A plain bind (no SO_REUSEPORT) fails while any socket holds the
/// address, so one is tried first, and released, for UDP and for TCP.
fn refuse_if_served(addr: SocketAddr) -> io::Result<()> {
    let in_use = |transport: &str, error: io::Error| {
        io::Error::new(
            error.kind(),
            format!("cannot bind {transport} {addr}: {error} (is another cnamed or DNS server running there?)"),
        )
    };
    let udp = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        udp.set_only_v6(true)?;
    }
    udp.bind(&addr.into()).map_err(|e| in_use("udp", e))?;
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        tcp.set_only_v6(true)?;
    }
    // As the listeners do: connections of an earlier run in TIME_WAIT are no conflict.
    tcp.set_reuse_address(true)?;
    tcp.bind(&addr.into()).map_err(|e| in_use("tcp", e))?;
    Ok(())
}

/// `requested` with a port free for UDP and TCP. The kernel picks it for a plain socket: one
/// with SO_REUSEPORT could be given a port another server of the same user already serves
/// (reuse-port sockets of one user do not conflict), and the two would split its queries.
fn free_port(requested: SocketAddr) -> io::Result<SocketAddr> {
    let probe = Socket::new(
        Domain::for_address(requested),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if requested.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    probe.bind(&requested.into())?;
    let addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))?;
    drop(probe);
    refuse_if_served(addr)?;
    Ok(addr)
}

/// Binds a UDP socket and a TCP listener for each of `threads` workers on `requested`, whose
/// port is known free.
fn bind_all(addr: SocketAddr, threads: usize) -> io::Result<(SocketAddr, Vec<SocketPair>)> {
    let mut sockets = Vec::with_capacity(threads);
    for _ in 0..threads {
        sockets.push((udp_socket(addr)?, tcp_listener(addr)?));
    }
    Ok((addr, sockets))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    prepare(&socket, addr)?;
    // Soft: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(e, "udp", addr))?;
    Ok(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    prepare(&socket, addr)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| bind_error(e, "tcp", addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn prepare(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(())
}

fn bind_error(error: io::Error, transport: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot bind {transport} {addr}: {error}"),
    )
}
