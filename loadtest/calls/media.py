"""Counting the RTP that reaches the SIPp endpoints, exactly, and the UDP lost on the way.

SIPp 3.6 streams every call's RTP (rtp_stream) from one media socket per SIPp process
(its -mp port, the port its SDP names) and never reads that socket. Its receive queue
is therefore full a fraction of a second after media starts (a few hundred packets),
and from then on the kernel drops every packet that reaches it, counting each one in
the socket's `drops` (/proc/net/udp). So over a window in which that queue stays full
(same queued bytes at both ends) and SIPp never reads:

    packets delivered to the SIPp endpoint = increase of its socket's drops

exactly. The runner takes such a window in the middle of each step, when every call of
the step is established and none is being set up or torn down (teardown is left out on
purpose: a relay that frees a call at BYE drops the last packets still in flight from
the other side, which is not loss under load).

Packets the system under test lost within the window are, both exact counters:

- datagrams the kernel dropped at the system's own UDP sockets because their receive
  buffer was full (the `drops` of every socket its processes hold: the relay's media
  sockets, and the SIP sockets too), i.e. the relay or the SIP stack falling behind;
- packets the relay itself reports dropped or failed to send (its metrics).

Also reported, not judged (they are machine-wide and include other processes' traffic on
a shared machine): /proc/net/snmp `Udp: RcvbufErrors` minus the drops at the SIPp and
system sockets, `SndbufErrors` and `NoPorts`. A relay that silently forwards less than it
receives shows up as fewer packets delivered than expected (the delivered ratio).
"""

from __future__ import annotations

import math

import os
import socket
from dataclasses import dataclass
from pathlib import Path


def udp_snmp() -> dict[str, int]:
    """The `Udp:` counters of /proc/net/snmp (this network namespace)."""
    with open("/proc/net/snmp") as f:
        lines = [ln.split() for ln in f.read().splitlines() if ln.startswith("Udp:")]
    names, values = lines[0][1:], lines[1][1:]
    return {n: int(v) for n, v in zip(names, values)}


@dataclass(frozen=True)
class SocketStat:
    rx_queue: int  # bytes queued
    drops: int


def socket_stat(port: int) -> SocketStat | None:
    """Queue and drops of the IPv4 UDP socket bound on 127.0.0.1:port (None if none)."""
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            addr, p = fields[1].split(":")
            if int(p, 16) == port and addr in ("0100007F", "00000000"):
                return SocketStat(rx_queue=int(fields[4].split(":")[1], 16), drops=int(fields[12]))
    return None


def port_bound(port: int) -> bool:
    return socket_stat(port) is not None


def free_media_port() -> int:
    """An even 127.0.0.1 UDP port with the next three free too (SIPp binds -mp and -mp+2)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port % 2 or port > 64000:
            continue
        socks = []
        try:
            for p in (port, port + 1, port + 2, port + 3):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free even UDP port pair on 127.0.0.1")


def socket_drops(pids: list[int]) -> dict[int, int]:
    """inode -> drops of every UDP socket (IPv4 and IPv6) held by these processes."""
    inodes = set()
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    out = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    inode = int(fields[9])
                    if inode in inodes:
                        out[inode] = int(fields[12])
        except OSError:
            continue
    return out


@dataclass
class Snapshot:
    """Everything the media accounting needs at one instant."""

    t: float
    snmp: dict
    uac: SocketStat | None  # the SIPp UAC's media socket (receives callee -> caller)
    uas: SocketStat | None  # the SIPp UAS's media socket (receives caller -> callee)
    relay: dict  # the system's relay counters
    system_sockets: dict  # inode -> drops of the system's UDP sockets


def window(a: Snapshot, b: Snapshot, calls: int) -> dict:
    """The media figures between two snapshots taken while `calls` calls stream."""
    secs = b.t - a.t
    d = {k: b.snmp.get(k, 0) - a.snmp.get(k, 0) for k in ("RcvbufErrors", "SndbufErrors", "NoPorts", "InErrors")}
    out: dict = {"seconds": round(secs, 3), "calls": calls}
    if not (a.uac and b.uac and a.uas and b.uas):
        out["error"] = "a SIPp media socket was not found at both ends of the window"
        return out
    to_caller = b.uac.drops - a.uac.drops
    to_callee = b.uas.drops - a.uas.drops
    queues_full = a.uac.rx_queue == b.uac.rx_queue and a.uas.rx_queue == b.uas.rx_queue
    relay_dropped = b.relay.get("dropped", 0) - a.relay.get("dropped", 0)
    relayed = b.relay.get("relayed", 0) - a.relay.get("relayed", 0)
    # Sockets present at both ends (in the concurrency window no call starts or ends).
    system_drops = sum(b.system_sockets[i] - a.system_sockets[i] for i in b.system_sockets if i in a.system_sockets)
    kernel_drops_elsewhere = max(0, d["RcvbufErrors"] - to_caller - to_callee - system_drops)
    lost = system_drops + int(relay_dropped)
    expected = 50.0 * secs * calls  # per direction: 50 packets/s per call
    delivered = to_caller + to_callee
    out.update({
        "delivered_to_caller": to_caller,
        "delivered_to_callee": to_callee,
        "delivered": delivered,
        "expected": round(2 * expected),
        "delivered_ratio": delivered / (2 * expected) if expected > 0 else None,
        "queues_full": queues_full,
        "system_socket_drops": system_drops,
        "system_sockets": len(b.system_sockets),
        "kernel_rcvbuf_drops_elsewhere": kernel_drops_elsewhere,
        "sndbuf_errors": d["SndbufErrors"],
        "no_port": d["NoPorts"],
        "relay_dropped": int(relay_dropped),
        "relay_counted": int(relayed),
        "lost": lost,
        "loss_ratio": lost / (delivered + lost) if delivered + lost else 0.0,
    })
    return out


def write_audio(workdir: Path) -> None:
    """caller.ulaw (440 Hz) and callee.ulaw (1 kHz): 5 s of G.711 u-law each, looped by SIPp."""
    def ulaw(sample: int) -> int:
        sign = 0x80 if sample < 0 else 0
        s = min(abs(sample), 32635) + 0x84
        exp, mask = 7, 0x4000
        while exp > 0 and not s & mask:
            exp -= 1
            mask >>= 1
        return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF

    workdir.mkdir(parents=True, exist_ok=True)
    for name, freq in (("caller.ulaw", 440.0), ("callee.ulaw", 1000.0)):
        (workdir / name).write_bytes(bytes(ulaw(int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
                                           for i in range(5 * 8000)))
