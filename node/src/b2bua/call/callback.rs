//! Callbacks: a caller waiting in a queue presses the queue's callback key, hears two
//! beeps and is hung up, but keeps their place: this call goes on waiting in the queue
//! for them (still counted as the tenant's call, so the node keeps reporting it). When
//! their turn comes the agent's phone rings first; once the agent answered, the caller's
//! number is dialled through the tenant's outbound trunk with the tenant's caller ID,
//! and the two are bridged.
//!
//! Media: the agent answered the offer of our agent-side port; the caller is dialled
//! with an offer of our caller-side port carrying the agent's codec, so the relay
//! bridges the same two ports as for any queue call.

use std::time::{Duration, SystemTime};

use tongdai_control_plane::model::{Destination, check_external_number};

use super::queue::QueueOutcome;
use super::{Call, Ending, HangupBy, Input};
use crate::b2bua::directory::CacheDirectory;
use crate::b2bua::route::{self, Direction, Directory};
use crate::media::relay::{LegSide, MediaEvent};
use crate::sip::auth::unix_millis;
use crate::sip::dialog::DialogKey;
use crate::sip::{HeaderName, Method, Response, SipHeaders};

/// How long the caller's phone may ring when called back.
const CALLBACK_RING: Duration = Duration::from_secs(45);

impl Call {
    /// The caller pressed the callback key: confirm, hang up the caller, keep waiting.
    /// `Some` when the call is over instead (no number to call back, caller gone).
    pub(super) async fn request_callback(&mut self) -> Option<QueueOutcome> {
        let plan = self.plan.as_ref().expect("routed");
        let number = route::normalize(&plan.caller_id);
        if check_external_number(&number).is_err() || plan.direction != Direction::Inbound {
            tracing::info!(caller = %plan.caller_id, "callback asked without a number to call back: ignored");
            return None;
        }
        if let Some(ending) = self.beep().await {
            // Hung up before the confirmation ended: an abandoned caller after all.
            self.leave_queue(tongdai_control_plane::model::LeaveReason::Abandoned)
                .await;
            return Some(QueueOutcome::Over(ending));
        }
        tracing::info!(%number, "callback requested; the caller keeps their place");
        self.bye_caller().await;
        self.queue_event("CALLBACK", None, format!("number={number}"));
        self.callback = Some(number);
        None
    }

    /// The agent (fork `agent`) answered a callback: dial the caller, bridge, and talk
    /// until either hangs up.
    pub(super) async fn call_back(&mut self, agent: usize, ok: &crate::sip::Response) -> Ending {
        let number = self.callback.clone().expect("a callback");
        self.winner = Some(agent);
        self.forks[agent].answered_ms = Some(unix_millis(SystemTime::now()));
        self.cancel_pending_forks(Some(super::hunt::COMPLETED_ELSEWHERE))
            .await;
        if !self.connect_agent(agent, ok).await {
            self.bye_fork(agent).await;
            return system("agent_media");
        }
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        self.dial_back(agent, &number, &body).await
    }

    /// The agent (fork `agent`, who answered with SDP `agent_sdp`) is connected: dial
    /// `number` through the tenant's outbound trunk (then its failover chain), bridge,
    /// and talk until either hangs up.
    pub(super) async fn dial_back(
        &mut self,
        agent: usize,
        number: &str,
        agent_sdp: &str,
    ) -> Ending {
        let media = self.media.expect("anchored");
        let body = agent_sdp;
        let number = number.to_owned();
        let offer = match self
            .b2b
            .media
            .offer(media, LegSide::Callee, body, None)
            .await
        {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!("no offer for the callback leg: {e}");
                self.bye_fork(agent).await;
                return system("callback_media");
            }
        };
        // Toward the carrier the call presents the tenant's number, like an outbound call.
        let dir = CacheDirectory {
            cache: &self.b2b.cache,
            b2b: &self.b2b,
        };
        let tenant = self.plan.as_ref().expect("routed").tenant.clone();
        let caller_id = dir.caller_id(&tenant);
        let steps = route::expand(
            &dir,
            &tenant,
            &Destination::External(number.clone()),
            unix_millis(SystemTime::now()),
        );
        let (Some(caller_id), Ok(mut steps)) = (caller_id, steps) else {
            tracing::warn!(%tenant, "callback impossible: the tenant has no outbound trunk or caller ID");
            self.bye_fork(agent).await;
            return system("callback_no_trunk");
        };
        if let Some(plan) = self.plan.as_mut() {
            plan.direction = Direction::Outbound;
            plan.caller_id = caller_id;
        }
        self.b_offer = offer;
        // The trunk, then its failover chain, until the caller answers.
        while let Some(step) = steps.pop_front() {
            let mut placed = None;
            for target in step.targets.iter().cloned() {
                if self.place(target).await {
                    placed = Some(self.forks.len() - 1);
                    break;
                }
            }
            let Some(customer) = placed else {
                steps.extend(step.on_failure.iter().cloned());
                continue;
            };
            match self.ring_customer(agent, customer).await {
                Ok(()) => return self.callback_talk(agent, customer).await,
                Err(Some(ending)) => return ending,
                Err(None) => steps.extend(step.on_failure.iter().cloned()),
            }
        }
        tracing::info!(%number, "the callback was not answered");
        self.bye_fork(agent).await;
        system("callback_unanswered")
    }

    /// Rings the caller being called back. `Ok` once they answered; `Err(None)` when the
    /// trunk failed (try the next); `Err(Some)` when the call is over.
    async fn ring_customer(&mut self, agent: usize, customer: usize) -> Result<(), Option<Ending>> {
        let deadline = tokio::time::Instant::now() + CALLBACK_RING;
        loop {
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = tokio::time::sleep_until(deadline) => {
                    self.cancel_pending_forks(None).await;
                    self.bye_fork(agent).await;
                    return Err(Some(system("callback_unanswered")));
                }
            };
            match input {
                Some(Input::Response { key, response }) => {
                    let Some(i) = self.fork_index(&key) else {
                        continue;
                    };
                    if i != customer {
                        self.late_response(i, response).await;
                        continue;
                    }
                    match response.status {
                        100..=199 => {
                            let now = unix_millis(SystemTime::now());
                            self.forks[i].ringing_ms.get_or_insert(now);
                        }
                        200..=299 => {
                            self.ack_fork(i, &response).await;
                            self.forks[i].status = Some(response.status);
                            let now = unix_millis(SystemTime::now());
                            self.forks[i].answered_ms = Some(now);
                            // A click-to-call is answered when the customer answers.
                            self.answer_ms.get_or_insert(now);
                            let media = self.media.expect("anchored");
                            let body = String::from_utf8_lossy(&response.body).into_owned();
                            if let Err(e) =
                                self.b2b.media.answer(media, LegSide::Caller, &body).await
                            {
                                tracing::warn!("the called-back caller's answer refused: {e}");
                                self.bye_fork(i).await;
                                self.bye_fork(agent).await;
                                return Err(Some(system("callback_media")));
                            }
                            return Ok(());
                        }
                        status => {
                            self.forks[i].status = Some(status);
                            if status >= 500 || status == 408 {
                                return Err(None);
                            }
                            self.bye_fork(agent).await;
                            return Err(Some(system("callback_unanswered")));
                        }
                    }
                }
                Some(Input::TransactionFailed { key }) => {
                    if self.fork_index(&key) == Some(customer) {
                        self.forks[customer].status = Some(408);
                        return Err(None);
                    }
                }
                Some(Input::Request { key, request, .. }) => {
                    let from_agent = self.is_fork_request(agent, &request);
                    self.respond(&key, &request, 200, "OK").await;
                    if from_agent && request.method == Method::Bye {
                        self.cancel_pending_forks(None).await;
                        return Err(Some(Ending {
                            status: 200,
                            by: HangupBy::Callee,
                            reason: "bye".into(),
                        }));
                    }
                }
                Some(Input::Hangup { reason }) => {
                    self.cancel_pending_forks(None).await;
                    self.bye_fork(agent).await;
                    return Err(Some(system(reason)));
                }
                Some(_) => {}
                None => return Err(Some(system("internal"))),
            }
        }
    }

    /// The agent and the called-back caller talk until one hangs up.
    async fn callback_talk(&mut self, agent: usize, customer: usize) -> Ending {
        loop {
            let Some(input) = self.inbox.recv().await else {
                return system("internal");
            };
            match input {
                Input::Request { key, request, .. } => {
                    let from_agent = self.is_fork_request(agent, &request);
                    let from_customer = self.is_fork_request(customer, &request);
                    if !from_agent && !from_customer {
                        self.respond(&key, &request, 481, "Call/Transaction Does Not Exist")
                            .await;
                        continue;
                    }
                    match request.method {
                        Method::Bye => {
                            self.respond(&key, &request, 200, "OK").await;
                            let (other, by) = if from_agent {
                                (customer, HangupBy::Callee)
                            } else {
                                (agent, HangupBy::Caller)
                            };
                            self.bye_fork(other).await;
                            return Ending {
                                status: 200,
                                by,
                                reason: "bye".into(),
                            };
                        }
                        Method::Invite | Method::Update => {
                            let side = if from_agent {
                                LegSide::Callee
                            } else {
                                LegSide::Caller
                            };
                            let fork = if from_agent { agent } else { customer };
                            self.answer_fork_reoffer(key, request, side, fork).await;
                        }
                        Method::Ack => {}
                        _ => self.respond(&key, &request, 200, "OK").await,
                    }
                }
                Input::Response { key, response } => {
                    if let Some(i) = self.fork_index(&key)
                        && (200..300).contains(&response.status)
                        && (i == agent || i == customer)
                    {
                        // A retransmitted 2xx: our ACK was lost.
                        self.ack_fork(i, &response).await;
                    }
                }
                Input::Media(MediaEvent::Inactive { idle_ms }) => {
                    tracing::info!(idle_ms, "no RTP in the callback: hanging up");
                    self.bye_fork(agent).await;
                    self.bye_fork(customer).await;
                    return system("rtp_timeout");
                }
                Input::Hangup { reason } => {
                    self.bye_fork(agent).await;
                    self.bye_fork(customer).await;
                    return system(reason);
                }
                Input::Control(action) => self.control(action).await,
                _ => {}
            }
        }
    }

    /// Whether `request` belongs to fork `i`'s dialog.
    fn is_fork_request(&self, i: usize, request: &crate::sip::Request) -> bool {
        let Some(d) = self.forks[i].dialog.as_ref() else {
            return false;
        };
        DialogKey::of_incoming(request).is_some_and(|k| k.local_tag == d.local_tag)
    }

    /// Answers a re-INVITE or UPDATE from a fork's peer (hold, resume, refresh) from the
    /// media engine, like [`Call::reoffer`] does for the caller.
    async fn answer_fork_reoffer(
        &mut self,
        key: crate::sip::transaction::TransactionKey,
        request: crate::sip::Request,
        side: LegSide,
        fork: usize,
    ) {
        let media = self.media.expect("anchored");
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let sdp = match self.b2b.media.answer_locally(media, side, &body) {
            Ok(a) => a.sdp,
            Err(e) => {
                self.respond(&key, &request, 488, &format!("Not Acceptable Here: {e}"))
                    .await;
                return;
            }
        };
        let mut r = Response::to_request(&request, 200, None);
        r.headers
            .push(HeaderName::Contact, self.contact(self.forks[fork].peer));
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = sdp.into_bytes().into();
        let _ = r.call_id();
        self.core.respond(&key, r).await;
    }
}

fn system(reason: &str) -> Ending {
    Ending {
        status: 200,
        by: HangupBy::System,
        reason: reason.to_owned(),
    }
}
