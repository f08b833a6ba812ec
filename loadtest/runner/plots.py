"""Draws the run's PNG plots from timeline.json: `python plots.py RESULTS_DIR`.

Runs under the runner's own virtualenv (target/loadtest-venv, with matplotlib), not the
runner's interpreter: the rest of the runner is Python standard library only. Prints the
names of the files it wrote, one per line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]


def shade_phases(ax, phases) -> None:
    for i, p in enumerate(phases):
        ax.axvspan(p["start"], p["end"], color=COLORS[i % len(COLORS)], alpha=0.08, lw=0)


def label_phases(ax, phases) -> None:
    """Phase names along the top of the first axis."""
    for p in phases:
        ax.text((p["start"] + p["end"]) / 2, 1.01, p["name"], transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8)


def rate_series(rows, key):
    """Per-interval counts of SIPp's statistics -> (t, count / interval length). Intervals
    shorter than 0.5 s (SIPp writes a last row when it exits) are merged into the next one."""
    ts, vs = [], []
    prev, acc = None, 0
    for r in rows:
        if prev is None:
            prev = r["t"]
            continue
        acc += r[key]
        if r["t"] - prev >= 0.5:
            ts.append(r["t"])
            vs.append(acc / (r["t"] - prev))
            prev, acc = r["t"], 0
    return ts, vs


def counter_rate(samples, key):
    ts, vs = [], []
    prev = None
    for s in samples:
        if not s.get("ok") or s.get(key) is None:
            continue
        if prev is not None and s["t"] > prev["t"] and s[key] >= prev[key]:
            ts.append(s["t"])
            vs.append((s[key] - prev[key]) / (s["t"] - prev["t"]))
        prev = s
    return ts, vs


def gauge(samples, key):
    pts = [(s["t"], s[key]) for s in samples if s.get("ok") and s.get(key) is not None]
    return [t for t, _ in pts], [v for _, v in pts]


def by_phase_role(rows, role):
    out = {}
    for r in rows:
        if r["role"] == role:
            out.setdefault(r["phase"], []).append(r)
    return out


def finish(fig, ax_last, out: Path, name: str, made: list) -> None:
    ax_last.set_xlabel("seconds since the cluster was ready")
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    made.append(name)


def finish_twin(fig, ax, ax2, phases, out: Path, name: str, made: list) -> None:
    """A plot with a right-hand axis: one legend for both, the phases, saved."""
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    shade_phases(ax, phases)
    label_phases(ax, phases)
    finish(fig, ax, out, name, made)


def main(out: Path) -> int:
    tl = json.loads((out / "timeline.json").read_text())
    phases, samples, rows, setup = tl["phases"], tl["metrics"], tl["sipp"], tl["setup"]
    made: list[str] = []

    # 1. CPS: calls per second (SIPp caller and the node), registrations per second.
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 6.5), sharex=True)
    for i, (name, rs) in enumerate(by_phase_role(rows, "uac").items()):
        t, v = rate_series(rs, "created")
        ax1.plot(t, v, color=COLORS[0], lw=1.2, label="SIPp: calls started/s" if i == 0 else None)
        t, v = rate_series(rs, "successful")
        ax1.plot(t, v, color=COLORS[2], lw=1.2, label="SIPp: calls completed/s" if i == 0 else None)
        t, v = rate_series(rs, "failed")
        if any(v):
            ax1.plot(t, v, color=COLORS[3], lw=1.2, label="SIPp: calls failed/s")
    t, v = counter_rate(samples, "call_attempts_total")
    ax1.plot(t, v, color=COLORS[1], lw=1, ls="--", label="node: tongdai_call_attempts_total /s")
    ax1.set_ylabel("calls per second")
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax1.grid(alpha=0.3)
    for i, (name, rs) in enumerate(by_phase_role(rows, "register").items()):
        t, v = rate_series(rs, "successful")
        ax2.plot(t, v, color=COLORS[2], lw=1.2, label="SIPp: registrations completed/s" if i == 0 else None)
        t, v = rate_series(rs, "failed")
        if any(v):
            ax2.plot(t, v, color=COLORS[3], lw=1.2, label="SIPp: registrations failed/s")
    t, v = counter_rate(samples, "register_requests_total")
    ax2.plot(t, v, color=COLORS[1], lw=1, ls="--", label="node: REGISTER requests/s (2 per registration)")
    ax2.set_ylabel("registrations per second")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        shade_phases(ax, phases)
    label_phases(ax1, phases)
    finish(fig, ax2, out, "cps.png", made)

    # 2. Active calls.
    fig, ax = plt.subplots(figsize=(13, 4.2))
    t, v = gauge(samples, "calls_active")
    ax.plot(t, v, color=COLORS[0], lw=1.5, label="node: tongdai_calls_active")
    t, v = gauge(samples, "media_sessions")
    ax.plot(t, v, color=COLORS[1], lw=1, ls="--", label="node: tongdai_media_sessions")
    for i, (name, rs) in enumerate(by_phase_role(rows, "uac").items()):
        ax.plot([r["t"] for r in rs], [r["current"] for r in rs], color=COLORS[2], lw=1, ls=":",
                label="SIPp caller: open calls" if i == 0 else None)
    ax.set_ylabel("calls")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    shade_phases(ax, phases)
    label_phases(ax, phases)
    finish(fig, ax, out, "active_calls.png", made)

    # 3. Setup-time percentiles per second (calls; registrations).
    kinds = [("calls", [s for s in setup if s["kind"] != "register_storm"], "call setup, INVITE -> 200 (ms)"),
             ("registrations", [s for s in setup if s["kind"] == "register_storm"],
              "registration, REGISTER -> 401 -> 200 (ms)")]
    kinds = [k for k in kinds if k[1]]
    if kinds:
        fig, axes = plt.subplots(len(kinds), 1, figsize=(13, 3.4 * len(kinds) + 0.6), sharex=True, squeeze=False)
        for ax, (_, pts, ylabel) in zip(axes[:, 0], kinds):
            for q, c in (("p50", COLORS[2]), ("p95", COLORS[1]), ("p99", COLORS[3])):
                by = {}
                for s in pts:
                    by.setdefault(s["phase"], []).append(s)
                for i, seg in enumerate(by.values()):
                    ax.plot([s["t"] for s in seg], [s[q] for s in seg], color=c, lw=1.2, marker=".", ms=3,
                            label=q if i == 0 else None)
            ax.set_yscale("symlog", linthresh=1.0)
            top = max([s[q] for s in pts for q in ("p50", "p95", "p99") if s[q] is not None] + [1.0])
            steps = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
            ticks = [t for t in steps if t <= top * 1.5]
            ax.set_yticks(ticks)
            ax.set_yticklabels([str(t) for t in ticks])
            ax.set_ylim(-0.2, top * 1.6)
            ax.set_ylabel(ylabel)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
            ax.grid(alpha=0.3, which="both")
            shade_phases(ax, phases)
        label_phases(axes[0, 0], phases)
        finish(fig, axes[-1, 0], out, "setup_time.png", made)

    # 4. Media relay: packets/s, drops/s, port pairs in use.
    t_pps, v_pps = counter_rate(samples, "media_relayed_packets_total")
    if any(v_pps):
        fig, ax = plt.subplots(figsize=(13, 4.2))
        ax.plot(t_pps, v_pps, color=COLORS[0], lw=1.2, label="node: relayed packets/s")
        t, v = counter_rate(samples, "media_dropped_packets_total")
        ax.plot(t, v, color=COLORS[3], lw=1.2, label="node: relay dropped packets/s")
        ax.set_ylabel("packets per second")
        ax2 = ax.twinx()
        t, v = gauge(samples, "media_port_pairs_in_use")
        ax2.plot(t, v, color=COLORS[4], lw=1, ls="--", label="node: RTP port pairs in use (right)")
        ax2.set_ylabel("port pairs")
        finish_twin(fig, ax, ax2, phases, out, "media.png", made)

    # 5. The queue: callers waiting, agents on calls, the longest wait.
    queue = tl.get("queue", [])
    if queue:
        fig, ax = plt.subplots(figsize=(13, 4.2))
        by = {}
        for q in queue:
            by.setdefault(q["phase"], []).append(q)
        for i, seg in enumerate(by.values()):
            t = [q["t"] for q in seg]
            ax.plot(t, [q["waiting"] for q in seg], color=COLORS[0], lw=1.5,
                    label="callers waiting" if i == 0 else None)
            ax.plot(t, [q["on_call"] for q in seg], color=COLORS[2], lw=1.2,
                    label="agents on calls" if i == 0 else None)
        ax.set_ylabel("callers / agents")
        ax2 = ax.twinx()
        for i, seg in enumerate(by.values()):
            ax2.plot([q["t"] for q in seg], [q["longest_wait_s"] for q in seg], color=COLORS[3], lw=1, ls="--",
                     label="longest wait, s (right)" if i == 0 else None)
        ax2.set_ylabel("seconds")
        finish_twin(fig, ax, ax2, phases, out, "queue.png", made)

    for name in made:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
