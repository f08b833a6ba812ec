//! The CDR store: where records live once they leave a node's spool, per tenant and day.
//!
//! Layout: `<dir>/<tenant>/<YYYY-MM-DD>/<node>-<segment>.jsonl`, the day being the UTC
//! day of the call's setup, one file per spool segment and tenant and day. Files are
//! written to a temporary name, fsynced and renamed into place, so a reader never sees
//! half a file; shipping a segment again (after a crash between the store write and the
//! spool delete) rewrites the same names with the same content. Lines that are not a
//! CDR, or a CDR whose tenant cannot be a directory name, go to `<dir>/_unparsed/` so
//! nothing is dropped silently.
//!
//! Only a local (or mounted) directory is supported today; the type is an enum so an
//! object-store variant (S3, as for recordings) can be added beside it.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::media::recording::is_filename_safe;
use crate::media::recording::store::utc_day;

use super::record::Cdr;
use super::spool::{SEGMENT_EXT, sync_dir};

/// Where lines that could not be filed under a tenant go.
pub const UNPARSED_DIR: &str = "_unparsed";

/// The largest `until` a day folder is computed for (9999-12-31T23:59:59.999Z); later
/// bounds mean "no upper bound".
const LAST_MS: u64 = 253_402_300_799_999;

/// Where CDRs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrStore {
    /// A local (or mounted) directory.
    Local { dir: PathBuf },
}

/// What shipping one segment did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipReport {
    /// Records filed under their tenant.
    pub records: u64,
    /// Store files written.
    pub files: u64,
    /// Lines kept in `_unparsed/` instead.
    pub unparsed: u64,
    /// A last line without its newline (a torn write), dropped.
    pub torn: u64,
}

impl CdrStore {
    pub fn local(dir: impl Into<PathBuf>) -> CdrStore {
        CdrStore::Local { dir: dir.into() }
    }

    /// Files the records of one spool segment (its bytes, whole lines) under their
    /// tenants and days. Durable when it returns: the caller may then delete the segment.
    pub fn ship_segment(&self, node: &str, segment: &str, data: &[u8]) -> io::Result<ShipReport> {
        let CdrStore::Local { dir } = self;
        let mut report = ShipReport::default();
        // (tenant, day) -> lines; BTreeMap so files are written in a stable order.
        let mut files: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        let mut unparsed = Vec::new();
        let mut lines = data.split(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                // After the last newline: empty for a whole file, else a torn line.
                if !line.is_empty() {
                    report.torn += 1;
                }
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Cdr>(line) {
                Ok(cdr) if is_filename_safe(&cdr.tenant) => {
                    let key = (cdr.tenant.clone(), utc_day(cdr.setup_ms));
                    let buf = files.entry(key).or_default();
                    buf.extend_from_slice(line);
                    buf.push(b'\n');
                    report.records += 1;
                }
                _ => {
                    unparsed.extend_from_slice(line);
                    unparsed.push(b'\n');
                    report.unparsed += 1;
                }
            }
        }
        let name = format!("{node}-{segment}.{SEGMENT_EXT}");
        let mut created_dirs = false;
        for ((tenant, day), bytes) in &files {
            let folder = dir.join(tenant).join(day);
            created_dirs |= ensure_dir(&folder)?;
            write_atomically(&folder, &name, bytes)?;
            report.files += 1;
        }
        if !unparsed.is_empty() {
            let folder = dir.join(UNPARSED_DIR);
            created_dirs |= ensure_dir(&folder)?;
            write_atomically(&folder, &name, &unparsed)?;
        }
        if created_dirs {
            // New tenant and day folders: their own entries must be durable too.
            sync_dir(dir)?;
            for tenant in files.keys().map(|(t, _)| t).collect::<HashSet<_>>() {
                sync_dir(&dir.join(tenant))?;
            }
        }
        Ok(report)
    }

    /// A tenant's CDRs whose setup time is in `since_ms..until_ms`, newest first, at
    /// most `limit`. Reads day folders newest first and stops once a whole day has
    /// brought the count to `limit` (older days hold only older calls).
    pub fn list(
        &self,
        tenant: &str,
        since_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> io::Result<Vec<Cdr>> {
        let CdrStore::Local { dir } = self;
        if !is_filename_safe(tenant) || limit == 0 || since_ms >= until_ms {
            return Ok(Vec::new());
        }
        let first_day = utc_day(since_ms);
        let last_day = (until_ms <= LAST_MS).then(|| utc_day(until_ms - 1));
        let mut days = Vec::new();
        let tenant_dir = dir.join(tenant);
        let entries = match fs::read_dir(&tenant_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            if let Some(day) = name.to_str().filter(|d| is_day(d))
                && *day >= *first_day
                && last_day.as_deref().is_none_or(|last| day <= last)
            {
                days.push(day.to_owned());
            }
        }
        days.sort_unstable_by(|a, b| b.cmp(a));

        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for day in days {
            let folder = tenant_dir.join(&day);
            for path in store_files(&folder)? {
                let data = match fs::read(&path) {
                    Ok(data) => data,
                    // Deleted meanwhile (retention): nothing to read.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for (n, line) in data.split(|&b| b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Cdr>(line) {
                        Ok(cdr)
                            if cdr.tenant == tenant
                                && (since_ms..until_ms).contains(&cdr.setup_ms)
                                // A segment shipped twice under two names (it cannot
                                // happen today, but a copy made by hand can).
                                && seen.insert(cdr.id.clone()) =>
                        {
                            found.push(cdr);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(
                            file = %path.display(),
                            line = n + 1,
                            "skipping a line that is not a CDR: {e}"
                        ),
                    }
                }
            }
            if found.len() >= limit {
                break;
            }
        }
        found.sort_unstable_by(|a, b| (b.setup_ms, &b.id).cmp(&(a.setup_ms, &a.id)));
        found.truncate(limit);
        Ok(found)
    }
}

/// The `.jsonl` files of a day folder (temporary and hidden files left out).
fn store_files(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(folder)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with('.') && name.ends_with(".jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Creates `dir` (and parents); true when it did not exist.
fn ensure_dir(dir: &Path) -> io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(true)
}

/// Writes `<folder>/<name>` through `.<name>.tmp`: written, fsynced, renamed, and the
/// folder fsynced.
fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = folder.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, folder.join(name))?;
    sync_dir(folder)
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
