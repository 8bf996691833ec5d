//! Batched UDP I/O: recvmmsg/sendmmsg over buffers a worker owns and reuses, so the query
//! path allocates nothing.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Datagrams moved per system call.
pub const BATCH: usize = 64;
/// Room for one query: the largest DNS message, so every datagram fits whole. The slots are
/// zeroed lazily by the allocator (calloc), and the kernel writes only as far as a datagram
/// reaches: the unused part costs address space, not memory.
pub const RECV_SLOT: usize = crate::wire::MAX_TCP;
/// Distance between two slots: a slot and a little more, so that the slots' first bytes,
/// which every query touches, do not all fall in the same cache set (a stride of a power of
/// two would put 64 of them in one set of L1 and L2). 69,696 bytes is 1,089 cache lines: each
/// slot lands one L1 set and 65 L2 sets further than the one before.
const SLOT_STRIDE: usize = 1089 * 64;
const _: () = assert!(SLOT_STRIDE >= RECV_SLOT);
/// Largest UDP response we ever send (our EDNS payload size).
pub const SEND_SLOT: usize = crate::wire::EDNS_UDP;
/// How long a send waits for room in a full socket buffer before dropping the rest.
const SEND_WAIT: Duration = Duration::from_millis(50);

/// What became of a batch's replies.
#[derive(Debug, Default)]
pub struct Sent {
    pub sent: usize,
    /// Replies dropped: refused by the kernel, or the socket buffer stayed full.
    pub failed: usize,
    /// The last error, if any (WouldBlock: the buffer stayed full).
    pub error: Option<io::Error>,
}

/// Buffers for one batch of queries and their responses, owned by a worker and reused: the
/// query path allocates nothing.
pub struct UdpBatch {
    queries: Box<[[u8; SLOT_STRIDE]]>,
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
            queries: vec![[0; SLOT_STRIDE]; BATCH].into_boxed_slice(),
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
                    libc::MSG_DONTWAIT as _, // c_int in glibc, c_uint in musl
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

    /// How many datagrams the last batch holds.
    pub fn len(&self) -> usize {
        self.received
    }

    /// Whether the last batch was empty.
    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// The reply queued for datagram `i` of the last batch, if one was.
    pub fn response(&self, i: usize) -> Option<&[u8]> {
        match self.response_lens.get(i) {
            Some(&len) if i < self.received && len > 0 => Some(&self.responses[i][..len]),
            _ => None,
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

    /// The address datagram `i` of the last batch came from.
    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        if i >= self.received {
            return None;
        }
        let (storage, len) = (&self.peers[i], self.peer_lens[i] as usize);
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, and the kernel wrote
                // at least that many bytes; sockaddr_storage is aligned for every sockaddr type.
                let addr = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = IpAddr::from(addr.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::new(ip, u16::from_be(addr.sin_port)))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let addr = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = IpAddr::from(addr.sin6_addr.s6_addr);
                Some(SocketAddr::new(ip, u16::from_be(addr.sin6_port)))
            }
            _ => None,
        }
    }

    /// Sends every queued reply. Replies that the kernel refuses, or that find the socket
    /// buffer full for longer than `SEND_WAIT`, are dropped, as a full network would.
    pub fn send(&mut self, socket: BorrowedFd<'_>) -> Sent {
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
        let mut outcome = Sent::default();
        while done < count {
            let result = retry_eintr(|| {
                // SAFETY: entries done..count were initialised above and point into buffers
                // owned by `self` or this frame, which outlive the call.
                unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        headers.as_mut_ptr().add(done).cast(),
                        (count - done) as libc::c_uint,
                        libc::MSG_DONTWAIT as _, // c_int in glibc, c_uint in musl
                    )
                }
            });
            match result {
                Ok(n) => {
                    done += n.max(1);
                    outcome.sent += n;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_writable(socket, SEND_WAIT) {
                        outcome.failed += count - done;
                        outcome.error = Some(error);
                        break;
                    }
                }
                // This datagram cannot go (e.g. an address the kernel rejects): skip it.
                Err(error) => {
                    done += 1;
                    outcome.failed += 1;
                    outcome.error = Some(error);
                }
            }
        }
        outcome
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
                libc::MSG_DONTWAIT as _, // c_int in glibc, c_uint in musl
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
