//! Ringing: each step's targets at once, until one answers, the step's ring time runs
//! out, or every target fails; then the next step or the step's fallback.

use std::time::SystemTime;

use super::queue::QueueOutcome;
use super::{Call, Ending, HangupBy, Input};
use crate::b2bua::directory::CacheDirectory;
use crate::b2bua::route::{self, MAX_EXPANSIONS, Step};
use crate::media::relay::LegSide;
use crate::sip::SipHeaders;
use crate::sip::auth::unix_millis;

/// RFC 3326 Reason for the forks that lost to an answer elsewhere.
pub const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

pub(super) enum Outcome {
    Answered,
    Failed(Ending),
    Cancelled,
    /// Over, with nothing more to send the caller (they hung up while queued).
    Over(Ending),
}

/// How a step ended without an answer.
pub(super) enum StepEnd {
    Busy,
    NoAnswer,
    /// Every target failed with 5xx, 408 or no response.
    Failure(u16),
    Other(u16),
}

impl Call {
    pub(super) async fn hunt(&mut self) -> Outcome {
        let mut last = StepEnd::NoAnswer;
        loop {
            let Some(step) = self.steps.pop_front() else {
                return Outcome::Failed(self.failure(&last));
            };
            if let Some(queue) = step.queue {
                match self.wait_in_queue(queue).await {
                    QueueOutcome::Answered => return Outcome::Answered,
                    QueueOutcome::Over(ending) => return Outcome::Over(ending),
                    QueueOutcome::Refused(ending) => return Outcome::Failed(ending),
                    QueueOutcome::Follow(destination) => {
                        if let Err(ending) = self.follow(&destination) {
                            return Outcome::Failed(ending);
                        }
                        continue;
                    }
                }
            }
            let rung = self.ring(&step).await;
            self.release_trunks(false);
            match rung {
                Ok(()) => return Outcome::Answered,
                Err(RingError::Cancelled) => return Outcome::Cancelled,
                Err(RingError::Ended(end)) => {
                    let next = match &end {
                        StepEnd::Busy => step.after_busy.clone(),
                        StepEnd::NoAnswer | StepEnd::Other(_) => step.after_no_answer.clone(),
                        StepEnd::Failure(_) if !step.on_failure.is_empty() => {
                            for s in step.on_failure.iter().rev() {
                                self.steps.push_front(s.clone());
                            }
                            None
                        }
                        StepEnd::Failure(_) => step.after_no_answer.clone(),
                    };
                    if let Some(destination) = next
                        && let Err(ending) = self.follow(&destination)
                    {
                        return Outcome::Failed(ending);
                    }
                    last = end;
                }
            }
        }
    }

    /// Puts the steps of `destination` first (a no-answer destination, an overflow).
    fn follow(
        &mut self,
        destination: &tongdai_control_plane::model::Destination,
    ) -> Result<(), Ending> {
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            return Err(Ending {
                status: 482,
                by: HangupBy::System,
                reason: "Loop Detected (too many forwards)".into(),
            });
        }
        let plan = self.plan.as_ref().expect("routed");
        let dir = CacheDirectory {
            cache: &self.b2b.cache,
            b2b: &self.b2b,
        };
        let steps = route::expand(
            &dir,
            &plan.tenant,
            destination,
            unix_millis(SystemTime::now()),
        )
        .map_err(|r| Ending {
            status: r.status,
            by: HangupBy::System,
            reason: r.reason,
        })?;
        for s in steps.into_iter().rev() {
            self.steps.push_front(s);
        }
        Ok(())
    }

    fn failure(&self, last: &StepEnd) -> Ending {
        let (status, reason) = match last {
            StepEnd::Busy => (486, "Busy Here".to_owned()),
            StepEnd::NoAnswer => (480, "No answer".to_owned()),
            StepEnd::Failure(s) | StepEnd::Other(s) => {
                (*s, crate::sip::message::default_reason(*s).to_owned())
            }
        };
        Ending {
            status,
            by: HangupBy::System,
            reason,
        }
    }

    /// Rings one step. `Ok` when a fork answered and the caller has its 200.
    pub(super) async fn ring(&mut self, step: &Step) -> Result<(), RingError> {
        for f in &mut self.forks {
            f.current = false;
        }
        let mut placed = 0;
        for target in &step.targets {
            if self.place(target.clone()).await {
                placed += 1;
            }
        }
        if placed == 0 {
            return Err(RingError::Ended(StepEnd::Failure(503)));
        }
        let deadline = tokio::time::Instant::now() + step.ring;
        loop {
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = tokio::time::sleep_until(deadline) => {
                    self.cancel_pending_forks(None).await;
                    return Err(RingError::Ended(StepEnd::NoAnswer));
                }
            };
            match input {
                Some(Input::Response { key, response }) => {
                    let Some(i) = self.fork_index(&key) else {
                        continue;
                    };
                    if !self.forks[i].current {
                        self.late_response(i, response).await;
                        continue;
                    }
                    if self.on_fork_response(i, response).await? {
                        return Ok(());
                    }
                }
                Some(Input::TransactionFailed { key }) => {
                    if let Some(i) = self.fork_index(&key)
                        && self.forks[i].status.is_none()
                    {
                        self.forks[i].status = Some(408);
                    }
                }
                Some(Input::Cancel) => {
                    self.cancel_pending_forks(None).await;
                    return Err(RingError::Cancelled);
                }
                Some(Input::Request { key, request, .. }) => {
                    // Before the answer only the callees have dialogs (early).
                    self.answer_early_request(key, request).await;
                }
                Some(Input::Hangup { reason }) => {
                    self.cancel_pending_forks(None).await;
                    return Err(RingError::Ended(StepEnd::Other(if reason == "drain" {
                        503
                    } else {
                        500
                    })));
                }
                Some(Input::Control(action)) => self.control(action).await,
                Some(Input::Ack { .. }) => self.a_acked = true,
                Some(Input::Media(_) | Input::QueueChanged) => {}
                None => return Err(RingError::Cancelled),
            }
            let current: Vec<_> = self.forks.iter().filter(|f| f.current).collect();
            if current.iter().all(|f| f.status.is_some()) {
                let statuses: Vec<u16> = current.iter().filter_map(|f| f.status).collect();
                return Err(RingError::Ended(step_end(&statuses)));
            }
        }
    }

    /// One response on a ringing fork; `Ok(true)` when it answered the call.
    async fn on_fork_response(
        &mut self,
        i: usize,
        response: crate::sip::Response,
    ) -> Result<bool, RingError> {
        let status = response.status;
        let now_ms = unix_millis(SystemTime::now());
        match status {
            100 => Ok(false),
            101..=199 if self.caller_answered => {
                // The caller hears music on hold from the queue meanwhile.
                self.forks[i].ringing_ms.get_or_insert(now_ms);
                Ok(false)
            }
            101..=199 => {
                self.forks[i].ringing_ms.get_or_insert(now_ms);
                self.ringing_ms.get_or_insert(now_ms);
                let early_sdp = has_sdp(&response);
                if early_sdp && self.answer_from.is_none() {
                    // Early media: the first fork with SDP is heard.
                    let body = String::from_utf8_lossy(&response.body).into_owned();
                    let media = self.media.expect("anchored");
                    match self.b2b.media.answer(media, LegSide::Callee, &body).await {
                        Ok(sdp) => {
                            self.answer_from = Some(i);
                            self.a_answer = Some(sdp.clone());
                            self.reply(183, "Session Progress", Some(&sdp)).await;
                            self.ringing_sent = true;
                        }
                        Err(e) => tracing::debug!("early media refused: {e}"),
                    }
                } else if !self.ringing_sent {
                    self.ringing_sent = true;
                    self.reply(180, "Ringing", None).await;
                }
                Ok(false)
            }
            200..=299 => {
                self.ack_fork(i, &response).await;
                self.forks[i].status = Some(status);
                if has_sdp(&response) {
                    self.forks[i].answer_sdp =
                        Some(String::from_utf8_lossy(&response.body).into_owned());
                }
                if !self.apply_answer(i, &response).await {
                    self.bye_fork(i).await;
                    self.forks[i].status = Some(488);
                    return Ok(false);
                }
                self.winner = Some(i);
                self.forks[i].answered_ms = Some(now_ms);
                if self.caller_answered {
                    // Answered by the queue before: the caller has our SDP already.
                    let media = self.media.expect("anchored");
                    let _ = self.b2b.media.stop_playback(media, LegSide::Caller);
                } else {
                    self.answer_ms = Some(now_ms);
                }
                if let (Some(plan), Some(ext)) =
                    (self.plan.as_ref(), self.forks[i].target.extension.clone())
                {
                    let tenant = plan.tenant.clone();
                    self.b2b.mark_busy(&tenant, &ext);
                    self.busy.push((tenant, ext));
                }
                self.cancel_pending_forks(Some(COMPLETED_ELSEWHERE)).await;
                if !self.caller_answered {
                    let sdp = self.a_answer.clone();
                    self.reply(200, "OK", sdp.as_deref()).await;
                }
                Ok(true)
            }
            300..=399 => {
                // Redirect: ring the first Contact it names, through the same leg kind.
                self.forks[i].status = Some(status);
                let contact = response.contacts().ok().and_then(|c| match c {
                    crate::sip::ContactList::Addrs(list) => list.into_iter().next(),
                    crate::sip::ContactList::Wildcard => None,
                });
                let redirects = self
                    .forks
                    .iter()
                    .filter(|f| f.target.label.starts_with("redirect:"))
                    .count();
                if let Some(contact) = contact
                    && redirects < 3
                {
                    let mut target = self.forks[i].target.clone();
                    target.label = format!("redirect:{}", target.label);
                    target.uri = contact.uri.as_str().to_owned();
                    if let Some(host) = contact.uri.host_parsed() {
                        let port = contact.uri.port().unwrap_or(5060);
                        target.send_to = crate::b2bua::route::SendTo::HostPort(match host {
                            crate::sip::Host::Ip(std::net::IpAddr::V6(v6)) => {
                                format!("[{v6}]:{port}")
                            }
                            _ => format!("{}:{port}", contact.uri.host().trim_matches(['[', ']'])),
                        });
                    }
                    self.place(target).await;
                }
                Ok(false)
            }
            _ => {
                self.forks[i].status = Some(status);
                Ok(false)
            }
        }
    }

    /// Gives the media engine the answering fork's SDP (unless it already has it from that
    /// fork's early media) and keeps our answer for the caller.
    async fn apply_answer(&mut self, i: usize, ok: &crate::sip::Response) -> bool {
        let media = self.media.expect("anchored");
        if !has_sdp(ok) {
            return self.answer_from == Some(i) && self.a_answer.is_some();
        }
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        if self.answer_from.is_some() {
            // The engine answered an earlier offer: offer again (same ports) to take
            // this fork's answer.
            if let Err(e) = self
                .b2b
                .media
                .offer(media, LegSide::Caller, &self.a_offer, None)
                .await
            {
                tracing::debug!("re-offer failed: {e}");
                return false;
            }
        }
        match self.b2b.media.answer(media, LegSide::Callee, &body).await {
            Ok(sdp) => {
                self.answer_from = Some(i);
                if !self.caller_answered {
                    self.a_answer = Some(sdp);
                }
                true
            }
            Err(e) => {
                tracing::debug!("callee's answer refused: {e}");
                false
            }
        }
    }

    /// CANCELs every fork without a final response (with `reason` in the CANCEL).
    pub(super) async fn cancel_pending_forks(&mut self, reason: Option<&str>) {
        for i in 0..self.forks.len() {
            let f = &mut self.forks[i];
            if f.status.is_some() || f.cancelled {
                continue;
            }
            f.cancelled = true;
            f.current = false;
            let key = f.key.clone();
            self.core.cancel(&key, reason).await;
        }
    }
}

pub(super) enum RingError {
    Cancelled,
    Ended(StepEnd),
}

impl From<RingError> for Outcome {
    fn from(e: RingError) -> Outcome {
        match e {
            RingError::Cancelled => Outcome::Cancelled,
            RingError::Ended(_) => Outcome::Failed(Ending {
                status: 480,
                by: HangupBy::System,
                reason: "No answer".into(),
            }),
        }
    }
}

fn step_end(statuses: &[u16]) -> StepEnd {
    if !statuses.is_empty() && statuses.iter().all(|s| matches!(s, 486 | 600)) {
        return StepEnd::Busy;
    }
    if statuses.iter().any(|s| matches!(s, 486 | 600)) {
        return StepEnd::Busy;
    }
    if !statuses.is_empty() && statuses.iter().all(|s| *s >= 500 || *s == 408) {
        return StepEnd::Failure(statuses.iter().copied().min().unwrap_or(503));
    }
    if statuses.iter().all(|s| matches!(s, 480 | 487 | 408)) {
        return StepEnd::NoAnswer;
    }
    StepEnd::Other(
        statuses
            .iter()
            .copied()
            .filter(|s| (400..500).contains(s))
            .min()
            .unwrap_or(480),
    )
}

fn has_sdp(r: &crate::sip::Response) -> bool {
    !r.body.is_empty()
        && r.content_type()
            .ok()
            .flatten()
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_outcomes_follow_the_statuses() {
        assert!(matches!(step_end(&[486]), StepEnd::Busy));
        assert!(matches!(step_end(&[486, 480]), StepEnd::Busy));
        assert!(matches!(step_end(&[503]), StepEnd::Failure(503)));
        assert!(matches!(step_end(&[408, 502]), StepEnd::Failure(408)));
        assert!(matches!(step_end(&[480, 487]), StepEnd::NoAnswer));
        assert!(matches!(step_end(&[404, 403]), StepEnd::Other(403)));
    }
}
