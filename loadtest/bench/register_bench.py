"""REGISTER/s benchmark: tongdai vs Kamailio (in-memory usrloc), same SIPp scenario,
same machine, same run.

For each system: start it, prove it registers every user (one pass over all users at
a low rate, 100% 200 OK required), then climb a ladder of offered rates and keep the
highest one that passes (failures < 0.1% and >= 95% of the offered rate achieved),
measuring the server's CPU over each step. Every step is bounded in calls and time,
and so is the whole run. See ../README.md for how to read the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import report
from .procs import OwnedProcesses, exit_on_signals, free_port, machine_busy_seconds, probe_sip_udp, tree_cpu_seconds
from .sipp import SippRun, run_sipp
from .systems import LOADTEST_DIR, Kamailio, SystemUnderTest, Tongdai, check_tongdai_binary
from .users import UserSet

MAX_FAILURE_RATIO = 0.001
MIN_ACHIEVED_FRACTION = 0.95


@dataclass
class Step:
    run: SippRun
    server_cpu_s: float
    machine_busy_s: float
    server_alive: bool
    passed: bool = False
    reason: str = ""
    # tongdai: commit latency quantiles and Raft batching counters after the step.
    commit: dict = field(default_factory=dict)

    @property
    def cpu_us_per_registration(self) -> float | None:
        return self.server_cpu_s * 1e6 / self.run.successful if self.run.successful else None

    @property
    def server_cores(self) -> float:
        return self.server_cpu_s / self.run.elapsed_s if self.run.elapsed_s > 0 else 0.0

    @property
    def sipp_cores(self) -> float:
        return self.run.sipp_cpu_s / self.run.elapsed_s if self.run.elapsed_s > 0 else 0.0

    @property
    def other_cores(self) -> float:
        """Machine CPU used by neither the server nor SIPp during the step (noise)."""
        if self.run.wall_s <= 0:
            return 0.0
        return max(0.0, (self.machine_busy_s - self.server_cpu_s - self.run.sipp_cpu_s) / self.run.wall_s)


@dataclass
class SystemResult:
    name: str
    version: str = ""
    workers: str = ""
    error: str = ""
    sanity: Step | None = None
    sanity_registered: int | None = None
    final_registered: int | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        passed = [s for s in self.steps if s.passed]
        return max(passed, key=lambda s: s.run.achieved_rate) if passed else None


def judge(step: Step) -> None:
    r = step.run
    reasons = []
    if not step.server_alive:
        reasons.append("server died")
    if r.killed_at_deadline:
        reasons.append("SIPp killed at deadline")
    if r.failure_ratio >= MAX_FAILURE_RATIO:
        reasons.append(f"failures {100 * r.failure_ratio:.3f}% >= {100 * MAX_FAILURE_RATIO:.1f}%")
    if r.achieved_rate < MIN_ACHIEVED_FRACTION * r.target_rate:
        reasons.append(f"achieved {r.achieved_rate:.0f}/s < {100 * MIN_ACHIEVED_FRACTION:.0f}% of offered")
    step.passed = not reasons
    step.reason = "; ".join(reasons) or "pass"


def wait_for_quiet(sut: SystemUnderTest, args) -> tuple[float, float]:
    """Wait (bounded) until the rest of the machine is nearly idle.

    The benchmark shares the machine with whatever else runs on it (builds, tests).
    Before each step it samples 1 s of machine CPU minus the server's own; while that
    exceeds --quiet-cores it waits, at most --quiet-wait seconds, then goes ahead
    anyway (the step's report shows the load it ran under). Returns (waited s, load).
    """
    start = time.monotonic()
    root = sut.root_pid()
    while True:
        c0, b0 = tree_cpu_seconds(root), machine_busy_seconds()
        time.sleep(1.0)
        other = max(0.0, (machine_busy_seconds() - b0) - (tree_cpu_seconds(root) - c0))
        waited = time.monotonic() - start
        if other <= args.quiet_cores or waited >= args.quiet_wait:
            return waited, other
        time.sleep(2.0)


def measure(owned, sut: SystemUnderTest, args, tmp: Path, users_csv: Path, label: str,
            rate: int, calls: int, trace_errors: bool = False) -> Step:
    waited, load = wait_for_quiet(sut, args)
    if waited > 1.5:
        print(f"  [{sut.name}] waited {waited:.0f} s for the machine to quieten "
              f"(other load now {load:.2f} cores)", flush=True)
    root = sut.root_pid()
    cpu0, busy0 = tree_cpu_seconds(root), machine_busy_seconds()
    run = run_sipp(
        owned,
        label=f"{sut.name}-{label}",
        scenario=args.scenario,
        server_port=sut.port,
        users_csv=users_csv,
        domain=args.realm,
        expires=args.expires,
        rate=rate,
        calls=calls,
        local_port=args.client_port,
        control_port=free_port(),
        workdir=tmp,
        deadline_s=calls / rate + 30,
        source_ips=args.source_ips,
        trace_errors=trace_errors,
    )
    alive = sut.proc.poll() is None
    cpu1, busy1 = (tree_cpu_seconds(root) if alive else cpu0), machine_busy_seconds()
    step = Step(run=run, server_cpu_s=cpu1 - cpu0, machine_busy_s=busy1 - busy0, server_alive=alive)
    if alive and hasattr(sut, "commit_figures"):
        step.commit = sut.commit_figures()
    judge(step)
    r = run
    print(
        f"  [{sut.name}] {label}: offered {rate}/s x {calls}: ok {r.successful}/{r.created}, "
        f"achieved {r.achieved_rate:.0f}/s, server {step.server_cores:.2f} cores, "
        f"{(step.cpu_us_per_registration or 0):.0f} us/reg, sipp {step.sipp_cores:.2f} cores, "
        f"other {step.other_cores:.2f} cores, retrans {r.retransmissions} -> {step.reason}",
        flush=True,
    )
    return step


def measure_rate(owned, sut, args, tmp, users_csv, rate: int, steps: list[Step]) -> Step:
    """One ladder step; a failure under outside load is re-measured once.

    A step that failed while other processes used more than --quiet-cores says more
    about the machine than about the server, so it is run again (once) after waiting
    for quiet. Both attempts stay in the report; the second decides.
    """
    time.sleep(args.pause)
    step = measure(owned, sut, args, tmp, users_csv, f"r{rate}", rate, rate * args.step_seconds)
    steps.append(step)
    if step.passed or not step.server_alive or step.other_cores <= args.quiet_cores:
        return step
    step.reason += f" [other load {step.other_cores:.2f} cores: re-measured]"
    time.sleep(args.pause)
    step = measure(owned, sut, args, tmp, users_csv, f"r{rate}-retry", rate, rate * args.step_seconds)
    steps.append(step)
    return step


def bench_system(owned, sut: SystemUnderTest, args, tmp: Path, users_csv: Path, deadline: float) -> SystemResult:
    res = SystemResult(name=sut.name, version=sut.version())
    print(f"== {sut.name}: {res.version}", flush=True)
    proc = sut.start(owned, free_port())
    try:
        status = probe_sip_udp(sut.port, args.startup_timeout, alive=lambda: proc.poll() is None)
        if status is None:
            res.error = (
                f"{sut.name} did not answer SIP OPTIONS on 127.0.0.1:{sut.port} within "
                f"{args.startup_timeout:.0f} s (exit code {proc.poll()}). Log tail:\n{sut.log_tail()}"
            )
            print(res.error, flush=True)
            return res
        print(f"  [{sut.name}] up on 127.0.0.1:{sut.port} (OPTIONS -> {status})", flush=True)
        res.workers = sut.worker_description()
        owned.remember_descendants(proc)

        # Sanity: every user registers once, at a rate any registrar sustains.
        res.sanity = measure(owned, sut, args, tmp, users_csv, "sanity", args.sanity_rate,
                             args.users, trace_errors=True)
        res.sanity_registered = sut.registered_count()
        s = res.sanity.run
        if s.successful != args.users or res.sanity.run.failed:
            res.error = (
                f"sanity pass failed: {s.successful}/{args.users} registrations got 200 OK "
                f"(SIPp exit {s.exit_code}; errors in {s.error_path}). Log tail:\n{sut.log_tail()}"
            )
            print(res.error, flush=True)
            return res

        def step_at(rate):
            step = measure_rate(owned, sut, args, tmp, users_csv, rate, res.steps)
            if not step.server_alive:
                res.error = f"{sut.name} died at {rate}/s. Log tail:\n{sut.log_tail()}"
            return step

        # Ladder of offered rates, then bisect between the last pass and first failure.
        last_pass, first_fail = None, None
        for rate in args.rates:
            if time.monotonic() + 2 * (args.step_seconds + 45) > deadline:
                print(f"  [{sut.name}] time budget reached; ladder stopped before {rate}/s", flush=True)
                break
            step = step_at(rate)
            if not step.server_alive:
                return res
            if step.passed:
                last_pass = rate
            else:
                first_fail = rate
                break
        res.final_registered = sut.registered_count()
        for _ in range(args.refine):
            if first_fail is None:
                break
            low = last_pass or 0
            mid = (low + first_fail) // 2
            if mid <= low or first_fail - mid < max(100, first_fail // 20):
                break
            if time.monotonic() + args.step_seconds + 45 > deadline:
                break
            step = step_at(mid)
            if not step.server_alive:
                return res
            if step.passed:
                last_pass = mid
            else:
                first_fail = mid
        res.final_registered = sut.registered_count()
        return res
    finally:
        owned.stop(proc)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="register_bench",
        description="REGISTER/s with digest auth: tongdai vs Kamailio (in-memory usrloc), same SIPp scenario.",
    )
    p.add_argument("--systems", default="kamailio,tongdai",
                   help="comma-separated, measured in this order (default: kamailio,tongdai)")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--first-extension", type=int, default=100_000)
    p.add_argument("--password-prefix", default="pw")
    p.add_argument("--realm", default="bench", help="digest realm and SIP domain of the users")
    p.add_argument("--expires", type=int, default=3600)
    p.add_argument("--source-ips", type=int, default=32,
                   help="SIPp sends from this many addresses 127.0.0.2.. (one fixed per user); "
                        "1 = everything from 127.0.0.1, one UDP flow")
    p.add_argument("--rates", default="1000,2000,4000,8000,12000,16000,20000,24000",
                   help="offered registrations/s, climbed in order until one fails")
    p.add_argument("--refine", type=int, default=2,
                   help="bisection steps between the last passing and first failing rate")
    p.add_argument("--step-seconds", type=int, default=40,
                   help="each step offers rate x this many calls; longer than SIP's 32 s transaction "
                        "linger (Timer J) so per-request state reaches steady state within a step")
    p.add_argument("--sanity-rate", type=int, default=500)
    p.add_argument("--pause", type=float, default=2.0, help="seconds of rest between steps")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="Kamailio UDP worker processes (default: nproc)")
    p.add_argument("--quiet-cores", type=float, default=0.3,
                   help="before each step, wait while other processes use more than this many cores")
    p.add_argument("--quiet-wait", type=float, default=90.0,
                   help="longest wait for a quiet machine before a step (s); then run anyway")
    p.add_argument("--startup-timeout", type=float, default=30.0)
    p.add_argument("--max-minutes", type=float, default=50.0, help="bound on the whole run")
    p.add_argument("--tongdai-bin", type=Path, default=None)
    p.add_argument("--tongdai-algorithms", default="MD5,SHA-256",
                   help="tongdai's [registrar] algorithms, in challenge order; SIPp 3.6 needs MD5 first")
    p.add_argument("--scenario", type=Path, default=LOADTEST_DIR / "scenarios" / "register_auth.xml")
    p.add_argument("--out", type=Path, default=None, help="report path (default: loadtest/results/register-<date>.md)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the run's temp dir (configs, SIPp logs)")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.rates = [int(r) for r in args.rates.split(",")]
    args.tongdai_algorithms = [a.strip() for a in args.tongdai_algorithms.split(",") if a.strip()]
    for s in args.systems:
        if s not in ("kamailio", "tongdai"):
            p.error(f"unknown system '{s}' (known: kamailio, tongdai)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = os.environ.get("BENCH_COMMAND") or shlex.join([sys.executable, "-m", "bench.register_bench", *argv])
    for tool in ["sipp"] + (["kamailio", "kamcmd"] if "kamailio" in args.systems else []):
        if shutil.which(tool) is None:
            print(f"register_bench: '{tool}' not found; run loadtest/install.sh first", file=sys.stderr)
            return 2
    tongdai_bin = args.tongdai_bin or Tongdai.binary
    if "tongdai" in args.systems:
        why = check_tongdai_binary(Path(tongdai_bin))
        if why:
            print(f"register_bench: {why}", file=sys.stderr)
            return 3

    # SIPp's port is part of every Contact it registers: keep it for the whole run so each
    # user refreshes one binding. A new port per step would add a contact per user per
    # step and hit the registrars' limit of 10 contacts per AoR after ten steps.
    args.client_port = free_port()
    users = UserSet(args.first_extension, args.users, args.password_prefix, args.realm)
    tmp = Path(tempfile.mkdtemp(prefix="tongdai-bench."))
    users_csv = tmp / "users.csv"
    users.write_sipp_csv(users_csv, args.source_ips)
    owned = OwnedProcesses()

    exit_on_signals()
    started = time.time()
    deadline = time.monotonic() + args.max_minutes * 60
    results: list[SystemResult] = []
    try:
        for name in args.systems:
            workdir = tmp / name
            if name == "kamailio":
                sut = Kamailio(name=name, workdir=workdir, users=users, workers=args.workers)
            else:
                sut = Tongdai(name=name, workdir=workdir, users=users, workers=args.workers,
                              binary=Path(tongdai_bin), algorithms=tuple(args.tongdai_algorithms),
                              http_port=free_port())
            results.append(bench_system(owned, sut, args, tmp, users_csv, deadline))
    finally:
        owned.stop_all()

    out = args.out or report.default_path(LOADTEST_DIR / "results", started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(results, args, command, started, time.time()))
    out.with_suffix(".json").write_text(json.dumps(report.raw(results, args, command, started), indent=1))
    print(f"report: {out}", flush=True)
    if args.keep_tmp:
        print(f"run files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(not r.error and r.best for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
