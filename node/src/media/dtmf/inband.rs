//! In-band DTMF: Goertzel filters find the dual tones in 8 kHz linear audio
//! ([`InbandDetector`]).

use std::f64::consts::TAU;

use super::{DtmfEvent, DtmfSource, FREQUENCIES, KEYPAD, SAMPLE_RATE, dbm0_to_amplitude};
use crate::media::g711::Law;

/// Samples per Goertzel block in-band: 12.75 ms at 8 kHz. Short enough to time tones and
/// gaps finely, long enough (78 Hz bins) to tell the DTMF frequencies apart.
pub const BLOCK_LEN: usize = 102;

/// A key is taken as pressed after this many consecutive blocks (38 ms) with its tone
/// pair. Three, not two: a 20 ms blip can fill most of two 102-sample blocks, never three.
const PRESENT_BLOCKS: u32 = 3;

/// A press ends after this many consecutive blocks (38 ms) without its tone pair, so a
/// dropout of 20 ms does not split a press and a 40 ms gap between presses is seen.
const ABSENT_BLOCKS: u32 = 3;

/// Each tone of a pair must be at least this loud (dBm0); quieter is line noise. 2 dB
/// below the -30 dBm0 we promise to accept, for G.711 and line losses.
const MIN_TONE_DBM0: f64 = -32.0;
/// The high tone may be up to 8 dB louder than the low one (normal twist: lines lose
/// more of the high group, so senders boost it)...
const NORMAL_TWIST: f32 = 6.31;
/// ...and the low tone up to 4 dB louder than the high one (reverse twist).
const REVERSE_TWIST: f32 = 2.51;
/// Each tone must be 8 dB above every other frequency of its group: one row and one
/// column, not a chord or a sweep.
const PEAK_RATIO: f32 = 6.31;
/// The pair must carry this share of the block's energy: speech, music and noise spread
/// theirs over the band. A block only partly filled with the tone carries about the
/// filled fraction, so this also keeps the edges of short blips out.
const MIN_PAIR_SHARE: f32 = 0.7;

/// Finds DTMF tones in 8 kHz linear audio (e.g. decoded G.711).
///
/// The audio is cut into blocks of [`BLOCK_LEN`] (102) samples; for each, Goertzel
/// filters measure the 8 DTMF frequencies, and the block counts as a key when the
/// strongest row and column tones
/// - are each at least -32 dBm0 (so -30 dBm0 tones pass and silence does not),
/// - are within the twist limits: the high tone at most 8 dB above the low one, the low
///   at most 4 dB above the high one,
/// - each stand 8 dB above the other frequencies of their group,
/// - together carry at least 70% of the block's energy (speech, music, noise and single
///   tones such as 440 Hz or 1 kHz do not).
///
/// A key is pressed after 3 consecutive such blocks (38 ms). Where a tone falls on the
/// block grid decides whether its partly filled edge blocks count, so tones shorter than
/// 32 ms (20 ms blips) are never accepted, 40 ms ones about two times in three, 45 ms
/// and longer always. A key is released after 3 blocks without it, so a 40 ms gap
/// separates two presses of the same key and a 20 ms dropout does not split one.
///
/// Each press is reported once, at its release (as RFC 4733 does, whose duration is
/// known only at the end), with start and duration in whole blocks: within two blocks
/// (25 ms) of the truth. Timestamps count the samples pushed; there is no clock.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// 2 cos(2π f / 8000) for each frequency.
    coefficients: [f32; 8],
    /// The two previous outputs of each Goertzel filter.
    state: [(f32, f32); 8],
    energy: f32,
    filled: usize,
    /// Index of the current block's first sample.
    block_start: u32,
    /// Goertzel power of a tone at [`MIN_TONE_DBM0`] over a whole block.
    min_tone_power: f32,
    candidate: Option<Candidate>,
    pressed: Option<Pressed>,
}

/// A key seen in the last `blocks` blocks, not yet long enough to count.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    digit: char,
    blocks: u32,
    start: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pressed {
    digit: char,
    start: u32,
    /// End of the last block that had the tone.
    end: u32,
    /// Blocks since then without it.
    misses: u32,
}

impl Pressed {
    fn event(&self) -> DtmfEvent {
        DtmfEvent {
            digit: self.digit,
            source: DtmfSource::Inband,
            rtp_timestamp: self.start,
            duration_samples: self.end.wrapping_sub(self.start),
        }
    }
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let coefficients =
            FREQUENCIES.map(|f| (2.0 * (TAU * f / f64::from(SAMPLE_RATE)).cos()) as f32);
        // A tone of amplitude A over N samples gives a Goertzel power of (A N / 2)^2.
        let half_block = dbm0_to_amplitude(MIN_TONE_DBM0) * BLOCK_LEN as f64 / 2.0;
        Self {
            coefficients,
            state: [(0.0, 0.0); 8],
            energy: 0.0,
            filled: 0,
            block_start: 0,
            min_tone_power: (half_block * half_block) as f32,
            candidate: None,
            pressed: None,
        }
    }

    /// Takes in linear samples; calls `on_event` for each press that ended in them.
    pub fn push(&mut self, samples: &[i16], mut on_event: impl FnMut(DtmfEvent)) {
        for &sample in samples {
            self.push_sample(sample, &mut on_event);
        }
    }

    /// Takes in a G.711 payload, decoding it on the way (no buffer needed).
    pub fn push_g711(&mut self, payload: &[u8], law: Law, mut on_event: impl FnMut(DtmfEvent)) {
        for &byte in payload {
            self.push_sample(law.decode(byte), &mut on_event);
        }
    }

    /// Reports the press still going at the end of the stream, if any. The partial
    /// block is dropped.
    pub fn flush(&mut self) -> Option<DtmfEvent> {
        self.candidate = None;
        self.pressed.take().map(|p| p.event())
    }

    #[inline]
    fn push_sample(&mut self, sample: i16, on_event: &mut impl FnMut(DtmfEvent)) {
        let x = f32::from(sample);
        self.energy += x * x;
        for (&c, (s1, s2)) in self.coefficients.iter().zip(self.state.iter_mut()) {
            let s0 = x + c * *s1 - *s2;
            *s2 = *s1;
            *s1 = s0;
        }
        self.filled += 1;
        if self.filled == BLOCK_LEN {
            self.end_block(on_event);
        }
    }

    fn end_block(&mut self, on_event: &mut impl FnMut(DtmfEvent)) {
        let key = self.classify();
        let start = self.block_start;
        let end = start.wrapping_add(BLOCK_LEN as u32);
        self.state = [(0.0, 0.0); 8];
        self.energy = 0.0;
        self.filled = 0;
        self.block_start = end;

        if let Some(pressed) = self.pressed.as_mut() {
            if key == Some(pressed.digit) {
                pressed.end = end;
                pressed.misses = 0;
                self.candidate = None;
                return;
            }
            pressed.misses += 1;
            if pressed.misses >= ABSENT_BLOCKS {
                on_event(pressed.event());
                self.pressed = None;
            }
        }
        let Some(digit) = key else {
            self.candidate = None;
            return;
        };
        let candidate = match self.candidate {
            Some(c) if c.digit == digit => Candidate {
                blocks: c.blocks + 1,
                ..c
            },
            _ => Candidate {
                digit,
                blocks: 1,
                start,
            },
        };
        if candidate.blocks < PRESENT_BLOCKS {
            self.candidate = Some(candidate);
            return;
        }
        // Another key straight after the last, with no gap: the last one is over.
        if let Some(previous) = self.pressed.take() {
            on_event(previous.event());
        }
        self.candidate = None;
        self.pressed = Some(Pressed {
            digit,
            start: candidate.start,
            end,
            misses: 0,
        });
    }

    /// The key whose tone pair fills the block just ended, if any.
    fn classify(&self) -> Option<char> {
        let mut power = [0f32; 8];
        for (p, (&c, &(s1, s2))) in power
            .iter_mut()
            .zip(self.coefficients.iter().zip(self.state.iter()))
        {
            *p = s1 * s1 + s2 * s2 - c * s1 * s2;
        }
        let (rows, cols) = power.split_at(4);
        let (row, row_power) = strongest(rows);
        let (col, col_power) = strongest(cols);
        if row_power < self.min_tone_power || col_power < self.min_tone_power {
            return None;
        }
        if col_power > row_power * NORMAL_TWIST || row_power > col_power * REVERSE_TWIST {
            return None;
        }
        if !stands_out(rows, row) || !stands_out(cols, col) {
            return None;
        }
        // A tone's Goertzel power times 2/N is its energy over the block.
        if (row_power + col_power) * 2.0 / (BLOCK_LEN as f32) < MIN_PAIR_SHARE * self.energy {
            return None;
        }
        KEYPAD.get(row)?.get(col).copied()
    }
}

/// Index and power of the strongest frequency of a group.
fn strongest(group: &[f32]) -> (usize, f32) {
    group.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

/// Whether frequency `best` of a group is [`PEAK_RATIO`] above all the others.
fn stands_out(group: &[f32], best: usize) -> bool {
    let peak = group.get(best).copied().unwrap_or(0.0);
    group
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || p * PEAK_RATIO <= peak)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::test_util::{SEQUENCE, digits};
    use crate::media::dtmf::{ToneGenerator, digit_frequencies};

    const LEVEL_DBM0: f64 = -10.0;

    fn samples_ms(ms: usize) -> usize {
        ms * SAMPLE_RATE as usize / 1000
    }

    /// `offset` samples of silence, then each key as `tone_ms` of tone and `gap_ms` of
    /// silence.
    fn keys(sequence: &str, tone_ms: usize, gap_ms: usize, offset: usize) -> Vec<i16> {
        let mut out = vec![0i16; offset];
        for digit in sequence.chars() {
            let mut tone = vec![0; samples_ms(tone_ms)];
            ToneGenerator::digit(digit, LEVEL_DBM0)
                .expect("dtmf key")
                .fill(&mut tone);
            out.extend(tone);
            out.extend(std::iter::repeat_n(0, samples_ms(gap_ms)));
        }
        out
    }

    fn through_g711(samples: &[i16], law: Law) -> Vec<i16> {
        samples.iter().map(|&s| law.decode(law.encode(s))).collect()
    }

    /// Runs the detector over `samples` in uneven chunks (as packets of varying size
    /// would arrive), then flushes.
    fn detect(samples: &[i16]) -> Vec<DtmfEvent> {
        let mut det = InbandDetector::new();
        let mut events = Vec::new();
        let mut rest = samples;
        let mut chunk = 1;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(chunk.min(rest.len()));
            det.push(now, |e| events.push(e));
            rest = later;
            chunk = chunk * 7 % 331 + 1;
        }
        events.extend(det.flush());
        events
    }

    /// Deterministic white noise (xorshift, sum of uniforms ≈ Gaussian) at `rms`.
    fn add_noise(samples: &mut [i16], rms: f64, mut seed: u64) {
        for s in samples {
            let mut sum = 0.0;
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                sum += (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            // Four uniforms on [-0.5, 0.5) have variance 4/12.
            let noise = sum * rms / (4.0f64 / 12.0).sqrt();
            *s = (f64::from(*s) + noise).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// The keypad as 60 ms tones with 60 ms gaps, through G.711 and back, at several
    /// alignments against the block grid: exactly the keypad, once each, in order, with
    /// start and duration within two blocks of the truth.
    #[test]
    fn keypad_tones_through_g711_are_detected_exactly() {
        for law in [Law::Ulaw, Law::Alaw] {
            for offset in (0..BLOCK_LEN).step_by(17) {
                let audio = through_g711(&keys(SEQUENCE, 60, 60, offset), law);
                let events = detect(&audio);
                assert_eq!(digits(&events), SEQUENCE, "{law:?} offset {offset}");
                for (i, e) in events.iter().enumerate() {
                    assert_eq!(e.source, DtmfSource::Inband);
                    let start = (offset + i * samples_ms(120)) as i64;
                    let slack = 2 * BLOCK_LEN as i64;
                    assert!((i64::from(e.rtp_timestamp) - start).abs() <= slack);
                    let duration = i64::from(e.duration_samples);
                    assert!((duration - samples_ms(60) as i64).abs() <= slack);
                }
            }
        }
    }

    #[test]
    fn keypad_tones_in_white_noise_are_detected_exactly() {
        // SNR against the two tones together: 20 dB, then 15 dB.
        let signal_rms = dbm0_to_amplitude(LEVEL_DBM0); // two tones of peak A: RMS A
        for (snr_db, seed) in [(20.0, 1u64), (15.0, 2), (15.0, 3)] {
            let mut audio = keys(SEQUENCE, 60, 60, 33);
            add_noise(&mut audio, signal_rms / 10f64.powf(snr_db / 20.0), seed);
            let audio = through_g711(&audio, Law::Ulaw);
            assert_eq!(digits(&detect(&audio)), SEQUENCE, "SNR {snr_db} dB");
        }
    }

    #[test]
    fn single_tones_silence_and_noise_are_not_keys() {
        for hz in [440.0, 1_000.0, 697.0, 1_633.0, 350.0, 2_000.0] {
            for level in [0.0, -10.0, -20.0] {
                let mut tone = vec![0; 16_000];
                ToneGenerator::single(hz, level).fill(&mut tone);
                assert!(
                    detect(&through_g711(&tone, Law::Ulaw)).is_empty(),
                    "{hz} Hz"
                );
            }
        }
        // Dial tone (350 + 440 Hz) is two tones, but not a DTMF pair.
        let mut dial = vec![0; 16_000];
        ToneGenerator::dual((350.0, -13.0), (440.0, -13.0)).fill(&mut dial);
        assert!(detect(&dial).is_empty());
        assert!(detect(&[0; 16_000]).is_empty());
        let mut noise = vec![0; 16_000];
        add_noise(&mut noise, 3_000.0, 7);
        assert!(detect(&noise).is_empty());
    }

    #[test]
    fn a_20_ms_blip_is_not_a_key_and_a_45_ms_tone_is() {
        for offset in 0..BLOCK_LEN {
            assert!(
                detect(&keys("5", 20, 100, offset)).is_empty(),
                "offset {offset}"
            );
            assert_eq!(digits(&detect(&keys("5", 45, 100, offset))), "5");
        }
    }

    #[test]
    fn a_held_key_is_reported_once_at_its_end_with_its_duration() {
        let audio = keys("9", 2_000, 100, 0);
        let mut det = InbandDetector::default();
        let mut events = Vec::new();
        let tone_end = samples_ms(2_000);
        det.push(&audio[..tone_end], |e| events.push(e));
        assert!(events.is_empty(), "reported at release, not while held");
        det.push(&audio[tone_end..], |e| events.push(e));
        assert_eq!(digits(&events), "9");
        assert_eq!(events[0].rtp_timestamp, 0);
        // The block straddling the release is mostly tone and counts.
        let error = i64::from(events[0].duration_samples) - tone_end as i64;
        assert!(error.abs() <= BLOCK_LEN as i64, "{error}");
    }

    #[test]
    fn gaps_of_40_ms_separate_presses_and_dropouts_of_20_ms_do_not() {
        for offset in (0..BLOCK_LEN).step_by(5) {
            assert_eq!(digits(&detect(&keys("77", 60, 40, offset))), "77");
            // A 20 ms hole in one press.
            let mut audio = vec![0i16; offset];
            let mut tone = vec![0; samples_ms(200)];
            ToneGenerator::digit('7', LEVEL_DBM0)
                .expect("key")
                .fill(&mut tone);
            tone[samples_ms(90)..samples_ms(110)].fill(0);
            audio.extend(tone);
            audio.extend([0; 800]);
            assert_eq!(digits(&detect(&audio)), "7", "offset {offset}");
        }
        // Different keys back to back, no gap at all.
        assert_eq!(
            digits(&detect(
                &keys("1", 80, 0, 0)
                    .into_iter()
                    .chain(keys("2", 80, 80, 0))
                    .collect::<Vec<_>>()
            )),
            "12"
        );
    }

    #[test]
    fn level_and_twist_limits() {
        let render = |row: f64, col: f64| {
            let (low, high) = digit_frequencies('8').expect("key");
            let mut tone = vec![0; samples_ms(100)];
            ToneGenerator::dual((low, row), (high, col)).fill(&mut tone);
            tone.extend([0; 800]);
            digits(&detect(&through_g711(&tone, Law::Ulaw)))
        };
        assert_eq!(render(-25.0, -25.0), "8");
        assert_eq!(render(-30.0, -30.0), "8");
        assert_eq!(render(-36.0, -36.0), "");
        assert_eq!(render(-16.0, -10.0), "8"); // high group 6 dB up: normal twist
        assert_eq!(render(-20.0, -10.0), ""); // 10 dB
        assert_eq!(render(-10.0, -13.0), "8"); // low group 3 dB up: reverse twist
        assert_eq!(render(-10.0, -16.0), ""); // 6 dB
    }

    #[test]
    fn g711_payloads_can_be_pushed_directly() {
        let audio = keys("#0", 60, 60, 0);
        let encoded: Vec<u8> = audio.iter().map(|&s| Law::Alaw.encode(s)).collect();
        let mut det = InbandDetector::new();
        let mut events = Vec::new();
        for packet in encoded.chunks(160) {
            det.push_g711(packet, Law::Alaw, |e| events.push(e));
        }
        assert_eq!(digits(&events), "#0");
    }
}
