"""The calls benchmark report: Markdown a reader can check, and one JSON line per step."""

from __future__ import annotations

import time
from pathlib import Path

from bench.report import dated_path, machine


def default_path(results_dir: Path, started: float) -> Path:
    return dated_path(results_dir, "calls", started)


def _f(x, spec=".0f", none="—"):
    return none if x is None else format(x, spec)


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "—"


def _by(results, system: str, config: str):
    return next((r for r in results if r.system == system and r.config == config), None)


def _cps_summary(results, args) -> list[str]:
    L = ["## 1. Call setups per second (CPS)", ""]
    L.append(f"Calls of {args.hold_ms} ms (INVITE -> 180 -> 200 -> ACK, hold, BYE -> 200), offered at rising "
             f"rates for {args.step_seconds} s each; the best rate with < 0.1% failed calls and >= 95% of the "
             "offered rate achieved. *system cores* = CPU of the system's process trees over the step / wall "
             "time (tongdai: one process; Kamailio: all its processes + rtpengine).")
    L.append("")
    L.append("| mode | system | best offered CPS | achieved CPS | failed | system cores | CPU µs per call "
             "| setup p99 (INVITE->200) | SIPp cores | other cores |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for r in results:
            if r.config != "cps":
                continue
            b = r.best(mode)
            if b is None:
                why = r.error.splitlines()[0] if r.error else "no rate passed"
                L.append(f"| {mode} | {r.system} | none | — | — | — | — | — | — | {why} |")
                continue
            L.append(f"| {mode} | {r.system} | {b.rate} | {b.achieved_rate:.0f} | {b.uac.failed}/{b.uac.created} "
                     f"| {b.sut_cores:.2f} | {_f(b.cpu_us_per_call)} | {b.uac.p99_bucket or '—'} "
                     f"| {b.sipp_cores:.2f} | {b.other_cores:.2f} |")
    L.append("")
    t, k = _by(results, "tongdai", "cps"), _by(results, "kamailio", "cps")
    if t and k:
        L.append("### tongdai / Kamailio + rtpengine")
        L.append("")
        for mode in args.modes:
            tb, kb = t.best(mode), k.best(mode)
            if not (tb and kb):
                L.append(f"- **{mode}**: no ratio ({'tongdai' if not tb else 'kamailio'} has no passing rate).")
                continue
            top = max(args.rates)
            at_top = [name for name, st in (("tongdai", tb), ("kamailio", kb)) if st.rate >= top]
            bound = "at least " if at_top == ["tongdai"] else "at most " if at_top == ["kamailio"] else ""
            line = (f"- **{mode}**: max CPS {bound}**{_ratio(tb.achieved_rate, kb.achieved_rate)}** "
                    f"({tb.achieved_rate:.0f} vs {kb.achieved_rate:.0f} calls/s); CPU per call at those rates "
                    f"{_ratio(tb.cpu_us_per_call, kb.cpu_us_per_call)} ({_f(tb.cpu_us_per_call)} vs "
                    f"{_f(kb.cpu_us_per_call)} µs)")
            common = sorted({s.rate for s in t.steps if s.passed and s.mode == mode and s.phase == "cps"}
                            & {s.rate for s in k.steps if s.passed and s.mode == mode and s.phase == "cps"})
            if common:
                rate = common[-1]
                ts = next(s for s in t.steps if s.passed and s.mode == mode and s.rate == rate and s.phase == "cps")
                ks = next(s for s in k.steps if s.passed and s.mode == mode and s.rate == rate and s.phase == "cps")
                line += (f"; at the same offered rate ({rate}/s, the highest both passed): CPU per call "
                         f"**{_ratio(ts.cpu_us_per_call, ks.cpu_us_per_call)}** ({_f(ts.cpu_us_per_call)} vs "
                         f"{_f(ks.cpu_us_per_call)} µs; lower is better)")
            if at_top:
                line += (f" ({' and '.join(at_top)} passed the top of the ladder, {top}/s: its limit is higher "
                         "than measured)")
            L.append(line + ".")
            if tb.achieved_rate >= kb.achieved_rate:
                L.append(f"  Goal (issue 6: CPS >= Kamailio + rtpengine), {mode}: **met**.")
            else:
                L.append(f"  Goal (issue 6: CPS >= Kamailio + rtpengine), {mode}: **not met**.")
        L.append("")
    bound = [f"{r.system} {m}" for r in results if r.config == "cps" for m in args.modes
             if r.best(m) and r.best(m).sipp_cores > 0.9]
    if bound:
        L.append(f"Note: at the best rate of {', '.join(bound)} the two SIPp processes used > 0.9 cores between "
                 "them: the load generator shares the 2-core machine, so part of the limit is the machine, "
                 "not the system alone.")
        L.append("")
    return L


def _conc_summary(results, args) -> list[str]:
    L = ["## 2. Concurrent calls with media", ""]
    L.append(f"N calls set up at {args.ramp_rate}/s, then all N held together {args.plateau:g} s with G.711 "
             "RTP both ways (50 packets/s each way per call). Over a window in that plateau (from 2 s after "
             "the last setup to 1 s before the first BYE) the runner counts the packets delivered to both "
             "SIPp endpoints and every packet the system lost (datagrams the kernel dropped at the system's "
             "own UDP sockets, packets its relay reports dropped or failed to send; see `calls/media.py`). "
             "A level **passes** when every call completes, nothing is lost and the "
             "endpoints got at least 95% of the packets the calls should carry.")
    L.append("")
    L.append("| configuration | system | highest passing level (calls) | relay sessions then | packets delivered "
             "in window (% of expected) | lost | system cores | recorded MiB | stopped at |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if not r.config.startswith("concurrency"):
            continue
        b = r.best("rtp", "concurrency")
        fails = [s for s in r.steps if s.phase == "concurrency" and not s.passed]
        stop = f"{fails[0].calls}: {fails[0].reason}" if fails else "—"
        if b is None:
            why = r.error.splitlines()[0] if r.error else "no level passed"
            L.append(f"| {r.config} | {r.system} | none | — | — | — | — | — | {why if not fails else stop} |")
            continue
        m = b.media or {}
        L.append(f"| {r.config} | {r.system} | {b.calls} | {_f(m.get('relay_sessions_at_start'))} "
                 f"| {_f(m.get('delivered'))} ({_f(100 * (m.get('delivered_ratio') or 0), '.1f')}%) "
                 f"| {_f(m.get('lost'))} | {b.sut_cores:.2f} | {b.recorded_bytes / 2**20:.0f} | {stop} |")
    L.append("")
    for config in sorted({r.config for r in results if r.config.startswith("concurrency")}):
        t, k = _by(results, "tongdai", config), _by(results, "kamailio", config)
        if t and k and t.best("rtp", "concurrency") and k.best("rtp", "concurrency"):
            tb, kb = t.best("rtp", "concurrency"), k.best("rtp", "concurrency")
            L.append(f"- {config}: tongdai / Kamailio + rtpengine = **{_ratio(tb.calls, kb.calls)}** "
                     f"({tb.calls} vs {kb.calls} concurrent calls at zero loss; a level both pass says only "
                     "that both reached it: the ladder is coarse and the generator may be the limit).")
    L.append("")
    return L


def _step_rows(results) -> list[str]:
    L = ["## Every step", ""]
    L.append("| system | config | phase | mode | offered/s | calls | hold ms | ok (UAC / UAS) | failed | failure kinds "
             "| achieved/s | retrans | system cores | µs/call | p99 setup | SIPp cores | other cores "
             "| media window s | delivered (% exp.) | lost (socket drops + relay drops) "
             "| machine: rcvbuf drops elsewhere / sndbuf errors / no port "
             "| sessions left | verdict |")
    L.append("|" + "---|" * 23)
    for r in results:
        for s in r.steps:
            u = s.uac
            m = s.media or {}
            if m.get("error"):
                med = [m["error"], "—", "—", "—"]
            elif m:
                med = [f"{m['seconds']:.1f}", f"{m['delivered']} ({100 * (m['delivered_ratio'] or 0):.1f}%)",
                       f"{m['lost']} ({m['system_socket_drops']} + {m['relay_dropped']})",
                       f"{m['kernel_rcvbuf_drops_elsewhere']} / {m['sndbuf_errors']} / {m['no_port']}"]
            else:
                med = ["—"] * 4
            L.append(f"| {r.system} | {r.config} | {s.phase} | {s.mode} | {s.rate} | {s.calls} | {s.hold_ms} "
                     f"| {u.successful} / {s.uas.get('successful', '?')} | {u.failed} | {u.failure_kinds} "
                     f"| {s.achieved_rate:.0f} | {u.retransmissions} | {s.sut_cores:.2f} | {_f(s.cpu_us_per_call)} "
                     f"| {u.p99_bucket or '—'} | {s.sipp_cores:.2f} | {s.other_cores:.2f} | {' | '.join(med)} "
                     f"| {_f(s.leftover_sessions)} | {s.reason} |")
    L.append("")
    L.append("*ok (UAC / UAS)*: calls SIPp's caller and callee each completed. *p99 setup*: SIPp's "
             "response-time bucket holding the 99th percentile of INVITE sent -> 200 OK received (1 ms "
             "resolution). *other cores*: CPU used during the step by everything except the system and the two "
             "SIPp processes (a shared machine). *sessions left*: media sessions the relay still held 10 s "
             "after the step at most (0 = every call's media freed). In the CPS *rtp* steps the media window "
             "includes calls being set up and torn down, so its *lost* column counts the packets still in "
             "flight when a relay frees a call at BYE; it is reported, not judged. *lost* = datagrams the kernel "
             "dropped at the system's own UDP sockets (full receive buffer) + packets its relay reports "
             "dropped or failed to send. The *machine* counters are machine-wide (other processes' UDP "
             "included) and not judged.")
    L.append("")
    return L


def render(results, args, command: str, started: float, finished: float) -> str:
    m = machine()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    L = ["# Calls: tongdai B2BUA vs Kamailio + rtpengine, media anchored", ""]
    L.append(f"Run {when}, {finished - started:.0f} s, one script run, same machine, same SIPp scenarios "
             "(`loadtest/scenarios/call_uac[_rtp].xml`, `call_uas[_rtp].xml`).")
    L.append("")
    L.append("```")
    L.append(command)
    L.append("```")
    L.append("")
    L.append("Call path: SIPp UAC (a carrier, 127.0.0.1, one UDP flow) -> system under test -> SIPp UAS "
             "(the far end). The UAC dials the toll-free number 18001234; the system routes it to the UAS and "
             "rewrites both SDPs so the media goes through its relay:")
    L.append("")
    L.append("- **tongdai**: `tongdai up` (one process: control plane, SIP node, media relay); trunk `in` trusts "
             "the UAC's exact source address, 18001234 -> external number 0912000111 -> outbound trunk `out` "
             "(the UAS) with the tenant's DID as caller ID. A B2BUA call: two dialogs, the media anchored on "
             "tongdai's relay, a CDR per call.")
    L.append("- **kamailio**: Kamailio (`loadtest/kamailio/calls.cfg`: tm stateful proxy, record_route, dialog "
             "module, `rtpengine_manage()` offer/answer/delete) + rtpengine in userspace mode (`--table=-1`, "
             "no kernel module), as many threads as cores.")
    L.append("")
    L.append("Nothing is pinned: system, SIPp UAC and SIPp UAS share the machine's cores.")
    L.append("")
    if "cps" in args.phases:
        L.extend(_cps_summary(results, args))
    if "concurrency" in args.phases:
        L.extend(_conc_summary(results, args))
    for r in results:
        if r.error:
            L += [f"### {r.system} ({r.config}): error", "", "```", r.error, "```", ""]
    L.extend(_step_rows(results))
    L.append("## Systems and commands")
    L.append("")
    for r in results:
        L.append(f"- **{r.system}** ({r.config}): {r.version}; {r.describe or 'n/a'}")
        for c in r.commands:
            L.append(f"  - `{c}`")
    L.append("- SIPp, per step: UAS `sipp -sf call_uas[_rtp].xml -t u1 -i 127.0.0.1 -mi 127.0.0.1 -p UAS_PORT "
             "-mp MP -m CALLS -timeout T`, then UAC `sipp 127.0.0.1:PORT -sf call_uac[_rtp].xml -key caller "
             "0912345678 -key dialled 18001234 -key domain bench -t u1 -i 127.0.0.1 -mi 127.0.0.1 -p UAC_PORT "
             "-mp MP -r RATE -rp 1000 -m CALLS -l LIMIT -d HOLD_MS -recv_timeout 5000 -timeout T` "
             "(plus statistics and error files; each step's exact argv is in the .jsonl).")
    L.append("")
    L.append("## Machine")
    L.append("")
    for key, value in m.items():
        L.append(f"- {key}: {value}")
    L.append("")
    return "\n".join(L)


def raw(results, args, command: str, started: float) -> list[dict]:
    lines: list[dict] = [{
        "kind": "run", "command": command,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }]
    for r in results:
        lines.append({"kind": "system", "system": r.system, "config": r.config, "version": r.version,
                      "describe": r.describe, "commands": r.commands, "error": r.error})
        for s in r.steps:
            u = s.uac
            lines.append({
                "kind": "step", "system": r.system, "config": r.config, "phase": s.phase, "mode": s.mode,
                "offered_rate": s.rate, "calls": s.calls, "hold_ms": s.hold_ms,
                "uac": {"created": u.created, "successful": u.successful, "failed": u.failed,
                        "failed_timeout": u.failed_timeout, "failed_unexpected": u.failed_unexpected,
                        "failed_max_retrans": u.failed_max_retrans, "retransmissions": u.retransmissions,
                        "elapsed_s": u.elapsed_s, "wall_s": u.wall_s, "cpu_s": u.sipp_cpu_s,
                        "exit": u.exit_code, "avg_setup_ms": u.avg_response_ms, "setup_buckets": u.rt_buckets},
                "uas": s.uas, "achieved_rate": s.achieved_rate, "system_cpu_s": s.sut_cpu_s,
                "system_cores": s.sut_cores, "cpu_us_per_call": s.cpu_us_per_call,
                "machine_busy_s": s.machine_busy_s, "other_cores": s.other_cores, "media": s.media,
                "recorded_bytes": s.recorded_bytes, "sessions_left": s.leftover_sessions,
                "passed": s.passed, "verdict": s.reason, "sipp": s.argv,
            })
    return lines
