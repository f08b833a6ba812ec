//! The SIP node: binds the transports and runs the SIP core (validation, the
//! registrar, OPTIONS keep-alives, error responses) until shut down.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::{Config, DigestAlgorithm};
use crate::registrar::{
    AuthOutcome, LocationService, MemoryDirectory, MemoryLocationService, Registrar,
    RegistrarPolicy,
};
use crate::sip::auth::{Algorithm, NonceConfig, NonceManager, unix_millis};
use crate::sip::parse::{error_response_for_raw, sanitize_reason};
use crate::sip::transport::{
    self, Inbound, MessageHandler, Outgoing, TransportKind, UdpOptions, tcp, udp,
};
use crate::sip::{HeaderName, Message, Method, Request, Response, SipHeaders, validate_request};
use crate::telemetry::{self, AuthFailureReason, Health};

/// Methods this node answers itself; others get 405 (known) or 501 (unknown).
pub const ALLOWED_METHODS: &str = "REGISTER, OPTIONS";

/// How long a final response to a non-INVITE request is kept to answer retransmissions
/// (Timer J = 64*T1 over UDP, RFC 3261 17.2.2).
const TIMER_J: Duration = Duration::from_secs(32);

type MemRegistrar = Registrar<MemoryLocationService, MemoryDirectory>;

/// The SIP core as seen by the transports.
#[derive(Debug)]
pub struct SipCore {
    registrar: MemRegistrar,
    server_header: String,
    transactions: Mutex<HashMap<TransactionKey, TxState>>,
}

/// RFC 3261 17.2.3 server transaction key: branch, sent-by and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TransactionKey {
    branch: String,
    sent_by: String,
    method: String,
}

#[derive(Debug)]
enum TxState {
    /// The request is being processed; retransmissions are absorbed.
    Trying,
    /// Answered: retransmissions get this response again until `until`.
    Completed { response: Vec<u8>, until: Instant },
}

impl SipCore {
    pub fn new(registrar: MemRegistrar) -> SipCore {
        SipCore {
            registrar,
            server_header: format!("tongdai/{}", env!("CARGO_PKG_VERSION")),
            transactions: Mutex::new(HashMap::new()),
        }
    }

    pub fn registrar(&self) -> &MemRegistrar {
        &self.registrar
    }

    /// Periodic upkeep: expired transactions, bindings and nonces; the registrations gauge.
    pub fn sweep(&self, now: Instant) {
        self.transactions.lock().retain(|_, s| match s {
            TxState::Trying => true,
            TxState::Completed { until, .. } => *until > now,
        });
        let now_ms = unix_millis(SystemTime::now());
        self.registrar.location().sweep(now_ms);
        self.registrar.nonces().purge_expired(now_ms);
        telemetry::set_registrations_active(self.registrar.location().binding_count());
    }

    async fn handle_request(
        &self,
        mut req: Request,
        source: SocketAddr,
        kind: TransportKind,
    ) -> Option<Outgoing> {
        telemetry::record_request(req.method.as_str(), kind.label());
        if let Err(e) = transport::stamp_via(&mut req, source) {
            return self.reject(&req, source, 400, &e.to_string(), &[]);
        }
        if let Err(r) = validate_request(&req) {
            return self.reject(&req, source, r.status, &r.reason, &r.headers);
        }
        if req.method == Method::Ack {
            return None; // ACK has no response; 2xx ACKs belong to dialogs we do not have yet
        }
        let key = transaction_key(&req);
        if let Some(key) = &key {
            let mut txs = self.transactions.lock();
            match txs.get(key) {
                Some(TxState::Trying) => return None,
                Some(TxState::Completed { response, .. }) => {
                    return Some(self.outgoing(response.clone(), &req, source));
                }
                None => {
                    txs.insert(key.clone(), TxState::Trying);
                }
            }
        }
        let response = self.dispatch(&req, source, kind).await;
        telemetry::record_response(req.method.as_str(), response.status);
        let bytes = response.to_bytes();
        if let Some(key) = key {
            let until = Instant::now() + TIMER_J;
            self.transactions.lock().insert(
                key,
                TxState::Completed {
                    response: bytes.clone(),
                    until,
                },
            );
        }
        Some(self.outgoing(bytes, &req, source))
    }

    async fn dispatch(&self, req: &Request, source: SocketAddr, kind: TransportKind) -> Response {
        let tag = new_tag();
        let mut resp = match &req.method {
            Method::Register => {
                let now_ms = unix_millis(SystemTime::now());
                let (resp, outcome) = self
                    .registrar
                    .handle(req, source, kind.as_str(), &tag, now_ms)
                    .await;
                record_auth(outcome);
                telemetry::set_registrations_active(
                    self.registrar.location().binding_count(),
                );
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
        resp.headers.push(HeaderName::Server, self.server_header.clone());
        resp
    }

    fn reject(
        &self,
        req: &Request,
        source: SocketAddr,
        status: u16,
        reason: &str,
        extra: &[(HeaderName, String)],
    ) -> Option<Outgoing> {
        if req.method == Method::Ack {
            return None;
        }
        let mut r = Response::to_request(req, status, Some(&new_tag()));
        r.reason = sanitize_reason(reason);
        for (name, value) in extra {
            r.headers.push(name.clone(), value.clone());
        }
        r.headers.push(HeaderName::Server, self.server_header.clone());
        telemetry::record_response(req.method.as_str(), status);
        Some(self.outgoing(r.to_bytes(), req, source))
    }

    fn outgoing(&self, bytes: Vec<u8>, req: &Request, source: SocketAddr) -> Outgoing {
        let target = req
            .top_via()
            .map_or(source, |via| transport::response_target(&via, source));
        Outgoing { bytes, target }
    }
}

impl MessageHandler for SipCore {
    async fn handle(
        &self,
        inbound: Inbound,
        source: SocketAddr,
        kind: TransportKind,
    ) -> Option<Outgoing> {
        match inbound {
            Inbound::Message(Message::Request(req)) => self.handle_request(req, source, kind).await,
            Inbound::Message(Message::Response(resp)) => {
                // No client transactions yet: a stray response is dropped (RFC 3261 18.1.2).
                tracing::debug!(%source, status = resp.status, "dropping stray response");
                None
            }
            Inbound::Malformed { error, raw } => {
                telemetry::record_parse_error(kind.label());
                tracing::debug!(%source, "unparseable message: {error}");
                let resp = error_response_for_raw(&raw, error.status(), &error.reason())?;
                let target = resp
                    .top_via()
                    .map_or(source, |via| transport::response_target(&via, source));
                telemetry::record_response("other", resp.status);
                Some(Outgoing {
                    bytes: resp.to_bytes(),
                    target,
                })
            }
        }
    }
}

fn transaction_key(req: &Request) -> Option<TransactionKey> {
    let via = req.top_via().ok()?;
    let branch = via.branch()?;
    // Only RFC 3261 branches identify a transaction on their own.
    if !branch.starts_with("z9hG4bK") {
        return None;
    }
    Some(TransactionKey {
        branch: branch.to_owned(),
        sent_by: format!("{}:{}", via.host_text, via.port.unwrap_or(5060)),
        method: req.method.as_str().to_owned(),
    })
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

/// Builds the SIP core from configuration: the registrar with its users and store.
pub fn build_core(config: &Config) -> SipCore {
    let tenant = config.demo_tenant();
    let realm = tenant
        .as_ref()
        .map_or_else(|| config.registrar.realm.clone(), |t| t.realm.clone());
    let mut users = MemoryDirectory::default();
    if let Some(t) = &tenant {
        for u in &t.extensions {
            users.add_user(&u.extension, &realm, &u.password);
        }
    }
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
        realm,
        min_expires: config.registrar.min_expires,
        max_expires: config.registrar.max_expires,
        default_expires: config.registrar.default_expires,
        algorithms,
    };
    let nonces = NonceManager::with_random_secret(NonceConfig {
        lifetime: config.registrar.nonce_lifetime(),
        ..NonceConfig::default()
    });
    let location = Arc::new(MemoryLocationService::new(
        config.registrar.max_contacts_per_aor,
    ));
    SipCore::new(Registrar::new(policy, location, users, nonces))
}

/// Runs the SIP node until `shutdown` completes, then stops the listeners and returns.
///
/// Sets `health` to ok once every listener is bound.
pub async fn run(
    config: Config,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let core = Arc::new(build_core(&config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let sip = &config.sip;

    let mut udp_addr = None;
    if let Some(addr) = sip.listen_udp {
        let opts = UdpOptions {
            recv_buffer: sip.udp_recv_buffer,
            send_buffer: sip.udp_send_buffer,
            reuse_port: sip.reuse_port,
        };
        let first = transport::bind_udp(addr, opts)
            .with_context(|| format!("cannot bind SIP UDP on {addr} (sip.listen_udp)"))?;
        let bound = first.local_addr()?;
        udp_addr = Some(bound);
        let mut sockets = vec![first];
        // Further sockets on the same port let the kernel spread senders over workers.
        if sip.reuse_port {
            for _ in 1..sip.udp_workers.max(1) {
                sockets.push(transport::bind_udp(bound, opts)?);
            }
        }
        for s in sockets {
            let socket = Arc::new(tokio::net::UdpSocket::from_std(s)?);
            tasks.spawn(udp::serve(
                socket,
                core.clone(),
                sip.max_message_size,
                stop_rx.clone(),
            ));
        }
        tracing::info!(%bound, "SIP listening on UDP");
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
        tasks.spawn(tcp::serve(listener, core.clone(), opts, stop_rx.clone()));
        tracing::info!(%bound, "SIP listening on TCP");
    }
    {
        let core = core.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => core.sweep(Instant::now()),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
    health.set_ok();
    shutdown.await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
