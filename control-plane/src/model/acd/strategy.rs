//! Which eligible agent gets the offer: a pure function of the candidates, so every
//! replica picks the same agent from the same state.

use crate::model::id::Id;
use crate::model::queue::QueueStrategy;

/// An agent who could take the call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub extension: Id,
    /// Position in the queue's member list.
    pub index: usize,
    pub idle_since_ms: u64,
    pub calls_answered: u64,
    /// Level in the queue's skill (0 without the skill).
    pub skill_level: u8,
}

/// The agents to offer the call to (all of them for `RingAll`, else one); empty only
/// when `candidates` is. `last_offered` is the round-robin memory (the member index of
/// the last agent offered a call); `draw` seeds `Random`.
pub(crate) fn pick(
    strategy: QueueStrategy,
    candidates: &[Candidate],
    last_offered: Option<usize>,
    member_count: usize,
    draw: u64,
) -> Vec<Id> {
    if candidates.is_empty() {
        return Vec::new();
    }
    // Longest idle first, then extension: the tie-break of every strategy.
    let idle_key = |c: &Candidate| (c.idle_since_ms, c.extension.clone());
    let one = |c: &Candidate| vec![c.extension.clone()];
    match strategy {
        QueueStrategy::RingAll => {
            let mut all: Vec<&Candidate> = candidates.iter().collect();
            all.sort_by_key(|c| c.index);
            Some(all.into_iter().map(|c| c.extension.clone()).collect())
        }
        QueueStrategy::LongestIdle => candidates.iter().min_by_key(|c| idle_key(c)).map(one),
        QueueStrategy::LeastCalls => candidates
            .iter()
            .min_by_key(|c| (c.calls_answered, idle_key(c)))
            .map(one),
        QueueStrategy::TopDown => candidates.iter().min_by_key(|c| c.index).map(one),
        QueueStrategy::RoundRobin => {
            // The first candidate after the last offered member, wrapping around.
            let n = member_count.max(1);
            let start = last_offered.map_or(0, |i| (i + 1) % n);
            candidates
                .iter()
                .min_by_key(|c| (c.index + n - start) % n)
                .map(one)
        }
        QueueStrategy::Random => {
            let mut sorted: Vec<&Candidate> = candidates.iter().collect();
            sorted.sort_by_key(|c| c.index);
            let i = (splitmix64(draw) % sorted.len() as u64) as usize;
            Some(one(sorted[i]))
        }
        QueueStrategy::SkillsBased => candidates
            .iter()
            .min_by_key(|c| (std::cmp::Reverse(c.skill_level), idle_key(c)))
            .map(one),
    }
    .unwrap_or_default()
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer): deterministic "randomness".
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ext: &str, index: usize, idle: u64, calls: u64, skill: u8) -> Candidate {
        Candidate {
            extension: Id::new(ext).unwrap(),
            index,
            idle_since_ms: idle,
            calls_answered: calls,
            skill_level: skill,
        }
    }

    fn ids(v: &[&str]) -> Vec<Id> {
        v.iter().map(|s| Id::new(s).unwrap()).collect()
    }

    fn set() -> Vec<Candidate> {
        vec![
            c("1003", 2, 100, 5, 90),
            c("1001", 0, 300, 1, 10),
            c("1002", 1, 200, 1, 90),
        ]
    }

    #[test]
    fn each_strategy_picks_as_documented() {
        use QueueStrategy::*;
        let s = set();
        assert_eq!(
            pick(RingAll, &s, None, 3, 0),
            ids(&["1001", "1002", "1003"])
        );
        assert_eq!(pick(LongestIdle, &s, None, 3, 0), ids(&["1003"]));
        // 1001 and 1002 answered one call each: the longer idle (1002) wins.
        assert_eq!(pick(LeastCalls, &s, None, 3, 0), ids(&["1002"]));
        assert_eq!(pick(TopDown, &s, None, 3, 0), ids(&["1001"]));
        // Skill 90 twice: the longer idle of those (1003).
        assert_eq!(pick(SkillsBased, &s, None, 3, 0), ids(&["1003"]));
        assert!(pick(RingAll, &[], None, 3, 0).is_empty());
    }

    #[test]
    fn round_robin_continues_after_the_last_offered_and_wraps() {
        let s = set();
        let rr = |last: Option<usize>| pick(QueueStrategy::RoundRobin, &s, last, 3, 0);
        assert_eq!(rr(None), ids(&["1001"]));
        assert_eq!(rr(Some(0)), ids(&["1002"]));
        assert_eq!(rr(Some(1)), ids(&["1003"]));
        assert_eq!(rr(Some(2)), ids(&["1001"]));
        // With 1002 busy, after 1001 comes 1003; after busy 1002 comes 1003 too.
        let without: Vec<Candidate> = s.iter().filter(|c| c.index != 1).cloned().collect();
        let rr = |last: Option<usize>| pick(QueueStrategy::RoundRobin, &without, last, 3, 0);
        assert_eq!(rr(Some(0)), ids(&["1003"]));
        assert_eq!(rr(Some(1)), ids(&["1003"]));
    }

    #[test]
    fn random_is_deterministic_and_spreads() {
        let s = set();
        let mut seen = std::collections::BTreeSet::new();
        for draw in 0..64 {
            let a = pick(QueueStrategy::Random, &s, None, 3, draw);
            assert_eq!(a, pick(QueueStrategy::Random, &s, None, 3, draw));
            seen.insert(a);
        }
        assert_eq!(seen.len(), 3, "every candidate is drawn sometimes");
    }
}
