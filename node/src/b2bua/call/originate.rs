//! Click-to-call: a call the node places itself, from a request of the admin API
//! (`POST /v1/tenants/{t}/calls`) it claimed. The agent's phones ring first; once the
//! agent answers, the customer's number is dialled through the tenant's outbound trunk
//! and the two are bridged, exactly as for a queue callback.
//!
//! There is no caller's INVITE: the call task runs with a stand-in caller leg that is
//! never answered to (as if already answered and gone), and an offer of our own (the
//! tenant's codecs, no remote address yet) gives the agent's phone our agent-side port.

use std::sync::Arc;
use std::time::SystemTime;

use tongdai_control_plane::model::ClickToCall;

use super::{Call, Ending, HangupBy, new_call};
use crate::b2bua::B2bua;
use crate::b2bua::directory::CacheDirectory;
use crate::b2bua::route::{self, Direction, EXTENSION_RING, Plan, Step};
use crate::b2bua::sdp_policy::CodecPolicy;
use crate::cdr::Cdr;
use crate::server::SipCore;
use crate::sip::auth::unix_millis;
use crate::sip::transaction::{Peer, TransactionKey, new_branch};
use crate::sip::transport::TransportKind;
use crate::sip::{HeaderName, Method, Request, Uri};

/// Our offer before anyone answered: every G.711 law and telephone-event, no address.
const TEMPLATE_OFFER: &str = "v=0\r\no=tongdai 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\n\
    t=0 0\r\nm=audio 9 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

/// Starts the call of a click-to-call request this node took.
pub(crate) fn spawn(b2b: Arc<B2bua>, core: Arc<SipCore>, request: ClickToCall) {
    let call_id = format!(
        "c2c-{}-{}@{}",
        request.seq,
        super::new_token(),
        b2b.config.advertise.ip()
    );
    let mut invite = Request::new(
        Method::Invite,
        Uri::parse(&format!(
            "sip:{}@{}",
            request.number,
            b2b.config.advertise.ip()
        ))
        .unwrap_or_else(|_| Uri::parse("sip:click-to-call@127.0.0.1").expect("a URI")),
    );
    invite.headers.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/UDP {};branch={}",
            b2b.config.advertise,
            new_branch()
        ),
    );
    invite.headers.push(HeaderName::CallId, call_id);
    invite.headers.push(HeaderName::CSeq, "1 INVITE");
    invite.headers.push(
        HeaderName::From,
        format!("<sip:{}@click-to-call>;tag=c2c", request.agent),
    );
    invite.headers.push(
        HeaderName::To,
        format!("<sip:{}@click-to-call>", request.number),
    );
    let Ok(key) = TransactionKey::for_outgoing_request(&invite) else {
        tracing::warn!(seq = request.seq, "click-to-call: no transaction key");
        return;
    };
    let peer = Peer {
        addr: b2b.config.advertise,
        transport: TransportKind::Udp,
    };
    let call = new_call(b2b, core, key, invite, peer);
    tokio::spawn(call.run_click_to_call(request));
}

impl Call {
    async fn run_click_to_call(mut self, request: ClickToCall) {
        // The stand-in caller leg is never answered to.
        self.caller_answered = true;
        self.caller_gone = true;
        self.a_acked = true;
        let ending = match self.click_to_call(&request).await {
            Ok(ending) | Err(ending) => ending,
        };
        self.finish(ending).await;
    }

    async fn click_to_call(&mut self, request: &ClickToCall) -> Result<Ending, Ending> {
        let fail = |status: u16, reason: &str| Ending {
            status,
            by: HangupBy::System,
            reason: reason.to_owned(),
        };
        let tenant = self
            .b2b
            .cache
            .tenant(&request.tenant)
            .ok_or_else(|| fail(404, "unknown tenant"))?;
        let call_id = self.caller_call_id();
        crate::cdr::metrics::call_attempt(tenant.id.as_str());
        let mut cdr = Cdr::new(
            tenant.id.to_string(),
            self.b2b.config.node.clone(),
            call_id.clone(),
            crate::cdr::Direction::Outbound,
            request.agent.to_string(),
            request.number.clone(),
            self.setup_ms,
        );
        cdr.destination = format!("click_to_call:{}", request.agent);
        self.cdr = Some(cdr);
        crate::cdr::metrics::call_started(tenant.id.as_str());
        self.started = true;
        if let Err(refusal) = self.admit(&tenant) {
            tracing::info!(tenant = %tenant.id, "click-to-call refused: {refusal}");
            return Err(fail(503, &refusal.to_string()));
        }
        // The agent's phone shows the customer's number.
        self.plan = Some(Plan {
            tenant: tenant.id.clone(),
            direction: Direction::Internal,
            number: None,
            dialled: request.number.clone(),
            caller_id: request.number.clone(),
            destination: tongdai_control_plane::model::Destination::External(
                request.number.clone(),
            ),
        });
        let offer = CodecPolicy::of(&tenant.calls)
            .apply(TEMPLATE_OFFER)
            .map_err(|e| fail(488, &e.to_string()))?;
        self.anchor(&tenant.id, &offer)
            .await
            .map_err(|e| fail(503, &e.to_string()))?;
        self.a_offer = offer;
        self.callback = Some(request.number.clone());
        let targets = route::phone_targets(
            &CacheDirectory {
                cache: &self.b2b.cache,
                b2b: &self.b2b,
            },
            &tenant.id,
            &request.agent,
            unix_millis(SystemTime::now()),
        );
        if targets.is_empty() {
            return Err(fail(
                480,
                &format!("Extension {} is not registered", request.agent),
            ));
        }
        let step = Step {
            queue: None,
            targets,
            ring: EXTENSION_RING,
            after_busy: None,
            after_no_answer: None,
            on_failure: Vec::new(),
        };
        if self.ring(&step).await.is_err() {
            return Err(fail(480, "the agent did not answer"));
        }
        let agent = self.winner.expect("answered");
        let Some(sdp) = self.forks[agent].answer_sdp.clone() else {
            self.bye_fork(agent).await;
            return Err(fail(488, "the agent's answer has no SDP"));
        };
        tracing::info!(seq = request.seq, agent = %request.agent, "click-to-call: agent answered, dialling");
        Ok(self.dial_back(agent, &request.number, &sdp).await)
    }
}
