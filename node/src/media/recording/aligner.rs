//! Sans-IO alignment of a call's two legs into one stereo timeline.
//!
//! Each leg's packets are placed by RTP timestamp, not by arrival, so jitter and
//! reordering do not smear the audio: the first packet of a side (and the first after an
//! SSRC change or a timestamp jump of more than a second) anchors that side's RTP clock
//! to its arrival time relative to the recording start, and later packets go at
//! `anchor + (timestamp - anchor timestamp)`, with 32-bit wraparound. Frames are handed
//! out only once they are older than the reorder window, so a packet that arrives a little
//! out of order still lands in place; a packet behind the window is dropped and counted.
//! Whatever no packet covered (loss, silence suppression, DTMF events, comfort noise) is
//! silence, and a paused span is silence on both channels whatever arrives for it.
//!
//! Senders' clocks drift against ours (100 ppm is 0.36 s an hour). A slow sender's packets
//! would fall ever further behind their arrival until they all miss the window, so when
//! every packet of a whole second arrived more than half a window after its place, the
//! side's anchor moves forward by the smallest such lateness (a short silence, once).
//!
//! No packet is placed more than a second from its arrival (further is a jump, and
//! re-anchors), so what a side buffers is bounded by that second, the window and the time
//! since the last [`StereoAligner::drain`], whatever timestamps a peer sends.
//!
//! Time is passed in; the aligner owns no clock and does no IO.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::g711::Law;
use super::{RecordedPacket, SAMPLE_RATE, Side};

/// How long frames wait for late packets before they are handed out.
pub const DEFAULT_REORDER_WINDOW: Duration = Duration::from_millis(100);

/// A packet whose timestamp puts it this far (in samples) from where its arrival says it
/// belongs starts a new anchor: the sender restarted its clock (e.g. after a re-INVITE)
/// without changing SSRC.
const JUMP: i64 = SAMPLE_RATE as i64;

/// Arrival span (in samples) over which the smallest lateness of a side is measured for
/// drift correction.
const DRIFT_EPOCH: i64 = SAMPLE_RATE as i64;

/// How many sequence numbers behind the newest one duplicates are recognised.
const SEEN_WINDOW: i16 = 128;

/// What became of one pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Its samples are on the timeline.
    Written,
    /// A copy of a packet already written.
    Duplicate,
    /// Its place was already handed out (it arrived after the reorder window).
    Late,
    /// Not G.711 audio (telephone-event, comfort noise, empty): its span stays silent.
    NotAudio,
}

/// Counters of what the aligner did with the packets it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlignerStats {
    pub written: u64,
    pub duplicates: u64,
    pub late: u64,
    pub not_audio: u64,
    /// New anchors after the first of a side: SSRC changes and timestamp jumps.
    pub reanchors: u64,
    /// Forward anchor moves for a sender whose clock runs slow.
    pub drift_corrections: u64,
}

/// One side's RTP clock: how its timestamps map onto the recording's timeline.
#[derive(Debug, Clone)]
struct RtpClock {
    ssrc: u32,
    /// Timeline position (samples since the recording start) of relative timestamp 0.
    anchor_pos: i64,
    /// The newest packet's timestamp and its extended distance from the anchor's, so a
    /// call may run past any number of 32-bit wraps.
    newest_ts: u32,
    newest_rel: i64,
    newest_seq: u16,
    /// Bit `i` set: sequence `newest_seq - i` was seen.
    seen: u128,
    epoch_start: i64,
    epoch_min_lateness: i64,
}

impl RtpClock {
    fn anchored(ssrc: u32, sequence: u16, timestamp: u32, arrival_pos: i64) -> RtpClock {
        RtpClock {
            ssrc,
            anchor_pos: arrival_pos,
            newest_ts: timestamp,
            newest_rel: 0,
            newest_seq: sequence,
            seen: 1,
            epoch_start: arrival_pos,
            epoch_min_lateness: i64::MAX,
        }
    }
}

#[derive(Debug, Default)]
struct Channel {
    /// Samples from the first frame not yet emitted onwards.
    pending: VecDeque<i16>,
    clock: Option<RtpClock>,
}

/// Places both legs of a call on one 8 kHz timeline and hands out interleaved 16-bit
/// stereo frames (caller left, callee right), little-endian as WAV stores them.
#[derive(Debug)]
pub struct StereoAligner {
    start: Instant,
    window: i64,
    /// Frames handed out so far; the timeline position of `pending[0]` on both sides.
    emitted: i64,
    channels: [Channel; 2],
    /// Muted spans `[from, to)` of the timeline, in order; `to` is `i64::MAX` while paused.
    mutes: VecDeque<(i64, i64)>,
    stats: AlignerStats,
}

impl StereoAligner {
    /// An aligner for a recording that starts at `start`, with the default reorder window.
    pub fn new(start: Instant) -> StereoAligner {
        StereoAligner::with_window(start, DEFAULT_REORDER_WINDOW)
    }

    pub fn with_window(start: Instant, window: Duration) -> StereoAligner {
        StereoAligner {
            start,
            window: samples_in(window),
            emitted: 0,
            channels: [Channel::default(), Channel::default()],
            mutes: VecDeque::new(),
            stats: AlignerStats::default(),
        }
    }

    pub fn stats(&self) -> AlignerStats {
        self.stats
    }

    /// Frames handed out so far (the length of the recording written).
    pub fn frames_emitted(&self) -> u64 {
        self.emitted as u64
    }

    pub fn is_paused(&self) -> bool {
        self.mutes.back().is_some_and(|&(_, to)| to == i64::MAX)
    }

    /// Timeline position of an instant: samples since the start (0 before it).
    fn position(&self, at: Instant) -> i64 {
        samples_in(at.saturating_duration_since(self.start))
    }

    /// From `at` on, both channels are silence until [`StereoAligner::resume`].
    pub fn pause(&mut self, at: Instant) {
        if !self.is_paused() {
            let from = self.position(at).max(self.emitted);
            self.mutes.push_back((from, i64::MAX));
        }
    }

    pub fn resume(&mut self, at: Instant) {
        let to = self.position(at);
        if let Some(last) = self.mutes.back_mut()
            && last.1 == i64::MAX
        {
            last.1 = to.max(last.0);
        }
    }

    /// Places one packet on its side's timeline.
    pub fn push(&mut self, packet: &RecordedPacket) -> PushOutcome {
        let outcome = self.place(packet);
        let counter = match outcome {
            PushOutcome::Written => &mut self.stats.written,
            PushOutcome::Duplicate => &mut self.stats.duplicates,
            PushOutcome::Late => &mut self.stats.late,
            PushOutcome::NotAudio => &mut self.stats.not_audio,
        };
        *counter += 1;
        outcome
    }

    fn place(&mut self, packet: &RecordedPacket) -> PushOutcome {
        let Some(law) = Law::from_payload_type(packet.payload_type) else {
            return PushOutcome::NotAudio;
        };
        let payload = packet.payload();
        if payload.is_empty() {
            return PushOutcome::NotAudio;
        }
        let arrival_pos = self.position(packet.arrival);
        let window = self.window;
        let half_window = window / 2;
        let channel = &mut self.channels[side_index(packet.side)];

        let pos = match &mut channel.clock {
            Some(clock) if clock.ssrc == packet.ssrc => {
                let ahead = packet.sequence.wrapping_sub(clock.newest_seq) as i16;
                let behind = -i32::from(ahead);
                let recent = (0..i32::from(SEEN_WINDOW)).contains(&behind);
                if recent && clock.seen & (1u128 << behind) != 0 {
                    return PushOutcome::Duplicate;
                }
                let rel = clock.newest_rel
                    + i64::from(packet.timestamp.wrapping_sub(clock.newest_ts) as i32);
                let pos = clock.anchor_pos + rel;
                if (pos - arrival_pos).abs() > JUMP {
                    // The sender restarted its clock (a re-INVITE, a transfer behind a
                    // gateway) and kept its SSRC; its sequence numbers may have moved too.
                    *clock = RtpClock::anchored(
                        packet.ssrc,
                        packet.sequence,
                        packet.timestamp,
                        arrival_pos,
                    );
                    self.stats.reanchors += 1;
                    arrival_pos
                } else if ahead > 0 {
                    clock.seen = if ahead >= SEEN_WINDOW {
                        1
                    } else {
                        (clock.seen << ahead) | 1
                    };
                    clock.newest_seq = packet.sequence;
                    clock.newest_ts = packet.timestamp;
                    clock.newest_rel = rel;
                    let lateness = arrival_pos - pos;
                    clock.epoch_min_lateness = clock.epoch_min_lateness.min(lateness);
                    if arrival_pos - clock.epoch_start >= DRIFT_EPOCH {
                        let min = clock.epoch_min_lateness;
                        if min > half_window {
                            clock.anchor_pos += min;
                            self.stats.drift_corrections += 1;
                        }
                        clock.epoch_start = arrival_pos;
                        clock.epoch_min_lateness = i64::MAX;
                    }
                    clock.anchor_pos + rel
                } else if recent {
                    // Reordered: it goes where its timestamp says.
                    clock.seen |= 1u128 << behind;
                    pos
                } else if arrival_pos - pos <= window {
                    // Far behind in sequence yet on time: the sender renumbered its
                    // packets. Follow the new numbering rather than drop everything
                    // until it catches up with the old one.
                    clock.newest_seq = packet.sequence;
                    clock.newest_ts = packet.timestamp;
                    clock.newest_rel = rel;
                    clock.seen = 1;
                    pos
                } else {
                    return PushOutcome::Late;
                }
            }
            previous => {
                if previous.is_some() {
                    self.stats.reanchors += 1;
                }
                *previous = Some(RtpClock::anchored(
                    packet.ssrc,
                    packet.sequence,
                    packet.timestamp,
                    arrival_pos,
                ));
                arrival_pos
            }
        };

        let end = pos + payload.len() as i64;
        if end <= self.emitted {
            return PushOutcome::Late;
        }
        // A packet straddling the emitted edge keeps its not-yet-emitted tail.
        let skip = (self.emitted - pos).max(0) as usize;
        let first = (pos + skip as i64 - self.emitted) as usize;
        let needed = (end - self.emitted) as usize;
        if channel.pending.len() < needed {
            channel.pending.resize(needed, 0);
        }
        for (slot, &byte) in channel
            .pending
            .range_mut(first..needed)
            .zip(&payload[skip..])
        {
            *slot = law.decode(byte);
        }
        PushOutcome::Written
    }

    /// Appends the frames older than the reorder window at `now` to `out`; returns how
    /// many frames that was.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<u8>) -> usize {
        let until = self.position(now) - self.window;
        self.emit_until(until, out)
    }

    /// Appends every remaining frame up to `now` (or up to the last buffered sample, if
    /// that is later): the end of the recording.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<u8>) -> usize {
        let buffered = self
            .channels
            .iter()
            .map(|c| self.emitted + c.pending.len() as i64)
            .max()
            .unwrap_or(self.emitted);
        let until = self.position(now).max(buffered);
        self.emit_until(until, out)
    }

    fn emit_until(&mut self, until: i64, out: &mut Vec<u8>) -> usize {
        if until <= self.emitted {
            return 0;
        }
        let frames = (until - self.emitted) as usize;
        out.reserve(frames * 4);
        let [caller, callee] = &mut self.channels;
        for frame in self.emitted..until {
            let left = caller.pending.pop_front().unwrap_or(0);
            let right = callee.pending.pop_front().unwrap_or(0);
            while self.mutes.front().is_some_and(|&(_, to)| to <= frame) {
                self.mutes.pop_front();
            }
            let muted = self.mutes.front().is_some_and(|&(from, _)| from <= frame);
            let (left, right) = if muted { (0, 0) } else { (left, right) };
            out.extend_from_slice(&left.to_le_bytes());
            out.extend_from_slice(&right.to_le_bytes());
        }
        self.emitted = until;
        frames
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Caller => 0,
        Side::Callee => 1,
    }
}

fn samples_in(d: Duration) -> i64 {
    (d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as i64
}
