//! Call detail records: one [`Cdr`] per call, written durably and never lost on restart.
//!
//! From call to query:
//! - The B2BUA fills a [`Cdr`] as the call progresses, closes it with [`Cdr::finish`]
//!   (durations, rounding) and [`Cdr::rate`] (1900 tariff bands), and hands it to a
//!   [`CdrWriter`], which only queues it.
//! - [`CdrService`]'s writer thread does group commit into the spool ([`spool`]):
//!   JSON-lines segments, one write and one fsync per batch; a torn last line left by a
//!   crash is cut off at the next start.
//! - Closed segments (by size or age, 1 s by default) are shipped to the [`CdrStore`]
//!   (`<dir>/<tenant>/<YYYY-MM-DD>/<node>-<segment>.jsonl`, written atomically) and only
//!   then deleted from the spool.
//! - [`CdrStore::list`] answers queries; [`NodeRecords`] serves it (and the recordings
//!   store) through the control plane's admin API.
//! - [`metrics`]: per-tenant attempts, answers, billable seconds (ASR, ACD), live calls.

pub mod metrics;
pub mod record;
mod records;
mod service;
mod shipper;
pub mod spool;
mod stats;
pub mod store;

#[cfg(test)]
mod tests;

pub use crate::config::CdrConfig;
pub use record::{
    Cdr, CdrLeg, Direction, Disposition, HangupBy, Quality, QueueEvent, QueueVisit, Rating,
    StreamQuality, now_ms,
};
pub use records::NodeRecords;
pub use service::{CdrService, CdrWriter};
pub use stats::CdrStats;
pub use store::{CdrStore, ShipReport};
