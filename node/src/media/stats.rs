//! Per-stream reception quality (RFC 3550 A.1, A.3, A.8) and an estimated MOS (ITU-T G.107).
//!
//! [`ReceiverStats`] is fed one [`Arrival`] per RTP packet, with the arrival time passed
//! in, and keeps packet and byte counts, the extended highest sequence number with the
//! RFC 3550 probation and restart rules, loss, out-of-order and duplicate counts (from a
//! 64-packet bitmap window) and interarrival jitter. It produces the report block our RTCP
//! receiver reports carry. [`RemoteReception`] folds in the blocks the peer sends about
//! our own stream. [`ReceiverStats::mos`] turns the loss into a MOS via [`super::mos`].

use std::time::{Duration, Instant};

use super::mos::{CodecImpairment, estimate_mos};
use super::rtcp::ReportBlock;

/// A source is valid after this many packets in sequence (RFC 3550 A.1).
pub const MIN_SEQUENTIAL: u16 = 2;
/// A forward jump smaller than this is taken as loss, not as a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// A packet up to this far behind the highest sequence is late, not a restart.
pub const MAX_MISORDER: u16 = 100;
/// How many sequence numbers behind the highest one duplicates are detected.
pub const DUPLICATE_WINDOW: u32 = 64;

const SEQ_MOD: u32 = 1 << 16;

/// One received RTP packet, as the stats need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub sequence: u16,
    pub rtp_timestamp: u32,
    /// When the datagram was received.
    pub at: Instant,
    /// Clock rate of the payload type in Hz (8000 for G.711 and telephone-event).
    pub clock_rate: u32,
    /// Payload bytes (without RTP header).
    pub payload_len: usize,
}

/// What the stats made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Next in sequence or after a gap.
    InOrder,
    /// Behind the highest sequence number seen, first copy.
    OutOfOrder,
    /// A copy of a packet already counted.
    Duplicate,
    /// Source not yet validated (RFC 3550 probation); its timing still feeds jitter.
    Probation,
    /// A single large jump not yet confirmed by the next packet; ignored entirely.
    Stray,
    /// Two consecutive packets after a large jump: the sender restarted; stats restart.
    Restarted,
}

/// Reception statistics of one incoming RTP stream (one SSRC).
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    packets: u64,
    bytes: u64,
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u16,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    out_of_order: u64,
    duplicates: u64,
    /// Bit i set = extended sequence (highest - i) received.
    window: u64,
    epoch: Option<Instant>,
    clock_rate: u32,
    last_transit: Option<u32>,
    /// RFC 3550 A.8 jitter estimate, in timestamp units.
    jitter: f64,
    /// Middle 32 bits of the NTP time of the sender's last SR, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Default for ReceiverStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiverStats {
    /// Stats for a stream not yet heard.
    pub fn new() -> Self {
        Self {
            packets: 0,
            bytes: 0,
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            out_of_order: 0,
            duplicates: 0,
            window: 0,
            epoch: None,
            clock_rate: 0,
            last_transit: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.window = 1;
    }

    /// Folds one packet in and says how it was counted.
    pub fn on_packet(&mut self, arrival: Arrival) -> Verdict {
        self.packets += 1;
        self.bytes += arrival.payload_len as u64;
        let seq = arrival.sequence;
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let verdict = self.update_seq(seq);
        match verdict {
            // A copy or a stray packet says nothing about the stream's timing.
            Verdict::Duplicate | Verdict::Stray => {}
            Verdict::Restarted => {
                // The sender's new timestamp base would show as one huge transit jump.
                self.last_transit = None;
                self.update_jitter(&arrival);
            }
            Verdict::InOrder | Verdict::OutOfOrder | Verdict::Probation => {
                self.update_jitter(&arrival)
            }
        }
        verdict
    }

    /// RFC 3550 A.1 `update_seq`, extended with the duplicate window.
    fn update_seq(&mut self, seq: u16) -> Verdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return Verdict::InOrder;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return Verdict::Probation;
        }
        if udelta == 0 {
            self.duplicates += 1;
            return Verdict::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            self.window = self.window.checked_shl(u32::from(udelta)).unwrap_or(0) | 1;
            self.received += 1;
            return Verdict::InOrder;
        }
        if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two packets in sequence after a big jump: the sender restarted.
                self.init_seq(seq);
                self.received += 1;
                return Verdict::Restarted;
            }
            self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
            return Verdict::Stray;
        }
        // Behind the highest sequence by `back` (1..=MAX_MISORDER).
        let back = SEQ_MOD - u32::from(udelta);
        if back < DUPLICATE_WINDOW {
            let bit = 1u64 << back;
            if self.window & bit != 0 {
                self.duplicates += 1;
                return Verdict::Duplicate;
            }
            self.window |= bit;
        }
        self.out_of_order += 1;
        self.received += 1;
        Verdict::OutOfOrder
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, with D the change in transit time.
    fn update_jitter(&mut self, arrival: &Arrival) {
        if arrival.clock_rate == 0 {
            return;
        }
        if arrival.clock_rate != self.clock_rate {
            // Transit times in different units cannot be compared.
            self.clock_rate = arrival.clock_rate;
            self.last_transit = None;
        }
        let epoch = *self.epoch.get_or_insert(arrival.at);
        let nanos = arrival.at.saturating_duration_since(epoch).as_nanos();
        // Arrival in timestamp units, modulo 2^32 like the RTP timestamp itself.
        let now = (nanos * u128::from(arrival.clock_rate) / 1_000_000_000) as u32;
        let transit = now.wrapping_sub(arrival.rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Every datagram counted for this stream, including duplicates and probation.
    pub fn packets(&self) -> u64 {
        self.packets
    }
    /// Payload bytes of every datagram counted.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Packets counted towards loss (validated, without duplicates).
    pub fn received(&self) -> u64 {
        self.received
    }
    /// Extended highest sequence number: cycles of 2^16 plus the highest sequence.
    pub fn extended_highest(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }
    /// Packets expected since the stream was validated (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        if self.probation > 0 {
            return 0;
        }
        (u64::from(self.cycles) + u64::from(self.max_seq) + 1)
            .saturating_sub(u64::from(self.base_seq))
    }
    /// Packets lost: expected minus received (negative only if late packets beyond the
    /// duplicate window were copies).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }
    /// Lost over expected, 0.0 to 1.0.
    pub fn loss_ratio(&self) -> f64 {
        match self.expected() {
            0 => 0.0,
            e => (self.lost().max(0) as f64 / e as f64).min(1.0),
        }
    }
    /// Packets that arrived behind a later one (first copies only).
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }
    /// Copies of packets already counted.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
    /// Interarrival jitter in milliseconds (0 before the clock rate is known).
    pub fn jitter_ms(&self) -> f64 {
        match self.clock_rate {
            0 => 0.0,
            rate => self.jitter * 1000.0 / f64::from(rate),
        }
    }

    /// Notes the sender's SR (its 64-bit NTP timestamp) arriving `at`, for LSR/DLSR.
    pub fn on_sender_report(&mut self, ntp_timestamp: u64, at: Instant) {
        self.last_sr = Some(((ntp_timestamp >> 16) as u32, at));
    }

    /// The report block about this stream (`ssrc`) for our RR/SR sent `now` (RFC 3550
    /// A.3, §6.4.1); advances the interval used for the fraction lost.
    pub fn report_block(&mut self, ssrc: u32, now: Instant) -> ReportBlock {
        let (lsr, dlsr) = self.last_sr.map_or((0, 0), |(lsr, at)| {
            let held = now.saturating_duration_since(at).as_nanos();
            // DLSR is in 1/65536 s; a delay past 18 h saturates.
            let dlsr = u32::try_from((held << 16) / 1_000_000_000).unwrap_or(u32::MAX);
            (lsr, dlsr)
        });
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_highest(),
            jitter: self.jitter as u32,
            lsr,
            dlsr,
        }
    }

    /// MOS estimate of this stream with `codec` and a one-way delay.
    pub fn mos(&self, codec: CodecImpairment, one_way_delay: Duration) -> f64 {
        estimate_mos(codec, self.loss_ratio(), one_way_delay)
    }
}

/// What the peer reports, in RTCP, about the stream we send it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteReception {
    /// The latest report block, if any.
    pub last: Option<ReportBlock>,
    /// Jitter the peer measured, in milliseconds.
    pub jitter_ms: f64,
    /// Round trip from LSR/DLSR (RFC 3550 §6.4.1), when the peer echoed one of our SRs.
    pub round_trip: Option<Duration>,
    /// Report blocks folded in.
    pub reports: u64,
}

impl RemoteReception {
    /// Folds in a block about our stream. `clock_rate` is that of our payload;
    /// `now_ntp_mid32` is the middle 32 bits of our NTP clock when the RTCP arrived.
    pub fn apply(&mut self, block: &ReportBlock, clock_rate: u32, now_ntp_mid32: u32) {
        self.reports += 1;
        self.last = Some(*block);
        if clock_rate > 0 {
            self.jitter_ms = f64::from(block.jitter) * 1000.0 / f64::from(clock_rate);
        }
        if block.lsr != 0 {
            let rtt = now_ntp_mid32
                .wrapping_sub(block.lsr)
                .wrapping_sub(block.dlsr);
            // A negative round trip (clock skew or a bogus block) wraps to a huge value.
            if rtt < 1 << 31 {
                let nanos = (u64::from(rtt) * 1_000_000_000) >> 16;
                self.round_trip = Some(Duration::from_nanos(nanos));
            }
        }
    }

    /// Fraction of our packets the peer lost in its last interval, 0.0 to 1.0.
    pub fn fraction_lost(&self) -> f64 {
        self.last
            .map_or(0.0, |b| f64::from(b.fraction_lost) / 256.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    /// Feeds packet `n` of a G.711 stream with sequence `seq`, sent at n*20 ms and
    /// arriving `extra` later.
    fn feed(s: &mut ReceiverStats, t0: Instant, n: u32, seq: u16, extra: Duration) -> Verdict {
        s.on_packet(Arrival {
            sequence: seq,
            rtp_timestamp: n * 160,
            at: t0 + PTIME * n + extra,
            clock_rate: 8000,
            payload_len: 160,
        })
    }

    fn stream(seqs: &[u16]) -> (ReceiverStats, Vec<Verdict>) {
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        let v = seqs
            .iter()
            .map(|&q| feed(&mut s, t0, u32::from(q), q, Duration::ZERO))
            .collect();
        (s, v)
    }

    #[test]
    fn in_order_stream() {
        let seqs: Vec<u16> = (100..200).collect();
        let (s, v) = stream(&seqs);
        assert_eq!(v[0], Verdict::Probation);
        assert!(v[1..].iter().all(|v| *v == Verdict::InOrder));
        assert_eq!((s.packets(), s.bytes()), (100, 16_000));
        // The first packet is spent on probation; loss is counted from the second.
        assert_eq!((s.expected(), s.received(), s.lost()), (99, 99, 0));
        assert_eq!(s.extended_highest(), 199);
        assert_eq!((s.out_of_order(), s.duplicates()), (0, 0));
        assert_eq!(s.jitter(), 0.0);
    }

    #[test]
    fn loss_burst_and_fraction_lost() {
        let seqs: Vec<u16> = (0..50).chain(60..100).collect();
        let (mut s, _) = stream(&seqs);
        assert_eq!((s.expected(), s.received(), s.lost()), (99, 89, 10));
        let block = s.report_block(7, Instant::now());
        assert_eq!(block.cumulative_lost, 10);
        assert_eq!(block.fraction_lost, (10 * 256 / 99) as u8);
        assert_eq!(block.highest_seq, 99);
        // Next interval without loss reports 0 fraction but keeps the cumulative count.
        let t0 = Instant::now();
        for q in 100..110u16 {
            feed(&mut s, t0, u32::from(q), q, Duration::ZERO);
        }
        let block = s.report_block(7, Instant::now());
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 10));
    }

    #[test]
    fn reorder_and_duplicates() {
        let (s, v) = stream(&[1, 2, 3, 5, 4, 6, 6, 4, 7]);
        assert_eq!(v[4], Verdict::OutOfOrder);
        assert_eq!(v[6], Verdict::Duplicate);
        assert_eq!(v[7], Verdict::Duplicate);
        assert_eq!((s.out_of_order(), s.duplicates()), (1, 2));
        assert_eq!((s.expected(), s.received(), s.lost()), (6, 6, 0));
        assert_eq!(s.packets(), 9);
    }

    #[test]
    fn late_packet_beyond_the_window_is_out_of_order() {
        let mut seqs: Vec<u16> = (0..100).collect();
        seqs.retain(|&q| q != 20);
        seqs.push(20); // 79 behind: late, outside the 64-packet duplicate window
        let (s, v) = stream(&seqs);
        assert_eq!(v.last(), Some(&Verdict::OutOfOrder));
        assert_eq!((s.lost(), s.out_of_order()), (0, 1));
    }

    #[test]
    fn sequence_wraps_at_65535() {
        let seqs: Vec<u16> = (0..200u16).map(|i| 65_500u16.wrapping_add(i)).collect();
        let (s, _) = stream(&seqs);
        assert_eq!(
            s.extended_highest(),
            (1 << 16) + u32::from(65_500u16.wrapping_add(199))
        );
        assert_eq!((s.expected(), s.lost()), (199, 0));
        // Reordering across the wrap is out-of-order, not a new cycle.
        let (s, v) = stream(&[65_533, 65_534, 0, 65_535, 1]);
        assert_eq!(v[3], Verdict::OutOfOrder);
        assert_eq!((s.extended_highest(), s.lost()), ((1 << 16) + 1, 0));
    }

    #[test]
    fn large_jump_needs_two_packets_to_restart() {
        let (s, v) = stream(&[10, 11, 12, 30_000, 13, 40_000, 40_001, 40_002]);
        assert_eq!(v[3], Verdict::Stray); // one stray packet is ignored
        assert_eq!(v[4], Verdict::InOrder);
        assert_eq!(v[5], Verdict::Stray);
        assert_eq!(v[6], Verdict::Restarted);
        assert_eq!(v[7], Verdict::InOrder);
        assert_eq!(
            (s.expected(), s.received(), s.extended_highest()),
            (2, 2, 40_002)
        );
    }

    #[test]
    fn probation_restarts_on_a_gap() {
        let (s, v) = stream(&[5, 9, 10, 11]);
        assert_eq!(
            &v[..3],
            &[Verdict::Probation, Verdict::Probation, Verdict::InOrder]
        );
        assert_eq!((s.expected(), s.received()), (2, 2));
    }

    #[test]
    fn constant_delay_has_zero_jitter() {
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        for n in 0..500u32 {
            feed(&mut s, t0, n, n as u16, Duration::from_millis(35));
        }
        assert_eq!(s.jitter(), 0.0);
        assert_eq!(s.jitter_ms(), 0.0);
    }

    #[test]
    fn alternating_delay_jitter_is_analytic() {
        // Every other packet is 10 ms late: |D| = 80 units for each packet after the
        // first, so J_n = 80 (1 - (15/16)^(n-1)).
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        let n_packets = 200u32;
        for n in 0..n_packets {
            let extra = if n % 2 == 1 {
                Duration::from_millis(10)
            } else {
                Duration::ZERO
            };
            feed(&mut s, t0, n, n as u16, extra);
        }
        let expected = 80.0 * (1.0 - (15.0f64 / 16.0).powi(n_packets as i32 - 1));
        assert!(
            (s.jitter() - expected).abs() < 1e-9,
            "{} vs {expected}",
            s.jitter()
        );
        assert!((s.jitter_ms() - expected / 8.0).abs() < 1e-9);
    }

    #[test]
    fn stray_packets_and_restarts_leave_jitter_alone() {
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        for n in 0..50u32 {
            feed(&mut s, t0, n, n as u16, Duration::ZERO);
        }
        // A stray packet with a wild timestamp, then a restart with a new timestamp base.
        s.on_packet(Arrival {
            sequence: 30_000,
            rtp_timestamp: 0x8000_0000,
            at: t0 + PTIME * 50,
            clock_rate: 8000,
            payload_len: 160,
        });
        for n in 51..60u32 {
            s.on_packet(Arrival {
                sequence: (n + 20_000) as u16,
                rtp_timestamp: 0x4000_0000 + n * 160,
                at: t0 + PTIME * n,
                clock_rate: 8000,
                payload_len: 160,
            });
        }
        assert_eq!(s.jitter(), 0.0);
        assert_eq!(s.extended_highest(), 20_059);
    }

    #[test]
    fn report_block_carries_lsr_and_dlsr() {
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        assert_eq!(s.report_block(1, t0).lsr, 0);
        s.on_sender_report(0x1122_3344_5566_7788, t0);
        let block = s.report_block(1, t0 + Duration::from_millis(1500));
        assert_eq!((block.lsr, block.dlsr), (0x3344_5566, 0x0001_8000));
    }

    #[test]
    fn jitter_survives_timestamp_wrap() {
        let mut s = ReceiverStats::new();
        let t0 = Instant::now();
        for n in 0..100u32 {
            s.on_packet(Arrival {
                sequence: n as u16,
                rtp_timestamp: (u32::MAX - 800).wrapping_add(n * 160),
                at: t0 + PTIME * n,
                clock_rate: 8000,
                payload_len: 160,
            });
        }
        assert_eq!(s.jitter(), 0.0);
    }

    #[test]
    fn remote_report_fold_in() {
        let mut r = RemoteReception::default();
        let block = ReportBlock {
            ssrc: 1,
            fraction_lost: 64,
            cumulative_lost: 5,
            highest_seq: 1000,
            jitter: 160,
            lsr: 0x0001_0000,
            dlsr: 0x0000_8000, // 0.5 s held by the peer
        };
        r.apply(&block, 8000, 0x0001_c000); // arrived 0.75 s after our SR
        assert_eq!(r.fraction_lost(), 0.25);
        assert_eq!(r.jitter_ms, 20.0);
        assert_eq!(r.round_trip, Some(Duration::from_millis(250)));
        assert_eq!(r.reports, 1);
        // A block that would give a negative round trip keeps the previous estimate.
        r.apply(
            &ReportBlock {
                dlsr: 0x0001_0000,
                ..block
            },
            8000,
            0x0001_c000,
        );
        assert_eq!(r.round_trip, Some(Duration::from_millis(250)));
    }

    #[test]
    fn stream_mos_uses_its_loss() {
        let seqs: Vec<u16> = (0..90).chain(100..200).collect();
        let (s, _) = stream(&seqs);
        let mos = s.mos(CodecImpairment::G711_PLC, Duration::from_millis(40));
        assert!(mos > 1.0 && mos < 4.2, "{mos}");
    }
}
