"""The two call paths under test, each started fresh per configuration:

- tongdai: `tongdai up` (control plane + SIP node + media relay in one process), a
  carrier call path provisioned through its admin API: trunk `in` trusting the SIPp
  UAC's exact source address, the toll-free number dialled pointing at an external
  number, the tenant's outbound trunk `out` toward the SIPp UAS. Every call is a B2BUA
  call with its media anchored on the node's relay.
- kamailio: Kamailio (`kamailio/calls.cfg`: tm, rr, dialog, rtpengine module) in front
  of an rtpengine daemon in userspace mode (`--table=-1`), routing the same number to
  the same UAS. Every call's media is anchored on rtpengine.

Both listen on a fresh 127.0.0.1 port, log warnings only, and use as many SIP workers
and media threads as the machine has cores (their defaults). Nothing is pinned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import OwnedProcesses, free_port, tree
from bench.systems import (LOADTEST_DIR, REPO_DIR, consecutive_free_ports, first_line, kamailio_argv,
                           kamailio_statistic, tongdai_base_toml)
from bench.users import UserSet
from media.relays import Rtpengine

TENANT = "bench"  # the demo tenant's id is its realm
CALLER = "0912345678"  # the calling number the carrier presents
DIALLED = "18001234"  # the toll-free number called
TARGET = "0912000111"  # where it routes: an external number through the outbound trunk
CALLER_ID = "02873001234"  # the tenant's geographic number (its outbound caller ID)


@dataclass
class CallSystem:
    """One call path: started with a config, probed, provisioned, stopped."""

    name: str
    workdir: Path
    uac_port: int  # the SIPp UAC's fixed source port (tongdai trusts it)
    uas_port: int  # the SIPp UAS's port (the far end)
    record: bool = False
    port: int = 0
    procs: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}{' +rec' if self.record else ''}"

    def start(self, owned: OwnedProcesses) -> None:
        raise NotImplementedError

    def provision(self) -> None:
        """After the SIP port answers: whatever makes the dialled number route."""

    def version(self) -> str:
        raise NotImplementedError

    def root_pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def all_pids(self) -> list[int]:
        """Every live process of the system (Kamailio forks its workers)."""
        return [st.pid for root in self.root_pids() for st in tree(root)]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def media_counters(self) -> dict:
        """Relay counters: packets relayed and packets the relay dropped or failed to send."""
        return {}

    def describe(self) -> str:
        parts = []
        for p in self.procs:
            t = tree(p.pid)
            parts.append(f"{len(t)} process(es), {sum(s.num_threads for s in t)} thread(s)")
        return "; ".join(parts)

    def logs(self) -> list[Path]:
        return []

    def recorded_bytes(self) -> int:
        return 0

    def clear_recordings(self) -> None:
        """Deletes what was recorded so far (each level's recordings are measured, then dropped)."""

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for path in self.logs():
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                text = ["(no log)"]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self, owned: OwnedProcesses) -> None:
        for p in reversed(self.procs):
            owned.stop(p)
        self.procs = []


def _metrics(url: str) -> dict[str, float]:
    """A Prometheus text page as {series: value} (comments skipped); {} if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def _sum(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k == prefix or k.startswith(prefix + "{"))


@dataclass
class TongdaiCalls(CallSystem):
    binary: Path = REPO_DIR / "target" / "release" / "tongdai"
    # The systems never run at the same time, so both relays get the same wide range, below
    # Linux's ephemeral ports (32768-60999, where SIPp's and the runner's sockets live): 7,691
    # calls at 4 ports each (RTP + RTCP on both legs).
    rtp_ports: str = "2000-32767"
    rtp_timeout_secs: int = 0
    replicas: int = 1
    http_port: int = 0
    api_port: int = 0

    def version(self) -> str:
        git = first_line(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
        return f"tongdai {git} ({first_line([str(self.binary), '--version'])})"

    def config_text(self) -> str:
        quic = consecutive_free_ports("udp", self.replicas)
        self.api_port = consecutive_free_ports("tcp", self.replicas)
        media = (
            "[media]\n"
            f'rtp_ports = "{self.rtp_ports}"\n'
            'bind = "127.0.0.1"\n'
            f"rtp_timeout_secs = {self.rtp_timeout_secs}\n"
        )
        if self.record:
            media += (f'spool_dir = "{self.workdir / "spool"}"\n'
                      f'recordings_dir = "{self.workdir / "recordings"}"\n')
        return (
            "# generated by loadtest/calls for one benchmark configuration\n"
            + tongdai_base_toml(self.workdir, sip_port=self.port, http_port=self.http_port, quic_port=quic,
                                api_port=self.api_port)
            + media
            + UserSet(1000, 1, "pw", TENANT).tongdai_demo_toml()
        )

    def start(self, owned: OwnedProcesses) -> None:
        self.port = free_port()
        self.http_port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "tongdai.toml"
        cfg.write_text(self.config_text())
        env = dict(os.environ, RUST_LOG="warn")
        argv = [str(self.binary), "up", "--replicas", str(self.replicas), "--config", str(cfg)]
        self.command = argv
        self.procs = [owned.start(argv, log_path=self.workdir / "tongdai.log", cwd=self.workdir, env=env)]

    def logs(self) -> list[Path]:
        return [self.workdir / "tongdai.log"]

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        token = (self.workdir / "data" / "operator.token").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _must(self, method: str, path: str, body: dict | None = None) -> str:
        code, text = self.api(method, path, body)
        if not 200 <= code < 300:
            raise RuntimeError(f"tongdai admin API: {method} {path} -> {code} {text}")
        return text

    def provision(self) -> None:
        # The operator token appears once the replica is up; the SIP port answering
        # does not guarantee the API does yet.
        token = self.workdir / "data" / "operator.token"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if token.exists():
                try:
                    if self.api("GET", f"/v1/tenants/{TENANT}")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"tongdai admin API on 127.0.0.1:{self.api_port} not ready within 30 s "
                               f"(or demo tenant {TENANT!r} missing)")
        self._must("POST", f"/v1/tenants/{TENANT}/trunks", {
            "id": "in", "address": "127.0.0.1:9",
            "trusted_sources": [f"127.0.0.1:{self.uac_port}"], "max_concurrent_calls": 100_000,
        })
        self._must("POST", f"/v1/tenants/{TENANT}/trunks", {
            "id": "out", "address": f"127.0.0.1:{self.uas_port}", "max_concurrent_calls": 100_000,
        })
        self._must("POST", f"/v1/tenants/{TENANT}/numbers", {
            "digits": CALLER_ID, "destination": {"type": "extension", "id": "1000"},
        })
        self._must("POST", f"/v1/tenants/{TENANT}/numbers", {
            "digits": DIALLED, "destination": {"type": "external", "number": TARGET},
        })
        tenant = json.loads(self._must("GET", f"/v1/tenants/{TENANT}"))
        # Quotas far above what one machine can offer: the benchmark measures capacity,
        # not the (correct) 503s of a tenant over its limits.
        tenant["quotas"]["max_concurrent_calls"] = 1_000_000
        tenant["quotas"]["max_call_attempts_per_sec"] = 100_000
        tenant["calls"]["outbound_trunk"] = "out"
        tenant["calls"]["caller_id"] = CALLER_ID
        tenant["calls"]["recording"] = "always" if self.record else "never"
        self._must("PUT", f"/v1/tenants/{TENANT}", tenant)
        self.tenant_settings = tenant

    def media_counters(self) -> dict:
        m = _metrics(f"http://127.0.0.1:{self.http_port}/metrics")
        return {
            "relayed": _sum(m, "tongdai_media_relayed_packets_total"),
            "dropped": _sum(m, "tongdai_media_dropped_packets_total"),
            "sessions": _sum(m, "tongdai_media_sessions"),
        }

    def recorded_bytes(self) -> int:
        from media.relays import dir_bytes

        return dir_bytes(self.workdir / "recordings") + dir_bytes(self.workdir / "spool")

    def clear_recordings(self) -> None:
        # Finished recordings only (files; the directories stay for tongdai to write into);
        # the spool may still hold files being written.
        for p in (self.workdir / "recordings").rglob("*"):
            if p.is_file():
                p.unlink(missing_ok=True)


class _CallsRtpengine(Rtpengine):
    """media/relays.py's rtpengine (userspace, --table=-1, loopback, its flags explained
    there), with as many worker threads as cores (its default; the media benchmark pins
    it to one) and its Prometheus /metrics on --listen-http."""

    http_port: int = 0

    def argv(self) -> list[str]:
        argv = [a for a in super().argv() if not a.startswith(("--num-threads", "--media-num-threads"))]
        return argv + [f"--listen-http=127.0.0.1:{self.http_port}"]

    def start(self, owned: OwnedProcesses, control_port: int) -> subprocess.Popen:
        # Not pinned: everything shares the machine, as tongdai does.
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.record:
            self.recordings.mkdir(parents=True, exist_ok=True)
        self.control_port = control_port
        self.command = [*self.argv(), *self.extra_args]
        self.proc = owned.start(self.command, log_path=self.log_path, cwd=self.workdir)
        return self.proc


@dataclass
class KamailioRtpengine(CallSystem):
    cfg: Path = LOADTEST_DIR / "kamailio" / "calls.cfg"
    children: int = os.cpu_count() or 1
    rtpengine_ports: tuple[int, int] = (2000, 32767)  # as tongdai's (see TongdaiCalls.rtp_ports)

    def version(self) -> str:
        kam = first_line(["kamailio", "-v"]).replace("version: ", "")
        pkg = first_line(["dpkg-query", "-W", "-f=${Version}", "rtpengine-daemon"])
        return f"{kam} + rtpengine-daemon {pkg}"

    def start(self, owned: OwnedProcesses) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rtpengine = _CallsRtpengine(name="rtpengine", record=self.record, workdir=self.workdir,
                                         core=0, port_min=self.rtpengine_ports[0],
                                         port_max=self.rtpengine_ports[1])
        self.rtpengine.http_port = free_port()
        ng = free_port()
        rtpe = self.rtpengine.start(owned, ng)
        self.port = free_port()
        defines = {
            "BENCH_CTL": f'"unix:{self.workdir / "ctl.sock"}"',
            "BENCH_RTPENGINE": f'"udp:127.0.0.1:{ng}"',
            "BENCH_UAS": f'"sip:127.0.0.1:{self.uas_port}"',
            "BENCH_NUMBER": f'"{DIALLED}"',
            "BENCH_TARGET": f'"{TARGET}"',
        }
        if self.record:
            defines["BENCH_RECORD"] = "1"
        argv = kamailio_argv(self.cfg, self.workdir, port=self.port, children=self.children, shm_mb=512,
                             defines=defines)
        self.command = argv
        self.rtpengine_command = self.rtpengine.command
        kam = owned.start(argv, log_path=self.workdir / "kamailio.log", cwd=self.workdir)
        self.procs = [rtpe, kam]

    def logs(self) -> list[Path]:
        return [self.workdir / "kamailio.log", self.rtpengine.log_path]

    def describe(self) -> str:
        kam, rtpe = self.procs
        k, r = tree(kam.pid), tree(rtpe.pid)
        return (f"kamailio: children={self.children} UDP workers, {len(k)} processes in total; "
                f"rtpengine: {sum(s.num_threads for s in r)} threads")

    def media_counters(self) -> dict:
        m = _metrics(f"http://127.0.0.1:{self.rtpengine.http_port}/metrics")
        return {
            "relayed": m.get('rtpengine_packets_total{type="userspace"}', 0.0),
            "dropped": m.get('rtpengine_packet_errors_total{type="userspace"}', 0.0),
            "sessions": m.get('rtpengine_sessions{type="own"}', 0.0),
        }

    def active_dialogs(self) -> int | None:
        return kamailio_statistic(self.workdir / "ctl.sock", "active_dialogs")

    def recorded_bytes(self) -> int:
        from media.relays import dir_bytes

        return dir_bytes(self.rtpengine.recordings)

    def clear_recordings(self) -> None:
        for p in self.rtpengine.recordings.glob("*"):
            if p.is_file():
                p.unlink(missing_ok=True)
            else:
                shutil.rmtree(p, ignore_errors=True)
