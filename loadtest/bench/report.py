"""The benchmark report: a Markdown file a reader can check, and the raw numbers as JSON."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from .systems import REPO_DIR


def dated_path(results_dir: Path, kind: str, started: float) -> Path:
    """results/<kind>-<day>.md, or <kind>-<day>-<HHMMSS>.md when a run of that day exists
    (never overwrite an earlier run of the same day). Every benchmark names its reports so."""
    day = time.strftime("%Y-%m-%d", time.gmtime(started))
    path = results_dir / f"{kind}-{day}.md"
    if path.exists():
        path = results_dir / f"{kind}-{day}-{time.strftime('%H%M%S', time.gmtime(started))}.md"
    return path


def default_path(results_dir: Path, started: float) -> Path:
    return dated_path(results_dir, "register", started)


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def cpu_and_memory() -> tuple[str, float]:
    """The CPU model and the memory in GiB, from /proc (shared by every report)."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return model, round(mem_kb / 1024 / 1024, 1)


def machine() -> dict:
    model, mem_gib = cpu_and_memory()
    def sysctl(name: str) -> str:
        try:
            return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
        except OSError:
            return "?"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "mem_gib": mem_gib,
        "rmem_max": sysctl("net.core.rmem_max"),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "sipp": _cmd(["sipp", "-v"]).replace("\n", " ").strip().split("  ")[0].strip() or "unknown",
        "python": platform.python_version(),
        "git": _cmd(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
        + (" (dirty)" if _cmd(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"]) else ""),
    }


def _fmt(x, spec=".0f", none="—"):
    return none if x is None else format(x, spec)


def _step_row(system: str, label: str, st) -> str:
    r = st.run
    return (
        f"| {system} | {label} | {r.target_rate} | {r.calls_requested} | {r.successful} | {r.failed} "
        f"| {r.failure_kinds} "
        f"| {100 * r.failure_ratio:.3f} | {r.achieved_rate:.0f} | {r.retransmissions} "
        f"| {st.server_cores:.2f} | {_fmt(st.cpu_us_per_registration)} "
        f"| {_fmt(r.avg_response_ms, '.2f')} | {r.p99_bucket or '—'} "
        f"| {st.sipp_cores:.2f} | {st.other_cores:.2f} | {st.reason} |"
    )


def render(results, args, command: str, started: float, finished: float) -> str:
    m = machine()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    L = []
    L.append(f"# REGISTER/s with digest auth: {' vs '.join(r.name for r in results)}")
    L.append("")
    L.append(f"Run {when}, {finished - started:.0f} s, one script run, same machine, same SIPp scenario.")
    L.append("")
    L.append("```")
    L.append(command)
    L.append("```")
    L.append("")
    L.append("A *registration* is one SIPp call of `scenarios/register_auth.xml`: REGISTER -> 401 "
             "challenge -> REGISTER with digest credentials (MD5, qop=auth) -> 200 OK, so it is two "
             "REGISTER requests. Rates below are registrations/s; REGISTER requests/s are twice that.")
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("| system | best offered rate (/s) | achieved registrations/s | REGISTER req/s | failures "
             "| server CPU µs / registration | server cores busy | p99 response | SIPp cores | workers |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = r.best
        if b is None:
            L.append(f"| {r.name} | none passed | — | — | — | — | — | — | — | {r.workers or '—'} |")
            continue
        L.append(
            f"| {r.name} | {b.run.target_rate} | {b.run.achieved_rate:.0f} | {2 * b.run.achieved_rate:.0f} "
            f"| {b.run.failed}/{b.run.created} ({100 * b.run.failure_ratio:.3f}%) "
            f"| {_fmt(b.cpu_us_per_registration)} | {b.server_cores:.2f} | {b.run.p99_bucket} "
            f"| {b.sipp_cores:.2f} | {r.workers} |"
        )
    L.append("")
    by = {r.name: r for r in results}
    if "tongdai" in by and "kamailio" in by:
        t, k = by["tongdai"], by["kamailio"]
        if t.best and k.best:
            ratio = t.best.run.achieved_rate / k.best.run.achieved_rate
            L.append(f"**tongdai / kamailio, best achieved rate: {ratio:.2f}x** "
                     f"({t.best.run.achieved_rate:.0f} vs {k.best.run.achieved_rate:.0f} registrations/s).")
            common = sorted({s.run.target_rate for s in t.steps if s.passed}
                            & {s.run.target_rate for s in k.steps if s.passed})
            # The fairest CPU comparison: equal offered load, both passing.
            if common:
                rate = common[-1]
                ts = next(s for s in t.steps if s.passed and s.run.target_rate == rate)
                ks = next(s for s in k.steps if s.passed and s.run.target_rate == rate)
                if ts.cpu_us_per_registration and ks.cpu_us_per_registration:
                    L.append("")
                    L.append(
                        f"At the same offered rate ({rate}/s, the highest both passed): server CPU per "
                        f"registration tongdai {ts.cpu_us_per_registration:.0f} µs vs kamailio "
                        f"{ks.cpu_us_per_registration:.0f} µs: **tongdai / kamailio = "
                        f"{ts.cpu_us_per_registration / ks.cpu_us_per_registration:.2f}x CPU** (lower is better)."
                    )
        else:
            L.append("**No ratio**: " + "; ".join(
                f"{r.name} has no passing rate" + (f" ({r.error.splitlines()[0]})" if r.error else "")
                for r in (t, k) if not r.best))
        L.append("")
    client_bound = [r.name for r in results if r.best and r.best.sipp_cores > 0.9]
    if client_bound:
        L.append(f"Note: at the best rate of {', '.join(client_bound)} SIPp used > 0.9 of a core; SIPp is "
                 "single-threaded, so the client may be the limit and the figure is a lower bound for the server.")
        L.append("")
    L.append("## Sanity pass (every user registers once)")
    L.append("")
    for r in results:
        if r.sanity is None:
            L.append(f"- {r.name}: not run. {r.error.splitlines()[0] if r.error else ''}")
            continue
        s = r.sanity.run
        held = "" if r.sanity_registered is None else (
            f"; bindings held afterwards: {r.sanity_registered} "
            + ("(kamcmd usrloc:registered_users)" if r.name == "kamailio" else "(/metrics tongdai_registrations_active)"))
        final = "" if r.final_registered is None else (
            f" After the ladder: {r.final_registered} bindings (each user keeps one contact).")
        L.append(f"- {r.name}: {s.successful}/{args.users} users got 200 OK at {s.target_rate}/s, "
                 f"{s.failed} failed{held}.{final}")
    L.append("")
    for r in results:
        if r.error:
            L.append(f"### {r.name}: error")
            L.append("")
            L.append("```")
            L.append(r.error)
            L.append("```")
            L.append("")
    L.append("## Every step")
    L.append("")
    L.append("| system | step | offered/s | calls | ok | failed | failure kinds | fail % | achieved/s | retrans "
             "| server cores | µs/reg | avg resp ms (1 ms res.) | p99 bucket | SIPp cores | other cores | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r.sanity:
            L.append(_step_row(r.name, "sanity", r.sanity))
        for st in r.steps:
            L.append(_step_row(r.name, st.run.label.removeprefix(r.name + "-"), st))
    L.append("")
    commit_rows = []
    for r in results:
        prev = {}
        for st in r.steps:
            c = st.commit
            if not c:
                continue
            entries = c.get("log_entries", 0) - prev.get("log_entries", 0)
            commands = c.get("commands", 0) - prev.get("commands", 0)
            per_entry = f"{commands / entries:.1f}" if entries > 0 else "—"
            p50 = c.get("commit_p50_ms")
            p99 = c.get("commit_p99_ms")
            fmt = lambda v: "—" if v is None else f"{v:.2f}"
            commit_rows.append(f"| {r.name} | {st.run.label.removeprefix(r.name + '-')} | "
                               f"{st.run.target_rate} | {fmt(p50)} | {fmt(p99)} | {int(entries)} | "
                               f"{int(commands)} | {per_entry} |")
            prev = c
    if commit_rows:
        L.append("## Raft commit (tongdai)")
        L.append("")
        L.append("Commit latency of a REGISTER's binding change as the node sees it (propose over QUIC "
                 "to the leader, durable append on a majority of replicas, apply), from the "
                 "`tongdai_registration_commit_seconds` summary on /metrics after each step (the "
                 "exporter's quantiles cover roughly the last minute). Log entries and commands are "
                 "the leader's counters over the step; commands per entry is the batching factor.")
        L.append("")
        L.append("| system | step | offered/s | commit p50 ms | commit p99 ms | log entries | commands | commands/entry |")
        L.append("|---|---|---|---|---|---|---|---|")
        L.extend(commit_rows)
        L.append("")
    L.append("*failure kinds* (SIPp's counters): *timeout* = no answer within 5 s, *error reply* = "
             "an answer other than the expected 401/407/200 (e.g. 503), *unfinished* = still running "
             "when SIPp stopped. See the run's SIPp screens (`--keep-tmp`) for the exact replies.")
    L.append("")
    L.append("*other cores*: CPU the rest of the machine used during the step (from /proc/stat, minus "
             "server and SIPp). Anything well above 0 means the step shared the machine with other work.")
    L.append("")
    L.append("## Systems")
    L.append("")
    for r in results:
        L.append(f"- **{r.name}**: {r.version}; workers: {r.workers or 'n/a'}")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_gib']} GiB, Linux {m['kernel']}")
    L.append(f"- load average at start: {' '.join(m['loadavg_at_start'])}; net.core.rmem_max={m['rmem_max']}")
    L.append(f"- {m['sipp']}; Python {m['python']}; repository at {m['git']}")
    L.append("")
    L.append("## Method")
    L.append("")
    L.append(f"- {args.users} users ({args.first_extension}..{args.first_extension + args.users - 1}, "
             f"password `{args.password_prefix}<user>`, realm/domain `{args.realm}`), the same list for "
             "both systems; SIPp reads them SEQUENTIALly and wraps around, so later steps are re-registrations "
             f"(refreshes of existing bindings), Expires {args.expires}.")
    if args.source_ips == 1:
        L.append("- SIPp sends everything from 127.0.0.1 on one UDP socket (`-t u1`): a single flow.")
    else:
        L.append(f"- SIPp sends from {args.source_ips} addresses 127.0.0.2..127.0.0.{1 + args.source_ips} "
                 "(`-t ui`), each user always from the same one: "
                 f"{args.source_ips} UDP flows, as from many phones.")
    L.append(f"- Offered rates tried in order: {', '.join(map(str, args.rates))} (stop at the first failure, "
             f"then up to {args.refine} bisection steps); each step offers rate x {args.step_seconds} calls "
             f"(`sipp -r R -rp 1000 -m N`), then rests {args.pause} s.")
    L.append("- A step passes when failures (calls created but not ending in 200 OK: timeouts after "
             "5 s, errors, unexpected replies) are < 0.1% and the achieved rate (200 OKs / SIPp's elapsed "
             "time) is >= 95% of the offered rate.")
    L.append("- Server CPU = utime+stime from /proc/<pid>/stat summed over the server's process tree "
             "(Kamailio's forked workers, tongdai's threads), sampled before and after each step; "
             "µs/registration = that CPU / 200 OKs.")
    L.append(f"- Before each step the runner waits (at most {args.quiet_wait:.0f} s) until processes other "
             f"than the server use <= {args.quiet_cores} cores; the *other cores* column shows what they used "
             "during the step.")
    if "tongdai" in args.systems:
        L.append(f"- tongdai offers challenges {', '.join(args.tongdai_algorithms)} (one WWW-Authenticate each, "
                 "in that order); Kamailio offers one, MD5. SIPp answers the first, MD5, for both.")
    L.append("- SIPp runs on the same machine (127.0.0.1) and shares the CPUs with the server; "
             "no CPU pinning.")
    L.append("")
    return "\n".join(L)


def raw(results, args, command: str, started: float) -> dict:
    def step(st):
        if st is None:
            return None
        r = st.run
        return {
            "label": r.label, "offered_rate": r.target_rate, "calls": r.calls_requested,
            "created": r.created, "successful": r.successful, "failed": r.failed,
            "retransmissions": r.retransmissions, "failed_timeout": r.failed_timeout,
            "failed_unexpected": r.failed_unexpected, "failed_max_retrans": r.failed_max_retrans, "elapsed_s": r.elapsed_s, "wall_s": r.wall_s,
            "achieved_rate": r.achieved_rate, "avg_response_ms": r.avg_response_ms,
            "rt_buckets": r.rt_buckets, "sipp_exit": r.exit_code, "sipp_cpu_s": r.sipp_cpu_s,
            "server_cpu_s": st.server_cpu_s, "machine_busy_s": st.machine_busy_s,
            "cpu_us_per_registration": st.cpu_us_per_registration,
            "passed": st.passed, "verdict": st.reason, "commit": st.commit,
        }
    return {
        "command": command,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "systems": [
            {
                "name": r.name, "version": r.version, "workers": r.workers, "error": r.error,
                "sanity": step(r.sanity), "sanity_registered": r.sanity_registered,
                "final_registered": r.final_registered,
                "steps": [step(s) for s in r.steps],
                "best": step(r.best),
            }
            for r in results
        ],
    }
