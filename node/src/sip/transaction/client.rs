//! Client transactions: INVITE (RFC 3261 §17.1.1 + RFC 6026) and non-INVITE (§17.1.2),
//! and the requests the client side builds itself (ACK for non-2xx, CANCEL).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Ctx, Event, State, due, earliest};
use crate::sip::message::{HeaderName, Method, Request, Response};

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
/// top Via, From, Call-ID, CSeq number and Route set, with the To of the response (it
/// carries the UAS's tag).
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Request {
    let mut ack = request_like(invite, Method::Ack);
    let to = response
        .headers
        .get_by(&HeaderName::To)
        .or_else(|| invite.headers.get_by(&HeaderName::To));
    if let Some(to) = to {
        ack.headers.set(HeaderName::To, to);
    }
    ack
}

/// The CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
/// CSeq number, top Via (so the branch matches) and Route set.
pub fn cancel_for(invite: &Request) -> Request {
    request_like(invite, Method::Cancel)
}

/// [`cancel_for`] with a `Reason` header (RFC 3326), e.g.
/// `SIP;cause=200;text="Call completed elsewhere"` for the losers of a forked call.
pub fn cancel_with_reason(invite: &Request, reason: Option<&str>) -> Request {
    let mut cancel = cancel_for(invite);
    if let Some(reason) = reason {
        cancel.headers.push(HeaderName::Reason, reason);
    }
    cancel
}

/// A request of `method` sharing the INVITE's identity fields, in the usual header order.
fn request_like(invite: &Request, method: Method) -> Request {
    let mut req = Request::new(method.clone(), invite.uri.clone());
    if let Ok(via) = super::key::top_via_text(&invite.headers) {
        req.headers.push(HeaderName::Via, via);
    }
    req.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::To, HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get_by(&name) {
            req.headers.push(name, v);
        }
    }
    let seq = crate::sip::SipHeaders::cseq(invite).map_or(0, |c| c.seq);
    req.headers
        .push(HeaderName::CSeq, format!("{seq} {method}"));
    for route in invite.headers.get_all_by(HeaderName::Route) {
        req.headers.push(HeaderName::Route, route);
    }
    req
}

fn is_final(status: u16) -> bool {
    status >= 200
}

/// Client INVITE transaction: Calling -> Proceeding -> Completed (non-2xx) or
/// Accepted (2xx) -> Terminated.
#[derive(Debug)]
pub(super) struct ClientInvite {
    pub(super) state: State,
    /// Kept to build the ACK and a CANCEL.
    pub(super) invite: Request,
    wire: Bytes,
    ack: Option<Bytes>,
    /// The TU asked to cancel before any provisional response: send it on the first one
    /// (RFC 3261 §9.1 forbids sending it earlier).
    pub(super) cancel_pending: bool,
    /// The `Reason` header value for that CANCEL (RFC 3326), if the TU gave one.
    pub(super) cancel_reason: Option<String>,
    timer_a: Option<Instant>,
    interval_a: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
}

impl ClientInvite {
    pub(super) fn start(invite: Request, ctx: &mut Ctx<'_>) -> ClientInvite {
        let wire = Bytes::from(invite.to_bytes());
        ctx.transmit(wire.clone());
        let t1 = ctx.timers.t1;
        ClientInvite {
            state: State::Calling,
            invite,
            wire,
            ack: None,
            cancel_pending: false,
            cancel_reason: None,
            timer_a: if ctx.reliable() { None } else { ctx.after(t1) },
            interval_a: t1,
            timer_b: Some(ctx.now + ctx.timers.timeout()),
            timer_d: None,
            timer_m: None,
        }
    }

    pub(super) fn on_response(&mut self, response: Response, ctx: &mut Ctx<'_>) {
        let status = response.status;
        match self.state {
            State::Calling | State::Proceeding if !is_final(status) => {
                self.state = State::Proceeding;
                // Retransmission and Timer B belong to Calling only; from here the TU's
                // own timer (e.g. a proxy's Timer C) bounds the wait.
                self.timer_a = None;
                self.timer_b = None;
                ctx.emit(Event::Response {
                    key: ctx.key(),
                    response,
                });
            }
            State::Calling | State::Proceeding if status < 300 => {
                self.state = State::Accepted;
                self.clear_request_timers();
                self.timer_m = Some(ctx.now + ctx.timers.timeout());
                ctx.emit(Event::Response {
                    key: ctx.key(),
                    response,
                });
            }
            State::Calling | State::Proceeding => {
                self.clear_request_timers();
                let ack = Bytes::from(ack_for_non_2xx(&self.invite, &response).to_bytes());
                ctx.transmit(ack.clone());
                self.ack = Some(ack);
                ctx.emit(Event::Response {
                    key: ctx.key(),
                    response,
                });
                let d = if ctx.reliable() {
                    Duration::ZERO
                } else {
                    ctx.timers.timer_d
                };
                self.timer_d = ctx.after(d);
                self.state = if self.timer_d.is_some() {
                    State::Completed
                } else {
                    State::Terminated
                };
            }
            // A retransmitted final: our ACK was lost, send it again; the TU has it.
            State::Completed if status >= 300 => {
                if let Some(ack) = &self.ack {
                    ctx.transmit(ack.clone());
                }
            }
            // RFC 6026 §8.4: every 2xx goes up, each may be a different fork's dialog.
            State::Accepted if (200..300).contains(&status) => ctx.emit(Event::Response {
                key: ctx.key(),
                response,
            }),
            _ => {}
        }
    }

    fn clear_request_timers(&mut self) {
        self.timer_a = None;
        self.timer_b = None;
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if self.state == State::Calling && due(self.timer_b, now) {
            ctx.emit(Event::Timeout { key: ctx.key() });
            self.state = State::Terminated;
            return;
        }
        if (self.state == State::Completed && due(self.timer_d, now))
            || (self.state == State::Accepted && due(self.timer_m, now))
        {
            self.state = State::Terminated;
            return;
        }
        if self.state == State::Calling && due(self.timer_a, now) {
            ctx.transmit(self.wire.clone());
            self.interval_a = self.interval_a.saturating_mul(2);
            self.timer_a = Some(now + self.interval_a);
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }
}

/// Client non-INVITE transaction: Trying -> Proceeding -> Completed -> Terminated.
#[derive(Debug)]
pub(super) struct ClientNonInvite {
    pub(super) state: State,
    wire: Bytes,
    timer_e: Option<Instant>,
    interval_e: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    pub(super) fn start(request: &Request, ctx: &mut Ctx<'_>) -> ClientNonInvite {
        let wire = Bytes::from(request.to_bytes());
        ctx.transmit(wire.clone());
        let t1 = ctx.timers.t1;
        ClientNonInvite {
            state: State::Trying,
            wire,
            timer_e: if ctx.reliable() { None } else { ctx.after(t1) },
            interval_e: t1,
            timer_f: Some(ctx.now + ctx.timers.timeout()),
            timer_k: None,
        }
    }

    pub(super) fn on_response(&mut self, response: Response, ctx: &mut Ctx<'_>) {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return; // Completed: retransmitted finals are absorbed.
        }
        if is_final(response.status) {
            self.timer_e = None;
            self.timer_f = None;
            let k = if ctx.reliable() {
                Duration::ZERO
            } else {
                ctx.timers.t4
            };
            self.timer_k = ctx.after(k);
            self.state = if self.timer_k.is_some() {
                State::Completed
            } else {
                State::Terminated
            };
        } else {
            self.state = State::Proceeding;
        }
        ctx.emit(Event::Response {
            key: ctx.key(),
            response,
        });
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let active = matches!(self.state, State::Trying | State::Proceeding);
        if active && due(self.timer_f, now) {
            ctx.emit(Event::Timeout { key: ctx.key() });
            self.state = State::Terminated;
            return;
        }
        if self.state == State::Completed && due(self.timer_k, now) {
            self.state = State::Terminated;
            return;
        }
        if active && due(self.timer_e, now) {
            ctx.transmit(self.wire.clone());
            // Trying backs off to T2; once the server has answered 1xx, poll every T2.
            self.interval_e = if self.state == State::Trying {
                self.interval_e.saturating_mul(2).min(ctx.timers.t2)
            } else {
                ctx.timers.t2
            };
            self.timer_e = Some(now + self.interval_e);
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }
}
