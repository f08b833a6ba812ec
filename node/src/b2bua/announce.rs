//! Announcements to callers waiting in a queue: their position and expected wait, and the
//! callback key, in a built-in English or Vietnamese voice (prompts generated with
//! espeak-ng by `node/prompts/generate.py` and embedded in the binary).
//!
//! The expected wait comes from the control plane at entry (`QueueJoined`): callers ahead
//! are served as many at a time as the queue has members available, each taking the
//! queue's recent handle time (talk + wrap-up, a moving average), so
//! `ceil(position / available) * handle time`; none before the queue handled a call or
//! while nobody is available. Later announcements scale it by the position now over the
//! position at entry.

use tongdai_control_plane::model::AnnounceLanguage;

use crate::media::g711::Law;
use crate::media::playback::Prompt;

macro_rules! prompts {
    ($audio:ident, $all:ident, $dir:literal, [$($name:literal),* $(,)?]) => {
        /// A built-in prompt's u-law audio.
        fn $audio(name: &str) -> Option<&'static [u8]> {
            match name {
                $($name => Some(include_bytes!(concat!("../../prompts/", $dir, "/", $name, ".ulaw"))),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const $all: &[&str] = &[$($name),*];
    };
}

prompts!(
    audio_en,
    ALL_EN,
    "en",
    [
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
    ]
);

prompts!(
    audio_vi,
    ALL_VI,
    "vi",
    [
        "caller_number",
        "le",
        "lam",
        "minutes",
        "mot",
        "muoi",
        "muoi_ten",
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
        "pound",
        "press_for_callback",
        "star",
        "tram",
        "tu",
        "under_a_minute",
        "wait_about",
    ]
);

/// Silence between phrases, samples (200 ms).
const GAP: usize = 1600;
/// u-law silence.
const SILENCE: u8 = 0xFF;

/// The words of a number 0..=999 in `lang` (`None` above).
pub fn number_words(lang: AnnounceLanguage, n: u32) -> Option<Vec<&'static str>> {
    match lang {
        AnnounceLanguage::En => number_words_en(n),
        AnnounceLanguage::Vi => number_words_vi(n),
    }
}

/// Vietnamese numbers: `hai mươi mốt` (21), `mười lăm` (15), `hai mươi tư` (24), `một trăm
/// lẻ năm` (105), `một trăm mười` (110).
fn number_words_vi(n: u32) -> Option<Vec<&'static str>> {
    const DIGITS: [&str; 10] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"];
    if n > 999 {
        return None;
    }
    let (hundreds, rest) = (n / 100, n % 100);
    let mut out = Vec::new();
    if hundreds > 0 {
        out.push(DIGITS[hundreds as usize]);
        out.push("tram");
        if rest == 0 {
            return Some(out);
        }
        if rest < 10 {
            out.push("le");
        }
    }
    let (tens, units) = (rest / 10, rest % 10);
    match tens {
        0 => {
            out.push(DIGITS[units as usize]);
            return Some(out);
        }
        1 => out.push("muoi_ten"),
        t => {
            out.push(DIGITS[t as usize]);
            out.push("muoi");
        }
    }
    match units {
        0 => {}
        1 if tens >= 2 => out.push("mot"),
        4 if tens >= 2 => out.push("tu"),
        5 => out.push("lam"),
        u => out.push(DIGITS[u as usize]),
    }
    Some(out)
}

fn number_words_en(n: u32) -> Option<Vec<&'static str>> {
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
    lang: AnnounceLanguage,
    position: Option<u32>,
    expected_wait_secs: Option<u32>,
    callback_digit: Option<char>,
) -> Vec<Vec<&'static str>> {
    let number = |n| number_words(lang, n);
    let mut out = Vec::new();
    if let Some(words) = position.filter(|p| *p > 0).and_then(number) {
        out.push(vec!["caller_number"]);
        out.push(words);
    }
    match expected_wait_secs {
        Some(s) if s < 60 => out.push(vec!["under_a_minute"]),
        Some(s) => {
            let minutes = (s + 30) / 60;
            if let Some(words) = number(minutes) {
                let mut p = vec!["wait_about"];
                p.extend(words);
                // Vietnamese nouns have no plural.
                p.push(if minutes == 1 && lang == AnnounceLanguage::En {
                    "minute"
                } else {
                    "minutes"
                });
                out.push(p);
            }
        }
        None => {}
    }
    let key = match callback_digit {
        Some(d @ '0'..='9') => number(u32::from(d) - u32::from('0')),
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
pub fn prompt(lang: AnnounceLanguage, phrases: &[Vec<&'static str>]) -> Option<Prompt> {
    let mut audio = Vec::new();
    for phrase in phrases {
        for word in phrase {
            audio.extend_from_slice(audio_of(lang, word));
        }
        audio.extend(std::iter::repeat_n(SILENCE, GAP));
    }
    Prompt::from_raw(&audio, Law::Ulaw, Law::Ulaw).ok()
}

fn audio_of(lang: AnnounceLanguage, word: &str) -> &'static [u8] {
    let audio = match lang {
        AnnounceLanguage::En => audio_en(word),
        AnnounceLanguage::Vi => audio_vi(word),
    };
    audio.unwrap_or_else(|| panic!("built-in prompt {lang:?}/{word} is embedded"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnnounceLanguage::{En, Vi};

    #[test]
    fn numbers_are_said_as_words() {
        let en = |n| number_words(En, n);
        assert_eq!(en(0).unwrap(), ["n0"]);
        assert_eq!(en(7).unwrap(), ["n7"]);
        assert_eq!(en(19).unwrap(), ["n19"]);
        assert_eq!(en(20).unwrap(), ["n20"]);
        assert_eq!(en(23).unwrap(), ["n20", "n3"]);
        assert_eq!(en(100).unwrap(), ["n1", "hundred"]);
        assert_eq!(en(115).unwrap(), ["n1", "hundred", "n15"]);
        assert_eq!(en(999).unwrap(), ["n9", "hundred", "n90", "n9"]);
        assert_eq!(en(1000), None);
    }

    #[test]
    fn vietnamese_numbers_follow_the_spoken_rules() {
        let vi = |n| number_words(Vi, n).unwrap();
        assert_eq!(vi(0), ["n0"]);
        assert_eq!(vi(7), ["n7"]);
        assert_eq!(vi(10), ["muoi_ten"]);
        assert_eq!(vi(11), ["muoi_ten", "n1"]);
        assert_eq!(vi(14), ["muoi_ten", "n4"]);
        assert_eq!(vi(15), ["muoi_ten", "lam"]);
        assert_eq!(vi(20), ["n2", "muoi"]);
        assert_eq!(vi(21), ["n2", "muoi", "mot"]);
        assert_eq!(vi(24), ["n2", "muoi", "tu"]);
        assert_eq!(vi(25), ["n2", "muoi", "lam"]);
        assert_eq!(vi(99), ["n9", "muoi", "n9"]);
        assert_eq!(vi(100), ["n1", "tram"]);
        assert_eq!(vi(105), ["n1", "tram", "le", "n5"]);
        assert_eq!(vi(110), ["n1", "tram", "muoi_ten"]);
        assert_eq!(vi(124), ["n1", "tram", "n2", "muoi", "tu"]);
        assert_eq!(number_words(Vi, 1000), None);
    }

    #[test]
    fn an_announcement_says_position_wait_and_the_callback_key() {
        assert_eq!(
            phrases(En, Some(3), Some(130), Some('1')),
            [
                vec!["caller_number"],
                vec!["n3"],
                vec!["wait_about", "n2", "minutes"],
                vec!["press_for_callback", "n1"],
            ]
        );
        assert_eq!(
            phrases(En, Some(1), Some(80), None),
            [
                vec!["caller_number"],
                vec!["n1"],
                vec!["wait_about", "n1", "minute"]
            ]
        );
        assert_eq!(
            phrases(En, Some(2), Some(20), Some('#'))[2..],
            [vec!["under_a_minute"], vec!["press_for_callback", "pound"]]
        );
        // Unknown wait, a position too long to say: nothing but the key.
        assert_eq!(
            phrases(En, Some(5000), None, Some('*')),
            [vec!["press_for_callback", "star"]]
        );
        assert!(phrases(En, None, None, None).is_empty());
        assert!(prompt(En, &[]).is_none());
        // Vietnamese: "phút" for one minute too.
        assert_eq!(
            phrases(Vi, Some(21), Some(70), None),
            [
                vec!["caller_number"],
                vec!["n2", "muoi", "mot"],
                vec!["wait_about", "n1", "minutes"]
            ]
        );
    }

    #[test]
    fn every_prompt_is_embedded_speech_of_reasonable_length() {
        let all = ALL_EN
            .iter()
            .map(|n| (En, n))
            .chain(ALL_VI.iter().map(|n| (Vi, n)));
        for (lang, name) in all {
            let a = audio_of(lang, name);
            let secs = a.len() as f64 / 8000.0;
            assert!((0.15..6.0).contains(&secs), "{lang:?}/{name}: {secs} s");
            // Not silence: some samples well away from zero (u-law 0xFF/0x7F).
            let loud = a.iter().filter(|&&b| (b & 0x7F) < 0x40).count();
            assert!(loud > a.len() / 20, "{lang:?}/{name} is nearly silent");
        }
        for lang in [En, Vi] {
            let p = prompt(lang, &phrases(lang, Some(124), Some(300), Some('*'))).unwrap();
            assert!(p.duration().as_secs_f64() > 4.0);
        }
    }
}
