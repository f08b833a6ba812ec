//! DTMF: the digits a caller presses, whichever way the phone sends them.
//!
//! Phones send key presses either as RFC 4733 `telephone-event` RTP packets
//! ([`Rfc4733Detector`]) or as dual tones inside the G.711 audio ([`InbandDetector`],
//! Goertzel filters). Both are sans-IO, are fed packets or samples, and report each key
//! press exactly once as a [`DtmfEvent`] with its start and length in 8 kHz samples, so
//! the IVR sees the same thing from either source. [`ToneGenerator`] makes the tones, for
//! tests and for sending DTMF in-band to a peer that has no `telephone-event`.

use std::f64::consts::TAU;

use super::g711::Law;
use super::rtp::RtpPacket;

/// Samples per second of G.711 audio and of the `telephone-event/8000` clock: the only
/// rates this module handles. Durations and timestamps below count these samples.
pub const SAMPLE_RATE: u32 = 8000;

/// RFC 4733 event codes 0 to 15, in order: the sixteen DTMF keys.
const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The key of an RFC 4733 event code, if the code is one of the 16 DTMF events.
pub fn event_digit(code: u8) -> Option<char> {
    DIGITS.get(usize::from(code)).copied()
}

/// The RFC 4733 event code of a key (`a`-`d` are taken as `A`-`D`).
pub fn digit_event(digit: char) -> Option<u8> {
    let digit = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&d| d == digit).map(|i| i as u8)
}

/// How a key press reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 `telephone-event` packets.
    Rfc4733,
    /// Dual tones in the audio.
    Inband,
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfEvent {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub digit: char,
    pub source: DtmfSource,
    /// Start of the press. From RFC 4733 this is the event's RTP timestamp; in-band it is
    /// the index (modulo 2^32) of the tone's first sample among all samples pushed into
    /// the [`InbandDetector`].
    pub rtp_timestamp: u32,
    /// Length of the press in 8 kHz samples (160 per 20 ms).
    pub duration_samples: u32,
}

/// Length of one RFC 4733 event report.
pub const TELEPHONE_EVENT_LEN: usize = 4;

/// One RFC 4733 §2.3 event report: the 4-byte `telephone-event` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0 to 15 are the DTMF keys ([`event_digit`]).
    pub event: u8,
    /// The E bit: this report ends the event (senders repeat it, usually 3 times).
    pub end: bool,
    /// Tone power, 0 to 63 meaning 0 to -63 dBm0.
    pub volume: u8,
    /// Time since the event's start (its RTP timestamp), in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event report of a payload; `None` if it is shorter than 4 bytes.
    /// (A payload may repeat reports of earlier events after the first; the first is
    /// the current one.)
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let &[event, flags, high, low, ..] = payload else {
            return None;
        };
        Some(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    /// The 4-byte payload (reserved bit zero, volume masked to 6 bits).
    pub fn to_bytes(self) -> [u8; TELEPHONE_EVENT_LEN] {
        let [high, low] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            high,
            low,
        ]
    }
}

/// The key presses one packet completed: none, one, or two (an earlier press whose end
/// packets were all lost, then a press whose first packet to arrive is already its end).
#[derive(Debug, Clone, Default)]
pub struct Detected {
    events: [Option<DtmfEvent>; 2],
}

impl Detected {
    fn push(&mut self, event: Option<DtmfEvent>) {
        let Some(event) = event else { return };
        let free = self.events.iter_mut().find(|slot| slot.is_none());
        debug_assert!(free.is_some(), "one packet completes at most two presses");
        if let Some(slot) = free {
            *slot = Some(event);
        }
    }
}

impl Iterator for Detected {
    type Item = DtmfEvent;

    fn next(&mut self) -> Option<DtmfEvent> {
        self.events.iter_mut().find_map(Option::take)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.events.iter().flatten().count();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Detected {}

/// RFC 4733 §2.5.1.3 starts the next segment of a long event at the previous segment's
/// timestamp + 0xFFFF. Some senders cut a segment at their last whole packet instead;
/// a segment that starts up to this many samples (200 ms) early is still taken as one.
const SEGMENT_SLACK: u32 = 1600;

/// Turns `telephone-event` packets of one RTP stream into key presses.
///
/// A press is identified by its RTP timestamp, which all its packets share. It is
/// reported once: when its first end packet (E bit) arrives, with that packet's
/// duration; the repeated end packets are ignored. If all its end packets are lost it is
/// reported, with the last duration seen, when a packet with a newer timestamp arrives
/// (or by [`flush`](Self::flush) at the end of the stream). Packets of a press older than
/// the newest one (reordered, retransmitted ends) are ignored, so nothing is reported
/// twice. Timestamps are compared with wrapping (serial-number) arithmetic, and sequence
/// numbers are not needed at all, so neither wraps matter. Long presses are followed
/// across segments (§2.5.1.3) and across a 16-bit duration wrap on one timestamp (old
/// RFC 2833 senders). Event codes above 15 (flash, fax and line tones) are not DTMF and
/// are not reported, but their newer timestamp still ends a pending press. A new SSRC
/// ends the last source's pending press and starts afresh; late packets from the source
/// before it are ignored. Assumes the `telephone-event/8000` clock.
#[derive(Debug, Clone)]
pub struct Rfc4733Detector {
    payload_type: u8,
    /// The source now sending, then the one before it (kept so that its late packets
    /// after a switch are recognised as old). Only the first can have a press pending.
    sources: [Option<Source>; 2],
}

/// What one SSRC has sent.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    /// Timestamp of the newest event seen; anything older is late.
    newest: Option<u32>,
    /// The DTMF press at `newest`, kept after it is reported to recognise its duplicates.
    current: Option<KeyPress>,
}

#[derive(Debug, Clone, Copy)]
struct KeyPress {
    code: u8,
    digit: char,
    /// Timestamp of the first segment: the press's start.
    start: u32,
    /// Timestamp of the segment being received.
    segment_start: u32,
    /// Samples in the segments before `segment_start`.
    earlier_segments: u32,
    /// Longest duration seen in the current segment, extended past 16 bits.
    segment_duration: u32,
    reported: bool,
}

impl KeyPress {
    fn new(code: u8, digit: char, timestamp: u32, duration: u16) -> Self {
        Self {
            code,
            digit,
            start: timestamp,
            segment_start: timestamp,
            earlier_segments: 0,
            segment_duration: u32::from(duration),
            reported: false,
        }
    }

    /// Takes in a duration of the current segment. Durations only grow, so a smaller one
    /// is a reordered older packet; measuring the step in 16-bit serial arithmetic also
    /// carries a duration that wrapped past 0xFFFF on the same timestamp.
    fn extend(&mut self, duration: u16) {
        let step = duration.wrapping_sub(self.segment_duration as u16) as i16;
        if step > 0 {
            self.segment_duration = self.segment_duration.saturating_add(step as u32);
        }
    }

    /// Whether a packet with a newer `timestamp` is the next segment of this press.
    fn continues_with(&self, timestamp: u32, code: u8) -> bool {
        let gap = timestamp.wrapping_sub(self.segment_start);
        !self.reported
            && code == self.code
            && gap <= u32::from(u16::MAX)
            && gap >= u32::from(u16::MAX) - SEGMENT_SLACK
            && gap >= self.segment_duration
    }

    fn event(&self) -> DtmfEvent {
        DtmfEvent {
            digit: self.digit,
            source: DtmfSource::Rfc4733,
            rtp_timestamp: self.start,
            duration_samples: self.earlier_segments.saturating_add(self.segment_duration),
        }
    }

    /// Reports the press unless it already was.
    fn report(&mut self) -> Option<DtmfEvent> {
        if self.reported {
            return None;
        }
        self.reported = true;
        Some(self.event())
    }
}

impl Source {
    fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            newest: None,
            current: None,
        }
    }

    /// Whether `timestamp` is past every event seen from this source.
    fn is_new(&self, timestamp: u32) -> bool {
        self.newest
            .is_none_or(|newest| timestamp.wrapping_sub(newest) as i32 > 0)
    }

    fn take_in(&mut self, timestamp: u32, report: TelephoneEvent, done: &mut Detected) {
        if let Some(newest) = self.newest {
            let ahead = timestamp.wrapping_sub(newest) as i32;
            if ahead < 0 {
                // A late packet of a press we have moved past (and already reported).
                return;
            }
            if ahead == 0 {
                if let Some(press) = self
                    .current
                    .as_mut()
                    .filter(|p| !p.reported && p.code == report.event)
                {
                    press.extend(report.duration);
                    if report.end {
                        done.push(press.report());
                    }
                }
                return;
            }
            if let Some(press) = self
                .current
                .as_mut()
                .filter(|p| p.continues_with(timestamp, report.event))
            {
                press.earlier_segments = press
                    .earlier_segments
                    .saturating_add(timestamp.wrapping_sub(press.segment_start));
                press.segment_start = timestamp;
                press.segment_duration = u32::from(report.duration);
                self.newest = Some(timestamp);
                if report.end {
                    done.push(press.report());
                }
                return;
            }
        }
        // A new event began, so the previous press (if its ends were all lost) is over.
        done.push(self.flush());
        self.newest = Some(timestamp);
        self.current = event_digit(report.event)
            .map(|digit| KeyPress::new(report.event, digit, timestamp, report.duration));
        if report.end {
            done.push(self.current.as_mut().and_then(KeyPress::report));
        }
    }

    fn flush(&mut self) -> Option<DtmfEvent> {
        self.current.as_mut().and_then(KeyPress::report)
    }
}

impl Rfc4733Detector {
    /// A detector for the `telephone-event` payload type negotiated in SDP.
    pub fn new(payload_type: u8) -> Self {
        Self {
            payload_type,
            sources: [None, None],
        }
    }

    /// The payload type this detector reads; other packets are ignored.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Takes in one packet of the stream (any payload type) and returns the key presses
    /// it completed, oldest first.
    pub fn on_packet(&mut self, packet: &RtpPacket<'_>) -> Detected {
        let mut done = Detected::default();
        if packet.payload_type() != self.payload_type {
            return done;
        }
        let Some(report) = TelephoneEvent::parse(packet.payload()) else {
            return done;
        };
        let (ssrc, timestamp) = (packet.ssrc(), packet.timestamp());
        let sending = |source: &Option<Source>| source.as_ref().is_some_and(|s| s.ssrc == ssrc);
        if !sending(&self.sources[0]) {
            // Another source (re-INVITE, transfer, a phone restarting its stream): its
            // timestamps have nothing to do with the last one's, whose pending press is
            // over. A late packet from the source before is old news.
            let returning = sending(&self.sources[1]);
            if returning
                && !self.sources[1]
                    .as_ref()
                    .is_some_and(|s| s.is_new(timestamp))
            {
                return done;
            }
            done.push(self.flush());
            if returning {
                self.sources.swap(0, 1);
            } else {
                self.sources[1] = self.sources[0].replace(Source::new(ssrc));
            }
        }
        if let Some(source) = self.sources[0].as_mut() {
            source.take_in(timestamp, report, &mut done);
        }
        done
    }

    /// Reports the press still going, if any, with the last duration seen: for the end
    /// of the stream (BYE, hold) when its end packets never came.
    pub fn flush(&mut self) -> Option<DtmfEvent> {
        self.sources[0].as_mut().and_then(Source::flush)
    }
}

/// Samples per Goertzel block in-band: 12.75 ms at 8 kHz. Short enough to time tones and
/// gaps finely, long enough (78 Hz bins) to tell the DTMF frequencies apart.
pub const BLOCK_LEN: usize = 102;

/// A key is taken as pressed after this many consecutive blocks (38 ms) with its tone
/// pair. Three, not two: a 20 ms blip can fill most of two 102-sample blocks, never three.
const PRESENT_BLOCKS: u32 = 3;

/// A press ends after this many consecutive blocks (38 ms) without its tone pair, so a
/// dropout of 20 ms does not split a press and a 40 ms gap between presses is seen.
const ABSENT_BLOCKS: u32 = 3;

/// The low (row) group, then the high (column) group, in Hz.
const FREQUENCIES: [f64; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Each tone of a pair must be at least this loud (dBm0); quieter is line noise. 2 dB
/// below the -30 dBm0 we promise to accept, for G.711 and line losses.
const MIN_TONE_DBM0: f64 = -32.0;
/// The high tone may be up to 8 dB louder than the low one (normal twist: lines lose
/// more of the high group, so senders boost it)...
const NORMAL_TWIST: f32 = 6.31;
/// ...and the low tone up to 4 dB louder than the high one (reverse twist).
const REVERSE_TWIST: f32 = 2.51;
/// Each tone must be 8 dB above every other frequency of its group: one row and one
/// column, not a chord or a sweep.
const PEAK_RATIO: f32 = 6.31;
/// The pair must carry this share of the block's energy: speech, music and noise spread
/// theirs over the band. A block only partly filled with the tone carries about the
/// filled fraction, so this also keeps the edges of short blips out.
const MIN_PAIR_SHARE: f32 = 0.7;

/// Peak of a 0 dBm0 sine in 16-bit linear PCM: μ-law overloads at +3.17 dBm0, which is
/// full scale (±8159 in 14 bits). A-law's +3.14 dBm0 is within 0.1 dB of it.
pub const ZERO_DBM0_PEAK: f64 = 22_663.0;

/// Peak amplitude (16-bit linear) of a sine at `level_dbm0`.
pub fn dbm0_to_amplitude(level_dbm0: f64) -> f64 {
    ZERO_DBM0_PEAK * 10f64.powf(level_dbm0 / 20.0)
}

/// The (row, column) frequencies in Hz of a key.
pub fn digit_frequencies(digit: char) -> Option<(f64, f64)> {
    let digit = digit.to_ascii_uppercase();
    KEYPAD.iter().enumerate().find_map(|(row, keys)| {
        let col = keys.iter().position(|&k| k == digit)?;
        Some((FREQUENCIES[row], FREQUENCIES[4 + col]))
    })
}

/// Finds DTMF tones in 8 kHz linear audio (e.g. decoded G.711).
///
/// The audio is cut into blocks of [`BLOCK_LEN`] (102) samples; for each, Goertzel
/// filters measure the 8 DTMF frequencies, and the block counts as a key when the
/// strongest row and column tones
/// - are each at least -32 dBm0 (so -30 dBm0 tones pass and silence does not),
/// - are within the twist limits: the high tone at most 8 dB above the low one, the low
///   at most 4 dB above the high one,
/// - each stand 8 dB above the other frequencies of their group,
/// - together carry at least 70% of the block's energy (speech, music, noise and single
///   tones such as 440 Hz or 1 kHz do not).
///
/// A key is pressed after 3 consecutive such blocks (38 ms). Where a tone falls on the
/// block grid decides whether its partly filled edge blocks count, so tones shorter than
/// 32 ms (20 ms blips) are never accepted, 40 ms ones about two times in three, 45 ms
/// and longer always. A key is released after 3 blocks without it, so a 40 ms gap
/// separates two presses of the same key and a 20 ms dropout does not split one.
///
/// Each press is reported once, at its release (as RFC 4733 does, whose duration is
/// known only at the end), with start and duration in whole blocks: within two blocks
/// (25 ms) of the truth. Timestamps count the samples pushed; there is no clock.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// 2 cos(2π f / 8000) for each frequency.
    coefficients: [f32; 8],
    /// The two previous outputs of each Goertzel filter.
    state: [(f32, f32); 8],
    energy: f32,
    filled: usize,
    /// Index of the current block's first sample.
    block_start: u32,
    /// Goertzel power of a tone at [`MIN_TONE_DBM0`] over a whole block.
    min_tone_power: f32,
    candidate: Option<Candidate>,
    pressed: Option<Pressed>,
}

/// A key seen in the last `blocks` blocks, not yet long enough to count.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    digit: char,
    blocks: u32,
    start: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pressed {
    digit: char,
    start: u32,
    /// End of the last block that had the tone.
    end: u32,
    /// Blocks since then without it.
    misses: u32,
}

impl Pressed {
    fn event(&self) -> DtmfEvent {
        DtmfEvent {
            digit: self.digit,
            source: DtmfSource::Inband,
            rtp_timestamp: self.start,
            duration_samples: self.end.wrapping_sub(self.start),
        }
    }
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let coefficients =
            FREQUENCIES.map(|f| (2.0 * (TAU * f / f64::from(SAMPLE_RATE)).cos()) as f32);
        // A tone of amplitude A over N samples gives a Goertzel power of (A N / 2)^2.
        let half_block = dbm0_to_amplitude(MIN_TONE_DBM0) * BLOCK_LEN as f64 / 2.0;
        Self {
            coefficients,
            state: [(0.0, 0.0); 8],
            energy: 0.0,
            filled: 0,
            block_start: 0,
            min_tone_power: (half_block * half_block) as f32,
            candidate: None,
            pressed: None,
        }
    }

    /// Takes in linear samples; calls `on_event` for each press that ended in them.
    pub fn push(&mut self, samples: &[i16], mut on_event: impl FnMut(DtmfEvent)) {
        for &sample in samples {
            self.push_sample(sample, &mut on_event);
        }
    }

    /// Takes in a G.711 payload, decoding it on the way (no buffer needed).
    pub fn push_g711(&mut self, payload: &[u8], law: Law, mut on_event: impl FnMut(DtmfEvent)) {
        for &byte in payload {
            self.push_sample(law.decode(byte), &mut on_event);
        }
    }

    /// Reports the press still going at the end of the stream, if any. The partial
    /// block is dropped.
    pub fn flush(&mut self) -> Option<DtmfEvent> {
        self.candidate = None;
        self.pressed.take().map(|p| p.event())
    }

    #[inline]
    fn push_sample(&mut self, sample: i16, on_event: &mut impl FnMut(DtmfEvent)) {
        let x = f32::from(sample);
        self.energy += x * x;
        for (&c, (s1, s2)) in self.coefficients.iter().zip(self.state.iter_mut()) {
            let s0 = x + c * *s1 - *s2;
            *s2 = *s1;
            *s1 = s0;
        }
        self.filled += 1;
        if self.filled == BLOCK_LEN {
            self.end_block(on_event);
        }
    }

    fn end_block(&mut self, on_event: &mut impl FnMut(DtmfEvent)) {
        let key = self.classify();
        let start = self.block_start;
        let end = start.wrapping_add(BLOCK_LEN as u32);
        self.state = [(0.0, 0.0); 8];
        self.energy = 0.0;
        self.filled = 0;
        self.block_start = end;

        if let Some(pressed) = self.pressed.as_mut() {
            if key == Some(pressed.digit) {
                pressed.end = end;
                pressed.misses = 0;
                self.candidate = None;
                return;
            }
            pressed.misses += 1;
            if pressed.misses >= ABSENT_BLOCKS {
                on_event(pressed.event());
                self.pressed = None;
            }
        }
        let Some(digit) = key else {
            self.candidate = None;
            return;
        };
        let candidate = match self.candidate {
            Some(c) if c.digit == digit => Candidate {
                blocks: c.blocks + 1,
                ..c
            },
            _ => Candidate {
                digit,
                blocks: 1,
                start,
            },
        };
        if candidate.blocks < PRESENT_BLOCKS {
            self.candidate = Some(candidate);
            return;
        }
        // Another key straight after the last, with no gap: the last one is over.
        if let Some(previous) = self.pressed.take() {
            on_event(previous.event());
        }
        self.candidate = None;
        self.pressed = Some(Pressed {
            digit,
            start: candidate.start,
            end,
            misses: 0,
        });
    }

    /// The key whose tone pair fills the block just ended, if any.
    fn classify(&self) -> Option<char> {
        let mut power = [0f32; 8];
        for (p, (&c, &(s1, s2))) in power
            .iter_mut()
            .zip(self.coefficients.iter().zip(self.state.iter()))
        {
            *p = s1 * s1 + s2 * s2 - c * s1 * s2;
        }
        let (rows, cols) = power.split_at(4);
        let (row, row_power) = strongest(rows);
        let (col, col_power) = strongest(cols);
        if row_power < self.min_tone_power || col_power < self.min_tone_power {
            return None;
        }
        if col_power > row_power * NORMAL_TWIST || row_power > col_power * REVERSE_TWIST {
            return None;
        }
        if !stands_out(rows, row) || !stands_out(cols, col) {
            return None;
        }
        // A tone's Goertzel power times 2/N is its energy over the block.
        if (row_power + col_power) * 2.0 / (BLOCK_LEN as f32) < MIN_PAIR_SHARE * self.energy {
            return None;
        }
        KEYPAD.get(row)?.get(col).copied()
    }
}

/// Index and power of the strongest frequency of a group.
fn strongest(group: &[f32]) -> (usize, f32) {
    group.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

/// Whether frequency `best` of a group is [`PEAK_RATIO`] above all the others.
fn stands_out(group: &[f32], best: usize) -> bool {
    let peak = group.get(best).copied().unwrap_or(0.0);
    group
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || p * PEAK_RATIO <= peak)
}

/// Makes one or two sine tones at given levels: DTMF keys, or test signals.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// (phase step per sample, phase, peak amplitude) of each tone.
    tones: [(f64, f64, f64); 2],
}

impl ToneGenerator {
    /// Two tones, each given as (frequency in Hz, level in dBm0).
    pub fn dual(low: (f64, f64), high: (f64, f64)) -> Self {
        let tone = |(hz, dbm0): (f64, f64)| {
            (
                TAU * hz / f64::from(SAMPLE_RATE),
                0.0,
                dbm0_to_amplitude(dbm0),
            )
        };
        Self {
            tones: [tone(low), tone(high)],
        }
    }

    /// One tone at `hz`, `level_dbm0`.
    pub fn single(hz: f64, level_dbm0: f64) -> Self {
        Self::dual((hz, level_dbm0), (0.0, f64::NEG_INFINITY))
    }

    /// The tone pair of a key, both tones at `level_dbm0` (-10 dBm0 is typical).
    pub fn digit(digit: char, level_dbm0: f64) -> Option<Self> {
        let (row, col) = digit_frequencies(digit)?;
        Some(Self::dual((row, level_dbm0), (col, level_dbm0)))
    }

    /// Fills `out` with the next samples; the phase carries over between calls.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out {
            let mut value = 0.0;
            for (step, phase, amplitude) in &mut self.tones {
                value += *amplitude * phase.sin();
                *phase = (*phase + *step) % TAU;
            }
            *sample = value
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        }
    }

    /// Fills `out` with the next samples encoded in `law`.
    pub fn fill_g711(&mut self, law: Law, out: &mut [u8]) {
        let mut sample = [0i16; 1];
        for byte in out {
            self.fill(&mut sample);
            *byte = law.encode(sample[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpHeader;

    const SEQUENCE: &str = "0123456789*#ABCD";

    // ---- RFC 4733 ----

    /// Builds one `telephone-event` packet (payload type 101).
    fn te(ssrc: u32, seq: u16, ts: u32, event: u8, end: bool, duration: u16) -> Vec<u8> {
        let payload = TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes();
        let header = RtpHeader {
            payload_type: 101,
            sequence: seq,
            timestamp: ts,
            ssrc,
            ..RtpHeader::default()
        };
        let mut buf = vec![0; 64];
        let n = header.write(&payload, &mut buf).expect("fits");
        buf.truncate(n);
        buf
    }

    /// The packets of one press as a sender makes them: a report every 20 ms with a
    /// growing duration, then the end report 3 times.
    fn press(ssrc: u32, seq: &mut u16, ts: u32, event: u8, duration: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut d = 160;
        while d < duration {
            out.push(te(ssrc, *seq, ts, event, false, d));
            *seq = seq.wrapping_add(1);
            d += 160;
        }
        for _ in 0..3 {
            out.push(te(ssrc, *seq, ts, event, true, duration));
            *seq = seq.wrapping_add(1);
        }
        out
    }

    fn feed(det: &mut Rfc4733Detector, packets: &[Vec<u8>]) -> Vec<DtmfEvent> {
        packets
            .iter()
            .flat_map(|p| det.on_packet(&RtpPacket::parse(p).expect("valid")))
            .collect()
    }

    fn digits(events: &[DtmfEvent]) -> String {
        events.iter().map(|e| e.digit).collect()
    }

    #[test]
    fn payload_round_trips_and_short_payloads_are_refused() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 0xBEEF,
        };
        assert_eq!(e.to_bytes(), [11, 0xBF, 0xBE, 0xEF]);
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Some(e));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
        // The reserved bit is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[5, 0x40 | 7, 0, 160]).map(|e| (e.end, e.volume)),
            Some((false, 7))
        );
        for (code, digit) in DIGITS.iter().enumerate() {
            assert_eq!(event_digit(code as u8), Some(*digit));
            assert_eq!(digit_event(*digit), Some(code as u8));
        }
        assert_eq!(event_digit(16), None);
        assert_eq!(digit_event('b'), Some(13));
        assert_eq!(digit_event('x'), None);
    }

    /// The whole keypad with everything a network does to packets: sequence numbers
    /// and timestamps wrapping, a press whose 3 end packets are all lost, end packets
    /// reordered after the next press started, duplicates. Each key comes out once, in
    /// order, with its timestamp and duration.
    #[test]
    fn keypad_sequence_survives_loss_reordering_and_duplicates() {
        let ssrc = 0x1234_5678;
        let mut seq = 65_500;
        let base = u32::MAX - 5_000;
        let mut presses: Vec<Vec<Vec<u8>>> = Vec::new();
        for (i, digit) in SEQUENCE.chars().enumerate() {
            let ts = base.wrapping_add(i as u32 * 2_000);
            let code = digit_event(digit).expect("dtmf");
            presses.push(press(ssrc, &mut seq, ts, code, 800));
        }
        // '3': all three end packets lost; last report seen says 640.
        let n = presses[3].len();
        presses[3].truncate(n - 3);
        // '5': its 2nd and 3rd end packets arrive after '6' started.
        let n = presses[5].len();
        let late: Vec<_> = presses[5].split_off(n - 2);
        presses[6].splice(1..1, late);
        // '8': its first report is lost, everything else arrives twice.
        presses[8].remove(0);
        presses[8] = presses[8]
            .iter()
            .flat_map(|p| [p.clone(), p.clone()])
            .collect();
        // 'A': its first end arrives before the last interim report (reordering).
        let n = presses[12].len();
        presses[12].swap(n - 4, n - 3);

        let mut det = Rfc4733Detector::new(101);
        let mut events = Vec::new();
        for (i, p) in presses.iter().enumerate() {
            let got = feed(&mut det, p);
            // Each press is reported by its own first end, except '3', reported by the
            // first packet of '4'.
            match i {
                3 => assert!(got.is_empty()),
                4 => assert_eq!(digits(&got), "34"),
                _ => assert_eq!(got.len(), 1, "press {i}"),
            }
            events.extend(got);
        }
        assert_eq!(det.flush(), None);
        assert_eq!(digits(&events), SEQUENCE);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.source, DtmfSource::Rfc4733);
            assert_eq!(e.rtp_timestamp, base.wrapping_add(i as u32 * 2_000));
            let expected = if i == 3 { 640 } else { 800 };
            assert_eq!(e.duration_samples, expected, "digit {}", e.digit);
        }
        // Replaying everything once more reports nothing: all of it is old.
        let all: Vec<_> = presses.concat();
        assert!(feed(&mut det, &all).is_empty());
    }

    #[test]
    fn other_payload_types_short_payloads_and_non_dtmf_events_are_ignored() {
        let mut det = Rfc4733Detector::new(101);
        assert_eq!(det.payload_type(), 101);
        let mut audio = te(1, 1, 0, 5, true, 800);
        audio[1] = 0; // PCMU
        let mut short = te(1, 2, 0, 5, true, 800);
        short.truncate(15);
        let flash = te(1, 3, 0, 16, true, 800);
        let busy = te(1, 4, 0, 72, true, 800);
        assert!(feed(&mut det, &[audio, short, flash, busy]).is_empty());
        assert_eq!(det.flush(), None);
        // A DTMF press whose end is lost is still reported when a non-DTMF event
        // follows it.
        let mut seq = 10;
        let mut packets = press(1, &mut seq, 1_000, 7, 480);
        packets.truncate(packets.len() - 3);
        packets.push(te(1, seq, 3_000, 16, false, 160));
        let got = feed(&mut det, &packets);
        assert_eq!(digits(&got), "7");
        assert_eq!(got[0].duration_samples, 320);
        assert_eq!(det.flush(), None);
    }

    #[test]
    fn one_packet_can_complete_two_presses() {
        let mut det = Rfc4733Detector::new(101);
        // '1' loses its ends; of '2' only an end packet arrives.
        let packets = [
            te(9, 1, 100, 1, false, 160),
            te(9, 2, 100, 1, false, 320),
            te(9, 9, 900, 2, true, 480),
        ];
        let got = det.on_packet(&RtpPacket::parse(&packets[0]).expect("valid"));
        assert_eq!(got.len(), 0);
        det.on_packet(&RtpPacket::parse(&packets[1]).expect("valid"))
            .for_each(drop);
        let got = det.on_packet(&RtpPacket::parse(&packets[2]).expect("valid"));
        assert_eq!(got.len(), 2);
        let got: Vec<_> = got.collect();
        assert_eq!(digits(&got), "12");
        assert_eq!(got[0].duration_samples, 320);
        assert_eq!(got[1].duration_samples, 480);
        assert_eq!(got[1].rtp_timestamp, 900);
    }

    #[test]
    fn flush_reports_an_unfinished_press_once() {
        let mut det = Rfc4733Detector::new(101);
        let mut seq = 0;
        let mut packets = press(5, &mut seq, 42, 11, 1_600);
        packets.truncate(packets.len() - 3);
        assert!(feed(&mut det, &packets).is_empty());
        let e = det.flush().expect("pending press");
        assert_eq!(
            (e.digit, e.rtp_timestamp, e.duration_samples),
            ('#', 42, 1_440)
        );
        assert_eq!(det.flush(), None);
        // Its late end packet does not report it again.
        assert!(feed(&mut det, &[te(5, seq, 42, 11, true, 1_600)]).is_empty());
    }

    #[test]
    fn a_new_ssrc_ends_the_old_sources_press_and_starts_afresh() {
        let mut det = Rfc4733Detector::new(101);
        let first = [te(1, 1, 50_000, 4, false, 160)];
        assert!(feed(&mut det, &first).is_empty());
        // The new source's timestamps are "older": they must still count.
        let mut seq = 7;
        let got = feed(&mut det, &press(2, &mut seq, 10, 9, 320));
        assert_eq!(digits(&got), "49");
        assert_eq!(got[0].duration_samples, 160);
    }

    #[test]
    fn late_packets_from_the_previous_source_are_old_news() {
        let mut det = Rfc4733Detector::new(101);
        let mut seq = 0;
        let from_a = press(1, &mut seq, 1_000, 1, 480);
        let from_b = press(2, &mut seq, 7, 2, 480);
        // A's second end and B's interim reports interleave.
        let mut packets = from_a[..3].to_vec();
        packets.push(from_b[0].clone());
        packets.push(from_a[3].clone());
        packets.push(from_b[1].clone());
        packets.extend_from_slice(&from_a[4..]);
        packets.extend_from_slice(&from_b[2..]);
        assert_eq!(digits(&feed(&mut det, &packets)), "12");
        // A comes back with a new press: it counts, and B's leftovers do not.
        let mut again = press(1, &mut seq, 3_000, 3, 480);
        again.insert(1, from_b[4].clone());
        assert_eq!(digits(&feed(&mut det, &again)), "3");
        assert_eq!(det.flush(), None);
    }

    /// A press longer than 0xFFFF samples (8.2 s) arrives in segments (RFC 4733
    /// §2.5.1.3): the next segment's timestamp is the previous one's + 0xFFFF and only
    /// the last segment ends. It is one press, reported once at the very end.
    #[test]
    fn a_long_press_in_segments_is_one_event() {
        let mut det = Rfc4733Detector::new(101);
        let start = u32::MAX - 100_000; // the segments also cross the timestamp wrap
        let mut seq = 1;
        let mut packets = Vec::new();
        let mut d: u32 = 0;
        while d < 0xFFFF {
            d = (d + 160).min(0xFFFF);
            packets.push(te(3, seq, start, 0, false, d as u16));
            seq += 1;
        }
        let second = start.wrapping_add(0xFFFF);
        for d in (160..8_000).step_by(160) {
            packets.push(te(3, seq, second, 0, false, d));
            seq += 1;
        }
        for _ in 0..3 {
            packets.push(te(3, seq, second, 0, true, 8_000));
            seq += 1;
        }
        // A late report of the first segment is ignored.
        packets.push(te(3, seq, start, 0, false, 30_000));
        let got = feed(&mut det, &packets);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rtp_timestamp, start);
        assert_eq!(got[0].duration_samples, 0xFFFF + 8_000);
        assert_eq!(det.flush(), None);
    }

    /// Old RFC 2833 senders let the 16-bit duration wrap on the same timestamp.
    #[test]
    fn a_duration_wrapping_on_one_timestamp_keeps_counting() {
        let mut det = Rfc4733Detector::new(101);
        let mut packets = Vec::new();
        let mut seq: u16 = 0;
        for d in (160u32..=70_000).step_by(160) {
            packets.push(te(4, seq, 1_000, 10, false, d as u16));
            seq = seq.wrapping_add(1);
        }
        // A reordered old report after the wrap does not shrink or re-wrap it.
        packets.push(te(4, seq, 1_000, 10, false, 65_000));
        packets.push(te(4, seq + 1, 1_000, 10, true, 70_080u32 as u16));
        let got = feed(&mut det, &packets);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].digit, got[0].duration_samples), ('*', 70_080));
    }

    /// The same key twice is two presses (two timestamps), even right after a lost end.
    #[test]
    fn the_same_key_twice_is_two_presses() {
        let mut det = Rfc4733Detector::new(101);
        let mut seq = 0;
        let mut packets = press(6, &mut seq, 0, 1, 800);
        packets.truncate(packets.len() - 3);
        packets.extend(press(6, &mut seq, 1_200, 1, 800));
        let got = feed(&mut det, &packets);
        assert_eq!(digits(&got), "11");
        assert_eq!(got[0].duration_samples, 640);
        assert_eq!(got[1].rtp_timestamp, 1_200);
    }

    // ---- in-band ----

    const LEVEL_DBM0: f64 = -10.0;

    fn samples_ms(ms: usize) -> usize {
        ms * SAMPLE_RATE as usize / 1000
    }

    /// `offset` samples of silence, then each key as `tone_ms` of tone and `gap_ms` of
    /// silence.
    fn keys(sequence: &str, tone_ms: usize, gap_ms: usize, offset: usize) -> Vec<i16> {
        let mut out = vec![0i16; offset];
        for digit in sequence.chars() {
            let mut tone = vec![0; samples_ms(tone_ms)];
            ToneGenerator::digit(digit, LEVEL_DBM0)
                .expect("dtmf key")
                .fill(&mut tone);
            out.extend(tone);
            out.extend(std::iter::repeat_n(0, samples_ms(gap_ms)));
        }
        out
    }

    fn through_g711(samples: &[i16], law: Law) -> Vec<i16> {
        samples.iter().map(|&s| law.decode(law.encode(s))).collect()
    }

    /// Runs the detector over `samples` in uneven chunks (as packets of varying size
    /// would arrive), then flushes.
    fn detect(samples: &[i16]) -> Vec<DtmfEvent> {
        let mut det = InbandDetector::new();
        let mut events = Vec::new();
        let mut rest = samples;
        let mut chunk = 1;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(chunk.min(rest.len()));
            det.push(now, |e| events.push(e));
            rest = later;
            chunk = chunk * 7 % 331 + 1;
        }
        events.extend(det.flush());
        events
    }

    /// Deterministic white noise (xorshift, sum of uniforms ≈ Gaussian) at `rms`.
    fn add_noise(samples: &mut [i16], rms: f64, mut seed: u64) {
        for s in samples {
            let mut sum = 0.0;
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                sum += (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            // Four uniforms on [-0.5, 0.5) have variance 4/12.
            let noise = sum * rms / (4.0f64 / 12.0).sqrt();
            *s = (f64::from(*s) + noise).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    #[test]
    fn generator_makes_the_requested_level_and_frequencies() {
        assert_eq!(digit_frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(digit_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(digit_frequencies('x'), None);
        assert!(ToneGenerator::digit('?', -10.0).is_none());
        // A single 0 dBm0 sine: RMS = peak / sqrt(2).
        let mut tone = vec![0; 8_000];
        ToneGenerator::single(1_000.0, 0.0).fill(&mut tone);
        let expected = ZERO_DBM0_PEAK / 2f64.sqrt();
        assert!((rms(&tone) / expected - 1.0).abs() < 0.01);
        // Encoded straight to G.711, it is the same signal.
        let mut encoded = vec![0u8; 8_000];
        ToneGenerator::single(1_000.0, 0.0).fill_g711(Law::Alaw, &mut encoded);
        assert_eq!(
            encoded,
            tone.iter()
                .map(|&s| Law::Alaw.encode(s))
                .collect::<Vec<_>>()
        );
    }

    /// The keypad as 60 ms tones with 60 ms gaps, through G.711 and back, at several
    /// alignments against the block grid: exactly the keypad, once each, in order, with
    /// start and duration within two blocks of the truth.
    #[test]
    fn keypad_tones_through_g711_are_detected_exactly() {
        for law in [Law::Ulaw, Law::Alaw] {
            for offset in (0..BLOCK_LEN).step_by(17) {
                let audio = through_g711(&keys(SEQUENCE, 60, 60, offset), law);
                let events = detect(&audio);
                assert_eq!(digits(&events), SEQUENCE, "{law:?} offset {offset}");
                for (i, e) in events.iter().enumerate() {
                    assert_eq!(e.source, DtmfSource::Inband);
                    let start = (offset + i * samples_ms(120)) as i64;
                    let slack = 2 * BLOCK_LEN as i64;
                    assert!((i64::from(e.rtp_timestamp) - start).abs() <= slack);
                    let duration = i64::from(e.duration_samples);
                    assert!((duration - samples_ms(60) as i64).abs() <= slack);
                }
            }
        }
    }

    #[test]
    fn keypad_tones_in_white_noise_are_detected_exactly() {
        // SNR against the two tones together: 20 dB, then 15 dB.
        let signal_rms = dbm0_to_amplitude(LEVEL_DBM0); // two tones of peak A: RMS A
        for (snr_db, seed) in [(20.0, 1u64), (15.0, 2), (15.0, 3)] {
            let mut audio = keys(SEQUENCE, 60, 60, 33);
            add_noise(&mut audio, signal_rms / 10f64.powf(snr_db / 20.0), seed);
            let audio = through_g711(&audio, Law::Ulaw);
            assert_eq!(digits(&detect(&audio)), SEQUENCE, "SNR {snr_db} dB");
        }
    }

    #[test]
    fn single_tones_silence_and_noise_are_not_keys() {
        for hz in [440.0, 1_000.0, 697.0, 1_633.0, 350.0, 2_000.0] {
            for level in [0.0, -10.0, -20.0] {
                let mut tone = vec![0; 16_000];
                ToneGenerator::single(hz, level).fill(&mut tone);
                assert!(
                    detect(&through_g711(&tone, Law::Ulaw)).is_empty(),
                    "{hz} Hz"
                );
            }
        }
        // Dial tone (350 + 440 Hz) is two tones, but not a DTMF pair.
        let mut dial = vec![0; 16_000];
        ToneGenerator::dual((350.0, -13.0), (440.0, -13.0)).fill(&mut dial);
        assert!(detect(&dial).is_empty());
        assert!(detect(&[0; 16_000]).is_empty());
        let mut noise = vec![0; 16_000];
        add_noise(&mut noise, 3_000.0, 7);
        assert!(detect(&noise).is_empty());
    }

    #[test]
    fn a_20_ms_blip_is_not_a_key_and_a_45_ms_tone_is() {
        for offset in 0..BLOCK_LEN {
            assert!(
                detect(&keys("5", 20, 100, offset)).is_empty(),
                "offset {offset}"
            );
            assert_eq!(digits(&detect(&keys("5", 45, 100, offset))), "5");
        }
    }

    #[test]
    fn a_held_key_is_reported_once_at_its_end_with_its_duration() {
        let audio = keys("9", 2_000, 100, 0);
        let mut det = InbandDetector::default();
        let mut events = Vec::new();
        let tone_end = samples_ms(2_000);
        det.push(&audio[..tone_end], |e| events.push(e));
        assert!(events.is_empty(), "reported at release, not while held");
        det.push(&audio[tone_end..], |e| events.push(e));
        assert_eq!(digits(&events), "9");
        assert_eq!(events[0].rtp_timestamp, 0);
        // The block straddling the release is mostly tone and counts.
        let error = i64::from(events[0].duration_samples) - tone_end as i64;
        assert!(error.abs() <= BLOCK_LEN as i64, "{error}");
    }

    #[test]
    fn gaps_of_40_ms_separate_presses_and_dropouts_of_20_ms_do_not() {
        for offset in (0..BLOCK_LEN).step_by(5) {
            assert_eq!(digits(&detect(&keys("77", 60, 40, offset))), "77");
            // A 20 ms hole in one press.
            let mut audio = vec![0i16; offset];
            let mut tone = vec![0; samples_ms(200)];
            ToneGenerator::digit('7', LEVEL_DBM0)
                .expect("key")
                .fill(&mut tone);
            tone[samples_ms(90)..samples_ms(110)].fill(0);
            audio.extend(tone);
            audio.extend([0; 800]);
            assert_eq!(digits(&detect(&audio)), "7", "offset {offset}");
        }
        // Different keys back to back, no gap at all.
        assert_eq!(
            digits(&detect(
                &keys("1", 80, 0, 0)
                    .into_iter()
                    .chain(keys("2", 80, 80, 0))
                    .collect::<Vec<_>>()
            )),
            "12"
        );
    }

    #[test]
    fn level_and_twist_limits() {
        let render = |row: f64, col: f64| {
            let (low, high) = digit_frequencies('8').expect("key");
            let mut tone = vec![0; samples_ms(100)];
            ToneGenerator::dual((low, row), (high, col)).fill(&mut tone);
            tone.extend([0; 800]);
            digits(&detect(&through_g711(&tone, Law::Ulaw)))
        };
        assert_eq!(render(-25.0, -25.0), "8");
        assert_eq!(render(-30.0, -30.0), "8");
        assert_eq!(render(-36.0, -36.0), "");
        assert_eq!(render(-16.0, -10.0), "8"); // high group 6 dB up: normal twist
        assert_eq!(render(-20.0, -10.0), ""); // 10 dB
        assert_eq!(render(-10.0, -13.0), "8"); // low group 3 dB up: reverse twist
        assert_eq!(render(-10.0, -16.0), ""); // 6 dB
    }

    #[test]
    fn g711_payloads_can_be_pushed_directly() {
        let audio = keys("#0", 60, 60, 0);
        let encoded: Vec<u8> = audio.iter().map(|&s| Law::Alaw.encode(s)).collect();
        let mut det = InbandDetector::new();
        let mut events = Vec::new();
        for packet in encoded.chunks(160) {
            det.push_g711(packet, Law::Alaw, |e| events.push(e));
        }
        assert_eq!(digits(&events), "#0");
    }
}
