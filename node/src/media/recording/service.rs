//! The recorder at run time: one thread owning every open recording, fed by the relay
//! workers through a bounded channel, and a shipper moving finished recordings to the
//! store.
//!
//! Relay workers never block on disk: they batch packets into a `Vec` they got back from
//! [`RecorderHandle::recycled`] and [`RecorderHandle::try_send`] it; when the queue is
//! full the batch comes back in the error and the loss is counted. The recorder thread
//! aligns packets, and every `flush_interval` drains the aligners into the spool files and
//! flushes them to the OS (so `kill -9` loses at most that much plus the reorder window).
//! A stopped recording goes to the shipper thread (module `shipper`), which finishes
//! the file and ships it. At start the spool is recovered and whatever a previous process
//! left is queued for shipping.
//!
//! [`RecorderHandle::shutdown`] finishes every open recording and waits, up to a deadline,
//! until all of them are in the store; what is still in the spool then is shipped by the
//! next start.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::aligner::DEFAULT_REORDER_WINDOW;
use super::config::RecordingConfig;
use super::recorder::Recorder;
use super::shipper::{Shipper, ToShipper};
use super::spool::recover_spool;
use super::store::{RecordingStore, StoreError};
use super::{RecordedPacket, RecordingId, RecordingMeta};

/// A message to the recorder thread.
pub enum Command {
    /// Opens a recording; `at` is the instant its timeline starts.
    Start {
        id: RecordingId,
        meta: RecordingMeta,
        at: Instant,
    },
    /// Packets of any open recordings. The emptied `Vec` comes back through
    /// [`RecorderHandle::recycled`].
    Packets(Vec<RecordedPacket>),
    /// Silence on both channels from `at` (a caller reading out a card number).
    Pause {
        id: RecordingId,
        at: Instant,
    },
    Resume {
        id: RecordingId,
        at: Instant,
    },
    /// Ends a recording: it is finished and shipped.
    Stop {
        id: RecordingId,
    },
    /// Ends every open recording and stops the recorder thread.
    Shutdown,
}

impl std::fmt::Debug for Command {
    // Packet payloads are 320 bytes each; a batch's count is what a log needs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Start { id, meta, .. } => f
                .debug_struct("Start")
                .field("id", id)
                .field("recording", &meta.id)
                .finish(),
            Command::Packets(batch) => write!(f, "Packets({} packets)", batch.len()),
            Command::Pause { id, .. } => f.debug_struct("Pause").field("id", id).finish(),
            Command::Resume { id, .. } => f.debug_struct("Resume").field("id", id).finish(),
            Command::Stop { id } => f.debug_struct("Stop").field("id", id).finish(),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// A command the recorder did not take; it is handed back (with its batch, to reuse).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the recorder's queue is full")]
    Full(Command),
    #[error("the recorder has shut down")]
    Closed(Command),
}

impl SendError {
    pub fn into_command(self) -> Command {
        match self {
            SendError::Full(c) | SendError::Closed(c) => c,
        }
    }
}

/// Why the recorder could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot recover the recordings spool {}: {source}", path.display())]
    Recover { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the recorder's {what}: {source}")]
    Spawn {
        what: &'static str,
        source: io::Error,
    },
}

/// Counters for metrics, as of one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Recordings open now.
    pub active: u64,
    pub started: u64,
    /// Starts refused: invalid or duplicate id, spool not writable.
    pub start_failures: u64,
    /// Recordings finished (header, sync, hash) and queued for the store.
    pub finished: u64,
    pub finish_failures: u64,
    /// Recordings found in the spool at start (repaired or not yet shipped).
    pub recovered: u64,
    pub shipped: u64,
    /// Failed attempts to ship (each is retried).
    pub ship_failures: u64,
    /// Recordings finished or recovered but not yet in the store.
    pub ship_pending: u64,
    pub packets_written: u64,
    pub packets_late: u64,
    pub packets_duplicate: u64,
    pub packets_not_audio: u64,
    /// Packets for a recording that is not open.
    pub packets_unknown: u64,
    /// Commands refused because the queue was full.
    pub queue_full: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) active: AtomicU64,
    pub(super) started: AtomicU64,
    pub(super) start_failures: AtomicU64,
    pub(super) finished: AtomicU64,
    pub(super) finish_failures: AtomicU64,
    pub(super) recovered: AtomicU64,
    pub(super) shipped: AtomicU64,
    pub(super) ship_failures: AtomicU64,
    pub(super) packets_written: AtomicU64,
    pub(super) packets_late: AtomicU64,
    pub(super) packets_duplicate: AtomicU64,
    pub(super) packets_not_audio: AtomicU64,
    pub(super) packets_unknown: AtomicU64,
    pub(super) queue_full: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the threads report to whoever waits on them.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) recorder_running: bool,
    pub(super) shipper_running: bool,
    pub(super) ship_pending: u64,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) counters: Counters,
    pub(super) progress: Mutex<Progress>,
    pub(super) changed: Condvar,
    /// Set when a shutdown's deadline passed: the shipper stops retrying.
    pub(super) abandon: AtomicBool,
}

impl Shared {
    /// Wakes waiters. Under the lock, so a waiter that has just checked its condition
    /// cannot miss the change that follows.
    pub(super) fn notify(&self) {
        let _guard = self.progress.lock();
        self.changed.notify_all();
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut Progress)) {
        let mut guard = self.progress.lock();
        f(&mut guard);
        self.changed.notify_all();
    }

    fn stats(&self) -> RecorderStats {
        self.stats_with(&self.progress.lock())
    }

    fn stats_with(&self, progress: &Progress) -> RecorderStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecorderStats {
            active: get(&c.active),
            started: get(&c.started),
            start_failures: get(&c.start_failures),
            finished: get(&c.finished),
            finish_failures: get(&c.finish_failures),
            recovered: get(&c.recovered),
            shipped: get(&c.shipped),
            ship_failures: get(&c.ship_failures),
            ship_pending: progress.ship_pending,
            packets_written: get(&c.packets_written),
            packets_late: get(&c.packets_late),
            packets_duplicate: get(&c.packets_duplicate),
            packets_not_audio: get(&c.packets_not_audio),
            packets_unknown: get(&c.packets_unknown),
            queue_full: get(&c.queue_full),
        }
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every recording was finished and is in the store.
    pub all_shipped: bool,
    /// Files still in the spool (shipped by the next start).
    pub remaining: Vec<PathBuf>,
    pub stats: RecorderStats,
}

/// The recorder's settings; [`RecorderService::start`] runs it.
#[derive(Debug, Clone)]
pub struct RecorderService {
    pub spool_dir: PathBuf,
    pub store: RecordingStore,
    /// Commands the queue holds before [`RecorderHandle::try_send`] refuses.
    pub queue_capacity: usize,
    pub reorder_window: Duration,
    /// How often aligned audio is written to the spool files.
    pub flush_interval: Duration,
    /// First and longest wait between attempts to ship one recording.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl RecorderService {
    pub fn new(spool_dir: impl Into<PathBuf>, store: RecordingStore) -> RecorderService {
        RecorderService {
            spool_dir: spool_dir.into(),
            store,
            queue_capacity: 4096,
            reorder_window: DEFAULT_REORDER_WINDOW,
            flush_interval: Duration::from_millis(200),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }

    /// Settings from `[media.recordings]`, the S3 credentials from the config or else the
    /// process environment.
    pub fn from_config(config: &RecordingConfig) -> Result<RecorderService, StoreError> {
        Ok(RecorderService::new(
            config.spool_dir.clone(),
            RecordingStore::from_config(&config.store)?,
        ))
    }

    /// Recovers the spool, queues its leftovers for shipping, and starts the recorder and
    /// shipper threads.
    pub fn start(self) -> Result<RecorderHandle, ServiceError> {
        let spool = self.spool_dir.clone();
        fs::create_dir_all(&spool).map_err(|source| ServiceError::Recover {
            path: spool.clone(),
            source,
        })?;
        // Before the recorder thread exists: an open recording looks like a crashed one.
        let leftovers = recover_spool(&spool).map_err(|source| ServiceError::Recover {
            path: spool.clone(),
            source,
        })?;
        // object_store is async. A runtime with a worker of its own keeps the HTTP
        // client's connections served even between uploads, so the same store can be
        // used from other runtimes (the API) too.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tongdai-rec-io")
            .enable_all()
            .build()
            .map_err(|source| ServiceError::Spawn {
                what: "runtime",
                source,
            })?;

        let shared = Arc::new(Shared {
            counters: Counters::default(),
            progress: Mutex::new(Progress {
                recorder_running: true,
                shipper_running: true,
                ship_pending: leftovers.len() as u64,
            }),
            changed: Condvar::new(),
            abandon: AtomicBool::new(false),
        });
        shared
            .counters
            .recovered
            .store(leftovers.len() as u64, Ordering::Relaxed);
        if !leftovers.is_empty() {
            tracing::info!(
                count = leftovers.len(),
                spool = %spool.display(),
                "recordings left in the spool by an earlier run; shipping them"
            );
        }

        let (to_shipper, shipper_rx) = mpsc::channel();
        for recording in leftovers {
            // The receiver is alive: it is right here.
            let _ = to_shipper.send(ToShipper::Ship(recording));
        }
        let shipper = Shipper {
            store: self.store.clone(),
            shared: shared.clone(),
            runtime,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
        };
        let shipper_thread = thread::Builder::new()
            .name("tongdai-rec-ship".to_owned())
            .spawn(move || {
                crate::media::relay::sys::background_priority();
                shipper.run(shipper_rx)
            })
            .map_err(|source| ServiceError::Spawn {
                what: "shipper thread",
                source,
            })?;

        let (commands, commands_rx) = mpsc::sync_channel(self.queue_capacity.max(1));
        let (recycle, recycled) = mpsc::sync_channel(self.queue_capacity.max(1));
        let recorder = Recorder::new(
            spool.clone(),
            self.reorder_window,
            self.flush_interval,
            shared.clone(),
            to_shipper.clone(),
            recycle,
        );
        let recorder_thread = match thread::Builder::new()
            .name("tongdai-recorder".to_owned())
            .spawn(move || {
                // Recording can lag by the reorder window without harm; relaying cannot.
                crate::media::relay::sys::background_priority();
                recorder.run(commands_rx)
            }) {
            Ok(t) => t,
            Err(source) => {
                let _ = to_shipper.send(ToShipper::Stop);
                return Err(ServiceError::Spawn {
                    what: "recorder thread",
                    source,
                });
            }
        };

        Ok(RecorderHandle {
            inner: Arc::new(HandleInner {
                commands,
                recycled: Mutex::new(recycled),
                to_shipper,
                shared,
                spool_dir: spool,
                store: self.store,
                threads: Mutex::new(vec![recorder_thread, shipper_thread]),
            }),
        })
    }
}

/// The relay workers' and the node's way to the recorder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RecorderHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    commands: SyncSender<Command>,
    recycled: Mutex<Receiver<Vec<RecordedPacket>>>,
    to_shipper: Sender<ToShipper>,
    shared: Arc<Shared>,
    spool_dir: PathBuf,
    store: RecordingStore,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl RecorderHandle {
    /// Queues a command without blocking; a full queue hands it back (and is counted).
    pub fn try_send(&self, command: Command) -> Result<(), SendError> {
        self.inner.commands.try_send(command).map_err(|e| match e {
            TrySendError::Full(c) => {
                bump(&self.inner.shared.counters.queue_full);
                SendError::Full(c)
            }
            TrySendError::Disconnected(c) => SendError::Closed(c),
        })
    }

    /// Queues a command, waiting for room. For control commands from threads that may
    /// block (signalling), not for relay workers.
    pub fn send(&self, command: Command) -> Result<(), SendError> {
        self.inner
            .commands
            .send(command)
            .map_err(|e| SendError::Closed(e.0))
    }

    /// An emptied packet batch to fill again, if the recorder has one to give back.
    pub fn recycled(&self) -> Option<Vec<RecordedPacket>> {
        self.inner.recycled.lock().try_recv().ok()
    }

    pub fn stats(&self) -> RecorderStats {
        self.inner.shared.stats()
    }

    pub fn spool_dir(&self) -> &Path {
        &self.inner.spool_dir
    }

    /// The store recordings are shipped to (for listing and fetching them).
    pub fn store(&self) -> &RecordingStore {
        &self.inner.store
    }

    /// Waits until `condition` holds for the stats or `deadline` passes; returns whether
    /// it held.
    pub fn wait_for(&self, deadline: Instant, condition: impl Fn(&RecorderStats) -> bool) -> bool {
        let shared = &self.inner.shared;
        let mut progress = shared.progress.lock();
        loop {
            // Checked under the lock: a change after this is notified under the same lock
            // and so wakes the wait below.
            if condition(&shared.stats_with(&progress)) {
                return true;
            }
            if shared
                .changed
                .wait_until(&mut progress, deadline)
                .timed_out()
            {
                return condition(&shared.stats_with(&progress));
            }
        }
    }

    /// Finishes every open recording and waits until all are in the store or `deadline`
    /// passes. Further commands are refused.
    pub fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        let shared = &self.inner.shared;
        // Blocks only while the queue is full, which the recorder thread empties quickly;
        // an error means it has stopped already.
        let _ = self.inner.commands.send(Command::Shutdown);
        let all_shipped = {
            let mut progress = shared.progress.lock();
            while progress.recorder_running || progress.ship_pending > 0 {
                if shared
                    .changed
                    .wait_until(&mut progress, deadline)
                    .timed_out()
                {
                    break;
                }
            }
            !progress.recorder_running && progress.ship_pending == 0
        };
        if !all_shipped {
            shared.abandon.store(true, Ordering::Relaxed);
            shared.notify();
        }
        let _ = self.inner.to_shipper.send(ToShipper::Stop);
        if all_shipped {
            // Both threads are at their end (nothing left to ship); joining is prompt.
            for thread in self.inner.threads.lock().drain(..) {
                if thread.join().is_err() {
                    tracing::error!("a recorder thread panicked");
                }
            }
        }
        let remaining = spool_files(&self.inner.spool_dir);
        if !remaining.is_empty() {
            tracing::warn!(
                files = remaining.len(),
                spool = %self.inner.spool_dir.display(),
                "recordings not yet in the store at shutdown; the next start ships them"
            );
        }
        ShutdownReport {
            all_shipped,
            remaining,
            stats: shared.stats(),
        }
    }
}

/// The recording files in a spool directory, sorted.
fn spool_files(spool: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(spool)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav" || e == "json"))
        .collect();
    files.sort();
    files
}
