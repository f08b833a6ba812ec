//! Spool segments: append-only JSON-lines files in the spool directory, one record per
//! line, each batch written with one `write` and made durable with one `fdatasync`.
//!
//! A segment is named `<unix_ms>-<random hex>.jsonl` after its creation, so names sort by
//! age and never repeat across restarts. The only damage a crash can do is a torn last
//! line (a batch partly written when the power went); [`recover`] cuts it off. Records on
//! a torn line were never acknowledged as durable, so nothing acknowledged is lost.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The extension of spool segments (and of store files).
pub const SEGMENT_EXT: &str = "jsonl";

/// The segment being written.
#[derive(Debug)]
pub struct Segment {
    /// `<unix_ms>-<random hex>`: also names the shipped files.
    pub id: String,
    pub path: PathBuf,
    file: File,
    /// Bytes durably written.
    pub bytes: u64,
    /// Records durably written.
    pub records: u64,
    /// When it was created (the age limit counts from here).
    pub opened: Instant,
}

impl Segment {
    /// Creates a new, empty segment in `spool` and makes its directory entry durable.
    pub fn create(spool: &Path) -> io::Result<Segment> {
        loop {
            let id = format!(
                "{:013}-{:08x}",
                super::record::now_ms(),
                rand::random::<u32>()
            );
            let path = spool.join(format!("{id}.{SEGMENT_EXT}"));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    sync_dir(spool)?;
                    return Ok(Segment {
                        id,
                        path,
                        file,
                        bytes: 0,
                        records: 0,
                        opened: Instant::now(),
                    });
                }
                // Same millisecond and same random suffix: draw again.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends `lines` (whole lines, each ending in `\n`) and fsyncs once. On failure the
    /// file is cut back to its last durable length, so a retry does not duplicate lines;
    /// if even that fails the error says so and the segment must not be written again.
    pub fn append(&mut self, lines: &[u8], records: u64) -> Result<(), AppendError> {
        let written = self
            .file
            .write_all(lines)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.bytes += lines.len() as u64;
                self.records += records;
                Ok(())
            }
            Err(error) => {
                let restored = self
                    .file
                    .set_len(self.bytes)
                    .and_then(|()| self.file.sync_data());
                Err(AppendError {
                    error,
                    segment_usable: restored.is_ok(),
                })
            }
        }
    }
}

/// A failed [`Segment::append`].
#[derive(Debug)]
pub struct AppendError {
    pub error: io::Error,
    /// False when the segment could not be cut back: close it and start another.
    pub segment_usable: bool,
}

/// A segment found in the spool at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    pub path: PathBuf,
    /// Bytes kept (whole lines).
    pub bytes: u64,
    /// Bytes of a torn last line that were cut off (0 when the file was whole).
    pub torn_bytes: u64,
}

/// The segments a previous run left in `spool`, oldest first, each with a torn last line
/// cut off (and the cut made durable).
pub fn recover(spool: &Path) -> io::Result<Vec<RecoveredSegment>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(spool)? {
        let path = entry?.path();
        if segment_id(&path).is_some() && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut found = Vec::with_capacity(paths.len());
    for path in paths {
        let (bytes, torn_bytes) = cut_torn_tail(&path)?;
        found.push(RecoveredSegment {
            path,
            bytes,
            torn_bytes,
        });
    }
    Ok(found)
}

/// Cuts everything after the last newline of `path`; returns the bytes kept and cut.
pub fn cut_torn_tail(path: &Path) -> io::Result<(u64, u64)> {
    let data = fs::read(path)?;
    let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = data.len() - keep;
    if torn > 0 {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(keep as u64)?;
        file.sync_all()?;
    }
    Ok((keep as u64, torn as u64))
}

/// The segment id of a spool file name (`<digits>-<hex>.jsonl`), `None` for other files.
pub fn segment_id(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".jsonl")?;
    let (ms, suffix) = id.split_once('-')?;
    let ok = !ms.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(id)
}

/// Makes the directory's entries (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
