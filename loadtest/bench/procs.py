"""Processes the benchmark starts, and the CPU they use.

Only processes started here are ever signalled, and only by PID: the server we
spawned, and the workers it forked (recorded with their start time so a recycled PID
is never hit). CPU time comes from /proc/<pid>/stat (utime + stime), summed over the
process tree, because Kamailio works in forked processes and tongdai in threads.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    state: str
    utime: int  # clock ticks
    stime: int
    cutime: int
    cstime: int
    num_threads: int
    starttime: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces or parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=rest[0],
        ppid=int(rest[1]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
        num_threads=int(rest[17]),
        starttime=int(rest[19]),
    )


def tree(root: int) -> list[ProcStat]:
    """The live process tree under `root` (root included), from one scan of /proc."""
    stats: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st is not None:
                stats[st.pid] = st
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(stats[pid])
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root: int) -> float:
    """user+system CPU of every live process under root, plus what root has reaped."""
    procs = tree(root)
    ticks = sum(p.utime + p.stime for p in procs)
    ticks += sum(p.cutime + p.cstime for p in procs if p.pid == root)
    return ticks / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU-seconds spent non-idle by the whole machine so far (all cores), /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLK_TCK


class OwnedProcesses:
    """Registry of the processes this run started; stops them, and only them."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        # pid -> starttime of descendants seen while the parent was running
        self._descendants: dict[int, int] = {}

    def start(self, argv: list[str], *, log_path: Path, cwd: Path, env: dict | None = None) -> subprocess.Popen:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env
            )
        self._procs.append(proc)
        return proc

    def remember_descendants(self, proc: subprocess.Popen) -> None:
        for st in tree(proc.pid):
            if st.pid != proc.pid:
                self._descendants[st.pid] = st.starttime

    def stop(self, proc: subprocess.Popen, grace_s: float = 10.0) -> None:
        if proc.poll() is None:
            self.remember_descendants(proc)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # Workers forked by our child normally exit with it; any that did not are ours too.
        deadline = time.monotonic() + 5
        for pid, started in list(self._descendants.items()):
            while time.monotonic() < deadline:
                st = read_stat(pid)
                if st is None or st.starttime != started or st.state == "Z":
                    break
                time.sleep(0.1)
            else:
                st = read_stat(pid)
                if st is not None and st.starttime == started and st.state != "Z":
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self._descendants.pop(pid, None)
        if proc in self._procs:
            self._procs.remove(proc)

    def forget(self, proc: subprocess.Popen) -> None:
        """For a process already reaped by the caller (e.g. with os.wait4)."""
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def exit_on_signals() -> None:
    """SIGTERM and SIGINT raise SystemExit, so the runner's `finally` blocks stop every
    process it started and write the report before it exits."""

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def free_port(bound_tries: int = 50) -> int:
    """A 127.0.0.1 port free for both UDP and TCP right now."""
    for _ in range(bound_tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free 127.0.0.1 port for UDP+TCP after %d tries" % bound_tries)


def probe_sip_udp(port: int, deadline_s: float, alive=lambda: True) -> str | None:
    """Send OPTIONS to 127.0.0.1:port until any SIP response arrives (or the deadline).

    Returns the status line, or None. `alive` lets the caller stop early when the
    server process has died.
    """
    end = time.monotonic() + deadline_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        s.settimeout(0.25)
        n = 0
        while time.monotonic() < end and alive():
            n += 1
            msg = (
                f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{lport};rport;branch=z9hG4bK-probe{n}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@127.0.0.1:{lport}>;tag=probe{n}\r\n"
                f"To: <sip:probe@127.0.0.1:{port}>\r\n"
                f"Call-ID: probe-{os.getpid()}-{n}@127.0.0.1\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            s.sendto(msg.encode(), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            if data.startswith(b"SIP/2.0 "):
                return data.split(b"\r\n", 1)[0].decode(errors="replace")
    return None
