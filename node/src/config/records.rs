//! `[cdr]` (where a node spools and ships its call detail records) and `[records]` (what a
//! replica's admin API reads CDRs and recordings from).
//!
//! ```toml
//! [cdr]
//! spool_dir = "<replica.data_dir>/spool/<node.name>/cdrs"  # local disk, fsynced before a CDR counts as written
//! dir = "<replica.data_dir>/cdrs"              # the store: <dir>/<tenant>/<YYYY-MM-DD>/<node>-<segment>.jsonl
//! batch_max_ms = 5                 # group commit: wait at most this long for more records
//! batch_max_records = 512          # ... or until this many are queued; then one write + fsync
//! segment_max_bytes = 4194304      # roll the spool segment (and ship it) past this size
//! segment_max_ms = 1000            # ... or when it is this old and not empty
//!
//! [records]
//! cdr_dir = ""          # empty: cdr.dir (the same process under `tongdai up`); "off": not served
//! recordings_dir = ""   # empty: media.recordings_dir (<replica.data_dir>/recordings); "off": not served
//! ```
//!
//! Paths left unset follow `replica.data_dir`, so one data directory holds a process's
//! whole state (and tests that move it move everything).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Origin};
use super::{Config, ReplicaConfig};

/// `[cdr]`: a node's CDR spool and store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// Local directory of the spool segments (JSON lines, fsynced per batch).
    pub spool_dir: String,
    /// The CDR store: a local (or mounted) directory.
    pub dir: String,
    /// Longest wait for more records before a batch is written and fsynced.
    pub batch_max_ms: u64,
    /// Most records in one batch (one write, one fsync).
    pub batch_max_records: u64,
    /// A spool segment this large is closed and shipped.
    pub segment_max_bytes: u64,
    /// A non-empty spool segment this old is closed and shipped.
    pub segment_max_ms: u64,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig::under(&ReplicaConfig::default().data_dir)
    }
}

impl CdrConfig {
    /// The defaults with both directories under `data_dir`.
    pub fn under(data_dir: &str) -> CdrConfig {
        CdrConfig {
            spool_dir: format!("{data_dir}/spool/cdrs"),
            dir: format!("{data_dir}/cdrs"),
            batch_max_ms: 5,
            batch_max_records: 512,
            segment_max_bytes: 4 << 20,
            segment_max_ms: 1000,
        }
    }

    pub fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_ms)
    }

    pub fn segment_max_age(&self) -> Duration {
        Duration::from_millis(self.segment_max_ms)
    }
}

/// `[records]`: the CDRs and recordings a replica's API serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// The CDR store to read; empty: `cdr.dir`; `off`: CDRs are not served.
    pub cdr_dir: String,
    /// The recordings store (a local directory) to read; empty:
    /// `<replica.data_dir>/recordings`; `off`: recordings are not served.
    pub recordings_dir: String,
}

impl RecordsConfig {
    /// The CDR store directory, `None` when switched off.
    pub fn cdr_dir(&self, cdr: &CdrConfig) -> Option<PathBuf> {
        match self.cdr_dir.trim() {
            "" => Some(PathBuf::from(&cdr.dir)),
            s if s.eq_ignore_ascii_case("off") => None,
            s => Some(PathBuf::from(s)),
        }
    }

    /// The recordings store directory, `None` when switched off.
    pub fn recordings_dir(&self, replica: &ReplicaConfig) -> Option<PathBuf> {
        match self.recordings_dir.trim() {
            "" => Some(PathBuf::from(format!("{}/recordings", replica.data_dir))),
            s if s.eq_ignore_ascii_case("off") => None,
            s => Some(PathBuf::from(s)),
        }
    }
}

/// Puts the `[cdr]` directories the operator did not set under `replica.data_dir`.
pub(super) fn derive_defaults(config: &mut Config, set: &BTreeMap<&str, Origin>) {
    let under = CdrConfig::under(&config.replica.data_dir);
    // Spools are one process's own (locked): per node name, so nodes sharing a data
    // directory do not collide. Stores are shared (files carry the node's name).
    let node = config.node.name.replace(['/', '\\'], "_");
    if !set.contains_key("cdr.spool_dir") {
        config.cdr.spool_dir = format!("{}/spool/{node}/cdrs", config.replica.data_dir);
    }
    if !set.contains_key("cdr.dir") {
        config.cdr.dir = under.dir;
    }
    // Recordings: spooled and stored under the data dir too, and served from where the
    // media engine stores them.
    let data = &config.replica.data_dir;
    if !set.contains_key("media.spool_dir") {
        config.media.spool_dir = format!("{data}/spool/{node}/recordings");
    }
    if !set.contains_key("media.recordings_dir") {
        config.media.recordings_dir = format!("{data}/recordings");
    }
    if !set.contains_key("records.recordings_dir") && !config.media.recordings_dir.trim().is_empty()
    {
        config.records.recordings_dir = config.media.recordings_dir.clone();
    }
}

/// The checks between keys of `[cdr]`.
pub(super) fn validate(
    config: &Config,
    origin: &dyn Fn(&'static str) -> Origin,
    errors: &mut Vec<ConfigError>,
) {
    let cdr = &config.cdr;
    for (key, value) in [("cdr.spool_dir", &cdr.spool_dir), ("cdr.dir", &cdr.dir)] {
        if value.trim().is_empty() {
            errors.push(ConfigError::InvalidValue {
                origin: origin(key),
                value: format!("{value:?}"),
                problem: "is empty".to_owned(),
                expected: "a directory".to_owned(),
            });
        }
    }
    if !cdr.spool_dir.trim().is_empty()
        && Path::new(cdr.spool_dir.trim()) == Path::new(cdr.dir.trim())
    {
        errors.push(ConfigError::Conflict {
            left: origin("cdr.spool_dir"),
            left_value: cdr.spool_dir.clone(),
            relation: "different from",
            right: origin("cdr.dir"),
            right_value: cdr.dir.clone(),
        });
    }
}
