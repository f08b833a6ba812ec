"""The run's report (report.md) and the raw data beside it (summary.json, metrics.csv,
timeline.json for the plots)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from bench.report import machine

from . import sipp
from .metrics import COLUMNS
from .phases import PhaseResult, plateau

PLOTS = [
    ("cps.png", "Calls and registrations per second"),
    ("active_calls.png", "Active calls"),
    ("setup_time.png", "Setup time percentiles (per second)"),
    ("media.png", "Media relay"),
    ("queue.png", "Queue: callers waiting and agents on calls"),
]


def _f(x, spec=".0f", none="—") -> str:
    return none if x is None else format(x, spec)


def _setup(r: PhaseResult) -> str:
    s = r.setup_ms()
    if not s["n"]:
        return "—"
    return f"{_f(s['p50'])} / {_f(s['p95'])} / {_f(s['p99'])}"


def _peak(r: PhaseResult) -> str:
    node = r.peak.get("calls_active")
    sipp_peak = r.peak.get("sipp_current_calls")
    if r.phase.kind == "register_storm":
        return "—"
    return f"{_f(node)} (SIPp {_f(sipp_peak)})"


def phase_rows(results: list[PhaseResult]) -> list[str]:
    L = ["| # | phase | offered | attempted | succeeded | failed | CPS offered | CPS achieved "
         "| setup time p50 / p95 / p99 (ms) | peak active calls (node; SIPp caller) | errors | verdict |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r.phase
        if r.skipped:
            L.append(f"| {p.index} | {p.name} ({p.kind}) | {r.offered} | — | — | — | {r.offered_rate} | — | — | — "
                     f"| — | skipped: {r.skipped} |")
            continue
        verdict = "pass" if r.passed else "FAIL: " + "; ".join(r.reasons())
        L.append(f"| {p.index} | {p.name} ({p.kind}) | {r.offered} | {r.attempted} | {r.succeeded} | {r.failed} "
                 f"| {r.offered_rate} | {_f(r.achieved_rate, '.1f')} | {_setup(r)} | {_peak(r)} "
                 f"| {r.errors_text()} | {verdict} |")
    return L


def _pps(r: PhaseResult) -> str:
    window = plateau(r)
    if r.plateau_pps is None or window is None:
        return "—"
    return f"{r.plateau_pps:.0f} (expected {100 * window[2]:.0f})"


def node_rows(results: list[PhaseResult]) -> list[str]:
    L = ["| # | node: call attempts | answered | refused | INVITEs | REGISTERs | registrations after | 5xx sent "
         "| relay packets/s (plateau) | relay drops | peak media sessions | system cores | SIPp cores "
         "| machine cores | settle |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.skipped:
            continue
        d = r.metrics_delta
        L.append(f"| {r.phase.index} | {_f(d.get('call_attempts_total'))} | {_f(d.get('calls_answered_total'))} "
                 f"| {_f(d.get('calls_rejected_total'))} | {_f(d.get('invite_requests_total'))} "
                 f"| {_f(d.get('register_requests_total'))} | {_f(r.registrations_after)} "
                 f"| {_f(d.get('responses_5xx_total'))} | {_pps(r)} "
                 f"| {_f(d.get('media_dropped_packets_total'))} | {_f(r.peak.get('media_sessions'))} "
                 f"| {_f(r.system_cores, '.2f')} | {_f(r.sipp_cores, '.2f')} | {_f(r.machine_cores, '.2f')} "
                 f"| {_f(r.settle_s, '.1f')} s, {_f(r.leftover_calls)} left |")
    return L


def queue_rows(results: list[PhaseResult]) -> list[str]:
    """The queue_peak phases: the queue's KPIs at the end (the ACD's own counters) and the
    peaks of the per-second samples."""
    rows = [r for r in results if r.phase.kind == "queue_peak" and not r.skipped]
    if not rows:
        return []
    L = ["| # | callers | joined | answered | abandoned | timed out | peak waiting | peak longest wait (s) "
         "| ASA (s) | service level (20 s) | AHT (s) | occupancy |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k = (r.queue_end or {}).get("kpis", {})
        waiting = max((s["waiting"] for s in r.queue_samples), default=None)
        longest = max((s["longest_wait_s"] for s in r.queue_samples), default=None)
        sl = k.get("service_level")
        L.append(f"| {r.phase.index} | {r.offered} | {_f(k.get('joined'))} | {_f(k.get('answered'))} "
                 f"| {_f(k.get('abandoned'))} | {_f(k.get('timed_out'))} | {_f(waiting)} | {_f(longest, '.1f')} "
                 f"| {_f(k.get('asa_secs'), '.1f')} | {_f(None if sl is None else 100 * sl, '.1f')}% "
                 f"| {_f(k.get('aht_secs'), '.1f')} | {_f(None if k.get('occupancy') is None else 100 * k['occupancy'], '.0f')}% |")
    return L


def render(*, scenario, command: str, started: float, finished: float, system, results: list[PhaseResult],
           missing_series: list[str], plots_note: str, plots_made: list[str], fatal: str, raw_files: list[str],
           scenario_path: str) -> str:
    m = machine()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    L = [f"# Load test `{scenario.name}`: {when}", ""]
    if scenario.description:
        L += [scenario.description.strip(), ""]
    L += [f"Produced by `{command}` in {(finished - started) / 60:.1f} min "
          f"(git {m['git']}), from [`{scenario_path}`](scenario.toml) (copied verbatim below).", ""]
    if fatal:
        L += ["**The run stopped short:**", "", "```", fatal.strip(), "```", ""]
    L += ["## Phases", ""]
    L += phase_rows(results)
    L += ["",
          "*offered*: registrations or calls the phase starts; *attempted*: what SIPp started; *failed*: calls that "
          "did not complete at the caller (no answer within SIPp's 5 s receive timeout, an error reply, a call cut "
          "off) or at the far end, whichever is more; *CPS achieved*: completed calls (registrations) per second "
          "of the period they were started (SIPp's elapsed time minus the hold); *setup time*: INVITE sent -> "
          "200 OK received at the caller (register storm: first REGISTER sent -> 200 OK, across the 401 "
          "challenge), nearest-rank percentiles over every completed call, SIPp's clock (1 ms resolution, "
          "but it advances in steps of a few ms with its event loop: 0 means under one step); "
          "*peak active calls*: the node's `tongdai_calls_active` sampled every second, "
          "and SIPp's caller-side open calls; *errors*: SIPp's failure causes and the status codes of the "
          "unexpected replies, the node's refusals (`tongdai_calls_rejected_total`), 5xx it sent, packets its "
          "relay dropped.", ""]
    L += ["### What the node counted (from `/metrics`, increase over each phase)", ""]
    L += node_rows(results)
    L += ["",
          "*relay packets/s (plateau)*: the increase of `tongdai_media_relayed_packets_total` per second while "
          "the media load is steady (long calls: every call up, none ending; a burst with media: from the end "
          "of the first calls to the last start, about rate x hold calls streaming); each call carries 50 "
          "packets/s each way, so a call adds 100 relayed packets/s (expected: calls streaming x 100). "
          "*answered* counts a call when its CDR is durable, so a phase may count some "
          "of the previous phase's calls. Counters are taken from a second before the phase to the end of its "
          "settle time. *system cores*: CPU of the `tongdai` process over the "
          "phase / wall time (local cluster only); *SIPp cores*: the SIPp processes'; *machine cores*: the whole "
          "machine's (the difference is other work on this shared machine). *settle*: time after the phase "
          "until the node held no call and no media session (bounded by `settle_s`), and calls left then.", ""]
    queue = queue_rows(results)
    if queue:
        L += ["### The queue (the control plane's ACD, `GET /v1/tenants/{t}/queues/loadtest-peak/live`)", ""]
        L += queue
        L += ["",
              "Counters since the queue was created (a second queue phase adds to them). *answered*: callers an "
              "agent took; *ASA*: average wait of answered callers; *service level*: answered within 20 s / "
              "answered; *AHT*: talk + wrap-up; *occupancy*: the agents' time on calls / their time available; "
              "*peak waiting* and *peak longest wait*: the live view sampled every second. The callers' setup "
              "time in the table above is INVITE -> the queue's 200 OK (the caller is answered at once and "
              "hears music while waiting).", ""]
    if missing_series:
        L += ["Series the node did not export during the run (a counter or a labelled gauge appears with its "
              "first value, so they count as 0 above; or this build does not have them): "
              + ", ".join(f"`{s}`" for s in missing_series) + ".", ""]

    L += ["## Plots", ""]
    if plots_made:
        for name, title in PLOTS:
            if name in plots_made:
                L += [f"### {title}", "", f"![{title}]({name})", ""]
        L += ["Shaded bands are the phases. Rates are per second from SIPp's per-second statistics (`-trace_stat "
              "-fd 1`) and from the increase of the node's counters between one-second samples; setup-time "
              "percentiles are over the calls answered in each second (SIPp `-trace_rtt`).", ""]
    if plots_note:
        L += [plots_note, ""]

    L += ["## System under load", ""]
    described = getattr(system, "described", None) or system.describe()
    L += [f"- {system.version()}"] + [f"- {line}" for line in described]
    for line in system.provisioned:
        L.append(f"- admin API: {line}")
    L += ["- call path: SIPp UAC (a carrier on trunk `loadtest-in`, trusted by its source address, one UDP flow) "
          "dials `18001234` -> number routed to an external number -> the tenant's outbound trunk "
          "`loadtest-out` -> SIPp UAS. Every call is a B2BUA call with its SDP anchored on the node's relay and "
          "a CDR."]
    if queue:
        L += ["- queue path (queue_peak): the same carrier dials `18005555` -> queue `loadtest-peak` (longest idle "
              "first, no wrap-up, announcements off) -> the ACD offers each caller to an idle agent -> the node "
              "rings that agent's phone (every agent registered from one SIPp UAS) and bridges it."]
    L += [""]

    L += ["## Machine", ""]
    L += [f"- {m['nproc']} cores, {m['cpu_model']}, {m['mem_gib']} GiB, Linux {m['kernel']}; load average at "
          f"the start {' '.join(m['loadavg_at_start'])}",
          f"- {m['sipp']}; Python {m['python']}",
          "- Everything (the system, every SIPp process, the runner) shares this machine, and other engineers' "
          "builds may run on it too: *machine cores* above shows how busy it was.", ""]

    L += ["## Scenario", "", "```toml", scenario.source.rstrip(), "```", ""]
    L += ["Phases as run:", ""] + [f"{p.index}. **{p.name}** ({p.kind}): {p.describe()}" for p in scenario.phases]
    L += ["", "## Raw data", ""]
    L += [f"- `{f}`" for f in raw_files]
    L += ["", "SIPp commands, per phase:", ""]
    for r in results:
        for role, o in r.sipp.items():
            L += [f"- {r.phase.name} / {role} (exit {o.exit_code}{', killed' if o.killed else ''}): "
                  f"`{o.command}`"]
    return "\n".join(L) + "\n"


def write_metrics_csv(path: Path, samples: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for s in samples:
            w.writerow(["" if s.get(c) is None else (f"{s[c]:.3f}" if c == "t" else s[c]) for c in COLUMNS])


def summary(results: list[PhaseResult]) -> list[dict]:
    out = []
    for r in results:
        out.append({
            "index": r.phase.index, "name": r.phase.name, "kind": r.phase.kind, "params": r.phase.params,
            "started": r.started, "ended": r.ended, "skipped": r.skipped, "error": r.error,
            "offered": r.offered, "attempted": r.attempted, "succeeded": r.succeeded, "failed": r.failed,
            "offered_rate": r.offered_rate, "achieved_rate": r.achieved_rate, "setup_ms": r.setup_ms(),
            "peak": r.peak, "metrics_delta": r.metrics_delta, "registrations_after": r.registrations_after,
            "plateau_pps": r.plateau_pps, "system_cores": r.system_cores, "sipp_cores": r.sipp_cores,
            "machine_cores": r.machine_cores, "settle_s": r.settle_s, "leftover_calls": r.leftover_calls,
            "passed": r.passed, "reasons": r.reasons(), "errors": r.errors_text(), "queue": r.queue_end,
            "sipp": {role: {k: v for k, v in o.__dict__.items() if k not in ("rows", "rtt")}
                     for role, o in r.sipp.items()},
        })
    return out


def timeline(results: list[PhaseResult], samples: list[dict], t0: float) -> dict:
    """What plots.py draws, with times in seconds since t0."""
    phases, sipp_rows, setup, queue = [], [], [], []
    for r in results:
        if r.skipped:
            continue
        phases.append({"name": r.phase.name, "kind": r.phase.kind, "start": r.started - t0, "end": r.ended - t0})
        for role, o in r.sipp.items():
            for row in o.rows:
                sipp_rows.append({"phase": r.phase.name, "kind": r.phase.kind, "role": role, **row,
                                  "t": row["t"] - t0})
        for q in r.queue_samples:
            queue.append({"phase": r.phase.name, **q, "t": q["t"] - t0})
        m = r.main
        if m and m.rtt:
            for row in sipp.per_second_percentiles(m.rtt):
                setup.append({"phase": r.phase.name, "kind": r.phase.kind, **row, "t": row["t"] - t0})
    return {
        "t0": t0,
        "phases": phases,
        "metrics": [{**s, "t": s["t"] - t0} for s in samples],
        "sipp": sipp_rows,
        "setup": setup,
        "queue": queue,
    }


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
