//! The media engine's API: what the B2BUA (or a remote controller) asks of the media plane.
//!
//! A *session* is one call's media: two legs (caller-facing and callee-facing), each with
//! its own RTP/RTCP port pair on this node. The B2BUA creates a session, passes each SDP
//! offer and answer through it (the engine records where the peer wants media and rewrites
//! the SDP so that the other side sends to us), and destroys it at the end, getting the
//! final statistics for the CDR. Every method takes and returns plain data, so the same
//! calls can be made over the wire ([`super::control`]) to a media node elsewhere.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod update;

pub use update::LocalAnswer;

use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::oneshot;

use super::g711::Law;
use super::playback::Prompt;
use super::ports::{PortError, PortPair, PortPool, PortRange};
use super::recording::{
    RecorderHandle, RecorderService, RecordingConfig, RecordingId, RecordingMeta, ShutdownReport,
};
use super::relay::worker::{
    Command, EventSink, LegSockets, RecordAction, RecordError, RemoteMedia,
};
use super::relay::{
    CallStats, LegSide, MediaEvent, Relay, WorkerId, WorkerSettings, latch::DEFAULT_RELATCH_AFTER,
};
use super::sdp::{RtcpPlacement, SessionDescription};

/// DSCP EF (expedited forwarding, RFC 3246) in the TOS byte: voice gets priority queues.
const TOS_EF: u32 = 46 << 2;
/// Default silence before a session is reported inactive (rtpengine's default is 60 s too).
pub const DEFAULT_RTP_TIMEOUT: Duration = Duration::from_secs(60);
/// How many port pairs to try when a pair turns out to be taken by another process.
const BIND_ATTEMPTS: usize = 16;

/// How the media plane is set up on this node.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// RTP/RTCP ports the relay may bind.
    pub rtp_ports: PortRange,
    /// IPv4 address to bind media sockets on (None: no IPv4 media).
    pub bind_v4: Option<Ipv4Addr>,
    /// IPv6 address to bind media sockets on (None: no IPv6 media).
    pub bind_v6: Option<Ipv6Addr>,
    /// IPv4 address written into SDP (the public address behind a 1:1 NAT); default bind_v4.
    pub advertise_v4: Option<Ipv4Addr>,
    /// IPv6 address written into SDP; default bind_v6.
    pub advertise_v6: Option<Ipv6Addr>,
    /// Relay worker threads; 0 = one per core.
    pub workers: usize,
    /// Silence of a latched source after which another source may take over.
    pub relatch_after: Duration,
    /// Silence of both peers after which the session reports `Inactive` (zero: never).
    pub rtp_timeout: Duration,
    /// Socket receive/send buffer per media socket, bytes (0 = the OS default).
    pub socket_buffer: usize,
    /// Where recordings are spooled and stored; None: recording is off on this node.
    pub recordings: Option<RecordingConfig>,
}

impl MediaConfig {
    /// Loopback-only defaults on the given port range (tests, `tongdai up`).
    pub fn loopback(rtp_ports: PortRange) -> Self {
        Self {
            rtp_ports,
            bind_v4: Some(Ipv4Addr::LOCALHOST),
            bind_v6: None,
            advertise_v4: None,
            advertise_v6: None,
            workers: 1,
            relatch_after: DEFAULT_RELATCH_AFTER,
            rtp_timeout: DEFAULT_RTP_TIMEOUT,
            socket_buffer: 0,
            recordings: None,
        }
    }
}

/// Why a media request failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no media session {0}")]
    UnknownSession(SessionId),
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error("cannot bind a media socket on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("this node has no {0} media address; configure media.bind_{1}")]
    NoAddressFamily(&'static str, &'static str),
    #[error("the leg's address family cannot change within a session")]
    FamilyChange,
    #[error("the relay worker of this session has stopped")]
    WorkerGone,
    #[error("invalid SDP: {0}")]
    Sdp(String),
    #[error("the SDP has no audio stream to relay")]
    NoAudio,
    #[error("there is no offer waiting for an answer in this session")]
    NoPendingOffer,
    #[error("the answer must come from the other leg than the offer")]
    WrongAnswerer,
    #[error("the relay worker could not take the call: {0}")]
    Worker(io::Error),
    #[error(
        "no G.711 codec (PCMU or PCMA) was negotiated with the {0:?} leg, so no prompt can be played to it"
    )]
    NoG711(LegSide),
    #[error("cannot play the prompt: {0}")]
    Playback(String),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A media session's identifier, unique on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(SessionId)
    }
}

/// IP family of a leg's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

#[derive(Debug)]
struct LegState {
    ports: Option<PortPair>,
    /// Family and local address once the sockets are bound.
    bound: Option<(Family, IpAddr)>,
    remote: RemoteMedia,
    /// Our `o=` toward this leg's peer: session id and version (RFC 3264 §5, §8).
    origin: (u64, u64),
    /// The last SDP sent to this leg's peer, to bump the version only on a change.
    last_sent: Option<String>,
}

/// An offer passed through and waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct PendingOffer {
    offerer: LegSide,
    audio: usize,
}

#[derive(Debug)]
struct Session {
    tenant: String,
    call_id: String,
    worker: WorkerId,
    /// Whether the worker holds the call (sockets bound and handed over).
    on_worker: bool,
    legs: [LegState; 2],
    pending: Option<PendingOffer>,
    /// Events not yet collected through [`MediaEngine::take_events`] (bounded).
    events: Vec<MediaEvent>,
}

/// Events kept per session for polling; older ones are dropped past this.
const MAX_BUFFERED_EVENTS: usize = 256;

/// Where one leg of a session receives media on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LocalMedia {
    /// The address to advertise in SDP.
    pub address: IpAddr,
    pub rtp_port: u16,
    pub rtcp_port: u16,
}

/// Summary of a session for listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub tenant: String,
    pub call_id: String,
}

struct Inner {
    /// Every session's events as they happen, for the B2BUA.
    event_feed: tokio::sync::broadcast::Sender<(SessionId, MediaEvent)>,
    config: MediaConfig,
    relay: Relay,
    recorder: Option<RecorderHandle>,
    next_recording: AtomicU64,
    ports: Mutex<PortPool>,
    sessions: Mutex<HashMap<SessionId, Session>>,
    next_id: AtomicU64,
}

/// The media plane of a node; cheap to clone.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<Inner>,
}

impl fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaEngine")
            .field("workers", &self.inner.relay.workers())
            .field("sessions", &self.inner.sessions.lock().len())
            .finish()
    }
}

impl Inner {
    fn deliver(&self, id: SessionId, event: MediaEvent) {
        if let Some(session) = self.sessions.lock().get_mut(&id) {
            if session.events.len() >= MAX_BUFFERED_EVENTS {
                session.events.remove(0);
            }
            session.events.push(event.clone());
        }
        let _ = self.event_feed.send((id, event));
    }
}

impl MediaEngine {
    /// Starts the relay workers.
    pub fn start(config: MediaConfig) -> io::Result<Self> {
        if config.bind_v4.is_none() && config.bind_v6.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "media needs bind_v4 or bind_v6",
            ));
        }
        // Workers report events to the sessions table; it does not exist yet, so the sink
        // reaches it through a slot filled right after.
        let slot: Arc<std::sync::OnceLock<std::sync::Weak<Inner>>> = Arc::default();
        let sink_slot = slot.clone();
        let sink: EventSink = Arc::new(move |key, event| {
            if let Some(inner) = sink_slot.get().and_then(|w| w.upgrade()) {
                inner.deliver(SessionId(key), event);
            }
        });
        // The recorder starts first: it repairs and ships what a crash left in the spool.
        let recorder = match &config.recordings {
            Some(recordings) => Some(
                RecorderService::from_config(recordings)
                    .map_err(|e| io::Error::other(format!("recordings store: {e}")))?
                    .start()
                    .map_err(|e| io::Error::other(format!("recorder: {e}")))?,
            ),
            None => None,
        };
        let settings = WorkerSettings {
            relatch_after: config.relatch_after,
            rtp_timeout: (!config.rtp_timeout.is_zero()).then_some(config.rtp_timeout),
        };
        let relay = Relay::start(config.workers, settings, sink, recorder.clone())?;
        // Session ids start at a random point so ids from before a restart do not collide.
        let first = rand::random::<u32>() as u64;
        let (event_feed, _) = tokio::sync::broadcast::channel(1024);
        let inner = Arc::new(Inner {
            event_feed,
            ports: Mutex::new(PortPool::starting_at(config.rtp_ports, rand::random())),
            config,
            relay,
            recorder,
            next_recording: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(first << 24),
        });
        let _ = slot.set(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// Every session's events (DTMF, end of prompts) as they happen.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<(SessionId, MediaEvent)> {
        self.inner.event_feed.subscribe()
    }

    /// The events of one session since the last call (for callers that poll).
    pub fn take_events(&self, id: SessionId) -> Result<Vec<MediaEvent>, MediaError> {
        let mut sessions = self.inner.sessions.lock();
        let session = sessions
            .get_mut(&id)
            .ok_or(MediaError::UnknownSession(id))?;
        Ok(std::mem::take(&mut session.events))
    }

    /// Plays `prompt` to `to`'s peer instead of the other leg's audio until it ends (or,
    /// with `looping`, until [`stop_playback`](Self::stop_playback)): announcements and
    /// music on hold. The prompt is transcoded to the law negotiated with that leg.
    pub async fn play(
        &self,
        id: SessionId,
        to: LegSide,
        prompt: Prompt,
        looping: bool,
    ) -> Result<(), MediaError> {
        let (worker, law) = {
            let sessions = self.inner.sessions.lock();
            let s = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            if !s.on_worker {
                return Err(MediaError::NoG711(to));
            }
            (
                s.worker,
                s.legs[to.index()]
                    .remote
                    .law
                    .ok_or(MediaError::NoG711(to))?,
            )
        };
        let prompt = if prompt.law() == law {
            prompt
        } else {
            Prompt::from_raw(prompt.as_bytes(), prompt.law(), law)
                .map_err(|e| MediaError::Playback(e.to_string()))?
        };
        let (tx, rx) = oneshot::channel();
        let command = Command::Play {
            key: id.0,
            side: to,
            prompt,
            looping,
            reply: tx,
        };
        if !self.inner.relay.send(worker, command) {
            return Err(MediaError::WorkerGone);
        }
        rx.await
            .map_err(|_| MediaError::WorkerGone)?
            .map_err(|e| MediaError::Playback(e.to_string()))
    }

    /// Stops a prompt playing to `to`'s peer; it hears the other leg again.
    pub fn stop_playback(&self, id: SessionId, to: LegSide) -> Result<(), MediaError> {
        let worker = self.worker_of(id)?;
        self.send(
            worker,
            Command::StopPlay {
                key: id.0,
                side: to,
            },
        )
    }

    /// Turns in-band (Goertzel) DTMF detection on the audio from `from`'s peer on or off.
    /// RFC 4733 digits are always detected when the peer negotiated telephone-event.
    pub fn detect_inband_dtmf(
        &self,
        id: SessionId,
        from: LegSide,
        enabled: bool,
    ) -> Result<(), MediaError> {
        let worker = self.worker_of(id)?;
        self.send(
            worker,
            Command::Inband {
                key: id.0,
                side: from,
                enabled,
            },
        )
    }

    /// Starts recording both legs into one stereo WAV (caller left, callee right); returns
    /// the recording's id, under which the store will keep it.
    pub async fn start_recording(&self, id: SessionId) -> Result<String, MediaError> {
        let (tenant, call_id) = {
            let sessions = self.inner.sessions.lock();
            let s = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            (s.tenant.clone(), s.call_id.clone())
        };
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let meta = RecordingMeta::new(&tenant, &call_id, unix_ms);
        let name = meta.id.clone();
        let recording = RecordingId(self.inner.next_recording.fetch_add(1, Ordering::Relaxed));
        self.record(
            id,
            RecordAction::Start {
                id: recording,
                meta: Box::new(meta),
            },
        )
        .await?;
        Ok(name)
    }

    /// Pauses (silence in both channels, e.g. while a card number is read out), resumes
    /// or stops the session's recording. A stopped recording is finished and shipped.
    pub async fn pause_recording(&self, id: SessionId) -> Result<(), MediaError> {
        self.record(id, RecordAction::Pause).await
    }

    pub async fn resume_recording(&self, id: SessionId) -> Result<(), MediaError> {
        self.record(id, RecordAction::Resume).await
    }

    pub async fn stop_recording(&self, id: SessionId) -> Result<(), MediaError> {
        self.record(id, RecordAction::Stop).await
    }

    async fn record(&self, id: SessionId, action: RecordAction) -> Result<(), MediaError> {
        let (worker, on_worker) = {
            let sessions = self.inner.sessions.lock();
            let s = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            (s.worker, s.on_worker)
        };
        if self.inner.recorder.is_none() {
            return Err(RecordError::NotConfigured.into());
        }
        if !on_worker {
            // Nothing to record before the first offer has bound the legs.
            return Err(MediaError::NoPendingOffer);
        }
        let (tx, rx) = oneshot::channel();
        self.send(
            worker,
            Command::Record {
                key: id.0,
                action,
                reply: tx,
            },
        )?;
        Ok(rx.await.map_err(|_| MediaError::WorkerGone)??)
    }

    /// The recordings store, when recording is configured.
    pub fn recordings(&self) -> Option<&super::recording::RecordingStore> {
        self.inner.recorder.as_ref().map(|r| r.store())
    }

    /// Graceful stop: ends every session (their recordings are finished) and waits until
    /// the recorder has shipped them or `deadline` passes.
    pub async fn shutdown(&self, deadline: std::time::Instant) -> Option<ShutdownReport> {
        for session in self.sessions() {
            if let Ok(id) = session.id.parse() {
                let _ = self.destroy(id).await;
            }
        }
        let recorder = self.inner.recorder.clone()?;
        tokio::task::spawn_blocking(move || recorder.shutdown(deadline))
            .await
            .ok()
    }

    fn worker_of(&self, id: SessionId) -> Result<WorkerId, MediaError> {
        self.inner
            .sessions
            .lock()
            .get(&id)
            .map(|s| s.worker)
            .ok_or(MediaError::UnknownSession(id))
    }

    fn send(&self, worker: WorkerId, command: Command) -> Result<(), MediaError> {
        if self.inner.relay.send(worker, command) {
            Ok(())
        } else {
            Err(MediaError::WorkerGone)
        }
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    fn publish_ports(&self) {
        let (in_use, available) = self.ports_in_use();
        metrics::gauge!("tongdai_media_port_pairs_in_use").set(in_use as f64);
        metrics::gauge!("tongdai_media_port_pairs_available").set(available as f64);
    }

    /// How many relay workers run.
    pub fn workers(&self) -> usize {
        self.inner.relay.workers()
    }

    /// Port pairs in use and available.
    pub fn ports_in_use(&self) -> (usize, usize) {
        let pool = self.inner.ports.lock();
        (pool.in_use(), pool.available())
    }

    /// Live sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.inner
            .sessions
            .lock()
            .iter()
            .map(|(id, s)| SessionInfo {
                id: id.to_string(),
                tenant: s.tenant.clone(),
                call_id: s.call_id.clone(),
            })
            .collect()
    }

    /// Creates a session for a call: reserves a port pair per leg.
    pub fn create_session(&self, tenant: &str, call_id: &str) -> Result<SessionId, MediaError> {
        let (a, b) = {
            let mut pool = self.inner.ports.lock();
            let a = pool.allocate()?;
            match pool.allocate() {
                Ok(b) => (a, b),
                Err(e) => {
                    let _ = pool.release(a);
                    return Err(e.into());
                }
            }
        };
        let id = SessionId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let worker = self.inner.relay.place();
        let leg = |ports| LegState {
            ports: Some(ports),
            bound: None,
            remote: RemoteMedia::default(),
            origin: (rand::random::<u32>() as u64, 1),
            last_sent: None,
        };
        self.inner.sessions.lock().insert(
            id,
            Session {
                tenant: tenant.to_owned(),
                call_id: call_id.to_owned(),
                worker,
                on_worker: false,
                legs: [leg(a), leg(b)],
                pending: None,
                events: Vec::new(),
            },
        );
        metrics::gauge!("tongdai_media_sessions").increment(1.0);
        self.publish_ports();
        Ok(id)
    }

    /// The tenant of a session.
    pub fn tenant(&self, id: SessionId) -> Result<String, MediaError> {
        self.inner
            .sessions
            .lock()
            .get(&id)
            .map(|s| s.tenant.clone())
            .ok_or(MediaError::UnknownSession(id))
    }

    fn advertise(&self, family: Family) -> Result<(IpAddr, IpAddr), MediaError> {
        let c = &self.inner.config;
        match family {
            Family::V4 => c
                .bind_v4
                .map(|b| (IpAddr::V4(b), IpAddr::V4(c.advertise_v4.unwrap_or(b))))
                .ok_or(MediaError::NoAddressFamily("IPv4", "v4")),
            Family::V6 => c
                .bind_v6
                .map(|b| (IpAddr::V6(b), IpAddr::V6(c.advertise_v6.unwrap_or(b))))
                .ok_or(MediaError::NoAddressFamily("IPv6", "v6")),
        }
    }

    fn bind_socket(&self, addr: SocketAddr) -> Result<UdpSocket, MediaError> {
        let bind_err = |source| MediaError::Bind { addr, source };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind_err)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true).map_err(bind_err)?;
            let _ = socket.set_tclass_v6(TOS_EF);
        } else {
            let _ = socket.set_tos_v4(TOS_EF);
        }
        let buffer = self.inner.config.socket_buffer;
        if buffer > 0 {
            let _ = socket.set_recv_buffer_size(buffer);
            let _ = socket.set_send_buffer_size(buffer);
        }
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket.bind(&addr.into()).map_err(bind_err)?;
        Ok(socket.into())
    }

    /// Binds a leg's RTP and RTCP sockets, moving to another port pair if another
    /// process holds the one reserved.
    fn bind_leg(&self, leg: &mut LegState, bind_ip: IpAddr) -> Result<LegSockets, MediaError> {
        let mut last_error = None;
        for _ in 0..BIND_ATTEMPTS {
            let Some(pair) = leg.ports.as_ref() else {
                break;
            };
            let rtp = self.bind_socket(SocketAddr::new(bind_ip, pair.rtp()));
            let rtcp = self.bind_socket(SocketAddr::new(bind_ip, pair.rtcp(false)));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => return Ok(LegSockets { rtp, rtcp }),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "RTP port pair taken by another process, trying the next");
                    last_error = Some(e);
                    let mut pool = self.inner.ports.lock();
                    let next = pool.allocate()?;
                    if let Some(old) = leg.ports.replace(next) {
                        let _ = pool.release(old);
                    }
                }
            }
        }
        Err(last_error.unwrap_or(MediaError::Ports(PortError::Exhausted { pairs: 0 })))
    }

    /// Makes sure both legs are bound (leg `side` on `family`, the other on `other`) and
    /// the worker holds the call; returns the local media of both legs.
    async fn ensure_bound(
        &self,
        id: SessionId,
        families: [Family; 2],
    ) -> Result<[LocalMedia; 2], MediaError> {
        let (worker, sockets, locals) = {
            let mut sessions = self.inner.sessions.lock();
            let session = sessions
                .get_mut(&id)
                .ok_or(MediaError::UnknownSession(id))?;
            let mut sockets = Vec::new();
            let mut locals = Vec::with_capacity(2);
            let mut newly_bound = Vec::with_capacity(2);
            for (index, (leg, family)) in session.legs.iter_mut().zip(families).enumerate() {
                let (bind_ip, advertise) = self.advertise(family)?;
                match leg.bound {
                    Some((f, _)) if f != family => return Err(MediaError::FamilyChange),
                    Some(_) => {}
                    // If the second leg fails, the first one's sockets close on return and
                    // neither counts as bound: the next offer starts over.
                    None => {
                        sockets.push(self.bind_leg(leg, bind_ip)?);
                        newly_bound.push((index, family, advertise));
                    }
                }
                let ports = leg.ports.as_ref().ok_or(MediaError::UnknownSession(id))?;
                locals.push(LocalMedia {
                    address: advertise,
                    rtp_port: ports.rtp(),
                    rtcp_port: ports.rtcp(false),
                });
            }
            for (index, family, advertise) in newly_bound {
                session.legs[index].bound = Some((family, advertise));
            }
            let handover = !session.on_worker;
            session.on_worker = true;
            let locals = [locals[0], locals[1]];
            (session.worker, handover.then_some(sockets), locals)
        };
        if let Some(sockets) = sockets {
            let mut it = sockets.into_iter();
            let (Some(a), Some(b)) = (it.next(), it.next()) else {
                return Err(MediaError::FamilyChange);
            };
            let (tx, rx) = oneshot::channel();
            let command = Command::AddCall {
                key: id.0,
                legs: Box::new([a, b]),
                reply: tx,
            };
            let handed_over = if self.inner.relay.send(worker, command) {
                match rx.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(MediaError::Worker(e)),
                    Err(_) => Err(MediaError::WorkerGone),
                }
            } else {
                Err(MediaError::WorkerGone)
            };
            if let Err(e) = handed_over {
                // The sockets are gone with the command: the next offer binds again.
                if let Some(session) = self.inner.sessions.lock().get_mut(&id) {
                    session.on_worker = false;
                    for leg in &mut session.legs {
                        leg.bound = None;
                    }
                }
                return Err(e);
            }
        }
        Ok(locals)
    }

    /// Binds the session's legs (if not yet) and returns where each leg receives media.
    /// `families` gives the IP family of the caller-facing and callee-facing legs.
    pub async fn local_media(
        &self,
        id: SessionId,
        families: [Family; 2],
    ) -> Result<[LocalMedia; 2], MediaError> {
        self.ensure_bound(id, families).await
    }

    /// Tells the relay where a leg's peer wants media (from its SDP).
    pub(crate) fn set_remote(
        &self,
        id: SessionId,
        side: LegSide,
        remote: RemoteMedia,
    ) -> Result<(), MediaError> {
        let worker = {
            let mut sessions = self.inner.sessions.lock();
            let session = sessions
                .get_mut(&id)
                .ok_or(MediaError::UnknownSession(id))?;
            session.legs[side.index()].remote = remote;
            session.worker
        };
        let command = Command::Remote {
            key: id.0,
            side,
            remote,
        };
        if self.inner.relay.send(worker, command) {
            Ok(())
        } else {
            Err(MediaError::WorkerGone)
        }
    }

    /// Passes an SDP offer from `from`'s peer through the relay: notes where that peer
    /// wants media, and returns the offer for the other leg's peer, which points at our
    /// port on that leg. The first audio stream is relayed; other streams are declined
    /// (port 0). Codecs, their parameters and the direction pass unchanged.
    pub async fn offer(
        &self,
        id: SessionId,
        from: LegSide,
        sdp: &str,
        to_family: Option<Family>,
    ) -> Result<String, MediaError> {
        self.worker_of(id)?;
        let mut sdp = SessionDescription::parse(sdp).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let (audio, remote, family) = audio_remote(&sdp)?;
        let mut families = [family; 2];
        families[from.other().index()] = to_family.unwrap_or(family);
        let locals = self.ensure_bound(id, families).await?;
        self.set_remote(id, from, remote)?;
        let to = from.other();
        let local = locals[to.index()];
        // Offer both: rtcp-mux, and a separate RTCP port in case the answer declines it.
        anchor(&mut sdp, audio, local, RtcpPlacement::Port(local.rtcp_port))?;
        if let Some(media) = sdp.media_mut().get_mut(audio) {
            media.set_rtcp_mux(true);
        }
        let text = self.stamp(
            id,
            to,
            &mut sdp,
            local,
            Some(PendingOffer {
                offerer: from,
                audio,
            }),
        )?;
        Ok(text)
    }

    /// Passes the answer to a pending offer from `from`'s peer (the other leg than the
    /// offer's) and returns the answer for the offerer.
    pub async fn answer(
        &self,
        id: SessionId,
        from: LegSide,
        sdp: &str,
    ) -> Result<String, MediaError> {
        self.worker_of(id)?;
        let mut sdp = SessionDescription::parse(sdp).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let (pending, offerer_local, offerer_mux) = {
            let sessions = self.inner.sessions.lock();
            let session = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            let pending = session.pending.ok_or(MediaError::NoPendingOffer)?;
            if pending.offerer != from.other() {
                return Err(MediaError::WrongAnswerer);
            }
            let leg = &session.legs[pending.offerer.index()];
            let (Some((_, address)), Some(ports)) = (leg.bound, leg.ports.as_ref()) else {
                return Err(MediaError::NoPendingOffer);
            };
            let local = LocalMedia {
                address,
                rtp_port: ports.rtp(),
                rtcp_port: ports.rtcp(false),
            };
            (pending, local, leg.remote.rtcp_mux)
        };
        let declined = sdp
            .media()
            .get(pending.audio)
            .is_none_or(|m| m.is_disabled());
        if !declined {
            let (audio, remote, _) = audio_remote(&sdp)?;
            if audio != pending.audio {
                return Err(MediaError::Sdp(format!(
                    "the answer's audio stream is m-line {}, the offer's was {}",
                    audio + 1,
                    pending.audio + 1
                )));
            }
            self.set_remote(id, from, remote)?;
            let placement = if offerer_mux {
                RtcpPlacement::Mux
            } else {
                RtcpPlacement::Port(offerer_local.rtcp_port)
            };
            anchor(&mut sdp, pending.audio, offerer_local, placement)?;
        }
        self.stamp(id, pending.offerer, &mut sdp, offerer_local, None)
    }

    /// Writes our origin toward `to`'s peer (topology hiding; version bumped only when the
    /// SDP changed) and records the pending offer state.
    fn stamp(
        &self,
        id: SessionId,
        to: LegSide,
        sdp: &mut SessionDescription,
        local: LocalMedia,
        pending: Option<PendingOffer>,
    ) -> Result<String, MediaError> {
        let mut sessions = self.inner.sessions.lock();
        let session = sessions
            .get_mut(&id)
            .ok_or(MediaError::UnknownSession(id))?;
        session.pending = pending;
        let leg = &mut session.legs[to.index()];
        sdp.set_connection_address(local.address);
        let origin = sdp.origin_mut();
        let _ = origin.set_username("tongdai");
        origin.set_address(local.address);
        origin.set_session_id(leg.origin.0);
        origin.set_session_version(leg.origin.1);
        let mut text = sdp.to_string();
        if leg.last_sent.as_ref().is_some_and(|last| *last != text) {
            leg.origin.1 += 1;
            sdp.origin_mut().set_session_version(leg.origin.1);
            text = sdp.to_string();
        }
        leg.last_sent = Some(text.clone());
        Ok(text)
    }

    /// Current statistics of both legs.
    pub async fn stats(&self, id: SessionId) -> Result<CallStats, MediaError> {
        let (worker, on_worker) = {
            let sessions = self.inner.sessions.lock();
            let s = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            (s.worker, s.on_worker)
        };
        if !on_worker {
            return Ok(CallStats::default());
        }
        let (tx, rx) = oneshot::channel();
        if !self.inner.relay.send(
            worker,
            Command::Stats {
                key: id.0,
                reply: tx,
            },
        ) {
            return Err(MediaError::WorkerGone);
        }
        rx.await
            .map_err(|_| MediaError::WorkerGone)?
            .ok_or(MediaError::UnknownSession(id))
    }

    /// Ends a session: closes its sockets, frees its ports and returns its final statistics.
    pub async fn destroy(&self, id: SessionId) -> Result<CallStats, MediaError> {
        let session = self
            .inner
            .sessions
            .lock()
            .remove(&id)
            .ok_or(MediaError::UnknownSession(id))?;
        metrics::gauge!("tongdai_media_sessions").decrement(1.0);
        let stats = if session.on_worker {
            let (tx, rx) = oneshot::channel();
            if self.inner.relay.send(
                session.worker,
                Command::Remove {
                    key: id.0,
                    reply: tx,
                },
            ) {
                rx.await.ok().flatten().unwrap_or_default()
            } else {
                CallStats::default()
            }
        } else {
            CallStats::default()
        };
        self.inner.relay.unplace(session.worker);
        record_quality(&session.tenant, &stats);
        // Ports go back only after the worker has closed the sockets.
        {
            let mut pool = self.inner.ports.lock();
            for leg in session.legs {
                if let Some(pair) = leg.ports {
                    let _ = pool.release(pair);
                }
            }
        }
        self.publish_ports();
        Ok(stats)
    }
}

/// The first active audio stream of an SDP, where its sender wants media, and its family.
fn audio_remote(sdp: &SessionDescription) -> Result<(usize, RemoteMedia, Family), MediaError> {
    let (index, media) = sdp
        .media()
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind().as_str() == "audio" && m.is_rtp() && !m.is_disabled())
        .ok_or(MediaError::NoAudio)?;
    let address = sdp
        .effective_connection(media)
        .ok_or_else(|| MediaError::Sdp("the audio stream has no connection address".into()))?
        .address();
    // c=0.0.0.0 is the old (RFC 2543) way to put a call on hold: send nothing.
    let rtp = (!address.is_unspecified()).then(|| SocketAddr::new(address, media.port()));
    let rtcp = media.rtcp().and_then(|r| {
        let ip = r.address.unwrap_or(address);
        (!ip.is_unspecified()).then(|| SocketAddr::new(ip, r.port))
    });
    let remote = RemoteMedia {
        rtp,
        rtcp,
        rtcp_mux: media.rtcp_mux(),
        telephone_event: media.telephone_event_pt(),
        law: media.payload_types().find_map(Law::from_payload_type),
    };
    Ok((index, remote, Family::of(address)))
}

/// Points stream `audio` at our `local` port and declines every other stream, so no
/// address of the other side leaks through and no media bypasses the relay.
fn anchor(
    sdp: &mut SessionDescription,
    audio: usize,
    local: LocalMedia,
    rtcp: RtcpPlacement,
) -> Result<(), MediaError> {
    sdp.anchor(audio, local.address, local.rtp_port, rtcp)
        .map_err(|e| MediaError::Sdp(e.to_string()))?;
    for (i, media) in sdp.media_mut().iter_mut().enumerate() {
        if i != audio {
            media.disable();
            if media.connection().is_some() {
                media.set_connection_address(local.address);
            }
        }
    }
    Ok(())
}

/// Feeds the per-tenant quality histograms with a finished session's legs.
fn record_quality(tenant: &str, stats: &CallStats) {
    for leg in [&stats.caller, &stats.callee] {
        let Some(mos) = leg.mos else {
            continue;
        };
        let tenant = tenant.to_owned();
        metrics::histogram!("tongdai_media_mos", "tenant" => tenant.clone()).record(mos);
        metrics::histogram!("tongdai_media_loss_ratio", "tenant" => tenant.clone())
            .record(leg.loss_ratio);
        metrics::histogram!("tongdai_media_jitter_seconds", "tenant" => tenant)
            .record(leg.jitter_ms / 1000.0);
    }
}
