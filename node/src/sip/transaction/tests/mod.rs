//! Transaction tests over a simulated network with simulated time (no sockets, no
//! sleeps): two [`TransactionLayer`]s, alice (UAC side) and bob (UAS side), joined by a
//! link with fixed latency and a deterministic loss rule. Every payload is re-parsed by
//! the codec on delivery, so what the layer emits is also valid SIP.

mod client;
mod keys;
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::message::{HeaderName, Message, Method, Request, Response, SipHeaders};
use crate::sip::parse::parse_datagram;
use crate::sip::uri::Uri;

pub(super) const ALICE: usize = 0;
pub(super) const BOB: usize = 1;
pub(super) const LATENCY: Duration = Duration::from_millis(10);

/// A packet as the loss rule sees it.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    /// 0-based count of packets offered to the link, both directions.
    pub n: usize,
    pub from: usize,
    pub message: Message,
}

impl Packet {
    pub fn is_request(&self, method: &Method) -> bool {
        matches!(&self.message, Message::Request(r) if r.method == *method)
    }

    pub fn is_response(&self, status: u16) -> bool {
        matches!(&self.message, Message::Response(r) if r.status == status)
    }
}

/// What a node's owner observed, with the simulated time it happened.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub at: Duration,
    pub event: Event,
}

pub(super) struct Node {
    pub layer: TransactionLayer,
    pub addr: SocketAddr,
    /// Everything but transmits, in order.
    pub tu: Vec<Seen>,
    /// Every message this node put on the wire, parsed, with the time.
    pub sent: Vec<(Duration, Message)>,
}

type LossRule = Box<dyn FnMut(&Packet) -> bool>;

pub(super) struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub transport: TransportKind,
    pub nodes: [Node; 2],
    in_flight: Vec<(Instant, usize, usize, Bytes)>,
    offered: usize,
    drop_rule: LossRule,
}

impl Sim {
    pub fn new(transport: TransportKind) -> Sim {
        Sim::with_config(transport, Config::default())
    }

    pub fn with_config(transport: TransportKind, config: Config) -> Sim {
        let start = Instant::now();
        let node = |port| Node {
            layer: TransactionLayer::new(config),
            addr: SocketAddr::from(([192, 0, 2, 1], port)),
            tu: Vec::new(),
            sent: Vec::new(),
        };
        Sim {
            start,
            now: start,
            transport,
            nodes: [node(5060), node(5070)],
            in_flight: Vec::new(),
            offered: 0,
            drop_rule: Box::new(|_| false),
        }
    }

    /// Packets for which `rule` returns true are lost.
    pub fn set_loss(&mut self, rule: impl FnMut(&Packet) -> bool + 'static) {
        self.drop_rule = Box::new(rule);
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn peer_of(&self, node: usize) -> Peer {
        Peer {
            addr: self.nodes[node].addr,
            transport: self.transport,
        }
    }

    pub fn layer(&mut self, node: usize) -> &mut TransactionLayer {
        &mut self.nodes[node].layer
    }

    /// Alice starts a client transaction towards bob.
    pub fn alice_sends(&mut self, req: Request) -> TransactionKey {
        let bob = self.peer_of(BOB);
        let now = self.now;
        let key = self.nodes[ALICE]
            .layer
            .send_request(req, bob, now)
            .expect("request accepted");
        self.pump();
        key
    }

    /// Bob's TU answers a server transaction.
    pub fn bob_responds(&mut self, key: &TransactionKey, resp: Response) {
        let now = self.now;
        self.nodes[BOB]
            .layer
            .send_response(key, resp, now)
            .expect("response accepted");
        self.pump();
    }

    /// Moves queued events: transmits onto the link (or into the void), the rest to the
    /// node's TU log.
    pub fn pump(&mut self) {
        let at = self.elapsed();
        for from in [ALICE, BOB] {
            while let Some(event) = self.nodes[from].layer.poll_event() {
                let Event::Transmit(t) = event else {
                    self.nodes[from].tu.push(Seen { at, event });
                    continue;
                };
                let message = parse_datagram(&t.payload).expect("we only send valid SIP");
                self.nodes[from].sent.push((at, message.clone()));
                let to = self
                    .nodes
                    .iter()
                    .position(|n| n.addr == t.destination.addr)
                    .expect("destination is a simulated node");
                let packet = Packet {
                    n: self.offered,
                    from,
                    message,
                };
                self.offered += 1;
                if !(self.drop_rule)(&packet) {
                    self.in_flight
                        .push((self.now + LATENCY, from, to, t.payload.clone()));
                }
            }
        }
    }

    fn next_wakeup(&mut self) -> Option<Instant> {
        let net = self.in_flight.iter().map(|p| p.0).min();
        let a = self.nodes[ALICE].layer.poll_timeout();
        let b = self.nodes[BOB].layer.poll_timeout();
        [net, a, b].into_iter().flatten().min()
    }

    /// Runs the network and both layers until `elapsed() == until` (from the start).
    pub fn run_until(&mut self, until: Duration) {
        let deadline = self.start + until;
        self.pump();
        while let Some(t) = self.next_wakeup().filter(|t| *t <= deadline) {
            self.now = self.now.max(t);
            let now = self.now;
            // Deliver in send order: latency is fixed, so the link is FIFO.
            let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|p| p.0 <= now);
            self.in_flight = later;
            for (_, from, to, payload) in due {
                let message = parse_datagram(&payload).expect("valid on the wire");
                let source = self.peer_of(from);
                self.nodes[to]
                    .layer
                    .handle_incoming(message, source, now)
                    .expect("message names a transaction");
                self.pump();
            }
            for n in [ALICE, BOB] {
                self.nodes[n].layer.handle_timeout(now);
            }
            self.pump();
        }
        self.now = self.now.max(deadline);
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    /// Times at which `node` sent a message matching `pred`.
    pub fn sent_times(&self, node: usize, pred: impl Fn(&Message) -> bool) -> Vec<Duration> {
        self.nodes[node]
            .sent
            .iter()
            .filter(|(_, m)| pred(m))
            .map(|(t, _)| *t)
            .collect()
    }

    /// The node's TU events matching `pred`.
    pub fn tu_events(&self, node: usize, pred: impl Fn(&Event) -> bool) -> Vec<Seen> {
        self.nodes[node]
            .tu
            .iter()
            .filter(|s| pred(&s.event))
            .cloned()
            .collect()
    }

    /// The key of the `i`th request bob's TU was given.
    pub fn bob_request(&self, i: usize) -> (TransactionKey, Request) {
        let requests: Vec<_> = self.nodes[BOB]
            .tu
            .iter()
            .filter_map(|s| match &s.event {
                Event::Request { key, request, .. } => Some((key.clone(), request.clone())),
                _ => None,
            })
            .collect();
        requests.get(i).cloned().expect("bob got that request")
    }
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn is_request(m: &Message, method: &Method) -> bool {
    matches!(m, Message::Request(r) if r.method == *method)
}

pub(super) fn is_status(m: &Message, status: u16) -> bool {
    matches!(m, Message::Response(r) if r.status == status)
}

pub(super) fn responses(seen: &[Seen]) -> Vec<u16> {
    seen.iter()
        .filter_map(|s| match &s.event {
            Event::Response { response, .. } => Some(response.status),
            _ => None,
        })
        .collect()
}

/// A request from alice (192.0.2.1:5060) to bob with a fresh branch. `transport` names
/// the Via transport.
pub(super) fn request(method: Method, transport: TransportKind, cseq: u32) -> Request {
    let mut req = Request::new(
        method.clone(),
        Uri::parse("sip:bob@192.0.2.1:5070").expect("valid URI"),
    );
    let proto = match transport {
        TransportKind::Udp => "UDP",
        _ => "TCP",
    };
    req.headers.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/{proto} 192.0.2.1:5060;branch={};rport",
            new_branch()
        ),
    );
    req.headers.push(HeaderName::MaxForwards, "70");
    req.headers
        .push(HeaderName::To, "Bob <sip:bob@example.com>");
    req.headers
        .push(HeaderName::From, "Alice <sip:alice@example.com>;tag=a1");
    req.headers.push(HeaderName::CallId, "call-1@192.0.2.1");
    req.headers
        .push(HeaderName::CSeq, format!("{cseq} {method}"));
    req
}

pub(super) fn respond(req: &Request, status: u16) -> Response {
    Response::to_request(req, status, Some("b1"))
}

/// The ACK alice's TU sends for a 2xx: a new transaction-less request with its own branch.
pub(super) fn ack_for_2xx(invite: &Request, ok: &Response) -> Message {
    let mut ack = request(
        Method::Ack,
        TransportKind::Udp,
        invite.cseq().map_or(1, |c| c.seq),
    );
    if let Some(to) = ok.headers.get_by(&HeaderName::To) {
        ack.headers.set(HeaderName::To, to);
    }
    Message::Request(ack)
}
