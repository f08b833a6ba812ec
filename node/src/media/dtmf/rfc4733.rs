//! RFC 4733 `telephone-event` packets: the 4-byte event report ([`TelephoneEvent`]) and
//! the detector that turns a stream of them into key presses, each reported once
//! ([`Rfc4733Detector`], [`Detected`]).

use super::{DtmfEvent, DtmfSource, event_digit};
use crate::media::rtp::RtpPacket;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::test_util::{SEQUENCE, digits};
    use crate::media::dtmf::{DIGITS, digit_event};
    use crate::media::rtp::RtpHeader;

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
}
