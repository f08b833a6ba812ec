//! Server transactions: INVITE (RFC 3261 §17.2.1 + RFC 6026) and non-INVITE (§17.2.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Ctx, Event, State, due, earliest};
use crate::sip::message::{Request, Response};

/// The TU tried to send a response the transaction cannot take in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WrongState(pub(super) State);

/// Server INVITE transaction: Proceeding -> Completed (non-2xx) -> Confirmed, or
/// Proceeding -> Accepted (2xx), -> Terminated.
#[derive(Debug)]
pub(super) struct ServerInvite {
    pub(super) state: State,
    /// Our 100 Trying, built up front because the request itself goes to the TU.
    trying: Option<Bytes>,
    last_response: Option<Bytes>,
    timer_trying: Option<Instant>,
    timer_g: Option<Instant>,
    interval_g: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
}

impl ServerInvite {
    pub(super) fn start(invite: &Request, ctx: &mut Ctx<'_>) -> ServerInvite {
        let trying = Bytes::from(Response::to_request(invite, 100, None).to_bytes());
        let mut tx = ServerInvite {
            state: State::Proceeding,
            trying: Some(trying),
            last_response: None,
            timer_trying: None,
            timer_g: None,
            interval_g: ctx.timers.t1,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        };
        match ctx.after(ctx.timers.trying_delay) {
            Some(t) => tx.timer_trying = Some(t),
            None => tx.send_trying(ctx),
        }
        tx
    }

    fn send_trying(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(trying) = self.trying.take() {
            ctx.transmit(trying.clone());
            self.last_response = Some(trying);
        }
    }

    /// A retransmission of the INVITE.
    pub(super) fn on_retransmission(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            // Re-send our latest provisional or final so the client stops retransmitting.
            State::Proceeding | State::Completed => {
                if let Some(last) = &self.last_response {
                    ctx.transmit(last.clone());
                }
            }
            // Confirmed: the ACK came, nothing to say. Accepted: the TU retransmits its
            // 2xx itself (RFC 6026 §8.7), the INVITE is absorbed.
            _ => {}
        }
    }

    pub(super) fn on_ack(&mut self, ack: Request, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Completed => {
                self.timer_g = None;
                self.timer_h = None;
                let i = if ctx.reliable() {
                    Duration::ZERO
                } else {
                    ctx.timers.t4
                };
                self.timer_i = ctx.after(i);
                self.state = if self.timer_i.is_some() {
                    State::Confirmed
                } else {
                    State::Terminated
                };
            }
            // An ACK to a 2xx that matched us (RFC 2543 peers reuse the INVITE's Via):
            // the TU's dialog layer wants it.
            State::Accepted => ctx.emit(Event::Ack {
                request: ack,
                source: ctx.peer,
            }),
            _ => {}
        }
    }

    pub(super) fn send_response(
        &mut self,
        response: &Response,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), WrongState> {
        let status = response.status;
        match self.state {
            State::Proceeding => {
                let wire = Bytes::from(response.to_bytes());
                ctx.transmit(wire.clone());
                self.trying = None;
                self.timer_trying = None;
                if status < 200 {
                    self.last_response = Some(wire);
                } else if status < 300 {
                    self.state = State::Accepted;
                    self.last_response = None;
                    self.timer_l = Some(ctx.now + ctx.timers.timeout());
                } else {
                    self.state = State::Completed;
                    self.last_response = Some(wire);
                    if !ctx.reliable() {
                        self.timer_g = Some(ctx.now + ctx.timers.t1);
                    }
                    self.timer_h = Some(ctx.now + ctx.timers.timeout());
                }
                Ok(())
            }
            // The TU retransmits its 2xx (RFC 3261 §13.3.1.4) through us.
            State::Accepted if (200..300).contains(&status) => {
                ctx.transmit(Bytes::from(response.to_bytes()));
                Ok(())
            }
            other => Err(WrongState(other)),
        }
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match self.state {
            State::Completed if due(self.timer_h, now) => {
                // The client never ACKed our final response.
                ctx.emit(Event::Timeout { key: ctx.key() });
                self.state = State::Terminated;
            }
            State::Confirmed if due(self.timer_i, now) => self.state = State::Terminated,
            State::Accepted if due(self.timer_l, now) => self.state = State::Terminated,
            State::Completed if due(self.timer_g, now) => {
                if let Some(last) = &self.last_response {
                    ctx.transmit(last.clone());
                }
                self.interval_g = self.interval_g.saturating_mul(2).min(ctx.timers.t2);
                self.timer_g = Some(now + self.interval_g);
            }
            State::Proceeding if due(self.timer_trying, now) => {
                self.timer_trying = None;
                self.send_trying(ctx);
            }
            _ => {}
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[
            self.timer_trying,
            self.timer_g,
            self.timer_h,
            self.timer_i,
            self.timer_l,
        ])
    }
}

/// Server non-INVITE transaction: Trying -> Proceeding -> Completed -> Terminated.
#[derive(Debug)]
pub(super) struct ServerNonInvite {
    pub(super) state: State,
    last_response: Option<Bytes>,
    /// Not in RFC 3261: if the TU never answers, the client gave up after Timer F, so
    /// holding the transaction longer only leaks memory.
    timer_abandon: Option<Instant>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    pub(super) fn start(ctx: &mut Ctx<'_>) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            last_response: None,
            timer_abandon: Some(ctx.now + ctx.timers.timeout()),
            timer_j: None,
        }
    }

    pub(super) fn on_retransmission(&mut self, ctx: &mut Ctx<'_>) {
        if let (State::Proceeding | State::Completed, Some(last)) =
            (self.state, &self.last_response)
        {
            ctx.transmit(last.clone());
        }
    }

    pub(super) fn send_response(
        &mut self,
        response: &Response,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), WrongState> {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(WrongState(self.state));
        }
        let wire = Bytes::from(response.to_bytes());
        ctx.transmit(wire.clone());
        self.last_response = Some(wire);
        if response.status < 200 {
            self.state = State::Proceeding;
            return Ok(());
        }
        self.timer_abandon = None;
        let j = if ctx.reliable() {
            Duration::ZERO
        } else {
            ctx.timers.timeout()
        };
        self.timer_j = ctx.after(j);
        self.state = if self.timer_j.is_some() {
            State::Completed
        } else {
            State::Terminated
        };
        Ok(())
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match self.state {
            State::Trying | State::Proceeding if due(self.timer_abandon, now) => {
                ctx.emit(Event::Timeout { key: ctx.key() });
                self.state = State::Terminated;
            }
            State::Completed if due(self.timer_j, now) => self.state = State::Terminated,
            _ => {}
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_abandon, self.timer_j])
    }
}
