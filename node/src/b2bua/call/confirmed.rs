//! The established call: the caller's ACK (our 2xx retransmitted until it comes), BYE from
//! either side, hold and resume answered by us with music on hold to the held party,
//! the session timer and the RTP inactivity timeout.

use std::time::Duration;

use tokio::time::Instant;

use super::{Call, Ending, HangupBy, Input};
use crate::media::relay::{LegSide, MediaEvent};
use crate::sip::dialog::{DialogError, DialogKey};
use crate::sip::transaction::TransactionKey;
use crate::sip::{Method, Request, Response, SipHeaders};

impl Call {
    pub(super) async fn confirmed(&mut self) -> Ending {
        let winner = self.winner.expect("answered");
        let mut session_deadline = self.session_deadline();
        loop {
            let wake = if self.a_acked {
                session_deadline
            } else {
                self.ok_retransmit_at()
            };
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = super::sleep_until(wake) => {
                    if !self.a_acked {
                        if let Err(end) = self.retransmit_ok().await {
                            self.bye_fork(winner).await;
                            self.bye_caller().await;
                            return end;
                        }
                        continue;
                    }
                    self.bye_fork(winner).await;
                    self.bye_caller().await;
                    return system("session_timer");
                }
            };
            let Some(input) = input else {
                return system("internal");
            };
            match input {
                Input::Ack { .. } => self.a_acked = true,
                Input::Request {
                    key,
                    request,
                    source: _,
                } => {
                    let from_caller =
                        DialogKey::of_incoming(&request).is_some_and(|k| k.local_tag == self.a.tag);
                    if from_caller && request.method == Method::Invite {
                        self.a_acked = true;
                    }
                    if let Some(end) = self
                        .in_dialog(key, request, from_caller, Some(winner))
                        .await
                    {
                        return end;
                    }
                    if from_caller {
                        session_deadline = self.session_deadline();
                    }
                }
                Input::Response { key, response } => {
                    if let Some(i) = self.fork_index(&key) {
                        if i == winner && (200..300).contains(&response.status) {
                            // A retransmitted 2xx: our ACK was lost.
                            self.ack_fork(i, &response).await;
                        } else if i != winner {
                            self.late_response(i, response).await;
                        }
                    }
                }
                Input::Media(MediaEvent::Inactive { idle_ms }) => {
                    tracing::info!(idle_ms, "no RTP from either side: hanging up");
                    self.bye_fork(winner).await;
                    self.bye_caller().await;
                    return system("rtp_timeout");
                }
                Input::Hangup { reason } => {
                    self.bye_fork(winner).await;
                    self.bye_caller().await;
                    return system(reason);
                }
                Input::Control(action) => self.control(action).await,
                Input::Cancel
                | Input::TransactionFailed { .. }
                | Input::Media(_)
                | Input::QueueChanged => {}
            }
        }
    }

    fn session_deadline(&self) -> Option<Instant> {
        self.session_expires
            .map(|s| Instant::now() + Duration::from_secs(u64::from(s)))
    }

    /// A request in the call's dialogs. `Some` when it ended the call.
    pub(super) async fn in_dialog(
        &mut self,
        key: TransactionKey,
        request: Request,
        from_caller: bool,
        winner: Option<usize>,
    ) -> Option<Ending> {
        // The sender's dialog: the caller's, or the answering callee's.
        let checked = if from_caller {
            self.a
                .dialog
                .as_mut()
                .map(|d| d.check_remote_cseq(&request))
        } else {
            winner
                .and_then(|w| self.forks[w].dialog.as_mut())
                .filter(|d| {
                    DialogKey::of_incoming(&request).is_some_and(|k| k.local_tag == d.local_tag)
                })
                .map(|d| d.check_remote_cseq(&request))
        };
        match checked {
            None => {
                self.respond(&key, &request, 481, "Call/Transaction Does Not Exist")
                    .await;
                return None;
            }
            Some(Err(DialogError::CSeqOutOfOrder { .. })) => {
                self.respond(
                    &key,
                    &request,
                    500,
                    "Request out of order (sequence number not higher than the last)",
                )
                .await;
                return None;
            }
            Some(Err(e)) => {
                self.respond(&key, &request, 400, &e.to_string()).await;
                return None;
            }
            Some(Ok(())) => {}
        }
        match request.method {
            Method::Bye => {
                self.respond(&key, &request, 200, "OK").await;
                if from_caller {
                    if let Some(w) = winner {
                        self.bye_fork(w).await;
                    }
                    Some(Ending {
                        status: 200,
                        by: HangupBy::Caller,
                        reason: "bye".into(),
                    })
                } else {
                    self.bye_caller().await;
                    Some(Ending {
                        status: 200,
                        by: HangupBy::Callee,
                        reason: "bye".into(),
                    })
                }
            }
            Method::Invite | Method::Update => {
                self.reoffer(key, request, from_caller).await;
                None
            }
            Method::Ack => None,
            _ => {
                // INFO, OPTIONS, NOTIFY...: acknowledged, not relayed.
                self.respond(&key, &request, 200, "OK").await;
                None
            }
        }
    }

    /// A re-INVITE or UPDATE: answered by us from the media engine. Hold (sendonly,
    /// inactive) starts music on hold toward the other party; resume stops it.
    pub(super) async fn reoffer(
        &mut self,
        key: TransactionKey,
        request: Request,
        from_caller: bool,
    ) {
        let side = if from_caller {
            LegSide::Caller
        } else {
            LegSide::Callee
        };
        let media = self.media.expect("anchored");
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let answer = if body.trim().is_empty() {
            // No offer: ours (the last we sent) is the offer, the ACK carries the answer.
            let last = if from_caller {
                self.a_answer.clone()
            } else {
                Some(self.b_offer.clone())
            };
            let Some(sdp) = last else {
                self.respond(&key, &request, 488, "Not Acceptable Here")
                    .await;
                return;
            };
            sdp
        } else {
            match self.b2b.media.answer_locally(media, side, &body) {
                Ok(a) => {
                    let other = side.other();
                    if a.on_hold && !self.on_hold[side.index()] {
                        let moh = self.b2b.music_on_hold.clone();
                        if let Err(e) = self.b2b.media.play(media, other, moh, true).await {
                            tracing::debug!("music on hold not started: {e}");
                        }
                    } else if !a.on_hold && self.on_hold[side.index()] {
                        let _ = self.b2b.media.stop_playback(media, other);
                    }
                    self.on_hold[side.index()] = a.on_hold;
                    self.hold_changed();
                    a.sdp
                }
                Err(crate::media::engine::MediaError::Sdp(why)) => {
                    let why = format!("Malformed SDP: {why}");
                    self.respond(&key, &request, 400, &why).await;
                    return;
                }
                Err(e) => {
                    self.respond(&key, &request, 488, &format!("Not Acceptable Here: {e}"))
                        .await;
                    return;
                }
            }
        };
        let mut r = Response::to_request(&request, 200, None);
        let peer = if from_caller {
            self.a.peer
        } else {
            self.forks[self.winner.expect("answered")].peer
        };
        r.headers
            .push(crate::sip::HeaderName::Contact, self.contact(peer));
        if from_caller && let Some(secs) = self.session_expires {
            r.headers.push(
                crate::sip::HeaderName::Other("Session-Expires".into()),
                format!("{secs};refresher=uac"),
            );
        }
        r.headers
            .push(crate::sip::HeaderName::ContentType, "application/sdp");
        r.body = answer.into_bytes().into();
        self.core.respond(&key, r).await;
    }

    pub(super) async fn respond(
        &self,
        key: &TransactionKey,
        request: &Request,
        status: u16,
        reason: &str,
    ) {
        let mut r = Response::to_request(request, status, None);
        r.reason = crate::sip::parse::sanitize_reason(reason);
        let _ = request.call_id();
        self.core.respond(key, r).await;
    }
}

fn system(reason: &str) -> Ending {
    Ending {
        status: 200,
        by: HangupBy::System,
        reason: reason.to_owned(),
    }
}
