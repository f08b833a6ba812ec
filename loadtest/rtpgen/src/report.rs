//! The run's results: one JSON object (printed as one line on stdout, for scripts) and a
//! short human summary (stderr).

use std::fmt::Write as _;

use serde::Serialize;

use crate::histogram::Histogram;
use crate::packet::Direction;
use crate::stats::DirectionRx;
use crate::worker::WorkerResult;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram) -> Option<Percentiles> {
        let us = |q: f64| h.quantile(q).map_or(0.0, |ns| ns as f64 / 1000.0);
        (h.count() > 0).then(|| Percentiles {
            p50: us(0.5),
            p90: us(0.9),
            p99: us(0.99),
            p999: us(0.999),
            max: h.max().unwrap_or(0) as f64 / 1000.0,
            mean: h.mean().unwrap_or(0.0) / 1000.0,
        })
    }

    /// `self - base` at each percentile (the relay's added latency); max and mean too.
    pub fn minus(&self, base: &Percentiles) -> Percentiles {
        Percentiles {
            p50: self.p50 - base.p50,
            p90: self.p90 - base.p90,
            p99: self.p99 - base.p99,
            p999: self.p999 - base.p999,
            max: self.max - base.max,
            mean: self.mean - base.mean,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectionReport {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub latency_us: Option<Percentiles>,
}

/// One traffic phase (through the relay, or direct loopback).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub path: &'static str,
    pub calls: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss_ratio: f64,
    pub duplicates: u64,
    pub reordered: u64,
    pub misrouted: u64,
    pub unknown: u64,
    /// Sends the kernel refused (socket buffer full of packets the relay has not read);
    /// included in `sent` and so in `lost`.
    pub send_errors: u64,
    pub receive_errors: u64,
    pub clock_anomalies: u64,
    pub caller_to_callee: DirectionReport,
    pub callee_to_caller: DirectionReport,
    pub latency_us: Option<Percentiles>,
    /// How late packets left against the schedule: large values mean the generator
    /// could not keep up (the latency figures stay right, the offered rate does not).
    pub send_lag_us: Option<Percentiles>,
    /// Seconds of the steady window (every call streaming) the CPU figures cover.
    pub window_s: f64,
    pub generator_cores: f64,
    /// When rtpgen is pinned to one core: how busy that core was (rtpgen, the kernel's
    /// loopback delivery of what it sent, anything else). Near 1.0 the generator, not
    /// the relay, may be the limit.
    pub generator_core_busy: Option<f64>,
}

impl PhaseReport {
    pub fn build(
        path: &'static str,
        calls: usize,
        duration_s: f64,
        workers: &[WorkerResult],
    ) -> PhaseReport {
        let mut dirs: [DirectionRx; 2] = Default::default();
        let mut sent = [0u64; 2];
        let mut latency = Histogram::new();
        let mut lag = Histogram::new();
        let (mut misrouted, mut unknown, mut send_errors, mut receive_errors) = (0, 0, 0, 0);
        for w in workers {
            for d in Direction::BOTH {
                dirs[d.index()].merge(&w.rx.directions[d.index()]);
                sent[d.index()] += w.sent[d.index()];
            }
            lag.merge(&w.send_lag_ns);
            misrouted += w.misrouted;
            unknown += w.unknown + w.rx.foreign;
            send_errors += w.send_errors;
            receive_errors += w.receive_errors;
        }
        for d in &dirs {
            latency.merge(&d.latency_ns);
        }
        let dir_report = |d: Direction| {
            let rx = &dirs[d.index()];
            DirectionReport {
                sent: sent[d.index()],
                received: rx.received,
                lost: sent[d.index()].saturating_sub(rx.received),
                duplicates: rx.duplicates,
                reordered: rx.reordered,
                latency_us: Percentiles::of(&rx.latency_ns),
            }
        };
        let a = dir_report(Direction::CallerToCallee);
        let b = dir_report(Direction::CalleeToCaller);
        let total_sent = a.sent + b.sent;
        let lost = a.lost + b.lost;
        PhaseReport {
            path,
            calls,
            duration_s,
            sent: total_sent,
            received: a.received + b.received,
            lost,
            loss_ratio: if total_sent == 0 {
                0.0
            } else {
                lost as f64 / total_sent as f64
            },
            duplicates: a.duplicates + b.duplicates,
            reordered: a.reordered + b.reordered,
            misrouted,
            unknown,
            send_errors,
            receive_errors,
            clock_anomalies: dirs.iter().map(|d| d.clock_anomalies).sum(),
            caller_to_callee: a,
            callee_to_caller: b,
            latency_us: Percentiles::of(&latency),
            send_lag_us: Percentiles::of(&lag),
            window_s: 0.0,
            generator_cores: 0.0,
            generator_core_busy: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    pub ok: usize,
    pub failed: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub errors: Vec<String>,
}

/// The relay process as /proc saw it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RelayProcess {
    pub pid: u32,
    /// The core it is pinned to (--relay-cpu).
    pub cpu: Option<u32>,
    /// utime + stime of all its threads over the steady window.
    pub process_cpu_seconds: f64,
    /// CPU of ksoftirqd/<cpu> over the window: loopback delivery of what the relay sent,
    /// deferred from its own context (0 without --relay-cpu).
    pub ksoftirqd_cpu_seconds: f64,
    pub window_s: f64,
    pub process_cores: f64,
    /// (process + ksoftirqd) / window: the relay's cores, what calls_per_core divides by.
    pub cores: f64,
    /// Everything that ran on the relay's core (whoever), per second of the window: more
    /// than `cores` means something else shared the core.
    pub core_busy: Option<f64>,
    pub rss_kib_before_setup: u64,
    pub rss_kib_after_setup: u64,
    pub rss_kib_end: u64,
    /// (after setup - before setup) / calls.
    pub kib_per_call: f64,
    /// (end - before setup) / calls: includes what streaming (and recording) allocated.
    pub kib_per_call_streaming: f64,
    /// Packets relayed per second in the steady window per core used.
    pub pps_per_core: f64,
    /// calls / cores used in the steady window.
    pub calls_per_core: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub label: Option<String>,
    pub relay: String,
    pub calls: u32,
    pub threads: u32,
    pub batch: usize,
    pub duration_s: f64,
    pub ramp_s: f64,
    pub record: bool,
    /// Packets per second offered to the relay when every call streams (both directions).
    pub offered_pps: f64,
    pub setup: Option<ControlReport>,
    pub teardown: Option<ControlReport>,
    pub traffic: PhaseReport,
    pub baseline: Option<PhaseReport>,
    /// Relay latency minus direct loopback latency at the same percentile.
    pub added_latency_us: Option<Percentiles>,
    pub relay_process: Option<RelayProcess>,
}

fn fmt_lat(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} µs",
            p.p50, p.p90, p.p99, p.p999, p.max
        ),
        None => "no packets".to_owned(),
    }
}

fn phase_summary(out: &mut String, name: &str, p: &PhaseReport) {
    let _ = writeln!(
        out,
        "{name}: {} calls, sent {} received {} lost {} ({:.4}%), dup {} reordered {} misrouted {} unknown {}",
        p.calls,
        p.sent,
        p.received,
        p.lost,
        100.0 * p.loss_ratio,
        p.duplicates,
        p.reordered,
        p.misrouted,
        p.unknown
    );
    for (d, r) in [
        ("caller->callee", &p.caller_to_callee),
        ("callee->caller", &p.callee_to_caller),
    ] {
        let _ = writeln!(
            out,
            "  {d}: sent {} received {} lost {}",
            r.sent, r.received, r.lost
        );
    }
    let _ = writeln!(out, "  latency {}", fmt_lat(&p.latency_us));
    let _ = writeln!(
        out,
        "  generator {:.2} cores (its core busy {}), send lag {}",
        p.generator_cores,
        p.generator_core_busy
            .map_or("?".to_owned(), |b| format!("{b:.2}")),
        fmt_lat(&p.send_lag_us)
    );
    if p.send_errors + p.receive_errors + p.clock_anomalies > 0 {
        let _ = writeln!(
            out,
            "  sends refused (relay not reading) {} receive errors {} clock anomalies {}",
            p.send_errors, p.receive_errors, p.clock_anomalies
        );
    }
}

impl Report {
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rtpgen: relay {}, {} calls x 2 streams x 50 pps = {:.0} pps offered, {} s (+{} s ramp){}",
            self.relay,
            self.calls,
            self.offered_pps,
            self.duration_s,
            self.ramp_s,
            if self.record { ", recording" } else { "" }
        );
        if let Some(s) = &self.setup {
            let _ = writeln!(
                out,
                "setup: {} ok, {} failed in {:.2} s ({:.0}/s){}",
                s.ok,
                s.failed,
                s.seconds,
                s.per_second,
                s.errors
                    .first()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            );
        }
        if let Some(b) = &self.baseline {
            phase_summary(&mut out, "direct (no relay)", b);
        }
        phase_summary(&mut out, "traffic", &self.traffic);
        if let Some(a) = &self.added_latency_us {
            let _ = writeln!(
                out,
                "added latency (relay - direct): p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} µs",
                a.p50, a.p90, a.p99, a.p999
            );
        }
        if let Some(r) = &self.relay_process {
            let _ = writeln!(
                out,
                "relay pid {}: {:.3} cores ({:.3} own threads + {:.3} ksoftirqd; core busy {}) over {:.1} s -> {:.0} calls/core, {:.0} pps/core; RSS {} -> {} -> {} KiB ({:.1} KiB/call after setup, {:.1} at the end)",
                r.pid,
                r.cores,
                r.process_cores,
                r.cores - r.process_cores,
                r.core_busy.map_or("?".to_owned(), |b| format!("{b:.3}")),
                r.window_s,
                r.calls_per_core,
                r.pps_per_core,
                r.rss_kib_before_setup,
                r.rss_kib_after_setup,
                r.rss_kib_end,
                r.kib_per_call,
                r.kib_per_call_streaming
            );
        }
        if let Some(t) = &self.teardown {
            let _ = writeln!(
                out,
                "teardown: {} ok, {} failed in {:.2} s",
                t.ok, t.failed, t.seconds
            );
        }
        out
    }
}
