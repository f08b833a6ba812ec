//! A caller waiting in a queue. The node answers the caller, plays music on hold, and
//! proposes [`Command::QueueJoin`]; from then on the ACD in the control plane decides:
//! the call follows its queue entry (read from the node's cache whenever the watch stream
//! changes it). An offer names the agents to ring: the node rings their phones and
//! reports the result ([`Command::OfferAnswered`], [`Command::OfferFailed`]); the agent is
//! bridged only once the control plane accepted the answer, so an offer the ACD already
//! withdrew (rung out, caller served elsewhere) can never connect a second call to one
//! agent. An exit set by the queue (maximum wait, overflow) moves the call; a caller who
//! hangs up leaves ([`Command::QueueLeave`]).

use std::time::{Duration, SystemTime};

use tongdai_control_plane::model::{
    Command, CommandError, Destination, Id, LeaveReason, OfferFailure, Outcome, QueueArrival,
    QueueEntry, QueueExit,
};

use super::hunt::COMPLETED_ELSEWHERE;
use super::{Call, Ending, HangupBy, Input, reject};
use crate::b2bua::directory::CacheDirectory;
use crate::b2bua::route;
use crate::media::relay::{LegSide, MediaEvent};
use crate::sip::auth::unix_millis;
use crate::sip::dialog::DialogKey;
use crate::sip::{Method, SipHeaders};

/// How long one ACD proposal may take (elections included) before the call gives up on
/// the control plane.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);

/// How waiting in a queue ended.
pub(super) enum QueueOutcome {
    /// An agent answered and the caller is connected.
    Answered,
    /// The call is over (the caller hung up, the queue gave up, the node stops): nothing
    /// more to send to the caller.
    Over(Ending),
    /// Refused before the caller was answered: the caller gets this final response.
    Refused(Ending),
    /// Go on to this destination (overflow).
    Follow(Destination),
}

/// The queue a call is in.
pub(super) struct Waiting {
    pub tenant: Id,
    pub queue: Id,
    /// What the node proposed to join (proposed again if the entry is lost).
    arrival: QueueArrival,
    /// The node's cache has shown the entry: from then on its absence means it left.
    /// (Before, the cache may simply not have caught up with the join's commit.)
    seen: bool,
    /// The agents being rung: one per agent of the current offer.
    rings: Vec<AgentRing>,
    /// Position and expected wait at entry (from the control plane), for announcements.
    entry_position: Option<u32>,
    entry_wait_secs: Option<u32>,
    /// When the next announcement is due, if the queue repeats them.
    next_announce: Option<tokio::time::Instant>,
    /// An announcement is playing (music on hold resumes when it ends).
    announcing: bool,
}

struct AgentRing {
    agent: Id,
    offer: u64,
    /// Indexes into the call's forks: the agent's phones.
    forks: Vec<usize>,
    /// Withdrawn by the ACD (or reported): its forks are cancelled, nothing is reported.
    done: bool,
}

impl Call {
    /// Puts the caller in `queue` and waits until an agent answers or the call moves on.
    pub(super) async fn wait_in_queue(&mut self, queue: Id) -> QueueOutcome {
        let plan = self.plan.as_ref().expect("routed");
        let tenant = plan.tenant.clone();
        let call_id = self.caller_call_id();
        let arrival = QueueArrival {
            tenant: tenant.clone(),
            queue: queue.clone(),
            call_id: call_id.clone(),
            node: self.b2b.config.node.clone(),
            caller: caller_number(&plan.caller_id),
            priority: self.queue_priority(&tenant, &queue, &plan.caller_id),
        };
        let mut entry = (None, None);
        match self
            .acd(Command::QueueJoin(Box::new(arrival.clone())))
            .await
        {
            Ok(Ok(Outcome::QueueJoined {
                position,
                expected_wait_secs,
            })) => {
                entry = (Some(position), expected_wait_secs);
                tracing::info!(%tenant, %queue, call_id, position, ?expected_wait_secs, "caller queued");
                self.visit(&queue, "ENTERQUEUE", format!("position={position}"));
            }
            // An earlier attempt of the same proposal joined already.
            Ok(Err(CommandError::AlreadyQueued { .. })) => {
                self.visit(&queue, "ENTERQUEUE", String::new());
            }
            Ok(Ok(Outcome::QueueRedirected { destination })) => {
                tracing::info!(%tenant, %queue, call_id, ?destination, "queue overflows at entry");
                self.visit(&queue, "EXITOVERFLOW", destination_data(&destination));
                self.close_visit("overflow", None);
                return QueueOutcome::Follow(destination);
            }
            Ok(Ok(other)) => {
                tracing::warn!(?other, "unexpected answer to a queue join");
                return self.refused(500, "Queue join failed");
            }
            Ok(Err(CommandError::QueueEmpty(_))) => {
                self.visit(&queue, "JOINEMPTY", String::new());
                self.close_visit("empty", None);
                return self.refused(480, &format!("No agent is logged in to queue {queue}"));
            }
            Ok(Err(CommandError::QueueFull { .. })) => {
                self.visit(&queue, "FULL", String::new());
                self.close_visit("full", None);
                return self.refused(486, &format!("Queue {queue} is full"));
            }
            Ok(Err(e)) => {
                tracing::warn!(%tenant, %queue, "queue join refused: {e}");
                return self.refused(480, &format!("Queue {queue} unavailable"));
            }
            Err(e) => {
                tracing::warn!(%tenant, %queue, "queue join not committed: {e}");
                return self.refused(503, "Queue unavailable (control plane not reachable)");
            }
        }
        self.waiting = Some(Waiting {
            tenant: tenant.clone(),
            queue,
            arrival,
            seen: false,
            rings: Vec::new(),
            entry_position: entry.0,
            entry_wait_secs: entry.1,
            next_announce: None,
            announcing: false,
        });
        if let Err(r) = self.answer_for_queue().await {
            // The caller cannot be answered: out of the queue again, then refused.
            self.leave_queue(LeaveReason::Abandoned).await;
            return self.refused(r.status, &r.reason);
        }
        self.announce(true).await;
        // The entry may have been offered before we looked.
        if let Some(outcome) = self.follow_entry().await {
            return outcome;
        }
        self.queue_loop().await
    }

    async fn queue_loop(&mut self) -> QueueOutcome {
        loop {
            let announce_at = self.waiting.as_ref().and_then(|w| w.next_announce);
            let wake = match (self.ok_retransmit_at(), announce_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = super::sleep_until(wake) => {
                    if let Err(end) = self.retransmit_ok().await {
                        return self.give_up(end).await;
                    }
                    if announce_at.is_some_and(|t| t <= tokio::time::Instant::now()) {
                        self.announce(false).await;
                    }
                    continue;
                }
            };
            let Some(input) = input else {
                return self.give_up(system("internal")).await;
            };
            match input {
                Input::QueueChanged => {
                    if let Some(outcome) = self.follow_entry().await {
                        return outcome;
                    }
                }
                Input::Response { key, response } => {
                    let Some(i) = self.fork_index(&key) else {
                        continue;
                    };
                    if let Some(outcome) = self.agent_response(i, response).await {
                        return outcome;
                    }
                }
                Input::TransactionFailed { key } => {
                    if let Some(i) = self.fork_index(&key)
                        && self.forks[i].status.is_none()
                    {
                        self.forks[i].status = Some(408);
                        self.report_finished_rings().await;
                    }
                }
                Input::Ack { .. } => self.a_acked = true,
                Input::Request { key, request, .. } => {
                    let from_caller =
                        DialogKey::of_incoming(&request).is_some_and(|k| k.local_tag == self.a.tag);
                    if !from_caller {
                        // Agents' phones have only early dialogs.
                        self.answer_early_request(key, request).await;
                        continue;
                    }
                    if request.method == Method::Invite {
                        self.a_acked = true;
                    }
                    // Re-INVITEs and UPDATEs are answered as in an established call.
                    if let Some(mut end) = self.in_dialog(key, request, true, None).await {
                        self.cancel_rings().await;
                        self.leave_queue(LeaveReason::Abandoned).await;
                        end.reason = "abandoned".into();
                        return QueueOutcome::Over(end);
                    }
                }
                Input::Media(MediaEvent::PlaybackFinished {
                    leg: LegSide::Caller,
                }) => self.announcement_over().await,
                Input::Media(MediaEvent::Inactive { .. }) if self.callback.is_some() => {
                    // Nobody is on the line until the callback: silence is expected.
                }
                Input::Media(MediaEvent::Inactive { idle_ms }) => {
                    tracing::info!(idle_ms, "no RTP from the queued caller: hanging up");
                    return self.give_up(system("rtp_timeout")).await;
                }
                Input::Media(MediaEvent::Dtmf {
                    leg: LegSide::Caller,
                    digit,
                    ..
                }) if self.callback.is_none() && self.callback_digit() == Some(digit) => {
                    if let Some(outcome) = self.request_callback().await {
                        return outcome;
                    }
                }
                Input::Hangup { reason } => return self.give_up(system(reason)).await,
                Input::Control(action) => self.control(action).await,
                Input::Cancel | Input::Media(_) => {}
            }
        }
    }

    /// Acts on the caller's queue entry as the cache has it now: rings the agents of a new
    /// offer, stops ringing the ones withdrawn, moves the call on an exit. `Some` when the
    /// wait is over.
    async fn follow_entry(&mut self) -> Option<QueueOutcome> {
        let w = self.waiting.as_ref()?;
        let call_id = self.caller_call_id();
        let Some(entry) = self.b2b.cache.queue_entry(&w.tenant, &call_id) else {
            if !w.seen {
                // The watch stream has not brought the join yet.
                return None;
            }
            return self.rejoin().await;
        };
        if let Some(w) = self.waiting.as_mut() {
            w.seen = true;
        }
        if let Some(exit) = entry.exit.clone() {
            self.cancel_rings().await;
            let wait = self.wait_data();
            match &exit {
                QueueExit::Timeout => {
                    self.queue_event("EXITWITHTIMEOUT", None, wait);
                    self.close_visit("timeout", None);
                }
                QueueExit::Overflow(d) => {
                    let data = format!("{} {wait}", destination_data(d));
                    self.queue_event("EXITOVERFLOW", None, data);
                    self.close_visit("overflow", None);
                }
            }
            self.leave_queue(LeaveReason::Moved).await;
            if self.callback.is_some() {
                // Nobody is on the line to move: the callback request lapses.
                return Some(QueueOutcome::Over(system("callback_expired")));
            }
            return Some(match exit {
                QueueExit::Timeout => {
                    self.bye_caller().await;
                    QueueOutcome::Over(system("queue_timeout"))
                }
                QueueExit::Overflow(destination) => QueueOutcome::Follow(destination),
            });
        }
        self.ring_offer(&entry).await;
        None
    }

    /// The entry the cache showed is gone though we did not leave: the control plane
    /// took the node for dead, or the cache was reset to an older replica's copy. Joins
    /// again: refused as already queued in the second case (wait for the cache), a new
    /// entry at the back in the first rather than losing the caller.
    async fn rejoin(&mut self) -> Option<QueueOutcome> {
        self.cancel_rings().await;
        let w = self.waiting.as_mut()?;
        w.seen = false;
        let arrival = w.arrival.clone();
        let queue = w.queue.clone();
        match self.acd(Command::QueueJoin(Box::new(arrival))).await {
            Ok(Ok(Outcome::QueueJoined { position, .. })) => {
                tracing::warn!(%queue, position, "queue entry was lost; the caller joined again");
                None
            }
            Ok(Err(CommandError::AlreadyQueued { .. })) => None,
            Ok(Ok(Outcome::QueueRedirected { destination })) => {
                self.waiting = None;
                Some(QueueOutcome::Follow(destination))
            }
            Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
                tracing::warn!(%queue, "queue entry lost and the caller could not join again");
                self.waiting = None;
                self.bye_caller().await;
                Some(QueueOutcome::Over(system("queue_lost")))
            }
        }
    }

    /// Rings the agents of the entry's offer not rung yet; cancels rings the offer no
    /// longer names.
    async fn ring_offer(&mut self, entry: &QueueEntry) {
        let Some(w) = self.waiting.as_mut() else {
            return;
        };
        let current = |r: &AgentRing| {
            entry
                .offer
                .as_ref()
                .is_some_and(|o| o.seq == r.offer && o.agents.contains(&r.agent))
        };
        let mut withdrawn = Vec::new();
        for r in w.rings.iter_mut().filter(|r| !r.done && !current(r)) {
            r.done = true;
            withdrawn.extend(r.forks.iter().copied());
        }
        let new: Vec<(Id, u64)> = match &entry.offer {
            Some(o) => o
                .agents
                .iter()
                .filter(|a| !w.rings.iter().any(|r| r.offer == o.seq && &r.agent == *a))
                .map(|a| (a.clone(), o.seq))
                .collect(),
            None => Vec::new(),
        };
        let tenant = w.tenant.clone();
        for i in withdrawn {
            self.cancel_fork(i).await;
        }
        for (agent, offer) in new {
            let targets = route::phone_targets(
                &CacheDirectory {
                    cache: &self.b2b.cache,
                    b2b: &self.b2b,
                },
                &tenant,
                &agent,
                unix_millis(SystemTime::now()),
            );
            let mut forks = Vec::new();
            for target in targets {
                if self.place(target).await {
                    forks.push(self.forks.len() - 1);
                }
            }
            tracing::debug!(%agent, offer, phones = forks.len(), "offering the caller");
            let unreachable = forks.is_empty();
            if let Some(w) = self.waiting.as_mut() {
                w.rings.push(AgentRing {
                    agent: agent.clone(),
                    offer,
                    forks,
                    done: unreachable,
                });
            }
            if unreachable {
                // Not registered anywhere: the ACD offers the caller to someone else.
                self.offer_failed(&agent, offer, OfferFailure::Unreachable)
                    .await;
            }
        }
    }

    /// A response from an agent's phone. `Some` when the wait is over.
    async fn agent_response(
        &mut self,
        i: usize,
        response: crate::sip::Response,
    ) -> Option<QueueOutcome> {
        let status = response.status;
        let ring = self
            .waiting
            .as_ref()
            .and_then(|w| w.rings.iter().position(|r| !r.done && r.forks.contains(&i)));
        let Some(ring) = ring else {
            // A phone we stopped ringing: an answer that crossed our CANCEL is hung up.
            self.late_response(i, response).await;
            return None;
        };
        let now_ms = unix_millis(SystemTime::now());
        match status {
            100..=199 => {
                self.forks[i].ringing_ms.get_or_insert(now_ms);
                None
            }
            200..=299 => {
                self.ack_fork(i, &response).await;
                self.forks[i].status = Some(status);
                let w = self.waiting.as_ref().expect("in a queue");
                let agent = w.rings[ring].agent.clone();
                let offer = w.rings[ring].offer;
                let tenant = w.tenant.clone();
                let call_id = self.caller_call_id();
                let command = Command::OfferAnswered {
                    tenant: tenant.clone(),
                    call_id,
                    agent: agent.clone(),
                    offer,
                };
                let accepted =
                    tokio::time::timeout(PROPOSE_DEADLINE, self.b2b.cluster.propose_one(command))
                        .await;
                match accepted {
                    Ok(Ok((Ok(_), _))) => {}
                    // An earlier attempt (its answer lost in a leader change) took the
                    // caller out of the queue for this agent already.
                    Ok(Ok((Err(CommandError::NotQueued { .. }), true))) => {}
                    Ok(Ok((Err(e), _))) => {
                        // The ACD withdrew the offer meanwhile: this agent does not get
                        // the caller.
                        tracing::info!(%agent, offer, "answer too late for the offer: {e}");
                        self.bye_fork(i).await;
                        self.end_ring(ring);
                        return None;
                    }
                    Ok(Err(_)) | Err(_) => {
                        // Unknown whether it committed: hang up the agent and, in case it
                        // did, end the agent's queue call so they are not left on it.
                        tracing::warn!(%agent, offer, "offer answer not committed");
                        self.bye_fork(i).await;
                        self.end_ring(ring);
                        self.b2b.agent_call_ended(tenant, agent, 0);
                        return None;
                    }
                }
                // Out of the queue: the agent has the call.
                self.waiting = None;
                self.queue_agent = Some((tenant.clone(), agent.clone()));
                let wait = self.wait_data();
                self.queue_event("CONNECT", Some(&agent), wait);
                self.close_visit("answered", Some(&agent));
                if self.callback.is_some() {
                    self.b2b.mark_busy(&tenant, &agent);
                    self.busy.push((tenant, agent));
                    return Some(QueueOutcome::Over(self.call_back(i, &response).await));
                }
                if !self.connect_agent(i, &response).await {
                    self.bye_fork(i).await;
                    self.bye_caller().await;
                    return Some(QueueOutcome::Over(system("agent_media")));
                }
                self.winner = Some(i);
                self.forks[i].answered_ms = Some(now_ms);
                self.b2b.mark_busy(&tenant, &agent);
                self.busy.push((tenant, agent));
                self.cancel_pending_forks(Some(COMPLETED_ELSEWHERE)).await;
                Some(QueueOutcome::Answered)
            }
            _ => {
                self.forks[i].status = Some(status);
                self.report_finished_rings().await;
                None
            }
        }
    }

    /// Gives the media engine the agent's answer and stops the music: caller and agent
    /// hear each other.
    pub(super) async fn connect_agent(&mut self, i: usize, ok: &crate::sip::Response) -> bool {
        let media = self.media.expect("anchored");
        let _ = self.b2b.media.stop_playback(media, LegSide::Caller);
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        let mut answered = self.b2b.media.answer(media, LegSide::Callee, &body).await;
        if matches!(
            answered,
            Err(crate::media::engine::MediaError::NoPendingOffer)
        ) {
            // A re-INVITE from the caller while waiting settled the offer state: offer
            // again (same ports, same codec) and take the agent's answer to it.
            answered = match self
                .b2b
                .media
                .offer(media, LegSide::Caller, &self.a_offer, None)
                .await
            {
                Ok(_) => self.b2b.media.answer(media, LegSide::Callee, &body).await,
                Err(e) => Err(e),
            };
        }
        match answered {
            Ok(_) => {
                self.answer_from = Some(i);
                true
            }
            Err(e) => {
                tracing::warn!("agent's answer refused by the media engine: {e}");
                false
            }
        }
    }

    /// Reports the rings whose phones all ended without an answer.
    async fn report_finished_rings(&mut self) {
        let Some(w) = self.waiting.as_ref() else {
            return;
        };
        let finished: Vec<(usize, Id, u64, OfferFailure)> = w
            .rings
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.done)
            .filter_map(|(n, r)| {
                let statuses: Vec<u16> = r
                    .forks
                    .iter()
                    .map(|&i| self.forks[i].status)
                    .collect::<Option<_>>()?;
                Some((n, r.agent.clone(), r.offer, failure_of(&statuses)))
            })
            .collect();
        for (n, agent, offer, failure) in finished {
            self.end_ring(n);
            self.offer_failed(&agent, offer, failure).await;
        }
    }

    fn end_ring(&mut self, n: usize) {
        if let Some(r) = self.waiting.as_mut().and_then(|w| w.rings.get_mut(n)) {
            r.done = true;
        }
    }

    async fn offer_failed(&mut self, agent: &Id, offer: u64, failure: OfferFailure) {
        let Some(w) = self.waiting.as_ref() else {
            return;
        };
        let command = Command::OfferFailed {
            tenant: w.tenant.clone(),
            call_id: self.caller_call_id(),
            agent: agent.clone(),
            offer,
            failure,
        };
        match self.acd(command).await {
            Ok(Ok(_)) => {
                tracing::debug!(%agent, offer, ?failure, "offer failed");
                let data = format!("failure={}", failure_name(failure));
                self.queue_event("RINGNOANSWER", Some(agent), data);
            }
            // Withdrawn already (rung out): the ACD moved on by itself.
            Ok(Err(e)) => tracing::debug!(%agent, offer, "offer failure not needed: {e}"),
            Err(e) => tracing::warn!(%agent, offer, "offer failure not committed: {e}"),
        }
    }

    async fn cancel_rings(&mut self) {
        let forks: Vec<usize> = self
            .waiting
            .as_mut()
            .map(|w| {
                w.rings
                    .iter_mut()
                    .flat_map(|r| {
                        r.done = true;
                        r.forks.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        for i in forks {
            self.cancel_fork(i).await;
        }
    }

    async fn cancel_fork(&mut self, i: usize) {
        let f = &mut self.forks[i];
        if f.status.is_some() || f.cancelled {
            return;
        }
        f.cancelled = true;
        f.current = false;
        let key = f.key.clone();
        self.core.cancel(&key, None).await;
    }

    /// Leaves the queue (once), if in one.
    pub(super) async fn leave_queue(&mut self, reason: LeaveReason) {
        let Some(w) = self.waiting.take() else {
            return;
        };
        if reason == LeaveReason::Abandoned {
            let wait = self.wait_data();
            self.queue_event("ABANDON", None, wait);
            self.close_visit("abandoned", None);
        }
        let command = Command::QueueLeave {
            tenant: w.tenant.clone(),
            call_id: self.caller_call_id(),
            reason,
        };
        match self.acd(command).await {
            Ok(Ok(_)) | Ok(Err(CommandError::NotQueued { .. })) => {}
            Ok(Err(e)) => tracing::warn!(queue = %w.queue, "queue leave refused: {e}"),
            Err(e) => tracing::warn!(queue = %w.queue, "queue leave not committed: {e}"),
        }
    }

    /// The call ends while waiting (node stopping, media timeout, no ACK): the caller is
    /// hung up and leaves the queue.
    async fn give_up(&mut self, ending: Ending) -> QueueOutcome {
        self.cancel_rings().await;
        self.leave_queue(LeaveReason::Abandoned).await;
        self.bye_caller().await;
        QueueOutcome::Over(ending)
    }

    fn refused(&self, status: u16, reason: &str) -> QueueOutcome {
        QueueOutcome::Refused(Ending {
            status,
            by: HangupBy::System,
            reason: reason.to_owned(),
        })
    }

    /// Answers the caller (once) and starts the music on hold.
    async fn answer_for_queue(&mut self) -> Result<(), route::Reject> {
        self.answer_caller().await?;
        let media = self.media.expect("anchored");
        if self.callback_digit().is_some()
            && let Err(e) = self
                .b2b
                .media
                .detect_inband_dtmf(media, LegSide::Caller, true)
        {
            tracing::debug!("in-band DTMF detection not started: {e}");
        }
        let moh = self.b2b.music_on_hold.clone();
        if let Err(e) = self.b2b.media.play(media, LegSide::Caller, moh, true).await {
            tracing::debug!("music on hold not started: {e}");
        }
        Ok(())
    }

    /// Answers the caller ourselves (once), with one codec, so whichever phone answers
    /// later (a queue's agent) can be bridged without transcoding.
    pub(super) async fn answer_caller(&mut self) -> Result<(), route::Reject> {
        if self.caller_answered {
            return Ok(());
        }
        let media = self.media.expect("anchored");
        let offer = crate::b2bua::sdp_policy::first_codec_only(&self.a_offer)
            .map_err(|e| reject(488, &e.to_string()))?;
        let local = self
            .b2b
            .media
            .answer_locally(media, LegSide::Caller, &offer)
            .map_err(super::media_reject)?;
        // What phones rung later are offered: the caller's one codec, at our far-side
        // port.
        self.b_offer = self
            .b2b
            .media
            .offer(media, LegSide::Caller, &offer, None)
            .await
            .map_err(super::media_reject)?;
        self.a_offer = offer;
        self.a_answer = Some(local.sdp.clone());
        self.answer_ms = Some(unix_millis(SystemTime::now()));
        self.reply(200, "OK", Some(&local.sdp)).await;
        Ok(())
    }

    /// Tells the waiting caller their position and expected wait (and the callback key),
    /// over the music, which resumes after; schedules the next announcement. `first`: at
    /// entry, with the control plane's figures; later the position is the node's view
    /// and the expected wait the entry's scaled by position now / position at entry.
    async fn announce(&mut self, first: bool) {
        let Some(w) = self.waiting.as_ref() else {
            return;
        };
        let Some(queue) = self.b2b.cache.queue(&w.tenant, &w.queue) else {
            return;
        };
        let (position, wait) = if first {
            (w.entry_position, w.entry_wait_secs)
        } else {
            let now = self
                .b2b
                .cache
                .queue_position(&w.tenant, &w.queue, &self.caller_call_id());
            let wait = match (now, w.entry_position, w.entry_wait_secs) {
                (Some(p), Some(p0), Some(s)) if p0 > 0 => Some(s.saturating_mul(p) / p0),
                _ => None,
            };
            (now, wait)
        };
        let next = (queue.announce_every_secs > 0).then(|| {
            tokio::time::Instant::now()
                + std::time::Duration::from_secs(u64::from(queue.announce_every_secs))
        });
        if let Some(w) = self.waiting.as_mut() {
            w.next_announce = next;
        }
        if !queue.announce || self.callback.is_some() {
            return;
        }
        let lang = queue.announce_language;
        let phrases = crate::b2bua::announce::phrases(lang, position, wait, queue.callback_digit);
        let Some(prompt) = crate::b2bua::announce::prompt(lang, &phrases) else {
            return;
        };
        let media = self.media.expect("anchored");
        match self
            .b2b
            .media
            .play(media, LegSide::Caller, prompt, false)
            .await
        {
            Ok(()) => {
                tracing::debug!(?position, ?wait, "announced to the waiting caller");
                if let Some(w) = self.waiting.as_mut() {
                    w.announcing = true;
                }
            }
            Err(e) => tracing::debug!("announcement not played: {e}"),
        }
    }

    /// The announcement ended: the music resumes.
    async fn announcement_over(&mut self) {
        let Some(w) = self.waiting.as_mut().filter(|w| w.announcing) else {
            return;
        };
        w.announcing = false;
        if self.callback.is_some() {
            return;
        }
        let media = self.media.expect("anchored");
        let moh = self.b2b.music_on_hold.clone();
        if let Err(e) = self.b2b.media.play(media, LegSide::Caller, moh, true).await {
            tracing::debug!("music on hold not resumed: {e}");
        }
    }

    /// The key the queue the caller waits in takes for a callback request.
    fn callback_digit(&self) -> Option<char> {
        let w = self.waiting.as_ref()?;
        self.b2b.cache.queue(&w.tenant, &w.queue)?.callback_digit
    }

    /// The priority a caller queues with: the queue's VIP list, else 0.
    fn queue_priority(&self, tenant: &Id, queue: &Id, caller: &str) -> u8 {
        self.b2b
            .cache
            .queue(tenant, queue)
            .and_then(|q| q.vip_callers.get(&route::normalize(caller)).copied())
            .unwrap_or(0)
    }

    /// Starts the record of a visit to `queue` with its first event.
    fn visit(&mut self, queue: &Id, event: &str, data: String) {
        let now = unix_millis(SystemTime::now());
        self.queue_visits.push(crate::cdr::QueueVisit {
            queue: queue.to_string(),
            joined_ms: now,
            left_ms: 0,
            outcome: String::new(),
            agent: None,
            events: Vec::new(),
        });
        self.queue_event(event, None, data);
    }

    /// Adds an event to the current queue visit.
    pub(super) fn queue_event(&mut self, event: &str, agent: Option<&Id>, data: String) {
        if let Some(v) = self.queue_visits.last_mut() {
            v.events.push(crate::cdr::QueueEvent {
                at_ms: unix_millis(SystemTime::now()),
                event: event.to_owned(),
                agent: agent.map(Id::to_string),
                data,
            });
        }
    }

    /// Closes the current queue visit with its outcome.
    fn close_visit(&mut self, outcome: &str, agent: Option<&Id>) {
        if let Some(v) = self.queue_visits.last_mut()
            && v.outcome.is_empty()
        {
            v.outcome = outcome.to_owned();
            v.left_ms = unix_millis(SystemTime::now());
            v.agent = agent.map(Id::to_string);
        }
    }

    /// `wait_secs=N` since the current visit began.
    fn wait_data(&self) -> String {
        let joined = self.queue_visits.last().map_or(0, |v| v.joined_ms);
        let wait = unix_millis(SystemTime::now()).saturating_sub(joined) / 1000;
        format!("wait_secs={wait}")
    }

    /// The caller's Call-ID: the queue entry's key.
    pub(super) fn caller_call_id(&self) -> String {
        self.a.invite.call_id().unwrap_or_default().to_owned()
    }

    /// Commits one ACD command.
    async fn acd(
        &self,
        command: Command,
    ) -> Result<Result<Outcome, CommandError>, crate::cluster::ProposeError> {
        match tokio::time::timeout(PROPOSE_DEADLINE, self.b2b.cluster.propose_one(command)).await {
            Ok(r) => r.map(|(result, _)| result),
            Err(_) => Err(crate::cluster::ProposeError::Unavailable(
                PROPOSE_DEADLINE,
                "no answer from the control plane".into(),
            )),
        }
    }
}

/// The caller's number as the queue keeps it (for screen pops): at most 64 characters
/// of a SIP user part.
fn caller_number(caller_id: &str) -> String {
    caller_id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(tongdai_control_plane::model::MAX_CALLER_LEN)
        .collect()
}

/// A destination as queue event data: `destination=queue:backup`.
fn destination_data(d: &Destination) -> String {
    format!("destination={}", super::destination_label(d))
}

fn failure_name(f: OfferFailure) -> &'static str {
    match f {
        OfferFailure::NoAnswer => "no_answer",
        OfferFailure::Busy => "busy",
        OfferFailure::Refused => "refused",
        OfferFailure::Unreachable => "unreachable",
    }
}

/// Why an agent's phones did not take an offer, from their final statuses.
fn failure_of(statuses: &[u16]) -> OfferFailure {
    if statuses.iter().any(|s| matches!(s, 486 | 600)) {
        OfferFailure::Busy
    } else if statuses.contains(&603) {
        OfferFailure::Refused
    } else if statuses.iter().all(|s| *s >= 500 || *s == 408) {
        OfferFailure::Unreachable
    } else if statuses.iter().all(|s| matches!(s, 480 | 487)) {
        OfferFailure::NoAnswer
    } else {
        OfferFailure::Refused
    }
}

fn system(reason: &str) -> Ending {
    Ending {
        status: 200,
        by: HangupBy::System,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_from_the_phones_statuses() {
        assert_eq!(failure_of(&[486]), OfferFailure::Busy);
        assert_eq!(failure_of(&[480, 600]), OfferFailure::Busy);
        assert_eq!(failure_of(&[503, 408]), OfferFailure::Unreachable);
        assert_eq!(failure_of(&[480]), OfferFailure::NoAnswer);
        assert_eq!(failure_of(&[603]), OfferFailure::Refused);
    }

    #[test]
    fn caller_numbers_are_bounded_and_printable() {
        assert_eq!(caller_number("0909 123"), "0909123");
        assert_eq!(caller_number(&"9".repeat(100)).len(), 64);
    }
}
