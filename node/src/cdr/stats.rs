//! The CDR service's counters: shared by its threads, read as [`CdrStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::metrics;

/// Counters of the service, for tests and diagnostics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub records_written: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub write_errors: AtomicU64,
    pub segments_closed: AtomicU64,
    pub segments_recovered: AtomicU64,
    pub segments_shipped: AtomicU64,
    pub records_shipped: AtomicU64,
    pub torn_lines: AtomicU64,
    pub unparsed_lines: AtomicU64,
    pub ship_errors: AtomicU64,
    pub spool_bytes: AtomicU64,
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
    pub fn snapshot(&self) -> CdrStats {
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

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn spool_grew(&self, n: u64) {
        let now = self.spool_bytes.fetch_add(n, Ordering::Relaxed) + n;
        metrics::spool_bytes(now);
    }

    pub fn spool_shrank(&self, n: u64) {
        let before = self
            .spool_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            })
            .unwrap_or(0);
        metrics::spool_bytes(before.saturating_sub(n));
    }
}
