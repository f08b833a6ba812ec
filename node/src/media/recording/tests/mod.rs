//! Tests of the recorder: the aligner with simulated time, the spool and its crash repair
//! on real files, the stores (a local directory, an in-memory object store and a real
//! S3-compatible server), the config, and the service end to end through its channels.

mod aligner;
mod config;
mod s3;
mod service;
mod spool;
mod store;

use std::f64::consts::PI;
use std::time::{Duration, Instant};

use super::super::g711::Law;
use super::{MAX_RECORDED_PAYLOAD, RecordedPacket, RecordingId, SAMPLE_RATE, Side};

/// Samples in one 20 ms packet.
const PTIME: usize = 160;

fn packet(
    side: Side,
    arrival: Instant,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    payload: &[u8],
) -> RecordedPacket {
    let mut p = RecordedPacket {
        recording: RecordingId(1),
        side,
        arrival,
        ssrc,
        sequence,
        timestamp,
        payload_type,
        len: 0,
        payload: [0; MAX_RECORDED_PAYLOAD],
    };
    assert!(p.set_payload(payload));
    p
}

/// `n` samples of a sine at `freq` Hz, starting at sample `from` of the tone.
fn sine(freq: f64, amplitude: f64, from: usize, n: usize) -> Vec<i16> {
    (from..from + n)
        .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(SAMPLE_RATE)).sin()) as i16)
        .collect()
}

fn encode(law: Law, samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| law.encode(s)).collect()
}

/// Interleaved little-endian 16-bit stereo bytes as (left, right) frames.
fn frames(pcm: &[u8]) -> Vec<(i16, i16)> {
    assert_eq!(pcm.len() % 4, 0);
    pcm.chunks_exact(4)
        .map(|f| {
            (
                i16::from_le_bytes([f[0], f[1]]),
                i16::from_le_bytes([f[2], f[3]]),
            )
        })
        .collect()
}

/// Power of `freq` in `samples` (Goertzel), normalised by the length.
fn goertzel(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * PI * freq / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
