"""Run SIPp once and read back what happened.

The numbers come from SIPp's own statistics file (-trace_stat), last row = totals:
calls created, calls that reached the end of the scenario, retransmissions, the
response-time histogram. SIPp's own CPU comes from wait4() rusage, so a run where
the client, not the server, was the limit can be recognised.
"""

from __future__ import annotations

import csv
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .procs import OwnedProcesses

# A registration whose REGISTER goes unanswered this long counts as failed.
RECV_TIMEOUT_MS = 5000


@dataclass
class SippRun:
    label: str
    target_rate: int
    calls_requested: int
    exit_code: int | None = None
    killed_at_deadline: bool = False
    created: int = 0
    successful: int = 0
    failed: int = 0  # created - successful: covers timeouts, errors and calls cut off
    retransmissions: int = 0
    # SIPp's own failure counters (a call can count in one of them)
    failed_timeout: int = 0  # no answer within the receive timeout
    failed_unexpected: int = 0  # an answer other than the expected one (e.g. 403, 500, 503)
    failed_max_retrans: int = 0
    elapsed_s: float = 0.0  # SIPp's first to last statistics timestamp
    wall_s: float = 0.0
    sipp_cpu_s: float = 0.0
    avg_response_ms: float | None = None
    rt_buckets: list[tuple[str, int]] = field(default_factory=list)
    stat_path: str = ""
    error_path: str = ""

    @property
    def achieved_rate(self) -> float:
        return self.successful / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.created if self.created else 1.0

    @property
    def failure_kinds(self) -> str:
        if not self.failed:
            return "—"
        kinds = [(self.failed_timeout, "timeout"), (self.failed_unexpected, "error reply"),
                 (self.failed_max_retrans, "max retrans")]
        other = self.failed - sum(n for n, _ in kinds)
        text = ", ".join(f"{n} {k}" for n, k in kinds if n)
        if other > 0:
            text += (", " if text else "") + f"{other} unfinished"
        return text

    @property
    def p99_bucket(self) -> str | None:
        """The response-time bucket in which the 99th percentile falls, e.g. '<5 ms'."""
        total = sum(n for _, n in self.rt_buckets)
        if total == 0:
            return None
        seen = 0
        for label, n in self.rt_buckets:
            seen += n
            if seen >= 0.99 * total:
                return label
        return self.rt_buckets[-1][0]


def _duration_ms(text: str) -> float | None:
    """SIPp durations look like HH:MM:SS:uuuuuu."""
    parts = text.strip().split(":")
    if len(parts) != 4:
        return None
    h, m, s, us = (int(p) for p in parts)
    return ((h * 60 + m) * 60 + s) * 1000.0 + us / 1000.0


def _epoch(text: str) -> float:
    # "2026-11-23\t11:39:36.160326\t1795433976.160326": the last field is epoch seconds.
    return float(text.split("\t")[-1])


def stat_totals(path: Path) -> dict[str, str]:
    """The last row of a SIPp statistics file (the totals), by column name."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        raise RuntimeError(f"SIPp statistics file {path} has no data rows")
    return dict(zip(rows[0], rows[-1]))


def parse_stat_file(path: Path, run: SippRun) -> None:
    row = stat_totals(path)
    run.created = int(row["OutgoingCall(C)"])
    run.successful = int(row["SuccessfulCall(C)"])
    run.failed = run.created - run.successful
    run.retransmissions = int(row["Retransmissions(C)"])
    run.failed_timeout = int(row.get("FailedTimeoutOnRecv(C)", 0) or 0)
    run.failed_unexpected = int(row.get("FailedUnexpectedMessage(C)", 0) or 0)
    run.failed_max_retrans = int(row.get("FailedMaxUDPRetrans(C)", 0) or 0)
    run.elapsed_s = _epoch(row["CurrentTime"]) - _epoch(row["StartTime"])
    run.avg_response_ms = _duration_ms(row.get("ResponseTime1(C)", ""))
    run.rt_buckets = [
        (name.split("_", 1)[1] + " ms", int(value))
        for name, value in row.items()
        if name.startswith("ResponseTimeRepartition1_") and value.strip()
    ]


def run_sipp(
    owned: OwnedProcesses,
    *,
    label: str,
    scenario: Path,
    server_port: int,
    users_csv: Path,
    domain: str,
    expires: int,
    rate: int,
    calls: int,
    local_port: int,
    control_port: int,
    workdir: Path,
    deadline_s: float,
    source_ips: int = 1,
    trace_errors: bool = False,
) -> SippRun:
    run = SippRun(label=label, target_rate=rate, calls_requested=calls)
    stat = workdir / f"sipp-{label}.stat.csv"
    screen = workdir / f"sipp-{label}.out"
    errors = workdir / f"sipp-{label}.errors.log"
    for p in (stat, errors):
        p.unlink(missing_ok=True)
    argv = [
        "sipp", f"127.0.0.1:{server_port}",
        "-sf", str(scenario),
        "-inf", str(users_csv),
        "-key", "expires", str(expires),
        # Digest uri = the Request-URI (sip:<domain>); SIPp's default is the remote
        # address, which a registrar that checks the uri would reject.
        "-auth_uri", domain,
        "-key", "client_port", str(local_port),
        "-i", "127.0.0.1", "-p", str(local_port), "-cp", str(control_port),
        # Several source addresses are several flows, as from many phones; a server that
        # spreads flows over SO_REUSEPORT sockets needs them to use more than one worker.
        *(["-t", "u1"] if source_ips == 1 else ["-t", "ui", "-ip_field", "4"]),
        "-max_socket", "1000",
        "-r", str(rate), "-rp", "1000", "-m", str(calls),
        # Concurrency cap: generous (2 s of traffic) so SIPp does not throttle itself.
        "-l", str(max(1000, 2 * rate)),
        "-recv_timeout", str(RECV_TIMEOUT_MS),
        "-timeout", f"{int(deadline_s)}s",
        "-buff_size", str(4 * 1024 * 1024),
        # No default behaviours: a call aborted on an unexpected reply is just counted as
        # failed (by default SIPp would send a BYE, meaningless after a REGISTER).
        "-nd",
        "-nostdin",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
    ]
    if trace_errors:
        argv += ["-trace_err", "-error_file", str(errors)]
        run.error_path = str(errors)
    proc = owned.start(argv, log_path=screen, cwd=workdir)
    return finish_sipp(owned, proc, run, started=time.monotonic(), hard_end_s=deadline_s + 15, stat=stat)


def finish_sipp(owned: OwnedProcesses, proc, run: SippRun, *, started: float, hard_end_s: float,
                stat: Path) -> SippRun:
    """Waits for a SIPp started with owned.start() (its own -timeout bounds it; SIGKILL
    `hard_end_s` after `started` is the backstop if SIPp itself hangs), reaps it with its
    rusage (SIPp's CPU), and fills `run` from its statistics file."""
    hard_end = started + hard_end_s
    status = None
    rusage = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > hard_end:
            run.killed_at_deadline = True
            os.kill(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    owned.forget(proc)
    run.wall_s = time.monotonic() - started
    run.exit_code = os.waitstatus_to_exitcode(status)
    run.sipp_cpu_s = rusage.ru_utime + rusage.ru_stime
    run.stat_path = str(stat)
    if stat.exists():
        parse_stat_file(stat, run)
    else:
        run.created = run.calls_requested
        run.failed = run.calls_requested
    return run
