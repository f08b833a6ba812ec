"""Media relay benchmark: tongdai media vs rtpengine (userspace forwarding), same
generator (rtpgen), same machine, same run.

Each relay runs pinned to one core (--relay-core) and the generator to another
(--gen-core). For every configuration (relay x recording off/on) the runner climbs a
ladder of concurrent calls; at each level it starts a fresh relay, lets rtpgen set the
calls up through the relay's control protocol, stream G.711 both ways (50 pps each) for
--duration seconds and tear them down, and reads the relay's CPU time and RSS from /proc
(rtpgen samples them over the steady window). A level passes with zero loss, every call
set up and nothing misrouted; the ladder stops after the first level that does not pass.
Every level is bounded in calls and time, and so is the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import OwnedProcesses, exit_on_signals, free_port, machine_busy_seconds, tree_cpu_seconds

from . import report
from .relays import LOADTEST_DIR, REPO_DIR, Relay, Rtpengine, TongdaiMedia, check_tongdai_media, dir_bytes

RTPGEN = REPO_DIR / "target" / "release" / "rtpgen"


@dataclass
class Level:
    calls: int
    result: dict | None  # rtpgen's JSON line
    relay_alive: bool
    other_cores: float
    rtpgen_exit: int
    recorded_bytes: int = 0
    error: str = ""
    passed: bool = False
    reason: str = ""
    retry_of: int | None = None

    @property
    def generator_bound(self) -> bool:
        r = self.result or {}
        t = r.get("traffic") or {}
        b = r.get("baseline") or {}
        lag_p99 = (t.get("send_lag_us") or {}).get("p99", 0)
        # Not the generator's core busy time: on a shared machine other processes fill it.
        return t.get("generator_cores", 0) > 0.85 or b.get("lost", 0) > 0 or lag_p99 > 20_000


@dataclass
class ConfigResult:
    name: str
    record: bool
    version: str = ""
    command: list[str] = field(default_factory=list)
    error: str = ""
    levels: list[Level] = field(default_factory=list)
    stop_reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}{' +rec' if self.record else ''}"

    @property
    def best(self) -> Level | None:
        passed = [lv for lv in self.levels if lv.passed]
        return max(passed, key=lambda lv: lv.calls) if passed else None


def judge(level: Level, max_p99_ms: float) -> None:
    reasons = []
    r = level.result
    if not level.relay_alive:
        reasons.append("relay died")
    if r is None:
        reasons.append(level.error or f"rtpgen failed (exit {level.rtpgen_exit})")
    else:
        setup = r.get("setup") or {}
        t = r["traffic"]
        if setup.get("failed", 0):
            reasons.append(f"{setup['failed']} calls not set up")
        if t["lost"] > 0:
            reasons.append(f"lost {t['lost']} of {t['sent']} packets ({100 * t['loss_ratio']:.4f}%)")
        if t["misrouted"] > 0:
            reasons.append(f"{t['misrouted']} packets on the wrong leg")
        if t["sent"] == 0:
            reasons.append("nothing sent")
        p99 = (t.get("latency_us") or {}).get("p99", 0)
        # A relay behind its load queues packets for seconds before its socket buffers
        # overflow; that is saturation even before the first packet is lost.
        if p99 > max_p99_ms * 1000:
            reasons.append(f"latency p99 {p99 / 1000:.1f} ms > {max_p99_ms:g} ms (queueing)")
    level.passed = not reasons
    level.reason = "; ".join(reasons) or "pass"


def wait_for_quiet(args, own_pids: list[int]) -> tuple[float, float]:
    """Wait (bounded) until the rest of the machine is nearly idle: other processes'
    CPU, sampled over 1 s, at most --quiet-cores; give up after --quiet-wait s."""
    start = time.monotonic()
    while True:
        own0 = sum(tree_cpu_seconds(p) for p in own_pids)
        b0 = machine_busy_seconds()
        time.sleep(1.0)
        own1 = sum(tree_cpu_seconds(p) for p in own_pids)
        other = max(0.0, (machine_busy_seconds() - b0) - (own1 - own0))
        waited = time.monotonic() - start
        if other <= args.quiet_cores or waited >= args.quiet_wait:
            return waited, other
        time.sleep(2.0)


def run_level(owned: OwnedProcesses, relay: Relay, args, calls: int, raw_path: Path) -> Level:
    """Fresh relay, one rtpgen run, relay stopped. Bounded by rtpgen's own limits and a
    subprocess timeout."""
    waited, load = wait_for_quiet(args, [])
    if waited > 1.5:
        print(f"  [{relay.label}] waited {waited:.0f} s for the machine to quieten "
              f"(other load now {load:.2f} cores)", flush=True)
    if relay.recordings.exists():
        shutil.rmtree(relay.recordings, ignore_errors=True)
    proc = relay.start(owned, free_port())
    try:
        gen_argv = [
            *args.sched_prefix, "taskset", "-c", str(args.gen_core), str(args.rtpgen),
            *relay.rtpgen_args(),
            "--calls", str(calls),
            "--duration", str(args.duration),
            "--ramp", str(args.ramp),
            "--baseline", str(args.baseline),
            "--threads", str(args.gen_threads),
            "--relay-pid", str(proc.pid),
            "--relay-cpu", str(relay.core),
            "--ready-timeout", str(int(args.startup_timeout)),
            "--setup-limit", str(args.setup_limit),
            "--label", f"{relay.label} {calls}",
        ]
        if relay.record:
            gen_argv.append("--record")
        timeout = 2 * args.setup_limit + args.baseline + args.ramp + args.duration + args.startup_timeout + 60
        cpu0 = tree_cpu_seconds(proc.pid)
        busy0 = machine_busy_seconds()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        gen = owned.start(gen_argv, log_path=relay.workdir / f"rtpgen-{calls}.log", cwd=relay.workdir)
        # rtpgen writes its JSON line on stdout; the log file holds both streams.
        try:
            gen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            owned.stop(gen)
        owned.forget(gen)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        alive = proc.poll() is None
        relay_cpu = (tree_cpu_seconds(proc.pid) - cpu0) if alive else 0.0
        gen_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        other = max(0.0, (machine_busy_seconds() - busy0 - relay_cpu - gen_cpu) / wall) if wall > 0 else 0.0
        log = (relay.workdir / f"rtpgen-{calls}.log").read_text(errors="replace")
        result = None
        for line in reversed(log.splitlines()):
            if line.startswith("{") and '"tool":"rtpgen"' in line:
                result = json.loads(line)
                break
        level = Level(calls=calls, result=result, relay_alive=alive, other_cores=other,
                      rtpgen_exit=gen.returncode if gen.returncode is not None else -1)
        if result is None:
            level.error = "rtpgen: " + " | ".join(log.strip().splitlines()[-3:])
    finally:
        owned.stop(proc)
    if relay.record:
        level.recorded_bytes = dir_bytes(relay.recordings)
        shutil.rmtree(relay.recordings, ignore_errors=True)
    judge(level, args.max_p99_ms)
    with raw_path.open("a") as f:
        f.write(json.dumps({
            "system": relay.name, "record": relay.record, "calls": calls, "passed": level.passed,
            "reason": level.reason, "relay_alive": alive, "other_cores": round(other, 3),
            "recorded_bytes": level.recorded_bytes, "relay_command": relay.command,
            "rtpgen_command": gen_argv, "rtpgen": result,
        }) + "\n")
    print(f"  [{relay.label}] {calls} calls: {summarize(level)} -> {level.reason}", flush=True)
    return level


def summarize(level: Level) -> str:
    r = level.result
    if not r:
        return level.error or "no result"
    t, p = r["traffic"], r.get("relay_process") or {}
    a = r.get("added_latency_us") or {}
    return (f"sent {t['sent']} lost {t['lost']}, relay {p.get('cores', 0):.3f} cores "
            f"(its core busy {p.get('core_busy') or 0:.2f}; {p.get('calls_per_core', 0):.0f} calls/core), "
            f"added p50 {a.get('p50', 0):.1f} p99 {a.get('p99', 0):.1f} µs, "
            f"{p.get('kib_per_call', 0):.1f} KiB/call, gen {t.get('generator_cores', 0):.2f} cores "
            f"(its core busy {t.get('generator_core_busy') or 0:.2f}), other {level.other_cores:.2f} cores")


def bench_config(owned, relay: Relay, args, raw_path: Path, deadline: float) -> ConfigResult:
    res = ConfigResult(name=relay.name, record=relay.record, version=relay.version())
    print(f"== {relay.label}: {res.version}", flush=True)
    per_level = 2 * args.quiet_wait / 3 + args.baseline + args.ramp + args.duration + 30
    last_pass, first_fail = None, None

    def measure(calls: int) -> Level:
        level = run_level(owned, relay, args, calls, raw_path)
        res.levels.append(level)
        res.command = relay.command
        # A failure under outside load says more about the machine: measure it once more.
        if not level.passed and level.relay_alive and level.other_cores > args.quiet_cores:
            level.reason += f" [other load {level.other_cores:.2f} cores: re-measured]"
            level = run_level(owned, relay, args, calls, raw_path)
            level.retry_of = calls
            res.levels.append(level)
        return level

    for calls in args.levels:
        if calls > relay.max_calls:
            res.stop_reason = (f"{calls} calls need {calls * relay.ports_per_call} media ports; the range "
                               f"{relay.port_min}-{relay.port_max} holds {relay.max_calls} calls")
            break
        if time.monotonic() + per_level > deadline:
            res.stop_reason = f"time budget (--max-minutes {args.max_minutes}) reached before {calls} calls"
            break
        level = measure(calls)
        if not level.passed:
            first_fail = calls
            res.stop_reason = f"first level with loss or failure: {calls} calls ({level.reason})"
            if not level.relay_alive:
                res.error = f"{relay.name} died at {calls} calls. Log tail:\n{relay.log_tail()}"
            break
        last_pass = calls
        if level.generator_bound:
            res.stop_reason = (f"the generator was the limit at {calls} calls (> 0.85 of its core, send lag "
                               f"p99 > 20 ms, or loss on the direct path): higher levels would measure rtpgen")
            break
    else:
        res.stop_reason = "end of the ladder"
    # Bisect between the last pass and the first failure: the highest passing level is
    # where calls per core is read, so it should be near saturation.
    for _ in range(args.refine):
        if first_fail is None or res.error:
            break
        low = last_pass or 0
        mid = (low + first_fail) // 2
        if mid <= low or first_fail - mid < max(50, first_fail // 10):
            break
        if time.monotonic() + per_level > deadline:
            break
        level = measure(mid)
        if level.passed:
            last_pass = mid
        else:
            first_fail = mid
        res.stop_reason += f"; refined at {mid} calls: {'pass' if level.passed else level.reason}"
        if not level.relay_alive:
            res.error = f"{relay.name} died at {mid} calls. Log tail:\n{relay.log_tail()}"
    print(f"  [{relay.label}] stopped: {res.stop_reason}", flush=True)
    return res


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="media_bench",
        description="RTP relay benchmark: tongdai media vs rtpengine (userspace), one core each, rtpgen on another.",
    )
    p.add_argument("--systems", default="rtpengine,tongdai",
                   help="comma-separated, measured in this order (default: rtpengine,tongdai)")
    p.add_argument("--recording", default="off,on",
                   help="recording modes to measure: off, on, or off,on (default)")
    p.add_argument("--levels", default="100 500 1000 2000 3000 4000 5000 6000 8000 10000",
                   help="concurrent calls, climbed in order until one loses packets (space or comma separated)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds every call streams at each level")
    p.add_argument("--ramp", type=float, default=2.0, help="seconds over which calls start streaming")
    p.add_argument("--baseline", type=float, default=3.0,
                   help="seconds of direct loopback traffic before each level (the added-latency baseline)")
    p.add_argument("--max-p99-ms", type=float, default=50.0,
                   help="a level also fails when the relay path's p99 latency exceeds this (queueing)")
    p.add_argument("--sched", choices=["fifo", "other"], default=None,
                   help="scheduling class of the relay and rtpgen: fifo = SCHED_FIFO priority 10 via chrt "
                        "(default as root: keeps other processes' bursts out of the measurement), other = normal")
    p.add_argument("--refine", type=int, default=1,
                   help="bisection steps between the last passing and the first failing level")
    p.add_argument("--relay-core", type=int, default=0)
    p.add_argument("--gen-core", type=int, default=1)
    p.add_argument("--gen-threads", type=int, default=1)
    p.add_argument("--rtpengine-ports", default="2000-16999", help="rtpengine's media port range")
    p.add_argument("--tongdai-ports", default="17000-31999", help="tongdai's media port range")
    p.add_argument("--tongdai-bin", type=Path, default=TongdaiMedia.binary)
    p.add_argument("--tongdai-args", default="", help="extra arguments for `tongdai media` (shell words)")
    p.add_argument("--rtpgen", type=Path, default=RTPGEN)
    p.add_argument("--setup-limit", type=int, default=300, help="seconds allowed to set up (and to tear down) a level's calls")
    p.add_argument("--startup-timeout", type=float, default=20.0)
    p.add_argument("--quiet-cores", type=float, default=0.3,
                   help="before each level, wait while other processes use more than this many cores")
    p.add_argument("--quiet-wait", type=float, default=90.0,
                   help="longest wait for a quiet machine before a level (s); then run anyway")
    p.add_argument("--max-minutes", type=float, default=60.0, help="bound on the whole run")
    p.add_argument("--out", type=Path, default=None, help="report path (default: loadtest/results/media-<date>.md)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the run directory (relay and rtpgen logs)")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.recording = [m.strip() for m in args.recording.split(",") if m.strip()]
    args.levels = [int(x) for x in args.levels.replace(",", " ").split()]
    for s in args.systems:
        if s not in ("rtpengine", "tongdai"):
            p.error(f"unknown system '{s}' (known: rtpengine, tongdai)")
    for m in args.recording:
        if m not in ("off", "on"):
            p.error(f"unknown recording mode '{m}' (off, on)")
    if not args.levels or any(c <= 0 or c > 100_000 for c in args.levels):
        p.error("--levels: 1..100000 calls each")
    if args.relay_core == args.gen_core and (os.cpu_count() or 1) > 1:
        p.error("--relay-core and --gen-core must differ")
    if args.sched is None:
        args.sched = "fifo" if os.geteuid() == 0 else "other"
    if args.sched == "fifo" and os.geteuid() != 0:
        p.error("--sched fifo needs root (chrt -f)")
    args.sched_prefix = ["chrt", "-f", "10"] if args.sched == "fifo" else []
    return args


def port_range(text: str) -> tuple[int, int]:
    lo, hi = (int(x) for x in text.split("-"))
    return lo, hi


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = os.environ.get("BENCH_COMMAND") or shlex.join([sys.executable, "-m", "media.media_bench", *argv])
    if not args.rtpgen.exists():
        print(f"media_bench: {args.rtpgen} missing; cargo build --release -p tongdai-rtpgen", file=sys.stderr)
        return 2
    for tool in ["taskset", "chrt"] + (["rtpengine"] if "rtpengine" in args.systems else []):
        if shutil.which(tool) is None:
            print(f"media_bench: '{tool}' not found; run loadtest/media_bench.sh (it installs it)", file=sys.stderr)
            return 2
    tongdai_problem = check_tongdai_media(args.tongdai_bin) if "tongdai" in args.systems else None
    if tongdai_problem:
        print(f"media_bench: tongdai skipped: {tongdai_problem}", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="tongdai-media-bench."))
    owned = OwnedProcesses()

    exit_on_signals()
    started = time.time()
    deadline = time.monotonic() + args.max_minutes * 60
    out = args.out or report.default_path(LOADTEST_DIR / "results", started)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw_path = out.with_suffix(".jsonl")
    results: list[ConfigResult] = []
    try:
        for mode in args.recording:
            for name in args.systems:
                record = mode == "on"
                workdir = tmp / f"{name}{'-rec' if record else ''}"
                if name == "rtpengine":
                    lo, hi = port_range(args.rtpengine_ports)
                    relay = Rtpengine(name=name, record=record, workdir=workdir, core=args.relay_core,
                                      port_min=lo, port_max=hi, sched=args.sched_prefix)
                else:
                    if tongdai_problem:
                        results.append(ConfigResult(name=name, record=record, error=tongdai_problem,
                                                    stop_reason="not run"))
                        continue
                    lo, hi = port_range(args.tongdai_ports)
                    TongdaiMedia.binary = args.tongdai_bin
                    relay = TongdaiMedia(name=name, record=record, workdir=workdir, core=args.relay_core,
                                         port_min=lo, port_max=hi, extra_args=shlex.split(args.tongdai_args),
                                         sched=args.sched_prefix)
                results.append(bench_config(owned, relay, args, raw_path, deadline))
    finally:
        owned.stop_all()

    out.write_text(report.render(results, args, command, started, time.time()))
    print(f"report: {out}\nraw:    {raw_path}", flush=True)
    if args.keep_tmp:
        print(f"run files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if results and all(not r.error and r.best for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
