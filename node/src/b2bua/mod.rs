//! The B2BUA: every call is two legs (the caller's, and the one we place), with the media
//! engine anchored between them. Nothing of one leg (Via, Contact, Call-ID, tags, media
//! addresses) reaches the other.
//!
//! Each call is a task ([`call`]) fed by the SIP core through [`B2bua`]'s routing tables:
//! requests inside its dialogs, responses to its client transactions, the CANCEL of its
//! INVITE, and media events of its session. The protocol decisions are sans-IO:
//! [`crate::sip::dialog`] (dialog state), [`route`] (number plan and hunting),
//! [`sdp_policy`] (codecs, hold); the task sequences them.

mod announce;
mod call;
mod directory;
mod moh;
pub mod quota;
pub mod route;
pub mod sdp_policy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tongdai_control_plane::model::Id;

use crate::cluster::Cache;
use crate::media::engine::{MediaEngine, SessionId};
use crate::media::playback::Prompt;
use crate::server::SipCore;
use crate::sip::dialog::DialogKey;
use crate::sip::transaction::{Peer, TransactionKey};
use crate::sip::{Request, Response};

pub use call::Input;
pub use directory::CacheDirectory;

/// B2BUA settings.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// The address written in our Via and Contact headers.
    pub advertise: SocketAddr,
    /// This node's name, for CDRs.
    pub node: String,
    /// Shortest session interval accepted (RFC 4028 Min-SE), seconds.
    pub min_session_expires: u32,
    /// How long an answered call waits for the caller's ACK before giving up.
    pub ack_timeout: Duration,
}

/// Where the SIP core hands each message that belongs to a call.
#[derive(Default)]
struct Routes {
    dialogs: HashMap<DialogKey, mpsc::UnboundedSender<Input>>,
    transactions: HashMap<TransactionKey, mpsc::UnboundedSender<Input>>,
    sessions: HashMap<SessionId, mpsc::UnboundedSender<Input>>,
    /// By tenant and the caller's Call-ID, for call-control requests from the API.
    calls: HashMap<(String, String), mpsc::UnboundedSender<Input>>,
}

/// The calls of one node.
pub struct B2bua {
    config: B2buaConfig,
    core: OnceLock<Weak<SipCore>>,
    media: MediaEngine,
    cache: Arc<Cache>,
    routes: Mutex<Routes>,
    /// Extensions on a call through this node (caller or answered callee), by count.
    busy: Mutex<HashMap<(Id, Id), usize>>,
    /// Calls through each trunk on this node, both directions.
    trunk_calls: Mutex<HashMap<(Id, Id), usize>>,
    active: Mutex<usize>,
    /// The tenants' quotas on this node (with the others' reported load).
    admission: Arc<Mutex<quota::Admission>>,
    /// New calls are refused (503, Retry-After) while the node drains.
    draining: std::sync::atomic::AtomicBool,
    music_on_hold: Prompt,
    /// Where finished calls' records go (none in unit tests of the B2BUA alone).
    cdrs: Option<crate::cdr::CdrWriter>,
    /// Proposes the ACD's commands (queue calls) to the control plane.
    cluster: crate::cluster::ControlPlaneClient,
}

impl std::fmt::Debug for B2bua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2bua")
            .field("advertise", &self.config.advertise)
            .field("calls", &*self.active.lock())
            .finish()
    }
}

impl B2bua {
    pub fn new(
        config: B2buaConfig,
        media: MediaEngine,
        cluster: crate::cluster::ControlPlaneClient,
        cdrs: Option<crate::cdr::CdrWriter>,
    ) -> Arc<B2bua> {
        let cache = cluster.cache().clone();
        let b2b = Arc::new(B2bua {
            config,
            core: OnceLock::new(),
            media,
            cache,
            routes: Mutex::new(Routes::default()),
            busy: Mutex::new(HashMap::new()),
            trunk_calls: Mutex::new(HashMap::new()),
            active: Mutex::new(0),
            draining: std::sync::atomic::AtomicBool::new(false),
            admission: Arc::new(Mutex::new(quota::Admission::new())),
            music_on_hold: moh::default_prompt(),
            cdrs,
            cluster,
        });
        // Call-control requests (on-demand recording) reach their call by Call-ID.
        listen(
            &b2b,
            b2b.cache.subscribe_controls(),
            "call-control requests",
            |_| None,
            |b2b, c| {
                let key = (c.tenant.to_string(), c.call_id.clone());
                if let Some(tx) = b2b.routes.lock().calls.get(&key) {
                    let _ = tx.send(Input::Control(c.action));
                }
            },
        );
        // Changes of queue entries reach the call holding the caller (same key: tenant
        // and the caller's Call-ID); the call reads the entry from the cache. Missed
        // changes could be any: every call looks again.
        use crate::cluster::cache::EntryChange;
        let all = |_| Some(EntryChange::All);
        listen(
            &b2b,
            b2b.cache.subscribe_entries(),
            "queue changes",
            all,
            |b2b, change| {
                let routes = b2b.routes.lock();
                match change {
                    EntryChange::One(tenant, call_id) => {
                        if let Some(tx) = routes.calls.get(&(tenant.to_string(), call_id)) {
                            let _ = tx.send(Input::QueueChanged);
                        }
                    }
                    EntryChange::All => {
                        for tx in routes.calls.values() {
                            let _ = tx.send(Input::QueueChanged);
                        }
                    }
                }
            },
        );
        // Click-to-call requests: claim each; the node whose claim commits places it.
        let clicks = b2b.cache.subscribe_click_to_calls();
        listen(
            &b2b,
            clicks,
            "click-to-call requests",
            |_| None,
            |b2b, request| {
                let b2b = b2b.clone();
                tokio::spawn(async move { b2b.take_click_to_call(request).await });
            },
        );
        // Media events (RTP timeout) reach their call through the sessions table.
        listen(
            &b2b,
            b2b.media.subscribe(),
            "media events",
            |_| None,
            |b2b, (session, event)| {
                if let Some(tx) = b2b.routes.lock().sessions.get(&session) {
                    let _ = tx.send(Input::Media(event));
                }
            },
        );
        b2b
    }

    /// Connects the B2BUA to the SIP core that feeds it and sends for it.
    pub fn attach(&self, core: &Arc<SipCore>) {
        let _ = self.core.set(Arc::downgrade(core));
    }

    /// The admission state, for the load reporter.
    pub fn admission(&self) -> Arc<Mutex<quota::Admission>> {
        self.admission.clone()
    }

    pub fn media(&self) -> &MediaEngine {
        &self.media
    }

    /// Calls in progress on this node.
    pub fn active_calls(&self) -> usize {
        *self.active.lock()
    }

    /// A new INVITE outside any dialog: starts a call.
    pub fn on_invite(self: &Arc<Self>, key: TransactionKey, request: Request, source: Peer) {
        let Some(core) = self.core.get().and_then(Weak::upgrade) else {
            return;
        };
        call::spawn(self.clone(), core, key, request, source);
    }

    /// A request inside a dialog (BYE, re-INVITE, UPDATE, INFO, ...). False when no call
    /// has that dialog (the caller answers 481).
    pub fn on_in_dialog(&self, key: TransactionKey, request: Request, source: Peer) -> bool {
        let Some(dialog) = DialogKey::of_incoming(&request) else {
            return false;
        };
        let routes = self.routes.lock();
        match routes.dialogs.get(&dialog) {
            Some(tx) => tx
                .send(Input::Request {
                    key,
                    request,
                    source,
                })
                .is_ok(),
            None => false,
        }
    }

    /// Whether `invite` is the server transaction of a call's INVITE.
    pub fn has_call_transaction(&self, invite: &TransactionKey) -> bool {
        self.routes.lock().transactions.contains_key(invite)
    }

    /// A CANCEL for the INVITE server transaction `invite`. False when that INVITE is not
    /// a call's (answer 481).
    pub fn on_cancel(&self, invite: &TransactionKey) -> bool {
        let routes = self.routes.lock();
        match routes.transactions.get(invite) {
            Some(tx) => tx.send(Input::Cancel).is_ok(),
            None => false,
        }
    }

    /// An ACK outside any transaction: the ACK for a 2xx we sent.
    pub fn on_ack(&self, request: Request) {
        let Some(dialog) = DialogKey::of_incoming(&request) else {
            return;
        };
        if let Some(tx) = self.routes.lock().dialogs.get(&dialog) {
            let _ = tx.send(Input::Ack { request });
        }
    }

    /// A response to one of the calls' client transactions.
    pub fn on_response(&self, key: TransactionKey, response: Response) {
        if let Some(tx) = self.routes.lock().transactions.get(&key) {
            let _ = tx.send(Input::Response { key, response });
        }
    }

    /// A client transaction that timed out or could not be sent.
    pub fn on_transaction_failed(&self, key: TransactionKey) {
        if let Some(tx) = self.routes.lock().transactions.get(&key) {
            let _ = tx.send(Input::TransactionFailed { key });
        }
    }

    /// Stops taking new calls: INVITEs get 503 with Retry-After; live calls go on.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Ends every call (node shutdown): each sends its BYEs and writes its record.
    pub fn hang_up_all(&self, reason: &'static str) {
        let routes = self.routes.lock();
        for tx in routes.sessions.values() {
            let _ = tx.send(Input::Hangup { reason });
        }
    }

    /// Claims a click-to-call request and, if this node got it, places the call.
    async fn take_click_to_call(
        self: Arc<Self>,
        request: tongdai_control_plane::model::ClickToCall,
    ) {
        if self.is_draining() {
            return;
        }
        let Some(core) = self.core() else { return };
        let claim = tongdai_control_plane::model::Command::ClaimClickToCall {
            seq: request.seq,
            node: self.config.node.clone(),
        };
        match tokio::time::timeout(Duration::from_secs(5), self.cluster.propose_one(claim)).await {
            Ok(Ok((Ok(_), _))) => {
                tracing::info!(seq = request.seq, agent = %request.agent, "click-to-call taken");
                call::click_to_call(self, core, request);
            }
            Ok(Ok((Err(e), _))) => {
                tracing::debug!(seq = request.seq, "click-to-call not ours: {e}")
            }
            Ok(Err(e)) => {
                tracing::warn!(seq = request.seq, "click-to-call claim not committed: {e}")
            }
            Err(_) => tracing::warn!(
                seq = request.seq,
                "click-to-call claim not committed in 5 s"
            ),
        }
    }

    /// Tells the ACD an agent's queue call ended (their wrap-up starts), in the
    /// background: the call is over and need not wait for the control plane.
    fn agent_call_ended(&self, tenant: Id, agent: Id, hold_ms: u64) {
        let command = tongdai_control_plane::model::Command::AgentCallEnded {
            tenant,
            agent: agent.clone(),
            hold_ms,
        };
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            let deadline = Duration::from_secs(30);
            match tokio::time::timeout(deadline, cluster.propose_one(command)).await {
                Ok(Ok((Ok(_), _))) => {}
                Ok(Ok((Err(e), _))) => {
                    tracing::debug!(%agent, "end of the agent's queue call refused: {e}")
                }
                Ok(Err(e)) => tracing::warn!(%agent, "end of queue call not committed: {e}"),
                Err(_) => tracing::warn!(%agent, "end of queue call not committed in 30 s"),
            }
        });
    }

    fn mark_busy(&self, tenant: &Id, ext: &Id) {
        *self
            .busy
            .lock()
            .entry((tenant.clone(), ext.clone()))
            .or_default() += 1;
    }

    fn unmark_busy(&self, tenant: &Id, ext: &Id) {
        let mut busy = self.busy.lock();
        let key = (tenant.clone(), ext.clone());
        if let Some(n) = busy.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&key);
            }
        }
    }

    fn is_busy(&self, tenant: &Id, ext: &Id) -> bool {
        self.busy
            .lock()
            .contains_key(&(tenant.clone(), ext.clone()))
    }
}

impl B2bua {
    /// The SIP core this B2BUA sends through, while it runs.
    pub fn core(&self) -> Option<Arc<SipCore>> {
        self.core.get().and_then(Weak::upgrade)
    }

    /// The trunk a request from `source` belongs to: the trunk trusting the source, else
    /// a registering trunk without trusted sources whose address (`IP:port`, resolved)
    /// is the source, told apart by the Request-URI user when several share it.
    fn trunk_of(
        &self,
        source: SocketAddr,
        request_user: Option<&str>,
    ) -> Option<tongdai_control_plane::model::Trunk> {
        if let Some(trunk) = self.cache.trunk_for_source(source) {
            return Some(trunk);
        }
        let (tenant, id) = self
            .core()?
            .trunks()?
            .trunk_for_carrier(source, request_user)?;
        self.cache.trunk(&tenant, &id)
    }

    /// Whether a trunk carries as many calls as it may.
    fn trunk_full(&self, trunk: &tongdai_control_plane::model::Trunk) -> bool {
        let n = self
            .trunk_calls
            .lock()
            .get(&(trunk.tenant.clone(), trunk.id.clone()))
            .copied()
            .unwrap_or(0);
        n >= trunk.max_concurrent_calls as usize
    }

    /// Counts a call on a trunk (both directions) until [`Self::trunk_released`].
    fn trunk_taken(&self, tenant: &Id, trunk: &Id) {
        *self
            .trunk_calls
            .lock()
            .entry((tenant.clone(), trunk.clone()))
            .or_default() += 1;
    }

    fn trunk_released(&self, tenant: &Id, trunk: &Id) {
        let mut calls = self.trunk_calls.lock();
        let key = (tenant.clone(), trunk.clone());
        if let Some(n) = calls.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                calls.remove(&key);
            }
        }
    }
}

/// Hands each message of `rx` to `handle` while the B2BUA lives. A lag is logged, and
/// `on_lag` may give a message standing for what was missed.
fn listen<T: Clone + Send + 'static>(
    b2b: &Arc<B2bua>,
    mut rx: tokio::sync::broadcast::Receiver<T>,
    what: &'static str,
    on_lag: impl Fn(u64) -> Option<T> + Send + 'static,
    handle: impl Fn(&Arc<B2bua>, T) + Send + 'static,
) {
    use tokio::sync::broadcast::error::RecvError;
    let weak = Arc::downgrade(b2b);
    tokio::spawn(async move {
        loop {
            let message = match rx.recv().await {
                Ok(m) => m,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "B2BUA fell behind on {what}");
                    match on_lag(n) {
                        Some(m) => m,
                        None => continue,
                    }
                }
                Err(RecvError::Closed) => return,
            };
            let Some(b2b) = weak.upgrade() else { return };
            handle(&b2b, message);
        }
    });
}

/// The number a trunk's call asks for. A carrier that calls the Contact we registered
/// (`sip:username@node`) names the account in the Request-URI, and the number in To;
/// any other Request-URI user is the number.
pub(crate) fn dialled_from_trunk(
    invite: &Request,
    trunk: &tongdai_control_plane::model::Trunk,
    request_user: String,
) -> String {
    use crate::sip::SipHeaders;
    match &trunk.registration {
        Some(reg) if reg.username == request_user => invite
            .hdr_to()
            .ok()
            .and_then(|to| to.uri.user_unescaped())
            .unwrap_or(request_user),
        _ => request_user,
    }
}
