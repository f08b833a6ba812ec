"""Call-setup benchmark: tongdai's B2BUA with media anchored vs Kamailio + rtpengine,
same SIPp scenarios, same machine, same run.

Per system, three configurations, each started fresh:

1. **cps**: the calls-per-second ladder. SIPp UAC -> system -> SIPp UAS, calls of a fixed
   short hold (--hold-ms), offered at rising rates (`sipp -r R -rp 1000 -m R*step`),
   stopping at the first failing rate and bisecting; once signalling only
   (`--modes signalling`: SDP anchored on the relay, no RTP) and once with G.711 RTP
   both ways (`rtp`). A step passes with < 0.1% failed calls and >= 95% of the offered
   rate achieved. The system's CPU (its whole process trees) is measured over each step.
2. **concurrency** (recording off, and on): N calls set up at --ramp-rate, all held
   together for --plateau seconds with RTP both ways; over a window in the plateau the
   packets delivered to the SIPp endpoints and every packet lost on the way are counted
   (see media.py). A level passes when every call completes, nothing is lost and the
   endpoints received at least 95% of the packets the calls should carry.

Every SIPp run is bounded in calls and time (-m, -timeout, and a SIGKILL backstop), and
so is the whole run (--max-minutes). Only processes started here are ever stopped.
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

from bench.procs import OwnedProcesses, exit_on_signals, free_port, machine_busy_seconds, probe_sip_udp, tree_cpu_seconds
from bench.sipp import RECV_TIMEOUT_MS, SippRun, finish_sipp, stat_totals
from bench.systems import LOADTEST_DIR
from media.media_bench import wait_for_quiet

from . import media, report
from .systems import CALLER, DIALLED, TENANT, CallSystem, KamailioRtpengine, TongdaiCalls

MAX_FAILURE_RATIO = 0.001
MIN_ACHIEVED_FRACTION = 0.95
MIN_DELIVERED_RATIO = 0.95
SCENARIOS = LOADTEST_DIR / "scenarios"


@dataclass
class Step:
    phase: str  # "sanity", "cps" or "concurrency"
    mode: str  # "signalling" or "rtp"
    rate: int
    calls: int
    hold_ms: int
    uac: SippRun
    uas: dict
    sut_cpu_s: float
    machine_busy_s: float
    alive: bool
    media: dict | None = None
    recorded_bytes: int = 0
    leftover_sessions: float | None = None
    argv: dict = field(default_factory=dict)  # the exact SIPp commands
    passed: bool = False
    reason: str = ""

    @property
    def achieved_rate(self) -> float:
        """Calls completed per second of the creation period (SIPp's elapsed time minus
        the last calls' hold)."""
        span = self.uac.elapsed_s - self.hold_ms / 1000.0
        return self.uac.successful / span if span > 0 else 0.0

    @property
    def uas_failed(self) -> int:
        """Calls the far end (SIPp UAS) counted as failed. Its own failure counter, not
        calls - successful: a UAS that must be killed (SIPp 3.6 sometimes hangs on exit after
        rtp_stream calls) leaves statistics up to 1 s old, in which the last calls are
        still running, not failed."""
        return self.uas.get("failed", 0)

    @property
    def sut_cores(self) -> float:
        return self.sut_cpu_s / self.uac.wall_s if self.uac.wall_s > 0 else 0.0

    @property
    def cpu_us_per_call(self) -> float | None:
        return self.sut_cpu_s * 1e6 / self.uac.successful if self.uac.successful else None

    @property
    def sipp_cores(self) -> float:
        cpu = self.uac.sipp_cpu_s + self.uas.get("cpu_s", 0.0)
        return cpu / self.uac.wall_s if self.uac.wall_s > 0 else 0.0

    @property
    def other_cores(self) -> float:
        if self.uac.wall_s <= 0:
            return 0.0
        own = self.sut_cpu_s + self.uac.sipp_cpu_s + self.uas.get("cpu_s", 0.0)
        return max(0.0, (self.machine_busy_s - own) / self.uac.wall_s)


@dataclass
class ConfigResult:
    system: str
    config: str  # "cps", "concurrency", "concurrency +rec"
    version: str = ""
    describe: str = ""
    commands: list[str] = field(default_factory=list)
    error: str = ""
    steps: list[Step] = field(default_factory=list)

    def best(self, mode: str, phase: str = "cps") -> Step | None:
        ok = [s for s in self.steps if s.passed and s.mode == mode and s.phase == phase]
        key = (lambda s: s.achieved_rate) if phase == "cps" else (lambda s: s.calls)
        return max(ok, key=key) if ok else None


def judge(step: Step, strict_media: bool) -> None:
    r = step.uac
    reasons = []
    if not step.alive:
        reasons.append("system died")
    if r.killed_at_deadline:
        reasons.append("SIPp UAC killed at deadline")
    if r.created < step.calls:
        reasons.append(f"only {r.created}/{step.calls} calls created")
    # CPS: fewer than 0.1% failed calls; sanity and concurrency: none. A call fails when
    # either end says so: a B2BUA answers the caller's BYE itself, so the caller can
    # complete a call whose far leg failed.
    if step.uas_failed > 0:
        reasons_uas = f"; far end: {step.uas_failed} failed"
    else:
        reasons_uas = ""
    failed = max(r.failed, step.uas_failed)
    ratio = failed / step.calls if step.calls else 1.0
    if (ratio >= MAX_FAILURE_RATIO) if step.phase == "cps" else failed > 0:
        reasons.append(f"{failed} failed calls ({100 * ratio:.3f}%: caller side {r.failure_kinds}{reasons_uas})")
    if step.phase == "cps" and step.achieved_rate < MIN_ACHIEVED_FRACTION * step.rate:
        reasons.append(f"achieved {step.achieved_rate:.0f}/s < {100 * MIN_ACHIEVED_FRACTION:.0f}% of offered")
    m = step.media
    if strict_media:
        if not m or m.get("error"):
            reasons.append(f"media not measured: {(m or {}).get('error', 'no window')}")
        else:
            if m["lost"] > 0:
                reasons.append(f"lost {m['lost']} packets")
            if not m["queues_full"]:
                reasons.append("SIPp media queue not full at both ends of the window (count inexact)")
            if (m["delivered_ratio"] or 0) < MIN_DELIVERED_RATIO:
                reasons.append(f"endpoints got {100 * (m['delivered_ratio'] or 0):.1f}% of the expected packets")
    step.passed = not reasons
    step.reason = "; ".join(reasons) or "pass"


def sipp_common(args, scenario: str, port: int, mp: int, label: str, tmp: Path) -> list[str]:
    return [
        "-sf", str(SCENARIOS / scenario),
        "-t", "u1", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(port), "-mp", str(mp),
        "-cp", str(free_port()),
        "-buff_size", str(4 * 1024 * 1024),
        "-nostdin",
        "-trace_stat", "-stf", str(tmp / f"sipp-{label}.stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(tmp / f"sipp-{label}.errors.log"),
    ]


def run_step(owned, sut: CallSystem, args, tmp: Path, *, phase: str, mode: str, rate: int, calls: int,
             hold_ms: int, limit: int, window: tuple[float, float] | None, window_calls: int) -> Step:
    """One SIPp UAS + one SIPp UAC run against `sut`; `window` = (start, end) seconds after
    the UAC starts over which the media is counted."""
    waited, load = wait_for_quiet(args, sut.root_pids())
    if waited > 1.5:
        print(f"  [{sut.label}] waited {waited:.0f} s for the machine to quieten (other load {load:.2f} cores)",
              flush=True)
    rtp = mode == "rtp"
    label = f"{sut.name}-{phase}-{mode}-{rate}x{calls}-{int(time.time() * 1000) % 10_000_000}"
    uac_mp, uas_mp = media.free_media_port(), media.free_media_port()
    # Every bound below is generous: calls/rate to create them, the hold, then 30 s for
    # the slowest call (SIPp's receive timeout is 5 s per message).
    run_s = calls / rate + hold_ms / 1000.0 + 30
    uas_argv = ["sipp", *sipp_common(args, "call_uas_rtp.xml" if rtp else "call_uas.xml", sut.uas_port, uas_mp,
                                     label + "-uas", tmp),
                "-m", str(calls), "-timeout", f"{int(run_s + 10)}s"]
    uas_stat = tmp / f"sipp-{label}-uas.stat.csv"
    uas_started = time.monotonic()
    uas = owned.start(uas_argv, log_path=tmp / f"sipp-{label}-uas.out", cwd=tmp)
    end = time.monotonic() + 10
    while not media.port_bound(sut.uas_port):
        if uas.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"SIPp UAS did not bind 127.0.0.1:{sut.uas_port} "
                               f"(exit {uas.poll()}); see {tmp / f'sipp-{label}-uas.out'}")
        time.sleep(0.05)

    uac_argv = ["sipp", f"127.0.0.1:{sut.port}",
                *sipp_common(args, "call_uac_rtp.xml" if rtp else "call_uac.xml", sut.uac_port, uac_mp,
                             label + "-uac", tmp),
                "-key", "caller", CALLER, "-key", "dialled", DIALLED, "-key", "domain", TENANT,
                "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(limit),
                "-d", str(hold_ms), "-recv_timeout", str(RECV_TIMEOUT_MS), "-timeout", f"{int(run_s)}s"]
    uac_stat = tmp / f"sipp-{label}-uac.stat.csv"
    roots = sut.root_pids()
    cpu0, busy0 = sum(tree_cpu_seconds(p) for p in roots), machine_busy_seconds()
    t0 = time.monotonic()
    proc = owned.start(uac_argv, log_path=tmp / f"sipp-{label}-uac.out", cwd=tmp)
    uac_run = SippRun(label=label, target_rate=rate, calls_requested=calls)
    snaps = []
    if window and rtp:
        for at in window:
            delay = t0 + at - time.monotonic()
            if delay > 0 and proc.poll() is None:
                time.sleep(delay)
            if proc.poll() is not None:
                break
            snaps.append(media.Snapshot(t=time.monotonic(), snmp=media.udp_snmp(),
                                        uac=media.socket_stat(uac_mp), uas=media.socket_stat(uas_mp),
                                        relay=sut.media_counters(),
                                        system_sockets=media.socket_drops(sut.all_pids())))
    finish_sipp(owned, proc, uac_run, started=t0, hard_end_s=run_s + 15, stat=uac_stat)
    alive = sut.alive()
    cpu1 = sum(tree_cpu_seconds(p) for p in roots) if alive else cpu0
    busy1 = machine_busy_seconds()
    # The UAS ends by itself after its last BYE; calls the UAC gave up on never reach it.
    uas_run = SippRun(label=label + "-uas", target_rate=rate, calls_requested=calls)
    finish_sipp(owned, uas, uas_run, started=uas_started,
                hard_end_s=(time.monotonic() - uas_started) + 10, stat=uas_stat)
    uas_totals = {"cpu_s": uas_run.sipp_cpu_s, "killed": uas_run.killed_at_deadline}
    if uas_stat.exists():
        t = stat_totals(uas_stat)
        uas_totals.update(incoming=int(t.get("IncomingCall(C)", 0)), successful=int(t.get("SuccessfulCall(C)", 0)),
                          failed=int(t.get("FailedCall(C)", 0)))
    step = Step(phase=phase, mode=mode, rate=rate, calls=calls, hold_ms=hold_ms, uac=uac_run, uas=uas_totals,
                sut_cpu_s=cpu1 - cpu0, machine_busy_s=busy1 - busy0, alive=alive,
                argv={"uas": shlex.join(uas_argv), "uac": shlex.join(uac_argv)})
    if len(snaps) == 2:
        step.media = media.window(snaps[0], snaps[1], window_calls)
        step.media["relay_sessions_at_start"] = snaps[0].relay.get("sessions")
    elif window and rtp:
        step.media = {"error": "the UAC ended before the media window closed"}
    if alive:
        step.leftover_sessions = settle_sessions(sut)
    judge(step, strict_media=phase == "concurrency")
    print(f"  [{sut.label}] {phase} {mode} {rate}/s x {calls} (hold {hold_ms} ms): {summary(step)} -> {step.reason}",
          flush=True)
    return step


def settle_sessions(sut: CallSystem, within_s: float = 60.0) -> float | None:
    """Media sessions the relay still holds after a step (should drop to 0), waited for.
    After an overloaded step, calls the UAC gave up on end only when their transactions
    time out (32 s), holding their media sockets until then: the next step (or mode)
    must not start into them (it would measure the leftovers, or hit the process's
    open-file limit)."""
    end = time.monotonic() + within_s
    while True:
        s = sut.media_counters().get("sessions")
        if s is None or s == 0 or time.monotonic() > end:
            return s
        time.sleep(0.5)


def summary(step: Step) -> str:
    r = step.uac
    text = (f"ok {r.successful}/{r.created} (UAS {step.uas.get('successful', '?')}), "
            f"achieved {step.achieved_rate:.0f}/s, system {step.sut_cores:.2f} cores "
            f"({(step.cpu_us_per_call or 0):.0f} µs/call), sipp {step.sipp_cores:.2f}, "
            f"other {step.other_cores:.2f}, retrans {r.retransmissions}")
    m = step.media
    if m and not m.get("error"):
        text += (f"; media {m['seconds']:.1f} s window: delivered {m['delivered']} "
                 f"({100 * (m['delivered_ratio'] or 0):.1f}% of expected), lost {m['lost']}")
    elif m:
        text += f"; media: {m['error']}"
    return text


def start_system(owned, sut: CallSystem, res: ConfigResult, args) -> bool:
    sut.start(owned)
    res.version = sut.version()
    up = probe_sip_udp(sut.port, args.startup_timeout, alive=sut.alive)
    if up is None:
        res.error = (f"{sut.label} did not answer SIP OPTIONS on 127.0.0.1:{sut.port} within "
                     f"{args.startup_timeout:.0f} s. Logs:\n{sut.log_tail()}")
        return False
    try:
        sut.provision()
    except RuntimeError as e:
        res.error = f"{sut.label}: provisioning failed: {e}\n{sut.log_tail()}"
        return False
    for p in sut.procs:
        owned.remember_descendants(p)
    res.describe = sut.describe()
    res.commands = [shlex.join(sut.command)] + (
        [shlex.join(sut.rtpengine_command)] if hasattr(sut, "rtpengine_command") else [])
    print(f"== {sut.label} ({res.config}): {res.version}; SIP on 127.0.0.1:{sut.port} (OPTIONS -> {up})",
          flush=True)
    return True


def sanity(owned, sut, args, tmp, res: ConfigResult, mode: str) -> bool:
    step = run_step(owned, sut, args, tmp, phase="sanity", mode=mode, rate=10, calls=20, hold_ms=1000,
                    limit=100, window=None, window_calls=0)
    res.steps.append(step)
    if step.uac.successful != step.calls or step.uas.get("successful") != step.calls:
        res.error = (f"sanity ({mode}): {step.uac.successful}/{step.calls} calls completed at the UAC, "
                     f"{step.uas.get('successful')} at the UAS. SIPp logs in {tmp} (--keep-tmp). "
                     f"Logs:\n{sut.log_tail()}")
        print(res.error, flush=True)
        return False
    return True


def retry_under_load(res: ConfigResult, sut: CallSystem, args, measure) -> Step:
    """One step; a failure while other processes used more than --quiet-cores is measured
    once more (it says more about the shared machine than about the system). Both stay in
    the report; the second decides."""
    step = measure()
    res.steps.append(step)
    if step.passed or not step.alive or step.other_cores <= args.quiet_cores:
        return step
    step.reason += f" [other load {step.other_cores:.2f} cores: re-measured]"
    step = measure()
    res.steps.append(step)
    return step


def climb(sut: CallSystem, res: ConfigResult, values: list[int], measure, *, refine: int, min_gap,
          cost_s, deadline: float, unit: str) -> None:
    """The ladder both phases use: `measure` each value in order until one fails, then
    bisect `refine` times between the last pass and the first failure (while the gap is at
    least min_gap(first_fail)). `cost_s(value)` bounds a step's time, for the run's budget."""
    last_pass, first_fail = None, None
    todo = list(values)
    bisections = 0
    while True:
        if first_fail is None:
            if not todo:
                return
            value = todo.pop(0)
        else:
            low = last_pass or 0
            value = (low + first_fail) // 2
            if bisections >= refine or value <= low or first_fail - value < min_gap(first_fail):
                return
            bisections += 1
        if time.monotonic() + cost_s(value) > deadline:
            print(f"  [{sut.label}] time budget reached; stopped before {value}{unit}", flush=True)
            return
        step = measure(value)
        if not step.alive:
            res.error = f"{sut.label} died at {value}{unit}. Logs:\n{sut.log_tail()}"
            return
        if step.passed:
            last_pass = value
        else:
            first_fail = value


def cps_ladder(owned, sut, args, tmp, res: ConfigResult, mode: str, deadline: float) -> None:
    hold_s = args.hold_ms / 1000

    def step_at(rate: int) -> Step:
        # Media window: after the first calls have ended (steady concurrency), before the
        # last are created.
        window = (hold_s + 2.0, max(hold_s + 3.0, args.step_seconds - 1.0))
        return retry_under_load(res, sut, args, lambda: run_step(
            owned, sut, args, tmp, phase="cps", mode=mode, rate=rate, calls=rate * args.step_seconds,
            hold_ms=args.hold_ms, limit=max(1000, int(rate * (hold_s + 8))), window=window,
            window_calls=int(rate * hold_s)))

    climb(sut, res, args.rates, step_at, refine=args.refine, min_gap=lambda f: max(10, f // 20),
          cost_s=lambda _: 2 * (args.step_seconds + hold_s + 45), deadline=deadline, unit="/s")


def concurrency_ladder(owned, sut, args, tmp, res: ConfigResult, deadline: float) -> None:
    def level(n: int) -> Step:
        ramp_s = n / args.ramp_rate
        # Window: every call up (ramp + 2 s for the last setups), until 1 s before the
        # first BYE.
        window = (ramp_s + 2.0, ramp_s + args.plateau - 1.0)

        def once() -> Step:
            step = run_step(owned, sut, args, tmp, phase="concurrency", mode="rtp", rate=args.ramp_rate,
                            calls=n, hold_ms=int(1000 * (ramp_s + args.plateau)), limit=n, window=window,
                            window_calls=n)
            if sut.record:
                step.recorded_bytes = sut.recorded_bytes()
                sut.clear_recordings()
            return step

        return retry_under_load(res, sut, args, once)

    climb(sut, res, args.levels, level, refine=min(args.refine, 1), min_gap=lambda f: max(25, f // 10),
          cost_s=lambda n: n / args.ramp_rate + args.plateau + 60, deadline=deadline, unit=" calls")


def make_system(name: str, workdir: Path, args, config: str, record: bool) -> CallSystem:
    if name == "kamailio":
        return KamailioRtpengine(name=name, workdir=workdir, uac_port=args.uac_port, uas_port=args.uas_port,
                                 record=record, children=args.workers)
    return TongdaiCalls(name=name, workdir=workdir, uac_port=args.uac_port, uas_port=args.uas_port, record=record,
                        binary=args.tongdai_bin, replicas=args.tongdai_replicas,
                        # The CPS configuration also runs calls without RTP: no inactivity
                        # timeout there; the concurrency runs keep tongdai's default.
                        rtp_timeout_secs=0 if config == "cps" else 60)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="calls_bench",
        description="Call setups/s and concurrent calls with media: tongdai B2BUA vs Kamailio + rtpengine.",
    )
    p.add_argument("--systems", default="kamailio,tongdai", help="comma-separated, in this order")
    p.add_argument("--phases", default="cps,concurrency", help="cps, concurrency or both (default)")
    p.add_argument("--modes", default="signalling,rtp",
                   help="CPS ladder modes: signalling (SDP anchored, no RTP), rtp (G.711 both ways)")
    p.add_argument("--rates", default="50,100,200,300,400,600,800,1000,1300,1600,2000,2500,3000,4000,5000,6000",
                   help="offered calls/s, climbed in order until one fails")
    p.add_argument("--refine", type=int, default=2, help="bisection steps after the first failing rate")
    p.add_argument("--step-seconds", type=int, default=15, help="each CPS step offers rate x this many calls")
    p.add_argument("--hold-ms", type=int, default=1000, help="how long each CPS call stays up after the ACK")
    p.add_argument("--levels", default="250,500,1000,1500,2000,3000",
                   help="concurrency: calls held together, climbed until one fails")
    p.add_argument("--ramp-rate", type=int, default=200, help="concurrency: calls/s while setting up a level")
    p.add_argument("--plateau", type=float, default=15.0,
                   help="concurrency: seconds every call of a level is up together (window = plateau - 3 s)")
    p.add_argument("--recording", default="off,on",
                   help="concurrency with recording off, on, or both (tongdai: calls.recording=always; "
                        "kamailio: rtpengine record-call=yes, pcap)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Kamailio UDP worker processes")
    p.add_argument("--tongdai-bin", type=Path, default=TongdaiCalls.binary)
    p.add_argument("--tongdai-replicas", type=int, default=1, help="`tongdai up --replicas` (1, 3 or 5)")
    p.add_argument("--quiet-cores", type=float, default=0.3,
                   help="before each step, wait while other processes use more than this many cores")
    p.add_argument("--quiet-wait", type=float, default=60.0, help="longest wait for a quiet machine (s)")
    p.add_argument("--startup-timeout", type=float, default=30.0)
    p.add_argument("--max-minutes", type=float, default=75.0, help="bound on the whole run")
    p.add_argument("--out", type=Path, default=None, help="report path (default: loadtest/results/calls-<date>.md)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the run directory (configs, logs, SIPp files)")
    args = p.parse_args(argv)

    def words(text: str) -> list[str]:
        return [w.strip() for w in text.replace(",", " ").split() if w.strip()]

    args.systems, args.phases = words(args.systems), words(args.phases)
    args.modes, args.recording = words(args.modes), words(args.recording)
    for name, got, known in (("--systems", args.systems, {"kamailio", "tongdai"}),
                             ("--phases", args.phases, {"cps", "concurrency"}),
                             ("--modes", args.modes, {"signalling", "rtp"}),
                             ("--recording", args.recording, {"off", "on"})):
        bad = [g for g in got if g not in known]
        if bad or not got:
            p.error(f"{name}: {', '.join(bad) or 'empty'} (known: {', '.join(sorted(known))})")
    try:
        args.rates = [int(x) for x in words(args.rates)]
        args.levels = [int(x) for x in words(args.levels)]
    except ValueError as e:
        p.error(f"--rates/--levels must be whole numbers: {e}")
    if not args.rates or any(r <= 0 or r > 20_000 for r in args.rates):
        p.error("--rates: 1..20000 calls/s each")
    if not args.levels or any(n <= 0 or n > 7_000 for n in args.levels):
        p.error("--levels: 1..7000 calls each (the relays' port ranges hold 7,691 calls)")
    if args.step_seconds < 5 or args.hold_ms < 0 or args.plateau < 5 or args.ramp_rate <= 0:
        p.error("--step-seconds >= 5, --hold-ms >= 0, --plateau >= 5, --ramp-rate > 0")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = os.environ.get("BENCH_COMMAND") or shlex.join([sys.executable, "-m", "calls.calls_bench", *argv])
    for tool in ["sipp"] + (["kamailio", "kamcmd", "rtpengine"] if "kamailio" in args.systems else []):
        if shutil.which(tool) is None:
            print(f"calls_bench: '{tool}' not found; run loadtest/calls_bench.sh (it installs it)", file=sys.stderr)
            return 2
    if "tongdai" in args.systems and not args.tongdai_bin.exists():
        print(f"calls_bench: {args.tongdai_bin} missing (cargo build --release -p tongdai-node)", file=sys.stderr)
        return 3
    args.uac_port, args.uas_port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="tongdai-calls-bench."))
    media.write_audio(tmp)
    owned = OwnedProcesses()

    exit_on_signals()
    started = time.time()
    deadline = time.monotonic() + args.max_minutes * 60
    out = args.out or report.default_path(LOADTEST_DIR / "results", started)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[ConfigResult] = []
    configs = []
    if "cps" in args.phases:
        configs.append(("cps", False))
    if "concurrency" in args.phases:
        configs += [("concurrency" + (" +rec" if m == "on" else ""), m == "on") for m in args.recording]
    try:
        for config, record in configs:
            for name in args.systems:
                res = ConfigResult(system=name, config=config)
                results.append(res)
                sut = make_system(name, tmp / f"{name}-{config.replace(' +', '-')}", args, config, record)
                try:
                    if not start_system(owned, sut, res, args):
                        print(res.error, flush=True)
                        continue
                    if config == "cps":
                        for mode in args.modes:
                            if sanity(owned, sut, args, tmp, res, mode):
                                cps_ladder(owned, sut, args, tmp, res, mode, deadline)
                    elif sanity(owned, sut, args, tmp, res, "rtp"):
                        concurrency_ladder(owned, sut, args, tmp, res, deadline)
                    if isinstance(sut, KamailioRtpengine):
                        res.describe += f"; active dialogs after the last step: {sut.active_dialogs()}"
                finally:
                    sut.stop(owned)
                    if record:
                        shutil.rmtree(sut.workdir / "recordings", ignore_errors=True)
    finally:
        owned.stop_all()
        out.write_text(report.render(results, args, command, started, time.time()))
        out.with_suffix(".jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in report.raw(results, args, command, started)))
        print(f"report: {out}\nraw:    {out.with_suffix('.jsonl')}", flush=True)
        if args.keep_tmp:
            print(f"run files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if results and all(not r.error and r.steps for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
