//! The shipper thread: finishes stopped recordings (header, sync, hash) and moves them
//! into the store, retrying with exponential backoff while the store refuses (a full
//! disk, S3 down). It runs its own small tokio runtime because `object_store` is async;
//! the recorder thread never waits for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::service::{Shared, bump};
use super::spool::{FinishedRecording, SpoolWriter};
use super::store::RecordingStore;

/// Work for the shipper.
pub(super) enum ToShipper {
    Finish(SpoolWriter),
    Ship(FinishedRecording),
    Stop,
}

impl std::fmt::Debug for ToShipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToShipper::Finish(w) => write!(f, "Finish({})", w.meta().id),
            ToShipper::Ship(r) => write!(f, "Ship({})", r.summary.id),
            ToShipper::Stop => f.write_str("Stop"),
        }
    }
}

/// The shipper thread's state.
pub(super) struct Shipper {
    pub(super) store: RecordingStore,
    pub(super) shared: Arc<Shared>,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) retry_initial: Duration,
    pub(super) retry_max: Duration,
}

struct Job {
    recording: FinishedRecording,
    failures: u32,
    due: Instant,
}

impl Shipper {
    pub(super) fn run(self, messages: Receiver<ToShipper>) {
        let mut queue: Vec<Job> = Vec::new();
        let mut open = true;
        let mut stopping = false;
        loop {
            if self.shared.abandon.load(Ordering::Relaxed) || (stopping && queue.is_empty()) {
                break;
            }
            let next_due = queue.iter().map(|j| j.due).min();
            let message = if open {
                let received = match next_due {
                    None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(due) => {
                        messages.recv_timeout(due.saturating_duration_since(Instant::now()))
                    }
                };
                match received {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        stopping = true;
                        None
                    }
                }
            } else {
                // No more input; wait out the backoff (or an abandon) before retrying.
                if let Some(due) = next_due {
                    let mut guard = self.shared.progress.lock();
                    if !self.shared.abandon.load(Ordering::Relaxed) {
                        self.shared.changed.wait_until(&mut guard, due);
                    }
                }
                None
            };
            match message {
                Some(ToShipper::Finish(writer)) => {
                    let id = writer.meta().id.clone();
                    match writer.finish() {
                        Ok(recording) => {
                            bump(&self.shared.counters.finished);
                            self.shared.notify();
                            queue.push(Job {
                                recording,
                                failures: 0,
                                due: Instant::now(),
                            });
                        }
                        Err(e) => {
                            // Left in the spool: the next start repairs it from the file.
                            bump(&self.shared.counters.finish_failures);
                            tracing::error!(recording = %id, error = %e, "cannot finish a recording");
                            self.shared.update(|p| p.ship_pending -= 1);
                        }
                    }
                }
                Some(ToShipper::Ship(recording)) => queue.push(Job {
                    recording,
                    failures: 0,
                    due: Instant::now(),
                }),
                Some(ToShipper::Stop) => stopping = true,
                None => {}
            }
            self.ship_due(&mut queue);
        }
        self.shared.update(|p| p.shipper_running = false);
    }

    fn ship_due(&self, queue: &mut Vec<Job>) {
        loop {
            if self.shared.abandon.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            let Some(i) = queue.iter().position(|j| j.due <= now) else {
                return;
            };
            let mut job = queue.swap_remove(i);
            match self.runtime.block_on(self.store.ship(&job.recording)) {
                Ok(stored) => {
                    bump(&self.shared.counters.shipped);
                    tracing::info!(
                        recording = %stored.summary.id,
                        tenant = %stored.summary.tenant,
                        duration_ms = stored.summary.duration_ms,
                        location = %stored.location,
                        "recording stored"
                    );
                    self.shared.update(|p| p.ship_pending -= 1);
                }
                Err(e) => {
                    bump(&self.shared.counters.ship_failures);
                    job.failures += 1;
                    let wait = self
                        .retry_initial
                        .saturating_mul(1 << job.failures.min(16).saturating_sub(1))
                        .min(self.retry_max);
                    tracing::warn!(
                        recording = %job.recording.summary.id,
                        error = %e,
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot ship a recording; will retry"
                    );
                    job.due = Instant::now() + wait;
                    queue.push(job);
                    self.shared.notify();
                }
            }
        }
    }
}
