//! The RTP/RTCP relay: worker threads that move packets between the two legs of a call.
//!
//! [`Relay`] starts one worker per core (or as configured) and places each call on the
//! worker with the fewest calls. Everything else about a call (ports, SDP, recording) is
//! decided by the [`super::engine`]; a worker only knows sockets, latches and counters.
//! See [`latch`] for the symmetric-RTP rules and [`worker`] for the hot path.

pub mod latch;
pub(crate) mod sys;
pub(crate) mod worker;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use sys::EventFd;
pub(crate) use worker::WorkerSettings;
use worker::{Command, EventSink, Worker};

pub use worker::{CallStats, LegSide, LegStats, MediaEvent};

#[derive(Debug)]
struct WorkerHandle {
    commands: Sender<Command>,
    wake: Arc<EventFd>,
    /// Calls placed on this worker (control path only, not touched per packet).
    calls: AtomicUsize,
    thread: Option<JoinHandle<()>>,
}

/// The running relay workers.
#[derive(Debug)]
pub struct Relay {
    workers: Vec<WorkerHandle>,
}

/// The worker a call was placed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerId(usize);

impl Relay {
    /// Starts `workers` threads (0 = one per available core).
    pub(crate) fn start(
        workers: usize,
        settings: WorkerSettings,
        events: EventSink,
        recorder: Option<crate::media::recording::RecorderHandle>,
    ) -> io::Result<Self> {
        let count = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = mpsc::channel();
            let wake = Arc::new(EventFd::new()?);
            let worker = Worker::new(
                index,
                wake.clone(),
                rx,
                settings,
                events.clone(),
                recorder.clone(),
            )?;
            let thread = std::thread::Builder::new()
                .name(format!("rtp-relay-{index}"))
                .spawn(move || worker.run())?;
            handles.push(WorkerHandle {
                commands: tx,
                wake,
                calls: AtomicUsize::new(0),
                thread: Some(thread),
            });
        }
        Ok(Self { workers: handles })
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Chooses the worker for a new call (fewest calls) and counts the call on it.
    pub(crate) fn place(&self) -> WorkerId {
        let (index, worker) = self
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.calls.load(Ordering::Relaxed))
            .expect("a relay has at least one worker");
        worker.calls.fetch_add(1, Ordering::Relaxed);
        WorkerId(index)
    }

    /// Forgets a call placed with [`place`](Self::place).
    pub(crate) fn unplace(&self, worker: WorkerId) {
        self.workers[worker.0].calls.fetch_sub(1, Ordering::Relaxed);
    }

    /// Queues a command for a worker and wakes it. False if the worker has stopped.
    pub(crate) fn send(&self, worker: WorkerId, command: Command) -> bool {
        let handle = &self.workers[worker.0];
        let ok = handle.commands.send(command).is_ok();
        handle.wake.notify();
        ok
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for worker in &self.workers {
            let _ = worker.commands.send(Command::Shutdown);
            worker.wake.notify();
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
