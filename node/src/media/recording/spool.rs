//! The local spool: recordings are written here while their calls run, and stay here until
//! the store has them.
//!
//! Each recording is two files: `<id>.json`, written (and synced) before any audio, and
//! `<id>.wav`, whose header says "0 bytes of data" until the end. [`SpoolWriter::finish`]
//! patches the header, syncs, hashes the file and replaces the JSON with the final
//! metadata ([`RecordingSummary`]). After a crash (even `kill -9` mid-write) the pair is
//! still there: [`recover_spool`] rebuilds the header from the file's length, drops a
//! trailing partial frame and finishes the metadata as `repaired`. Audio is written
//! through a buffer and never synced per packet; [`SpoolWriter::flush`] bounds what a
//! killed process can lose to what the recorder had not yet flushed.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::wav::{Encoding, HEADER_LEN, WavFormat};
use super::{FORMAT, MetaError, RecordingMeta, SAMPLE_RATE};

/// The format of every recording: 16-bit PCM, 8 kHz, stereo.
pub const WAV_FORMAT: WavFormat = WavFormat {
    encoding: Encoding::Pcm16,
    channels: 2,
    sample_rate: SAMPLE_RATE,
};

const FRAME_BYTES: u64 = 4;

/// A WAV file's sizes are 32-bit; audio past this (about 37 hours) is not written.
const MAX_DATA_LEN: u64 = (u32::MAX as u64 - 36) / FRAME_BYTES * FRAME_BYTES;

/// Per open recording; the recorder flushes every 200 ms or so (6.4 kB of audio), so this
/// rarely fills, and thousands of calls do not cost much memory.
const WRITE_BUFFER: usize = 16 * 1024;

/// The final metadata of a recording, as `<id>.json` holds it next to the audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingSummary {
    pub id: String,
    pub tenant: String,
    pub call_id: String,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    /// Size of the whole WAV file.
    pub bytes: u64,
    /// SHA-256 of the whole WAV file, lowercase hex.
    pub sha256: String,
    /// Always [`FORMAT`].
    pub format: String,
    /// True when the recording was stopped and finished normally.
    pub complete: bool,
    /// True when the process died while recording and the file was repaired on restart.
    #[serde(default)]
    pub repaired: bool,
}

/// What `<id>.json` holds while the recording runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InProgress {
    #[serde(flatten)]
    meta: RecordingMeta,
    format: String,
}

/// A finished recording in the spool, ready to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRecording {
    pub summary: RecordingSummary,
    pub wav: PathBuf,
    pub json: PathBuf,
}

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("recording {0} already has a file in the spool (ids must be unique)")]
    Exists(PathBuf),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not recording metadata: {message}", path.display())]
    BadMetadata { path: PathBuf, message: String },
}

impl SpoolError {
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
        move |source| SpoolError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

impl From<SpoolError> for io::Error {
    fn from(e: SpoolError) -> io::Error {
        match e {
            SpoolError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// The spool paths of a recording.
pub fn spool_paths(spool: &Path, id: &str) -> (PathBuf, PathBuf) {
    (
        spool.join(format!("{id}.wav")),
        spool.join(format!("{id}.json")),
    )
}

/// One recording being written to the spool.
#[derive(Debug)]
pub struct SpoolWriter {
    meta: RecordingMeta,
    wav_path: PathBuf,
    json_path: PathBuf,
    file: BufWriter<File>,
    data_len: u64,
    /// Bytes refused because the WAV size limit was reached.
    overflow: u64,
}

impl SpoolWriter {
    /// Creates `<spool>/<id>.json` (synced) and then `<spool>/<id>.wav` with an empty
    /// header, so a crash from here on leaves a pair [`recover_spool`] can finish.
    pub fn create(spool: &Path, meta: RecordingMeta) -> Result<SpoolWriter, SpoolError> {
        meta.validate()?;
        fs::create_dir_all(spool).map_err(SpoolError::io("create the spool directory", spool))?;
        let (wav_path, json_path) = spool_paths(spool, &meta.id);
        if json_path.exists() || wav_path.exists() {
            return Err(SpoolError::Exists(json_path));
        }
        let started = InProgress {
            meta: meta.clone(),
            format: FORMAT.to_owned(),
        };
        write_json(&json_path, &started)?;
        // Readable too: `finish` hashes the file through the same handle.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&wav_path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => SpoolError::Exists(wav_path.clone()),
                _ => SpoolError::io("create", &wav_path)(e),
            })?;
        file.write_all(&WAV_FORMAT.header(0))
            .map_err(SpoolError::io("write", &wav_path))?;
        sync_dir(spool).map_err(SpoolError::io("sync", spool))?;
        Ok(SpoolWriter {
            meta,
            wav_path,
            json_path,
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            data_len: 0,
            overflow: 0,
        })
    }

    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Bytes of audio written so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Appends interleaved 16-bit stereo frames (as [`super::StereoAligner`] hands them
    /// out). Buffered: nothing reaches the file until the buffer fills or
    /// [`SpoolWriter::flush`].
    pub fn append(&mut self, pcm: &[u8]) -> Result<(), SpoolError> {
        let room = MAX_DATA_LEN - self.data_len;
        let n = (pcm.len() as u64).min(room) as usize;
        self.overflow += (pcm.len() - n) as u64;
        self.file
            .write_all(&pcm[..n])
            .map_err(SpoolError::io("write", &self.wav_path))?;
        self.data_len += n as u64;
        Ok(())
    }

    /// Hands buffered audio to the OS (not a sync): a process killed after this loses
    /// none of it.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        self.file
            .flush()
            .map_err(SpoolError::io("write", &self.wav_path))
    }

    /// Patches the header, syncs, hashes, and writes the final metadata.
    pub fn finish(mut self) -> Result<FinishedRecording, SpoolError> {
        self.flush()?;
        if self.overflow > 0 {
            tracing::warn!(
                recording = %self.meta.id,
                bytes = self.overflow,
                "recording longer than a WAV file can hold; the end was cut"
            );
        }
        let file = self
            .file
            .into_inner()
            .map_err(|e| SpoolError::io("write", &self.wav_path)(e.into_error()))?;
        seal(
            file,
            &self.wav_path,
            &self.json_path,
            self.meta,
            self.data_len,
            false,
        )
    }
}

/// Writes the header for `data_len`, syncs, hashes and writes the summary JSON.
fn seal(
    mut file: File,
    wav_path: &Path,
    json_path: &Path,
    meta: RecordingMeta,
    data_len: u64,
    repaired: bool,
) -> Result<FinishedRecording, SpoolError> {
    let io_err = SpoolError::io;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&WAV_FORMAT.header(data_len as u32)))
        .and_then(|()| file.sync_all())
        .map_err(io_err("write the header of", wav_path))?;
    let (sha256, bytes) = hash_file(&mut file).map_err(io_err("read", wav_path))?;
    let summary = RecordingSummary {
        id: meta.id,
        tenant: meta.tenant,
        call_id: meta.call_id,
        started_unix_ms: meta.started_unix_ms,
        duration_ms: data_len / FRAME_BYTES * 1000 / u64::from(SAMPLE_RATE),
        bytes,
        sha256,
        format: FORMAT.to_owned(),
        complete: !repaired,
        repaired,
    };
    write_json(json_path, &summary)?;
    Ok(FinishedRecording {
        summary,
        wav: wav_path.to_owned(),
        json: json_path.to_owned(),
    })
}

/// SHA-256 (hex) and length of a whole file, read from its start.
pub(super) fn hash_file(file: &mut File) -> io::Result<(String, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Replaces `path` with `value` as JSON: through a synced temporary file and a rename,
/// so a crash leaves either the old or the new content, never half of one.
pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SpoolError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| SpoolError::BadMetadata {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let tmp = tmp_path(path);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    };
    write().map_err(SpoolError::io("write", path))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a spool JSON file says.
enum Metadata {
    Finished(RecordingSummary),
    InProgress(RecordingMeta),
}

fn read_metadata(path: &Path) -> Result<Metadata, SpoolError> {
    let bytes = fs::read(path).map_err(SpoolError::io("read", path))?;
    // A summary is also a valid in-progress record (serde ignores the extra fields), so
    // the richer form is tried first.
    if let Ok(summary) = serde_json::from_slice::<RecordingSummary>(&bytes) {
        return Ok(Metadata::Finished(summary));
    }
    serde_json::from_slice::<InProgress>(&bytes)
        .map(|p| Metadata::InProgress(p.meta))
        .map_err(|e| SpoolError::BadMetadata {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

/// Finds every recording left in the spool: finished ones not yet shipped are returned as
/// they are; ones whose process died while recording are repaired (header rebuilt from the
/// file length, a trailing partial frame dropped, hashed, marked `repaired`) first.
///
/// Call it before anything writes to the spool: a recording in progress looks exactly
/// like a crashed one. A pair that cannot be made sense of is logged and left in place for
/// an operator; it does not stop the others.
pub fn recover_spool(spool: &Path) -> io::Result<Vec<FinishedRecording>> {
    let entries = match fs::read_dir(spool) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(OsStr::to_str),
            path.extension().and_then(OsStr::to_str),
        ) else {
            continue;
        };
        match ext {
            // Temporary files of an interrupted metadata write; the file they were to
            // replace is still whole.
            "tmp" => {
                fs::remove_file(&path)?;
            }
            "json" => ids.push(stem.to_owned()),
            "wav" if !path.with_extension("json").exists() => {
                tracing::warn!(
                    file = %path.display(),
                    "recording audio without metadata in the spool; left for an operator"
                );
            }
            _ => {}
        }
    }
    ids.sort();
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let (wav, json) = spool_paths(spool, &id);
        match recover_one(&wav, &json) {
            Ok(recording) => found.push(recording),
            Err(e) => {
                tracing::error!(error = %e, "cannot recover a spooled recording; left in place")
            }
        }
    }
    Ok(found)
}

fn recover_one(wav: &Path, json: &Path) -> Result<FinishedRecording, SpoolError> {
    match read_metadata(json)? {
        // Finished before the crash; possibly half shipped (audio already in the store),
        // which the store's ship handles.
        Metadata::Finished(summary) => Ok(FinishedRecording {
            summary,
            wav: wav.to_owned(),
            json: json.to_owned(),
        }),
        Metadata::InProgress(meta) => {
            meta.validate()?;
            // The process died between writing the metadata and creating the audio: an
            // empty recording, but the fact that it was made is kept.
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(wav)
                .map_err(SpoolError::io("open", wav))?;
            let len = file
                .metadata()
                .map_err(SpoolError::io("read the size of", wav))?
                .len();
            let data_len = (len.saturating_sub(HEADER_LEN as u64)).min(MAX_DATA_LEN);
            let data_len = data_len / FRAME_BYTES * FRAME_BYTES;
            file.set_len(HEADER_LEN as u64 + data_len)
                .map_err(SpoolError::io("truncate", wav))?;
            tracing::warn!(
                recording = %meta.id,
                audio_bytes = data_len,
                dropped_bytes = len.saturating_sub(HEADER_LEN as u64 + data_len),
                "repairing a recording left open by a crash"
            );
            file.seek(SeekFrom::Start(0))
                .map_err(SpoolError::io("seek", wav))?;
            seal(file, wav, json, meta, data_len, true)
        }
    }
}
