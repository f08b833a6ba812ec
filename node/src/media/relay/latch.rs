//! Symmetric RTP ("latching"): which source a leg accepts media from, and where media for
//! that leg's peer is sent.
//!
//! A phone behind NAT announces a private address in its SDP, but its packets arrive from
//! the NAT's public address and port. So the relay learns ("latches") the real source from
//! the first packet and sends the peer's media back to it. The rules, in order:
//!
//! 1. **Before latching**, packets from any source are accepted and the first one latches.
//!    Media toward the peer goes to the address its SDP gave until then.
//! 2. **Once latched**, only packets from the latched address (IP and port) are accepted;
//!    everything else is dropped and counted. This is what stops an attacker who sprays
//!    the port range from hijacking a call ("RTP bleed").
//! 3. **Re-latching** happens only when (a) the leg's SDP changes its address (re-INVITE,
//!    UPDATE): the latch is reset and rule 1 applies again, or (b) the latched source has
//!    been silent for [`Latch::relatch_after`] (default 2 s) and a new source sends: the
//!    phone's NAT binding changed (Wi-Fi to mobile, NAT timeout). An attacker cannot take
//!    over a stream that is still flowing.
//!
//! RTP and RTCP latch separately when RTCP has its own port; with rtcp-mux they share one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Default silence of the latched source after which another source may take over.
pub const DEFAULT_RELATCH_AFTER: Duration = Duration::from_secs(2);

/// What to do with one received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the latched source.
    Accept,
    /// Accepted, and its source is now the latched one (first packet, or a re-latch).
    Latched,
    /// From another source while the latched one is alive: drop.
    Reject,
}

/// The latching state of one direction of one leg (its RTP, or its separate RTCP).
#[derive(Debug, Clone)]
pub struct Latch {
    expected: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_heard: Option<Instant>,
    relatch_after: Duration,
}

impl Latch {
    /// A latch expecting `expected` (from SDP, if known yet).
    pub fn new(expected: Option<SocketAddr>, relatch_after: Duration) -> Self {
        Self {
            expected,
            latched: None,
            last_heard: None,
            relatch_after,
        }
    }

    /// The silence after which another source may take over.
    pub fn relatch_after(&self) -> Duration {
        self.relatch_after
    }

    /// The peer's SDP address changed (or became known): start over (rule 3a). The same
    /// address again (a re-INVITE that keeps it) keeps the latch.
    pub fn set_expected(&mut self, expected: Option<SocketAddr>) {
        if expected != self.expected {
            self.expected = expected;
            self.latched = None;
            self.last_heard = None;
        }
    }

    /// Decides on a packet from `from` received at `now`.
    pub fn admit(&mut self, from: SocketAddr, now: Instant) -> Admit {
        match self.latched {
            Some(latched) if latched == from => {
                self.last_heard = Some(now);
                Admit::Accept
            }
            Some(_) => {
                let silent = self
                    .last_heard
                    .is_none_or(|heard| now.saturating_duration_since(heard) >= self.relatch_after);
                if silent {
                    self.latch(from, now);
                    Admit::Latched
                } else {
                    Admit::Reject
                }
            }
            None => {
                self.latch(from, now);
                Admit::Latched
            }
        }
    }

    fn latch(&mut self, from: SocketAddr, now: Instant) {
        self.latched = Some(from);
        self.last_heard = Some(now);
    }

    /// Where media for this peer goes: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.expected)
    }

    /// The latched source, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// When the latched source last sent.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_packet_latches_even_from_another_address_than_sdp() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("192.168.1.10:4000")), DEFAULT_RELATCH_AFTER);
        assert_eq!(latch.destination(), Some(addr("192.168.1.10:4000")));
        assert_eq!(latch.admit(addr("203.0.113.5:61000"), t0), Admit::Latched);
        assert_eq!(latch.destination(), Some(addr("203.0.113.5:61000")));
        assert_eq!(latch.admit(addr("203.0.113.5:61000"), t0), Admit::Accept);
    }

    #[test]
    fn another_source_is_rejected_while_the_latched_one_is_alive() {
        let t0 = Instant::now();
        let mut latch = Latch::new(None, DEFAULT_RELATCH_AFTER);
        latch.admit(addr("127.0.0.1:5000"), t0);
        let attacker = addr("127.0.0.1:6666");
        assert_eq!(
            latch.admit(attacker, t0 + Duration::from_millis(10)),
            Admit::Reject
        );
        assert_eq!(
            latch.admit(addr("127.0.0.1:5000"), t0 + Duration::from_millis(20)),
            Admit::Accept
        );
        // Still rejected 1.99 s after the last genuine packet.
        assert_eq!(
            latch.admit(attacker, t0 + Duration::from_millis(2010)),
            Admit::Reject
        );
        assert_eq!(latch.destination(), Some(addr("127.0.0.1:5000")));
    }

    #[test]
    fn a_silent_source_can_be_replaced_after_the_relatch_time() {
        let t0 = Instant::now();
        let mut latch = Latch::new(None, Duration::from_secs(2));
        latch.admit(addr("10.0.0.1:5000"), t0);
        let moved = addr("10.0.0.1:5002");
        assert_eq!(
            latch.admit(moved, t0 + Duration::from_secs(2)),
            Admit::Latched
        );
        assert_eq!(latch.destination(), Some(moved));
        assert_eq!(
            latch.admit(addr("10.0.0.1:5000"), t0 + Duration::from_secs(2)),
            Admit::Reject
        );
    }

    #[test]
    fn a_changed_sdp_address_resets_the_latch_and_the_same_one_keeps_it() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("10.0.0.1:4000")), DEFAULT_RELATCH_AFTER);
        latch.admit(addr("10.0.0.1:4000"), t0);
        latch.set_expected(Some(addr("10.0.0.1:4000")));
        assert_eq!(latch.latched(), Some(addr("10.0.0.1:4000")));
        latch.set_expected(Some(addr("10.0.0.2:4000")));
        assert_eq!(latch.latched(), None);
        assert_eq!(latch.destination(), Some(addr("10.0.0.2:4000")));
        assert_eq!(latch.admit(addr("10.0.0.2:4000"), t0), Admit::Latched);
    }
}
