"""The system under load: a local `tongdai up` the runner starts, or a running target.

Both are reached the same way once up: SIP on a 127.0.0.1 UDP port, the node's
Prometheus page over HTTP, the control plane's admin API with the operator token. Both
get the same call path provisioned through the admin API, on the scenario's tenant:

    SIPp UAC (a carrier, one UDP flow) --trunk loadtest-in--> tongdai (B2BUA, media
    anchored on its relay) --trunk loadtest-out--> SIPp UAS (the far end)

the UAC dials DIALLED, a number routed to an external number, which goes out of the
tenant's outbound trunk with its caller ID. Against a target the runner remembers what
it created or changed and puts it back at the end (trunks and numbers it created are
deleted, the tenant's settings restored); a local cluster is simply stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.procs import OwnedProcesses, free_port, probe_sip_udp, tree, tree_cpu_seconds
from bench.systems import REPO_DIR, consecutive_free_ports, first_line, tongdai_base_toml

from .scenario import Scenario, Users

CALLER = "0912345678"  # the calling number the carrier presents
DIALLED = "18001234"  # the toll-free number called
EXTERNAL = "0912000111"  # where it routes: an external number through the outbound trunk
CALLER_ID = "02873001234"  # the tenant's geographic number (its outbound caller ID)
TRUNK_IN, TRUNK_OUT = "loadtest-in", "loadtest-out"
QUEUE = "loadtest-peak"  # the queue_peak phase's queue
QUEUE_DIALLED = "18005555"  # the toll-free number routed to it

# Without a [users] table a local cluster still needs a tenant to carry the calls.
DEFAULT_USERS = Users(tenant="bench", first_extension=100_000, count=10, password_prefix="pw")


class ClusterError(RuntimeError):
    pass


class System:
    """What the phases need from the system under load."""

    sip_port: int
    metrics_url: str
    api_base: str
    users: Users
    kind: str  # "local" or "target"

    def __init__(self) -> None:
        self.undo: list[tuple[str, str, dict | None]] = []  # admin API calls that revert ours
        self.provisioned: list[str] = []  # what was done, for the report

    # -- admin API --------------------------------------------------------------------
    def token(self) -> str:
        raise NotImplementedError

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(
            f"{self.api_base}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _must(self, method: str, path: str, body: dict | None = None) -> str:
        code, text = self.api(method, path, body)
        if not 200 <= code < 300:
            raise ClusterError(f"admin API {method} {path} -> {code} {text.strip()[:300]}")
        return text

    def _ensure(self, collection: str, key: str, body: dict) -> None:
        """Create the object, or (it exists) overwrite it, remembering how to undo either."""
        code, text = self.api("POST", collection, body)
        if code in (200, 201):
            self.undo.append(("DELETE", f"{collection}/{key}", None))
            self.provisioned.append(f"created {collection}/{key}")
            return
        if code != 409:
            raise ClusterError(f"admin API POST {collection} -> {code} {text.strip()[:300]}")
        before = json.loads(self._must("GET", f"{collection}/{key}"))
        self._must("PUT", f"{collection}/{key}", body)
        self.undo.append(("PUT", f"{collection}/{key}", before))
        self.provisioned.append(f"overwrote {collection}/{key} (restored at the end)")

    def provision(self, uac_port: int, uas_port: int, raise_quotas: bool) -> None:
        t = f"/v1/tenants/{self.users.tenant}"
        code, text = self.api("GET", t)
        if code != 200:
            raise ClusterError(f"tenant {self.users.tenant!r} (users.tenant): GET {t} -> {code} {text.strip()[:200]}")
        self._ensure(f"{t}/trunks", TRUNK_IN, {
            "id": TRUNK_IN, "address": "127.0.0.1:9",
            "trusted_sources": [f"127.0.0.1:{uac_port}"], "max_concurrent_calls": 100_000,
        })
        self._ensure(f"{t}/trunks", TRUNK_OUT, {
            "id": TRUNK_OUT, "address": f"127.0.0.1:{uas_port}", "max_concurrent_calls": 100_000,
        })
        self._ensure(f"{t}/numbers", CALLER_ID, {
            "digits": CALLER_ID, "destination": {"type": "extension", "id": str(self.users.first_extension)},
        })
        self._ensure(f"{t}/numbers", DIALLED, {
            "digits": DIALLED, "destination": {"type": "external", "number": EXTERNAL},
        })
        before = json.loads(self._must("GET", t))
        tenant = json.loads(json.dumps(before))
        tenant["calls"]["outbound_trunk"] = TRUNK_OUT
        tenant["calls"]["caller_id"] = CALLER_ID
        tenant["calls"]["recording"] = "never"
        if raise_quotas:
            # The run measures capacity, not the (correct) 503s of a tenant over its limits.
            tenant["quotas"]["max_concurrent_calls"] = 1_000_000
            tenant["quotas"]["max_call_attempts_per_sec"] = 100_000
        self._must("PUT", t, tenant)
        # Tenant first in the undo list's reverse order: it names the trunk deleted after it.
        self.undo.append(("PUT", t, before))
        self.provisioned.append(
            f"tenant {self.users.tenant}: calls.outbound_trunk = {TRUNK_OUT}, calls.caller_id = {CALLER_ID}, "
            f"calls.recording = never" + (", quotas raised to 1,000,000 calls / 100,000 attempts/s"
                                         if raise_quotas else ", quotas as they were"))
        self.quotas = tenant["quotas"]

    def provision_queue(self, agents: int) -> None:
        """The queue_peak path: `agents` agents (the users' last extensions, so a register
        storm of fewer users leaves them alone; logged in and available), the queue they serve (longest idle first, no wrap-up, announcements
        off: the load is the ACD's), and QUEUE_DIALLED routed to it. A second call
        re-creates the queue with the new members."""
        u = self.users
        t = f"/v1/tenants/{u.tenant}"
        first = u.first_extension + u.count - agents
        members = [str(first + i) for i in range(agents)]
        for ext in members:
            self._ensure(f"{t}/agents", ext, {"extension": ext, "state": "available"})
        self._ensure(f"{t}/queues", QUEUE, {
            "id": QUEUE, "name": "Load test peak", "strategy": "longest_idle", "max_wait_secs": 3600,
            "max_len": 10_000, "members": [{"extension": e} for e in members], "ring_secs": 15,
            "wrap_up_secs": 0, "service_level_secs": 20, "announce": False,
        })
        self._ensure(f"{t}/numbers", QUEUE_DIALLED, {
            "digits": QUEUE_DIALLED, "kind": "toll_free_1800", "destination": {"type": "queue", "id": QUEUE},
        })

    def queue_live(self) -> dict | None:
        """The queue now (`GET .../live`), or None when the API does not answer."""
        try:
            code, text = self.api("GET", f"/v1/tenants/{self.users.tenant}/queues/{QUEUE}/live")
        except OSError:
            return None
        return json.loads(text) if code == 200 else None

    def unprovision(self) -> list[str]:
        """Reverts what provision() did (newest first); returns the failures."""
        errors = []
        while self.undo:
            method, path, body = self.undo.pop()
            try:
                code, text = self.api(method, path, body)
            except OSError as e:
                errors.append(f"{method} {path}: {e}")
                continue
            if not 200 <= code < 300:
                errors.append(f"{method} {path} -> {code} {text.strip()[:200]}")
        return errors

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, owned: OwnedProcesses) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout_s: float) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        return True

    def stop(self, owned: OwnedProcesses) -> None:
        pass

    def cpu_seconds(self) -> float | None:
        """CPU the system used so far (local: its process tree); None when not ours to measure."""
        return None

    def version(self) -> str:
        raise NotImplementedError

    def describe(self) -> list[str]:
        raise NotImplementedError

    def log_tail(self, lines: int = 20) -> str:
        return ""


class LocalCluster(System):
    """`tongdai up --replicas N --config FILE`: control plane, SIP node and media relay in
    one process, every listener on 127.0.0.1, data under the run's directory."""

    kind = "local"

    def __init__(self, scenario: Scenario, workdir: Path, binary: Path):
        super().__init__()
        self.scenario = scenario
        self.cfg = scenario.cluster
        self.users = scenario.users or DEFAULT_USERS
        self.workdir = workdir
        self.binary = binary
        self.proc = None

    def token(self) -> str:
        return (self.workdir / "data" / "operator.token").read_text().strip()

    def config_text(self) -> str:
        low, high = self.cfg.rtp_ports
        u = self.users
        return (
            "# generated by loadtest/run for one load-test run\n"
            + tongdai_base_toml(self.workdir, sip_port=self.sip_port, http_port=self.http_port,
                                quic_port=self.quic_port, api_port=self.api_port)
            + "[media]\n"
            f'rtp_ports = "{low}-{high}"\n'
            'bind = "127.0.0.1"\n'
            f"rtp_timeout_secs = {self.cfg.rtp_timeout_secs}\n"
            "[registrar]\n"
            f'realm = "{u.tenant}"\n'
            # SIPp 3.6 answers only the first challenge and only MD5 (loadtest/README.md).
            'algorithms = ["MD5", "SHA-256"]\n'
            "[demo]\n"
            f'realm = "{u.tenant}"\n'
            f"first_extension = {u.first_extension}\n"
            f"count = {u.count}\n"
            f'password_prefix = "{u.password_prefix}"\n'
        )

    def start(self, owned: OwnedProcesses) -> None:
        self.sip_port, self.http_port = free_port(), free_port()
        self.quic_port = consecutive_free_ports("udp", self.cfg.replicas)
        self.api_port = consecutive_free_ports("tcp", self.cfg.replicas)
        self.metrics_url = f"http://127.0.0.1:{self.http_port}/metrics"
        self.api_base = f"http://127.0.0.1:{self.api_port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "tongdai.toml"
        cfg.write_text(self.config_text())
        self.argv = [str(self.binary), "up", "--replicas", str(self.cfg.replicas), "--config", str(cfg)]
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = owned.start(self.argv, log_path=self.workdir / "tongdai.log", cwd=self.workdir, env=env)

    def wait_ready(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        up = probe_sip_udp(self.sip_port, timeout_s, alive=self.alive)
        if up is None:
            raise ClusterError(f"tongdai did not answer SIP OPTIONS on 127.0.0.1:{self.sip_port} within "
                               f"{timeout_s:.0f} s (exit {self.proc.poll()}). Log:\n{self.log_tail()}")
        token = self.workdir / "data" / "operator.token"
        while time.monotonic() < end and self.alive():
            if token.exists():
                try:
                    if self.api("GET", f"/v1/tenants/{self.users.tenant}")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise ClusterError(f"tongdai admin API on {self.api_base} not ready within {timeout_s:.0f} s (or the "
                           f"demo tenant {self.users.tenant!r} missing). Log:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, owned: OwnedProcesses) -> None:
        if self.proc is not None:
            owned.stop(self.proc, grace_s=20)

    def cpu_seconds(self) -> float | None:
        return tree_cpu_seconds(self.proc.pid) if self.alive() else None

    def version(self) -> str:
        git = first_line(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"])
        return f"tongdai {git} ({first_line([str(self.binary), '--version'])})"

    def describe(self) -> list[str]:
        threads = sum(s.num_threads for s in tree(self.proc.pid)) if self.alive() else "?"
        return [
            f"local cluster: `{shlex.join(self.argv)}` (one process, {threads} threads), "
            f"{self.cfg.replicas} control-plane replica(s)",
            f"SIP udp/tcp 127.0.0.1:{self.sip_port}, metrics {self.metrics_url}, admin API {self.api_base}",
            f"media: rtp_ports {self.cfg.rtp_ports[0]}-{self.cfg.rtp_ports[1]}, bind 127.0.0.1, "
            f"rtp_timeout_secs {self.cfg.rtp_timeout_secs}; registrar realm {self.users.tenant}, MD5 first",
            f"users: [demo] tenant {self.users.tenant}, extensions {self.users.first_extension}.."
            f"{self.users.first_extension + self.users.count - 1}, password {self.users.password_prefix}<ext>",
        ]

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.workdir / "tongdai.log").read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return "\n".join(text)


class TargetCluster(System):
    """A cluster someone else runs: addresses and token from [target]."""

    kind = "target"

    def __init__(self, scenario: Scenario):
        super().__init__()
        self.t = scenario.target
        self.users = scenario.users
        self.sip_port = self.t.sip[1]
        self.sip_host = self.t.sip[0]
        self.metrics_url = self.t.metrics
        self.api_base = self.t.admin_api

    def token(self) -> str:
        if self.t.token is not None:
            return self.t.token
        try:
            return Path(self.t.token_file).read_text().strip()
        except OSError as e:
            raise ClusterError(f"target.token_file: cannot read {self.t.token_file}: {e.strerror or e}") from None

    def start(self, owned: OwnedProcesses) -> None:
        pass

    def wait_ready(self, timeout_s: float) -> None:
        if self.sip_host != "127.0.0.1":
            raise ClusterError(f"target.sip: the runner's SIPp sends from 127.0.0.1 and needs the target there "
                               f"too (got {self.sip_host})")
        if probe_sip_udp(self.sip_port, timeout_s) is None:
            raise ClusterError(f"target.sip: no SIP answer to OPTIONS from 127.0.0.1:{self.sip_port} within "
                               f"{timeout_s:.0f} s")
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
                r.read()
        except OSError as e:
            raise ClusterError(f"target.metrics: {self.metrics_url} unreachable: {e}") from None
        try:
            code, text = self.api("GET", f"/v1/tenants/{self.users.tenant}")
        except OSError as e:
            raise ClusterError(f"target.admin_api: {self.api_base} unreachable: {e}") from None
        if code == 401:
            raise ClusterError("target.token: the admin API refused the token (401)")
        if code != 200:
            raise ClusterError(f"users.tenant: GET /v1/tenants/{self.users.tenant} -> {code} {text.strip()[:200]}")
        u = self.users
        for ext in {u.first_extension, u.first_extension + u.count - 1}:
            code, _ = self.api("GET", f"/v1/tenants/{u.tenant}/extensions/{ext}")
            if code != 200:
                raise ClusterError(f"users: extension {ext} of tenant {u.tenant} not found on the target ({code}); "
                                   "the users must exist there (e.g. started with the same [demo] section)")

    def version(self) -> str:
        return f"target at 127.0.0.1:{self.sip_port} (version not queried)"

    def describe(self) -> list[str]:
        return [
            f"target cluster: SIP 127.0.0.1:{self.sip_port}, metrics {self.metrics_url}, admin API {self.api_base}",
            f"users: tenant {self.users.tenant}, extensions {self.users.first_extension}.."
            f"{self.users.first_extension + self.users.count - 1} (password {self.users.password_prefix}<ext>, "
            "realm = tenant id, MD5 challenge first: SIPp 3.6 answers only that)",
        ]
