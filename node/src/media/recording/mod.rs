//! Call recording: both legs of a call into one stereo WAV (caller left, callee right),
//! spooled on local disk while the call runs and then shipped to the recordings store.
//!
//! The pieces, from packet to stored file:
//! - [`RecordedPacket`]: a fixed-size copy of one RTP packet that a relay worker hands over
//!   (no allocation per packet; batches travel in reused `Vec`s).
//! - [`aligner::StereoAligner`] (sans-IO): places each side's G.711 audio on one timeline by
//!   its RTP timestamps, fills loss with silence, mutes paused spans, and hands out 16-bit
//!   stereo frames once they are older than a small reorder window.
//! - [`spool::SpoolWriter`]: `<spool>/<id>.wav` plus `<id>.json`, written while the call
//!   runs; [`spool::recover_spool`] repairs what a crash left behind.
//! - [`store::RecordingStore`]: the final home, a local directory or S3-compatible storage,
//!   laid out as `<tenant>/<YYYY-MM-DD>/<id>.wav|.json`.
//! - [`service::RecorderService`]: the thread that owns the open recordings, fed through a
//!   bounded channel by the relay workers, and the shipper thread that moves finished
//!   files to the store.

pub mod aligner;
pub mod config;
mod recorder;
pub mod service;
mod shipper;
pub mod spool;
pub mod store;

#[cfg(test)]
mod tests;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::rtp::RtpPacket;

pub use aligner::{AlignerStats, PushOutcome, StereoAligner};
pub use config::{RecordingConfig, RecordingConfigError, S3Config, StoreConfig};
pub use service::{
    Command, RecorderHandle, RecorderService, RecorderStats, SendError, ServiceError,
    ShutdownReport,
};
pub use spool::{FinishedRecording, RecordingSummary, SpoolError, SpoolWriter, recover_spool};
pub use store::{RecordingStore, StoreError, StoredRecording};

/// The largest payload a [`RecordedPacket`] carries: 40 ms of G.711. A longer payload
/// (60 ms packetisation) keeps its first 40 ms; the rest of its span is written as silence.
pub const MAX_RECORDED_PAYLOAD: usize = 320;

/// Sample rate of recordings (G.711's) in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// The `format` field of every recording's metadata.
pub const FORMAT: &str = "wav/pcm16/8000/stereo";

/// Which leg a packet came from, and so which channel it is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The calling party: the left channel.
    Caller,
    /// The called party: the right channel.
    Callee,
}

/// The handle of one recording between the relay workers and the recorder; chosen by
/// whoever starts the recording, unique among the recordings open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

/// What a recording is about. Written to the spool when it starts and kept with the audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    /// Unique and filename-safe (see [`RecordingMeta::validate`]); [`RecordingMeta::new`]
    /// makes `<tenant>-<unix_ms>-<random hex>`.
    pub id: String,
    pub tenant: String,
    pub call_id: String,
    /// Wall-clock start, milliseconds since the Unix epoch (UTC); also picks the store's
    /// date folder.
    pub started_unix_ms: u64,
}

/// Why a [`RecordingMeta`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error(
        "recording {field} {value:?} is not usable in a file name: use 1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot"
    )]
    NotFilenameSafe { field: &'static str, value: String },
}

impl RecordingMeta {
    /// Metadata with a fresh id `<tenant>-<started_unix_ms>-<16 random hex digits>`.
    pub fn new(tenant: &str, call_id: &str, started_unix_ms: u64) -> RecordingMeta {
        let nonce: u64 = rand::random();
        RecordingMeta {
            id: format!("{tenant}-{started_unix_ms}-{nonce:016x}"),
            tenant: tenant.to_owned(),
            call_id: call_id.to_owned(),
            started_unix_ms,
        }
    }

    /// The id and tenant become path components in the spool and the store, so they must
    /// not be able to climb out of their folder or collide with our temporary names.
    pub fn validate(&self) -> Result<(), MetaError> {
        for (field, value) in [("id", &self.id), ("tenant", &self.tenant)] {
            if !is_filename_safe(value) {
                return Err(MetaError::NotFilenameSafe {
                    field,
                    value: value.clone(),
                });
            }
        }
        Ok(())
    }
}

/// True for 1..=128 of `[A-Za-z0-9._-]` not starting with a dot.
pub fn is_filename_safe(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One RTP packet of a recorded call, copied out of the relay's receive buffer.
///
/// Fixed size and `Copy`, so a relay worker can fill a reused `Vec<RecordedPacket>` and
/// send the batch without allocating per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedPacket {
    pub recording: RecordingId,
    pub side: Side,
    /// When the relay received the datagram.
    pub arrival: Instant,
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    /// Valid bytes in `payload`.
    pub len: u16,
    pub payload: [u8; MAX_RECORDED_PAYLOAD],
}

impl RecordedPacket {
    /// A copy of a parsed RTP packet; a payload over [`MAX_RECORDED_PAYLOAD`] is cut there.
    pub fn from_rtp(
        recording: RecordingId,
        side: Side,
        arrival: Instant,
        rtp: &RtpPacket<'_>,
    ) -> RecordedPacket {
        let mut packet = RecordedPacket {
            recording,
            side,
            arrival,
            ssrc: rtp.ssrc(),
            sequence: rtp.sequence(),
            timestamp: rtp.timestamp(),
            payload_type: rtp.payload_type(),
            len: 0,
            payload: [0; MAX_RECORDED_PAYLOAD],
        };
        packet.set_payload(rtp.payload());
        packet
    }

    /// Copies `payload` in; returns false when it had to be cut at [`MAX_RECORDED_PAYLOAD`].
    pub fn set_payload(&mut self, payload: &[u8]) -> bool {
        let n = payload.len().min(MAX_RECORDED_PAYLOAD);
        self.payload[..n].copy_from_slice(&payload[..n]);
        self.len = n as u16;
        n == payload.len()
    }

    /// The valid payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload[..usize::from(self.len).min(MAX_RECORDED_PAYLOAD)]
    }
}
