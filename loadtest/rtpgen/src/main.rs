//! `rtpgen`: media load generator. Sets up N calls on a relay (rtpengine through its ng
//! protocol, or tongdai's media control API), streams G.711 at 50 packets per second each
//! way for every call, and reports delivered packets, loss, reordering and the latency
//! the relay adds over a direct loopback path measured in the same run. It can also read
//! the relay process's CPU and memory from /proc over the run.
//!
//! ```text
//! rtpgen --relay rtpengine --ng 127.0.0.1:2223 --calls 1000 --duration 20 --relay-pid PID
//! rtpgen --relay tongdai --control http://127.0.0.1:8090 --calls 1000 --record
//! rtpgen --relay none --calls 1000     # direct loopback only: the generator's own limit
//! ```
//!
//! Traffic goes to loopback only; every phase is bounded in packets and time.

mod bencode;
mod control;
mod histogram;
mod packet;
mod procfs;
mod report;
mod schedule;
mod sdp;
mod stats;
mod worker;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Parser, ValueEnum};

use control::{Backend, CallMedia, CallSetup};
use report::{ControlReport, PhaseReport, RelayProcess, Report};
use schedule::Schedule;
use worker::{CallPlan, Sockets, WorkerConfig};

/// Upper bounds on what one run may ask for: every load loop is bounded.
const MAX_CALLS: u32 = 100_000;
const MAX_SECONDS: f64 = 3600.0;
const MAX_THREADS: u32 = 64;
const MAX_CALL_SECONDS: f64 = 20e6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RelayKind {
    /// rtpengine, driven through its ng control protocol (--ng).
    Rtpengine,
    /// tongdai media, driven through its HTTP control API (--control).
    Tongdai,
    /// No relay: caller and callee sockets talk directly (the generator's own limit).
    None,
}

#[derive(Debug, Parser)]
#[command(
    name = "rtpgen",
    version,
    about = "G.711 call-pair load generator for RTP relays (loopback only)"
)]
struct Args {
    /// The relay under test.
    #[arg(long, value_enum, default_value = "rtpengine")]
    relay: RelayKind,
    /// rtpengine's ng control address (UDP).
    #[arg(long, default_value = "127.0.0.1:2223")]
    ng: SocketAddr,
    /// tongdai media control base URL.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    control: String,
    /// Tenant the tongdai sessions belong to.
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Concurrent calls (each: two streams of 50 packets/s).
    #[arg(long, default_value_t = 100)]
    calls: u32,
    /// Seconds every call streams after the ramp.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds over which calls start streaming.
    #[arg(long, default_value_t = 1.0)]
    ramp: f64,
    /// Ask the relay to record every call.
    #[arg(long)]
    record: bool,
    /// Generator threads (each with its own caller and callee socket).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Packets per sendmmsg. Packets of one batch are stamped together, so a large batch
    /// adds its own send time to the latency of the last packets.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Microseconds between two turns of a generator thread's loop: packets due within a
    /// tick leave together, up to a tick late (their latency is measured from when they
    /// actually leave). 0 wakes for every packet, which costs a core at ~1,000 calls.
    #[arg(long, default_value_t = 200)]
    tick_us: u64,
    /// Milliseconds to keep receiving after the last send.
    #[arg(long, default_value_t = 1000)]
    drain_ms: u64,
    /// Seconds of direct loopback traffic (same calls, no relay) before the relay run,
    /// the baseline the added latency is measured against. 0 skips it.
    #[arg(long, default_value_t = 3.0)]
    baseline: f64,
    /// Control requests in flight at once during setup and teardown.
    #[arg(long, default_value_t = 8)]
    setup_concurrency: usize,
    /// Seconds allowed for setting up (and, separately, tearing down) all calls.
    #[arg(long, default_value_t = 300)]
    setup_limit: u64,
    /// Seconds to wait for the relay's control interface to answer.
    #[arg(long, default_value_t = 10)]
    ready_timeout: u64,
    /// PID of the relay: its CPU time over the steady window and its RSS are reported.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// The core the relay is pinned to (with --relay-pid): its `ksoftirqd/N` thread's CPU
    /// (the kernel delivering what the relay sends, when there is too much to do inline)
    /// is counted as the relay's, and the core's total busy time is reported.
    #[arg(long)]
    relay_cpu: Option<u32>,
    /// Address of the generator's sockets (loopback).
    #[arg(long, default_value = "127.0.0.1")]
    bind: Ipv4Addr,
    /// Receive/send buffer of each generator socket, bytes. On loopback a sent packet is
    /// charged to the sender's buffer until the receiver (the relay) reads it, so this
    /// bounds how far a relay may fall behind before sends are refused (counted as lost).
    #[arg(long, default_value_t = 32 << 20)]
    socket_buffer: usize,
    /// Leave the calls on the relay at the end.
    #[arg(long)]
    keep_calls: bool,
    /// Also append the JSON line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Free text copied into the JSON (e.g. the benchmark level).
    #[arg(long)]
    label: Option<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtpgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn validate(a: &Args) -> Result<()> {
    ensure!(
        (1..=MAX_CALLS).contains(&a.calls),
        "--calls must be 1..={MAX_CALLS}"
    );
    ensure!(
        a.duration > 0.0 && a.duration <= MAX_SECONDS,
        "--duration must be in (0, {MAX_SECONDS}]"
    );
    ensure!(
        (0.0..=MAX_SECONDS).contains(&a.ramp),
        "--ramp must be in [0, {MAX_SECONDS}]"
    );
    ensure!(
        (0.0..=MAX_SECONDS).contains(&a.baseline),
        "--baseline must be in [0, {MAX_SECONDS}]"
    );
    ensure!(
        (1..=MAX_THREADS).contains(&a.threads),
        "--threads must be 1..={MAX_THREADS}"
    );
    ensure!((1..=1024).contains(&a.batch), "--batch must be 1..=1024");
    ensure!(a.drain_ms <= 60_000, "--drain-ms must be at most 60000");
    ensure!(
        a.tick_us <= 10_000,
        "--tick-us must be at most 10000 (half a packet interval)"
    );
    // The receive bitmaps take 2 bits per call per 20 ms of run: keep them under ~250 MB.
    ensure!(
        f64::from(a.calls) * (a.ramp + a.duration) <= MAX_CALL_SECONDS,
        "--calls x (--ramp + --duration) must be at most {MAX_CALL_SECONDS} call-seconds"
    );
    ensure!(
        a.bind.is_loopback(),
        "--bind must be a loopback address (127.0.0.0/8)"
    );
    if a.relay == RelayKind::Rtpengine {
        ensure!(a.ng.ip().is_loopback(), "--ng must be a loopback address");
    }
    if a.relay == RelayKind::Tongdai {
        let host = a
            .control
            .strip_prefix("http://")
            .context("--control must be an http:// URL")?
            .split(['/', ':'])
            .next()
            .unwrap_or_default();
        ensure!(
            host == "localhost"
                || host.starts_with("127.")
                || a.control.starts_with("http://[::1]"),
            "--control must point at loopback"
        );
    }
    Ok(())
}

fn per_second(x: f64, window_s: f64) -> f64 {
    if window_s > 0.0 { x / window_s } else { 0.0 }
}

fn secs_ns(s: f64) -> u64 {
    (s * 1e9) as u64
}

/// Runs one traffic phase on all threads; returns its report and the relay's CPU use
/// over the steady window (when a probe is given).
fn run_phase(
    path: &'static str,
    args: &Args,
    sockets: &[Sockets],
    plans: &[Vec<CallPlan>],
    schedule: Schedule,
    relay: Option<&procfs::RelayProbe>,
) -> Result<(PhaseReport, Option<procfs::RelaySample>)> {
    let calls: usize = plans.iter().map(Vec::len).sum();
    let start = Instant::now();
    let epoch_ns = worker::realtime_ns();
    let (from_ns, to_ns) = schedule.steady_window_ns();
    let sleep_until = |ns: u64| {
        let target = start + Duration::from_nanos(ns);
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
    };
    let (workers, relay_cpu, gen_cpu, gen_core_busy) = std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = sockets
            .iter()
            .zip(plans)
            .enumerate()
            .map(|(t, (socks, plan))| {
                let cfg = WorkerConfig {
                    thread: t as u32,
                    threads: args.threads,
                    schedule,
                    batch: args.batch,
                    drain: Duration::from_millis(args.drain_ms),
                    tick: Duration::from_micros(args.tick_us),
                    start,
                    epoch_ns,
                };
                scope.spawn(move || worker::run(&cfg, socks, plan))
            })
            .collect();
        let gen_core = procfs::pinned_cpu();
        let core_busy = || gen_core.and_then(|c| procfs::cpu_busy_seconds(c).ok());
        sleep_until(from_ns);
        // Best effort: a relay that died mid-run must not cost the traffic figures.
        let relay0 = relay.and_then(|r| r.sample().ok());
        let gen0 = procfs::self_cpu_seconds();
        let gen_core0 = core_busy();
        sleep_until(to_ns);
        let relay1 = relay.and_then(|r| r.sample().ok());
        let gen1 = procfs::self_cpu_seconds();
        let gen_core_busy = core_busy().zip(gen_core0).map(|(b, a)| b - a);
        let mut workers = Vec::with_capacity(handles.len());
        for h in handles {
            match h.join() {
                Ok(w) => workers.push(w),
                Err(_) => bail!("a generator thread panicked"),
            }
        }
        Ok((
            workers,
            relay0.zip(relay1).map(|(a, b)| b - a),
            gen1 - gen0,
            gen_core_busy,
        ))
    })?;
    let window_s = (to_ns - from_ns) as f64 / 1e9;
    let mut report = PhaseReport::build(path, calls, (schedule.end_ns() as f64) / 1e9, &workers);
    report.window_s = window_s;
    report.generator_cores = per_second(gen_cpu, window_s);
    report.generator_core_busy = gen_core_busy.map(|b| per_second(b, window_s));
    Ok((report, relay_cpu))
}

fn v4(addr: SocketAddr, what: &str) -> Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => bail!("{what} is IPv6 ({addr}); rtpgen sends over IPv4 loopback"),
    }
}

fn control_report<T>(b: &control::Batch<T>) -> ControlReport {
    let ok = b.results.len() - b.failed;
    let seconds = b.elapsed.as_secs_f64();
    ControlReport {
        ok,
        failed: b.failed,
        seconds,
        per_second: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        errors: b.errors.clone(),
    }
}

fn run(args: Args) -> Result<()> {
    validate(&args)?;
    let threads = args.threads as usize;
    let sockets = (0..threads)
        .map(|_| Sockets::bind(args.bind, args.socket_buffer))
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding the generator sockets")?;
    let thread_of = |call: u32| (call % args.threads) as usize;
    let schedule = Schedule::new(args.calls, secs_ns(args.ramp), secs_ns(args.duration));

    // Direct loopback: each thread's caller socket sends to its callee socket and back.
    let mut direct_plans = vec![Vec::new(); threads];
    for call in 0..args.calls {
        let s = &sockets[thread_of(call)];
        direct_plans[thread_of(call)].push(CallPlan {
            call,
            dest: [s.callee_addr()?, s.caller_addr()?],
        });
    }
    let offered_pps = f64::from(args.calls) * 2.0 * 50.0;
    let mut report = Report {
        tool: "rtpgen",
        version: env!("CARGO_PKG_VERSION"),
        label: args.label.clone(),
        relay: format!("{:?}", args.relay).to_lowercase(),
        calls: args.calls,
        threads: args.threads,
        batch: args.batch,
        duration_s: args.duration,
        ramp_s: args.ramp,
        record: args.record,
        offered_pps,
        setup: None,
        teardown: None,
        traffic: PhaseReport::build("direct", 0, 0.0, &[]),
        baseline: None,
        added_latency_us: None,
        relay_process: None,
    };

    let backend = match args.relay {
        RelayKind::None => {
            let (traffic, _) = run_phase("direct", &args, &sockets, &direct_plans, schedule, None)?;
            report.traffic = traffic;
            return emit(&args, &report);
        }
        RelayKind::Rtpengine => Backend::Rtpengine { ng: args.ng },
        RelayKind::Tongdai => Backend::Tongdai {
            base_url: args.control.clone(),
            tenant: args.tenant.clone(),
        },
    };
    control::wait_ready(&backend, Duration::from_secs(args.ready_timeout))?;

    if args.baseline > 0.0 {
        let base_schedule = Schedule::new(
            args.calls,
            secs_ns(args.ramp.min(1.0)),
            secs_ns(args.baseline),
        );
        let (baseline, _) = run_phase(
            "direct",
            &args,
            &sockets,
            &direct_plans,
            base_schedule,
            None,
        )?;
        report.baseline = Some(baseline);
    }

    let probe = args
        .relay_pid
        .map(|pid| procfs::RelayProbe::new(pid, args.relay_cpu));
    if let (Some(cpu), Some(p)) = (args.relay_cpu, &probe)
        && p.ksoftirqd.is_none()
    {
        // In a PID namespace kernel threads are invisible; the relay's own CPU remains.
        eprintln!("rtpgen: no ksoftirqd/{cpu} in /proc; relay CPU is its own threads only");
    }
    let rss = || args.relay_pid.and_then(|pid| procfs::rss_kib(pid).ok());
    let rss_before = rss();
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        worker::realtime_ns() / 1_000_000_000
    );
    let local_ip = IpAddr::V4(args.bind);
    let setups = (0..args.calls)
        .map(|call| {
            let s = &sockets[thread_of(call)];
            Ok(CallSetup {
                call,
                call_id: format!("rtpgen-{run_id}-{call}"),
                caller_sdp: sdp::audio_sdp(local_ip, s.caller_addr()?.port(), u64::from(call) * 2),
                callee_sdp: sdp::audio_sdp(
                    local_ip,
                    s.callee_addr()?.port(),
                    u64::from(call) * 2 + 1,
                ),
                record: args.record,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let limit = Duration::from_secs(args.setup_limit);
    let setup = control::setup_all(&backend, &setups, args.setup_concurrency, limit)?;
    report.setup = Some(control_report(&setup));
    let medias: Vec<CallMedia> = setup.results.into_iter().flatten().collect();
    let rss_after_setup = rss();

    let mut plans = vec![Vec::new(); threads];
    let mut plan_error = None;
    for m in &medias {
        match (
            v4(m.caller_sends_to, "the caller-facing address"),
            v4(m.callee_sends_to, "the callee-facing address"),
        ) {
            (Ok(a), Ok(b)) => plans[thread_of(m.call)].push(CallPlan {
                call: m.call,
                dest: [a, b],
            }),
            (Err(e), _) | (_, Err(e)) => plan_error = Some(e),
        }
    }
    let result = if let Some(e) = plan_error {
        Err(e)
    } else if medias.is_empty() {
        Err(anyhow::anyhow!(
            "no call could be set up: {}",
            report
                .setup
                .as_ref()
                .and_then(|s| s.errors.first().cloned())
                .unwrap_or_default()
        ))
    } else {
        run_phase("relay", &args, &sockets, &plans, schedule, probe.as_ref()).map(
            |(traffic, relay_cpu)| {
                report.traffic = traffic;
                relay_cpu
            },
        )
    };
    let rss_end = rss();

    if !args.keep_calls && !medias.is_empty() {
        let down = control::teardown_all(&backend, &medias, args.setup_concurrency, limit)?;
        report.teardown = Some(control_report(&down));
    }
    let relay_cpu = result?;

    if let (Some(base), Some(relay)) = (
        report.baseline.as_ref().and_then(|b| b.latency_us),
        report.traffic.latency_us,
    ) {
        report.added_latency_us = Some(relay.minus(&base));
    }
    if let (Some(pid), Some(cpu)) = (args.relay_pid, relay_cpu) {
        let t = &report.traffic;
        let window_s = t.window_s;
        let per_s = |x: f64| if window_s > 0.0 { x / window_s } else { 0.0 };
        let cores = per_s(cpu.process_s + cpu.ksoftirqd_s);
        let calls = t.calls as f64;
        let relayed_pps = calls * 100.0 * (1.0 - t.loss_ratio);
        let before = rss_before.unwrap_or(0);
        let per_call = |kib: Option<u64>| {
            if calls > 0.0 {
                kib.unwrap_or(0).saturating_sub(before) as f64 / calls
            } else {
                0.0
            }
        };
        report.relay_process = Some(RelayProcess {
            pid,
            cpu: args.relay_cpu,
            process_cpu_seconds: cpu.process_s,
            ksoftirqd_cpu_seconds: cpu.ksoftirqd_s,
            window_s,
            process_cores: per_s(cpu.process_s),
            cores,
            core_busy: args.relay_cpu.map(|_| per_s(cpu.core_busy_s)),
            rss_kib_before_setup: before,
            rss_kib_after_setup: rss_after_setup.unwrap_or(0),
            rss_kib_end: rss_end.unwrap_or(0),
            kib_per_call: per_call(rss_after_setup),
            kib_per_call_streaming: per_call(rss_end),
            pps_per_core: if cores > 0.0 {
                relayed_pps / cores
            } else {
                0.0
            },
            calls_per_core: if cores > 0.0 { calls / cores } else { 0.0 },
        });
    }
    emit(&args, &report)
}

fn emit(args: &Args, report: &Report) -> Result<()> {
    let line = serde_json::to_string(report).context("serializing the report")?;
    eprint!("{}", report.summary());
    println!("{line}");
    if let Some(path) = &args.json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet::Direction;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["rtpgen"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn refuses_non_loopback_targets() {
        assert!(validate(&args(&["--ng", "10.0.0.1:2223"])).is_err());
        assert!(
            validate(&args(&[
                "--relay",
                "tongdai",
                "--control",
                "http://192.168.1.1:80"
            ]))
            .is_err()
        );
        assert!(
            validate(&args(&[
                "--relay",
                "tongdai",
                "--control",
                "http://127.0.0.1:8090"
            ]))
            .is_ok()
        );
        assert!(validate(&args(&["--bind", "10.1.1.1"])).is_err());
        assert!(validate(&args(&[])).is_ok());
    }

    #[test]
    fn refuses_unbounded_runs() {
        assert!(validate(&args(&["--calls", "0"])).is_err());
        assert!(validate(&args(&["--calls", "1000000"])).is_err());
        assert!(validate(&args(&["--duration", "100000"])).is_err());
        assert!(validate(&args(&["--threads", "0"])).is_err());
        assert!(validate(&args(&["--calls", "100000", "--duration", "3600"])).is_err());
    }

    /// The whole loop on loopback, no relay: every packet arrives once, in order.
    #[test]
    fn direct_run_delivers_everything() {
        let a = args(&[
            "--relay",
            "none",
            "--calls",
            "20",
            "--duration",
            "0.3",
            "--ramp",
            "0.1",
            "--threads",
            "2",
            "--drain-ms",
            "500",
        ]);
        let sockets: Vec<Sockets> = (0..2)
            .map(|_| Sockets::bind(a.bind, 1 << 20).unwrap())
            .collect();
        let mut plans = vec![Vec::new(); 2];
        for call in 0..20u32 {
            let s = &sockets[(call % 2) as usize];
            plans[(call % 2) as usize].push(CallPlan {
                call,
                dest: [s.callee_addr().unwrap(), s.caller_addr().unwrap()],
            });
        }
        let schedule = Schedule::new(20, secs_ns(0.1), secs_ns(0.3));
        let expected: u64 = (0..20)
            .flat_map(|c| Direction::BOTH.map(|d| u64::from(schedule.packets(c, d))))
            .sum();
        let (r, cpu) = run_phase("direct", &a, &sockets, &plans, schedule, None).unwrap();
        assert_eq!(cpu, None);
        assert_eq!(r.sent, expected);
        assert_eq!(r.received, expected);
        assert_eq!((r.lost, r.duplicates, r.misrouted, r.unknown), (0, 0, 0, 0));
        assert_eq!(r.caller_to_callee.sent, r.callee_to_caller.sent);
        assert!(r.latency_us.is_some());
    }
}
