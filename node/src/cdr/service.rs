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

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::CdrConfig;
use crate::media::recording::is_filename_safe;

use super::metrics;
use super::record::Cdr;
use super::shipper::{ShipMsg, Shipper};
use super::spool::{self, Segment};
use super::stats::{CdrStats, Counters};
use super::store::CdrStore;

/// Wait before retrying a spool write or a shipment that failed.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Answers a durable write or a shipping barrier.
pub(super) type Ack = oneshot::Sender<io::Result<()>>;

enum Msg {
    Record(Box<Cdr>, Option<Ack>),
    /// Close the current segment and answer once everything before is shipped.
    Ship(Ack),
    Shutdown,
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

pub(super) fn stopped() -> io::Error {
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
