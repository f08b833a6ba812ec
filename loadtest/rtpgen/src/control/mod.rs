//! Setting calls up on the relay under test and tearing them down: one client per
//! control thread, many threads, so thousands of calls are set up in seconds.
//! Each call is an offer (the caller's SDP, answered with the SDP for the callee, which
//! names the relay's callee-facing port) and an answer (the callee's SDP, answered with
//! the SDP for the caller, which names the caller-facing port).

pub mod ng;
pub mod tongdai;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

/// Which relay and how to reach its control interface.
#[derive(Debug, Clone)]
pub enum Backend {
    Rtpengine { ng: SocketAddr },
    Tongdai { base_url: String, tenant: String },
}

impl Backend {
    /// A client for one control thread.
    pub fn client(&self, name: &str) -> Result<Box<dyn Control>> {
        Ok(match self {
            Backend::Rtpengine { ng } => Box::new(ng::NgClient::connect(*ng, name)?),
            Backend::Tongdai { base_url, tenant } => {
                Box::new(tongdai::HttpClient::new(base_url, tenant))
            }
        })
    }
}

/// What a call needs from the relay.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub call: u32,
    pub call_id: String,
    pub caller_sdp: String,
    pub callee_sdp: String,
    pub record: bool,
}

/// How to reach the relay for a call, and how to end it.
#[derive(Debug, Clone)]
pub struct CallMedia {
    pub call: u32,
    /// The relay's caller-facing address (from the SDP it gave the caller).
    pub caller_sends_to: SocketAddr,
    /// The relay's callee-facing address (from the SDP it gave the callee).
    pub callee_sends_to: SocketAddr,
    pub handle: Handle,
}

#[derive(Debug, Clone)]
pub enum Handle {
    Ng { call_id: String, from_tag: String },
    Tongdai { session: String },
}

pub trait Control: Send {
    /// Ok when the relay answers its control interface.
    fn ready(&mut self) -> Result<()>;
    fn setup(&mut self, call: &CallSetup) -> Result<CallMedia>;
    fn teardown(&mut self, media: &CallMedia) -> Result<()>;
}

/// Polls `ready` until it succeeds or `timeout` passes.
pub fn wait_ready(backend: &Backend, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = backend.client("ready")?;
    loop {
        match client.ready() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("relay not ready after {} s", timeout.as_secs())));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Outcome of a parallel setup or teardown.
#[derive(Debug)]
pub struct Batch<T> {
    /// In the order of the input.
    pub results: Vec<Option<T>>,
    pub failed: usize,
    /// The first few errors, for the report.
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

const KEPT_ERRORS: usize = 5;

/// Runs `op` on every item from `concurrency` threads, each with its own client; items
/// not started before `deadline` fail.
fn parallel<I: Sync, T: Send>(
    backend: &Backend,
    items: &[I],
    concurrency: usize,
    deadline: Instant,
    op: impl Fn(&mut dyn Control, &I) -> Result<T> + Sync,
) -> Result<Batch<T>> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let threads = concurrency.clamp(1, items.len().max(1));
    let mut clients = Vec::with_capacity(threads);
    for t in 0..threads {
        clients.push(backend.client(&format!("c{t}"))?);
    }
    let per_thread: Vec<Vec<(usize, Result<T>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let (next, op) = (&next, &op);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        if Instant::now() >= deadline {
                            done.push((
                                i,
                                Err(anyhow::anyhow!("time limit passed before this call's turn")),
                            ));
                            continue;
                        }
                        done.push((i, op(client.as_mut(), item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut results: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    let mut errors = Vec::new();
    for (i, r) in per_thread.into_iter().flatten() {
        match r {
            Ok(v) => results[i] = Some(v),
            Err(e) if errors.len() < KEPT_ERRORS => errors.push(format!("{e:#}")),
            Err(_) => {}
        }
    }
    // Errors, and the items of a thread that panicked, are left unset.
    let failed = results.iter().filter(|r| r.is_none()).count();
    Ok(Batch {
        results,
        failed,
        errors,
        elapsed: started.elapsed(),
    })
}

pub fn setup_all(
    backend: &Backend,
    calls: &[CallSetup],
    concurrency: usize,
    limit: Duration,
) -> Result<Batch<CallMedia>> {
    parallel(
        backend,
        calls,
        concurrency,
        Instant::now() + limit,
        |client, c| client.setup(c),
    )
}

pub fn teardown_all(
    backend: &Backend,
    calls: &[CallMedia],
    concurrency: usize,
    limit: Duration,
) -> Result<Batch<()>> {
    parallel(
        backend,
        calls,
        concurrency,
        Instant::now() + limit,
        |client, m| client.teardown(m),
    )
}
