//! The node's RTP port pool: which UDP port numbers a media session may bind.
//!
//! Ports are handed out in pairs: an even RTP port and the odd port above it for RTCP
//! (RFC 3550 §11). With rtcp-mux (RFC 5761) RTCP shares the RTP port, but the odd port
//! stays reserved so that a session whose offer asked for rtcp-mux can still fall back to
//! a separate RTCP port when the answer declines it. The pool is only about numbers;
//! binding on IPv4 and/or IPv6 addresses happens at the edge.
//!
//! Free pairs sit in a FIFO, so allocation and release are O(1) and a released pair goes
//! to the back of the queue: the longest possible quarantine before reuse, which keeps late
//! packets of an ended call from reaching (or latching) the next call on the same port.

use std::collections::VecDeque;

/// Why a range is invalid, or an allocation or release failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The configured range holds no even/odd pair (after rounding the start up to even).
    #[error(
        "RTP port range {min}-{max} holds no even RTP port with its RTCP port; \
         give a range such as 30000-39999"
    )]
    EmptyRange { min: u16, max: u16 },
    /// Port 0 asks the OS for any port; it cannot be part of a pool.
    #[error("RTP port range must not include port 0")]
    ZeroPort,
    /// Every pair is in use.
    #[error("all {pairs} RTP port pairs are in use; widen the RTP port range")]
    Exhausted { pairs: usize },
    /// Released a pair this pool did not hand out, or released it twice.
    #[error("RTP port {rtp} is not allocated from this pool")]
    NotAllocated { rtp: u16 },
}

/// A validated range of RTP/RTCP port pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first_rtp: u16,
    pairs: u16,
}

impl PortRange {
    /// The pairs inside `min..=max`: `min` is rounded up to even, and the last pair is the
    /// highest even port whose odd neighbour is still `<= max`.
    pub fn new(min: u16, max: u16) -> Result<Self, PortError> {
        if min == 0 {
            return Err(PortError::ZeroPort);
        }
        let first_rtp = u32::from(min) + u32::from(min % 2);
        let last_rtcp = u32::from(max);
        if first_rtp + 1 > last_rtcp {
            return Err(PortError::EmptyRange { min, max });
        }
        let pairs = (last_rtcp - first_rtp).div_ceil(2);
        // first_rtp <= max <= u16::MAX and pairs <= 32768, so both fit.
        Ok(Self {
            first_rtp: first_rtp as u16,
            pairs: pairs as u16,
        })
    }

    /// The lowest RTP port.
    pub fn first_rtp(&self) -> u16 {
        self.first_rtp
    }
    /// The highest RTP port.
    pub fn last_rtp(&self) -> u16 {
        self.first_rtp + 2 * (self.pairs - 1)
    }
    /// Number of pairs, i.e. of media streams the node can anchor at once.
    pub fn pairs(&self) -> usize {
        usize::from(self.pairs)
    }

    fn rtp_of(&self, index: u16) -> u16 {
        self.first_rtp + 2 * index
    }

    fn index_of(&self, rtp: u16) -> Option<u16> {
        let offset = rtp.checked_sub(self.first_rtp)?;
        (offset % 2 == 0 && offset / 2 < self.pairs).then_some(offset / 2)
    }
}

/// An allocated RTP port and its RTCP port. Not `Clone`: give it back with
/// [`PortPool::release`] exactly once.
#[derive(Debug, PartialEq, Eq)]
pub struct PortPair {
    rtp: u16,
}

impl PortPair {
    /// The even RTP port.
    pub fn rtp(&self) -> u16 {
        self.rtp
    }
    /// The port RTCP uses: the RTP port itself with rtcp-mux, else RTP + 1.
    pub fn rtcp(&self, rtcp_mux: bool) -> u16 {
        if rtcp_mux { self.rtp } else { self.rtp + 1 }
    }
}

/// Allocates and releases port pairs from one [`PortRange`].
#[derive(Debug, Clone)]
pub struct PortPool {
    range: PortRange,
    /// Indices of free pairs, oldest release first.
    free: VecDeque<u16>,
    allocated: Vec<bool>,
    in_use: usize,
}

impl PortPool {
    /// A pool with every pair of `range` free, lowest first.
    pub fn new(range: PortRange) -> Self {
        Self::starting_at(range, 0)
    }

    /// A pool whose first allocation is pair `start` (modulo the range), then upwards
    /// and around. Processes sharing a range on one machine (several nodes, tests)
    /// start at different places instead of all fighting over the first ports.
    pub fn starting_at(range: PortRange, start: u16) -> Self {
        let start = start % range.pairs;
        Self {
            range,
            free: (start..range.pairs).chain(0..start).collect(),
            allocated: vec![false; range.pairs()],
            in_use: 0,
        }
    }

    /// The range this pool serves.
    pub fn range(&self) -> PortRange {
        self.range
    }
    /// Pairs currently handed out.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
    /// Pairs that can still be allocated.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes the pair that has been free the longest.
    pub fn allocate(&mut self) -> Result<PortPair, PortError> {
        let Some(index) = self.free.pop_front() else {
            return Err(PortError::Exhausted {
                pairs: self.range.pairs(),
            });
        };
        self.allocated[usize::from(index)] = true;
        self.in_use += 1;
        Ok(PortPair {
            rtp: self.range.rtp_of(index),
        })
    }

    /// Gives a pair back; it is reused only after every other free pair.
    pub fn release(&mut self, pair: PortPair) -> Result<(), PortError> {
        let not_allocated = PortError::NotAllocated { rtp: pair.rtp };
        let Some(index) = self.range.index_of(pair.rtp) else {
            return Err(not_allocated);
        };
        let slot = &mut self.allocated[usize::from(index)];
        if !*slot {
            return Err(not_allocated);
        }
        *slot = false;
        self.in_use -= 1;
        self.free.push_back(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn range_rounds_to_pairs() {
        let r = PortRange::new(30_001, 30_010).expect("valid");
        assert_eq!(
            (r.first_rtp(), r.last_rtp(), r.pairs()),
            (30_002, 30_008, 4)
        );
        let r = PortRange::new(30_000, 30_001).expect("valid");
        assert_eq!(
            (r.first_rtp(), r.last_rtp(), r.pairs()),
            (30_000, 30_000, 1)
        );
        let r = PortRange::new(65_534, 65_535).expect("valid");
        assert_eq!(r.last_rtp(), 65_534);
        assert_eq!(PortRange::new(1, u16::MAX).map(|r| r.pairs()), Ok(32_767));
        assert_eq!(
            PortRange::new(30_001, 30_002),
            Err(PortError::EmptyRange {
                min: 30_001,
                max: 30_002
            })
        );
        assert_eq!(
            PortRange::new(65_535, 65_535),
            Err(PortError::EmptyRange {
                min: 65_535,
                max: 65_535
            })
        );
        assert!(matches!(
            PortRange::new(40_000, 30_000),
            Err(PortError::EmptyRange { .. })
        ));
        assert_eq!(PortRange::new(0, 100), Err(PortError::ZeroPort));
    }

    #[test]
    fn allocates_pairs_and_reports_exhaustion() {
        let mut pool = PortPool::new(PortRange::new(40_000, 40_005).expect("valid"));
        let mut rotated = PortPool::starting_at(PortRange::new(40_000, 40_005).expect("valid"), 4);
        // 3 pairs; start 4 wraps to pair 1: 40002, 40004, then 40000.
        let order: Vec<u16> = (0..3).map(|_| rotated.allocate().unwrap().rtp()).collect();
        assert_eq!(order, [40_002, 40_004, 40_000]);
        let a = pool.allocate().expect("free");
        let b = pool.allocate().expect("free");
        let c = pool.allocate().expect("free");
        assert_eq!(
            (a.rtp(), a.rtcp(false), a.rtcp(true)),
            (40_000, 40_001, 40_000)
        );
        assert_eq!((b.rtp(), c.rtp()), (40_002, 40_004));
        assert_eq!(pool.allocate(), Err(PortError::Exhausted { pairs: 3 }));
        assert_eq!((pool.in_use(), pool.available()), (3, 0));
        pool.release(b).expect("allocated");
        assert_eq!((pool.in_use(), pool.available()), (2, 1));
        assert_eq!(pool.allocate().map(|p| p.rtp()), Ok(40_002));
    }

    #[test]
    fn released_pairs_are_reused_last() {
        let mut pool = PortPool::new(PortRange::new(40_000, 40_009).expect("valid"));
        let first = pool.allocate().expect("free");
        pool.release(first).expect("allocated");
        let order: Vec<u16> = (0..5)
            .map(|_| pool.allocate().expect("free").rtp())
            .collect();
        assert_eq!(order, vec![40_002, 40_004, 40_006, 40_008, 40_000]);
    }

    #[test]
    fn rejects_foreign_and_double_release() {
        let mut pool = PortPool::new(PortRange::new(40_000, 40_009).expect("valid"));
        let a = pool.allocate().expect("free");
        let rtp = a.rtp();
        pool.release(a).expect("allocated");
        assert_eq!(
            pool.release(PortPair { rtp }),
            Err(PortError::NotAllocated { rtp })
        );
        for rtp in [40_001, 39_998, 40_010, 50_000] {
            assert_eq!(
                pool.release(PortPair { rtp }),
                Err(PortError::NotAllocated { rtp })
            );
        }
        assert_eq!((pool.in_use(), pool.available()), (0, 5));
    }

    proptest! {
        /// Random allocate/release churn against a model: no pair is handed out twice,
        /// released pairs come back, and the counts always add up.
        #[test]
        fn churn_never_leaks_or_double_allocates(
            pairs in 1u16..40,
            ops in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..400),
        ) {
            let range = PortRange::new(20_000, 20_000 + 2 * pairs - 1).expect("valid");
            let mut pool = PortPool::new(range);
            let mut held: Vec<PortPair> = Vec::new();
            let mut held_ports: HashSet<u16> = HashSet::new();
            for (allocate, pick) in ops {
                if allocate || held.is_empty() {
                    match pool.allocate() {
                        Ok(pair) => {
                            prop_assert_eq!(pair.rtp() % 2, 0);
                            prop_assert!(pair.rtp() >= range.first_rtp() && pair.rtp() <= range.last_rtp());
                            prop_assert!(held_ports.insert(pair.rtp()), "double allocation of {}", pair.rtp());
                            held.push(pair);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, PortError::Exhausted { pairs: range.pairs() });
                            prop_assert_eq!(held.len(), range.pairs());
                        }
                    }
                } else {
                    let pair = held.swap_remove(pick.index(held.len()));
                    held_ports.remove(&pair.rtp());
                    pool.release(pair).expect("held pairs are allocated");
                }
                prop_assert_eq!(pool.in_use(), held.len());
                prop_assert_eq!(pool.in_use() + pool.available(), range.pairs());
            }
            for pair in held.drain(..) {
                pool.release(pair).expect("held pairs are allocated");
            }
            let all: HashSet<u16> = (0..range.pairs()).map(|_| pool.allocate().expect("no leak").rtp()).collect();
            prop_assert_eq!(all.len(), range.pairs());
            prop_assert!(pool.allocate().is_err());
        }
    }
}
