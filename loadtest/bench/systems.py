"""The systems under test: how to configure, start, probe and describe each one.

Both get the same users, listen on a fresh 127.0.0.1 UDP port, log at warning level
(nothing per request), and use as many workers as the machine has cores.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .procs import OwnedProcesses, tree
from .users import UserSet

LOADTEST_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = LOADTEST_DIR.parent


def first_line(argv: list[str]) -> str:
    """The first line a command prints (stdout, else stderr), or why it could not run."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


@dataclass
class SystemUnderTest:
    name: str
    workdir: Path
    users: UserSet
    workers: int
    proc: subprocess.Popen | None = None
    port: int = 0

    def version(self) -> str:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict | None:
        return None

    def prepare(self) -> None:
        """Write config and data files into workdir before start."""

    def start(self, owned: OwnedProcesses, port: int) -> subprocess.Popen:
        self.port = port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.proc = owned.start(self.argv(), log_path=self.log_path, cwd=self.workdir, env=self.env())
        return self.proc

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def registered_count(self) -> int | None:
        """Bindings the system holds, if it can tell us; None if unknown."""
        return None

    def worker_description(self) -> str:
        procs = tree(self.root_pid())
        threads = sum(p.num_threads for p in procs)
        return f"{len(procs)} process(es), {threads} thread(s)"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def kamailio_argv(cfg: Path, workdir: Path, *, port: int, children: int, shm_mb: int,
                  defines: dict[str, str]) -> list[str]:
    """Kamailio in the foreground, logging to stderr, with our configs' pre-processor
    defines (-A NAME=value; string values carry their quotes): BENCH_LISTEN and
    BENCH_CHILDREN from port and children, the rest from `defines`."""
    argv = ["kamailio", "-DD", "-E", "-f", str(cfg),
            "-A", f"BENCH_LISTEN=udp:127.0.0.1:{port}", "-A", f"BENCH_CHILDREN={children}"]
    for name, value in defines.items():
        argv += ["-A", f"{name}={value}"]
    return argv + ["-w", str(workdir), "-P", str(workdir / "kamailio.pid"), "-m", str(shm_mb), "-M", "16"]


def kamailio_statistic(ctl_socket: Path, name: str) -> int | None:
    """One statistic of a running Kamailio, read with kamcmd over its ctl socket."""
    try:
        out = subprocess.run(["kamcmd", "-s", f"unix:{ctl_socket}", "stats.get_statistics", name],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.stdout.splitlines():
        if name in line and "=" in line:
            return int(line.split("=", 1)[1].strip())
    return None


@dataclass
class Kamailio(SystemUnderTest):
    cfg: Path = LOADTEST_DIR / "kamailio" / "kamailio.cfg"

    @property
    def ctl_socket(self) -> Path:
        return self.workdir / "ctl.sock"

    def version(self) -> str:
        return first_line(["kamailio", "-v"]).replace("version: ", "")

    def prepare(self) -> None:
        self.users.write_kamailio_htable(self.workdir / "db")

    def argv(self) -> list[str]:
        return kamailio_argv(self.cfg, self.workdir, port=self.port, children=self.workers, shm_mb=256, defines={
            "BENCH_DB_URL": f'"text://{self.workdir / "db"}"',
            "BENCH_REALM": f'"{self.users.realm}"',
            "BENCH_CTL": f'"unix:{self.ctl_socket}"',
        })

    def registered_count(self) -> int | None:
        return kamailio_statistic(self.ctl_socket, "registered_users")

    def worker_description(self) -> str:
        procs = tree(self.root_pid())
        return (
            f"children={self.workers} UDP receiver processes; "
            f"{len(procs)} processes in total (main, timers, ctl)"
        )


@dataclass
class Tongdai(SystemUnderTest):
    """`tongdai up --replicas N`: N control-plane replicas (each its own redb log,
    fsync per write) and the SIP node, in one process. A REGISTER is answered after
    its binding is committed by a majority of the replicas."""

    binary: Path = REPO_DIR / "target" / "release" / "tongdai"
    algorithms: tuple[str, ...] = ("MD5", "SHA-256")
    http_port: int = 0
    replicas: int = 3
    quic_port: int = 0
    api_port: int = 0

    def version(self) -> str:
        return first_line([str(self.binary), "--version"])

    def prepare(self) -> None:
        self.quic_port = consecutive_free_ports("udp", self.replicas)
        self.api_port = consecutive_free_ports("tcp", self.replicas)
        (self.workdir / "tongdai.toml").write_text(
            "# generated by loadtest/bench for one benchmark run\n"
            + tongdai_base_toml(self.workdir, sip_port=self.port, http_port=self.http_port,
                                quic_port=self.quic_port, api_port=self.api_port)
            + "[registrar]\n"
            f'realm = "{self.users.realm}"\n'
            # SIPp 3.6 answers only the first challenge and only MD5: MD5 must come first.
            "algorithms = [" + ", ".join(f'"{a}"' for a in self.algorithms) + "]\n"
            + self.users.tongdai_demo_toml()
        )

    def registered_count(self) -> int | None:
        """Contact bindings, from the tongdai_registrations_active gauge on /metrics."""
        if not self.http_port:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
                text = r.read().decode(errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("tongdai_registrations_active"):
                return int(float(line.split()[-1]))
        return None

    def argv(self) -> list[str]:
        return [str(self.binary), "up", "--replicas", str(self.replicas),
                "--config", str(self.workdir / "tongdai.toml")]

    def metrics_text(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
                return r.read().decode(errors="replace")
        except OSError:
            return None

    def commit_figures(self) -> dict:
        """Commit latency quantiles (node-measured, per REGISTER) and the batching
        factor (commands per Raft log entry) from /metrics."""
        text = self.metrics_text() or ""
        out: dict = {}
        for line in text.splitlines():
            if line.startswith("tongdai_registration_commit_seconds{quantile="):
                q = line.split('"')[1]
                out[f"commit_p{float(q) * 100:g}_ms"] = float(line.split()[-1]) * 1000
            elif line.startswith("tongdai_control_plane_log_entries_proposed_total"):
                out["log_entries"] = float(line.split()[-1])
            elif line.startswith("tongdai_control_plane_commands_proposed_total"):
                out["commands"] = float(line.split()[-1])
        if out.get("log_entries"):
            out["commands_per_entry"] = out.get("commands", 0) / out["log_entries"]
        return out

    def env(self) -> dict | None:
        env = dict(os.environ)
        # Warnings only, as Kamailio's debug=1: nothing logged per request.
        env["RUST_LOG"] = "warn"
        return env

    def worker_description(self) -> str:
        procs = tree(self.root_pid())
        threads = sum(p.num_threads for p in procs)
        return f"1 process, {threads} threads (tokio runtime and helpers)"


def tongdai_base_toml(workdir: Path, *, sip_port: int, http_port: int, quic_port: int, api_port: int) -> str:
    """The config every benchmark gives `tongdai up`: its listeners on 127.0.0.1, data and
    certificates under workdir, warnings only (nothing logged per request)."""
    return (
        "[sip]\n"
        f'listen_udp = "127.0.0.1:{sip_port}"\n'
        f'listen_tcp = "127.0.0.1:{sip_port}"\n'
        "[http]\n"
        f'listen = "127.0.0.1:{http_port}"\n'
        "[replica]\n"
        f'listen = "127.0.0.1:{quic_port}"\n'
        f'api_listen = "127.0.0.1:{api_port}"\n'
        f'data_dir = "{workdir / "data"}"\n'
        "[control_plane]\n"
        f'certs_dir = "{workdir / "certs"}"\n'
        "[log]\n"
        'level = "warn"\n'
    )


def consecutive_free_ports(kind: str, count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 for UDP or TCP."""
    import random
    import socket

    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    for _ in range(200):
        base = random.randint(20_000, 60_000)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, sock_type)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free {kind} ports")


def check_tongdai_binary(binary: Path) -> str | None:
    """Why the tongdai binary cannot be benchmarked, or None if it can."""
    if not binary.exists():
        return (
            f"tongdai binary not found at {binary}. Build it with loadtest/install.sh "
            "(cargo build --release -p tongdai-node), or run with --systems kamailio."
        )
    try:
        out = subprocess.run([str(binary), "up", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not run {binary} up --help: {e}"
    if out.returncode != 0 or "--replicas" not in (out.stdout + out.stderr):
        return (
            f"{binary} has no working `up --replicas N --config FILE` subcommand "
            f"(exit {out.returncode}): {(out.stderr or out.stdout).strip()[:300]}"
        )
    return None
