//! The transaction layer: holds every transaction, routes messages to them, runs their
//! timers from one heap, and queues the resulting [`Event`]s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use rand::Rng;

use super::client::{ClientInvite, ClientNonInvite, cancel_with_reason};
use super::key::{KeyError, MAGIC_COOKIE, TransactionKey};
use super::server::{ServerInvite, ServerNonInvite, WrongState};
use super::{Config, Ctx, Event, Peer, State, Transmit, is_reliable};
use crate::sip::message::{HeaderName, Message, Method, Request, Response, SipHeaders};
use crate::sip::transport::response_target;

/// Why the TU's request to send something was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("cannot identify the transaction: {0}")]
    Key(#[from] KeyError),
    /// ACK to a 2xx is its own transaction-less request: use `send_stateless`.
    #[error("ACK is not sent through a client transaction")]
    AckNotATransaction,
    #[error("a transaction with this branch already exists")]
    Duplicate,
    #[error("no such transaction")]
    NoTransaction,
    #[error("transaction is {0:?} and cannot take this")]
    WrongState(State),
    #[error("not a server transaction")]
    NotServer,
    #[error("not a client INVITE transaction")]
    NotClientInvite,
    #[error("status {0} is not a SIP response code")]
    InvalidStatus(u16),
    #[error("too many transactions")]
    Overloaded,
}

impl From<WrongState> for SendError {
    fn from(w: WrongState) -> SendError {
        SendError::WrongState(w.0)
    }
}

/// Where responses to `req` go: back on the connection for stream transports, by the
/// top Via for UDP (RFC 3261 §18.2.2, RFC 3581).
fn response_destination(req: &Request, source: Peer) -> Result<Peer, KeyError> {
    if is_reliable(source.transport) {
        return Ok(source);
    }
    let via = req.top_via()?;
    Ok(Peer {
        addr: response_target(&via, source.addr),
        transport: source.transport,
    })
}

/// A fresh RFC 3261 branch for a new client transaction's Via.
pub fn new_branch() -> String {
    let mut rng = rand::rng();
    format!(
        "{MAGIC_COOKIE}{:016x}{:08x}",
        rng.random::<u64>(),
        rng.random::<u32>()
    )
}

// Names follow RFC 3261 §17 (client/server x INVITE/non-INVITE).
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
enum Machine {
    ClientInvite(Box<ClientInvite>),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    fn state(&self) -> State {
        match self {
            Machine::ClientInvite(m) => m.state,
            Machine::ClientNonInvite(m) => m.state,
            Machine::ServerInvite(m) => m.state,
            Machine::ServerNonInvite(m) => m.state,
        }
    }

    fn terminate(&mut self) {
        match self {
            Machine::ClientInvite(m) => m.state = State::Terminated,
            Machine::ClientNonInvite(m) => m.state = State::Terminated,
            Machine::ServerInvite(m) => m.state = State::Terminated,
            Machine::ServerNonInvite(m) => m.state = State::Terminated,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::ClientInvite(m) => m.next_deadline(),
            Machine::ClientNonInvite(m) => m.next_deadline(),
            Machine::ServerInvite(m) => m.next_deadline(),
            Machine::ServerNonInvite(m) => m.next_deadline(),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        match self {
            Machine::ClientInvite(m) => m.on_timer(ctx),
            Machine::ClientNonInvite(m) => m.on_timer(ctx),
            Machine::ServerInvite(m) => m.on_timer(ctx),
            Machine::ServerNonInvite(m) => m.on_timer(ctx),
        }
    }
}

#[derive(Debug)]
struct Tx {
    key: TransactionKey,
    peer: Peer,
    machine: Machine,
    /// The deadline this transaction has in the heap; heap entries that disagree are
    /// stale and skipped (cheaper than removing from a heap).
    scheduled: Option<Instant>,
}

type TxId = u64;

/// All transactions of one SIP endpoint. See the module docs for the contract.
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    next_id: TxId,
    index: HashMap<TransactionKey, TxId>,
    /// Keyed by our own sequential ids, so a fast hash is safe (the branch-keyed index
    /// keeps SipHash against collision floods).
    txs: foldhash::HashMap<TxId, Tx>,
    timers: BinaryHeap<Reverse<(Instant, TxId)>>,
    events: VecDeque<Event>,
}

impl TransactionLayer {
    pub fn new(config: Config) -> TransactionLayer {
        TransactionLayer {
            config,
            next_id: 0,
            index: HashMap::new(),
            txs: foldhash::HashMap::default(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Live transactions, for a gauge and for tests that the map does not grow.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, key: &TransactionKey) -> Option<State> {
        let id = self.index.get(key)?;
        self.txs.get(id).map(|tx| tx.machine.state())
    }

    /// The next queued event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if self.txs.get(&id).is_some_and(|tx| tx.scheduled == Some(t)) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(tx) = self.txs.get_mut(&id) else {
                continue;
            };
            if tx.scheduled != Some(t) {
                continue;
            }
            tx.scheduled = None;
            self.with_tx(id, now, |m, ctx| m.on_timer(ctx));
            // Every machine re-arms into the future or disarms; a timer still due here
            // would spin this loop forever, so end such a transaction (a bug, not input).
            if let Some(tx) = self.txs.get_mut(&id)
                && tx.scheduled.is_some_and(|t| t <= now)
            {
                debug_assert!(false, "transaction {} left a due timer armed", tx.key);
                tx.machine.terminate();
                self.settle(id);
            }
        }
    }

    /// A message received from `source`. Errors mean it names no transaction (bad Via or
    /// CSeq); the caller answers a request with 400 and drops a response.
    pub fn handle_incoming(
        &mut self,
        message: Message,
        source: Peer,
        now: Instant,
    ) -> Result<(), KeyError> {
        match message {
            Message::Response(resp) => {
                let key = TransactionKey::for_incoming_response(&resp)?;
                // No match: a stray (RFC 6026 §7.1.2 says discard).
                if let Some(&id) = self.index.get(&key) {
                    self.client_response(id, resp, now);
                }
                Ok(())
            }
            Message::Request(req) => self.incoming_request(req, source, now),
        }
    }

    fn client_response(&mut self, id: TxId, resp: Response, now: Instant) {
        let cancel = self
            .with_tx(id, now, |m, ctx| match m {
                Machine::ClientInvite(c) => {
                    let was_calling = c.state == State::Calling;
                    c.on_response(resp, ctx);
                    let send_cancel =
                        was_calling && c.state == State::Proceeding && c.cancel_pending;
                    c.cancel_pending = false;
                    send_cancel.then(|| cancel_with_reason(&c.invite, c.cancel_reason.as_deref()))
                }
                Machine::ClientNonInvite(c) => {
                    c.on_response(resp, ctx);
                    None
                }
                Machine::ServerInvite(_) | Machine::ServerNonInvite(_) => None,
            })
            .flatten();
        if let (Some(cancel), Some(peer)) = (cancel, self.txs.get(&id).map(|tx| tx.peer)) {
            // The TU already holds this CANCEL's key; the only failure would be a
            // CANCEL it sent by hand, which then stands in for ours.
            let _ = self.start_client(cancel, peer, now);
        }
    }

    fn incoming_request(
        &mut self,
        req: Request,
        source: Peer,
        now: Instant,
    ) -> Result<(), KeyError> {
        let key = TransactionKey::for_incoming_request(&req)?;
        let existing = self.index.get(&key).copied();
        let reply_to = response_destination(&req, source)?;
        if req.method == Method::Ack {
            let server_invite =
                existing.filter(|id| matches!(self.machine(*id), Some(Machine::ServerInvite(_))));
            match server_invite {
                Some(id) => {
                    self.with_tx(id, now, |m, ctx| {
                        if let Machine::ServerInvite(s) = m {
                            s.on_ack(req, ctx);
                        }
                    });
                }
                None => self.events.push_back(Event::Ack {
                    request: req,
                    source,
                }),
            }
            return Ok(());
        }
        if let Some(id) = existing {
            self.with_tx(id, now, |m, ctx| match m {
                Machine::ServerInvite(s) => s.on_retransmission(ctx),
                Machine::ServerNonInvite(s) => s.on_retransmission(ctx),
                Machine::ClientInvite(_) | Machine::ClientNonInvite(_) => {}
            });
            return Ok(());
        }
        if self.txs.len() >= self.config.max_transactions {
            self.reject_overloaded(&req, reply_to);
            return Ok(());
        }
        let cancels = key.cancelled_invite().filter(|k| {
            self.index
                .get(k)
                .is_some_and(|id| matches!(self.machine(*id), Some(Machine::ServerInvite(_))))
        });
        let is_invite = req.method == Method::Invite;
        self.insert(key.clone(), reply_to, now, |ctx| {
            if is_invite {
                Machine::ServerInvite(ServerInvite::start(&req, ctx))
            } else {
                Machine::ServerNonInvite(ServerNonInvite::start(ctx))
            }
        });
        self.events.push_back(Event::Request {
            key,
            request: req,
            source,
            cancels,
        });
        Ok(())
    }

    /// Stateless 503 so an overloaded node sheds load instead of memory.
    fn reject_overloaded(&mut self, req: &Request, reply_to: Peer) {
        let tag = format!("{:08x}", rand::rng().random::<u32>());
        let mut resp = Response::to_request(req, 503, Some(&tag));
        resp.headers.push(HeaderName::RetryAfter, "5");
        self.events.push_back(Event::Transmit(Transmit {
            destination: reply_to,
            payload: resp.to_bytes().into(),
            transaction: None,
        }));
    }

    /// Starts a client transaction for `request`, whose top Via must carry a fresh
    /// [`new_branch`]. The destination is already resolved (RFC 3263 lives at the edge).
    pub fn send_request(
        &mut self,
        request: Request,
        destination: Peer,
        now: Instant,
    ) -> Result<TransactionKey, SendError> {
        if request.method == Method::Ack {
            return Err(SendError::AckNotATransaction);
        }
        if request.method != Method::Cancel && self.txs.len() >= self.config.max_transactions {
            return Err(SendError::Overloaded);
        }
        self.start_client(request, destination, now)
    }

    fn start_client(
        &mut self,
        request: Request,
        destination: Peer,
        now: Instant,
    ) -> Result<TransactionKey, SendError> {
        let key = TransactionKey::for_outgoing_request(&request)?;
        if self.index.contains_key(&key) {
            return Err(SendError::Duplicate);
        }
        self.insert(key.clone(), destination, now, |ctx| {
            if request.method == Method::Invite {
                Machine::ClientInvite(Box::new(ClientInvite::start(request, ctx)))
            } else {
                Machine::ClientNonInvite(ClientNonInvite::start(&request, ctx))
            }
        });
        Ok(key)
    }

    /// Cancels a pending client INVITE (RFC 3261 §9.1) and returns the CANCEL's key. If no
    /// provisional response has arrived yet the CANCEL waits for one; if a final response
    /// comes first it is never sent and its key sees no events.
    pub fn cancel(
        &mut self,
        invite: &TransactionKey,
        now: Instant,
    ) -> Result<TransactionKey, SendError> {
        self.cancel_with_reason(invite, None, now)
    }

    /// [`Self::cancel`] with a `Reason` header value (RFC 3326) in the CANCEL.
    pub fn cancel_with_reason(
        &mut self,
        invite: &TransactionKey,
        reason: Option<&str>,
        now: Instant,
    ) -> Result<TransactionKey, SendError> {
        let id = *self.index.get(invite).ok_or(SendError::NoTransaction)?;
        let cancel_key = invite
            .cancel_of_client_invite()
            .ok_or(SendError::NotClientInvite)?;
        if self.index.contains_key(&cancel_key) {
            return Err(SendError::Duplicate);
        }
        let (cancel, peer) = match self.txs.get_mut(&id) {
            Some(Tx {
                machine: Machine::ClientInvite(c),
                peer,
                ..
            }) => match c.state {
                State::Calling if c.cancel_pending => return Err(SendError::Duplicate),
                State::Calling => {
                    c.cancel_pending = true;
                    c.cancel_reason = reason.map(str::to_owned);
                    return Ok(cancel_key);
                }
                State::Proceeding => (cancel_with_reason(&c.invite, reason), *peer),
                other => return Err(SendError::WrongState(other)),
            },
            _ => return Err(SendError::NotClientInvite),
        };
        self.start_client(cancel, peer, now)
    }

    /// Hands a response from the TU to its server transaction.
    pub fn send_response(
        &mut self,
        key: &TransactionKey,
        response: Response,
        now: Instant,
    ) -> Result<(), SendError> {
        if !(100..=699).contains(&response.status) {
            return Err(SendError::InvalidStatus(response.status));
        }
        let id = *self.index.get(key).ok_or(SendError::NoTransaction)?;
        self.with_tx(id, now, |m, ctx| match m {
            Machine::ServerInvite(s) => s.send_response(&response, ctx).map_err(Into::into),
            Machine::ServerNonInvite(s) => s.send_response(&response, ctx).map_err(Into::into),
            Machine::ClientInvite(_) | Machine::ClientNonInvite(_) => Err(SendError::NotServer),
        })
        .unwrap_or(Err(SendError::NoTransaction))
    }

    /// Sends a message outside any transaction: an ACK to a 2xx, a stateless response.
    pub fn send_stateless(&mut self, message: &Message, destination: Peer) {
        self.events.push_back(Event::Transmit(Transmit {
            destination,
            payload: message.to_bytes().into(),
            transaction: None,
        }));
    }

    /// The transport failed to deliver for `key` (RFC 3261 §17.1.4, §17.2.4): the TU is
    /// told and the transaction ends.
    pub fn handle_transport_error(&mut self, key: &TransactionKey, now: Instant) {
        if let Some(&id) = self.index.get(key) {
            self.with_tx(id, now, |m, ctx| {
                ctx.emit(Event::TransportError { key: ctx.key() });
                m.terminate();
            });
        }
    }

    fn machine(&self, id: TxId) -> Option<&Machine> {
        self.txs.get(&id).map(|tx| &tx.machine)
    }

    fn insert(
        &mut self,
        key: TransactionKey,
        peer: Peer,
        now: Instant,
        make: impl FnOnce(&mut Ctx<'_>) -> Machine,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let mut ctx = Ctx {
            key: &key,
            peer,
            now,
            timers: &self.config.timers,
            events: &mut self.events,
        };
        let machine = make(&mut ctx);
        self.index.insert(key.clone(), id);
        self.txs.insert(
            id,
            Tx {
                key,
                peer,
                machine,
                scheduled: None,
            },
        );
        self.settle(id);
    }

    /// Runs `f` on a transaction's machine, then reschedules or removes it.
    fn with_tx<R>(
        &mut self,
        id: TxId,
        now: Instant,
        f: impl FnOnce(&mut Machine, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let tx = self.txs.get_mut(&id)?;
        let mut ctx = Ctx {
            key: &tx.key,
            peer: tx.peer,
            now,
            timers: &self.config.timers,
            events: &mut self.events,
        };
        let r = f(&mut tx.machine, &mut ctx);
        self.settle(id);
        Some(r)
    }

    fn settle(&mut self, id: TxId) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        if tx.machine.state() == State::Terminated {
            if let Some(tx) = self.txs.remove(&id) {
                self.index.remove(&tx.key);
                self.events.push_back(Event::Terminated { key: tx.key });
            }
            return;
        }
        let next = tx.machine.next_deadline();
        if next != tx.scheduled {
            tx.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, id)));
            }
        }
    }
}
