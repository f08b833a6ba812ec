//! Sine tones at given levels ([`ToneGenerator`]): DTMF keys to send in-band, and test
//! signals.

use std::f64::consts::TAU;

use super::{SAMPLE_RATE, dbm0_to_amplitude, digit_frequencies};
use crate::media::g711::Law;

/// Makes one or two sine tones at given levels: DTMF keys, or test signals.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// (phase step per sample, phase, peak amplitude) of each tone.
    tones: [(f64, f64, f64); 2],
}

impl ToneGenerator {
    /// Two tones, each given as (frequency in Hz, level in dBm0).
    pub fn dual(low: (f64, f64), high: (f64, f64)) -> Self {
        let tone = |(hz, dbm0): (f64, f64)| {
            (
                TAU * hz / f64::from(SAMPLE_RATE),
                0.0,
                dbm0_to_amplitude(dbm0),
            )
        };
        Self {
            tones: [tone(low), tone(high)],
        }
    }

    /// One tone at `hz`, `level_dbm0`.
    pub fn single(hz: f64, level_dbm0: f64) -> Self {
        Self::dual((hz, level_dbm0), (0.0, f64::NEG_INFINITY))
    }

    /// The tone pair of a key, both tones at `level_dbm0` (-10 dBm0 is typical).
    pub fn digit(digit: char, level_dbm0: f64) -> Option<Self> {
        let (row, col) = digit_frequencies(digit)?;
        Some(Self::dual((row, level_dbm0), (col, level_dbm0)))
    }

    /// Fills `out` with the next samples; the phase carries over between calls.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out {
            let mut value = 0.0;
            for (step, phase, amplitude) in &mut self.tones {
                value += *amplitude * phase.sin();
                *phase = (*phase + *step) % TAU;
            }
            *sample = value
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        }
    }

    /// Fills `out` with the next samples encoded in `law`.
    pub fn fill_g711(&mut self, law: Law, out: &mut [u8]) {
        let mut sample = [0i16; 1];
        for byte in out {
            self.fill(&mut sample);
            *byte = law.encode(sample[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::ZERO_DBM0_PEAK;

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    #[test]
    fn generator_makes_the_requested_level_and_frequencies() {
        assert_eq!(digit_frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(digit_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(digit_frequencies('x'), None);
        assert!(ToneGenerator::digit('?', -10.0).is_none());
        // A single 0 dBm0 sine: RMS = peak / sqrt(2).
        let mut tone = vec![0; 8_000];
        ToneGenerator::single(1_000.0, 0.0).fill(&mut tone);
        let expected = ZERO_DBM0_PEAK / 2f64.sqrt();
        assert!((rms(&tone) / expected - 1.0).abs() < 0.01);
        // Encoded straight to G.711, it is the same signal.
        let mut encoded = vec![0u8; 8_000];
        ToneGenerator::single(1_000.0, 0.0).fill_g711(Law::Alaw, &mut encoded);
        assert_eq!(
            encoded,
            tone.iter()
                .map(|&s| Law::Alaw.encode(s))
                .collect::<Vec<_>>()
        );
    }
}
