//! The SIP node: binds the transports and runs the SIP core (validation, the
//! registrar, OPTIONS keep-alives, error responses) until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::b2bua::B2bua;
use crate::cluster::ClusterStore;
use crate::config::{Config, DigestAlgorithm};
use crate::media::engine::MediaEngine;
use crate::registrar::{AuthOutcome, LocationService, Registrar, RegistrarPolicy};
use crate::sip::auth::{Algorithm, NonceConfig, NonceManager, unix_millis};
use crate::sip::parse::{error_response_for_raw, sanitize_reason};
use crate::sip::transaction::{Config as TxConfig, Event, Peer, TransactionKey, TransactionLayer};
use crate::sip::transport::{
    self, Inbound, MessageHandler, Outbound, TransportKind, UdpOptions, tcp, udp,
};
use crate::sip::{HeaderName, Message, Method, Request, Response, SipHeaders, validate_request};
use crate::telemetry::{self, AuthFailureReason, Health};
use crate::trunk::{StatusBoard, TrunkRegistrations};

/// Methods this node takes; others get 405 (known) or 501 (unknown).
pub const ALLOWED_METHODS: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REGISTER";

type ClusterRegistrar = Registrar<ClusterStore, ClusterStore>;

/// The SIP core: the transaction layer (RFC 3261 section 17) and the transaction user
/// behind it (validation, registrar, OPTIONS). Retransmissions are absorbed and answered
/// by the layer; the TU sees each request once.
#[derive(Debug)]
pub struct SipCore {
    registrar: ClusterRegistrar,
    server_header: String,
    layer: Mutex<Layer>,
    out: Outbound,
    /// Wakes the timer task when a transaction may have scheduled an earlier deadline.
    timers_changed: Notify,
    /// The calls; absent on a node without a media engine (INVITE gets 503).
    b2bua: std::sync::OnceLock<Arc<B2bua>>,
    /// The trunks' registrations with their carriers, once started.
    trunks: std::sync::OnceLock<Arc<TrunkRegistrations>>,
}

/// What authenticating a phone's INVITE gave.
#[derive(Debug)]
pub enum CallAuth {
    Ok {
        tenant: String,
        user: String,
    },
    /// Send this (407 challenge, 403, 404, 400) and stop.
    Respond(Box<Response>),
}

impl SipCore {
    pub fn new(registrar: ClusterRegistrar, out: Outbound, max_transactions: usize) -> SipCore {
        SipCore {
            registrar,
            server_header: format!("tongdai/{}", env!("CARGO_PKG_VERSION")),
            layer: Mutex::new(Layer {
                transactions: TransactionLayer::new(TxConfig {
                    max_transactions,
                    ..TxConfig::default()
                }),
                armed: None,
            }),
            out,
            timers_changed: Notify::new(),
            b2bua: std::sync::OnceLock::new(),
            trunks: std::sync::OnceLock::new(),
        }
    }

    /// Hands calls to `b2bua`, which sends through this core.
    pub fn attach_b2bua(self: &Arc<Self>, b2bua: Arc<B2bua>) {
        b2bua.attach(self);
        let _ = self.b2bua.set(b2bua);
    }

    pub fn b2bua(&self) -> Option<&Arc<B2bua>> {
        self.b2bua.get()
    }

    /// Sends and feeds the trunks' REGISTERs through this core.
    pub fn attach_trunks(&self, trunks: Arc<TrunkRegistrations>) {
        let _ = self.trunks.set(trunks);
    }

    pub fn trunks(&self) -> Option<&Arc<TrunkRegistrations>> {
        self.trunks.get()
    }

    pub fn server_header(&self) -> String {
        self.server_header.clone()
    }

    /// Authenticates a phone's INVITE (digest, 407 challenge).
    pub fn authenticate_call(&self, req: &Request, to_tag: &str) -> CallAuth {
        let now_ms = unix_millis(SystemTime::now());
        match self.registrar.authenticate_call(req, to_tag, now_ms) {
            Ok((tenant, user)) => CallAuth::Ok { tenant, user },
            Err((mut resp, outcome)) => {
                record_auth(outcome);
                resp.headers
                    .push(HeaderName::Server, self.server_header.clone());
                CallAuth::Respond(Box::new(resp))
            }
        }
    }

    /// Sends a response on a server transaction.
    pub async fn respond(&self, key: &TransactionKey, response: Response) {
        let method = key.method().as_str().to_owned();
        let status = response.status;
        let events = self.with_layer(|l| l.send_response(key, response, Instant::now()));
        telemetry::record_response(&method, status);
        self.dispatch(events).await;
    }

    /// Starts a client transaction.
    pub async fn request(
        &self,
        request: Request,
        peer: Peer,
    ) -> Result<TransactionKey, crate::sip::transaction::SendError> {
        let mut result = None;
        let events = self.with_layer(|l| {
            result = Some(l.send_request(request, peer, Instant::now()));
        });
        self.dispatch(events).await;
        result.unwrap_or(Err(crate::sip::transaction::SendError::NoTransaction))
    }

    /// CANCELs a client INVITE transaction, with a Reason header if given.
    pub async fn cancel(&self, invite: &TransactionKey, reason: Option<&str>) {
        let events = self.with_layer(|l| {
            if let Err(e) = l.cancel_with_reason(invite, reason, Instant::now()) {
                tracing::debug!(%invite, "CANCEL not sent: {e}");
            }
        });
        self.dispatch(events).await;
    }

    /// Sends a request outside any transaction (an ACK for a 2xx).
    pub async fn send_stateless(&self, request: Request, peer: Peer) {
        let events = self.with_layer(|l| l.send_stateless(&Message::Request(request), peer));
        self.dispatch(events).await;
    }

    pub fn registrar(&self) -> &ClusterRegistrar {
        &self.registrar
    }

    /// Periodic upkeep: expired bindings and nonces; the registrations gauge.
    pub fn sweep(&self) {
        let now_ms = unix_millis(SystemTime::now());
        self.registrar.location().sweep(now_ms);
        self.registrar.nonces().purge_expired(now_ms);
        telemetry::set_registrations_active(self.registrar.location().binding_count());
    }

    /// Drives transaction timers until `stop` turns true.
    pub async fn run_timers(&self, mut stop: watch::Receiver<bool>) {
        loop {
            let next = {
                let mut l = self.layer.lock();
                l.armed = l.transactions.poll_timeout();
                l.armed
            };
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    let events = self.with_layer(|l| l.handle_timeout(Instant::now()));
                    self.dispatch(events).await;
                }
                _ = self.timers_changed.notified() => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    /// Runs `f` on the transaction layer and takes every event it queued. Wakes the timer
    /// task only when `f` scheduled a deadline earlier than the one it sleeps for, which
    /// under load is rare (most new deadlines are Timer J, 32 s out).
    fn with_layer<T>(&self, f: impl FnOnce(&mut TransactionLayer) -> T) -> Vec<Event> {
        let mut l = self.layer.lock();
        let _ = f(&mut l.transactions);
        let mut events = Vec::new();
        while let Some(e) = l.transactions.poll_event() {
            events.push(e);
        }
        let next = l.transactions.poll_timeout();
        let wake = match (next, l.armed) {
            (Some(n), Some(a)) => n < a,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if wake {
            l.armed = next;
        }
        drop(l);
        if wake {
            self.timers_changed.notify_one();
        }
        events
    }

    async fn dispatch(&self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Transmit(t) => {
                    let sent =
                        self.out
                            .send(t.destination.addr, t.destination.transport, t.payload);
                    if !sent && let Some(key) = t.transaction {
                        let more =
                            self.with_layer(|l| l.handle_transport_error(&key, Instant::now()));
                        Box::pin(self.dispatch(more)).await;
                    }
                }
                Event::Request {
                    key,
                    request,
                    source,
                    cancels,
                } => {
                    let request = match self.b2bua.get() {
                        Some(b2b) => {
                            match Self::to_b2bua(b2b, &key, request, source, cancels.as_ref()) {
                                Routed::Taken => continue,
                                Routed::NotACall(request) => request,
                                // 200 to a CANCEL a call took (the call answers
                                // its INVITE 487); 481 to anything naming no call.
                                routed @ (Routed::Cancelled(_) | Routed::Unknown(_)) => {
                                    let (request, status) = match routed {
                                        Routed::Cancelled(r) => (r, 200),
                                        Routed::Unknown(r) | Routed::NotACall(r) => (r, 481),
                                        Routed::Taken => continue,
                                    };
                                    let r =
                                        Response::to_request(&request, status, Some(&new_tag()));
                                    telemetry::record_response(request.method.as_str(), status);
                                    let more = self.with_layer(|l| {
                                        let _ = l.send_response(&key, r, Instant::now());
                                    });
                                    Box::pin(self.dispatch(more)).await;
                                    // The 200 to the CANCEL is out: now the call may
                                    // answer its INVITE 487 (RFC 3261 9.2 order).
                                    if status == 200
                                        && let Some(invite) = &cancels
                                    {
                                        b2b.on_cancel(invite);
                                    }
                                    continue;
                                }
                            }
                        }
                        None => request,
                    };
                    let response = self.answer(&request, source.addr, source.transport).await;
                    telemetry::record_response(request.method.as_str(), response.status);
                    let more = self.with_layer(|l| {
                        if let Err(e) = l.send_response(&key, response, Instant::now()) {
                            tracing::debug!(%key, "response not sent: {e}");
                        }
                    });
                    Box::pin(self.dispatch(more)).await;
                }
                Event::Ack { request, .. } => {
                    if let Some(b2b) = self.b2bua.get() {
                        b2b.on_ack(request);
                    }
                }
                Event::Response { key, response } => {
                    // A trunk registration's REGISTER, else a call's request.
                    if let Some(trunks) = self.trunks.get()
                        && trunks.owns(&key)
                    {
                        trunks.on_response(&key, response);
                        continue;
                    }
                    if let Some(b2b) = self.b2bua.get() {
                        b2b.on_response(key, response);
                    }
                }
                Event::Timeout { key } => self.transaction_failed(key, true),
                Event::TransportError { key } => self.transaction_failed(key, false),
                Event::Terminated { .. } => {}
            }
        }
    }

    /// A client transaction timed out (`timeout`) or could not be sent: tells whoever
    /// started it, a trunk registration or a call.
    fn transaction_failed(&self, key: TransactionKey, timeout: bool) {
        tracing::debug!(%key, "transaction failed");
        if self
            .trunks
            .get()
            .is_some_and(|t| t.on_failed(&key, timeout))
        {
            return;
        }
        if let Some(b2b) = self.b2bua.get() {
            b2b.on_transaction_failed(key);
        }
    }

    /// Hands a request to the B2BUA when it is a call's: a new INVITE, anything inside a
    /// dialog, a CANCEL of a call's INVITE.
    fn to_b2bua(
        b2b: &Arc<B2bua>,
        key: &TransactionKey,
        request: Request,
        source: Peer,
        cancels: Option<&TransactionKey>,
    ) -> Routed {
        let in_dialog = request.hdr_to().ok().is_some_and(|to| to.tag().is_some());
        match request.method {
            Method::Cancel => match cancels {
                Some(invite) if b2b.has_call_transaction(invite) => Routed::Cancelled(request),
                _ => Routed::Unknown(request),
            },
            Method::Invite if !in_dialog => match validate_request(&request) {
                Ok(()) => {
                    b2b.on_invite(key.clone(), request, source);
                    Routed::Taken
                }
                Err(_) => Routed::NotACall(request),
            },
            Method::Register => Routed::NotACall(request),
            _ if in_dialog => {
                if b2b.on_in_dialog(key.clone(), request.clone(), source) {
                    Routed::Taken
                } else {
                    Routed::Unknown(request)
                }
            }
            _ => Routed::NotACall(request),
        }
    }

    /// The transaction user: what to answer to one new request.
    async fn answer(&self, req: &Request, source: SocketAddr, kind: TransportKind) -> Response {
        let tag = new_tag();
        if let Err(r) = validate_request(req) {
            let mut resp = Response::to_request(req, r.status, Some(&tag));
            resp.reason = sanitize_reason(&r.reason);
            for (name, value) in r.headers {
                resp.headers.push(name, value);
            }
            resp.headers
                .push(HeaderName::Server, self.server_header.clone());
            return resp;
        }
        let mut resp = match &req.method {
            Method::Register => {
                let now_ms = unix_millis(SystemTime::now());
                let (resp, outcome) = self
                    .registrar
                    .handle(req, source, kind.as_str(), &tag, now_ms)
                    .await;
                record_auth(outcome);
                telemetry::set_registrations_active(self.registrar.location().binding_count());
                resp
            }
            Method::Options => {
                let mut r = Response::to_request(req, 200, Some(&tag));
                r.headers.push(HeaderName::Allow, ALLOWED_METHODS);
                r.headers.push(HeaderName::Accept, "application/sdp");
                r
            }
            Method::Cancel => Response::to_request(req, 481, Some(&tag)),
            Method::Extension(_) => {
                let mut r = Response::to_request(req, 501, Some(&tag));
                r.headers.push(HeaderName::Allow, ALLOWED_METHODS);
                r
            }
            _ => {
                let mut r = Response::to_request(req, 405, Some(&tag));
                r.headers.push(HeaderName::Allow, ALLOWED_METHODS);
                r
            }
        };
        resp.headers
            .push(HeaderName::Server, self.server_header.clone());
        resp
    }

    /// A response sent outside any transaction: for requests too broken to have one, and
    /// for challenges (RFC 3261 8.2.7).
    /// `method` labels the response metric ("other" when the request did not parse).
    fn reply_stateless(&self, method: &str, resp: Response, to: SocketAddr, kind: TransportKind) {
        telemetry::record_response(method, resp.status);
        self.out.send(to, kind, resp.to_bytes().into());
    }
}

impl MessageHandler for SipCore {
    async fn handle(&self, inbound: Inbound, source: SocketAddr, kind: TransportKind) {
        let peer = Peer {
            addr: source,
            transport: kind,
        };
        match inbound {
            Inbound::Message(Message::Request(mut req)) => {
                telemetry::record_request(req.method.as_str(), kind.label());
                let stamped = transport::stamp_via(&mut req, source);
                let method = req.method.clone();
                if let Err(e) = stamped {
                    // No usable Via: answer at the source, outside any transaction.
                    if method != Method::Ack {
                        let mut r = Response::to_request(&req, 400, Some(&new_tag()));
                        r.reason = sanitize_reason(&e.to_string());
                        self.reply_stateless("other", r, source, kind);
                    }
                    return;
                }
                if let Err(e) = TransactionKey::for_incoming_request(&req) {
                    if method != Method::Ack {
                        let mut r = Response::to_request(&req, 400, Some(&new_tag()));
                        r.reason = sanitize_reason(&e.to_string());
                        self.reply_stateless(
                            "other",
                            r,
                            stateless_target(&req, source, kind),
                            kind,
                        );
                    }
                    return;
                }
                // RFC 3261 8.2.7: challenges to unauthenticated requests are best sent
                // statelessly. A retransmission just gets a fresh challenge, and the
                // transaction table (each entry held 32 s over UDP) only carries requests
                // that did work.
                if method == Method::Register
                    && req.headers.get_by(&HeaderName::Authorization).is_none()
                {
                    let resp = self.answer(&req, source, kind).await;
                    let target = stateless_target(&req, source, kind);
                    self.reply_stateless(method.as_str(), resp, target, kind);
                    return;
                }
                let events = self.with_layer(|l| {
                    if let Err(e) = l.handle_incoming(Message::Request(req), peer, Instant::now()) {
                        tracing::debug!("request names no transaction: {e}");
                    }
                });
                self.dispatch(events).await;
            }
            Inbound::Message(msg @ Message::Response(_)) => {
                let events = self.with_layer(|l| {
                    let _ = l.handle_incoming(msg, peer, Instant::now());
                });
                self.dispatch(events).await;
            }
            Inbound::Malformed { error, raw } => {
                telemetry::record_parse_error(kind.label());
                tracing::debug!(%source, "unparseable message: {error}");
                // Only to the packet's source: the Via of a message we could not parse is
                // not trusted, and following it would let forged requests aim our 400s
                // at third parties.
                if let Some(resp) = error_response_for_raw(&raw, error.status(), &error.reason()) {
                    self.reply_stateless("other", resp, source, kind);
                }
            }
        }
    }
}

/// Where a request went.
enum Routed {
    /// A call has it.
    Taken,
    /// A CANCEL a call took: answer it 200.
    Cancelled(Request),
    /// Names no call: 481.
    Unknown(Request),
    /// Not a call request: the registrar / OPTIONS answer it.
    NotACall(Request),
}

/// The transaction layer and the deadline the timer task is sleeping until.
#[derive(Debug)]
struct Layer {
    transactions: TransactionLayer,
    armed: Option<Instant>,
}

/// Where a stateless response goes: by the Via over UDP (RFC 3261 18.2.2), back on the
/// connection otherwise.
fn stateless_target(req: &Request, source: SocketAddr, kind: TransportKind) -> SocketAddr {
    match kind {
        TransportKind::Udp => req
            .top_via()
            .map_or(source, |via| transport::response_target(&via, source)),
        TransportKind::Tcp => source,
    }
}

/// Resolves once `stop` is true (or its sender is gone), holding no borrow of it.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn record_auth(outcome: AuthOutcome) {
    let reason = match outcome {
        AuthOutcome::Ok | AuthOutcome::Challenged => return,
        AuthOutcome::Stale => AuthFailureReason::StaleNonce,
        AuthOutcome::WrongCredentials => AuthFailureReason::WrongPassword,
        AuthOutcome::Forbidden => AuthFailureReason::IdentityMismatch,
        AuthOutcome::Malformed => AuthFailureReason::MalformedCredentials,
    };
    telemetry::record_auth_failure(reason);
}

fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Builds the SIP core from configuration: the registrar over the control-plane store.
pub fn build_core(config: &Config, store: ClusterStore, out: Outbound) -> SipCore {
    let algorithms = config
        .registrar
        .algorithms
        .iter()
        .map(|a| match a {
            DigestAlgorithm::Sha256 => Algorithm::Sha256,
            DigestAlgorithm::Sha512_256 => Algorithm::Sha512_256,
            DigestAlgorithm::Md5 => Algorithm::Md5,
        })
        .collect();
    let policy = RegistrarPolicy {
        realm: config.registrar.realm.clone(),
        min_expires: config.registrar.min_expires,
        max_expires: config.registrar.max_expires,
        default_expires: config.registrar.default_expires,
        algorithms,
    };
    let nonces = NonceManager::with_random_secret(NonceConfig {
        lifetime: config.registrar.nonce_lifetime(),
        ..NonceConfig::default()
    });
    SipCore::new(
        Registrar::new(policy, Arc::new(store.clone()), store, nonces),
        out,
        config.sip.max_transactions,
    )
}

/// Runs the SIP node until `shutdown` completes, then stops the listeners and returns.
///
/// Sets `health` to ok once every listener is bound.
pub async fn run(
    config: Config,
    store: ClusterStore,
    health: Health,
    trunk_status: StatusBoard,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let sip = &config.sip;

    let mut udp_sockets = Vec::new();
    if let Some(addr) = sip.listen_udp {
        let opts = UdpOptions {
            recv_buffer: sip.udp_recv_buffer,
            send_buffer: sip.udp_send_buffer,
            reuse_port: sip.reuse_port,
        };
        let first = transport::bind_udp(addr, opts)
            .with_context(|| format!("cannot bind SIP UDP on {addr} (sip.listen_udp)"))?;
        let bound = first.local_addr()?;
        udp_sockets.push(first);
        // Further sockets on the same port let the kernel spread senders over workers.
        if sip.reuse_port {
            for _ in 1..sip.udp_workers.max(1) {
                udp_sockets.push(transport::bind_udp(bound, opts)?);
            }
        }
        tracing::info!(%bound, "SIP listening on UDP");
    }
    let udp_sockets = udp_sockets
        .into_iter()
        .map(|s| tokio::net::UdpSocket::from_std(s).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let udp_addr = udp_sockets.first().map(|s| s.local_addr()).transpose()?;
    // Replies, retransmissions and timer-driven sends all leave from the first socket.
    let out = Outbound::new(udp_sockets.first().cloned());
    let cache = store.client().cache().clone();
    let store_cache = cache.clone();
    let cluster_client = store.client().clone();
    let core = Arc::new(build_core(&config, store, out.clone()));
    let sip_addr = udp_addr
        .or(sip.listen_tcp)
        .context("SIP needs sip.listen_udp or sip.listen_tcp")?;
    let media = start_media(&config, sip_addr.ip())?;
    let (cdr_service, cdr_writer) =
        crate::cdr::CdrService::start(config.cdr.clone(), &config.node.name).with_context(
            || {
                format!(
                    "cannot start the CDR spool in {} ([cdr])",
                    config.cdr.spool_dir
                )
            },
        )?;
    let advertise = match media.config().advertise_v4.or(media.config().bind_v4) {
        Some(ip) if sip_addr.ip().is_unspecified() => SocketAddr::new(ip.into(), sip_addr.port()),
        _ => sip_addr,
    };
    let b2bua = B2bua::new(
        crate::b2bua::B2buaConfig {
            advertise,
            node: config.node.name.clone(),
            min_session_expires: config.calls.min_session_expires,
            ack_timeout: Duration::from_secs(32),
        },
        media.clone(),
        cluster_client.clone(),
        Some(cdr_writer),
    );
    core.attach_b2bua(b2bua.clone());
    // Every node registers each trunk that wants it from its own address.
    let trunks = TrunkRegistrations::new(trunk_status);
    core.attach_trunks(trunks.clone());
    trunks.start(&core, store_cache.clone(), advertise);
    // Callers queued by an earlier run of this node are gone: clear them before taking
    // calls, so the new run's report of its load does not keep them alive.
    clear_stale_queue_entries(&cluster_client, &config.node.name).await;
    let load_reporter = crate::cluster::spawn_load_reporter(
        cluster_client,
        config.node.name.clone(),
        crate::b2bua::quota::load_source(b2bua.admission()),
    );
    for socket in udp_sockets {
        tasks.spawn(udp::serve(
            socket,
            core.clone(),
            sip.max_message_size,
            stop_rx.clone(),
        ));
    }
    if let Some(mut addr) = sip.listen_tcp {
        // Port 0 for both means "any free port, the same for UDP and TCP".
        if addr.port() == 0
            && let Some(u) = udp_addr.filter(|u| u.ip() == addr.ip())
        {
            addr.set_port(u.port());
        }
        let listener = transport::bind_tcp(addr, sip.reuse_port)
            .with_context(|| format!("cannot bind SIP TCP on {addr} (sip.listen_tcp)"))?;
        let bound = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let opts = tcp::TcpOptions {
            max_size: sip.max_message_size,
            idle_timeout: sip.tcp_idle_timeout(),
            max_connections: sip.max_tcp_connections,
        };
        tasks.spawn(tcp::serve(
            listener,
            core.clone(),
            out,
            opts,
            stop_rx.clone(),
        ));
        tracing::info!(%bound, "SIP listening on TCP");
    }
    {
        let core = core.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move { core.run_timers(stop).await });
    }
    {
        let core = core.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => core.sweep(),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
    health.set_ok();
    shutdown.await;
    // Drain: no new calls (503 + Retry-After); live calls go on until they end or the
    // grace period is over, then the rest are hung up with BYEs both ways.
    b2bua.drain();
    // The carriers stop sending calls here: our bindings go (REGISTER with Expires: 0).
    trunks.stop_all();
    let grace = Duration::from_secs(config.calls.drain_grace_secs);
    if b2bua.active_calls() > 0 {
        tracing::info!(
            calls = b2bua.active_calls(),
            ?grace,
            "draining: waiting for live calls to end"
        );
    }
    let deadline = tokio::time::Instant::now() + grace;
    while b2bua.active_calls() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b2bua.hang_up_all("drain");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while b2bua.active_calls() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if tokio::time::timeout(Duration::from_secs(5), trunks.stopped())
        .await
        .is_err()
    {
        tracing::warn!("trunk registrations not all removed within 5 s");
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    media
        .shutdown(std::time::Instant::now() + Duration::from_secs(10))
        .await;
    // Every call has written its record by now: flush and ship them.
    load_reporter.abort();
    drop(b2bua);
    cdr_service.shutdown().await;
    Ok(())
}

/// Starts the media engine from `[media]`: binds on the SIP address unless told otherwise.
fn start_media(config: &Config, sip_ip: std::net::IpAddr) -> anyhow::Result<MediaEngine> {
    let m = &config.media;
    let rtp_ports = crate::media::control::parse_port_range(&m.rtp_ports)
        .map_err(|e| anyhow::anyhow!("media.rtp_ports: {e}"))?;
    let parse_v4 = |key: &str, raw: &str| -> anyhow::Result<Option<std::net::Ipv4Addr>> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        raw.trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{key}: {raw:?} is not an IPv4 address"))
    };
    let bind = match parse_v4("media.bind", &m.bind)? {
        Some(ip) => ip,
        None => match sip_ip {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
        },
    };
    let off = |s: &str| s.is_empty() || s.eq_ignore_ascii_case("off");
    let recordings = match (m.spool_dir.trim(), m.recordings_dir.trim()) {
        (spool, dir) if off(spool) || off(dir) => None,
        (spool, dir) => Some(crate::media::recording::RecordingConfig {
            spool_dir: spool.into(),
            store: crate::media::recording::StoreConfig::Local { dir: dir.into() },
        }),
    };
    let media_config = crate::media::engine::MediaConfig {
        rtp_ports,
        bind_v4: Some(bind),
        bind_v6: None,
        advertise_v4: parse_v4("media.advertise", &m.advertise)?,
        advertise_v6: None,
        workers: m.workers,
        relatch_after: crate::media::relay::latch::DEFAULT_RELATCH_AFTER,
        rtp_timeout: Duration::from_secs(m.rtp_timeout_secs),
        socket_buffer: 0,
        recordings,
    };
    MediaEngine::start(media_config).context("cannot start the media relay ([media])")
}

/// Proposes [`Command::QueueNodeGone`] for this node's name (bounded: a node whose
/// control plane is slow to answer starts anyway; the leader removes the stale entries
/// once their node stops reporting).
async fn clear_stale_queue_entries(client: &crate::cluster::ControlPlaneClient, node: &str) {
    let command = tongdai_control_plane::model::Command::QueueNodeGone {
        node: node.to_owned(),
    };
    match tokio::time::timeout(Duration::from_secs(10), client.propose_one(command)).await {
        Ok(Ok((Ok(_), _))) => {}
        Ok(Ok((Err(e), _))) => tracing::warn!("stale queue entries not cleared: {e}"),
        Ok(Err(e)) => tracing::warn!("stale queue entries not cleared: {e}"),
        Err(_) => tracing::warn!("stale queue entries not cleared within 10 s"),
    }
}
