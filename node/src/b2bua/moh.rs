//! The built-in music on hold: a soft four-note arpeggio (C5 E5 G5 E5) with a pause,
//! looped. Synthesized at start-up so `tongdai up` needs no audio files.

use crate::media::g711::Law;
use crate::media::playback::Prompt;

const RATE: f64 = 8000.0;
/// Note frequencies in Hz and their length in samples (250 ms each).
const NOTES: [f64; 4] = [523.25, 659.25, 783.99, 659.25];
const NOTE_SAMPLES: usize = 2000;
const PAUSE_SAMPLES: usize = 4000;
/// About -12 dBFS: audible, not loud.
const AMPLITUDE: f64 = 8000.0;

/// Linear samples of one loop of the built-in melody.
pub fn melody() -> Vec<i16> {
    let mut out = Vec::with_capacity(NOTES.len() * NOTE_SAMPLES + PAUSE_SAMPLES);
    for freq in NOTES {
        for n in 0..NOTE_SAMPLES {
            // A short fade in and out so notes do not click.
            let edge = (n.min(NOTE_SAMPLES - 1 - n) as f64 / 200.0).min(1.0);
            let s = (2.0 * std::f64::consts::PI * freq * n as f64 / RATE).sin();
            out.push((s * AMPLITUDE * edge) as i16);
        }
    }
    out.extend(std::iter::repeat_n(0, PAUSE_SAMPLES));
    out
}

/// The confirmation of a feature code: two short beeps (880 Hz, 150 ms, 100 ms apart).
pub fn confirmation() -> Prompt {
    let beep = |out: &mut Vec<i16>| {
        for n in 0..1200 {
            let edge = (n.min(1199 - n) as f64 / 80.0).min(1.0);
            let s = (2.0 * std::f64::consts::PI * 880.0 * n as f64 / RATE).sin();
            out.push((s * AMPLITUDE * edge) as i16);
        }
    };
    let mut samples = Vec::with_capacity(3200);
    beep(&mut samples);
    samples.extend(std::iter::repeat_n(0, 800));
    beep(&mut samples);
    Prompt::from_linear(&samples, Law::Ulaw).expect("the beeps are not empty")
}

pub fn default_prompt() -> Prompt {
    Prompt::from_linear(&melody(), Law::Ulaw).expect("the melody is not empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_melody_is_a_second_and_a_half_of_audible_notes_then_silence() {
        let m = melody();
        assert_eq!(m.len(), 12_000);
        let peak = m[..8000].iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7000..=8000).contains(&peak), "peak {peak}");
        assert!(m[8000..].iter().all(|&s| s == 0));
        assert_eq!(default_prompt().sample_count(), 12_000);
    }
}
