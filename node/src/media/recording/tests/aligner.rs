//! The aligner with simulated time: every arrival is `t0 + offset`, nothing waits.

use std::ops::Range;
use std::time::Instant;

use super::super::aligner::{PushOutcome, StereoAligner};
use super::{PTIME, Side, encode, frames, goertzel, ms, packet, sine};
use crate::media::g711::Law;

const SSRC: u32 = 0x1234_5678;
const SEQ0: u16 = 100;
const TS0: u32 = 5_000;

/// The μ-law code packet `k` of a test stream is filled with, so each packet's span is
/// recognisable in the output.
fn code(k: usize) -> u8 {
    Law::Ulaw.encode(400 + 300 * k as i16)
}

fn level(k: usize) -> i16 {
    Law::Ulaw.decode(code(k))
}

/// Packet `k` of a constant-level μ-law stream arriving at `arrival_ms`.
fn nth(t0: Instant, side: Side, k: usize, arrival_ms: u64) -> super::RecordedPacket {
    packet(
        side,
        t0 + ms(arrival_ms),
        SSRC,
        SEQ0.wrapping_add(k as u16),
        TS0.wrapping_add((PTIME * k) as u32),
        0,
        &[code(k); PTIME],
    )
}

fn finish(aligner: &mut StereoAligner, at: Instant) -> Vec<(i16, i16)> {
    let mut out = Vec::new();
    aligner.finish(at, &mut out);
    frames(&out)
}

fn assert_span(out: &[(i16, i16)], range: Range<usize>, left: i16, right: i16) {
    for (i, &(l, r)) in out[range.clone()].iter().enumerate() {
        assert_eq!(
            (l, r),
            (left, right),
            "frame {} of span {range:?}",
            range.start + i
        );
    }
}

fn span(k: usize) -> Range<usize> {
    k * PTIME..(k + 1) * PTIME
}

#[test]
fn packets_are_placed_by_timestamp_not_by_jittery_arrival() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..10 {
        // Up to 14 ms of jitter; the first packet (the anchor) is on time.
        let jitter = (k as u64 * 7) % 15;
        assert_eq!(
            aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64 + jitter)),
            PushOutcome::Written
        );
    }
    let out = finish(&mut aligner, t0 + ms(200));
    assert_eq!(out.len(), 10 * PTIME);
    for k in 0..10 {
        assert_span(&out, span(k), level(k), 0);
    }
    assert_eq!(aligner.stats().written, 10);
    assert_eq!(aligner.frames_emitted(), 1600);
}

#[test]
fn lost_packets_become_silence() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in (0..10).filter(|k| !(3..5).contains(k)) {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    let out = finish(&mut aligner, t0 + ms(200));
    assert_eq!(out.len(), 10 * PTIME);
    assert_span(&out, 3 * PTIME..5 * PTIME, 0, 0);
    for k in [0, 1, 2, 5, 6, 7, 8, 9] {
        assert_span(&out, span(k), level(k), 0);
    }
}

#[test]
fn reordered_packets_within_the_window_land_in_place() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let mut out = Vec::new();
    // Packet 2 arrives 30 ms late, after 3 and 4.
    let order = [
        (0, 0),
        (1, 20),
        (3, 60),
        (4, 80),
        (2, 90),
        (5, 100),
        (6, 120),
    ];
    for (k, at) in order {
        assert_eq!(
            aligner.push(&nth(t0, Side::Caller, k, at)),
            PushOutcome::Written
        );
        aligner.drain(t0 + ms(at), &mut out);
    }
    aligner.finish(t0 + ms(140), &mut out);
    let out = frames(&out);
    assert_eq!(out.len(), 7 * PTIME);
    for k in 0..7 {
        assert_span(&out, span(k), level(k), 0);
    }
    assert_eq!(aligner.stats().late, 0);
}

#[test]
fn a_packet_behind_the_window_is_dropped_and_counted() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let mut out = Vec::new();
    for k in (0..10).filter(|&k| k != 2) {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    // 300 ms in, frames up to 200 ms are out; packet 2 (40..60 ms) comes now.
    aligner.drain(t0 + ms(300), &mut out);
    assert_eq!(out.len() / 4, 1600);
    assert_eq!(
        aligner.push(&nth(t0, Side::Caller, 2, 300)),
        PushOutcome::Late
    );
    aligner.finish(t0 + ms(300), &mut out);
    let out = frames(&out);
    assert_span(&out, span(2), 0, 0);
    assert_span(&out, span(3), level(3), 0);
    assert_eq!(aligner.stats().late, 1);
    assert_eq!(aligner.stats().written, 9);
}

#[test]
fn duplicates_are_ignored_even_with_other_payload() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..3 {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    let mut copy = nth(t0, Side::Caller, 1, 45);
    copy.payload = [code(9); super::MAX_RECORDED_PAYLOAD];
    assert_eq!(aligner.push(&copy), PushOutcome::Duplicate);
    let mut copy = nth(t0, Side::Caller, 2, 50);
    copy.payload = [code(9); super::MAX_RECORDED_PAYLOAD];
    assert_eq!(aligner.push(&copy), PushOutcome::Duplicate);
    let out = finish(&mut aligner, t0 + ms(60));
    for k in 0..3 {
        assert_span(&out, span(k), level(k), 0);
    }
    assert_eq!(aligner.stats().duplicates, 2);
}

#[test]
fn an_ssrc_change_anchors_the_new_source_at_its_arrival() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..5 {
        aligner.push(&nth(t0, Side::Callee, k, 20 * k as u64));
    }
    // A new source (e.g. after a transfer) with unrelated sequence and timestamps.
    for j in 0..3u32 {
        let p = packet(
            Side::Callee,
            t0 + ms(200 + 20 * u64::from(j)),
            0xBEEF,
            9 + j as u16,
            987_654 + PTIME as u32 * j,
            0,
            &[code(7); PTIME],
        );
        assert_eq!(aligner.push(&p), PushOutcome::Written);
    }
    let out = finish(&mut aligner, t0 + ms(260));
    assert_eq!(out.len(), 13 * PTIME);
    for k in 0..5 {
        assert_span(&out, span(k), 0, level(k));
    }
    assert_span(&out, 5 * PTIME..10 * PTIME, 0, 0);
    assert_span(&out, 10 * PTIME..13 * PTIME, 0, level(7));
    assert_eq!(aligner.stats().reanchors, 1);
}

#[test]
fn a_timestamp_jump_on_the_same_source_reanchors() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..5 {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    // The sender restarted its clock (same SSRC) five seconds ahead.
    let jump = 5 * 8000;
    for k in 5..8 {
        let mut p = nth(t0, Side::Caller, k, 20 * k as u64);
        p.timestamp = p.timestamp.wrapping_add(jump);
        assert_eq!(aligner.push(&p), PushOutcome::Written);
    }
    let out = finish(&mut aligner, t0 + ms(160));
    assert_eq!(out.len(), 8 * PTIME);
    for k in 0..8 {
        assert_span(&out, span(k), level(k), 0);
    }
    assert_eq!(aligner.stats().reanchors, 1);
}

#[test]
fn timestamps_and_sequence_numbers_wrap_around() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..10usize {
        let p = packet(
            Side::Caller,
            t0 + ms(20 * k as u64),
            SSRC,
            65_533u16.wrapping_add(k as u16),
            (u32::MAX - 400).wrapping_add((PTIME * k) as u32),
            0,
            &[code(k); PTIME],
        );
        assert_eq!(aligner.push(&p), PushOutcome::Written, "packet {k}");
    }
    let out = finish(&mut aligner, t0 + ms(200));
    assert_eq!(out.len(), 10 * PTIME);
    for k in 0..10 {
        assert_span(&out, span(k), level(k), 0);
    }
    assert_eq!(aligner.stats().reanchors, 0);
}

#[test]
fn pause_writes_silence_on_both_channels_and_keeps_real_time() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let mut out = Vec::new();
    for k in 0..20 {
        let at = 20 * k as u64;
        if at == 100 {
            aligner.pause(t0 + ms(100));
            assert!(aligner.is_paused());
        }
        if at == 260 {
            aligner.resume(t0 + ms(250));
            assert!(!aligner.is_paused());
        }
        aligner.push(&nth(t0, Side::Caller, k, at));
        aligner.push(&nth(t0, Side::Callee, k, at));
        aligner.drain(t0 + ms(at), &mut out);
    }
    aligner.finish(t0 + ms(400), &mut out);
    let out = frames(&out);
    assert_eq!(out.len(), 20 * PTIME, "the file keeps real time");
    assert_span(&out, 800..2000, 0, 0);
    for k in (0..5).chain(13..20) {
        assert_span(&out, span(k), level(k), level(k));
    }
    // 250 ms is frame 2000, inside packet 12: its tail is audible again.
    assert_span(&out, 2000..13 * PTIME, level(12), level(12));
}

#[test]
fn each_side_is_decoded_by_its_own_law() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let tone = sine(440.0, 8000.0, 0, 10 * PTIME);
    for (k, chunk) in tone.chunks(PTIME).enumerate() {
        let at = t0 + ms(20 * k as u64);
        let (seq, ts) = (SEQ0 + k as u16, TS0 + (PTIME * k) as u32);
        aligner.push(&packet(
            Side::Caller,
            at,
            1,
            seq,
            ts,
            0,
            &encode(Law::Ulaw, chunk),
        ));
        aligner.push(&packet(
            Side::Callee,
            at,
            2,
            seq,
            ts,
            8,
            &encode(Law::Alaw, chunk),
        ));
    }
    let out = finish(&mut aligner, t0 + ms(200));
    assert_eq!(out.len(), tone.len());
    for (i, (&(l, r), &s)) in out.iter().zip(&tone).enumerate() {
        let bound = i32::from(s).abs() / 16 + 32;
        assert!(
            (i32::from(l) - i32::from(s)).abs() <= bound,
            "left {i}: {l} vs {s}"
        );
        assert!(
            (i32::from(r) - i32::from(s)).abs() <= bound,
            "right {i}: {r} vs {s}"
        );
    }
}

#[test]
fn caller_tone_is_on_the_left_and_callee_tone_on_the_right() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let mut out = Vec::new();
    let caller = sine(440.0, 10_000.0, 0, 50 * PTIME);
    let callee = sine(1000.0, 10_000.0, 0, 50 * PTIME);
    // Callee packets in a different order (pairs swapped), one caller packet lost.
    let callee_order: Vec<usize> = (0..50).map(|k| k ^ 1).collect();
    for k in 0..50 {
        let at = t0 + ms(20 * k as u64 + 5);
        if k != 17 {
            aligner.push(&packet(
                Side::Caller,
                at,
                1,
                k as u16,
                (PTIME * k) as u32,
                0,
                &encode(Law::Ulaw, &caller[span(k)]),
            ));
        }
        let j = callee_order[k];
        aligner.push(&packet(
            Side::Callee,
            at,
            2,
            7000 + j as u16,
            90_000 + (PTIME * j) as u32,
            8,
            &encode(Law::Alaw, &callee[span(j)]),
        ));
        aligner.drain(at, &mut out);
    }
    aligner.finish(t0 + ms(1005), &mut out);
    let out = frames(&out);
    let left: Vec<i16> = out.iter().map(|f| f.0).collect();
    let right: Vec<i16> = out.iter().map(|f| f.1).collect();
    let (l440, l1000) = (goertzel(&left, 440.0), goertzel(&left, 1000.0));
    let (r440, r1000) = (goertzel(&right, 440.0), goertzel(&right, 1000.0));
    assert!(l440 > 100.0 * l1000, "left: 440 Hz {l440}, 1000 Hz {l1000}");
    assert!(
        r1000 > 100.0 * r440,
        "right: 1000 Hz {r1000}, 440 Hz {r440}"
    );
    assert_eq!(aligner.stats().late, 0);
    assert_eq!(aligner.stats().written, 99);
}

#[test]
fn dtmf_events_and_comfort_noise_are_not_written_as_audio() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in [0, 1, 3] {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    let mut event = nth(t0, Side::Caller, 2, 40);
    event.payload_type = 101;
    event.len = 4;
    assert_eq!(aligner.push(&event), PushOutcome::NotAudio);
    let mut noise = nth(t0, Side::Caller, 4, 80);
    noise.payload_type = 13;
    noise.len = 1;
    assert_eq!(aligner.push(&noise), PushOutcome::NotAudio);
    let out = finish(&mut aligner, t0 + ms(100));
    assert_span(&out, span(2), 0, 0);
    assert_span(&out, span(3), level(3), 0);
    assert_span(&out, span(4), 0, 0);
    assert_eq!(aligner.stats().not_audio, 2);
    assert_eq!(aligner.stats().reanchors, 0);
}

#[test]
fn a_slow_sender_clock_is_followed_without_dropping_packets() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let mut out = Vec::new();
    // 2000 ppm slow: each 20 ms of the sender's clock takes 20.04 ms of ours. After a
    // minute its timestamps are 120 ms behind arrival, past the 100 ms window.
    let packets = 3000usize;
    for k in 0..packets {
        let at = t0 + std::time::Duration::from_micros(20_040 * k as u64);
        let p = packet(
            Side::Caller,
            at,
            SSRC,
            k as u16,
            (PTIME * k) as u32,
            0,
            &[code(k % 8); PTIME],
        );
        assert_eq!(aligner.push(&p), PushOutcome::Written, "packet {k}");
        aligner.drain(at, &mut out);
    }
    let stats = aligner.stats();
    assert_eq!(stats.written, packets as u64);
    assert!(stats.drift_corrections >= 1, "{stats:?}");
}

#[test]
fn a_first_packet_long_after_the_start_is_kept() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    // The recording started at call setup; media begins after 10 s of ringing.
    assert_eq!(
        aligner.push(&nth(t0, Side::Caller, 0, 10_000)),
        PushOutcome::Written
    );
    let out = finish(&mut aligner, t0 + ms(10_020));
    assert_eq!(out.len(), 80_160);
    assert_span(&out, 0..80_000, 0, 0);
    assert_span(&out, 80_000..80_160, level(0), 0);
}

#[test]
fn a_long_payload_is_cut_at_the_recorded_maximum() {
    let t0 = Instant::now();
    let mut p = nth(t0, Side::Caller, 0, 0);
    assert!(!p.set_payload(&[code(1); 480]));
    assert_eq!(p.payload().len(), super::MAX_RECORDED_PAYLOAD);
    let mut aligner = StereoAligner::new(t0);
    aligner.push(&p);
    let out = finish(&mut aligner, t0 + ms(60));
    assert_eq!(out.len(), 480);
    assert_span(&out, 0..320, level(1), 0);
    assert_span(&out, 320..480, 0, 0);
}

#[test]
fn a_sender_that_renumbers_or_restarts_on_the_same_ssrc_is_followed() {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    for k in 0..4 {
        aligner.push(&nth(t0, Side::Caller, k, 20 * k as u64));
    }
    // Sequence numbers jump back by 1000, timestamps go on: renumbered, not late.
    for k in 4..8 {
        let mut p = nth(t0, Side::Caller, k, 20 * k as u64);
        p.sequence = p.sequence.wrapping_sub(1000);
        assert_eq!(aligner.push(&p), PushOutcome::Written, "packet {k}");
    }
    // Both jump back (a restart behind a gateway that keeps the SSRC): re-anchored.
    for k in 8..12 {
        let mut p = nth(t0, Side::Caller, k, 20 * k as u64);
        p.sequence = (k - 8) as u16;
        p.timestamp = 3_000_000 + (PTIME * (k - 8)) as u32;
        assert_eq!(aligner.push(&p), PushOutcome::Written, "packet {k}");
    }
    let out = finish(&mut aligner, t0 + ms(240));
    assert_eq!(out.len(), 12 * PTIME);
    for k in 0..12 {
        assert_span(&out, span(k), level(k), 0);
    }
    let stats = aligner.stats();
    assert_eq!((stats.written, stats.reanchors, stats.late), (12, 1, 0));
}
