//! Announcements to callers waiting in a queue: their position and expected wait, and the
//! callback key, in a built-in English voice (prompts generated with espeak-ng by
//! `node/prompts/generate.py` and embedded in the binary).
//!
//! The expected wait comes from the control plane at entry (`QueueJoined`): callers ahead
//! are served as many at a time as the queue has members available, each taking the
//! queue's recent handle time (talk + wrap-up, a moving average), so
//! `ceil(position / available) * handle time`; none before the queue handled a call or
//! while nobody is available. Later announcements scale it by the position now over the
//! position at entry.

use crate::media::g711::Law;
use crate::media::playback::Prompt;

macro_rules! prompts {
    ($($name:literal),* $(,)?) => {
        /// A built-in prompt's u-law audio.
        fn audio(name: &str) -> Option<&'static [u8]> {
            match name {
                $($name => Some(include_bytes!(concat!("../../prompts/en/", $name, ".ulaw"))),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const ALL: &[&str] = &[$($name),*];
    };
}

prompts!(
    "caller_number",
    "hundred",
    "minute",
    "minutes",
    "n0",
    "n1",
    "n2",
    "n3",
    "n4",
    "n5",
    "n6",
    "n7",
    "n8",
    "n9",
    "n10",
    "n11",
    "n12",
    "n13",
    "n14",
    "n15",
    "n16",
    "n17",
    "n18",
    "n19",
    "n20",
    "n30",
    "n40",
    "n50",
    "n60",
    "n70",
    "n80",
    "n90",
    "pound",
    "press_for_callback",
    "star",
    "under_a_minute",
    "wait_about",
);

/// Silence between phrases, samples (200 ms).
const GAP: usize = 1600;
/// u-law silence.
const SILENCE: u8 = 0xFF;

/// The words of a number 0..=999 (`None` above).
pub fn number_words(n: u32) -> Option<Vec<&'static str>> {
    const ONES: [&str; 20] = [
        "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13",
        "n14", "n15", "n16", "n17", "n18", "n19",
    ];
    const TENS: [&str; 10] = [
        "", "", "n20", "n30", "n40", "n50", "n60", "n70", "n80", "n90",
    ];
    if n > 999 {
        return None;
    }
    let mut out = Vec::new();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(ONES[hundreds as usize]);
        out.push("hundred");
    }
    if rest >= 20 {
        out.push(TENS[(rest / 10) as usize]);
        if rest % 10 > 0 {
            out.push(ONES[(rest % 10) as usize]);
        }
    } else if rest > 0 || hundreds == 0 {
        out.push(ONES[rest as usize]);
    }
    Some(out)
}

/// The phrases of an announcement: position (when known and at most 999), expected wait
/// (rounded to whole minutes; under a minute said so), the callback key. Each inner list
/// is spoken without pauses.
pub fn phrases(
    position: Option<u32>,
    expected_wait_secs: Option<u32>,
    callback_digit: Option<char>,
) -> Vec<Vec<&'static str>> {
    let mut out = Vec::new();
    if let Some(words) = position.filter(|p| *p > 0).and_then(number_words) {
        out.push(vec!["caller_number"]);
        out.push(words);
    }
    match expected_wait_secs {
        Some(s) if s < 60 => out.push(vec!["under_a_minute"]),
        Some(s) => {
            let minutes = (s + 30) / 60;
            if let Some(words) = number_words(minutes) {
                let mut p = vec!["wait_about"];
                p.extend(words);
                p.push(if minutes == 1 { "minute" } else { "minutes" });
                out.push(p);
            }
        }
        None => {}
    }
    let key = match callback_digit {
        Some(d @ '0'..='9') => number_words(u32::from(d) - u32::from('0')),
        Some('*') => Some(vec!["star"]),
        Some('#') => Some(vec!["pound"]),
        _ => None,
    };
    if let Some(key) = key {
        let mut p = vec!["press_for_callback"];
        p.extend(key);
        out.push(p);
    }
    out
}

/// The announcement's audio (u-law), or `None` when there is nothing to say.
pub fn prompt(phrases: &[Vec<&'static str>]) -> Option<Prompt> {
    let mut audio = Vec::new();
    for phrase in phrases {
        for word in phrase {
            audio.extend_from_slice(audio_of(word));
        }
        audio.extend(std::iter::repeat_n(SILENCE, GAP));
    }
    Prompt::from_raw(&audio, Law::Ulaw, Law::Ulaw).ok()
}

fn audio_of(word: &str) -> &'static [u8] {
    audio(word).unwrap_or_else(|| panic!("built-in prompt {word} is embedded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_said_as_words() {
        assert_eq!(number_words(0).unwrap(), ["n0"]);
        assert_eq!(number_words(7).unwrap(), ["n7"]);
        assert_eq!(number_words(19).unwrap(), ["n19"]);
        assert_eq!(number_words(20).unwrap(), ["n20"]);
        assert_eq!(number_words(23).unwrap(), ["n20", "n3"]);
        assert_eq!(number_words(100).unwrap(), ["n1", "hundred"]);
        assert_eq!(number_words(115).unwrap(), ["n1", "hundred", "n15"]);
        assert_eq!(number_words(999).unwrap(), ["n9", "hundred", "n90", "n9"]);
        assert_eq!(number_words(1000), None);
    }

    #[test]
    fn an_announcement_says_position_wait_and_the_callback_key() {
        assert_eq!(
            phrases(Some(3), Some(130), Some('1')),
            [
                vec!["caller_number"],
                vec!["n3"],
                vec!["wait_about", "n2", "minutes"],
                vec!["press_for_callback", "n1"],
            ]
        );
        assert_eq!(
            phrases(Some(1), Some(80), None),
            [
                vec!["caller_number"],
                vec!["n1"],
                vec!["wait_about", "n1", "minute"]
            ]
        );
        assert_eq!(
            phrases(Some(2), Some(20), Some('#'))[2..],
            [vec!["under_a_minute"], vec!["press_for_callback", "pound"]]
        );
        // Unknown wait, a position too long to say: nothing but the key.
        assert_eq!(
            phrases(Some(5000), None, Some('*')),
            [vec!["press_for_callback", "star"]]
        );
        assert!(phrases(None, None, None).is_empty());
        assert!(prompt(&[]).is_none());
    }

    #[test]
    fn every_prompt_is_embedded_speech_of_reasonable_length() {
        for name in ALL {
            let a = audio_of(name);
            let secs = a.len() as f64 / 8000.0;
            assert!((0.15..6.0).contains(&secs), "{name}: {secs} s");
            // Not silence: some samples well away from zero (u-law 0xFF/0x7F).
            let loud = a.iter().filter(|&&b| (b & 0x7F) < 0x40).count();
            assert!(loud > a.len() / 20, "{name} is nearly silent");
        }
        let p = prompt(&phrases(Some(12), Some(300), Some('1'))).unwrap();
        assert!(p.duration().as_secs_f64() > 4.0);
    }
}
