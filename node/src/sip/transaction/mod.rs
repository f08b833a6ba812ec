//! SIP transactions (RFC 3261 §17, with the RFC 6026 fix for 2xx to INVITE), sans-IO.
//!
//! A [`TransactionLayer`] is fed received messages, requests and responses from the
//! transaction user (TU: registrar, B2BUA, proxy core), transport errors and the current
//! [`Instant`]. It hands back [`Event`]s: bytes to transmit and to whom, messages for the
//! TU, timeouts. Its owner asks [`TransactionLayer::poll_timeout`] when to call
//! [`TransactionLayer::handle_timeout`] next. Nothing here reads a clock or touches a
//! socket, so every timer path is testable with simulated time (see `tests/`).
//!
//! Choices worth knowing:
//! - **RFC 6026.** A 2xx to INVITE moves both sides to *Accepted* for 64*T1 instead of
//!   terminating: retransmitted INVITEs are absorbed instead of reaching the TU as new
//!   calls, and every 2xx (retransmissions, forks) reaches the UAC's TU. Responses that
//!   match no transaction are dropped (RFC 6026 §7.1.2).
//! - **100 Trying.** A server INVITE transaction sends 100 Trying by itself if the TU has
//!   sent nothing after [`TimerConfig::trying_delay`] (200 ms, RFC 3261 §17.2.1); a TU
//!   that answers faster saves the packet. Zero sends it at once.
//! - **Where responses go** is decided once, when the request arrives: over UDP by
//!   RFC 3261 §18.2.2 / RFC 3581 ([`crate::sip::transport::response_target`]: `received`
//!   and `rport` of the top Via, as stamped by the transport), over a stream back to the
//!   source (the connection it came on).
//! - **Timer A doubles without a cap** (RFC 3261 §17.1.1.2); E and G are capped at T2.
//! - **Memory is bounded**: a server non-INVITE transaction the TU never answers is
//!   dropped after 64*T1 (its client has given up by then), and beyond
//!   [`Config::max_transactions`] new requests get a stateless 503.

mod client;
mod key;
mod layer;
mod server;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::message::{Request, Response};
use crate::sip::transport::TransportKind;

pub use client::{ack_for_non_2xx, cancel_for, cancel_with_reason};
pub use key::{KeyError, MAGIC_COOKIE, TransactionKey};
pub use layer::{SendError, TransactionLayer, new_branch};

/// Reliable transports (everything but UDP: TCP, TLS, SCTP, WebSocket) carry their own
/// retransmission, so the UDP-only timers are off and the linger timers are zero
/// (RFC 3261 §17).
fn is_reliable(transport: TransportKind) -> bool {
    transport != TransportKind::Udp
}

/// The other end of a transaction: where its messages go and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: TransportKind,
}

/// RFC 3261 timer base values (Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate: first retransmit interval; 64*T1 is every transaction timeout.
    pub t1: Duration,
    /// Cap on the retransmit interval of non-INVITE requests and INVITE final responses.
    pub t2: Duration,
    /// Longest time a message lingers in the network: Timers I and K.
    pub t4: Duration,
    /// How long a client INVITE transaction stays to re-ACK retransmitted non-2xx finals
    /// over UDP (at least 32 s).
    pub timer_d: Duration,
    /// Silence from the TU after which a server INVITE transaction sends 100 Trying.
    pub trying_delay: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            trying_delay: Duration::from_millis(200),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J, L, M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub timers: TimerConfig,
    /// Transactions held at once; past it new requests get a stateless 503 and
    /// [`TransactionLayer::send_request`] fails, so a flood cannot exhaust memory.
    pub max_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timers: TimerConfig::default(),
            max_transactions: 200_000,
        }
    }
}

/// The state of a transaction (RFC 3261 §17 figures 5-8, RFC 6026 *Accepted*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// Bytes to send. `transaction` is set when the bytes belong to one, so a send failure
/// can be reported with [`TransactionLayer::handle_transport_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: Peer,
    pub payload: Bytes,
    pub transaction: Option<TransactionKey>,
}

/// What the layer asks of its owner. Events are short-lived (queued, then taken by the
/// owner), so the size of the message-carrying variants is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Transmit(Transmit),
    /// A new request; a server transaction now exists for it and awaits the TU's
    /// responses via [`TransactionLayer::send_response`]. For a CANCEL, `cancels` names
    /// the INVITE server transaction it targets if there is one (else answer 481).
    Request {
        key: TransactionKey,
        request: Request,
        source: Peer,
        cancels: Option<TransactionKey>,
    },
    /// An ACK that is the TU's business: to a 2xx (its own transaction by RFC 3261), or
    /// matched to an INVITE server transaction in *Accepted*.
    Ack {
        request: Request,
        source: Peer,
    },
    /// A response for one of our client transactions (retransmissions are absorbed,
    /// except 2xx to INVITE which all reach the TU).
    Response {
        key: TransactionKey,
        response: Response,
    },
    /// No final response in time (Timer B/F), or no ACK for our non-2xx final (Timer H),
    /// or the TU never answered a non-INVITE request.
    Timeout {
        key: TransactionKey,
    },
    /// The transport could not send for this transaction; it is terminated.
    TransportError {
        key: TransactionKey,
    },
    /// The transaction is gone; no more events for `key`.
    Terminated {
        key: TransactionKey,
    },
}

/// What a state machine needs from the layer while handling one input.
struct Ctx<'a> {
    key: &'a TransactionKey,
    peer: Peer,
    now: Instant,
    timers: &'a TimerConfig,
    events: &'a mut VecDeque<Event>,
}

impl Ctx<'_> {
    fn transmit(&mut self, payload: Bytes) {
        self.events.push_back(Event::Transmit(Transmit {
            destination: self.peer,
            payload,
            transaction: Some(self.key.clone()),
        }));
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn key(&self) -> TransactionKey {
        self.key.clone()
    }

    fn reliable(&self) -> bool {
        is_reliable(self.peer.transport)
    }

    /// A deadline `d` from now, or `None` for the zero durations of reliable transports
    /// (the caller then acts at once).
    fn after(&self, d: Duration) -> Option<Instant> {
        (!d.is_zero()).then(|| self.now + d)
    }
}

/// Earliest of a set of optional deadlines.
fn earliest(timers: &[Option<Instant>]) -> Option<Instant> {
    timers.iter().flatten().min().copied()
}

/// Whether an armed timer is due.
fn due(timer: Option<Instant>, now: Instant) -> bool {
    timer.is_some_and(|t| t <= now)
}
