"""Sampling the node's Prometheus page once a second while the load runs.

Each sample keeps the series the report and plots use, summed over their labels
(tongdai_calls_active over tenants, relayed packets over relay workers, ...), plus the
system's CPU when it is a local process. Counters become rates between samples in the
plots; a series the node does not export stays empty and the report says so. The full
page is kept at the start and at the end of the run (metrics-start.prom, metrics-end.prom).
"""

from __future__ import annotations

import threading
import time
import urllib.request

from bench.procs import machine_busy_seconds

# column -> (metric family, label filter or None): summed over every series matching.
SERIES = {
    "calls_active": ("tongdai_calls_active", None),
    "call_attempts_total": ("tongdai_call_attempts_total", None),
    "calls_answered_total": ("tongdai_calls_answered_total", None),
    "calls_rejected_total": ("tongdai_calls_rejected_total", None),
    "registrations_active": ("tongdai_registrations_active", None),
    "register_requests_total": ("tongdai_sip_requests_total", ('method', "REGISTER")),
    "invite_requests_total": ("tongdai_sip_requests_total", ('method', "INVITE")),
    "responses_5xx_total": ("tongdai_sip_responses_total", ('class', "5xx")),
    "media_sessions": ("tongdai_media_sessions", None),
    "media_port_pairs_in_use": ("tongdai_media_port_pairs_in_use", None),
    "media_relayed_packets_total": ("tongdai_media_relayed_packets_total", None),
    "media_dropped_packets_total": ("tongdai_media_dropped_packets_total", None),
}
COLUMNS = ["t", "ok", *SERIES, "system_cpu_s", "machine_busy_s"]


def parse_labels(text: str) -> dict[str, str]:
    """`a="x",b="y"` -> {a: x, b: y} (label values in our metrics carry no quotes or commas)."""
    out = {}
    for part in text.split(","):
        if "=" in part:
            k, _, v = part.partition("=")
            out[k.strip()] = v.strip().strip('"')
    return out


def parse(text: str) -> dict[str, list[tuple[dict, float]]]:
    """A Prometheus text page as {family: [(labels, value)]}; comments and junk skipped."""
    out: dict[str, list[tuple[dict, float]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if not series:
            continue
        try:
            v = float(value)
        except ValueError:
            continue
        if "{" in series:
            name, _, rest = series.partition("{")
            labels = parse_labels(rest.rstrip("}"))
        else:
            name, labels = series, {}
        out.setdefault(name, []).append((labels, v))
    return out


def pick(page: dict, family: str, label: tuple[str, str] | None) -> float | None:
    """Sum of a family's series (matching `label` if given); None if the family is absent."""
    if family not in page:
        return None
    return sum(v for labels, v in page[family] if label is None or labels.get(label[0]) == label[1])


def fetch(url: str, timeout: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode(errors="replace")
    except OSError:
        return None


class Sampler:
    """A thread scraping `url` every `interval` seconds until stop()."""

    def __init__(self, url: str, cpu_seconds=lambda: None, interval: float = 1.0):
        self.url = url
        self.cpu_seconds = cpu_seconds
        self.interval = interval
        self.samples: list[dict] = []
        self.seen: set[str] = set()  # columns the node exported at least once
        self.first_page: str | None = None
        self.last_page: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample_once(self) -> dict:
        t = time.time()
        text = fetch(self.url)
        row = {"t": t, "ok": text is not None}
        page = parse(text) if text is not None else {}
        for col, (family, label) in SERIES.items():
            v = pick(page, family, label)
            if v is not None:
                self.seen.add(col)
            # A series appears on the page with its first value (a counter's first increment,
            # a tenant's first call): absent from a page that was read means 0 so far.
            row[col] = v if v is not None else (0.0 if text is not None else None)
        try:
            row["system_cpu_s"] = self.cpu_seconds()
        except (OSError, ValueError):
            row["system_cpu_s"] = None
        row["machine_busy_s"] = machine_busy_seconds()
        if text is not None:
            if self.first_page is None:
                self.first_page = text
            self.last_page = text
        return row

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.samples.append(self.sample_once())
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def latest(self) -> dict | None:
        return self.samples[-1] if self.samples else None

    def wait_for_sample_after(self, t: float, timeout_s: float = 3.0) -> None:
        """Until the thread has sampled after epoch t (so a phase's last effects are in)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not (self.samples and self.samples[-1]["t"] > t):
            time.sleep(0.05)

    def missing(self) -> list[str]:
        """Series the node never exported during the run (their columns read 0)."""
        return [f"{SERIES[c][0]}" + (f'{{{SERIES[c][1][0]}="{SERIES[c][1][1]}"}}' if SERIES[c][1] else "")
                for c in SERIES if c not in self.seen]
