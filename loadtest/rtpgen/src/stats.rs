//! Accounting of what arrived, per stream and per direction: unique packets, duplicates,
//! packets that arrived after a later one of the same stream (reordered), and the
//! one-way latency of each unique packet. Sans-IO: the worker feeds it stamps and
//! receive times.

use crate::histogram::Histogram;
use crate::packet::Direction;

/// What one direction received.
#[derive(Debug, Clone, Default)]
pub struct DirectionRx {
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Receive time before the send stamp: the realtime clock stepped during the run.
    pub clock_anomalies: u64,
    pub latency_ns: Histogram,
}

impl DirectionRx {
    pub fn merge(&mut self, other: &DirectionRx) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.clock_anomalies += other.clock_anomalies;
        self.latency_ns.merge(&other.latency_ns);
    }
}

/// What [`RxTracker::on_packet`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    New,
    Reordered,
    Duplicate,
    /// Stream or packet index outside this tracker's plan.
    Foreign,
}

/// Receive state of `streams` streams of at most `max_packets` packets each: one bit per
/// packet, so duplicates are told apart from late packets exactly.
#[derive(Debug)]
pub struct RxTracker {
    words_per_stream: usize,
    max_packets: u32,
    seen: Vec<u64>,
    /// Per stream: highest index seen + 1 (0: nothing yet).
    next_expected: Vec<u32>,
    pub directions: [DirectionRx; 2],
    pub foreign: u64,
}

impl RxTracker {
    pub fn new(streams: usize, max_packets: u32) -> Self {
        let words_per_stream = (max_packets as usize).div_ceil(64);
        RxTracker {
            words_per_stream,
            max_packets,
            seen: vec![0; words_per_stream * streams],
            next_expected: vec![0; streams],
            directions: Default::default(),
            foreign: 0,
        }
    }

    /// Accounts packet `index` of `stream`, sent at `sent_ns` and received at `recv_ns`
    /// (same clock and epoch).
    pub fn on_packet(
        &mut self,
        stream: usize,
        direction: Direction,
        index: u32,
        sent_ns: u64,
        recv_ns: u64,
    ) -> Arrival {
        if stream >= self.next_expected.len() || index >= self.max_packets {
            self.foreign += 1;
            return Arrival::Foreign;
        }
        let word = stream * self.words_per_stream + index as usize / 64;
        let bit = 1u64 << (index % 64);
        let dir = &mut self.directions[direction.index()];
        if self.seen[word] & bit != 0 {
            dir.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.seen[word] |= bit;
        dir.received += 1;
        match recv_ns.checked_sub(sent_ns) {
            Some(latency) => dir.latency_ns.record(latency),
            None => dir.clock_anomalies += 1,
        }
        let next = &mut self.next_expected[stream];
        if index < *next {
            dir.reordered += 1;
            Arrival::Reordered
        } else {
            *next = index + 1;
            Arrival::New
        }
    }

    pub fn received(&self) -> u64 {
        self.directions.iter().map(|d| d.received).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Direction = Direction::CallerToCallee;
    const B: Direction = Direction::CalleeToCaller;

    #[test]
    fn counts_new_reordered_and_duplicate_packets() {
        let mut t = RxTracker::new(2, 200);
        assert_eq!(t.on_packet(0, A, 0, 100, 150), Arrival::New);
        assert_eq!(t.on_packet(0, A, 2, 200, 260), Arrival::New);
        assert_eq!(t.on_packet(0, A, 1, 150, 300), Arrival::Reordered);
        assert_eq!(t.on_packet(0, A, 1, 150, 310), Arrival::Duplicate);
        assert_eq!(t.on_packet(0, A, 130, 0, 10), Arrival::New); // third bitmap word
        assert_eq!(t.on_packet(1, B, 2, 0, 10), Arrival::New); // other stream, same index
        let a = &t.directions[A.index()];
        assert_eq!((a.received, a.reordered, a.duplicates), (4, 1, 1));
        assert_eq!(a.latency_ns.count(), 4);
        assert_eq!(a.latency_ns.max(), Some(150));
        assert_eq!(t.directions[B.index()].received, 1);
        assert_eq!(t.received(), 5);
    }

    #[test]
    fn out_of_plan_packets_are_foreign() {
        let mut t = RxTracker::new(1, 10);
        assert_eq!(t.on_packet(1, A, 0, 0, 0), Arrival::Foreign);
        assert_eq!(t.on_packet(0, A, 10, 0, 0), Arrival::Foreign);
        assert_eq!(t.foreign, 2);
        assert_eq!(t.received(), 0);
    }

    #[test]
    fn a_clock_step_is_counted_not_recorded() {
        let mut t = RxTracker::new(1, 10);
        t.on_packet(0, A, 0, 1000, 10);
        let a = &t.directions[A.index()];
        assert_eq!(
            (a.received, a.clock_anomalies, a.latency_ns.count()),
            (1, 1, 0)
        );
    }
}
