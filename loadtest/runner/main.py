"""`loadtest/run SCENARIO.toml`: one load-test run, from the scenario file to the report.

1. Read and check the scenario (nothing starts if it is wrong: exit 2, the field named).
2. Make sure the plotting virtualenv exists (target/loadtest-venv with matplotlib; created
   with `python3 -m venv` + `pip install matplotlib` when missing).
3. Start a local `tongdai up` (or check the [target]), provision the call path through the
   admin API, start sampling /metrics every second.
4. Run the phases in order; after each, wait (bounded) for the node to hold no call.
5. Always, even when interrupted (SIGINT/SIGTERM) or failing: stop SIPp and the cluster
   (only the processes started here, by PID), put a target's provisioning back, write
   loadtest/results/run-<scenario>-<timestamp>/ (report.md, PNGs, raw CSV/JSON).

Exit codes: 0 every phase passed; 1 a phase failed or the run stopped short; 2 bad
scenario or command line; 3 a missing tool or binary.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import OwnedProcesses, exit_on_signals, free_port
from bench.systems import LOADTEST_DIR, REPO_DIR

from . import report
from .cluster import ClusterError, LocalCluster, TargetCluster
from .metrics import Sampler
from .phases import PhaseResult, PhaseRunner, fill_from_samples
from .scenario import ScenarioError, load

VENV = REPO_DIR / "target" / "loadtest-venv"
PLOTS_PY = Path(__file__).resolve().parent / "plots.py"


def log(msg: str) -> None:
    print(msg, flush=True)


def plot_python(setup: bool) -> tuple[Path | None, str]:
    """The virtualenv's python with matplotlib, created when missing (setup=True)."""
    py = VENV / "bin" / "python"

    def ok() -> bool:
        return py.exists() and subprocess.run([str(py), "-c", "import matplotlib"], capture_output=True,
                                              timeout=60).returncode == 0
    if ok():
        return py, ""
    if not setup:
        return None, "Plots not drawn: --no-plots."
    log(f"run: creating {VENV} with matplotlib for the plots (once)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "matplotlib"], check=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        return None, (f"Plots not drawn: could not set up {VENV} with matplotlib ({e}); run loadtest/install.sh "
                      f"--no-build, then `loadtest/run --replot {'{results dir}'}`.")
    return (py, "") if ok() else (None, f"Plots not drawn: matplotlib does not import in {VENV}.")


def draw_plots(py: Path | None, out: Path) -> tuple[list[str], str]:
    if py is None:
        return [], ""
    try:
        done = subprocess.run([str(py), str(PLOTS_PY), str(out)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return [], "Plots not drawn: plots.py took more than 300 s."
    if done.returncode != 0:
        return [], f"Plots not drawn: plots.py failed:\n\n```\n{done.stderr.strip()[-1500:]}\n```"
    return done.stdout.split(), ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="loadtest/run",
        description="Runs a load-test scenario (TOML) against a local tongdai cluster or a target, and writes "
                    "a report with plots to loadtest/results/run-<scenario>-<timestamp>/.",
        epilog="Scenario format: loadtest/README.md ('Load-test runner') and loadtest/scenarios/*.toml.")
    p.add_argument("scenario", nargs="?", type=Path, help="the scenario file, e.g. loadtest/scenarios/smoke.toml")
    p.add_argument("--check", action="store_true", help="only check the scenario file, start nothing")
    p.add_argument("--self-test", action="store_true", help="run the runner's own unit tests (no load)")
    p.add_argument("--tongdai-bin", type=Path, default=None, help="overrides [cluster] binary")
    p.add_argument("--results", type=Path, default=LOADTEST_DIR / "results",
                   help="where the run directory goes (default loadtest/results)")
    p.add_argument("--no-plots", action="store_true", help="do not set up matplotlib; the report has no PNGs")
    p.add_argument("--replot", type=Path, metavar="RUN_DIR", help="draw the PNGs of an earlier run again")
    p.add_argument("--keep-tmp", action="store_true", help="keep the run's scratch directory (SIPp files, logs)")
    p.add_argument("--startup-timeout", type=float, default=60.0, help="seconds for the cluster to come up")
    args = p.parse_args(argv)
    if not (args.self_test or args.replot) and args.scenario is None:
        p.error("the scenario file is missing (e.g. loadtest/run loadtest/scenarios/smoke.toml)")
    return args


def self_test() -> int:
    import unittest

    from . import tests

    suite = unittest.defaultTestLoader.loadTestsFromModule(tests)
    return 0 if unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful() else 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.self_test:
        return self_test()
    if args.replot:
        plots, note = draw_plots(plot_python(setup=True)[0], args.replot)
        log("\n".join(plots) or note)
        return 0 if plots else 1
    try:
        scenario = load(args.scenario)
    except ScenarioError as e:
        print(f"loadtest/run: {args.scenario}: {e}", file=sys.stderr)
        return 2
    if args.check:
        log(f"{args.scenario}: ok, {len(scenario.phases)} phase(s), about {scenario.planned_seconds() / 60:.1f} min")
        return 0
    if shutil.which("sipp") is None:
        print("loadtest/run: 'sipp' not found; install it with loadtest/install.sh --no-build (Debian package "
              "sip-tester)", file=sys.stderr)
        return 3
    binary = None
    if scenario.cluster is not None:
        binary = (args.tongdai_bin or (REPO_DIR / scenario.cluster.binary)).resolve()
        if not binary.is_file():
            print(f"loadtest/run: the tongdai binary {binary} does not exist (cluster.binary); build it with "
                  "`cargo build --release -p tongdai-node` or loadtest/install.sh", file=sys.stderr)
            return 3
    py, plots_note = plot_python(setup=not args.no_plots)
    return run(args, scenario, binary, py, plots_note)


def run(args, scenario, binary: Path | None, py: Path | None, plots_note: str) -> int:
    command = os.environ.get("LOADTEST_COMMAND") or shlex.join(["loadtest/run", *sys.argv[1:]])
    started = time.time()
    stamp = time.strftime("%Y-%m-%d-%H%M%S", time.gmtime(started))
    out = args.results / f"run-{scenario.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    raw = out / "sipp"
    tmp = Path(tempfile.mkdtemp(prefix=f"tongdai-loadtest-{scenario.name}."))
    owned = OwnedProcesses()
    system = (LocalCluster(scenario, tmp / "cluster", binary) if scenario.cluster is not None
              else TargetCluster(scenario))
    results: list[PhaseResult] = [PhaseResult(phase=p, skipped="not reached") for p in scenario.phases]
    sampler = None
    fatal = ""
    t0 = started
    deadline = time.monotonic() + scenario.max_minutes * 60
    exit_on_signals()
    log(f"run: {scenario.name}: {len(scenario.phases)} phase(s), about {scenario.planned_seconds() / 60:.1f} min; "
        f"results in {out}")
    try:
        system.start(owned)
        system.wait_ready(args.startup_timeout)
        uac_port, uas_port = free_port(), free_port()
        system.provision(uac_port, uas_port,
                         raise_quotas=scenario.cluster is not None or scenario.target.raise_quotas)
        system.described = system.describe()
        log(f"run: {system.version()} ready; SIP on 127.0.0.1:{system.sip_port}")
        sampler = Sampler(system.metrics_url, cpu_seconds=system.cpu_seconds)
        t0 = time.time()
        sampler.start()
        runner = PhaseRunner(system, owned, sampler, tmp / "phases", raw, uac_port, uas_port, log=log)
        for i, phase in enumerate(scenario.phases):
            left = deadline - time.monotonic()
            if phase.planned_seconds() + 30 > left:
                results[i].skipped = f"time budget (max_minutes) left {left:.0f} s"
                log(f"run: phase {phase.index} ({phase.name}) skipped: {results[i].skipped}")
                continue
            log(f"run: phase {phase.index} ({phase.name}): {phase.describe()}")
            results[i].skipped = "interrupted while it ran"
            slug = f"{phase.index}-{phase.kind}"
            try:
                res = runner.run(phase, slug)
            except RuntimeError as e:
                res = PhaseResult(phase=phase, error=str(e), started=time.time(), ended=time.time())
            results[i] = res
            runner.settle(res, bound_s=scenario.settle_s)
            sampler.wait_for_sample_after(time.time())
            fill_from_samples(res, sampler.samples)
            log(f"run: phase {phase.index} ({phase.name}): attempted {res.attempted}, succeeded {res.succeeded}, "
                f"failed {res.failed}, achieved {res.achieved_rate or 0:.1f}/s, setup ms {res.setup_ms()} -> "
                + ("pass" if res.passed else "FAIL: " + "; ".join(res.reasons())))
            if not system.alive():
                fatal = f"the system died during phase {phase.index}. Log:\n{system.log_tail()}"
                break
    except (ClusterError, RuntimeError, OSError) as e:
        fatal = str(e)
        log(f"run: {fatal}")
    except SystemExit as e:  # SIGINT / SIGTERM (exit_on_signals)
        fatal = f"interrupted (signal {e.code - 128 if isinstance(e.code, int) else e.code})"
        log(f"run: {fatal}; stopping what was started and writing the report")
    finally:
        if sampler is not None:
            sampler.stop()
        undo_errors = system.unprovision() if system.kind == "target" and system.alive() else []
        if undo_errors:
            fatal += ("\n" if fatal else "") + "could not restore the target's provisioning: " + "; ".join(undo_errors)
        system.stop(owned)
        owned.stop_all()
        finished = time.time()
        samples = sampler.samples if sampler else []
        write_outputs(out, scenario, args, command, started, finished, system, results, sampler, samples, t0, py,
                      plots_note, fatal)
        if args.keep_tmp:
            log(f"run: scratch files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"report: {out / 'report.md'}")
    ran = [r for r in results if not r.skipped]
    return 0 if not fatal and ran and all(r.passed for r in results) else 1


def write_outputs(out, scenario, args, command, started, finished, system, results, sampler, samples, t0, py,
                  plots_note, fatal) -> None:
    (out / "scenario.toml").write_text(scenario.source)
    report.write_metrics_csv(out / "metrics.csv", samples)
    report.write_json(out / "summary.json", report.summary(results))
    report.write_json(out / "timeline.json", report.timeline(results, samples, t0))
    if sampler is not None:
        for name, page in (("metrics-start.prom", sampler.first_page), ("metrics-end.prom", sampler.last_page)):
            if page:
                (out / name).write_text(page)
    if system.kind == "local" and (system.workdir / "tongdai.toml").exists():
        shutil.copyfile(system.workdir / "tongdai.toml", out / "tongdai.toml")
        log_text = system.log_tail(200)
        (out / "tongdai.log").write_text(log_text + "\n")
    plots, note = draw_plots(py, out) if samples else ([], "Plots not drawn: no metrics were sampled.")
    raw_files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    raw_files.append("report.md")
    text = report.render(scenario=scenario, command=command, started=started, finished=finished, system=system,
                         results=results, missing_series=sampler.missing() if sampler else [],
                         plots_note="\n\n".join(x for x in (plots_note, note) if x), plots_made=plots,
                         fatal=fatal, raw_files=sorted(set(raw_files)), scenario_path=str(args.scenario))
    (out / "report.md").write_text(text)
