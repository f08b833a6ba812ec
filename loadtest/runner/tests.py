"""The runner's own tests (`loadtest/run --self-test`): scenario checking, SIPp and
Prometheus parsing, percentiles. Quick, no load, nothing started except `loadtest/run`
itself on bad files (which must exit 2 before starting anything)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from . import metrics, sipp
from .scenario import ScenarioError, load, parse

LOADTEST = Path(__file__).resolve().parent.parent

GOOD = """
name = "t"
max_minutes = 10
[users]
count = 100
[[phase]]
kind = "register_storm"
users = 100
rate = 50
[[phase]]
kind = "call_burst"
rate = 10
duration_s = 5
[[phase]]
kind = "long_calls"
calls = 20
hold_s = 10
[[phase]]
kind = "queue_peak"
agents = 10
rate = 4
duration_s = 10
"""


def error_of(text: str) -> ScenarioError:
    try:
        parse(text)
    except ScenarioError as e:
        return e
    raise AssertionError("the scenario was accepted")


class ScenarioTests(unittest.TestCase):
    def test_good_scenario_and_defaults(self):
        s = parse(GOOD)
        self.assertEqual([p.kind for p in s.phases], ["register_storm", "call_burst", "long_calls", "queue_peak"])
        self.assertEqual(s.cluster.replicas, 1)
        self.assertEqual(s.cluster.rtp_ports, (2000, 32767))
        self.assertIsNone(s.target)
        self.assertEqual(s.users.tenant, "bench")
        self.assertEqual(s.phases[1].hold_ms, 1000)
        self.assertFalse(s.phases[1].media)
        self.assertEqual(s.phases[2].ramp_rate, 50)
        self.assertEqual(s.phases[0].name, "register storm")
        self.assertAlmostEqual(s.phases[2].planned_seconds(), 20 / 50 + 10)
        q = s.phases[3]
        self.assertEqual((q.talk_ms, q.name), (2000, "queue peak"))
        # 40 callers x 2 s of talk shared by 10 agents: 8 s, under the 10 s of arrivals.
        self.assertAlmostEqual(q.queue_drain_seconds(), 10)
        self.assertAlmostEqual(q.planned_seconds(), 10 + 2 + 5)

    def test_shipped_scenarios_parse(self):
        for name in ("smoke", "peak"):
            s = load(LOADTEST / "scenarios" / f"{name}.toml")
            self.assertEqual(s.name, name)
            kinds = {p.kind for p in s.phases}
            self.assertEqual(kinds, {"register_storm", "call_burst", "long_calls", "queue_peak"}, name)

    def test_unknown_phase_kind(self):
        e = error_of(GOOD.replace('kind = "call_burst"', 'kind = "call_storm"'))
        self.assertEqual(e.field, "phase[2].kind")
        self.assertIn("unknown phase 'call_storm'", str(e))
        self.assertIn("call_burst", str(e))

    def test_queue_peak_needs_its_agents_among_the_users(self):
        e = error_of(GOOD.replace("agents = 10", "agents = 101"))
        self.assertEqual(e.field, "phase[4].agents")
        self.assertIn("more than users.count (100)", str(e))
        e = error_of(GOOD.replace("agents = 10", "agents = 0"))
        self.assertEqual(e.field, "phase[4].agents")
        e = error_of(GOOD.replace("agents = 10\n", ""))
        self.assertEqual(e.field, "phase[4].agents")

    def test_missing_field(self):
        e = error_of(GOOD.replace("duration_s = 5\n", ""))
        self.assertEqual(e.field, "phase[2].duration_s")
        self.assertIn("missing", str(e))
        e = error_of(GOOD.replace("[users]\ncount = 100\n", ""))
        self.assertEqual(e.field, "users")
        e = error_of('name = "x"\n')
        self.assertEqual(e.field, "phase")

    def test_wrong_types(self):
        e = error_of(GOOD.replace("rate = 10", 'rate = "fast"'))
        self.assertEqual(e.field, "phase[2].rate")
        self.assertIn("expected an integer, got string 'fast'", str(e))
        # TOML booleans are not integers here, nor floats.
        self.assertEqual(error_of(GOOD.replace("calls = 20", "calls = true")).field, "phase[3].calls")
        self.assertEqual(error_of(GOOD.replace("calls = 20", "calls = 20.5")).field, "phase[3].calls")
        e = error_of(GOOD.replace('kind = "call_burst"', 'kind = "call_burst"\nmedia = "yes"'))
        self.assertEqual(e.field, "phase[2].media")
        self.assertIn("expected a boolean", str(e))
        e = error_of("users = 3\n" + GOOD.replace("[users]\ncount = 100\n", ""))
        self.assertEqual(e.field, "users")
        self.assertIn("expected a table, got integer", str(e))

    def test_unknown_fields(self):
        e = error_of(GOOD.replace("hold_s = 10", "hold_s = 10\nhold_ms = 5"))
        self.assertEqual(e.field, "phase[3].hold_ms")
        self.assertIn("unknown field", str(e))
        self.assertEqual(error_of("colour = 1\n" + GOOD).field, "colour")
        self.assertEqual(error_of(GOOD + "[cluster]\nreplica = 3\n").field, "cluster.replica")

    def test_ranges_and_bounds(self):
        self.assertEqual(error_of(GOOD.replace("rate = 10", "rate = 0")).field, "phase[2].rate")
        self.assertIn("out of range", str(error_of(GOOD.replace("rate = 10", "rate = -5"))))
        self.assertEqual(error_of(GOOD.replace("users = 100", "users = 101")).field, "phase[1].users")
        self.assertEqual(error_of(GOOD + "[cluster]\nreplicas = 2\n").field, "cluster.replicas")
        self.assertEqual(error_of(GOOD.replace("max_minutes = 10", "max_minutes = 0.5")).field, "max_minutes")
        e = error_of(GOOD + '[cluster]\nrtp_ports = "20000-20010"\n')
        self.assertEqual(e.field, "phase[2]")
        self.assertIn("RTP port pairs", str(e))
        self.assertEqual(error_of(GOOD + '[cluster]\nrtp_ports = "9-5"\n').field, "cluster.rtp_ports")

    def test_target_must_be_loopback_and_complete(self):
        target = ('[target]\nsip = "{sip}"\nmetrics = "http://127.0.0.1:9100/metrics"\n'
                  'admin_api = "http://127.0.0.1:9200"\ntoken = "x"\n')
        ok = parse(GOOD + target.format(sip="127.0.0.1:5060"))
        self.assertIsNone(ok.cluster)
        self.assertEqual(ok.target.sip, ("127.0.0.1", 5060))
        e = error_of(GOOD + target.format(sip="10.0.0.5:5060"))
        self.assertEqual(e.field, "target.sip")
        self.assertIn("127.0.0.0/8", str(e))
        e = error_of(GOOD + target.format(sip="127.0.0.1:5060").replace("127.0.0.1:9100", "192.168.1.2:9100"))
        self.assertEqual(e.field, "target.metrics")
        self.assertEqual(error_of(GOOD + target.format(sip="127.0.0.1:5060").replace('token = "x"\n', "")).field,
                         "target.token")
        self.assertEqual(error_of(GOOD + target.format(sip="127.0.0.1:5060") + "[cluster]\n").field, "target")

    def test_not_toml(self):
        e = error_of("[[phase]\nkind=")
        self.assertIn("not valid TOML", str(e))

    def test_command_line_refuses_bad_files_before_starting_anything(self):
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / "bad.toml"
            bad.write_text(GOOD + '[[phase]]\nkind = "queue_storm"\n')
            results = Path(d) / "results"
            out = subprocess.run([sys.executable, str(LOADTEST / "run"), str(bad), "--results", str(results),
                                  "--no-plots"], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("phase[5].kind", out.stderr)
            self.assertIn("unknown phase", out.stderr)
            self.assertFalse(results.exists(), "nothing may be written for a bad scenario")
            out = subprocess.run([sys.executable, str(LOADTEST / "run"), str(Path(d) / "missing.toml")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 2)
            self.assertIn("cannot read", out.stderr)


class ParsingTests(unittest.TestCase):
    def test_percentile_nearest_rank(self):
        vals = sorted(float(x) for x in range(1, 101))
        self.assertEqual(sipp.percentile(vals, 50), 50.0)
        self.assertEqual(sipp.percentile(vals, 95), 95.0)
        self.assertEqual(sipp.percentile(vals, 99), 99.0)
        self.assertEqual(sipp.percentile([7.0], 99), 7.0)
        self.assertEqual(sipp.percentile([1.0, 2.0, 3.0], 50), 2.0)
        self.assertIsNone(sipp.percentile([], 50))

    def test_per_second_percentiles(self):
        rows = sipp.per_second_percentiles([(100.1, 1.0), (100.5, 3.0), (100.9, 2.0), (102.2, 10.0)])
        self.assertEqual([(r["t"], r["n"], r["p50"], r["p99"]) for r in rows],
                         [(100.5, 3, 2.0, 3.0), (102.5, 1, 10.0, 10.0)])

    def test_sipp_stat_and_rtt_files(self):
        head = ["StartTime", "CurrentTime", "CurrentCall", "OutgoingCall(P)", "OutgoingCall(C)", "IncomingCall(P)",
                "IncomingCall(C)", "SuccessfulCall(P)", "SuccessfulCall(C)", "FailedCall(P)", "FailedCall(C)",
                "Retransmissions(P)", "Retransmissions(C)", "FailedTimeoutOnRecv(P)", "FailedTimeoutOnRecv(C)",
                "FailedUnexpectedMessage(C)", "ResponseTime1(P)"]
        start = "2026-11-23\t10:00:00.000000\t1000.000000"

        def row(t, cur, out_p, out_c, ok_p, ok_c, f_p, f_c, to_c, unexp_c):
            return [start, f"x\ty\t{t}", cur, out_p, out_c, 0, 0, ok_p, ok_c, f_p, f_c, 0, 0, 0, to_c, unexp_c,
                    "00:00:00:002000"]
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            lines = [head, row(1000.0, 0, 0, 0, 0, 0, 0, 0, 0, 0), row(1001.0, 5, 10, 10, 5, 5, 0, 0, 0, 0),
                     row(1002.0, 0, 2, 12, 5, 10, 2, 2, 1, 1), ["cut", "short"]]
            (d / "stat.csv").write_text("\n".join(";".join(map(str, r)) + ";" for r in lines) + "\n")
            rows = sipp.read_stat_rows(d / "stat.csv")
            self.assertEqual([(r["t"], r["current"], r["created"], r["successful"], r["failed"]) for r in rows],
                             [(1000.0, 0, 0, 0, 0), (1001.0, 5, 10, 5, 0), (1002.0, 0, 2, 5, 2)])
            self.assertEqual(rows[1]["avg_response_ms"], 2.0)
            # The cut-short last line is no totals row: read_totals takes the last line as SIPp
            # writes it, which is complete; here drop the junk line first.
            (d / "stat.csv").write_text("\n".join(";".join(map(str, r)) + ";" for r in lines[:-1]) + "\n")
            t = sipp.read_totals(d / "stat.csv")
            self.assertEqual((t["created"], t["successful"], t["failed"]), (12, 10, 2))
            self.assertEqual(t["causes"], {"TimeoutOnRecv": 1, "UnexpectedMessage": 1})
            self.assertEqual(sipp.start_epoch(d / "stat.csv"), 1000.0)
            (d / "call_uac_42_rtt.csv").write_text("Date_ms;response_time_ms;rtd_no\n104.0;3;1\n2500.5;12;1\n"
                                                   "2600;9;2\n")
            rtt = sipp.read_rtt(d, 1000.0)
            self.assertEqual([ms for _, ms in rtt], [3.0, 12.0])  # RTD 2 left out
            self.assertAlmostEqual(rtt[0][0], 1000.104)
            self.assertAlmostEqual(rtt[1][0], 1002.5005)
            (d / "call_uac_42_error_codes.csv").write_text("a;00:00:00:004000;\nb;00:00:00:709000;503,503,486,\n")
            self.assertEqual(dict(sipp.read_error_codes(d)), {"503": 2, "486": 1})

    def test_prometheus_page(self):
        page = metrics.parse(
            "# HELP tongdai_calls_active calls\n# TYPE tongdai_calls_active gauge\n"
            'tongdai_calls_active{tenant="a"} 3\ntongdai_calls_active{tenant="b"} 4\n'
            'tongdai_sip_requests_total{method="REGISTER",transport="udp"} 10\n'
            'tongdai_sip_requests_total{method="INVITE",transport="udp"} 7\n'
            'tongdai_sip_requests_total{method="REGISTER",transport="tcp"} 1\n'
            "tongdai_registrations_active 12\nbroken line\n")
        self.assertEqual(metrics.pick(page, "tongdai_calls_active", None), 7)
        self.assertEqual(metrics.pick(page, "tongdai_sip_requests_total", ("method", "REGISTER")), 11)
        self.assertEqual(metrics.pick(page, "tongdai_registrations_active", None), 12)
        self.assertIsNone(metrics.pick(page, "tongdai_media_sessions", None))


if __name__ == "__main__":
    unittest.main()
