//! One generator thread: two UDP sockets (the "caller" and the "callee" side, each shared
//! by all of this thread's calls, as the relay latches one source address per leg) that
//! send every stream's packets on schedule with `sendmmsg` and take everything that
//! comes back with `recvmmsg`, in one loop. Packets are stamped just before their batch is
//! handed to the kernel; the receive time is the kernel's (`SO_TIMESTAMPNS`, taken when
//! the sender - the relay, or this thread in direct mode - transmitted on loopback), so
//! the latency does not include how long a packet waited for this thread to read it.
//! Both are CLOCK_REALTIME, the clock the kernel stamps with.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg,
    setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;

use crate::histogram::Histogram;
use crate::packet::{self, Direction, PACKET, RtpIdentity};
use crate::schedule::{PERIOD_NS, Schedule};
use crate::stats::RxTracker;

/// Datagrams taken per `recvmmsg`.
const RX_BATCH: usize = 64;
/// `recvmmsg` calls per socket per loop turn, so a flood in cannot starve the sends.
const RX_ROUNDS: usize = 8;
/// Bigger than any packet we expect; anything longer is not ours anyway.
const RX_BUF: usize = 2048;
/// Longest sleep of the loop: bounds what piles up in the receive buffers meanwhile.
const MAX_WAIT: Duration = Duration::from_millis(1);

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME (the clock of SO_TIMESTAMPNS).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A generator thread's two sockets.
#[derive(Debug)]
pub struct Sockets {
    pub caller: UdpSocket,
    pub callee: UdpSocket,
}

impl Sockets {
    /// Binds both on an ephemeral port of `ip`, with kernel receive timestamps and
    /// `buffer` bytes of socket buffer (forced past rmem_max when running as root).
    pub fn bind(ip: Ipv4Addr, buffer: usize) -> io::Result<Sockets> {
        let open = || -> io::Result<UdpSocket> {
            let s = UdpSocket::bind(SocketAddrV4::new(ip, 0))?;
            setsockopt(&s, sockopt::ReceiveTimestampns, &true)?;
            if setsockopt(&s, sockopt::RcvBufForce, &buffer).is_err() {
                setsockopt(&s, sockopt::RcvBuf, &buffer)?;
            }
            if setsockopt(&s, sockopt::SndBufForce, &buffer).is_err() {
                setsockopt(&s, sockopt::SndBuf, &buffer)?;
            }
            Ok(s)
        };
        Ok(Sockets {
            caller: open()?,
            callee: open()?,
        })
    }

    pub fn caller_addr(&self) -> io::Result<SocketAddrV4> {
        v4(&self.caller)
    }

    pub fn callee_addr(&self) -> io::Result<SocketAddrV4> {
        v4(&self.callee)
    }

    /// The socket a direction is sent from.
    fn sender(&self, d: Direction) -> &UdpSocket {
        match d {
            Direction::CallerToCallee => &self.caller,
            Direction::CalleeToCaller => &self.callee,
        }
    }
}

fn v4(s: &UdpSocket) -> io::Result<SocketAddrV4> {
    match s.local_addr()? {
        std::net::SocketAddr::V4(a) => Ok(a),
        std::net::SocketAddr::V6(_) => Err(io::Error::other("IPv6 socket")),
    }
}

/// One call as this thread plays it: where each direction is sent.
#[derive(Debug, Clone, Copy)]
pub struct CallPlan {
    pub call: u32,
    /// Indexed by [`Direction::index`]: caller's destination, callee's destination.
    pub dest: [SocketAddrV4; 2],
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    pub thread: u32,
    pub threads: u32,
    pub schedule: Schedule,
    /// Packets per `sendmmsg`.
    pub batch: usize,
    /// How long to keep receiving after the last send.
    pub drain: Duration,
    /// Shortest time between two turns of the loop: packets due within a tick leave
    /// together (up to a tick late), so the loop's fixed cost is paid per tick, not per
    /// packet. Zero wakes for every packet.
    pub tick: Duration,
    /// Time zero of the schedule.
    pub start: Instant,
    /// CLOCK_REALTIME at `start`, ns since the Unix epoch; stamps are relative to it.
    pub epoch_ns: u64,
}

/// What one thread did.
#[derive(Debug)]
pub struct WorkerResult {
    /// Packets handed to the kernel, per direction (including those it refused).
    pub sent: [u64; 2],
    /// Packets the kernel refused to send: with non-blocking sends on loopback this is
    /// the sending socket's buffer full of packets still queued at a receiver that does
    /// not keep up (a relay behind its load). They count as lost.
    pub send_errors: u64,
    pub rx: RxTracker,
    /// How late packets left against their schedule (generator overload shows here).
    pub send_lag_ns: Histogram,
    /// Our packets that came in on the wrong socket (a relay mixing up legs).
    pub misrouted: u64,
    /// Datagrams that were not our packets, or stamped for another thread.
    pub unknown: u64,
    pub receive_errors: u64,
}

impl WorkerResult {
    pub fn sent_total(&self) -> u64 {
        self.sent.iter().sum()
    }
}

struct TxBatch {
    bufs: Vec<[u8; PACKET]>,
    addrs: Vec<Option<SockaddrIn>>,
    headers: MultiHeaders<SockaddrIn>,
}

impl TxBatch {
    fn new(cap: usize) -> Self {
        TxBatch {
            bufs: Vec::with_capacity(cap),
            addrs: Vec::with_capacity(cap),
            headers: MultiHeaders::preallocate(cap, None),
        }
    }

    /// Stamps and sends everything queued without blocking; returns (attempted, refused).
    /// A blocking send would stall the whole schedule behind one slow receiver; a phone
    /// on a real network never waits for the relay either.
    fn flush(&mut self, fd: RawFd, epoch_ns: u64) -> (u64, u64) {
        if self.bufs.is_empty() {
            return (0, 0);
        }
        let now = realtime_ns().saturating_sub(epoch_ns);
        for b in &mut self.bufs {
            packet::set_sent(b, now);
        }
        let (mut sent, mut failed) = (0u64, 0u64);
        let attempted = self.bufs.len() as u64;
        let mut off = 0;
        let len = self.bufs.len();
        while off < len {
            let iovs: Vec<[IoSlice<'_>; 1]> =
                self.bufs[off..].iter().map(|b| [IoSlice::new(b)]).collect();
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                fd,
                &mut self.headers,
                &iovs,
                &self.addrs[off..],
                no_cmsgs,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(done) => {
                    let n = done.count();
                    if n == 0 {
                        failed += (len - off) as u64;
                        break;
                    }
                    sent += n as u64;
                    off += n;
                }
                Err(Errno::EINTR) => {}
                // Socket buffer full: the rest of the batch would be refused too.
                Err(Errno::EAGAIN) => {
                    failed += (len - off) as u64;
                    break;
                }
                // The first message failed (e.g. ENOBUFS); drop it and go on.
                Err(_) => {
                    failed += 1;
                    off += 1;
                }
            }
        }
        self.bufs.clear();
        self.addrs.clear();
        debug_assert_eq!(sent + failed, attempted);
        (attempted, failed)
    }
}

struct RxBatch {
    bufs: Vec<[u8; RX_BUF]>,
    headers: MultiHeaders<SockaddrIn>,
    /// (length, kernel receive time in ns since the Unix epoch) per datagram.
    meta: Vec<(usize, Option<u64>)>,
}

impl RxBatch {
    fn new() -> Self {
        RxBatch {
            bufs: vec![[0u8; RX_BUF]; RX_BATCH],
            headers: MultiHeaders::preallocate(RX_BATCH, Some(nix::cmsg_space!(TimeSpec))),
            meta: Vec::with_capacity(RX_BATCH),
        }
    }

    /// One non-blocking `recvmmsg`; fills `meta`. Returns false when nothing was waiting.
    fn receive(&mut self, fd: RawFd) -> Result<bool, Errno> {
        self.meta.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let got = match recvmmsg(
            fd,
            &mut self.headers,
            &mut iovs,
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(msgs) => msgs,
            Err(Errno::EAGAIN) => return Ok(false),
            Err(e) => return Err(e),
        };
        for msg in got {
            let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                    }
                    _ => None,
                })
            });
            self.meta.push((msg.bytes, stamp));
        }
        Ok(!self.meta.is_empty())
    }
}

/// Plays `plans` (this thread's calls: call % threads == thread) on `sockets`.
pub fn run(cfg: &WorkerConfig, sockets: &Sockets, plans: &[CallPlan]) -> WorkerResult {
    // Best effort: wake-ups within a microsecond of the due time rather than the
    // default 50 µs slack.
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let sched = cfg.schedule;
    let threads = cfg.threads.max(1);
    // global call -> local index, for calls of this thread.
    let slots = plans
        .iter()
        .map(|p| p.call / threads + 1)
        .max()
        .unwrap_or(0) as usize;
    let mut local_of = vec![u32::MAX; slots];
    for (i, p) in plans.iter().enumerate() {
        local_of[(p.call / threads) as usize] = i as u32;
    }
    let streams = plans.len() * 2;
    let mut ids = Vec::with_capacity(streams);
    let mut next_index = vec![0u32; streams];
    let mut counts = Vec::with_capacity(streams);
    let mut heap = BinaryHeap::with_capacity(streams);
    for (i, p) in plans.iter().enumerate() {
        for d in Direction::BOTH {
            let s = i * 2 + d.index();
            ids.push(RtpIdentity::random());
            let n = sched.packets(p.call, d);
            counts.push(n);
            if n > 0 {
                heap.push(Reverse((sched.start_ns(p.call, d), s as u32)));
            }
        }
    }
    let mut result = WorkerResult {
        sent: [0; 2],
        send_errors: 0,
        rx: RxTracker::new(streams, sched.max_packets()),
        send_lag_ns: Histogram::new(),
        misrouted: 0,
        unknown: 0,
        receive_errors: 0,
    };
    let mut tx = [TxBatch::new(cfg.batch), TxBatch::new(cfg.batch)];
    let mut rx = RxBatch::new();
    let fds = [sockets.caller.as_raw_fd(), sockets.callee.as_raw_fd()];
    let tx_fd = |d: usize| sockets.sender(Direction::BOTH[d]).as_raw_fd();
    let drain_ns = cfg.drain.as_nanos() as u64;
    let stop_ns = sched.end_ns() + drain_ns;
    // Whatever happens, the loop ends: a bounded overrun past the drain.
    let hard_stop_ns = stop_ns + 2_000_000_000;

    let tick_ns = cfg.tick.as_nanos() as u64;
    loop {
        let now = cfg.start.elapsed().as_nanos() as u64;
        let turn_started = now;
        // Send everything due.
        while let Some(&Reverse((due, s))) = heap.peek() {
            if due > now {
                break;
            }
            heap.pop();
            let s = s as usize;
            let (local, d) = (s / 2, Direction::BOTH[s % 2]);
            let index = next_index[s];
            let batch = &mut tx[d.index()];
            let mut buf = [0u8; PACKET];
            packet::write(&mut buf, &ids[s], plans[local].call, d, index);
            batch.bufs.push(buf);
            batch
                .addrs
                .push(Some(SockaddrIn::from(plans[local].dest[d.index()])));
            result.send_lag_ns.record(now - due);
            next_index[s] = index + 1;
            if index + 1 < counts[s] {
                heap.push(Reverse((due + PERIOD_NS, s as u32)));
            }
            if batch.bufs.len() >= cfg.batch {
                let (ok, failed) = batch.flush(tx_fd(d.index()), cfg.epoch_ns);
                result.sent[d.index()] += ok;
                result.send_errors += failed;
            }
        }
        for (d, batch) in tx.iter_mut().enumerate() {
            let (ok, failed) = batch.flush(tx_fd(d), cfg.epoch_ns);
            result.sent[d] += ok;
            result.send_errors += failed;
        }
        // Take in what arrived: on the callee socket caller->callee packets, on the
        // caller socket the other direction.
        for (sock, &fd) in fds.iter().enumerate() {
            let expect = if sock == 0 {
                Direction::CalleeToCaller
            } else {
                Direction::CallerToCallee
            };
            for _ in 0..RX_ROUNDS {
                match rx.receive(fd) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        result.receive_errors += 1;
                        break;
                    }
                }
                let fallback = realtime_ns();
                for (i, &(len, stamp)) in rx.meta.iter().enumerate() {
                    let Some(st) = packet::read(&rx.bufs[i][..len.min(RX_BUF)]) else {
                        result.unknown += 1;
                        continue;
                    };
                    if st.call % threads != cfg.thread {
                        result.unknown += 1;
                        continue;
                    }
                    let Some(&local) = local_of
                        .get((st.call / threads) as usize)
                        .filter(|&&l| l != u32::MAX)
                    else {
                        result.unknown += 1;
                        continue;
                    };
                    if st.direction != expect {
                        result.misrouted += 1;
                        continue;
                    }
                    let recv_ns = stamp.unwrap_or(fallback).saturating_sub(cfg.epoch_ns);
                    let stream = local as usize * 2 + st.direction.index();
                    result
                        .rx
                        .on_packet(stream, st.direction, st.index, st.sent_ns, recv_ns);
                }
                if rx.meta.len() < RX_BATCH {
                    break;
                }
            }
        }
        let now = cfg.start.elapsed().as_nanos() as u64;
        if heap.is_empty() && (now >= stop_ns || result.rx.received() >= result.sent_total()) {
            break;
        }
        if now >= hard_stop_ns {
            break;
        }
        let next = heap
            .peek()
            .map_or(stop_ns, |Reverse((due, _))| *due)
            .max(turn_started + tick_ns);
        if next > now {
            // Sleep until the next send rather than wake on every arrival: arrivals keep
            // their kernel time stamp while they wait, and a sleep of at most MAX_WAIT
            // leaves at most a few hundred packets in the socket buffer.
            std::thread::sleep(Duration::from_nanos(next - now).min(MAX_WAIT));
        }
    }
    result
}
