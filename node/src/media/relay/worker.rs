//! One relay worker: a thread that owns the sockets of the calls given to it and moves
//! their packets.
//!
//! Both legs of a call live on the same worker, so forwarding never crosses threads. The
//! loop waits on epoll, drains a ready socket with one `recvmmsg`, checks each packet
//! against the leg's latch, folds it into the leg's statistics and sends everything bound
//! for the other leg with one `sendmmsg`, straight from the receive buffer. Nothing in that
//! path allocates, locks or touches memory shared with another thread: commands arrive on
//! a channel (woken by an eventfd) between batches, and counters are published to the
//! metrics registry about once a second.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::latch::{Admit, Latch};
use super::sys::{Epoll, EventFd, RawAddr, RecvBatch, SendBatch};
use crate::media::dtmf::{DtmfSource, InbandDetector, Rfc4733Detector};
use crate::media::g711::Law;
use crate::media::mos::{CodecImpairment, estimate_mos};
use crate::media::playback::{Player, PlayerConfig, PlayerError, Prompt};
use crate::media::recording::{
    Command as RecorderCommand, RecordedPacket, RecorderHandle, RecordingId, RecordingMeta,
    SendError, Side,
};
use crate::media::rtcp::{RtcpCompound, RtcpPacket};
use crate::media::rtp::{RtpPacket, is_rtcp};
use crate::media::stats::{Arrival, ReceiverStats, RemoteReception};

/// Datagrams taken from one socket per `recvmmsg`.
const BATCH: usize = 32;
/// How often counters go to the metrics registry.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Recorded packets per hand-over to the recorder...
const RECORD_BATCH: usize = 256;
/// ...or whatever has been taken after this long (well inside the recorder's 100 ms
/// reorder window, so batching never makes a packet late for the recording).
const RECORD_HAND_OVER_EVERY: Duration = Duration::from_millis(20);
/// The epoll token of the command eventfd (no call slot can produce it).
const WAKE_TOKEN: u64 = u64::MAX;

/// Which leg of a call: the caller-facing one (0) or the callee-facing one (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegSide {
    Caller,
    Callee,
}

impl LegSide {
    pub fn index(self) -> usize {
        match self {
            LegSide::Caller => 0,
            LegSide::Callee => 1,
        }
    }

    pub fn other(self) -> LegSide {
        match self {
            LegSide::Caller => LegSide::Callee,
            LegSide::Callee => LegSide::Caller,
        }
    }
}

/// The two sockets of one leg, bound by the engine on the leg's RTP and RTCP ports.
#[derive(Debug)]
pub(crate) struct LegSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// What the leg's peer announced in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RemoteMedia {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    /// The peer's `telephone-event` payload type: RFC 4733 digits are detected on it.
    pub telephone_event: Option<u8>,
    /// The peer's first G.711 law: in-band detection and playback use it.
    pub law: Option<Law>,
}

/// Something a worker noticed that the call's owner may act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MediaEvent {
    /// A key press from the leg's peer.
    Dtmf {
        leg: LegSide,
        digit: char,
        /// `rfc4733` or `inband`.
        source: &'static str,
        duration_ms: u32,
    },
    /// A prompt that does not loop has been played to the end to the leg's peer.
    PlaybackFinished { leg: LegSide },
    /// Neither peer has sent anything for the RTP timeout: the call is probably dead (a
    /// phone lost power, a NAT dropped out). Reported once, again only after media
    /// flowed in between; the call's owner decides whether to hang up.
    Inactive { idle_ms: u64 },
}

/// Where a worker reports [`MediaEvent`]s: called with the call's key, rarely (never per
/// packet), from the worker thread.
pub(crate) type EventSink = std::sync::Arc<dyn Fn(u64, MediaEvent) + Send + Sync>;

/// Instructions from the engine.
#[derive(Debug)]
pub(crate) enum Command {
    AddCall {
        key: u64,
        legs: Box<[LegSockets; 2]>,
        reply: oneshot::Sender<io::Result<()>>,
    },
    Remote {
        key: u64,
        side: LegSide,
        remote: RemoteMedia,
    },
    Play {
        key: u64,
        side: LegSide,
        prompt: Prompt,
        looping: bool,
        reply: oneshot::Sender<Result<(), PlayerError>>,
    },
    StopPlay {
        key: u64,
        side: LegSide,
    },
    Inband {
        key: u64,
        side: LegSide,
        enabled: bool,
    },
    Record {
        key: u64,
        action: RecordAction,
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
    Stats {
        key: u64,
        reply: oneshot::Sender<Option<CallStats>>,
    },
    Remove {
        key: u64,
        reply: oneshot::Sender<Option<CallStats>>,
    },
    Shutdown,
}

/// What to do with a call's recording.
#[derive(Debug)]
pub(crate) enum RecordAction {
    Start {
        id: RecordingId,
        meta: Box<RecordingMeta>,
    },
    Pause,
    Resume,
    Stop,
}

/// Why a recording request failed in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("recording is not configured on this media node")]
    NotConfigured,
    #[error("the call is already being recorded")]
    AlreadyRecording,
    #[error("the call is not being recorded")]
    NotRecording,
    #[error("the recorder is overloaded or stopped; try again")]
    RecorderBusy,
    #[error("no such call on this worker")]
    NoCall,
}

/// Statistics of one leg: what its peer sent us, and what we sent its peer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LegStats {
    /// Our socket facing this leg's peer.
    pub local: Option<SocketAddr>,
    /// The peer's address we latched on, if it has sent.
    pub latched: Option<SocketAddr>,
    /// RTP packets accepted from the peer.
    pub packets_received: u64,
    /// RTP payload bytes accepted from the peer.
    pub bytes_received: u64,
    /// RTP packets the sequence numbers say are missing (all SSRCs of this leg).
    pub packets_lost: i64,
    /// Lost / expected, 0.0 to 1.0.
    pub loss_ratio: f64,
    pub out_of_order: u64,
    pub duplicates: u64,
    /// Interarrival jitter of the current stream (RFC 3550 A.8), milliseconds.
    pub jitter_ms: f64,
    /// How many times the peer's SSRC changed.
    pub ssrc_changes: u64,
    /// RTCP packets accepted from the peer.
    pub rtcp_received: u64,
    /// Packets (RTP + RTCP) sent to the peer.
    pub packets_sent: u64,
    /// Packets dropped because they came from a source other than the latched one.
    pub dropped_foreign_source: u64,
    /// Datagrams that were neither RTP nor RTCP.
    pub dropped_malformed: u64,
    /// Packets for this peer dropped because its address is not known yet.
    pub dropped_no_destination: u64,
    /// Loss the peer reports (RTCP) about the stream we send it, 0.0 to 1.0.
    pub remote_fraction_lost: f64,
    /// Jitter the peer reports (RTCP) about the stream we send it, milliseconds.
    pub remote_jitter_ms: f64,
    /// Round trip from the peer's RTCP reports, milliseconds.
    pub round_trip_ms: Option<f64>,
    /// Time since the peer last sent anything, milliseconds.
    pub idle_ms: Option<u64>,
    /// Estimated MOS of the audio the peer sent us (None before any packet); see
    /// [`Leg::mos`] for the delay it assumes.
    pub mos: Option<f64>,
}

/// Statistics of both legs of a call.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CallStats {
    pub caller: LegStats,
    pub callee: LegStats,
}

/// Totals of the SSRCs a leg heard before its current one.
#[derive(Debug, Clone, Copy, Default)]
struct PriorStreams {
    packets: u64,
    bytes: u64,
    expected: u64,
    lost: i64,
    out_of_order: u64,
    duplicates: u64,
}

#[derive(Debug)]
struct Leg {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    rtp_latch: Latch,
    rtcp_latch: Latch,
    rtcp_mux: bool,
    /// Kernel form of where media for this leg's peer goes, refreshed on latch changes.
    rtp_dest: Option<RawAddr>,
    rtcp_dest: Option<RawAddr>,
    ssrc: Option<u32>,
    receiver: ReceiverStats,
    prior: PriorStreams,
    ssrc_changes: u64,
    remote: RemoteReception,
    rtcp_received: u64,
    packets_sent: u64,
    dropped_foreign_source: u64,
    dropped_malformed: u64,
    dropped_no_destination: u64,
    last_heard: Option<Instant>,
    /// The peer's G.711 law, from SDP.
    law: Option<Law>,
    rfc4733: Option<Rfc4733Detector>,
    inband: Option<InbandDetector>,
    /// While set, this leg's peer hears the prompt instead of the other leg.
    player: Option<Player>,
}

impl Leg {
    fn new(sockets: LegSockets, relatch_after: Duration) -> Self {
        Self {
            rtp: sockets.rtp,
            rtcp: sockets.rtcp,
            rtp_latch: Latch::new(None, relatch_after),
            rtcp_latch: Latch::new(None, relatch_after),
            rtcp_mux: false,
            rtp_dest: None,
            rtcp_dest: None,
            ssrc: None,
            receiver: ReceiverStats::new(),
            prior: PriorStreams::default(),
            ssrc_changes: 0,
            remote: RemoteReception::default(),
            rtcp_received: 0,
            packets_sent: 0,
            dropped_foreign_source: 0,
            dropped_malformed: 0,
            dropped_no_destination: 0,
            last_heard: None,
            law: None,
            rfc4733: None,
            inband: None,
            player: None,
        }
    }

    fn refresh_destinations(&mut self) {
        self.rtp_dest = self.rtp_latch.destination().map(RawAddr::from);
        let rtcp = if self.rtcp_mux {
            self.rtp_latch.destination()
        } else {
            self.rtcp_latch.destination()
        };
        self.rtcp_dest = rtcp.map(RawAddr::from);
    }

    fn set_remote(&mut self, remote: RemoteMedia) {
        self.rtcp_mux = remote.rtcp_mux;
        self.law = remote.law;
        if self.rfc4733.as_ref().map(|d| d.payload_type()) != remote.telephone_event {
            self.rfc4733 = remote.telephone_event.map(Rfc4733Detector::new);
        }
        self.rtp_latch.set_expected(remote.rtp);
        // Without a=rtcp, RTCP is on the port above RTP (RFC 3605).
        let rtcp = remote.rtcp.or_else(|| {
            remote
                .rtp
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
        });
        self.rtcp_latch.set_expected(rtcp);
        self.refresh_destinations();
    }

    fn on_rtp(&mut self, packet: &RtpPacket<'_>, now: Instant) {
        let ssrc = packet.ssrc();
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.ssrc_changes += 1;
                self.prior.expected += self.receiver.expected();
                self.prior.lost += self.receiver.lost();
                self.prior.out_of_order += self.receiver.out_of_order();
                self.prior.duplicates += self.receiver.duplicates();
                self.prior.packets += self.receiver.packets();
                self.prior.bytes += self.receiver.bytes();
                self.receiver = ReceiverStats::new();
            }
            self.ssrc = Some(ssrc);
        }
        self.receiver.on_packet(Arrival {
            sequence: packet.sequence(),
            rtp_timestamp: packet.timestamp(),
            at: now,
            clock_rate: 8000,
            payload_len: packet.payload().len(),
        });
    }

    /// Runs the DTMF detectors on a packet from the peer.
    fn detect(&mut self, packet: &RtpPacket<'_>, mut report: impl FnMut(DtmfSource, char, u32)) {
        let pt = packet.payload_type();
        if let Some(detector) = self.rfc4733.as_mut()
            && pt == detector.payload_type()
        {
            for event in detector.on_packet(packet) {
                report(event.source, event.digit, event.duration_samples);
            }
            return;
        }
        if let (Some(detector), Some(law)) = (self.inband.as_mut(), Law::from_payload_type(pt)) {
            detector.push_g711(packet.payload(), law, |event| {
                report(event.source, event.digit, event.duration_samples)
            });
        }
    }

    fn on_rtcp(&mut self, data: &[u8], now: Instant) {
        self.rtcp_received += 1;
        let Ok(compound) = RtcpCompound::parse(data) else {
            return;
        };
        for packet in compound.packets() {
            match packet {
                RtcpPacket::SenderReport { info, blocks, .. } => {
                    self.receiver.on_sender_report(info.ntp_timestamp, now);
                    if let Some(block) = blocks.iter().next() {
                        self.remote.apply(&block, 8000, 0);
                    }
                }
                RtcpPacket::ReceiverReport { blocks, .. } => {
                    if let Some(block) = blocks.iter().next() {
                        self.remote.apply(&block, 8000, 0);
                    }
                }
                _ => {}
            }
        }
    }

    /// MOS from the leg's whole loss ratio (all SSRCs) and a one-way delay estimated as
    /// half the RTCP round trip (0 when the peer sends no reports) plus a jitter buffer of
    /// twice the measured jitter plus one 20 ms packet.
    fn mos(&self, loss_ratio: f64) -> Option<f64> {
        if self.prior.packets + self.receiver.packets() == 0 {
            return None;
        }
        let network = self.remote.round_trip.map_or(Duration::ZERO, |rtt| rtt / 2);
        let buffer = Duration::from_secs_f64(2.0 * self.receiver.jitter_ms() / 1000.0)
            + Duration::from_millis(20);
        Some(estimate_mos(
            CodecImpairment::G711_PLC,
            loss_ratio,
            network + buffer,
        ))
    }

    fn stats(&self, now: Instant) -> LegStats {
        let expected = self.prior.expected + self.receiver.expected();
        let lost = self.prior.lost + self.receiver.lost();
        let loss_ratio = if expected == 0 {
            0.0
        } else {
            (lost.max(0) as f64 / expected as f64).min(1.0)
        };
        LegStats {
            local: self.rtp.local_addr().ok(),
            latched: self.rtp_latch.latched(),
            packets_received: self.prior.packets + self.receiver.packets(),
            bytes_received: self.prior.bytes + self.receiver.bytes(),
            packets_lost: lost,
            loss_ratio,
            mos: self.mos(loss_ratio),
            out_of_order: self.prior.out_of_order + self.receiver.out_of_order(),
            duplicates: self.prior.duplicates + self.receiver.duplicates(),
            jitter_ms: self.receiver.jitter_ms(),
            ssrc_changes: self.ssrc_changes,
            rtcp_received: self.rtcp_received,
            packets_sent: self.packets_sent,
            dropped_foreign_source: self.dropped_foreign_source,
            dropped_malformed: self.dropped_malformed,
            dropped_no_destination: self.dropped_no_destination,
            remote_fraction_lost: self.remote.fraction_lost(),
            remote_jitter_ms: self.remote.jitter_ms,
            round_trip_ms: self.remote.round_trip.map(|d| d.as_secs_f64() * 1000.0),
            idle_ms: self
                .last_heard
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        }
    }
}

#[derive(Debug)]
struct Call {
    key: u64,
    legs: [Leg; 2],
    /// When the worker took the call: the start of its silence until a packet arrives.
    added: Instant,
    /// Whether [`MediaEvent::Inactive`] went out for the current silence.
    reported_inactive: bool,
    /// The recording both legs feed, if one runs.
    recording: Option<RecordingId>,
}

/// Counters summed over the worker, published once a second.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    relayed_packets: u64,
    relayed_bytes: u64,
    dropped: u64,
}

/// Where a received datagram goes.
#[derive(Debug, Clone, Copy)]
enum Route {
    Rtp(usize),
    Rtcp(usize),
}

/// How every worker treats its calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerSettings {
    pub relatch_after: Duration,
    pub rtp_timeout: Option<Duration>,
}

pub(crate) struct Worker {
    index: usize,
    epoll: Epoll,
    wake: std::sync::Arc<EventFd>,
    commands: Receiver<Command>,
    calls: Vec<Option<Call>>,
    free_slots: Vec<usize>,
    by_key: HashMap<u64, usize>,
    relatch_after: Duration,
    /// Silence after which a call is reported [`MediaEvent::Inactive`]; None: never.
    rtp_timeout: Option<Duration>,
    recv: RecvBatch,
    send: SendBatch,
    ready: Vec<u64>,
    /// Datagram index and destination of packets headed out of the other leg.
    out_rtp: Vec<(usize, RawAddr)>,
    out_rtcp: Vec<(usize, RawAddr)>,
    totals: Totals,
    published: Totals,
    events: EventSink,
    recorder: Option<RecorderHandle>,
    /// Packets of recorded calls, handed to the recorder once per loop turn.
    recorded: Vec<RecordedPacket>,
    /// Recorded packets dropped because the recorder's queue was full.
    recorded_dropped: u64,
    /// Legs with a prompt playing: (slot, side).
    players: Vec<(usize, usize)>,
    play_buf: Box<[u8; 2048]>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("calls", &self.by_key.len())
            .field("players", &self.players.len())
            .finish()
    }
}

fn token(slot: usize, side: usize, rtcp: bool) -> u64 {
    ((slot as u64) << 2) | ((side as u64) << 1) | u64::from(rtcp)
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        wake: std::sync::Arc<EventFd>,
        commands: Receiver<Command>,
        settings: WorkerSettings,
        events: EventSink,
        recorder: Option<RecorderHandle>,
    ) -> io::Result<Self> {
        let WorkerSettings {
            relatch_after,
            rtp_timeout,
        } = settings;
        let epoll = Epoll::new(256)?;
        epoll.add(wake.raw(), WAKE_TOKEN)?;
        Ok(Self {
            index,
            epoll,
            wake,
            commands,
            calls: Vec::new(),
            free_slots: Vec::new(),
            by_key: HashMap::new(),
            relatch_after,
            rtp_timeout,
            recv: RecvBatch::new(BATCH),
            send: SendBatch::new(BATCH),
            ready: Vec::with_capacity(256),
            out_rtp: Vec::with_capacity(BATCH),
            out_rtcp: Vec::with_capacity(BATCH),
            totals: Totals::default(),
            published: Totals::default(),
            events,
            recorder,
            recorded: Vec::with_capacity(RECORD_BATCH + BATCH),
            recorded_dropped: 0,
            players: Vec::new(),
            play_buf: Box::new([0u8; 2048]),
        })
    }

    /// Runs until a `Shutdown` command or until the engine goes away.
    pub(crate) fn run(mut self) {
        let mut next_publish = Instant::now() + PUBLISH_EVERY;
        let mut next_hand_over = Instant::now() + RECORD_HAND_OVER_EVERY;
        loop {
            let now = Instant::now();
            let mut wake_at = self
                .next_playback()
                .map_or(next_publish, |due| due.min(next_publish));
            if !self.recorded.is_empty() {
                wake_at = wake_at.min(next_hand_over);
            }
            let timeout = wake_at.saturating_duration_since(now);
            self.ready.clear();
            match self.epoll.wait(Some(timeout)) {
                Ok(tokens) => self.ready.extend(tokens),
                Err(e) => {
                    tracing::error!(worker = self.index, error = %e, "relay worker cannot wait on epoll");
                    return;
                }
            }
            let now = Instant::now();
            for i in 0..self.ready.len() {
                let token = self.ready[i];
                if token == WAKE_TOKEN {
                    self.wake.clear();
                    if !self.drain_commands() {
                        self.publish();
                        return;
                    }
                } else {
                    // Edge-triggered: drain until a batch comes back short.
                    while self.on_readable(token, now) == BATCH {
                        if self.recorded.len() >= RECORD_BATCH {
                            self.hand_over_recorded();
                        }
                    }
                    if self.recorded.len() >= RECORD_BATCH {
                        self.hand_over_recorded();
                    }
                }
            }
            if !self.players.is_empty() {
                self.play(Instant::now());
            }
            // Recorded packets go over in batches (full, or every 20 ms), not once per
            // loop turn: each hand-over wakes the recorder thread.
            if now >= next_hand_over {
                self.hand_over_recorded();
                next_hand_over = now + RECORD_HAND_OVER_EVERY;
            }
            if now >= next_publish {
                self.report_inactive(now);
                self.publish();
                next_publish = now + PUBLISH_EVERY;
            }
        }
    }

    fn publish(&mut self) {
        let worker = self.index.to_string();
        let t = self.totals;
        let p = self.published;
        metrics::counter!("tongdai_media_relayed_packets_total", "worker" => worker.clone())
            .increment(t.relayed_packets - p.relayed_packets);
        metrics::counter!("tongdai_media_relayed_bytes_total", "worker" => worker.clone())
            .increment(t.relayed_bytes - p.relayed_bytes);
        metrics::counter!("tongdai_media_dropped_packets_total", "worker" => worker.clone())
            .increment(t.dropped - p.dropped);
        metrics::gauge!("tongdai_media_worker_calls", "worker" => worker)
            .set(self.by_key.len() as f64);
        self.published = t;
    }

    /// Handles queued commands; false when the worker must stop.
    fn drain_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Ok(command) => self.on_command(command),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::AddCall { key, legs, reply } => {
                let _ = reply.send(self.add_call(key, *legs));
            }
            Command::Remote { key, side, remote } => {
                if let Some(call) = self.call_mut(key) {
                    call.legs[side.index()].set_remote(remote);
                }
            }
            Command::Play {
                key,
                side,
                prompt,
                looping,
                reply,
            } => {
                let Some(&slot) = self.by_key.get(&key) else {
                    return;
                };
                let Some(call) = self.calls[slot].as_mut() else {
                    return;
                };
                let config = PlayerConfig {
                    ssrc: rand::random(),
                    payload_type: prompt.law().payload_type(),
                    first_sequence: rand::random(),
                    first_timestamp: rand::random(),
                    looping,
                    packet_ms: 20,
                };
                match Player::new(prompt, config, now) {
                    Ok(player) => {
                        call.legs[side.index()].player = Some(player);
                        let entry = (slot, side.index());
                        if !self.players.contains(&entry) {
                            self.players.push(entry);
                        }
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::StopPlay { key, side } => {
                if let Some(&slot) = self.by_key.get(&key) {
                    if let Some(call) = self.calls[slot].as_mut() {
                        call.legs[side.index()].player = None;
                    }
                    self.players.retain(|&p| p != (slot, side.index()));
                }
            }
            Command::Inband { key, side, enabled } => {
                if let Some(call) = self.call_mut(key) {
                    let leg = &mut call.legs[side.index()];
                    leg.inband = enabled.then(InbandDetector::new);
                }
            }
            Command::Record { key, action, reply } => {
                let _ = reply.send(self.record(key, action, now));
            }
            Command::Stats { key, reply } => {
                let stats = self.call_mut(key).map(|call| CallStats {
                    caller: call.legs[0].stats(now),
                    callee: call.legs[1].stats(now),
                });
                let _ = reply.send(stats);
            }
            Command::Remove { key, reply } => {
                let _ = reply.send(self.remove_call(key, now));
            }
            Command::Shutdown => {}
        }
    }

    fn call_mut(&mut self, key: u64) -> Option<&mut Call> {
        let slot = *self.by_key.get(&key)?;
        self.calls[slot].as_mut()
    }

    fn add_call(&mut self, key: u64, legs: [LegSockets; 2]) -> io::Result<()> {
        if self.by_key.contains_key(&key) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "call already on this worker",
            ));
        }
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        let [a, b] = legs;
        let call = Call {
            key,
            legs: [
                Leg::new(a, self.relatch_after),
                Leg::new(b, self.relatch_after),
            ],
            recording: None,
            added: Instant::now(),
            reported_inactive: false,
        };
        let mut registered = Vec::with_capacity(4);
        for (side, leg) in call.legs.iter().enumerate() {
            for (rtcp, fd) in [(false, leg.rtp.as_raw_fd()), (true, leg.rtcp.as_raw_fd())] {
                if let Err(e) = self.epoll.add(fd, token(slot, side, rtcp)) {
                    for fd in registered {
                        let _ = self.epoll.delete(fd);
                    }
                    self.free_slots.push(slot);
                    return Err(e);
                }
                registered.push(fd);
            }
        }
        self.calls[slot] = Some(call);
        self.by_key.insert(key, slot);
        Ok(())
    }

    fn remove_call(&mut self, key: u64, now: Instant) -> Option<CallStats> {
        let slot = self.by_key.remove(&key)?;
        let call = self.calls[slot].take()?;
        self.players.retain(|&(s, _)| s != slot);
        if let Some(id) = call.recording {
            self.hand_over_recorded();
            self.tell_recorder(RecorderCommand::Stop { id });
        }
        debug_assert_eq!(call.key, key);
        for leg in &call.legs {
            let _ = self.epoll.delete(leg.rtp.as_raw_fd());
            let _ = self.epoll.delete(leg.rtcp.as_raw_fd());
        }
        self.free_slots.push(slot);
        Some(CallStats {
            caller: call.legs[0].stats(now),
            callee: call.legs[1].stats(now),
        })
        // The sockets close here, when `call` drops.
    }

    fn record(&mut self, key: u64, action: RecordAction, now: Instant) -> Result<(), RecordError> {
        if self.recorder.is_none() {
            return Err(RecordError::NotConfigured);
        }
        let slot = *self.by_key.get(&key).ok_or(RecordError::NoCall)?;
        let current = self.calls[slot]
            .as_ref()
            .ok_or(RecordError::NoCall)?
            .recording;
        // Packets already taken go first, so the recorder sees everything in order.
        self.hand_over_recorded();
        let (command, next) = match (action, current) {
            (RecordAction::Start { .. }, Some(_)) => return Err(RecordError::AlreadyRecording),
            (RecordAction::Start { id, meta }, None) => (
                RecorderCommand::Start {
                    id,
                    meta: *meta,
                    at: now,
                },
                Some(id),
            ),
            (_, None) => return Err(RecordError::NotRecording),
            (RecordAction::Pause, Some(id)) => (RecorderCommand::Pause { id, at: now }, Some(id)),
            (RecordAction::Resume, Some(id)) => (RecorderCommand::Resume { id, at: now }, Some(id)),
            (RecordAction::Stop, Some(id)) => (RecorderCommand::Stop { id }, None),
        };
        if !self.tell_recorder(command) {
            return Err(RecordError::RecorderBusy);
        }
        if let Some(call) = self.calls[slot].as_mut() {
            call.recording = next;
        }
        Ok(())
    }

    /// Sends a control command to the recorder without blocking the worker.
    fn tell_recorder(&mut self, command: RecorderCommand) -> bool {
        let Some(recorder) = self.recorder.as_ref() else {
            return false;
        };
        match recorder.try_send(command) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(worker = self.index, error = ?e, "recorder queue full or closed");
                false
            }
        }
    }

    /// Hands the batch of recorded packets to the recorder and takes an empty one back.
    fn hand_over_recorded(&mut self) {
        let Some(recorder) = self.recorder.as_ref() else {
            self.recorded.clear();
            return;
        };
        if self.recorded.is_empty() {
            return;
        }
        let fresh = recorder
            .recycled()
            .unwrap_or_else(|| Vec::with_capacity(RECORD_BATCH + BATCH));
        let batch = std::mem::replace(&mut self.recorded, fresh);
        if let Err(
            SendError::Full(RecorderCommand::Packets(mut batch))
            | SendError::Closed(RecorderCommand::Packets(mut batch)),
        ) = recorder.try_send(RecorderCommand::Packets(batch))
        {
            // A recorder that cannot keep up loses audio, never the call.
            self.recorded_dropped += batch.len() as u64;
            batch.clear();
            if self.recorded.capacity() < batch.capacity() {
                self.recorded = batch;
            }
        }
    }

    /// Once a second: calls whose peers have both been silent for the RTP timeout.
    fn report_inactive(&mut self, now: Instant) {
        let Some(timeout) = self.rtp_timeout else {
            return;
        };
        for call in self.calls.iter_mut().flatten() {
            let last = call
                .legs
                .iter()
                .filter_map(|leg| leg.last_heard)
                .max()
                .unwrap_or(call.added);
            let idle = now.saturating_duration_since(last);
            if idle < timeout {
                call.reported_inactive = false;
            } else if !call.reported_inactive {
                call.reported_inactive = true;
                (self.events)(
                    call.key,
                    MediaEvent::Inactive {
                        idle_ms: idle.as_millis() as u64,
                    },
                );
            }
        }
    }

    /// When the next prompt packet is due, if any prompt plays.
    fn next_playback(&self) -> Option<Instant> {
        self.players
            .iter()
            .filter_map(|&(slot, side)| {
                self.calls[slot].as_ref()?.legs[side]
                    .player
                    .as_ref()?
                    .next_due()
            })
            .min()
    }

    /// Sends every prompt packet that is due, and retires finished prompts.
    fn play(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.players.len() {
            let (slot, side) = self.players[i];
            let Some(call) = self.calls[slot].as_mut() else {
                self.players.swap_remove(i);
                continue;
            };
            let key = call.key;
            let leg = &mut call.legs[side];
            let Some(player) = leg.player.as_mut() else {
                self.players.swap_remove(i);
                continue;
            };
            while let Some(len) = player.poll(now, &mut self.play_buf[..]) {
                if let Some(dest) = leg.rtp_dest.as_ref() {
                    let sent = self
                        .send
                        .send(leg.rtp.as_raw_fd(), [(&self.play_buf[..len], dest)]);
                    leg.packets_sent += sent as u64;
                }
            }
            if player.is_finished() {
                leg.player = None;
                self.players.swap_remove(i);
                let leg = if side == 0 {
                    LegSide::Caller
                } else {
                    LegSide::Callee
                };
                (self.events)(key, MediaEvent::PlaybackFinished { leg });
                continue;
            }
            i += 1;
        }
    }

    /// Drains one ready socket: receive a batch, vet and account each datagram, then send
    /// what is bound for the other leg.
    /// Returns how many datagrams the receive took (BATCH: there may be more).
    fn on_readable(&mut self, token: u64, now: Instant) -> usize {
        let slot = (token >> 2) as usize;
        let side = ((token >> 1) & 1) as usize;
        let on_rtcp_socket = token & 1 == 1;
        let Some(Some(call)) = self.calls.get_mut(slot) else {
            return 0;
        };
        let fd = if on_rtcp_socket {
            call.legs[side].rtcp.as_raw_fd()
        } else {
            call.legs[side].rtp.as_raw_fd()
        };
        let received = match self.recv.recv(fd) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "receive on a relay socket failed");
                return 0;
            }
        };
        self.out_rtp.clear();
        self.out_rtcp.clear();
        let other = 1 - side;
        for i in 0..received {
            let Some((data, from)) = self.recv.get(i) else {
                call.legs[side].dropped_malformed += 1;
                continue;
            };
            let route = if on_rtcp_socket || is_rtcp(data) {
                Route::Rtcp(i)
            } else {
                Route::Rtp(i)
            };
            let leg = &mut call.legs[side];
            let latch = match route {
                Route::Rtcp(_) if on_rtcp_socket => &mut leg.rtcp_latch,
                _ => &mut leg.rtp_latch,
            };
            match latch.admit(from, now) {
                Admit::Accept => {}
                Admit::Latched => leg.refresh_destinations(),
                Admit::Reject => {
                    leg.dropped_foreign_source += 1;
                    self.totals.dropped += 1;
                    continue;
                }
            }
            leg.last_heard = Some(now);
            match route {
                Route::Rtp(i) => {
                    let Ok(packet) = RtpPacket::parse(data) else {
                        leg.dropped_malformed += 1;
                        self.totals.dropped += 1;
                        continue;
                    };
                    leg.on_rtp(&packet, now);
                    if let Some(recording) = call.recording {
                        let side = if side == 0 {
                            Side::Caller
                        } else {
                            Side::Callee
                        };
                        self.recorded
                            .push(RecordedPacket::from_rtp(recording, side, now, &packet));
                    }
                    let leg = &mut call.legs[side];
                    if leg.rfc4733.is_some() || leg.inband.is_some() {
                        let events = &self.events;
                        let key = call.key;
                        let from = if side == 0 {
                            LegSide::Caller
                        } else {
                            LegSide::Callee
                        };
                        leg.detect(&packet, |source, digit, samples| {
                            events(
                                key,
                                MediaEvent::Dtmf {
                                    leg: from,
                                    digit,
                                    source: match source {
                                        DtmfSource::Rfc4733 => "rfc4733",
                                        DtmfSource::Inband => "inband",
                                    },
                                    duration_ms: samples / 8,
                                },
                            )
                        });
                    }
                    if call.legs[other].player.is_some() {
                        // The other peer hears a prompt (hold, announcement) instead.
                        continue;
                    }
                    match call.legs[other].rtp_dest {
                        Some(dest) => {
                            self.totals.relayed_bytes += data.len() as u64;
                            self.out_rtp.push((i, dest));
                        }
                        None => {
                            call.legs[other].dropped_no_destination += 1;
                            self.totals.dropped += 1;
                        }
                    }
                }
                Route::Rtcp(i) => {
                    leg.on_rtcp(data, now);
                    match call.legs[other].rtcp_dest {
                        Some(dest) => self.out_rtcp.push((i, dest)),
                        None => {
                            call.legs[other].dropped_no_destination += 1;
                            self.totals.dropped += 1;
                        }
                    }
                }
            }
        }
        let out = &mut call.legs[other];
        let recv = &self.recv;
        if !self.out_rtp.is_empty() {
            let sent = self.send.send(
                out.rtp.as_raw_fd(),
                self.out_rtp
                    .iter()
                    .filter_map(|(i, dest)| recv.get(*i).map(|(data, _)| (data, dest))),
            );
            out.packets_sent += sent as u64;
            self.totals.relayed_packets += sent as u64;
            self.totals.dropped += (self.out_rtp.len() - sent) as u64;
        }
        if !self.out_rtcp.is_empty() {
            let fd = if out.rtcp_mux {
                out.rtp.as_raw_fd()
            } else {
                out.rtcp.as_raw_fd()
            };
            let sent = self.send.send(
                fd,
                self.out_rtcp
                    .iter()
                    .filter_map(|(i, dest)| recv.get(*i).map(|(data, _)| (data, dest))),
            );
            out.packets_sent += sent as u64;
            self.totals.relayed_packets += sent as u64;
        }
        received
    }
}
