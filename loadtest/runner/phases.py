"""The phases: each drives SIPp against the system and returns a PhaseResult.

- register_storm: one SIPp process registers N users once each at a rate
  (scenarios/register_auth.xml: REGISTER -> 401 -> REGISTER with MD5 digest -> 200),
  from several 127.0.0.x source addresses (several UDP flows, as from many phones);
- call_burst: SIPp UAC (a carrier on trunk loadtest-in) -> tongdai -> SIPp UAS (the far
  end on trunk loadtest-out), `rate` calls/s for `duration_s`, each held `hold_ms`, with
  or without G.711 RTP both ways (scenarios/call_uac[_rtp].xml, call_uas[_rtp].xml);
- long_calls: the same path, `calls` calls set up at `ramp_rate`, each held `hold_s`
  while SIPp streams G.711 u-law both ways (50 packets/s each way per call);
- queue_peak: `agents` agents (the users' last extensions, all registered from one SIPp
  UAS, scenarios/queue_agent.xml: answer, talk `talk_ms`, hang up) serve one queue that
  SIPp callers (scenarios/queue_caller.xml, through trunk loadtest-in) reach at `rate`/s
  for `duration_s`, more than the agents can take at once: the queue grows, then drains.
  The queue's live view (admin API) is sampled every second.

Every SIPp process is bounded by -m and -timeout (and a SIGKILL backstop); a phase stops
early when the system dies.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import OwnedProcesses, free_port, machine_busy_seconds
from bench.users import UserSet
from calls.media import free_media_port, port_bound, write_audio

from . import sipp
from .cluster import CALLER, DIALLED, QUEUE_DIALLED, System
from .metrics import Sampler
from .scenario import Phase

# Raw SIPp files copied into the results directory, and how much of each at most.
KEEP = {"stat.csv": None, "*_rtt.csv": None, "*_error_codes.csv": None, "errors.log": 200_000,
        "screen.log": 20_000}


@dataclass
class PhaseResult:
    phase: Phase
    started: float = 0.0  # epoch
    ended: float = 0.0
    sipp: dict = field(default_factory=dict)  # role -> sipp.SippOutcome
    system_alive: bool = True
    skipped: str = ""  # why the phase did not run
    error: str = ""  # why it stopped short
    metrics_delta: dict = field(default_factory=dict)
    peak: dict = field(default_factory=dict)
    registrations_after: float | None = None
    settle_s: float | None = None
    settled_at: float = 0.0  # epoch: the end of the phase's window on the node's metrics
    leftover_calls: float | None = None
    plateau_pps: float | None = None
    system_cores: float | None = None
    # queue_peak: the queue's live view each second (t, calls waiting, agents on call,
    # longest wait) and at the end of the phase.
    queue_samples: list = field(default_factory=list)
    queue_end: dict | None = None
    sipp_cores: float | None = None
    machine_cores: float | None = None

    @property
    def main(self) -> sipp.SippOutcome | None:
        return self.sipp.get("register") or self.sipp.get("uac")

    @property
    def hold_s(self) -> float:
        p = self.phase
        if p.kind == "call_burst":
            return p.hold_ms / 1000
        if p.kind == "long_calls":
            return p.hold_s
        if p.kind == "queue_peak":
            return p.talk_ms / 1000
        return 0.0

    @property
    def attempted(self) -> int:
        return self.main.created if self.main else 0

    @property
    def failed(self) -> int:
        """Calls that did not complete: at the caller (created - successful: timeouts, error
        replies, calls cut off), or at the far end (a B2BUA answers the caller's BYE itself,
        so a caller can complete a call whose far leg failed); the larger of the two."""
        m = self.main
        if m is None:
            return 0
        failed = m.created - m.successful
        uas = self.sipp.get("uas")
        return max(failed, uas.failed) if uas else failed

    @property
    def succeeded(self) -> int:
        return self.attempted - self.failed

    @property
    def achieved_rate(self) -> float | None:
        """Completed calls (registrations) per second of the period calls were started:
        SIPp's elapsed time minus the hold of the last call."""
        m = self.main
        if not m:
            return None
        span = m.elapsed_s - self.hold_s
        return self.succeeded / span if span > 0 else None

    @property
    def offered(self) -> int:
        p = self.phase
        return {"register_storm": lambda: p.users, "call_burst": lambda: p.rate * p.duration_s,
                "queue_peak": lambda: p.rate * p.duration_s, "long_calls": lambda: p.calls}[p.kind]()

    @property
    def offered_rate(self) -> int:
        p = self.phase
        return p.ramp_rate if p.kind == "long_calls" else p.rate

    def setup_ms(self) -> dict:
        m = self.main
        vals = sorted(ms for _, ms in (m.rtt if m else []))
        return {f"p{q}": sipp.percentile(vals, q) for q in (50, 95, 99)} | {"n": len(vals),
                                                                              "max": vals[-1] if vals else None}

    @property
    def passed(self) -> bool:
        return not self.reasons()

    def reasons(self) -> list[str]:
        if self.skipped:
            return [f"skipped: {self.skipped}"]
        out = []
        if self.error:
            out.append(self.error)
        if not self.system_alive:
            out.append("the system died")
        if self.main is None:
            return out + ["no SIPp result"]
        if self.attempted < self.offered:
            out.append(f"only {self.attempted}/{self.offered} started")
        ratio = self.failed / self.attempted if self.attempted else 1.0
        limit = self.phase.max_failure_ratio
        if ratio > limit:
            out.append(f"{self.failed} failed ({100 * ratio:.2f}% > {100 * limit:g}%)")
        for role, o in self.sipp.items():
            if o.killed:
                out.append(f"SIPp {role} killed at its deadline")
        return out

    def errors_text(self) -> str:
        """What went wrong, from every source: SIPp's failure causes and error status codes,
        the far end's failures, the node's refusals, 5xx replies and relay drops."""
        parts = []
        for role, o in self.sipp.items():
            causes = ", ".join(f"{n} {c}" for c, n in sorted(o.failures_by_cause.items()))
            codes = ", ".join(f"{n}x {c}" for c, n in sorted(o.error_codes.items()))
            text = "; ".join(x for x in (causes, f"replies {codes}" if codes else "") if x)
            if text:
                parts.append(f"{role}: {text}")
        d = self.metrics_delta
        for key, label in (("calls_rejected_total", "node refused"), ("responses_5xx_total", "node 5xx sent"),
                           ("media_dropped_packets_total", "relay dropped packets")):
            if d.get(key):
                parts.append(f"{label} {d[key]:.0f}")
        return "; ".join(parts) or "none"


def _copy_raw(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for pattern, limit in KEEP.items():
        for f in src.glob(pattern):
            target = dst / ("rtt.csv" if f.name.endswith("_rtt.csv") else
                            "error_codes.csv" if f.name.endswith("_error_codes.csv") else f.name)
            if limit is None or f.stat().st_size <= limit:
                shutil.copyfile(f, target)
            else:
                with open(f, "rb") as fin, open(target, "wb") as fout:
                    fout.write(fin.read(limit))
                    fout.write(f"\n... cut at {limit} bytes of {f.stat().st_size}\n".encode())


class PhaseRunner:
    """Runs the scenario's phases one after the other against one system."""

    def __init__(self, system: System, owned: OwnedProcesses, sampler: Sampler, tmp: Path, raw_dir: Path,
                 uac_port: int, uas_port: int, log=print):
        self.system = system
        self.owned = owned
        self.sampler = sampler
        self.tmp = tmp
        self.raw_dir = raw_dir
        self.uac_port = uac_port
        self.uas_port = uas_port
        self.log = log

    def run(self, phase: Phase, slug: str) -> PhaseResult:
        res = PhaseResult(phase=phase, started=time.time())
        work = self.tmp / slug
        cpu0, busy0 = self.system.cpu_seconds(), machine_busy_seconds()
        try:
            if phase.kind == "register_storm":
                procs = self._register_storm(phase, work)
            elif phase.kind == "queue_peak":
                procs = self._queue_peak(phase, work, res)
            else:
                procs = self._calls(phase, work)
        finally:
            res.ended = time.time()
        res.system_alive = self.system.alive()
        cpu1 = self.system.cpu_seconds()
        busy1 = machine_busy_seconds()
        wall = max(res.ended - res.started, 1e-6)
        for p in procs:
            res.sipp[p.role] = sipp.outcome(p)
            _copy_raw(p.workdir, self.raw_dir / f"{slug}-{p.role}")
        if cpu0 is not None and cpu1 is not None:
            res.system_cores = (cpu1 - cpu0) / wall
        res.sipp_cores = sum(o.cpu_s for o in res.sipp.values()) / wall
        res.machine_cores = (busy1 - busy0) / wall
        for p in procs:
            if p.run and p.run.exit_code not in (0, 1) and p.run.exit_code is not None and not res.error:
                tail = (p.workdir / "screen.log").read_text(errors="replace")[-600:] \
                    if (p.workdir / "screen.log").exists() else ""
                if p.run.created == 0:
                    res.error = f"SIPp {p.role} exited {p.run.exit_code} without calls: {tail.strip()[-300:]}"
        return res

    # -- register storm -------------------------------------------------------------------
    def _register_storm(self, phase: Phase, work: Path) -> list[sipp.SippProc]:
        reg = self._registrations("register", work, users=phase.users, rate=phase.rate, port=free_port(),
                                  expires=phase.expires, source_ips=phase.source_ips)
        return [reg]

    def _registrations(self, role: str, work: Path, *, users: int, rate: int, port: int, expires: int,
                       source_ips: int, first: int | None = None) -> sipp.SippProc:
        """Registers `users` users from `first` (default: the first user) once each at `rate`
        from `port` (one SIPp)."""
        u = self.system.users
        timeout = users / rate + 30
        argv = ["sipp", f"127.0.0.1:{self.system.sip_port}",
                *sipp.common_args(scenario="register_auth.xml", port=port, media_port=None, calls=users,
                                  timeout_s=timeout),
                "-inf", "users.csv", "-key", "expires", str(expires),
                # Digest uri = the Request-URI (sip:<domain>), as a phone sends it.
                "-auth_uri", u.tenant, "-key", "client_port", str(port), "-cp", str(free_port()),
                *(["-t", "u1"] if source_ips == 1 else ["-t", "ui", "-ip_field", "4"]),
                "-max_socket", "1000", "-r", str(rate), "-rp", "1000", "-l", str(max(1000, 2 * rate)),
                # A call aborted on an unexpected reply is only counted: no BYE after a REGISTER.
                "-nd", *sipp.uac_rtt_args()]
        reg = sipp.SippProc(role=role, workdir=work / role, argv=argv, deadline_s=timeout)
        reg.workdir.mkdir(parents=True, exist_ok=True)
        UserSet(u.first_extension if first is None else first, users, u.password_prefix, u.tenant).write_sipp_csv(
            reg.workdir / "users.csv", source_ips)
        reg.start(self.owned)
        self._wait(reg, timeout + 15)
        reg.finish(self.owned)
        return reg

    # -- queue peak -------------------------------------------------------------------------
    def _queue_peak(self, phase: Phase, work: Path, res: PhaseResult) -> list[sipp.SippProc]:
        self.system.provision_queue(phase.agents)
        # Every agent's phone is the one SIPp UAS: register them all from its port first.
        u = self.system.users
        reg = self._registrations("agents", work, users=phase.agents, rate=min(phase.agents, 200),
                                  port=self.uas_port, expires=3600, source_ips=1,
                                  first=u.first_extension + u.count - phase.agents)
        calls = phase.rate * phase.duration_s
        # Bound: the queue drained by agents doing nothing but talk, with room for the ACD.
        timeout = 2 * phase.queue_drain_seconds() + phase.talk_ms / 1000 + 60
        uas = sipp.SippProc(role="uas", workdir=work / "uas", deadline_s=timeout + 10, argv=[
            "sipp", *sipp.common_args(scenario="queue_agent.xml", port=self.uas_port, media_port=free_media_port(),
                                      calls=calls, timeout_s=timeout + 10),
            "-t", "u1", "-cp", str(free_port()), "-d", str(phase.talk_ms)])
        uac = sipp.SippProc(role="uac", workdir=work / "uac", deadline_s=timeout, argv=[
            "sipp", f"127.0.0.1:{self.system.sip_port}",
            *sipp.common_args(scenario="queue_caller.xml", port=self.uac_port, media_port=free_media_port(),
                              calls=calls, timeout_s=timeout),
            "-t", "u1", "-cp", str(free_port()),
            "-key", "caller", CALLER, "-key", "dialled", QUEUE_DIALLED, "-key", "domain", self.system.users.tenant,
            "-r", str(phase.rate), "-rp", "1000", "-l", str(calls),
            # Setup time = answered by the queue; no receive timeout: callers wait their turn.
            "-trace_rtt", "-rtt_freq", "1"])
        last = [0.0]

        def sample_queue() -> None:
            if time.monotonic() - last[0] < 1.0:
                return
            last[0] = time.monotonic()
            view = self.system.queue_live()
            if view:
                k = view["kpis"]
                res.queue_samples.append({"t": time.time(), "waiting": k["calls_waiting"],
                                          "on_call": k["agents_on_call"], "longest_wait_s": k["longest_wait_secs"]})

        self._run_pair(uas, uac, timeout, tick=sample_queue)
        res.queue_end = self.system.queue_live()
        return [reg, uac, uas]

    # -- calls ------------------------------------------------------------------------------
    def _calls(self, phase: Phase, work: Path) -> list[sipp.SippProc]:
        if phase.kind == "call_burst":
            rate, calls, hold_ms, media = phase.rate, phase.rate * phase.duration_s, phase.hold_ms, phase.media
            limit = max(1000, int(rate * (hold_ms / 1000 + 8)))
        else:
            rate, calls, hold_ms, media = phase.ramp_rate, phase.calls, phase.hold_s * 1000, True
            limit = phase.calls
        # Bound: creating every call, the hold, then 30 s for the slowest (5 s per message).
        timeout = calls / rate + hold_ms / 1000 + 30
        uas = sipp.SippProc(role="uas", workdir=work / "uas", deadline_s=timeout + 10, argv=[
            "sipp", *sipp.common_args(scenario="call_uas_rtp.xml" if media else "call_uas.xml", port=self.uas_port,
                                      media_port=free_media_port(), calls=calls, timeout_s=timeout + 10),
            "-t", "u1", "-cp", str(free_port())])
        uac = sipp.SippProc(role="uac", workdir=work / "uac", deadline_s=timeout, argv=[
            "sipp", f"127.0.0.1:{self.system.sip_port}",
            *sipp.common_args(scenario="call_uac_rtp.xml" if media else "call_uac.xml", port=self.uac_port,
                              media_port=free_media_port(), calls=calls, timeout_s=timeout),
            "-t", "u1", "-cp", str(free_port()),
            "-key", "caller", CALLER, "-key", "dialled", DIALLED, "-key", "domain", self.system.users.tenant,
            "-r", str(rate), "-rp", "1000", "-l", str(limit), "-d", str(hold_ms), *sipp.uac_rtt_args()])
        if media:
            write_audio(uas.workdir)
            write_audio(uac.workdir)
        self._run_pair(uas, uac, timeout)
        return [uac, uas]

    def _run_pair(self, uas: sipp.SippProc, uac: sipp.SippProc, timeout: float, tick=None) -> None:
        """Starts the far end, then the callers once it listens; waits for both (bounded)."""
        uas.start(self.owned)
        end = time.monotonic() + 10
        while not port_bound(self.uas_port):
            if not uas.alive() or time.monotonic() > end:
                uas.finish(self.owned, now=True)
                raise RuntimeError(f"SIPp UAS did not bind 127.0.0.1:{self.uas_port} "
                                   f"(exit {uas.run.exit_code if uas.run else '?'}); see {uas.workdir / 'screen.log'}")
            time.sleep(0.05)
        uac.start(self.owned)
        self._wait(uac, timeout + 15, tick)
        uac.finish(self.owned)
        # The UAS ends by itself after its last BYE; calls the UAC gave up on never reach
        # it, so it gets 10 s more, then is stopped (its statistics are a second old at most).
        self._wait(uas, 10)
        uas.finish(self.owned, now=True)

    def _wait(self, proc: sipp.SippProc, bound_s: float, tick=None) -> None:
        """Until SIPp ends, the bound passes, or the system dies (then SIPp is stopped)."""
        end = time.monotonic() + bound_s
        last_log = time.monotonic()
        while proc.alive() and time.monotonic() < end:
            if not self.system.alive():
                self.log(f"  the system died; stopping SIPp {proc.role}")
                self.owned.stop(proc.proc, grace_s=5)
                return
            if tick is not None:
                tick()
            if time.monotonic() - last_log >= 10:
                last_log = time.monotonic()
                s = self.sampler.latest() or {}
                self.log(f"  ... {proc.role}: {_progress(s)}")
            time.sleep(0.2)

    def settle(self, res: PhaseResult, bound_s: float) -> None:
        """After a phase: wait (bounded) until the node holds no call and no media session."""
        t0 = time.monotonic()
        while True:
            s = self.sampler.sample_once()
            busy = (s.get("calls_active") or 0) + (s.get("media_sessions") or 0)
            if not s["ok"] or busy == 0 or time.monotonic() - t0 >= bound_s or not self.system.alive():
                res.settle_s = time.monotonic() - t0
                res.settled_at = time.time()
                res.leftover_calls = s.get("calls_active") if s["ok"] else None
                return
            time.sleep(0.5)


def _progress(s: dict) -> str:
    def f(key):
        v = s.get(key)
        return "?" if v is None else f"{v:.0f}"
    return (f"node: calls active {f('calls_active')}, attempts {f('call_attempts_total')}, "
            f"registrations {f('registrations_active')}, media sessions {f('media_sessions')}")


def fill_from_samples(res: PhaseResult, samples: list[dict]) -> None:
    """Per phase: counter increases, gauge peaks, the relay's packet rate on the plateau."""
    end = max(res.ended, res.settled_at) + 1.0
    inside = [s for s in samples if s["ok"] and res.started - 1.0 <= s["t"] <= end]
    if len(inside) < 2:
        return
    first, last = inside[0], inside[-1]
    for key in ("call_attempts_total", "calls_answered_total", "calls_rejected_total", "register_requests_total",
                "invite_requests_total", "responses_5xx_total", "media_relayed_packets_total",
                "media_dropped_packets_total"):
        # A counter appears on the page at its first increment: absent before means 0.
        if last.get(key) is not None:
            res.metrics_delta[key] = last[key] - (first.get(key) or 0.0)
    for key in ("calls_active", "media_sessions", "media_port_pairs_in_use", "registrations_active"):
        vals = [s[key] for s in inside if s.get(key) is not None]
        if vals:
            res.peak[key] = max(vals)
    uac = res.sipp.get("uac")
    if uac and uac.rows:
        res.peak["sipp_current_calls"] = max(r["current"] for r in uac.rows)
    res.registrations_after = last.get("registrations_active")
    window = plateau(res)
    if window:
        a, b, _ = window
        win = [s for s in inside if a <= s["t"] <= b and s.get("media_relayed_packets_total") is not None]
        if len(win) >= 2 and win[-1]["t"] > win[0]["t"]:
            res.plateau_pps = ((win[-1]["media_relayed_packets_total"] - win[0]["media_relayed_packets_total"])
                               / (win[-1]["t"] - win[0]["t"]))


def plateau(res: PhaseResult) -> tuple[float, float, float] | None:
    """(start, end, calls streaming) of the window in which the media load is steady, for
    phases with RTP: long calls from every call up (ramp + 4 s) to 1 s before the first BYE (hold_s);
    a media burst from when the first calls end (hold + 4 s) to 1 s before the last start."""
    p = res.phase
    # SIPp starts a second or two after the phase (the far end binds first), so the window
    # starts late enough for that and ends early enough for the clocks' slack.
    if p.kind == "long_calls":
        ramp = p.calls / p.ramp_rate
        # The first call ends hold_s after it started, i.e. hold_s (and a bit) into the phase.
        a, b, streaming = res.started + ramp + 4.0, res.started + p.hold_s - 1.0, float(p.calls)
    elif p.kind == "call_burst" and p.media:
        a, b = res.started + p.hold_ms / 1000 + 4.0, res.started + p.duration_s - 1.0
        streaming = p.rate * p.hold_ms / 1000
    else:
        return None
    return (a, b, streaming) if b - a >= 2.0 else None
