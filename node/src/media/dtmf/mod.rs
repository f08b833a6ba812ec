//! DTMF: the digits a caller presses, whichever way the phone sends them.
//!
//! Phones send key presses either as RFC 4733 `telephone-event` RTP packets
//! ([`Rfc4733Detector`]) or as dual tones inside the G.711 audio ([`InbandDetector`],
//! Goertzel filters). Both are sans-IO, are fed packets or samples, and report each key
//! press exactly once as a [`DtmfEvent`] with its start and length in 8 kHz samples, so
//! the IVR sees the same thing from either source. [`ToneGenerator`] makes the tones, for
//! tests and for sending DTMF in-band to a peer that has no `telephone-event`.

mod inband;
mod rfc4733;
mod tone;

pub use inband::{BLOCK_LEN, InbandDetector};
pub use rfc4733::{Detected, Rfc4733Detector, TELEPHONE_EVENT_LEN, TelephoneEvent};
pub use tone::ToneGenerator;

/// Samples per second of G.711 audio and of the `telephone-event/8000` clock: the only
/// rates this module handles. Durations and timestamps below count these samples.
pub const SAMPLE_RATE: u32 = 8000;

/// RFC 4733 event codes 0 to 15, in order: the sixteen DTMF keys.
const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The key of an RFC 4733 event code, if the code is one of the 16 DTMF events.
pub fn event_digit(code: u8) -> Option<char> {
    DIGITS.get(usize::from(code)).copied()
}

/// The RFC 4733 event code of a key (`a`-`d` are taken as `A`-`D`).
pub fn digit_event(digit: char) -> Option<u8> {
    let digit = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&d| d == digit).map(|i| i as u8)
}

/// How a key press reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 `telephone-event` packets.
    Rfc4733,
    /// Dual tones in the audio.
    Inband,
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfEvent {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub digit: char,
    pub source: DtmfSource,
    /// Start of the press. From RFC 4733 this is the event's RTP timestamp; in-band it is
    /// the index (modulo 2^32) of the tone's first sample among all samples pushed into
    /// the [`InbandDetector`].
    pub rtp_timestamp: u32,
    /// Length of the press in 8 kHz samples (160 per 20 ms).
    pub duration_samples: u32,
}

/// The low (row) group, then the high (column) group, in Hz.
const FREQUENCIES: [f64; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Peak of a 0 dBm0 sine in 16-bit linear PCM: μ-law overloads at +3.17 dBm0, which is
/// full scale (±8159 in 14 bits). A-law's +3.14 dBm0 is within 0.1 dB of it.
pub const ZERO_DBM0_PEAK: f64 = 22_663.0;

/// Peak amplitude (16-bit linear) of a sine at `level_dbm0`.
pub fn dbm0_to_amplitude(level_dbm0: f64) -> f64 {
    ZERO_DBM0_PEAK * 10f64.powf(level_dbm0 / 20.0)
}

/// The (row, column) frequencies in Hz of a key.
pub fn digit_frequencies(digit: char) -> Option<(f64, f64)> {
    let digit = digit.to_ascii_uppercase();
    KEYPAD.iter().enumerate().find_map(|(row, keys)| {
        let col = keys.iter().position(|&k| k == digit)?;
        Some((FREQUENCIES[row], FREQUENCIES[4 + col]))
    })
}

/// What the RFC 4733 and in-band tests share.
#[cfg(test)]
mod test_util {
    use super::DtmfEvent;

    pub(super) const SEQUENCE: &str = "0123456789*#ABCD";

    pub(super) fn digits(events: &[DtmfEvent]) -> String {
        events.iter().map(|e| e.digit).collect()
    }
}
