"""SIPp processes of one phase and what they leave behind.

Each SIPp process runs in its own directory (SIPp names its -trace_rtt and
-trace_error_codes files after the scenario and its PID, in its working directory) and
writes, every second (-trace_stat -fd 1):

- `stat.csv`: SIPp's statistics, one row per second: periodic (P) and cumulative (C)
  counters, the CurrentCall gauge, failure counters by cause;
- `*_rtt.csv` (UAC only, -trace_rtt -rtt_freq 1): one line per completed RTD 1 (the
  scenarios time INVITE sent -> 200 received, or first REGISTER -> 200): milliseconds
  since SIPp started and the response time in ms (SIPp's clock: 1 ms resolution);
- `*_error_codes.csv` (-trace_error_codes): per interval, the status codes of the
  unexpected replies that aborted calls;
- `errors.log` (-trace_err): the unexpected messages themselves.

Every process is bounded by -m (calls) and -timeout (seconds), with a SIGKILL backstop
a little later (bench.sipp.finish_sipp).
"""

from __future__ import annotations

import csv
import glob
import os
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import OwnedProcesses
from bench.sipp import RECV_TIMEOUT_MS, SippRun, finish_sipp

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass
class SippProc:
    """One SIPp process: started, then finished (reaped, statistics read)."""

    role: str  # "uac", "uas", "register"
    workdir: Path
    argv: list[str]
    deadline_s: float  # its own -timeout
    proc: object = None
    started: float = 0.0
    run: SippRun | None = None

    @property
    def stat_path(self) -> Path:
        return self.workdir / "stat.csv"

    def start(self, owned: OwnedProcesses) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.proc = owned.start(self.argv, log_path=self.workdir / "screen.log", cwd=self.workdir)

    def alive(self) -> bool:
        """Still running. Does not reap it (WNOWAIT): finish() reaps it with its rusage."""
        if self.proc is None or self.proc.returncode is not None:
            return False
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def finish(self, owned: OwnedProcesses, *, now: bool = False) -> SippRun:
        """Waits for SIPp to end (SIGKILL 15 s after its own -timeout; at once with `now`),
        reaps it and reads its totals."""
        run = SippRun(label=self.role, target_rate=0, calls_requested=0)
        hard = (time.monotonic() - self.started + 0.5) if now else self.deadline_s + 15
        try:
            self.run = finish_sipp(owned, self.proc, run, started=self.started, hard_end_s=hard,
                                   stat=self.stat_path)
        except RuntimeError:  # a statistics file without data rows: SIPp died at start
            self.run = run
        return self.run

    def command(self) -> str:
        return shlex.join(self.argv)


def common_args(*, scenario: str, port: int, media_port: int | None, calls: int, timeout_s: float) -> list[str]:
    args = ["-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port)]
    if media_port is not None:
        args += ["-mi", "127.0.0.1", "-mp", str(media_port)]
    return args + [
        "-m", str(calls),
        "-timeout", f"{int(timeout_s)}s",
        "-buff_size", str(4 * 1024 * 1024),
        "-nostdin",
        "-trace_stat", "-stf", "stat.csv", "-fd", "1",
        "-trace_err", "-error_file", "errors.log",
        "-trace_error_codes",
    ]


def uac_rtt_args() -> list[str]:
    return ["-trace_rtt", "-rtt_freq", "1", "-recv_timeout", str(RECV_TIMEOUT_MS)]


# --- reading what SIPp wrote -------------------------------------------------------------


def _epoch(text: str) -> float:
    # "2026-11-23\t11:39:36.160326\t1795433976.160326": the last field is epoch seconds.
    return float(text.split("\t")[-1])


def _ms(text: str) -> float | None:
    """SIPp durations look like HH:MM:SS:uuuuuu."""
    parts = text.strip().split(":")
    if len(parts) != 4:
        return None
    try:
        h, m, s, us = (int(p) for p in parts)
    except ValueError:
        return None
    return ((h * 60 + m) * 60 + s) * 1000.0 + us / 1000.0


STAT_COLUMNS = {
    "created": "OutgoingCall(P)",
    "incoming": "IncomingCall(P)",
    "successful": "SuccessfulCall(P)",
    "failed": "FailedCall(P)",
    "retransmissions": "Retransmissions(P)",
    "timeouts": "FailedTimeoutOnRecv(P)",
    "unexpected": "FailedUnexpectedMessage(P)",
    "max_retrans": "FailedMaxUDPRetrans(P)",
}


def read_stat_rows(path: Path) -> list[dict]:
    """SIPp's per-interval statistics as [{t (epoch), current, created, successful, ...}].

    The first row (written at start, all zero) is kept: it anchors the time axis."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return []
    if len(rows) < 2:
        return []
    head = rows[0]
    out = []
    for raw in rows[1:]:
        r = dict(zip(head, raw))
        try:
            row = {"t": _epoch(r["CurrentTime"]), "current": int(r.get("CurrentCall", 0) or 0)}
            for key, col in STAT_COLUMNS.items():
                row[key] = int(r.get(col, 0) or 0)
        except (KeyError, ValueError):
            continue  # a row cut short when SIPp was killed
        row["avg_response_ms"] = _ms(r.get("ResponseTime1(P)", ""))
        out.append(row)
    return out


def read_totals(path: Path) -> dict:
    """The cumulative counters of the last row: {"created", "incoming", "successful", "failed",
    "retransmissions", "causes": {cause: n} (the non-zero Failed*(C) counters)}."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    last = dict(zip(rows[0], rows[-1]))

    def n(col: str) -> int:
        try:
            return int(last.get(col, 0) or 0)
        except ValueError:
            return 0

    out = {key: n(col.replace("(P)", "(C)")) for key, col in STAT_COLUMNS.items()
           if key in ("created", "incoming", "successful", "failed", "retransmissions")}
    out["causes"] = {}
    for col in last:
        if col.startswith("Failed") and col.endswith("(C)") and col != "FailedCall(C)" and n(col):
            out["causes"][col[len("Failed"):-3]] = n(col)
    return out


def start_epoch(path: Path) -> float | None:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        return _epoch(dict(zip(rows[0], rows[1]))["StartTime"])
    except (FileNotFoundError, IndexError, KeyError, ValueError):
        return None


def read_rtt(workdir: Path, start: float | None) -> list[tuple[float, float]]:
    """[(epoch of the response, response time ms)] for RTD 1, from the -trace_rtt file."""
    if start is None:
        return []
    out = []
    for name in glob.glob(str(workdir / "*_rtt.csv")):
        with open(name) as f:
            next(f, None)
            for line in f:
                parts = line.strip().split(";")
                if len(parts) < 3 or parts[2] != "1":
                    continue
                try:
                    out.append((start + float(parts[0]) / 1000.0, float(parts[1])))
                except ValueError:
                    continue
    out.sort()
    return out


def read_error_codes(workdir: Path) -> Counter:
    """Status codes of the unexpected replies that aborted calls, counted."""
    codes: Counter = Counter()
    for name in glob.glob(str(workdir / "*_error_codes.csv")):
        with open(name) as f:
            for line in f:
                parts = line.rstrip("\n").split(";")
                if len(parts) >= 3:
                    codes.update(c for c in parts[2].split(",") if c.strip())
    return codes


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an ascending list; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n q / 100), at least 1
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def per_second_percentiles(rtt: list[tuple[float, float]], qs=(50, 95, 99)) -> list[dict]:
    """Setup-time percentiles of the responses received in each whole second."""
    buckets: dict[int, list[float]] = {}
    for t, ms in rtt:
        buckets.setdefault(int(t), []).append(ms)
    out = []
    for sec in sorted(buckets):
        vals = sorted(buckets[sec])
        row = {"t": sec + 0.5, "n": len(vals)}
        for q in qs:
            row[f"p{q}"] = percentile(vals, q)
        out.append(row)
    return out


@dataclass
class SippOutcome:
    """What one SIPp process reports, in the form the phase result needs."""

    role: str
    command: str
    exit_code: int | None
    killed: bool
    created: int
    incoming: int
    successful: int
    failed: int
    retransmissions: int
    elapsed_s: float
    cpu_s: float
    failures_by_cause: dict
    error_codes: dict
    rows: list = field(default_factory=list)
    rtt: list = field(default_factory=list)


def outcome(p: SippProc) -> SippOutcome:
    run = p.run
    rows = read_stat_rows(p.stat_path)
    totals = read_totals(p.stat_path)
    return SippOutcome(
        role=p.role, command=p.command(), exit_code=run.exit_code if run else None,
        killed=bool(run and run.killed_at_deadline), created=totals.get("created", 0),
        incoming=totals.get("incoming", 0), successful=totals.get("successful", 0), failed=totals.get("failed", 0),
        retransmissions=totals.get("retransmissions", 0),
        elapsed_s=run.elapsed_s if run else 0.0, cpu_s=run.sipp_cpu_s if run else 0.0,
        failures_by_cause=totals.get("causes", {}), error_codes=dict(read_error_codes(p.workdir)), rows=rows,
        rtt=read_rtt(p.workdir, start_epoch(p.stat_path)) if p.role in ("uac", "register") else [],
    )
