//! The shipper thread: moves closed spool segments into the [`CdrStore`], in order,
//! deleting each from the spool only once the store has it; a failing store is retried
//! with backoff and the segment waits in the spool.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::metrics;
use super::service::{Ack, RETRY_AFTER};
use super::spool::{self, sync_dir};
use super::stats::Counters;
use super::store::CdrStore;

/// Longest wait between shipment retries.
const MAX_SHIP_BACKOFF: Duration = Duration::from_secs(30);

/// What the writer tells the shipper.
pub(super) enum ShipMsg {
    Segment(PathBuf),
    Barrier(Ack),
    Shutdown,
}

pub(super) struct Shipper {
    pub store: CdrStore,
    pub spool_dir: PathBuf,
    pub node: String,
    pub counters: Arc<Counters>,
    pub queue: VecDeque<PathBuf>,
    /// Held until this thread is done with the spool.
    pub _lock: Arc<std::fs::File>,
}

impl Shipper {
    pub fn run(mut self, rx: &mpsc::Receiver<ShipMsg>) {
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
