//! The Linux system calls of the relay's hot path, wrapped once so the worker stays safe Rust.
//!
//! - [`Epoll`]: readiness for many sockets per worker thread, waited on with a nanosecond
//!   timeout (`epoll_pwait2`) so playback can be paced at 20 ms ± well under 1 ms.
//! - [`RecvBatch`] / [`SendBatch`]: `recvmmsg` / `sendmmsg` with buffers, iovecs, headers and
//!   address storage allocated once per worker; a packet is received into the batch's
//!   buffer and sent from there, never copied or allocated.
//! - [`EventFd`]: wakes a worker when its command queue has work.
//!
//! This is the only module of the media engine that uses `unsafe`: each block is a call into
//! libc with pointers to memory this module owns, sized as the kernel is told.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An epoll instance; registrations carry a caller-chosen 64-bit token.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// An epoll set returning up to `capacity` events per wait.
    pub fn new(capacity: usize) -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is owned from here on.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    /// Watches `fd` for readability, reporting `token`. Edge-triggered: an event comes
    /// when new data arrives, so the reader must drain the socket (read until a batch
    /// comes back short); in exchange epoll does not poll every socket it reported again
    /// on the next wait, which level-triggering does, once per packet.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        check(unsafe {
            libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event)
        })?;
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; the event is ignored by the kernel for EPOLL_CTL_DEL.
        check(unsafe {
            libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut event)
        })?;
        Ok(())
    }

    /// Waits up to `timeout` (None = forever) and returns the tokens of ready descriptors.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
    ) -> io::Result<impl Iterator<Item = u64> + '_> {
        let spec = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
        });
        let spec_ptr = spec
            .as_ref()
            .map_or(std::ptr::null(), |s| s as *const libc::timespec);
        // SAFETY: `events` has `len` writable entries; `spec_ptr` is null or points at a
        // live timespec; a null sigmask means "do not change it".
        let ret = unsafe {
            libc::epoll_pwait2(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                spec_ptr,
                std::ptr::null(),
            )
        };
        let n = match check(ret) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(self.events[..n].iter().map(|e| e.u64))
    }
}

/// Lowers the calling thread below the relay workers: normal (not real-time) scheduling,
/// even when the process was started under a real-time policy, at nice 10. For the
/// recorder and the shipper, whose work can wait a few milliseconds: a relay worker
/// sharing their core then keeps forwarding while they write files.
pub(crate) fn background_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread (pid 0 / its own tid) with a live param.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

/// A counter descriptor used to wake a worker blocked in [`Epoll::wait`].
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned from here on.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fresh descriptor.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the descriptor readable (wakes the waiter).
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) already wakes.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Resets the counter so the descriptor is not readable until the next notify.
    pub fn clear(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (already zero) is fine.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8);
        }
    }
}

/// Converts a kernel socket address to a std one (IPv4 and IPv6; anything else is None).
fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and storage is
            // larger and at least as aligned.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A socket address in the form the kernel takes, built once per destination change.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl std::fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", from_storage(&self.storage, self.len))
    }
}

impl From<SocketAddr> for RawAddr {
    fn from(addr: SocketAddr) -> Self {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                // SAFETY: storage is large and aligned enough for a sockaddr_in.
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                // SAFETY: storage is large and aligned enough for a sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>()
            }
        };
        Self {
            storage,
            len: len as libc::socklen_t,
        }
    }
}

/// Largest datagram the relay takes; longer ones are truncated by the kernel and dropped.
pub const MAX_DATAGRAM: usize = 2048;

/// Buffers for receiving up to `capacity` datagrams with one `recvmmsg`.
pub struct RecvBatch {
    buffers: Box<[[u8; MAX_DATAGRAM]]>,
    iovecs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    headers: Box<[libc::mmsghdr]>,
    received: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.buffers.len())
            .field("received", &self.received)
            .finish()
    }
}

// SAFETY: the raw pointers inside point only into this struct's own boxed arrays, which
// move with it between threads; nothing is shared.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut buffers = vec![[0u8; MAX_DATAGRAM]; capacity].into_boxed_slice();
        // SAFETY: plain old data; zero is a valid value for these C structs.
        let mut names: Box<[libc::sockaddr_storage]> =
            (0..capacity).map(|_| unsafe { zeroed() }).collect();
        let mut iovecs: Box<[libc::iovec]> = buffers
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            })
            .collect();
        let headers = iovecs
            .iter_mut()
            .zip(names.iter_mut())
            .map(|(iov, name)| {
                // SAFETY: zero is a valid msghdr; the pointers are set right below.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h
            })
            .collect();
        // The boxes' heap memory never moves, so the pointers stay valid.
        Self {
            buffers,
            iovecs,
            names,
            headers,
            received: 0,
        }
    }

    /// Receives what is queued on `fd` (up to the capacity) without blocking. Returns
    /// how many datagrams arrived; 0 when none was waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.headers.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
        }
        debug_assert_eq!(self.iovecs.len(), self.headers.len());
        // SAFETY: every header points at a live buffer of MAX_DATAGRAM bytes and a live
        // sockaddr_storage owned by self; the kernel writes at most that much.
        let ret = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        self.received = 0;
        match check(ret) {
            Ok(n) => {
                self.received = n as usize;
                Ok(self.received)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            // An ICMP port unreachable from an earlier send surfaces here; it is not
            // about this socket's incoming queue, so it is not a failure of the receive.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Datagram `i` of the last receive: its bytes (None if truncated) and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let h = &self.headers[i];
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let from = from_storage(&self.names[i], h.msg_hdr.msg_namelen)?;
        Some((&self.buffers[i][..h.msg_len as usize], from))
    }
}

/// Headers for sending up to `capacity` datagrams with one `sendmmsg`.
pub struct SendBatch {
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    queued: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.headers.len())
            .field("queued", &self.queued)
            .finish()
    }
}

// SAFETY: the pointers are only meaningful between `push` and `flush` on one thread,
// and are reset on every push; nothing is shared.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let iovecs = (0..capacity)
            .map(|_| libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            })
            .collect();
        // SAFETY: zero is a valid mmsghdr.
        let headers = (0..capacity).map(|_| unsafe { zeroed() }).collect();
        Self {
            iovecs,
            headers,
            queued: 0,
        }
    }

    /// Sends `packets` (bytes and destination) out of `fd` with as few `sendmmsg` calls
    /// as the batch capacity allows. Returns how many the kernel took; the rest were
    /// dropped (full socket buffer, unreachable destination), as a router drops them.
    pub fn send<'a>(
        &mut self,
        fd: RawFd,
        packets: impl IntoIterator<Item = (&'a [u8], &'a RawAddr)>,
    ) -> usize {
        let mut sent = 0;
        let mut iter = packets.into_iter().peekable();
        while iter.peek().is_some() {
            self.queued = 0;
            for (data, to) in iter.by_ref().take(self.headers.len()) {
                let i = self.queued;
                self.iovecs[i] = libc::iovec {
                    iov_base: data.as_ptr() as *mut libc::c_void,
                    iov_len: data.len(),
                };
                let h = &mut self.headers[i].msg_hdr;
                h.msg_iov = &mut self.iovecs[i];
                h.msg_iovlen = 1;
                h.msg_name = &to.storage as *const _ as *mut libc::c_void;
                h.msg_namelen = to.len;
                self.queued += 1;
            }
            sent += self.flush(fd);
        }
        sent
    }

    fn flush(&mut self, fd: RawFd) -> usize {
        // One datagram (the usual case at 50 packets/s per stream): plain sendto skips
        // sendmmsg's header import and loop, 5-7% of the relay's CPU in A/B runs.
        if self.queued == 1 {
            self.queued = 0;
            let h = &self.headers[0].msg_hdr;
            // SAFETY: the header's iovec points at the caller's live buffer and its name at
            // a live address (or is null for a connected socket), as filled in by `send`.
            let ret = unsafe {
                libc::sendto(
                    fd,
                    (*h.msg_iov).iov_base,
                    (*h.msg_iov).iov_len,
                    libc::MSG_DONTWAIT,
                    h.msg_name as *const libc::sockaddr,
                    h.msg_namelen,
                )
            };
            return usize::from(ret >= 0);
        }
        let mut done = 0;
        let mut ok = 0;
        while done < self.queued {
            // SAFETY: headers[done..queued] point at iovecs and addresses that the caller
            // of `send` keeps alive for the duration of the call (borrowed slices).
            let ret = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[done..].as_mut_ptr(),
                    (self.queued - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if ret > 0 {
                done += ret as usize;
                ok += ret as usize;
                continue;
            }
            if ret < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first message failed (EAGAIN, ECONNREFUSED from an earlier ICMP,
            // EHOSTUNREACH...): drop it and go on with the rest.
            done += 1;
        }
        self.queued = 0;
        ok
    }
}
