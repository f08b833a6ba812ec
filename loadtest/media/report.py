"""The media benchmark report: Markdown a reader can check; the raw JSON lines are
written beside it as the levels run."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from bench.report import cpu_and_memory, dated_path
from bench.systems import first_line

from .relays import REPO_DIR


def default_path(results_dir: Path, started: float) -> Path:
    return dated_path(results_dir, "media", started)


def machine(args) -> dict:
    model, mem_gib = cpu_and_memory()
    try:
        kmod = "loaded" if "xt_RTPENGINE" in Path("/proc/modules").read_text() else "not loaded"
    except OSError:
        kmod = "not loaded (this kernel has no loadable modules: no /proc/modules)"
    dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "mem_gib": mem_gib,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "rtpengine": first_line(["dpkg-query", "-W", "-f=${Version}", "rtpengine-daemon"]),
        "xt_RTPENGINE kernel module": kmod,
        "rtpgen": first_line([str(args.rtpgen), "--version"]),
        "git": first_line(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"]) + (" (dirty)" if dirty else ""),
        "python": platform.python_version(),
    }


def _f(x, spec=".0f", none="—"):
    return none if x is None else format(x, spec)


def _figures(level) -> dict:
    """The numbers of one level, flattened (None where unknown)."""
    r = level.result or {}
    t = r.get("traffic") or {}
    b = r.get("baseline") or {}
    p = r.get("relay_process") or {}
    a = r.get("added_latency_us") or {}
    lat = t.get("latency_us") or {}
    base = b.get("latency_us") or {}
    lag = t.get("send_lag_us") or {}
    setup = r.get("setup") or {}
    return {
        "sent": t.get("sent"), "lost": t.get("lost"), "loss_pct": 100 * t["loss_ratio"] if t else None,
        "cores": p.get("cores"), "calls_per_core": p.get("calls_per_core"), "pps_per_core": p.get("pps_per_core"),
        "p50": lat.get("p50"), "p99": lat.get("p99"), "base_p50": base.get("p50"), "base_p99": base.get("p99"),
        "added_p50": a.get("p50"), "added_p99": a.get("p99"), "added_p999": a.get("p999"),
        "rss0": p.get("rss_kib_before_setup"), "rss1": p.get("rss_kib_after_setup"), "rss2": p.get("rss_kib_end"),
        "kib_per_call": p.get("kib_per_call"), "kib_per_call_end": p.get("kib_per_call_streaming"),
        "gen_cores": t.get("generator_cores"), "gen_core_busy": t.get("generator_core_busy"),
        "core_busy": p.get("core_busy"), "process_cores": p.get("process_cores"),
        "lag_p99": lag.get("p99"), "setup_s": setup.get("seconds"),
        "setup_rate": setup.get("per_second"), "base_lost": b.get("lost"),
    }


def render(results, args, command: str, started: float, finished: float) -> str:
    m = machine(args)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    L: list[str] = []
    L.append("# Media relay: tongdai vs rtpengine (userspace forwarding), one core each")
    L.append("")
    L.append(f"Run {when}, {finished - started:.0f} s, one script run, same machine, same generator (rtpgen).")
    L.append("")
    L.append("```")
    L.append(command)
    L.append("```")
    L.append("")
    L.append(
        f"Each relay is pinned to core {args.relay_core} (`taskset`), with one worker thread; rtpgen to "
        f"core {args.gen_core}; both "
        + ("under SCHED_FIFO (`chrt -f 10`), so other processes on this shared machine cannot take turns "
           "with them (they keep 5% of each core). " if args.sched == "fifo" else "at normal priority. ")
        + f"A *call* is two RTP streams (caller->relay->callee and back), G.711 μ-law, "
        f"172-byte packets, 50 packets/s each way, so N calls offer 100·N packets/s to the relay. "
        f"Each level: a fresh relay process, {args.baseline:g} s of direct loopback traffic (the latency "
        f"baseline, no relay), the calls set up through the relay's control protocol, {args.ramp:g} s ramp, "
        f"{args.duration:g} s with every call streaming (the *steady window* the CPU figures cover), "
        f"1 s drain, teardown. A level **passes** with 0 packets lost, every call set up and nothing on "
        f"the wrong leg, and a relay-path p99 latency under {args.max_p99_ms:g} ms (above it the relay is "
        f"queueing: saturated before its buffers overflow); the ladder stops at the first level that "
        f"does not pass."
    )
    L.append("")
    L.append("- **calls per core** = calls / relay cores used in the steady window, at the highest passing "
             "level. Relay CPU = utime+stime of all its threads (/proc/PID/stat) + the CPU of "
             "`ksoftirqd/<relay core>` (loopback delivery of what the relay sends, when the kernel defers it). "
             "*relay core busy* is everything that ran on that core (from /proc/stat): above the relay's "
             "cores means something else shared it.")
    L.append("- **packets/s per core** = packets relayed per second in the steady window / relay cores.")
    L.append("- **added latency** = one-way latency through the relay minus the direct loopback latency "
             "at the same percentile and call count (send stamp just before `sendmmsg` -> kernel receive "
             "stamp, `SO_TIMESTAMPNS`).")
    L.append("- **memory per call** = (relay VmRSS after setting up all calls - VmRSS before) / calls.")
    L.append("")

    L.append("## Summary")
    L.append("")
    L.append("| relay | highest passing level (calls) | relay cores there | calls per core | packets/s per core "
             "| added latency p50 / p99 (µs) | memory per call (KiB) | generator cores | ladder stopped |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = r.best
        if b is None:
            why = r.error.splitlines()[0] if r.error else r.stop_reason
            L.append(f"| {r.label} | none | — | — | — | — | — | — | {why} |")
            continue
        f = _figures(b)
        L.append(
            f"| {r.label} | {b.calls} | {_f(f['cores'], '.3f')} | **{_f(f['calls_per_core'])}** "
            f"| {_f(f['pps_per_core'])} | {_f(f['added_p50'], '.1f')} / {_f(f['added_p99'], '.1f')} "
            f"| {_f(f['kib_per_call'], '.1f')} | {_f(f['gen_cores'], '.2f')} | {r.stop_reason} |"
        )
    L.append("")

    by = {(r.name, r.record): r for r in results}
    ratio_lines = []
    for record in (False, True):
        t, e = by.get(("tongdai", record)), by.get(("rtpengine", record))
        if not (t and e and t.best and e.best):
            continue
        ft, fe = _figures(t.best), _figures(e.best)
        mode = "with recording" if record else "without recording"

        def ratio(a, b):
            return f"{a / b:.2f}x" if a and b else "—"

        # Latency at the highest level both passed: equal load, the fair comparison.
        common = sorted({lv.calls for lv in t.levels if lv.passed} & {lv.calls for lv in e.levels if lv.passed})
        lat = ""
        if common:
            c = common[-1]
            lt = _figures(next(lv for lv in t.levels if lv.passed and lv.calls == c))
            le = _figures(next(lv for lv in e.levels if lv.passed and lv.calls == c))
            lat = (f"; added latency p99 at {c} calls (highest level both passed): tongdai "
                   f"{_f(lt['added_p99'], '.1f')} µs vs rtpengine {_f(le['added_p99'], '.1f')} µs")
        ratio_lines.append(
            f"- **{mode}**: calls per core **{ratio(ft['calls_per_core'], fe['calls_per_core'])}** "
            f"({_f(ft['calls_per_core'])} vs {_f(fe['calls_per_core'])}), packets/s per core "
            f"{ratio(ft['pps_per_core'], fe['pps_per_core'])}, memory per call "
            f"{ratio(ft['kib_per_call'], fe['kib_per_call'])} (lower is better){lat}."
        )
    if ratio_lines:
        L.append("### tongdai / rtpengine")
        L.append("")
        L.extend(ratio_lines)
        L.append("")
        rec_t, rec_e = by.get(("tongdai", True)), by.get(("rtpengine", True))
        if rec_t and rec_e and rec_t.best and rec_e.best:
            ct, ce = _figures(rec_t.best)["calls_per_core"], _figures(rec_e.best)["calls_per_core"]
            p99 = _figures(rec_t.best)["added_p99"]
            goal1 = ct is not None and ce and ct >= 2 * ce
            goal2 = p99 is not None and p99 < 100
            L.append(f"Goals (DESIGN.md): at least 2x rtpengine's calls per core with recording: "
                     f"**{'met' if goal1 else 'not met'}**; tongdai p99 added latency < 100 µs: "
                     f"**{'met' if goal2 else 'not met'}**.")
            L.append("")
    else:
        missing = [f"{r.label}: {r.error.splitlines()[0] if r.error else 'no passing level'}"
                   for r in results if not r.best]
        measured = sorted({r.name for r in results})
        if len(measured) < 2:
            missing.append(f"only {', '.join(measured) or 'nothing'} measured in this run")
        L.append("No tongdai / rtpengine ratio: " + "; ".join(missing) + ".")
        L.append("")
    bound = [r.label for r in results if r.best and r.best.generator_bound]
    if bound:
        L.append(f"Note: at the highest passing level of {', '.join(bound)} the generator was at its limit "
                 "(> 0.85 of its core, send lag p99 > 20 ms, or loss on the direct path): the relay was not "
                 "saturated and its calls per core is extrapolated from a partly loaded core.")
        L.append("")
    for r in results:
        if r.error:
            L.append(f"### {r.label}: error")
            L.append("")
            L.append("```")
            L.append(r.error)
            L.append("```")
            L.append("")

    L.append("## Every level")
    L.append("")
    L.append("| relay | calls | verdict | packets sent | lost | relay cores (own threads) | relay core busy "
             "| calls/core | pkt/s/core "
             "| relay latency p50 / p99 (µs) | direct p50 / p99 | added p50 / p99 / p99.9 "
             "| RSS before / after setup / end (MiB) | KiB/call (setup / end) | recorded MiB "
             "| setup s (calls/s) | gen cores (core busy) | send lag p99 (µs) | other cores |")
    L.append("|" + "---|" * 19)
    mib = lambda k: "—" if k is None else f"{k / 1024:.1f}"  # noqa: E731
    for r in results:
        for lv in r.levels:
            f = _figures(lv)
            L.append(
                f"| {r.label} | {lv.calls}{' (again)' if lv.retry_of else ''} | {lv.reason} "
                f"| {_f(f['sent'])} | {_f(f['lost'])} | {_f(f['cores'], '.3f')} ({_f(f['process_cores'], '.3f')}) "
                f"| {_f(f['core_busy'], '.2f')} | {_f(f['calls_per_core'])} "
                f"| {_f(f['pps_per_core'])} | {_f(f['p50'], '.1f')} / {_f(f['p99'], '.1f')} "
                f"| {_f(f['base_p50'], '.1f')} / {_f(f['base_p99'], '.1f')} "
                f"| {_f(f['added_p50'], '.1f')} / {_f(f['added_p99'], '.1f')} / {_f(f['added_p999'], '.1f')} "
                f"| {mib(f['rss0'])} / {mib(f['rss1'])} / {mib(f['rss2'])} "
                f"| {_f(f['kib_per_call'], '.1f')} / {_f(f['kib_per_call_end'], '.1f')} "
                f"| {lv.recorded_bytes / 2**20:.0f} | {_f(f['setup_s'], '.1f')} ({_f(f['setup_rate'])}) "
                f"| {_f(f['gen_cores'], '.2f')} ({_f(f['gen_core_busy'], '.2f')}) | {_f(f['lag_p99'], '.0f')} "
                f"| {lv.other_cores:.2f} |"
            )
    L.append("")
    L.append("*send lag*: how late rtpgen sent packets against their schedule (the latency figures do not "
             "depend on it: each packet is stamped when it is sent). *other cores*: CPU used during the "
             "level by processes other than the relay and rtpgen (a shared machine; high values make a "
             "level less trustworthy, and a failure under load is re-measured once).")
    L.append("")

    L.append("## Commands")
    L.append("")
    for r in results:
        if r.command:
            L.append(f"- {r.label}: `{' '.join(r.command)}`")
    L.append(f"- rtpgen, per level: `{' '.join(args.sched_prefix + ['taskset', '-c', str(args.gen_core)])} "
             "rtpgen --relay R --ng|--control ADDR --calls N "
             f"--duration {args.duration:g} --ramp {args.ramp:g} --baseline {args.baseline:g} "
             f"--threads {args.gen_threads} --relay-pid PID --relay-cpu {args.relay_core} [--record]` "
             "(each level's exact argv is in the .jsonl beside this report)")
    L.append("")
    L.append("## Machine")
    L.append("")
    for k, v in m.items():
        L.append(f"- {k}: {v}")
    L.append("")
    L.append("The raw rtpgen JSON of every level (and the commands) is in the `.jsonl` file beside this report.")
    L.append("")
    return "\n".join(L)
