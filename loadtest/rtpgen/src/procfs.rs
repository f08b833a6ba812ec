//! CPU time and resident memory of a process (the relay under test) from /proc, and the
//! generator's own CPU time.

use std::fs;

use anyhow::{Context as _, Result};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

fn clock_ticks() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// user + system CPU seconds of every thread of `pid`.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let raw = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&raw)
        .map(|ticks| ticks as f64 / clock_ticks())
        .with_context(|| format!("parsing /proc/{pid}/stat"))
}

/// utime + stime (fields 14 and 15) from a /proc/PID/stat line.
fn parse_stat_cpu_ticks(raw: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = raw.get(raw.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The PID of `ksoftirqd/<cpu>`, the kernel thread that takes over network softirq work
/// on that CPU when there is too much to finish inline. On loopback, delivering the
/// packets a process sends is softirq work on the sender's CPU, so for a relay pinned to
/// a core part of its sending cost runs in this thread, not in the relay's own threads.
pub fn ksoftirqd(cpu: u32) -> Option<u32> {
    let want = format!("ksoftirqd/{cpu}");
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim_end() == want).then_some(pid)
    })
}

/// Non-idle seconds of one CPU (user, nice, system, irq, softirq; not iowait or steal)
/// from /proc/stat: everything that ran on it, whoever it was.
pub fn cpu_busy_seconds(cpu: u32) -> Result<f64> {
    let raw = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_cpu_busy_ticks(&raw, cpu)
        .map(|ticks| ticks as f64 / clock_ticks())
        .with_context(|| format!("no cpu{cpu} line in /proc/stat"))
}

fn parse_cpu_busy_ticks(stat: &str, cpu: u32) -> Option<u64> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_ascii_whitespace().next() == Some(name.as_str()))?;
    let f: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?)
}

/// What is sampled of the relay over the steady window.
#[derive(Debug, Clone, Copy)]
pub struct RelayProbe {
    pub pid: u32,
    /// The core the relay is pinned to, when known.
    pub cpu: Option<u32>,
    pub ksoftirqd: Option<u32>,
}

/// CPU seconds, cumulative; subtract two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RelaySample {
    pub process_s: f64,
    pub ksoftirqd_s: f64,
    pub core_busy_s: f64,
}

impl RelayProbe {
    pub fn new(pid: u32, cpu: Option<u32>) -> RelayProbe {
        RelayProbe {
            pid,
            cpu,
            ksoftirqd: cpu.and_then(ksoftirqd),
        }
    }

    pub fn sample(&self) -> Result<RelaySample> {
        Ok(RelaySample {
            process_s: cpu_seconds(self.pid)?,
            ksoftirqd_s: self.ksoftirqd.map(cpu_seconds).transpose()?.unwrap_or(0.0),
            core_busy_s: self.cpu.map(cpu_busy_seconds).transpose()?.unwrap_or(0.0),
        })
    }
}

impl std::ops::Sub for RelaySample {
    type Output = RelaySample;
    fn sub(self, o: RelaySample) -> RelaySample {
        RelaySample {
            process_s: self.process_s - o.process_s,
            ksoftirqd_s: self.ksoftirqd_s - o.ksoftirqd_s,
            core_busy_s: self.core_busy_s - o.core_busy_s,
        }
    }
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let raw = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vmrss(&raw).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_ascii_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The only CPU this process may run on (it was started under `taskset -c N`), if so.
pub fn pinned_cpu() -> Option<u32> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false));
    let first = cpus.next()?;
    cpus.next().is_none().then_some(first as u32)
}

/// user + system CPU seconds of this process.
pub fn self_cpu_seconds() -> f64 {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (rtp engine) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 5 0 1000 0 0";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_per_cpu_busy_time() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 2 3 400 5 6 7 8 0 0\ncpu1 100 0 0 0 0 0 0 0 0 0\nintr 5\n";
        assert_eq!(parse_cpu_busy_ticks(stat, 0), Some(1 + 2 + 3 + 6 + 7));
        assert_eq!(parse_cpu_busy_ticks(stat, 1), Some(100));
        assert_eq!(parse_cpu_busy_ticks(stat, 2), None);
        assert!(cpu_busy_seconds(0).is_ok());
        // ksoftirqd/0 is not asserted: in a PID namespace (a container) kernel threads are
        // not visible in /proc.
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\trtpengine\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(rss_kib(pid).unwrap() > 0);
    }
}
