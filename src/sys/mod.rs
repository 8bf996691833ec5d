//! The only module with `unsafe`: batched UDP I/O (recvmmsg/sendmmsg) and signal waiting,
//! behind a safe API, and the counting allocator that tests use. Everything else goes through
//! std, socket2 and mio.
#![allow(unsafe_code)]

mod counting_alloc;

pub use counting_alloc::CountingAllocator;

use std::io;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Datagrams moved per system call.
pub const BATCH: usize = 64;
/// Largest query kept; longer datagrams are dropped (no client sends one).
pub const RECV_SLOT: usize = 4096;
/// Largest UDP response we ever send (our EDNS payload size).
pub const SEND_SLOT: usize = crate::wire::EDNS_UDP;
/// How long a send waits for room in a full socket buffer before dropping the rest.
const SEND_WAIT: Duration = Duration::from_millis(50);

/// Buffers for one batch of queries and their responses, owned by a worker and reused: the
/// query path allocates nothing.
pub struct UdpBatch {
    queries: Box<[[u8; RECV_SLOT]]>,
    responses: Box<[[u8; SEND_SLOT]]>,
    query_lens: [usize; BATCH],
    /// 0 means "no reply".
    response_lens: [usize; BATCH],
    peers: Box<[libc::sockaddr_storage]>,
    peer_lens: [libc::socklen_t; BATCH],
    received: usize,
}

impl Default for UdpBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpBatch {
    pub fn new() -> Self {
        Self {
            queries: vec![[0; RECV_SLOT]; BATCH].into_boxed_slice(),
            responses: vec![[0; SEND_SLOT]; BATCH].into_boxed_slice(),
            query_lens: [0; BATCH],
            response_lens: [0; BATCH],
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
            peers: vec![unsafe { std::mem::zeroed::<libc::sockaddr_storage>() }; BATCH]
                .into_boxed_slice(),
            peer_lens: [0; BATCH],
            received: 0,
        }
    }

    /// Receives up to `BATCH` datagrams without blocking. Returns how many; an empty socket
    /// is `ErrorKind::WouldBlock`.
    pub fn recv(&mut self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for i in 0..BATCH {
            let iov = iovecs[i].write(libc::iovec {
                iov_base: self.queries[i].as_mut_ptr().cast(),
                iov_len: RECV_SLOT,
            });
            headers[i].write(message(
                iov,
                (&mut self.peers[i] as *mut libc::sockaddr_storage).cast(),
                size_of::<libc::sockaddr_storage>() as libc::socklen_t,
            ));
        }
        let received = retry_eintr(|| {
            // SAFETY: `headers` holds BATCH initialised entries whose buffers (queries, peers,
            // iovecs) are owned by `self` or this frame and outlive the call; the kernel
            // writes at most the lengths given.
            unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr().cast(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            }
        })?;
        for (i, header) in headers.iter().enumerate().take(received) {
            // SAFETY: all BATCH entries were initialised above.
            let header = unsafe { header.assume_init_ref() };
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.query_lens[i] = if truncated {
                0
            } else {
                header.msg_len as usize
            };
            self.peer_lens[i] = header.msg_hdr.msg_namelen;
            self.response_lens[i] = 0;
        }
        self.received = received;
        Ok(received)
    }

    /// The datagram received in slot `i` of the last batch (empty past the batch).
    pub fn received(&self, i: usize) -> &[u8] {
        if i < self.received {
            &self.queries[i][..self.query_lens[i]]
        } else {
            &[]
        }
    }

    /// Calls `answer(query, sender, response_buffer)` for each received datagram;
    /// `Some(len)` queues a reply of `len` bytes to its sender.
    pub fn answer_each(
        &mut self,
        mut answer: impl FnMut(&[u8], Option<IpAddr>, &mut [u8]) -> Option<usize>,
    ) {
        for i in 0..self.received {
            let query = &self.queries[i][..self.query_lens[i]];
            let sender = peer_ip(&self.peers[i], self.peer_lens[i]);
            self.response_lens[i] = answer(query, sender, &mut self.responses[i]).unwrap_or(0);
        }
    }

    /// Sends every queued reply. Replies that the kernel refuses, or that find the socket
    /// buffer full for longer than `SEND_WAIT`, are dropped, as a full network would.
    /// Returns how many were sent.
    pub fn send(&mut self, socket: BorrowedFd<'_>) -> usize {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        let mut count = 0;
        for i in 0..self.received {
            if self.response_lens[i] == 0 {
                continue;
            }
            let iov = iovecs[count].write(libc::iovec {
                iov_base: self.responses[i].as_mut_ptr().cast(),
                iov_len: self.response_lens[i],
            });
            headers[count].write(message(
                iov,
                (&mut self.peers[i] as *mut libc::sockaddr_storage).cast(),
                self.peer_lens[i],
            ));
            count += 1;
        }
        let mut done = 0;
        let mut sent = 0;
        while done < count {
            let result = retry_eintr(|| {
                // SAFETY: entries done..count were initialised above and point into buffers
                // owned by `self` or this frame, which outlive the call.
                unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        headers.as_mut_ptr().add(done).cast(),
                        (count - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                }
            });
            match result {
                Ok(n) => {
                    done += n.max(1);
                    sent += n;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_writable(socket, SEND_WAIT) {
                        break;
                    }
                }
                // This datagram cannot go (e.g. an address the kernel rejects): skip it.
                Err(_) => done += 1,
            }
        }
        sent
    }
}

/// The IP address in a socket address the kernel filled in.
fn peer_ip(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and the kernel wrote
            // at least that many bytes; sockaddr_storage is aligned for every sockaddr type.
            let addr =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::from(addr.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let addr = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(IpAddr::from(addr.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// Raises the soft limit on open files to the hard limit, so that a worker can hold as
/// many TCP connections as the operator allows. Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Sends each datagram in `datagrams` (at most `BATCH`) on a connected socket with one
/// sendmmsg. Returns how many the kernel took; a full buffer is `ErrorKind::WouldBlock`.
pub fn send_connected(socket: BorrowedFd<'_>, datagrams: &[&[u8]]) -> io::Result<usize> {
    let count = datagrams.len().min(BATCH);
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    for (i, datagram) in datagrams.iter().take(count).enumerate() {
        let iov = iovecs[i].write(libc::iovec {
            // The kernel only reads through this pointer.
            iov_base: datagram.as_ptr().cast_mut().cast(),
            iov_len: datagram.len(),
        });
        // No address: the socket is connected.
        headers[i].write(message(iov, std::ptr::null_mut(), 0));
    }
    retry_eintr(|| {
        // SAFETY: the first `count` headers are initialised and point at `datagrams`, which
        // outlive the call; sendmmsg only reads them.
        unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr().cast(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        }
    })
}

/// One mmsghdr for one buffer and, unless `name` is null, one peer address.
fn message(
    iov: *mut libc::iovec,
    name: *mut libc::c_void,
    name_len: libc::socklen_t,
) -> libc::mmsghdr {
    // SAFETY: msghdr is plain old data; all zeroes is valid (no control data, no flags), and
    // the fields that matter are set right after.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name;
    msg.msg_namelen = name_len;
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    libc::mmsghdr {
        msg_hdr: msg,
        msg_len: 0,
    }
}

/// Runs a system call wrapper until it is not interrupted by a signal.
fn retry_eintr(mut call: impl FnMut() -> libc::c_int) -> io::Result<usize> {
    loop {
        let result = call();
        if result >= 0 {
            return Ok(result as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Waits until `socket` can be written, at most `timeout`.
fn wait_writable(socket: BorrowedFd<'_>, timeout: Duration) -> bool {
    wait_for(&[socket], libc::POLLOUT, timeout)
}

/// Waits until one of `sockets` (at most `BATCH`) has something to read, at most `timeout`.
/// For tools that block between batches; the server's workers use mio.
pub fn wait_readable(sockets: &[BorrowedFd<'_>], timeout: Duration) -> bool {
    wait_for(sockets, libc::POLLIN, timeout)
}

fn wait_for(sockets: &[BorrowedFd<'_>], events: libc::c_short, timeout: Duration) -> bool {
    let count = sockets.len().min(BATCH);
    let mut polls = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; BATCH];
    for (poll, socket) in polls.iter_mut().zip(sockets) {
        poll.fd = socket.as_raw_fd();
        poll.events = events;
    }
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `polls` holds `count` valid pollfd entries owned by this frame.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), count as libc::nfds_t, millis) };
    ready > 0
}

/// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC= expects.
pub fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

/// A thread's kernel ID, for [`set_thread_idle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId(libc::pid_t);

/// The calling thread's kernel ID.
pub fn current_thread() -> ThreadId {
    // SAFETY: gettid has no preconditions.
    ThreadId(unsafe { libc::gettid() })
}

/// Moves a thread of this process to SCHED_IDLE (`idle`: it runs only when its core has
/// nothing else to do, and a waking worker preempts it at once) or back to SCHED_OTHER.
pub fn set_thread_idle(thread: ThreadId, idle: bool) -> io::Result<()> {
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `thread` names a thread of ours; priority 0 is valid for both policies.
    let result = unsafe { libc::sched_setscheduler(thread.0, policy, &param) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The signals the server handles.
pub use libc::{SIGHUP, SIGINT, SIGTERM};

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset takes valid signal
    // numbers, and our callers pass libc constants.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks `signals` in the calling thread and in every thread it spawns afterwards, so that
/// only [`wait_for_signal`] receives them, on one thread, outside any handler.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = signal_set(signals);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

/// Waits for one of `signals` (which must be blocked) and returns it.
pub fn wait_for_signal(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = signal_set(signals);
    let mut signal = 0;
    // SAFETY: `set` is initialised and `signal` is a valid place to write.
    let result = unsafe { libc::sigwait(&set, &mut signal) };
    if result == 0 {
        Ok(signal)
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}
