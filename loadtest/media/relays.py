"""The relays under test: how to start each one pinned to one core, and describe it.

rtpengine (Debian `rtpengine-daemon`) runs in pure userspace mode:

  --table=-1            no kernel forwarding table: every packet is read and written by
                        rtpengine's own threads (the kernel module, `xt_RTPENGINE` from
                        `rtpengine-kernel-dkms`, is not installed and would not be used)
  --num-threads=1       one worker (poller) thread, like tongdai's `--workers 1`
  --config-file=none    ignore /etc/rtpengine/rtpengine.conf (which sets table=0)
  --interface=127.0.0.1 one loopback interface; --listen-ng on a free 127.0.0.1 port
  --port-min/--port-max a media port range that does not overlap tongdai's
  --delete-delay=0      free a call at `delete`, not 30 s later
  --timeout=600         no media timeout while thousands of calls are being set up
  --foreground --log-stderr --log-level=4: no daemonizing, warnings only, to a file
  recording (simplest mode): --recording-method=pcap --recording-dir=DIR, and
                        `record call: yes` in each offer (rtpgen --record): rtpengine
                        writes one pcap per call from its userspace threads.

tongdai runs `tongdai media --control 127.0.0.1:PORT --rtp-ports MIN-MAX --workers 1
--bind 127.0.0.1`, with `--spool DIR --recordings DIR` when recording; rtpgen starts each
call's recording through the control API.

Both are started under `taskset -c <relay core>`; so all their threads share one core.
With `--sched fifo` (the default as root) they, and rtpgen, also run under `chrt -f 10`
(SCHED_FIFO): on a shared machine a build landing on the relay's core would otherwise
take turns with the relay and show up as the relay's latency and loss. The kernel still
leaves other tasks 5% of each core (sched_rt_runtime_us), and both relays get the same
treatment.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import OwnedProcesses
from bench.systems import first_line

LOADTEST_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = LOADTEST_DIR.parent


@dataclass
class Relay:
    """One relay configuration (system x recording) the ladder runs against."""

    name: str  # "rtpengine" or "tongdai"
    record: bool
    workdir: Path
    core: int
    port_min: int
    port_max: int
    # Media ports one call takes (RTP + RTCP for each of the two legs).
    ports_per_call: int = 4
    proc: subprocess.Popen | None = None
    control_port: int = 0
    # Prefix putting the process in its scheduling class, e.g. ["chrt", "-f", "10"].
    sched: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}{' +rec' if self.record else ''}"

    @property
    def max_calls(self) -> int:
        return (self.port_max - self.port_min + 1) // self.ports_per_call

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def recordings(self) -> Path:
        return self.workdir / "recordings"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def rtpgen_args(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def start(self, owned: OwnedProcesses, control_port: int) -> subprocess.Popen:
        self.control_port = control_port
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.record:
            self.recordings.mkdir(parents=True, exist_ok=True)
        argv = [*self.sched, "taskset", "-c", str(self.core), *self.argv(), *self.extra_args]
        self.command = argv
        self.proc = owned.start(argv, log_path=self.log_path, cwd=self.workdir)
        return self.proc

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


class Rtpengine(Relay):
    binary = "rtpengine"

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--log-level=4",
            "--table=-1",
            "--num-threads=1",
            "--media-num-threads=1",
            "--interface=127.0.0.1",
            f"--listen-ng=127.0.0.1:{self.control_port}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            "--delete-delay=0",
            "--timeout=600",
        ]
        if self.record:
            argv += ["--recording-method=pcap", f"--recording-dir={self.recordings}"]
        return argv

    def rtpgen_args(self) -> list[str]:
        return ["--relay", "rtpengine", "--ng", f"127.0.0.1:{self.control_port}"]

    def version(self) -> str:
        # `rtpengine --version` prints the build time; the package version is what matters.
        pkg = first_line(["dpkg-query", "-W", "-f=${Version}", "rtpengine-daemon"])
        return f"rtpengine-daemon {pkg}"


class TongdaiMedia(Relay):
    binary: Path = REPO_DIR / "target" / "release" / "tongdai"

    def argv(self) -> list[str]:
        argv = [
            str(self.binary),
            "media",
            "--control",
            f"127.0.0.1:{self.control_port}",
            "--rtp-ports",
            f"{self.port_min}-{self.port_max}",
            "--workers",
            "1",
            "--bind",
            "127.0.0.1",
        ]
        if self.record:
            argv += ["--spool", str(self.workdir / "spool"), "--recordings", str(self.recordings)]
        return argv

    def rtpgen_args(self) -> list[str]:
        return ["--relay", "tongdai", "--control", f"http://127.0.0.1:{self.control_port}"]

    def version(self) -> str:
        git = first_line(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
        return f"tongdai {git} ({first_line([str(self.binary), '--version'])})"


def check_tongdai_media(binary: Path) -> str | None:
    """None when `tongdai media` exists in this build, else why not."""
    if not binary.exists():
        return f"{binary} does not exist (cargo build --release -p tongdai-node)"
    try:
        out = subprocess.run([str(binary), "media", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{binary} media --help failed: {e}"
    if out.returncode != 0 or "--control" not in out.stdout:
        return (f"{binary} has no `media` subcommand with --control (the media relay and its control "
                f"API are not in this build): {(out.stderr or out.stdout).strip().splitlines()[:1]}")
    return None


def dir_bytes(path: Path) -> int:
    total = 0
    if path.exists():
        for p in path.rglob("*"):
            try:
                if p.is_file():
                    total += p.stat().st_size
            except OSError:
                pass
    return total
