//! The CDR service: a writer thread doing group commit into the spool, and a shipper
//! thread moving closed segments to the store.
//!
//! - [`CdrWriter::write`] only queues (an unbounded channel): the call path never waits
//!   for a disk. The writer thread takes the first queued record, gathers more for up to
//!   `batch_max_ms` or `batch_max_records`, writes them with one `write`, fsyncs once,
//!   and only then acknowledges ([`CdrWriter::write_durable`]) and counts them.
//! - A segment is closed when it reaches `segment_max_bytes` or `segment_max_ms` of age
//!   and handed to the shipper, which files it in the [`CdrStore`] and then deletes it.
//!   A store that fails is retried with backoff; the segment stays in the spool meanwhile.
//! - At start, segments a previous run left (a crash, or a store that was down) are
//!   recovered, torn last lines cut off, and shipped first.
//! - [`CdrService::shutdown`] writes what is queued, closes the segment and ships what
//!   it can; anything the store refuses stays in the spool for the next start.
//! - A batch the spool refuses (disk full) is kept in memory and retried every second;
//!   `write_durable` callers get the error at once. At shutdown, records that still
//!   cannot be written are logged whole, as the last place they can go.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::CdrConfig;
use crate::media::recording::is_filename_safe;

use super::metrics;
use super::record::Cdr;
use super::spool::{self, Segment, sync_dir};
use super::store::CdrStore;

/// Wait before retrying a spool write or a shipment that failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest wait between shipment retries.
const MAX_SHIP_BACKOFF: Duration = Duration::from_secs(30);

type Ack = oneshot::Sender<io::Result<()>>;

enum Msg {
    Record(Box<Cdr>, Option<Ack>),
    /// Close the current segment and answer once everything before is shipped.
    Ship(Ack),
    Shutdown,
}

enum ShipMsg {
    Segment(PathBuf),
    Barrier(Ack),
    Shutdown,
}

/// Counters of the service, for tests and diagnostics.
#[derive(Debug, Default)]
struct Counters {
    records_written: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    write_errors: AtomicU64,
    segments_closed: AtomicU64,
    segments_recovered: AtomicU64,
    segments_shipped: AtomicU64,
    records_shipped: AtomicU64,
    torn_lines: AtomicU64,
    unparsed_lines: AtomicU64,
    ship_errors: AtomicU64,
    spool_bytes: AtomicU64,
}

/// A snapshot of the service's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrStats {
    /// Records made durable in the spool.
    pub records_written: u64,
    /// Batches written (one write and one fsync each when all goes well).
    pub batches: u64,
    /// fsyncs of spool segments.
    pub fsyncs: u64,
    /// Batches the spool refused (retried).
    pub write_errors: u64,
    pub segments_closed: u64,
    /// Segments found in the spool at start.
    pub segments_recovered: u64,
    pub segments_shipped: u64,
    pub records_shipped: u64,
    /// Torn last lines cut off (at recovery or shipping).
    pub torn_lines: u64,
    /// Lines that were not CDRs, kept in the store's `_unparsed/`.
    pub unparsed_lines: u64,
    pub ship_errors: u64,
    /// Bytes in the spool not yet shipped.
    pub spool_bytes: u64,
}

impl Counters {
    fn snapshot(&self) -> CdrStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CdrStats {
            records_written: get(&self.records_written),
            batches: get(&self.batches),
            fsyncs: get(&self.fsyncs),
            write_errors: get(&self.write_errors),
            segments_closed: get(&self.segments_closed),
            segments_recovered: get(&self.segments_recovered),
            segments_shipped: get(&self.segments_shipped),
            records_shipped: get(&self.records_shipped),
            torn_lines: get(&self.torn_lines),
            unparsed_lines: get(&self.unparsed_lines),
            ship_errors: get(&self.ship_errors),
            spool_bytes: get(&self.spool_bytes),
        }
    }

    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    fn spool_grew(&self, n: u64) {
        let now = self.spool_bytes.fetch_add(n, Ordering::Relaxed) + n;
        metrics::spool_bytes(now);
    }

    fn spool_shrank(&self, n: u64) {
        let before = self
            .spool_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            })
            .unwrap_or(0);
        metrics::spool_bytes(before.saturating_sub(n));
    }
}

/// Queues CDRs for the spool. Cheap to clone; one per call path is fine.
#[derive(Debug, Clone)]
pub struct CdrWriter {
    tx: mpsc::Sender<Msg>,
}

impl CdrWriter {
    /// Queues the record; never blocks the call path. The record is durable once the
    /// batch's fsync is done (use [`CdrWriter::write_durable`] to wait for that).
    pub fn write(&self, cdr: Cdr) {
        if let Err(mpsc::SendError(Msg::Record(cdr, _))) =
            self.tx.send(Msg::Record(Box::new(cdr), None))
        {
            lost(&cdr, "the CDR service has stopped");
        }
    }

    /// Queues the record and waits until it is fsynced in the spool.
    pub async fn write_durable(&self, cdr: Cdr) -> io::Result<()> {
        let (ack, done) = oneshot::channel();
        if let Err(mpsc::SendError(Msg::Record(cdr, _))) =
            self.tx.send(Msg::Record(Box::new(cdr), Some(ack)))
        {
            lost(&cdr, "the CDR service has stopped");
            return Err(stopped());
        }
        done.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Closes the current spool segment and waits until everything written before this
    /// call is in the store (or a shipment failed, with its error).
    pub async fn ship_now(&self) -> io::Result<()> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Msg::Ship(ack)).map_err(|_| stopped())?;
        done.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> io::Error {
    io::Error::other("the CDR service has stopped")
}

/// The last resort for a record that cannot reach the spool: the log.
fn lost(cdr: &Cdr, why: &str) {
    let json = serde_json::to_string(cdr).unwrap_or_default();
    tracing::error!(cdr = %json, "CDR not written: {why}");
}

/// The running service: its threads and the store it ships to.
#[derive(Debug)]
pub struct CdrService {
    tx: mpsc::Sender<Msg>,
    writer: Option<JoinHandle<()>>,
    shipper: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    store: CdrStore,
}

impl CdrService {
    /// Creates the spool and store directories, recovers what a previous run left in the
    /// spool (torn last lines cut off, counted and logged) and starts the writer and
    /// shipper threads; recovered segments are shipped first.
    pub fn start(config: CdrConfig, node_name: &str) -> io::Result<(CdrService, CdrWriter)> {
        if !is_filename_safe(node_name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "node name {node_name:?} cannot name CDR files: use 1 to 128 of A-Z a-z 0-9 . _ -"
                ),
            ));
        }
        let spool_dir = PathBuf::from(&config.spool_dir);
        let store = CdrStore::local(&config.dir);
        let dir_err = |what: &str, dir: &Path| {
            let what = what.to_owned();
            let dir = dir.display().to_string();
            move |e: io::Error| io::Error::new(e.kind(), format!("cannot create {what} {dir}: {e}"))
        };
        std::fs::create_dir_all(&spool_dir).map_err(dir_err("the CDR spool", &spool_dir))?;
        let store_dir = PathBuf::from(&config.dir);
        std::fs::create_dir_all(&store_dir).map_err(dir_err("the CDR store", &store_dir))?;

        let lock = Arc::new(lock_spool(&spool_dir)?);
        let counters = Arc::new(Counters::default());
        let recovered = spool::recover(&spool_dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot recover the CDR spool {}: {e}", spool_dir.display()),
            )
        })?;
        let mut initial = Vec::with_capacity(recovered.len());
        for segment in recovered {
            if segment.torn_bytes > 0 {
                tracing::warn!(
                    segment = %segment.path.display(),
                    bytes = segment.torn_bytes,
                    "cut off a torn last line of a CDR spool segment (a crash during a write; \
                     those records were never acknowledged)"
                );
                Counters::add(&counters.torn_lines, 1);
                metrics::torn_lines(1);
            }
            Counters::add(&counters.segments_recovered, 1);
            counters.spool_grew(segment.bytes);
            initial.push(segment.path);
        }
        if !initial.is_empty() {
            tracing::info!(
                segments = initial.len(),
                "CDR spool segments from a previous run will be shipped"
            );
        }

        let (tx, rx) = mpsc::channel();
        let (ship_tx, ship_rx) = mpsc::channel();
        let shipper = {
            let shipper = Shipper {
                store: store.clone(),
                spool_dir: spool_dir.clone(),
                node: node_name.to_owned(),
                counters: Arc::clone(&counters),
                queue: initial.into(),
                _lock: Arc::clone(&lock),
            };
            std::thread::Builder::new()
                .name("cdr-shipper".into())
                .spawn(move || shipper.run(&ship_rx))?
        };
        let writer = {
            let writer = Writer {
                spool_dir,
                batch_max_wait: config.batch_max_wait(),
                batch_max_records: usize::try_from(config.batch_max_records.max(1))
                    .unwrap_or(usize::MAX),
                segment_max_bytes: config.segment_max_bytes,
                segment_max_age: config.segment_max_age(),
                counters: Arc::clone(&counters),
                ship_tx,
                segment: None,
                failed: Vec::new(),
                retry_at: None,
                _lock: lock,
            };
            std::thread::Builder::new()
                .name("cdr-writer".into())
                .spawn(move || writer.run(&rx))?
        };
        let service = CdrService {
            tx: tx.clone(),
            writer: Some(writer),
            shipper: Some(shipper),
            counters,
            store,
        };
        Ok((service, CdrWriter { tx }))
    }

    /// The store this service ships to (for queries from the same process).
    pub fn store(&self) -> &CdrStore {
        &self.store
    }

    pub fn stats(&self) -> CdrStats {
        self.counters.snapshot()
    }

    /// Writes everything queued, closes the segment, ships what the store takes and
    /// stops the threads. What is not shipped stays in the spool for the next start.
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        let threads = [self.writer.take(), self.shipper.take()];
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads.into_iter().flatten() {
                if thread.join().is_err() {
                    tracing::error!("a CDR thread panicked");
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::error!("waiting for the CDR threads failed");
        }
        let stats = self.counters.snapshot();
        if stats.spool_bytes > 0 {
            tracing::warn!(
                bytes = stats.spool_bytes,
                "CDRs left in the spool; they are shipped at the next start"
            );
        }
    }
}

impl Drop for CdrService {
    fn drop(&mut self) {
        // Dropped without `shutdown`: the threads still flush and stop by themselves.
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// Takes `<spool>/.lock`: two processes appending to and shipping from one spool would
/// ship each other's open segments.
fn lock_spool(spool_dir: &Path) -> io::Result<std::fs::File> {
    let path = spool_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "the CDR spool {} is in use by another process; give each node its own \
                 cdr.spool_dir",
                spool_dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// A record waiting for the spool: its line and who waits for it.
struct Pending {
    cdr: Box<Cdr>,
    line: Vec<u8>,
    ack: Option<Ack>,
}

struct Writer {
    spool_dir: PathBuf,
    batch_max_wait: Duration,
    batch_max_records: usize,
    segment_max_bytes: u64,
    segment_max_age: Duration,
    counters: Arc<Counters>,
    ship_tx: mpsc::Sender<ShipMsg>,
    segment: Option<Segment>,
    /// A batch the spool refused, retried at `retry_at`.
    failed: Vec<Pending>,
    retry_at: Option<Instant>,
    /// Held until both threads are done with the spool.
    _lock: Arc<std::fs::File>,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        let mut stopping = false;
        while !stopping {
            let wake = [
                self.segment
                    .as_ref()
                    .map(|s| s.opened + self.segment_max_age),
                self.retry_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let first = match wake {
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let mut batch = Vec::new();
            let mut ship_waiters = Vec::new();
            match first {
                Ok(msg) => stopping = self.take(msg, &mut batch, &mut ship_waiters),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            if !batch.is_empty() && !stopping {
                stopping = self.gather(rx, &mut batch, &mut ship_waiters);
            }
            if stopping {
                // Whatever is still queued goes into this last batch.
                while let Ok(msg) = rx.try_recv() {
                    self.take(msg, &mut batch, &mut ship_waiters);
                }
            }
            let retry_due = self.retry_at.is_none_or(|at| Instant::now() >= at);
            if !self.failed.is_empty() && (retry_due || stopping) {
                let mut retry = std::mem::take(&mut self.failed);
                retry.append(&mut batch);
                batch = retry;
            } else if !self.failed.is_empty() {
                // Keep order: new records wait behind the failed batch.
                self.failed.append(&mut batch);
            }
            if !batch.is_empty() {
                self.write_batch(batch);
            }
            let roll = self.segment.as_ref().is_some_and(|s| {
                s.bytes >= self.segment_max_bytes
                    || s.opened.elapsed() >= self.segment_max_age
                    || !ship_waiters.is_empty()
                    || stopping
            });
            if roll {
                self.close_segment();
            }
            for ack in ship_waiters {
                if let Err(mpsc::SendError(ShipMsg::Barrier(ack))) =
                    self.ship_tx.send(ShipMsg::Barrier(ack))
                {
                    let _ = ack.send(Err(stopped()));
                }
            }
        }
        if !self.failed.is_empty() {
            for p in &self.failed {
                lost(&p.cdr, "the spool refused it until shutdown");
            }
        }
        let _ = self.ship_tx.send(ShipMsg::Shutdown);
    }

    /// Files one message; true when it asks to stop.
    fn take(&self, msg: Msg, batch: &mut Vec<Pending>, ship_waiters: &mut Vec<Ack>) -> bool {
        match msg {
            Msg::Record(cdr, ack) => {
                match serde_json::to_vec(&cdr) {
                    Ok(mut line) => {
                        line.push(b'\n');
                        batch.push(Pending { cdr, line, ack });
                    }
                    Err(e) => {
                        // Only non-finite floats can fail; refuse rather than write junk.
                        lost(&cdr, &format!("it cannot be encoded: {e}"));
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                        }
                    }
                }
                false
            }
            Msg::Ship(ack) => {
                ship_waiters.push(ack);
                false
            }
            Msg::Shutdown => true,
        }
    }

    /// Gathers more records for up to `batch_max_wait` or `batch_max_records`; true when
    /// a shutdown arrived meanwhile.
    fn gather(
        &self,
        rx: &mpsc::Receiver<Msg>,
        batch: &mut Vec<Pending>,
        ship_waiters: &mut Vec<Ack>,
    ) -> bool {
        let deadline = Instant::now() + self.batch_max_wait;
        while batch.len() < self.batch_max_records {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = if left.is_zero() {
                match rx.try_recv() {
                    Ok(msg) => msg,
                    Err(_) => return false,
                }
            } else {
                match rx.recv_timeout(left) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => return false,
                    Err(RecvTimeoutError::Disconnected) => return true,
                }
            };
            if self.take(msg, batch, ship_waiters) {
                return true;
            }
        }
        false
    }

    /// One write and one fsync for the whole batch, then the acknowledgements.
    fn write_batch(&mut self, mut batch: Vec<Pending>) {
        let mut buf = Vec::with_capacity(batch.iter().map(|p| p.line.len()).sum());
        for p in &batch {
            buf.extend_from_slice(&p.line);
        }
        let records = batch.len() as u64;
        let counters = Arc::clone(&self.counters);
        let result = match self.open_segment() {
            Ok(segment) => {
                Counters::add(&counters.fsyncs, 1);
                segment.append(&buf, records).map_err(|e| {
                    if !e.segment_usable {
                        tracing::error!(
                            segment = %segment.path.display(),
                            "a failed CDR write could not be undone; closing the segment \
                             (its torn tail is dropped when shipped)"
                        );
                    }
                    (e.error, e.segment_usable)
                })
            }
            Err(e) => Err((e, true)),
        };
        match result {
            Ok(()) => {
                Counters::add(&self.counters.batches, 1);
                Counters::add(&self.counters.records_written, records);
                self.counters.spool_grew(buf.len() as u64);
                self.retry_at = None;
                for p in batch {
                    metrics::cdr_written(&p.cdr);
                    if let Some(ack) = p.ack {
                        let _ = ack.send(Ok(()));
                    }
                }
            }
            Err((error, segment_usable)) => {
                Counters::add(&self.counters.write_errors, 1);
                tracing::error!(
                    records,
                    "cannot write CDRs to the spool {}: {error}; retrying in {RETRY_AFTER:?}",
                    self.spool_dir.display()
                );
                if !segment_usable {
                    self.close_segment();
                }
                for p in &mut batch {
                    if let Some(ack) = p.ack.take() {
                        let _ = ack.send(Err(io::Error::new(
                            error.kind(),
                            format!("the CDR spool refused the write ({error}); it is retried"),
                        )));
                    }
                }
                self.failed = batch;
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
    }

    fn open_segment(&mut self) -> io::Result<&mut Segment> {
        if self.segment.is_none() {
            self.segment = Some(Segment::create(&self.spool_dir)?);
        }
        Ok(self.segment.as_mut().expect("opened above"))
    }

    /// Hands the segment to the shipper (an empty one is simply removed).
    fn close_segment(&mut self) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        if segment.bytes == 0 {
            let _ = std::fs::remove_file(&segment.path);
            return;
        }
        Counters::add(&self.counters.segments_closed, 1);
        let path = segment.path.clone();
        drop(segment);
        // The shipper outlives the writer; a send error means it died (panicked), and
        // the segment waits in the spool for the next start.
        let _ = self.ship_tx.send(ShipMsg::Segment(path));
    }
}

struct Shipper {
    store: CdrStore,
    spool_dir: PathBuf,
    node: String,
    counters: Arc<Counters>,
    queue: VecDeque<PathBuf>,
    _lock: Arc<std::fs::File>,
}

impl Shipper {
    fn run(mut self, rx: &mpsc::Receiver<ShipMsg>) {
        let mut backoff = RETRY_AFTER;
        loop {
            let msg = if self.ship_queued() {
                backoff = RETRY_AFTER;
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_SHIP_BACKOFF);
                rx.recv_timeout(wait)
            };
            match msg {
                Ok(ShipMsg::Segment(path)) => self.queue.push_back(path),
                Ok(ShipMsg::Barrier(ack)) => {
                    let result = if self.ship_queued() {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!(
                            "{} CDR spool segment(s) could not be shipped to {}; see the log",
                            self.queue.len(),
                            self.store_name()
                        )))
                    };
                    let _ = ack.send(result);
                }
                Ok(ShipMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    // Segments the writer sent before stopping are queued already.
                    while let Ok(ShipMsg::Segment(path)) = rx.try_recv() {
                        self.queue.push_back(path);
                    }
                    self.ship_queued();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn store_name(&self) -> String {
        let CdrStore::Local { dir } = &self.store;
        dir.display().to_string()
    }

    /// Ships queued segments in order; true when the queue is empty, false at the first
    /// failure (logged, counted, retried later).
    fn ship_queued(&mut self) -> bool {
        while let Some(path) = self.queue.front() {
            match self.ship_one(path) {
                Ok(()) => {
                    self.queue.pop_front();
                }
                Err(e) => {
                    Counters::add(&self.counters.ship_errors, 1);
                    metrics::ship_error();
                    tracing::error!(
                        segment = %path.display(),
                        store = %self.store_name(),
                        "cannot ship CDRs to the store: {e}; they stay in the spool and are retried"
                    );
                    return false;
                }
            }
        }
        true
    }

    fn ship_one(&self, path: &Path) -> io::Result<()> {
        let data = match std::fs::read(path) {
            Ok(data) => data,
            // Gone already (shipped before a crash, after the store write).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let segment = spool::segment_id(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a spool segment", path.display()),
            )
        })?;
        let report = self.store.ship_segment(&self.node, segment, &data)?;
        std::fs::remove_file(path)?;
        sync_dir(&self.spool_dir)?;
        Counters::add(&self.counters.segments_shipped, 1);
        Counters::add(&self.counters.records_shipped, report.records);
        self.counters.spool_shrank(data.len() as u64);
        if report.torn > 0 {
            Counters::add(&self.counters.torn_lines, report.torn);
            metrics::torn_lines(report.torn);
        }
        if report.unparsed > 0 {
            Counters::add(&self.counters.unparsed_lines, report.unparsed);
            tracing::warn!(
                segment = %path.display(),
                lines = report.unparsed,
                "CDR spool lines that are not CDRs were kept in the store's _unparsed folder"
            );
        }
        Ok(())
    }
}
