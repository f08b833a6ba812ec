//! The legs we place: building the INVITE for a target (topology hidden: our Via,
//! Contact, Call-ID and tags only), sending requests into either leg's dialog.

use std::net::SocketAddr;

use tongdai_control_plane::model::Transport;

use super::{Call, new_token};
use crate::b2bua::route::{SendTo, Target};
use crate::sip::dialog::Dialog;
use crate::sip::transaction::{Peer, TransactionKey, new_branch};
use crate::sip::transport::TransportKind;
use crate::sip::{HeaderName, Method, Request, Response, SipHeaders, Uri};

/// One INVITE we sent for the call (a fork of the current step).
#[derive(Debug)]
pub(super) struct Fork {
    pub key: TransactionKey,
    pub invite: Request,
    pub peer: Peer,
    pub target: Target,
    /// Final status once known (408 for no response).
    pub status: Option<u16>,
    pub dialog: Option<Dialog>,
    pub cancelled: bool,
    pub started_ms: u64,
    pub ringing_ms: Option<u64>,
    /// When it answered, if it won the call.
    pub answered_ms: Option<u64>,
    /// The SDP of its 2xx.
    pub answer_sdp: Option<String>,
    /// Whether this fork belongs to the step now ringing.
    pub current: bool,
    /// Whether it counts against its trunk's call limit (released when it fails or the
    /// call ends).
    pub holds_trunk: bool,
}

pub(super) fn transport_kind(t: Transport) -> TransportKind {
    match t {
        Transport::Udp => TransportKind::Udp,
        Transport::Tcp | Transport::Tls => TransportKind::Tcp,
    }
}

fn via_transport(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Udp => "UDP",
        TransportKind::Tcp => "TCP",
    }
}

impl Call {
    /// Where a target's INVITE goes; `None` when a host name does not resolve.
    async fn resolve(target: &Target) -> Option<SocketAddr> {
        match &target.send_to {
            SendTo::Addr(a) => Some(*a),
            SendTo::HostPort(hp) => tokio::net::lookup_host(hp.as_str()).await.ok()?.next(),
        }
    }

    /// Places one fork: builds and sends its INVITE. False when it could not be sent.
    pub(super) async fn place(&mut self, target: Target) -> bool {
        let Some(addr) = Self::resolve(&target).await else {
            tracing::debug!(target = %target.label, "target does not resolve");
            return false;
        };
        let Ok(uri) = Uri::parse(&target.uri) else {
            tracing::debug!(uri = %target.uri, "target URI does not parse");
            return false;
        };
        let peer = Peer {
            addr,
            transport: transport_kind(target.transport),
        };
        let plan = self.plan.as_ref().expect("placed after routing");
        let plan_tenant = plan.tenant.clone();
        let local = self.b2b.config.advertise;
        let mut invite = Request::new(Method::Invite, uri.clone());
        invite.headers.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {local};branch={};rport",
                via_transport(peer.transport),
                new_branch()
            ),
        );
        let hops = self
            .a
            .invite
            .max_forwards()
            .ok()
            .flatten()
            .unwrap_or(70)
            .saturating_sub(1);
        invite
            .headers
            .push(HeaderName::MaxForwards, hops.to_string());
        // Toward a carrier, an internal identity (an extension) means nothing: present the
        // tenant's DID instead; an external caller's own number (a forwarded inbound call)
        // is kept.
        let caller_id = match &target.trunk {
            Some(_)
                if tongdai_control_plane::model::check_external_number(&plan.caller_id)
                    .is_err()
                    || plan.direction == crate::b2bua::route::Direction::Internal =>
            {
                self.b2b
                    .cache
                    .tenant(&plan.tenant)
                    .and_then(|t| t.calls.caller_id)
                    .unwrap_or_else(|| "anonymous".to_owned())
            }
            _ => plan.caller_id.clone(),
        };
        let caller = escape_user(&caller_id);
        let display = self
            .a
            .invite
            .hdr_from()
            .ok()
            .and_then(|f| f.display)
            // Toward carriers only the number is presented.
            .filter(|_| target.trunk.is_none())
            .filter(|d| !d.is_empty() && d.chars().all(|c| c != '"' && c != '\\'));
        let from = match display {
            Some(d) => format!("\"{d}\" <sip:{caller}@{}>", local.ip()),
            None => format!("<sip:{caller}@{}>", local.ip()),
        };
        invite
            .headers
            .push(HeaderName::From, format!("{from};tag={}", new_token()));
        invite.headers.push(HeaderName::To, format!("<{uri}>"));
        invite.headers.push(
            HeaderName::CallId,
            format!("{}@{}", new_token(), local.ip()),
        );
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(HeaderName::Contact, self.contact(peer));
        invite
            .headers
            .push(HeaderName::Allow, crate::server::ALLOWED_METHODS);
        invite
            .headers
            .push(HeaderName::UserAgent, self.core.server_header());
        invite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        invite.body = self.b_offer.clone().into_bytes().into();
        let Ok(key) = TransactionKey::for_outgoing_request(&invite) else {
            return false;
        };
        // Route responses and the callee's in-dialog requests before anything can arrive.
        let dialog_key = crate::sip::dialog::DialogKey {
            call_id: invite.call_id().unwrap_or_default().to_owned(),
            local_tag: invite
                .hdr_from()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
        };
        {
            let mut routes = self.b2b.routes.lock();
            routes.transactions.insert(key.clone(), self.tx.clone());
            routes.dialogs.insert(dialog_key.clone(), self.tx.clone());
        }
        self.routed_transactions.push(key.clone());
        self.routed_dialogs.push(dialog_key);
        if let Some(trunk) = &target.trunk {
            self.b2b.trunk_taken(&plan_tenant, trunk);
        }
        if self.core.request(invite.clone(), peer).await.is_err() {
            if let Some(trunk) = &target.trunk {
                self.b2b.trunk_released(&plan_tenant, trunk);
            }
            return false;
        }
        let holds_trunk = target.trunk.is_some();
        self.forks.push(Fork {
            key,
            invite,
            peer,
            target,
            status: None,
            dialog: None,
            cancelled: false,
            started_ms: crate::sip::auth::unix_millis(std::time::SystemTime::now()),
            ringing_ms: None,
            answered_ms: None,
            answer_sdp: None,
            current: true,
            holds_trunk,
        });
        true
    }

    /// Gives back the trunk slots of forks that ended without being the call's answer.
    pub(super) fn release_trunks(&mut self, all: bool) {
        let tenant = match &self.plan {
            Some(p) => p.tenant.clone(),
            None => return,
        };
        for (i, f) in self.forks.iter_mut().enumerate() {
            let done = all || (f.status.is_some() && self.winner != Some(i));
            if f.holds_trunk && done {
                f.holds_trunk = false;
                if let Some(trunk) = &f.target.trunk {
                    self.b2b.trunk_released(&tenant, trunk);
                }
            }
        }
    }

    pub(super) fn contact(&self, peer: Peer) -> String {
        match peer.transport {
            TransportKind::Udp => format!("<sip:{}>", self.b2b.config.advertise),
            TransportKind::Tcp => format!("<sip:{};transport=tcp>", self.b2b.config.advertise),
        }
    }

    pub(super) fn fork_index(&self, key: &TransactionKey) -> Option<usize> {
        self.forks.iter().position(|f| &f.key == key)
    }

    /// Sends `req` (built by a dialog) to `peer` with our Via and Contact.
    pub(super) async fn send_in_dialog(&mut self, mut req: Request, peer: Peer) {
        req.headers.push_front(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                via_transport(peer.transport),
                self.b2b.config.advertise,
                new_branch()
            ),
        );
        if req.method != Method::Ack && req.method != Method::Bye {
            req.headers.push(HeaderName::Contact, self.contact(peer));
        }
        if req.method == Method::Ack {
            self.core.send_stateless(req, peer).await;
            return;
        }
        if let Ok(key) = TransactionKey::for_outgoing_request(&req) {
            self.b2b
                .routes
                .lock()
                .transactions
                .insert(key.clone(), self.tx.clone());
            self.routed_transactions.push(key);
        }
        let _ = self.core.request(req, peer).await;
    }

    /// BYE to the caller (needs its dialog).
    pub(super) async fn bye_caller(&mut self) {
        if self.caller_gone {
            return;
        }
        self.caller_gone = true;
        if let Some(d) = self.a.dialog.as_mut() {
            let bye = d.request(Method::Bye);
            let peer = self.a.peer;
            self.send_in_dialog(bye, peer).await;
        }
    }

    /// BYE to fork `i` (needs its dialog).
    pub(super) async fn bye_fork(&mut self, i: usize) {
        if let Some(d) = self.forks[i].dialog.as_mut() {
            let bye = d.request(Method::Bye);
            let peer = self.forks[i].peer;
            self.send_in_dialog(bye, peer).await;
        }
    }

    /// ACKs a 2xx from fork `i`, creating its dialog from the first one.
    pub(super) async fn ack_fork(&mut self, i: usize, ok: &Response) {
        let fork = &mut self.forks[i];
        if fork.dialog.as_ref().is_none_or(|d| {
            ok.hdr_to()
                .ok()
                .and_then(|t| t.tag().map(|t| t != d.remote_tag))
                .unwrap_or(false)
        }) {
            match Dialog::uac(&fork.invite, ok) {
                Ok(d) => fork.dialog = Some(d),
                Err(e) => {
                    tracing::debug!("2xx without a usable dialog: {e}");
                    return;
                }
            }
        }
        let seq = fork.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let peer = fork.peer;
        let ack = fork.dialog.as_mut().map(|d| d.ack(seq, ok));
        if let Some(ack) = ack {
            self.send_in_dialog(ack, peer).await;
        }
    }

    /// A response for a fork that arrived after the call moved on: an answer is ACKed and
    /// hung up at once (it lost the race, or the caller is gone).
    pub(super) async fn late_response(&mut self, i: usize, response: Response) {
        let status = response.status;
        if (200..300).contains(&status) {
            let already = self.forks[i].status == Some(status) && self.forks[i].dialog.is_some();
            self.ack_fork(i, &response).await;
            if !already {
                self.bye_fork(i).await;
            }
        }
        if status >= 200 {
            self.forks[i].status = Some(status);
        }
    }
}

/// A user part safe inside a SIP URI (digits, letters and `+-._` pass; the rest dropped).
fn escape_user(user: &str) -> String {
    let kept: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'))
        .collect();
    if kept.is_empty() {
        "anonymous".to_owned()
    } else {
        kept
    }
}
