//! When each packet is due. Every call has two streams (one per direction) of one packet
//! per 20 ms. Calls start over the ramp, each on a 20 ms boundary, and the 2N streams'
//! phases are spread evenly over the 20 ms period so the offered load is smooth instead
//! of N packets at once every 20 ms; the two directions of a call are half a period
//! apart. All streams stop at the same time (`end_ns`), so after the ramp every call is
//! streaming until the end: that is the steady window the CPU figures cover.

use crate::packet::Direction;

/// 20 ms: one G.711 frame.
pub const PERIOD_NS: u64 = 20_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    calls: u64,
    ramp_ns: u64,
    end_ns: u64,
}

impl Schedule {
    /// `calls` > 0; streams run from their start until `ramp_ns + duration_ns`.
    pub fn new(calls: u32, ramp_ns: u64, duration_ns: u64) -> Self {
        Schedule {
            calls: u64::from(calls.max(1)),
            ramp_ns,
            end_ns: ramp_ns + duration_ns,
        }
    }

    /// No packet is due at or after this.
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// The window in which every call is streaming: from the end of the ramp plus one
    /// period to the end.
    pub fn steady_window_ns(&self) -> (u64, u64) {
        let from = (self.ramp_ns + PERIOD_NS).min(self.end_ns);
        (from, self.end_ns)
    }

    /// Due time of a stream's first packet.
    pub fn start_ns(&self, call: u32, direction: Direction) -> u64 {
        let call = u64::from(call);
        let ramp_slot = self.ramp_ns * call / self.calls / PERIOD_NS * PERIOD_NS;
        let stream = direction.index() as u64 * self.calls + call;
        ramp_slot + PERIOD_NS * stream / (2 * self.calls)
    }

    /// Due time of packet `index` of a stream.
    #[cfg(test)]
    pub fn due_ns(&self, call: u32, direction: Direction, index: u32) -> u64 {
        self.start_ns(call, direction) + u64::from(index) * PERIOD_NS
    }

    /// How many packets the stream sends (those due before `end_ns`).
    pub fn packets(&self, call: u32, direction: Direction) -> u32 {
        let start = self.start_ns(call, direction);
        if start >= self.end_ns {
            return 0;
        }
        (self.end_ns - start).div_ceil(PERIOD_NS) as u32
    }

    /// An upper bound of `packets` over all streams (sizes the receive bitmaps).
    pub fn max_packets(&self) -> u32 {
        self.end_ns.div_ceil(PERIOD_NS) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn without_ramp_phases_spread_over_one_period() {
        let s = Schedule::new(4, 0, 1000 * MS);
        let mut starts: Vec<u64> = (0..4)
            .flat_map(|c| Direction::BOTH.map(|d| s.start_ns(c, d)))
            .collect();
        starts.sort_unstable();
        assert_eq!(
            starts,
            vec![
                0,
                2_500_000,
                5 * MS,
                7_500_000,
                10 * MS,
                12_500_000,
                15 * MS,
                17_500_000
            ]
        );
        // The two directions of a call are half a period apart.
        assert_eq!(
            s.start_ns(1, Direction::CalleeToCaller) - s.start_ns(1, Direction::CallerToCallee),
            10 * MS
        );
        // 1 s at 50 pps.
        assert!((0..4).all(|c| s.packets(c, Direction::CallerToCallee) == 50));
        assert_eq!(
            s.due_ns(1, Direction::CallerToCallee, 3),
            2_500_000 + 60 * MS
        );
    }

    #[test]
    fn ramp_starts_calls_on_period_boundaries_and_all_end_together() {
        let s = Schedule::new(100, 1000 * MS, 2000 * MS);
        assert_eq!(s.end_ns(), 3000 * MS);
        assert_eq!(s.steady_window_ns(), (1020 * MS, 3000 * MS));
        for c in 0..100 {
            for d in Direction::BOTH {
                let start = s.start_ns(c, d);
                assert!(start < 1000 * MS + PERIOD_NS);
                let n = s.packets(c, d);
                let last = s.due_ns(c, d, n - 1);
                assert!(last < s.end_ns() && last + PERIOD_NS >= s.end_ns());
                assert!(n <= s.max_packets());
            }
        }
        // The last call starts near the end of the ramp (980 ms + 9.9 ms phase) and still
        // sends for the whole duration.
        assert_eq!(s.start_ns(99, Direction::CallerToCallee), 989_900_000);
        assert_eq!(s.packets(99, Direction::CallerToCallee), 101);
        assert_eq!(s.packets(0, Direction::CallerToCallee), 150);
    }

    #[test]
    fn steady_window_never_inverts() {
        let s = Schedule::new(10, 5000 * MS, 0);
        assert_eq!(s.steady_window_ns(), (5000 * MS, 5000 * MS));
        // Calls still stream until the end of the ramp.
        assert_eq!(s.packets(9, Direction::CalleeToCaller), 25);
        let late = Schedule::new(1, 0, 10 * MS);
        assert_eq!(late.packets(0, Direction::CalleeToCaller), 0); // starts at 10 ms = end
    }
}
