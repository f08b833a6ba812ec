//! One call, as a task: setup (who calls, where to, media anchored), hunting (forks,
//! sequential steps, fallbacks), the established dialog (BYE, hold, session timer, RTP
//! timeout) and the end (media stats, record). The protocol pieces it sequences are
//! sans-IO and tested on their own; this file is the order they run in.

mod callback;
mod confirmed;
mod feature;
mod hunt;
mod legs;
mod originate;
mod queue;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tongdai_control_plane::model::{Id, RecordingPolicy};

use super::B2bua;
use super::directory::CacheDirectory;
use super::route::{self, Caller, Plan, Reject, Step};
use super::sdp_policy::{CodecPolicy, PolicyError};
use crate::cdr::{Cdr, CdrLeg};
use crate::media::engine::{MediaError, SessionId};
use crate::media::relay::{LegSide, MediaEvent};
use crate::server::{CallAuth, SipCore};
use crate::sip::auth::unix_millis;
use crate::sip::dialog::{Dialog, DialogKey};
use crate::sip::transaction::{Peer, TransactionKey};
use crate::sip::{HeaderName, Request, Response, SipHeaders};

use legs::Fork;

/// What the SIP core and the media engine tell a call.
#[derive(Debug)]
pub enum Input {
    /// A request inside one of the call's dialogs.
    Request {
        key: TransactionKey,
        request: Request,
        source: Peer,
    },
    /// The caller cancelled the INVITE (the CANCEL itself is answered already).
    Cancel,
    /// The caller's ACK for our 2xx.
    Ack {
        request: Request,
    },
    Response {
        key: TransactionKey,
        response: Response,
    },
    TransactionFailed {
        key: TransactionKey,
    },
    Media(MediaEvent),
    /// End the call now (node shutdown, operator).
    Hangup {
        reason: &'static str,
    },
    /// A request from the admin API (on-demand recording).
    Control(tongdai_control_plane::model::CallAction),
    /// The caller's queue entry changed in the control plane (read it from the cache).
    QueueChanged,
}

pub use crate::cdr::HangupBy;
pub(crate) use originate::spawn as click_to_call;

/// How the call ended, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub status: u16,
    pub by: HangupBy,
    pub reason: String,
}

/// The caller's side: the INVITE we answer and the dialog it creates.
struct ALeg {
    key: TransactionKey,
    invite: Request,
    peer: Peer,
    tag: String,
    dialog: Option<Dialog>,
}

pub(super) struct Call {
    b2b: Arc<B2bua>,
    core: Arc<SipCore>,
    inbox: mpsc::UnboundedReceiver<Input>,
    tx: mpsc::UnboundedSender<Input>,
    a: ALeg,
    caller: Option<Caller>,
    plan: Option<Plan>,
    media: Option<SessionId>,
    /// The caller's offer after the codec policy; re-offered when the answer changes.
    a_offer: String,
    /// The offer we send to callees (pointing at our callee-side port).
    b_offer: String,
    /// Our SDP to the caller once a callee answered (or sent early media).
    a_answer: Option<String>,
    /// Which fork's SDP the media engine holds as the answer.
    answer_from: Option<usize>,
    steps: VecDeque<Step>,
    expansions: usize,
    forks: Vec<Fork>,
    winner: Option<usize>,
    ringing_sent: bool,
    session_expires: Option<u32>,
    /// Keys this call put in the routing tables, removed at the end.
    routed_dialogs: Vec<DialogKey>,
    routed_transactions: Vec<TransactionKey>,
    busy: Vec<(Id, Id)>,
    /// The tenant whose quota admitted this call (released at the end).
    admitted: Option<Id>,
    /// Retry-After for a 503 refusal; the bounded metric reason when it is not the
    /// status's usual one.
    retry_after: Option<u32>,
    refusal: Option<&'static str>,
    /// The trunk an inbound call came in by (counted against its limit).
    inbound_trunk: Option<(Id, Id)>,
    /// Record from the answer (the tenant's or the number's policy is `always`, or an
    /// on-demand request came before the answer).
    record: bool,
    /// The policy is not `never`: on-demand requests are honoured.
    may_record: bool,
    /// Keyed in the routing table's `calls` (tenant, Call-ID).
    control_key: Option<(String, String)>,
    recording_id: Option<String>,
    on_hold: [bool; 2],
    /// Since when either side is on hold, and the hold time before that.
    hold_since: Option<std::time::Instant>,
    hold_ms: u64,
    /// The caller has our 2xx (an agent, a callee, or the queue answered) ...
    caller_answered: bool,
    /// ... and sent its ACK; until then the 2xx is retransmitted.
    a_acked: bool,
    ok_timer: Option<OkTimer>,
    /// The queue the caller waits in.
    waiting: Option<queue::Waiting>,
    /// The caller asked to be called back at this number and hung up (we sent the BYE);
    /// the call goes on waiting in the queue for them.
    callback: Option<String>,
    /// We hung up the caller's leg (BYE sent once).
    caller_gone: bool,
    /// A feature code the calling agent dialled (instead of a destination).
    feature: Option<(feature::FeatureCode, Id)>,
    /// The queues the caller waited in, for the record.
    queue_visits: Vec<crate::cdr::QueueVisit>,
    /// The queue agent who took the call (their wrap-up starts when it ends).
    queue_agent: Option<(Id, Id)>,
    // For the record.
    cdr: Option<Cdr>,
    /// Counted in the tenant's active calls (from routing to the end).
    started: bool,
    setup_ms: u64,
    ringing_ms: Option<u64>,
    answer_ms: Option<u64>,
}

pub(super) fn spawn(
    b2b: Arc<B2bua>,
    core: Arc<SipCore>,
    key: TransactionKey,
    invite: Request,
    source: Peer,
) {
    let call = new_call(b2b, core, key, invite, source);
    tokio::spawn(call.run());
}

/// A call's task state, routed (its INVITE transaction) and counted as active.
fn new_call(
    b2b: Arc<B2bua>,
    core: Arc<SipCore>,
    key: TransactionKey,
    invite: Request,
    source: Peer,
) -> Call {
    let (tx, inbox) = mpsc::unbounded_channel();
    // A CANCEL may follow the INVITE at once: route it before the task runs.
    b2b.routes
        .lock()
        .transactions
        .insert(key.clone(), tx.clone());
    *b2b.active.lock() += 1;
    Call {
        b2b,
        core,
        inbox,
        tx,
        a: ALeg {
            key: key.clone(),
            invite,
            peer: source,
            tag: new_token(),
            dialog: None,
        },
        caller: None,
        plan: None,
        media: None,
        a_offer: String::new(),
        b_offer: String::new(),
        a_answer: None,
        answer_from: None,
        steps: VecDeque::new(),
        expansions: 0,
        forks: Vec::new(),
        winner: None,
        ringing_sent: false,
        session_expires: None,
        routed_dialogs: Vec::new(),
        routed_transactions: vec![key],
        busy: Vec::new(),
        inbound_trunk: None,
        admitted: None,
        retry_after: None,
        refusal: None,
        record: false,
        may_record: false,
        control_key: None,
        recording_id: None,
        on_hold: [false; 2],
        hold_since: None,
        hold_ms: 0,
        caller_answered: false,
        a_acked: false,
        ok_timer: None,
        waiting: None,
        callback: None,
        caller_gone: false,
        feature: None,
        queue_agent: None,
        queue_visits: Vec::new(),
        cdr: None,
        started: false,
        setup_ms: unix_millis(SystemTime::now()),
        ringing_ms: None,
        answer_ms: None,
    }
}

impl Call {
    async fn run(mut self) {
        let ending = match self.setup().await {
            Err(reject) => {
                if let Some(cdr) = &self.cdr {
                    let reason = self.refusal.unwrap_or_else(|| refusal_label(reject.status));
                    crate::cdr::metrics::call_rejected(&cdr.tenant, reason);
                }
                self.reply_final(reject.status, &reject.reason).await;
                Ending {
                    status: reject.status,
                    by: HangupBy::System,
                    reason: reject.reason,
                }
            }
            Ok(None) => Ending {
                status: 407,
                by: HangupBy::System,
                reason: "challenged".into(),
            },
            Ok(Some(())) if self.feature.is_some() => {
                let (code, ext) = self.feature.take().expect("a feature code");
                match self.feature(code, ext).await {
                    Ok(ending) => ending,
                    Err(ending) => {
                        self.reply_final(ending.status, &ending.reason).await;
                        ending
                    }
                }
            }
            Ok(Some(())) => match self.hunt().await {
                hunt::Outcome::Answered => {
                    self.start_recording().await;
                    self.confirmed().await
                }
                hunt::Outcome::Failed(ending) => {
                    if self.caller_answered {
                        // Answered by the queue: nobody took the call afterwards.
                        self.bye_caller().await;
                    } else {
                        self.reply_final(ending.status, &ending.reason).await;
                    }
                    ending
                }
                hunt::Outcome::Over(ending) => ending,
                hunt::Outcome::Cancelled => {
                    self.reply_final(487, "Request Terminated").await;
                    Ending {
                        status: 487,
                        by: HangupBy::Caller,
                        reason: "cancel".into(),
                    }
                }
            },
        };
        self.finish(ending).await;
    }

    /// Identifies the caller, routes, checks the offer and anchors media. `Ok(None)`: a
    /// digest challenge went out, the phone will retry with a new INVITE.
    async fn setup(&mut self) -> Result<Option<()>, Reject> {
        let invite = &self.a.invite;
        if self.b2b.is_draining() {
            return Err(reject(503, "Node draining: try another node"));
        }
        if invite.max_forwards().ok().flatten() == Some(0) {
            return Err(reject(483, "Too Many Hops"));
        }
        let mut dialled = invite.uri.user_unescaped().unwrap_or_default();
        let caller = match self.b2b.trunk_of(self.a.peer.addr, Some(&dialled)) {
            Some(trunk) => {
                dialled = crate::b2bua::dialled_from_trunk(invite, &trunk, dialled);
                if self.b2b.trunk_full(&trunk) {
                    return Err(reject(503, "Trunk at its call limit"));
                }
                self.b2b.trunk_taken(&trunk.tenant, &trunk.id);
                self.inbound_trunk = Some((trunk.tenant.clone(), trunk.id.clone()));
                Caller::Trunk {
                    tenant: trunk.tenant,
                    trunk: trunk.id,
                }
            }
            None => match self.core.authenticate_call(invite, &self.a.tag) {
                CallAuth::Ok { tenant, user } => Caller::Extension {
                    tenant: Id::new(&tenant).map_err(|_| reject(403, "Unknown tenant"))?,
                    ext: Id::new(&user).map_err(|_| reject(403, "Unknown extension"))?,
                },
                CallAuth::Respond(resp) => {
                    self.core.respond(&self.a.key, *resp).await;
                    return Ok(None);
                }
            },
        };
        let presented = presented_identity(invite);
        let tenant_name = caller.tenant().to_string();
        crate::cdr::metrics::call_attempt(&tenant_name);
        let (direction, calling) = match &caller {
            Caller::Trunk { .. } => (crate::cdr::Direction::Inbound, route::normalize(&presented)),
            Caller::Extension { ext, .. } => (crate::cdr::Direction::Internal, ext.to_string()),
        };
        self.cdr = Some(Cdr::new(
            tenant_name,
            self.b2b.config.node.clone(),
            invite.call_id().unwrap_or_default(),
            direction,
            calling,
            route::normalize(&dialled),
            self.setup_ms,
        ));
        self.feature = match &caller {
            Caller::Extension { ext, .. } => {
                feature::FeatureCode::parse(&dialled).map(|code| (code, ext.clone()))
            }
            Caller::Trunk { .. } => None,
        };
        let plan = match &self.feature {
            Some((_, ext)) => Plan {
                tenant: caller.tenant().clone(),
                direction: route::Direction::Internal,
                number: None,
                dialled: dialled.clone(),
                caller_id: ext.to_string(),
                destination: tongdai_control_plane::model::Destination::Extension(ext.clone()),
            },
            None => route::plan(
                &CacheDirectory {
                    cache: &self.b2b.cache,
                    b2b: &self.b2b,
                },
                &caller,
                &dialled,
                &presented,
            )?,
        };
        if let Caller::Extension { tenant, ext } = &caller {
            self.b2b.mark_busy(tenant, ext);
            self.busy.push((tenant.clone(), ext.clone()));
        }
        if let Some(cdr) = &mut self.cdr {
            cdr.direction = plan.direction;
            cdr.number = plan.number.as_ref().map(|n| n.digits.clone());
            cdr.number_kind = plan.number.as_ref().map(|n| n.kind);
            cdr.destination = match &self.feature {
                Some((code, _)) => format!("feature:{}", code.as_str()),
                None => destination_label(&plan.destination),
            };
            crate::cdr::metrics::call_started(&cdr.tenant);
            self.started = true;
        }
        self.caller = Some(caller);
        self.session_expires = self.session_interval()?;
        let body = String::from_utf8_lossy(&self.a.invite.body).into_owned();
        if body.trim().is_empty() {
            return Err(reject(
                488,
                "An SDP offer is required in the INVITE (delayed offer is not supported)",
            ));
        }
        let tenant = self
            .b2b
            .cache
            .tenant(&plan.tenant)
            .ok_or_else(|| reject(403, "Unknown tenant"))?;
        if let Err(refusal) = self.admit(&tenant) {
            self.retry_after = Some(refusal.retry_after_secs());
            self.refusal = Some("quota");
            return Err(reject(503, &refusal.to_string()));
        }
        let policy = match plan.number.as_ref().and_then(|n| n.recording) {
            Some(policy) => policy,
            None => tenant.calls.recording,
        };
        self.record = policy == RecordingPolicy::Always;
        self.may_record = policy != RecordingPolicy::Never;
        let key = (
            plan.tenant.to_string(),
            self.a.invite.call_id().unwrap_or_default().to_owned(),
        );
        self.b2b
            .routes
            .lock()
            .calls
            .insert(key.clone(), self.tx.clone());
        self.control_key = Some(key);
        self.a_offer = CodecPolicy::of(&tenant.calls)
            .apply(&body)
            .map_err(|e| match e {
                PolicyError::Malformed(_) => reject(400, &e.to_string()),
                PolicyError::NoCodec(_) => reject(488, &e.to_string()),
            })?;
        let offer = self.a_offer.clone();
        self.anchor(&plan.tenant, &offer)
            .await
            .map_err(media_reject)?;
        if self.feature.is_none() {
            self.steps = route::expand(
                &CacheDirectory {
                    cache: &self.b2b.cache,
                    b2b: &self.b2b,
                },
                &plan.tenant,
                &plan.destination,
                unix_millis(SystemTime::now()),
            )?;
        }
        self.plan = Some(plan);
        self.reply(100, "Trying", None).await;
        Ok(Some(()))
    }

    /// Opens the call's media session (routed to this task) and passes `offer`, the
    /// caller side's, through it: `b_offer` is what callees are offered.
    async fn anchor(&mut self, tenant: &Id, offer: &str) -> Result<(), MediaError> {
        let call_id = self.caller_call_id();
        let session = self.b2b.media.create_session(tenant.as_str(), &call_id)?;
        self.media = Some(session);
        self.b2b
            .routes
            .lock()
            .sessions
            .insert(session, self.tx.clone());
        self.b_offer = self
            .b2b
            .media
            .offer(session, LegSide::Caller, offer, None)
            .await?;
        Ok(())
    }

    /// Counts the call against the tenant's quotas, cluster-wide (this node's calls plus
    /// the others' reports); released when the call ends.
    fn admit(
        &mut self,
        tenant: &tongdai_control_plane::model::Tenant,
    ) -> Result<(), crate::b2bua::quota::Refusal> {
        let others = self.b2b.cache.others_load(
            &tenant.id,
            &self.b2b.config.node,
            unix_millis(SystemTime::now()),
        );
        self.b2b.admission.lock().admit(
            &tenant.id,
            &tenant.quotas,
            others,
            std::time::Instant::now(),
        )?;
        self.admitted = Some(tenant.id.clone());
        Ok(())
    }

    /// Answers a request on a callee's early dialog (before the answer nothing is
    /// relayed): 200 to a BYE, 491 to anything else.
    async fn answer_early_request(&self, key: TransactionKey, request: Request) {
        let status = if request.method == crate::sip::Method::Bye {
            200
        } else {
            491
        };
        self.core
            .respond(&key, Response::to_request(&request, status, None))
            .await;
    }

    /// RFC 4028: the interval the caller asked for, refused (422) below our minimum.
    fn session_interval(&self) -> Result<Option<u32>, Reject> {
        // `x` is the compact form (RFC 4028 §4).
        let headers = &self.a.invite.headers;
        let Some(value) = headers.get("Session-Expires").or_else(|| headers.get("x")) else {
            return Ok(None);
        };
        let secs = value
            .split(';')
            .next()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| reject(400, "Malformed Session-Expires"))?;
        let min = self.b2b.config.min_session_expires;
        if secs < min {
            return Err(Reject {
                status: 422,
                reason: format!("Session Interval Too Small (Min-SE: {min})"),
            });
        }
        Ok(Some(secs))
    }

    /// A response to the caller's INVITE.
    fn a_response(&self, status: u16, reason: &str, sdp: Option<&str>) -> Response {
        let mut r = Response::to_request(&self.a.invite, status, Some(&self.a.tag));
        r.reason = crate::sip::parse::sanitize_reason(reason);
        if (101..300).contains(&status) {
            r.headers.push(
                HeaderName::Contact,
                format!("<sip:{}>", self.b2b.config.advertise),
            );
        }
        if status == 503 {
            let secs = self.retry_after.unwrap_or(5);
            r.headers.push(HeaderName::RetryAfter, secs.to_string());
        }
        if status == 422 {
            r.headers.push(
                HeaderName::Other("Min-SE".into()),
                self.b2b.config.min_session_expires.to_string(),
            );
        }
        if (200..300).contains(&status)
            && let Some(secs) = self.session_expires
        {
            r.headers.push(
                HeaderName::Other("Session-Expires".into()),
                format!("{secs};refresher=uac"),
            );
            r.headers.push(HeaderName::Require, "timer");
        }
        r.headers
            .push(HeaderName::Allow, crate::server::ALLOWED_METHODS);
        r.headers
            .push(HeaderName::Server, self.core.server_header());
        if let Some(sdp) = sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp.to_owned().into_bytes().into();
        }
        r
    }

    async fn reply(&mut self, status: u16, reason: &str, sdp: Option<&str>) {
        let r = self.a_response(status, reason, sdp);
        if (200..300).contains(&status) {
            self.caller_answered = true;
            let now = tokio::time::Instant::now();
            self.ok_timer = Some(OkTimer {
                interval: T1,
                next: now + T1,
                deadline: now + self.b2b.config.ack_timeout,
            });
        }
        if (101..300).contains(&status) && self.a.dialog.is_none() {
            match Dialog::uas(&self.a.invite, &self.a.tag) {
                Ok(d) => {
                    let key = d.key();
                    self.b2b
                        .routes
                        .lock()
                        .dialogs
                        .insert(key.clone(), self.tx.clone());
                    self.routed_dialogs.push(key);
                    self.a.dialog = Some(d);
                }
                Err(e) => tracing::debug!("caller's INVITE makes no dialog: {e}"),
            }
        }
        self.core.respond(&self.a.key, r).await;
    }

    async fn reply_final(&mut self, status: u16, reason: &str) {
        let r = self.a_response(status, reason, None);
        self.core.respond(&self.a.key, r).await;
    }

    /// The end: media stats, the record, routing tables cleaned.
    async fn finish(mut self, ending: Ending) {
        // Forks still ringing are cancelled; answers arriving late get ACK + BYE.
        self.cancel_pending_forks(None).await;
        // Out of the queue whatever ended the call; a queue agent starts their wrap-up.
        self.leave_queue(tongdai_control_plane::model::LeaveReason::Abandoned)
            .await;
        if let Some((tenant, agent)) = self.queue_agent.take() {
            let talk_secs = self
                .forks
                .iter()
                .filter_map(|f| f.answered_ms)
                .min()
                .map_or(0, |at| {
                    unix_millis(SystemTime::now()).saturating_sub(at) / 1000
                });
            let event = match ending.by {
                HangupBy::Caller => "COMPLETECALLER",
                _ => "COMPLETEAGENT",
            };
            self.queue_event(event, Some(&agent), format!("talk_secs={talk_secs}"));
            let hold_ms = self.hold_total();
            self.b2b.agent_call_ended(tenant, agent, hold_ms);
        }
        self.linger().await;
        let stats = match self.media.take() {
            Some(id) => {
                self.b2b.routes.lock().sessions.remove(&id);
                self.b2b.media.destroy(id).await.ok()
            }
            None => None,
        };
        let end_ms = unix_millis(SystemTime::now());
        self.write_record(&ending, stats.as_ref(), end_ms);
        if ending.status != 407 {
            let plan = self.plan.as_ref();
            tracing::info!(
                tenant = plan.map(|p| p.tenant.as_str()).unwrap_or("-"),
                call_id = self.a.invite.call_id().unwrap_or_default(),
                dialled = plan.map(|p| p.dialled.as_str()).unwrap_or("-"),
                status = ending.status,
                hangup_by = ending.by.as_str(),
                reason = %ending.reason,
                setup_ms = self.setup_ms,
                ringing_ms = ?self.ringing_ms,
                answer_ms = ?self.answer_ms,
                end_ms,
                caller_packets = stats.as_ref().map_or(0, |s| s.caller.packets_received),
                callee_packets = stats.as_ref().map_or(0, |s| s.callee.packets_received),
                caller_mos = ?stats.as_ref().and_then(|s| s.caller.mos),
                callee_mos = ?stats.as_ref().and_then(|s| s.callee.mos),
                recording = self.recording_id.as_deref().unwrap_or("-"),
                "call ended"
            );
        }
        self.release_trunks(true);
        if let Some(tenant) = self.admitted.take() {
            self.b2b.admission.lock().release(&tenant);
        }
        if let Some((tenant, trunk)) = self.inbound_trunk.take() {
            self.b2b.trunk_released(&tenant, &trunk);
        }
        let mut routes = self.b2b.routes.lock();
        if let Some(key) = self.control_key.take() {
            routes.calls.remove(&key);
        }
        for key in &self.routed_dialogs {
            routes.dialogs.remove(key);
        }
        for key in &self.routed_transactions {
            routes.transactions.remove(key);
        }
        drop(routes);
        for (tenant, ext) in &self.busy {
            self.b2b.unmark_busy(tenant, ext);
        }
        *self.b2b.active.lock() -= 1;
    }

    /// Closes and queues the call's CDR (none for calls refused before the caller was
    /// known, e.g. digest challenges).
    fn write_record(
        &mut self,
        ending: &Ending,
        stats: Option<&crate::media::relay::CallStats>,
        end_ms: u64,
    ) {
        let Some(mut cdr) = self.cdr.take() else {
            return;
        };
        if self.started {
            crate::cdr::metrics::call_ended(&cdr.tenant);
        }
        cdr.legs = self
            .forks
            .iter()
            .map(|f| {
                let mut leg = CdrLeg::new(f.target.label.clone(), f.started_ms);
                leg.ringing_ms = f.ringing_ms;
                leg.answered_ms = f.answered_ms;
                leg.ended_ms = end_ms;
                leg.status = f.status.unwrap_or(if f.cancelled { 487 } else { 0 });
                leg
            })
            .collect();
        cdr.ringing_ms = self.ringing_ms;
        cdr.answer_ms = self.answer_ms;
        let status = if self.answer_ms.is_some() {
            200
        } else {
            ending.status
        };
        cdr.sip_status = status;
        cdr.disposition = crate::cdr::Disposition::for_status(status);
        cdr.hangup_by = ending.by;
        cdr.hangup_reason = ending.reason.clone();
        cdr.quality = stats
            .filter(|s| s.caller.packets_received + s.callee.packets_received > 0)
            .map(crate::cdr::Quality::from);
        cdr.recording_id = self.recording_id.clone();
        cdr.queues = std::mem::take(&mut self.queue_visits);
        cdr.finish(end_ms);
        let band = self
            .plan
            .as_ref()
            .and_then(|p| p.number.as_ref())
            .and_then(|n| n.tariff_band.as_ref())
            .map(|b| b.to_string());
        cdr.rate(band.as_deref());
        if let Some(writer) = &self.b2b.cdrs {
            writer.write(cdr);
        }
    }

    /// Starts recording when the policy says `always` or it was asked for before the
    /// answer (and the node records at all).
    async fn start_recording(&mut self) {
        let Some(media) = self.media.filter(|_| self.record) else {
            return;
        };
        match self.b2b.media.start_recording(media).await {
            Ok(id) => self.recording_id = Some(id),
            Err(e) => tracing::warn!("the call should be recorded but recording failed: {e}"),
        }
    }

    /// An on-demand recording request. Before the answer it only decides whether the
    /// call is recorded from the answer on.
    async fn control(&mut self, action: tongdai_control_plane::model::CallAction) {
        use tongdai_control_plane::model::CallAction;
        if action.records() && !self.may_record {
            tracing::info!("recording requested for a call whose policy is `never`: ignored");
            return;
        }
        let Some(media) = self.media else { return };
        if self.answer_ms.is_none() {
            match action {
                CallAction::StartRecording | CallAction::ResumeRecording => self.record = true,
                CallAction::StopRecording => self.record = false,
                CallAction::PauseRecording => {}
            }
            return;
        }
        let engine = &self.b2b.media;
        let result = match (action, &self.recording_id) {
            (CallAction::StartRecording, None) => {
                self.record = true;
                self.start_recording().await;
                Ok(())
            }
            (CallAction::StartRecording | CallAction::ResumeRecording, Some(_)) => {
                engine.resume_recording(media).await
            }
            (CallAction::PauseRecording, Some(_)) => engine.pause_recording(media).await,
            (CallAction::StopRecording, Some(_)) => engine.stop_recording(media).await,
            (_, None) => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(?action, "recording request failed: {e}");
        }
    }

    /// Waits (bounded) for the final responses of forks still pending, so an answer that
    /// crossed our CANCEL is ACKed and hung up instead of left ringing.
    async fn linger(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(32);
        while self.forks.iter().any(|f| f.status.is_none()) {
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = tokio::time::sleep_until(deadline) => None,
            };
            match input {
                Some(Input::Response { key, response }) => {
                    if let Some(i) = self.fork_index(&key) {
                        self.late_response(i, response).await;
                    }
                }
                Some(Input::TransactionFailed { key }) => {
                    if let Some(i) = self.fork_index(&key) {
                        self.forks[i].status = Some(408);
                    }
                }
                Some(Input::Request { key, request, .. }) => {
                    // BYE crossing ours, or anything else: the call is over.
                    let status = if request.method == crate::sip::Method::Bye {
                        200
                    } else {
                        481
                    };
                    let r = Response::to_request(&request, status, None);
                    self.core.respond(&key, r).await;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
}

/// The caller ID the caller asked to present: P-Asserted-Identity's user, else From's.
fn presented_identity(invite: &Request) -> String {
    let pai = invite
        .headers
        .get_all_by(HeaderName::Other("P-Asserted-Identity".into()))
        .next()
        .and_then(|v| crate::sip::NameAddr::parse(v).ok());
    pai.or_else(|| invite.hdr_from().ok())
        .and_then(|n| n.uri.user_unescaped())
        .unwrap_or_default()
}

/// `tongdai_calls_rejected_total`'s bounded `reason` label for a refusal status.
fn refusal_label(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        403 => "forbidden",
        404 => "not_found",
        480 => "unavailable",
        483 | 482 => "loop",
        486 => "busy",
        488 => "codec",
        422 => "session_interval",
        503 => "overload",
        _ => "other",
    }
}

/// The destination as the record names it: `hunt_group:sales`, `external:0912...`.
fn destination_label(d: &tongdai_control_plane::model::Destination) -> String {
    use tongdai_control_plane::model::Destination;
    match d {
        Destination::Extension(id) => format!("extension:{id}"),
        Destination::HuntGroup(id) => format!("hunt_group:{id}"),
        Destination::Queue(id) => format!("queue:{id}"),
        Destination::Ivr(id) => format!("ivr:{id}"),
        Destination::External(n) => format!("external:{n}"),
    }
}

fn reject(status: u16, reason: &str) -> Reject {
    Reject {
        status,
        reason: reason.to_owned(),
    }
}

fn media_reject(e: MediaError) -> Reject {
    match e {
        MediaError::Sdp(why) => reject(400, &format!("Malformed SDP: {why}")),
        MediaError::NoAudio => reject(488, "The offer has no audio stream"),
        MediaError::Ports(_) => reject(503, "No media ports left on this node"),
        other => {
            tracing::warn!("media engine refused a call: {other}");
            reject(503, "Media unavailable")
        }
    }
}

/// RFC 3261 T1 and T2 for our 2xx retransmissions (§13.3.1.4).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// Our 2xx to the caller, retransmitted until the ACK comes or the deadline passes.
#[derive(Debug, Clone, Copy)]
struct OkTimer {
    interval: Duration,
    next: tokio::time::Instant,
    deadline: tokio::time::Instant,
}

impl Call {
    /// When our 2xx to the caller is next due again (none once ACKed).
    fn ok_retransmit_at(&self) -> Option<tokio::time::Instant> {
        match self.ok_timer {
            Some(t) if !self.a_acked => Some(t.next.min(t.deadline)),
            _ => None,
        }
    }

    /// Retransmits our 2xx; `Err` when the ACK never came.
    async fn retransmit_ok(&mut self) -> Result<(), Ending> {
        let Some(mut t) = self.ok_timer.filter(|_| !self.a_acked) else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= t.deadline {
            return Err(Ending {
                status: 200,
                by: HangupBy::System,
                reason: "no_ack".into(),
            });
        }
        let sdp = self.a_answer.clone();
        let ok = self.a_response(200, "OK", sdp.as_deref());
        self.core.respond(&self.a.key, ok).await;
        t.interval = (t.interval * 2).min(T2);
        t.next = tokio::time::Instant::now() + t.interval;
        self.ok_timer = Some(t);
        Ok(())
    }

    /// Keeps the hold time in step with the hold flags.
    fn hold_changed(&mut self) {
        let held = self.on_hold.iter().any(|h| *h);
        match (held, self.hold_since) {
            (true, None) => self.hold_since = Some(std::time::Instant::now()),
            (false, Some(since)) => {
                self.hold_ms += since.elapsed().as_millis() as u64;
                self.hold_since = None;
            }
            _ => {}
        }
    }

    /// Time on hold so far, a hold still running included.
    fn hold_total(&self) -> u64 {
        self.hold_ms
            + self
                .hold_since
                .map_or(0, |since| since.elapsed().as_millis() as u64)
    }
}

pub(super) async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}
