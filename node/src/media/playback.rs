//! Prompts and music on hold: G.711 audio paced out to a leg as RTP packets.
//!
//! A [`Prompt`] is audio loaded once (from a WAV file or raw G.711), already encoded in
//! the law the leg speaks, and shared by every call that plays it (cloning is an `Arc`
//! bump). A [`Player`] is the sans-IO pacer for one leg: given the time, it writes the
//! packet due into the caller's buffer and says when the next one is due. It never reads
//! the clock and owns no socket, so its timing is tested with simulated time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::g711::Law;
use super::rtp::RtpHeader;
use super::wav::{self, Encoding, WavError};

/// Samples per second of G.711 audio, and so of every prompt.
pub const SAMPLE_RATE: u32 = 8000;

/// Why a prompt cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PromptError {
    /// The bytes are not a WAV file we read (not RIFF/WAVE, truncated, 24-bit, 6 channels...).
    #[error(
        "cannot use this file as a prompt: {0}; convert it to 8 kHz mono 16-bit WAV, \
         e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`"
    )]
    Wav(#[from] WavError),
    /// The WAV file is not sampled at 8 kHz; we do not resample.
    #[error(
        "the prompt is sampled at {0} Hz but calls carry 8000 Hz audio; convert it, \
         e.g. `sox in.wav -r 8000 -c 1 out.wav`"
    )]
    SampleRate(u32),
    /// There is no audio at all.
    #[error("the prompt holds no audio samples; record or convert it again")]
    Empty,
}

/// Audio ready to send: 8 kHz mono, encoded in one G.711 law. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    law: Law,
    audio: Arc<[u8]>,
}

impl fmt::Debug for Prompt {
    // The audio itself is megabytes of noise in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("law", &self.law)
            .field("samples", &self.audio.len())
            .finish()
    }
}

impl Prompt {
    /// Loads a WAV file: 8 kHz, 16-bit PCM, μ-law or A-law, mono or stereo (mixed down
    /// to mono), encoded in `law` (transcoding if the file uses the other one).
    pub fn from_wav(file: &[u8], law: Law) -> Result<Self, PromptError> {
        let wav = wav::parse(file)?;
        if wav.format.sample_rate != SAMPLE_RATE {
            return Err(PromptError::SampleRate(wav.format.sample_rate));
        }
        let data = wav.data(file);
        // wav::parse admits 1 or 2 channels only; max(1) just keeps chunks_exact sane.
        let frame = usize::from(wav.format.block_align()).max(1);
        let mut audio = Vec::with_capacity(data.len() / frame);
        match wav.format.encoding {
            Encoding::Pcm16 => {
                for frame in data.chunks_exact(frame) {
                    let samples = frame
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]));
                    audio.push(law.encode(mix(samples)));
                }
            }
            Encoding::Ulaw | Encoding::Alaw => {
                let stored = if wav.format.encoding == Encoding::Ulaw {
                    Law::Ulaw
                } else {
                    Law::Alaw
                };
                if wav.format.channels == 1 && stored == law {
                    audio.extend_from_slice(data);
                } else {
                    for frame in data.chunks_exact(frame) {
                        let samples = frame.iter().map(|&b| stored.decode(b));
                        audio.push(law.encode(mix(samples)));
                    }
                }
            }
        }
        Self::from_encoded(audio, law)
    }

    /// Takes raw G.711 bytes (8 kHz mono, no header) stored in `stored`, for a leg
    /// speaking `law`.
    pub fn from_raw(bytes: &[u8], stored: Law, law: Law) -> Result<Self, PromptError> {
        let audio = if stored == law {
            bytes.to_vec()
        } else {
            bytes
                .iter()
                .map(|&b| law.encode(stored.decode(b)))
                .collect()
        };
        Self::from_encoded(audio, law)
    }

    /// Encodes 8 kHz linear samples (e.g. tones from
    /// [`ToneGenerator`](super::dtmf::ToneGenerator)).
    pub fn from_linear(samples: &[i16], law: Law) -> Result<Self, PromptError> {
        Self::from_encoded(samples.iter().map(|&s| law.encode(s)).collect(), law)
    }

    fn from_encoded(audio: Vec<u8>, law: Law) -> Result<Self, PromptError> {
        if audio.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(Self {
            law,
            audio: audio.into(),
        })
    }

    /// The law the audio is encoded in.
    pub fn law(&self) -> Law {
        self.law
    }

    /// The encoded audio, one byte per sample.
    pub fn as_bytes(&self) -> &[u8] {
        &self.audio
    }

    /// Number of samples (never zero).
    pub fn sample_count(&self) -> usize {
        self.audio.len()
    }

    /// How long the prompt plays once.
    pub fn duration(&self) -> Duration {
        // 125 µs per sample at 8 kHz.
        Duration::from_micros(self.audio.len() as u64 * 125)
    }
}

/// Averages the channels of one frame.
fn mix(samples: impl Iterator<Item = i16>) -> i16 {
    let (sum, count) = samples.fold((0i32, 0i32), |(sum, n), s| (sum + i32::from(s), n + 1));
    if count == 0 {
        return 0;
    }
    // The mean of i16 values is an i16.
    (sum / count) as i16
}

/// How a [`Player`] numbers and paces its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerConfig {
    pub ssrc: u32,
    /// The payload type of the prompt's law on this leg (0 for PCMU, 8 for PCMA).
    pub payload_type: u8,
    pub first_sequence: u16,
    pub first_timestamp: u32,
    /// Start again at the end (music on hold) instead of finishing.
    pub looping: bool,
    /// Audio per packet (the SDP `ptime`), 20 ms usually.
    pub packet_ms: u32,
}

/// Why a player cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PlayerError {
    #[error(
        "a packet time of {0} ms is not supported; use 10 to 120 ms (20 ms is usual for G.711)"
    )]
    PacketTime(u32),
}

/// A packet more than this overdue is skipped rather than sent late (see [`Player`]).
pub const MAX_LATENESS: Duration = Duration::from_millis(200);

/// Bytes of the RTP header a player writes (no CSRCs, no extension).
const HEADER_LEN: usize = super::rtp::FIXED_HEADER_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Playing,
    Paused,
    Finished,
}

/// Paces a prompt out to one leg as RTP packets.
///
/// Packets sit on a fixed grid: packet slot `k` is due at `start + k * packet time`
/// exactly (computed from `start`, so no drift accumulates) and carries timestamp
/// `first_timestamp + k * samples per packet`. The sequence number goes up by one per
/// packet actually sent. The marker bit is set on the first packet and on the first one
/// after [`resume`](Self::resume) or a skip, each the start of a talkspurt to the
/// receiver. The last packet of a prompt is padded with silence; a looping prompt runs
/// on from its start seamlessly, in the middle of a packet if need be.
///
/// Late polls: [`poll`](Self::poll) sends one packet per call, so a caller that was
/// busy loops until it gets `None` and the overdue packets go out back to back. But if
/// the oldest overdue packet is more than [`MAX_LATENESS`] (200 ms) late, the player
/// skips to the slot due most recently: the skipped packets are never sent (the
/// receiver sees them as lost) and their audio is skipped with them, so the prompt stays
/// on the wall clock and the receiver gets no burst of seconds of audio. Timestamps
/// stay on the grid, so they match the time that passed.
///
/// [`pause`](Self::pause) stops sending (the leg goes back to relaying);
/// [`resume`](Self::resume) carries on in the audio where it stopped, at the next slot
/// of the same grid: its timestamp has moved on with the time paused, as the receiver's
/// jitter buffer expects.
#[derive(Debug, Clone)]
pub struct Player {
    prompt: Prompt,
    config: PlayerConfig,
    samples_per_packet: usize,
    packet_nanos: u64,
    start: Instant,
    /// The next slot to send.
    slot: u64,
    sequence: u16,
    /// Next byte of the prompt to send.
    position: usize,
    marker: bool,
    state: State,
}

impl Player {
    /// A player whose first packet is due at `start`.
    pub fn new(prompt: Prompt, config: PlayerConfig, start: Instant) -> Result<Self, PlayerError> {
        if !(10..=120).contains(&config.packet_ms) {
            return Err(PlayerError::PacketTime(config.packet_ms));
        }
        Ok(Self {
            samples_per_packet: config.packet_ms as usize * SAMPLE_RATE as usize / 1000,
            packet_nanos: u64::from(config.packet_ms) * 1_000_000,
            sequence: config.first_sequence,
            prompt,
            config,
            start,
            slot: 0,
            position: 0,
            marker: true,
            state: State::Playing,
        })
    }

    /// Bytes of each packet: `poll`'s buffer must hold this many (at most 972, so any
    /// MTU-sized buffer does).
    pub fn packet_len(&self) -> usize {
        HEADER_LEN + self.samples_per_packet
    }

    /// Samples (and timestamp units) per packet: 160 at 20 ms.
    pub fn samples_per_packet(&self) -> usize {
        self.samples_per_packet
    }

    /// When the next packet is due (maybe already past); `None` once finished or while
    /// paused.
    pub fn next_due(&self) -> Option<Instant> {
        (self.state == State::Playing).then(|| self.due(self.slot))
    }

    /// Whether a finite prompt has been sent to its end.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Writes the next packet into `buf` if one is due at or before `now` and returns
    /// its length; `None` if none is due yet (or finished, or paused). Call again until
    /// `None` to catch up after being late. A `buf` shorter than
    /// [`packet_len`](Self::packet_len) is a caller bug: that packet is dropped.
    pub fn poll(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.state != State::Playing || self.due(self.slot) > now {
            return None;
        }
        if now.saturating_duration_since(self.due(self.slot)) > MAX_LATENESS {
            let latest = self.slot_at(now);
            let skipped = latest.saturating_sub(self.slot);
            self.slot = latest;
            self.skip_audio(skipped);
            self.marker = true;
            if self.state == State::Finished {
                return None;
            }
        }
        let header = RtpHeader {
            marker: self.marker,
            payload_type: self.config.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp(self.slot),
            ssrc: self.config.ssrc,
            ..RtpHeader::default()
        };
        let len = self.packet_len();
        debug_assert!(
            buf.len() >= len,
            "poll needs a buffer of packet_len() bytes"
        );
        let written = match buf.get_mut(..len) {
            Some(out) => {
                let (head, payload) = out.split_at_mut(HEADER_LEN);
                // With no CSRCs or extension the header is exactly HEADER_LEN bytes.
                let fits = header.write(&[], head).is_ok();
                self.fill(payload);
                fits.then_some(len)
            }
            None => {
                self.skip_audio(1);
                None
            }
        };
        self.slot += 1;
        self.sequence = self.sequence.wrapping_add(1);
        self.marker = false;
        if !self.config.looping && self.position >= self.prompt.audio.len() {
            self.state = State::Finished;
        }
        written
    }

    /// Stops sending until [`resume`](Self::resume). Packets due and not yet polled
    /// are dropped. (`now` is not needed: resuming finds its place from the grid.)
    pub fn pause(&mut self, _now: Instant) {
        if self.state == State::Playing {
            self.state = State::Paused;
        }
    }

    /// Carries on from where the audio stopped, at the first slot of the grid at or
    /// after `now`, with the marker bit set.
    pub fn resume(&mut self, now: Instant) {
        if self.state != State::Paused {
            return;
        }
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let next = elapsed.div_ceil(u128::from(self.packet_nanos));
        self.slot = self.slot.max(u64::try_from(next).unwrap_or(u64::MAX));
        self.marker = true;
        self.state = State::Playing;
    }

    fn due(&self, slot: u64) -> Instant {
        self.start + Duration::from_nanos(slot.saturating_mul(self.packet_nanos))
    }

    /// The slot due most recently at `now`.
    fn slot_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / u128::from(self.packet_nanos)).unwrap_or(u64::MAX)
    }

    fn timestamp(&self, slot: u64) -> u32 {
        // RTP timestamps wrap modulo 2^32: the truncation is the arithmetic we want.
        let offset = slot.wrapping_mul(self.samples_per_packet as u64) as u32;
        self.config.first_timestamp.wrapping_add(offset)
    }

    /// Copies the next audio into `payload`, wrapping when looping, padding with
    /// silence at the end otherwise.
    fn fill(&mut self, payload: &mut [u8]) {
        let audio = &self.prompt.audio;
        let mut filled = 0;
        while filled < payload.len() {
            if self.position >= audio.len() {
                if !self.config.looping || audio.is_empty() {
                    payload[filled..].fill(self.prompt.law.silence());
                    return;
                }
                self.position = 0;
            }
            let n = (audio.len() - self.position).min(payload.len() - filled);
            payload[filled..filled + n].copy_from_slice(&audio[self.position..self.position + n]);
            filled += n;
            self.position += n;
        }
    }

    /// Moves past the audio of `packets` packets that will not be sent.
    fn skip_audio(&mut self, packets: u64) {
        let len = self.prompt.audio.len() as u64;
        let skipped = packets.saturating_mul(self.samples_per_packet as u64);
        let position = (self.position as u64).saturating_add(skipped);
        if self.config.looping && len > 0 {
            self.position = (position % len) as usize;
        } else if position >= len {
            self.position = self.prompt.audio.len();
            self.state = State::Finished;
        } else {
            self.position = position as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;
    use crate::media::wav::WavFormat;

    const MS: Duration = Duration::from_millis(1);

    fn config(looping: bool) -> PlayerConfig {
        PlayerConfig {
            ssrc: 0xCAFE_F00D,
            payload_type: 0,
            first_sequence: 65_300,
            first_timestamp: u32::MAX - 10_000,
            looping,
            packet_ms: 20,
        }
    }

    /// A prompt whose bytes count up, so any misplaced byte shows.
    fn ramp(len: usize) -> Prompt {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        Prompt::from_raw(&bytes, Law::Ulaw, Law::Ulaw).expect("not empty")
    }

    /// Polls exactly at each due time until `count` packets came out.
    fn drain_on_time(player: &mut Player, count: usize) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        while out.len() < count {
            let Some(due) = player.next_due() else { break };
            assert_eq!(player.poll(due - Duration::from_nanos(1), &mut buf), None);
            let n = player.poll(due, &mut buf).expect("due");
            out.push((due, buf[..n].to_vec()));
            assert_eq!(player.poll(due, &mut buf), None, "one packet per slot");
        }
        out
    }

    fn wav_file(format: WavFormat, data: &[u8]) -> Vec<u8> {
        let mut file = format.header(data.len() as u32).to_vec();
        file.extend_from_slice(data);
        file
    }

    fn pcm16(channels: u16, rate: u32) -> WavFormat {
        WavFormat {
            encoding: Encoding::Pcm16,
            channels,
            sample_rate: rate,
        }
    }

    #[test]
    fn packets_sit_on_a_20_ms_grid_with_wrapping_numbers() {
        let t0 = Instant::now();
        let cfg = config(true);
        let mut player = Player::new(ramp(1_000), cfg, t0).expect("valid");
        let first = drain_on_time(&mut player, 250);
        let pause_at = t0 + 250 * 20 * MS + 7 * MS;
        player.pause(pause_at);
        assert_eq!(player.next_due(), None);
        assert_eq!(player.poll(pause_at + 500 * MS, &mut [0; 1500]), None);
        // Resume 1.003 s later: the next slot at or after that.
        let resume_at = pause_at + 1_003 * MS;
        player.resume(resume_at);
        let resumed_slot = 250 + 1_010 / 20 + 1; // slots 0..=300 are before resume_at
        assert_eq!(player.next_due(), Some(t0 + resumed_slot * 20 * MS));
        let second = drain_on_time(&mut player, 250);
        assert_eq!(first.len() + second.len(), 500);

        let mut expected_seq = cfg.first_sequence;
        for (i, (due, bytes)) in first.iter().chain(&second).enumerate() {
            let slot = if i < 250 {
                i
            } else {
                i - 250 + resumed_slot as usize
            };
            let p = RtpPacket::parse(bytes).expect("valid RTP");
            assert_eq!(*due, t0 + slot as u32 * 20 * MS);
            assert_eq!(p.sequence(), expected_seq);
            expected_seq = expected_seq.wrapping_add(1);
            assert_eq!(
                p.timestamp(),
                cfg.first_timestamp.wrapping_add(slot as u32 * 160)
            );
            assert_eq!(p.marker(), i == 0 || i == 250, "packet {i}");
            assert_eq!((p.ssrc(), p.payload_type()), (cfg.ssrc, 0));
            assert_eq!(p.payload().len(), 160);
        }
        // The numbers did wrap.
        assert!(expected_seq < cfg.first_sequence);
        let last = RtpPacket::parse(&second[249].1).expect("valid").timestamp();
        assert!(last < cfg.first_timestamp);
    }

    #[test]
    fn looping_audio_is_continuous_across_the_end_and_pauses() {
        let prompt = ramp(1_000);
        let t0 = Instant::now();
        let mut player = Player::new(prompt.clone(), config(true), t0).expect("valid");
        let mut sent = Vec::new();
        for (_, bytes) in drain_on_time(&mut player, 20) {
            sent.extend_from_slice(RtpPacket::parse(&bytes).expect("valid").payload());
        }
        player.pause(t0 + 401 * MS);
        player.resume(t0 + 5_000 * MS);
        for (_, bytes) in drain_on_time(&mut player, 20) {
            sent.extend_from_slice(RtpPacket::parse(&bytes).expect("valid").payload());
        }
        let expected: Vec<u8> = prompt
            .as_bytes()
            .iter()
            .copied()
            .cycle()
            .take(40 * 160)
            .collect();
        assert_eq!(sent, expected);
        assert!(!player.is_finished());
    }

    #[test]
    fn a_finite_prompt_is_sent_whole_then_finishes() {
        for len in [1, 159, 160, 161, 1_000, 8_000] {
            let prompt = ramp(len);
            let mut player =
                Player::new(prompt.clone(), config(false), Instant::now()).expect("valid");
            let packets = drain_on_time(&mut player, usize::MAX);
            assert_eq!(packets.len(), len.div_ceil(160), "len {len}");
            assert!(player.is_finished());
            assert_eq!(player.next_due(), None);
            let mut sent = Vec::new();
            for (_, bytes) in &packets {
                sent.extend_from_slice(RtpPacket::parse(bytes).expect("valid").payload());
            }
            assert_eq!(&sent[..len], prompt.as_bytes());
            assert!(sent[len..].iter().all(|&b| b == Law::Ulaw.silence()));
            assert_eq!(sent.len() % 160, 0);
        }
    }

    #[test]
    fn a_late_caller_gets_the_overdue_packets_one_per_call() {
        let t0 = Instant::now();
        let mut player = Player::new(ramp(8_000), config(false), t0).expect("valid");
        let mut buf = [0u8; 1500];
        // 150 ms late: slots 0..=7 are due, sent back to back, none skipped.
        let now = t0 + 150 * MS;
        let mut seen = Vec::new();
        while let Some(n) = player.poll(now, &mut buf) {
            seen.push(RtpPacket::parse(&buf[..n]).expect("valid").timestamp());
        }
        let ts0 = config(false).first_timestamp;
        let expected: Vec<u32> = (0..8).map(|k| ts0.wrapping_add(k * 160)).collect();
        assert_eq!(seen, expected);
        assert_eq!(player.next_due(), Some(t0 + 160 * MS));
    }

    #[test]
    fn a_caller_over_200_ms_late_skips_ahead_on_the_grid() {
        let t0 = Instant::now();
        let cfg = config(false);
        let prompt = ramp(8_000); // 1 s, 50 packets
        let mut player = Player::new(prompt.clone(), cfg, t0).expect("valid");
        let mut buf = [0u8; 1500];
        assert!(player.poll(t0, &mut buf).is_some()); // slot 0
        // The worker stalls; at 530 ms slot 1 is 510 ms late. Slot 26 (520 ms) is sent.
        let now = t0 + 530 * MS;
        let n = player.poll(now, &mut buf).expect("a packet");
        let p = RtpPacket::parse(&buf[..n]).expect("valid");
        assert_eq!(p.sequence(), cfg.first_sequence.wrapping_add(1));
        assert_eq!(p.timestamp(), cfg.first_timestamp.wrapping_add(26 * 160));
        assert!(p.marker());
        assert_eq!(p.payload(), &prompt.as_bytes()[26 * 160..27 * 160]);
        assert_eq!(player.poll(now, &mut buf), None);
        assert_eq!(player.next_due(), Some(t0 + 540 * MS));
        // The next is on time again: no marker.
        let n = player.poll(t0 + 540 * MS, &mut buf).expect("a packet");
        assert!(!RtpPacket::parse(&buf[..n]).expect("valid").marker());
        // A stall past the prompt's end finishes it without sending.
        assert_eq!(player.poll(t0 + 5_000 * MS, &mut buf), None);
        assert!(player.is_finished());
    }

    #[test]
    fn a_short_pause_does_not_reuse_a_slot() {
        let t0 = Instant::now();
        let mut player = Player::new(ramp(8_000), config(false), t0).expect("valid");
        let mut buf = [0u8; 1500];
        assert!(player.poll(t0, &mut buf).is_some());
        player.pause(t0 + MS);
        player.resume(t0 + 2 * MS);
        assert_eq!(player.next_due(), Some(t0 + 20 * MS));
        // Pausing or resuming twice changes nothing.
        player.resume(t0 + 3 * MS);
        assert_eq!(player.next_due(), Some(t0 + 20 * MS));
        let n = player.poll(t0 + 20 * MS, &mut buf).expect("due");
        let p = RtpPacket::parse(&buf[..n]).expect("valid");
        assert!(p.marker());
        assert_eq!(
            p.timestamp(),
            config(false).first_timestamp.wrapping_add(160)
        );
    }

    #[test]
    fn other_packet_times_and_bad_ones() {
        let t0 = Instant::now();
        let cfg = PlayerConfig {
            packet_ms: 30,
            ..config(false)
        };
        let mut player = Player::new(ramp(1_000), cfg, t0).expect("valid");
        assert_eq!(
            (player.samples_per_packet(), player.packet_len()),
            (240, 252)
        );
        let packets = drain_on_time(&mut player, usize::MAX);
        assert_eq!(packets.len(), 5);
        assert_eq!(packets[4].0, t0 + 120 * MS);
        for bad in [0, 9, 121, u32::MAX] {
            let cfg = PlayerConfig {
                packet_ms: bad,
                ..config(false)
            };
            assert_eq!(
                Player::new(ramp(10), cfg, t0).map(|_| ()),
                Err(PlayerError::PacketTime(bad))
            );
        }
    }

    #[test]
    fn wav_pcm16_is_encoded_like_g711_encode() {
        let samples: Vec<i16> = (0..4_000)
            .map(|i| ((i as f64 * 0.07).sin() * 20_000.0) as i16)
            .collect();
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let file = wav_file(pcm16(1, 8_000), &data);
        for law in [Law::Ulaw, Law::Alaw] {
            let prompt = Prompt::from_wav(&file, law).expect("valid prompt");
            let expected: Vec<u8> = samples.iter().map(|&s| law.encode(s)).collect();
            assert_eq!(prompt.as_bytes(), expected.as_slice());
            assert_eq!(prompt.law(), law);
            assert_eq!(prompt.sample_count(), 4_000);
            assert_eq!(prompt.duration(), Duration::from_millis(500));
        }
    }

    #[test]
    fn stereo_is_mixed_down_and_g711_files_transcoded() {
        // Stereo PCM: left 1000, right 3000 -> 2000.
        let data: Vec<u8> = [1_000i16, 3_000]
            .repeat(80)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let prompt =
            Prompt::from_wav(&wav_file(pcm16(2, 8_000), &data), Law::Alaw).expect("valid prompt");
        assert_eq!(prompt.as_bytes(), vec![Law::Alaw.encode(2_000); 80]);

        // μ-law mono for a μ-law leg: the bytes as they are.
        let ulaw: Vec<u8> = (0..=255).collect();
        let format = WavFormat {
            encoding: Encoding::Ulaw,
            channels: 1,
            sample_rate: 8_000,
        };
        let file = wav_file(format, &ulaw);
        assert_eq!(
            Prompt::from_wav(&file, Law::Ulaw)
                .expect("valid")
                .as_bytes(),
            ulaw.as_slice()
        );
        // ...and for an A-law leg, transcoded sample by sample; from_raw agrees.
        let alaw: Vec<u8> = ulaw
            .iter()
            .map(|&b| Law::Alaw.encode(Law::Ulaw.decode(b)))
            .collect();
        assert_eq!(
            Prompt::from_wav(&file, Law::Alaw)
                .expect("valid")
                .as_bytes(),
            alaw.as_slice()
        );
        let raw = Prompt::from_raw(&ulaw, Law::Ulaw, Law::Alaw).expect("valid");
        assert_eq!(raw.as_bytes(), alaw.as_slice());
        // A-law stereo, both channels equal: the same samples in μ-law.
        let format = WavFormat {
            encoding: Encoding::Alaw,
            channels: 2,
            sample_rate: 8_000,
        };
        let stereo: Vec<u8> = alaw.iter().flat_map(|&b| [b, b]).collect();
        let prompt = Prompt::from_wav(&wav_file(format, &stereo), Law::Ulaw).expect("valid");
        let expected: Vec<u8> = alaw
            .iter()
            .map(|&b| Law::Ulaw.encode(Law::Alaw.decode(b)))
            .collect();
        assert_eq!(prompt.as_bytes(), expected.as_slice());
        // Linear samples, and clones share the audio.
        let linear = Prompt::from_linear(&[0, 1_000, -1_000], Law::Ulaw).expect("valid");
        assert!(Arc::ptr_eq(&linear.audio, &linear.clone().audio));
        assert_eq!(format!("{linear:?}"), "Prompt { law: Ulaw, samples: 3 }");
    }

    #[test]
    fn unusable_files_say_what_to_do() {
        let cd = wav_file(pcm16(2, 44_100), &[0; 400]);
        let err = Prompt::from_wav(&cd, Law::Ulaw).expect_err("44.1 kHz");
        assert_eq!(err, PromptError::SampleRate(44_100));
        assert!(err.to_string().contains("sox in.wav -r 8000 -c 1 out.wav"));

        let mut deep = wav_file(pcm16(1, 8_000), &[0; 300]);
        deep[34] = 24; // bits per sample
        let err = Prompt::from_wav(&deep, Law::Ulaw).expect_err("24-bit");
        assert_eq!(
            err,
            PromptError::Wav(WavError::UnsupportedFormat { tag: 1, bits: 24 })
        );
        assert!(err.to_string().contains("-b 16"));

        let err = Prompt::from_wav(b"ID3\x04 this is an mp3", Law::Ulaw).expect_err("not WAV");
        assert_eq!(err, PromptError::Wav(WavError::NotWave));
        assert!(err.to_string().contains("sox"));

        let empty = wav_file(pcm16(1, 8_000), &[]);
        assert_eq!(Prompt::from_wav(&empty, Law::Ulaw), Err(PromptError::Empty));
        assert_eq!(
            Prompt::from_raw(&[], Law::Ulaw, Law::Ulaw),
            Err(PromptError::Empty)
        );
    }
}
