//! Server transactions: 100 Trying, Timer G/H/I/J/L, absorption, cleanup, overload.

use super::*;

#[test]
fn timer_g_backs_off_to_t2_and_timer_h_gives_up_without_ack() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.set_loss(|p| p.is_request(&Method::Ack));
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(20));
    let (key, req) = sim.bob_request(0);
    sim.bob_responds(&key, respond(&req, 404));
    assert_eq!(sim.layer(BOB).state(&key), Some(State::Completed));
    sim.run_until(Duration::from_secs(40));
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 404)),
        [
            20, 520, 1520, 3520, 7520, 11520, 15520, 19520, 23520, 27520, 31520
        ]
        .map(ms)
    );
    let tu = sim.tu_events(BOB, |e| !matches!(e, Event::Request { .. }));
    assert!(matches!(&tu[0].event, Event::Timeout { key: k } if *k == key));
    assert_eq!(tu[0].at, ms(32_020));
    assert!(matches!(&tu[1].event, Event::Terminated { .. }));
    // Alice re-ACKed every retransmission and never bothered her TU again.
    assert_eq!(responses(&sim.tu_events(ALICE, |_| true)), [404]);
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Ack)).len(),
        11
    );
    assert!(sim.layer(BOB).is_empty());
}

#[test]
fn invite_server_sends_100_trying_when_the_tu_is_slow() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(300));
    assert_eq!(sim.sent_times(BOB, |m| is_status(m, 100)), [ms(210)]);
    // The 100 stopped alice's Timer A before its first firing at 500 ms.
    sim.run_until(ms(2000));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Invite)),
        [ms(0)]
    );
    assert_eq!(responses(&sim.tu_events(ALICE, |_| true)), [100]);
}

#[test]
fn invite_server_skips_100_when_the_tu_answers_in_time() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(50));
    let (key, req) = sim.bob_request(0);
    sim.bob_responds(&key, respond(&req, 180));
    sim.run_until(ms(1000));
    assert!(sim.sent_times(BOB, |m| is_status(m, 100)).is_empty());
}

#[test]
fn zero_trying_delay_sends_100_at_once() {
    let config = Config {
        timers: TimerConfig {
            trying_delay: Duration::ZERO,
            ..TimerConfig::default()
        },
        ..Config::default()
    };
    let mut sim = Sim::with_config(TransportKind::Udp, config);
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(100));
    assert_eq!(sim.sent_times(BOB, |m| is_status(m, 100)), [ms(10)]);
}

#[test]
fn invite_retransmission_gets_the_last_provisional_and_is_absorbed_once_accepted() {
    let mut sim = Sim::new(TransportKind::Udp);
    // Bob's first 180 and his 200 are lost, so alice keeps retransmitting the INVITE.
    sim.set_loss(|p| p.n == 1 || p.is_response(200));
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(10));
    let (key, req) = sim.bob_request(0);
    sim.bob_responds(&key, respond(&req, 180));
    sim.run_until(ms(600));
    // Alice's 500 ms retransmission got the 180 again.
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 180)),
        [10, 510].map(ms)
    );
    assert_eq!(sim.layer(BOB).state(&key), Some(State::Proceeding));
    let mut sim2 = Sim::new(TransportKind::Udp);
    sim2.set_loss(|p| p.is_response(200));
    sim2.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim2.run_until(ms(10));
    let (key2, req2) = sim2.bob_request(0);
    sim2.bob_responds(&key2, respond(&req2, 200));
    sim2.run_until(ms(2000));
    // RFC 6026 Accepted: the INVITE retransmissions at 500 and 1500 ms are absorbed,
    // neither answered nor shown to the TU as new calls.
    assert_eq!(
        sim2.sent_times(ALICE, |m| is_request(m, &Method::Invite)),
        [0, 500, 1500].map(ms)
    );
    assert_eq!(sim2.sent_times(BOB, |m| is_status(m, 200)), [ms(10)]);
    assert_eq!(
        sim2.tu_events(BOB, |e| matches!(e, Event::Request { .. }))
            .len(),
        1
    );
}

#[test]
fn non_invite_server_absorbs_in_trying_and_repeats_its_final() {
    let mut sim = Sim::new(TransportKind::Udp);
    let mut finals = 0;
    sim.set_loss(move |p| {
        if p.is_response(200) {
            finals += 1;
            return finals == 1;
        }
        false
    });
    sim.alice_sends(request(Method::Register, TransportKind::Udp, 1));
    sim.run_until(ms(2000));
    // Retransmissions at 500 and 1500 ms reached bob and were absorbed silently.
    assert!(sim.nodes[BOB].sent.is_empty());
    assert_eq!(
        sim.tu_events(BOB, |e| matches!(e, Event::Request { .. }))
            .len(),
        1
    );
    let (key, req) = sim.bob_request(0);
    sim.bob_responds(&key, respond(&req, 200));
    sim.run_until(ms(4000));
    // The 200 was lost; alice's 3500 ms retransmission fetched it again.
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 200)),
        [2000, 3510].map(ms)
    );
    assert_eq!(responses(&sim.tu_events(ALICE, |_| true)), [200]);
    let now = sim.now;
    assert_eq!(
        sim.layer(BOB).send_response(&key, respond(&req, 200), now),
        Err(SendError::WrongState(State::Completed))
    );
}

#[test]
fn timers_j_and_k_keep_the_maps_from_growing() {
    let mut sim = Sim::new(TransportKind::Udp);
    for i in 0..50u32 {
        sim.alice_sends(request(Method::Options, TransportKind::Udp, i + 1));
        sim.run_for(ms(10));
        let (key, req) = sim.bob_request(i as usize);
        sim.bob_responds(&key, respond(&req, 200));
        sim.run_for(ms(90));
    }
    // Everything answered, but alice lingers T4 (Timer K) and bob 64*T1 (Timer J) to
    // absorb retransmissions.
    assert_eq!(sim.layer(ALICE).len(), 50);
    assert_eq!(sim.layer(BOB).len(), 50);
    sim.run_for(Duration::from_secs(33));
    assert!(sim.layer(ALICE).is_empty() && sim.layer(BOB).is_empty());
    assert_eq!(sim.layer(ALICE).poll_timeout(), None);
    assert_eq!(sim.layer(BOB).poll_timeout(), None);
    let terminated = sim.tu_events(BOB, |e| matches!(e, Event::Terminated { .. }));
    assert_eq!(terminated.len(), 50);
}

#[test]
fn unanswered_non_invite_is_dropped_after_64_t1() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.alice_sends(request(Method::Options, TransportKind::Udp, 1));
    sim.run_until(Duration::from_secs(40));
    let bob_tu = sim.tu_events(BOB, |e| {
        matches!(e, Event::Timeout { .. } | Event::Terminated { .. })
    });
    assert_eq!(bob_tu.len(), 2);
    assert_eq!(bob_tu[0].at, ms(10 + 32_000));
    assert!(sim.layer(BOB).is_empty() && sim.layer(ALICE).is_empty());
}

#[test]
fn reliable_invite_server_has_no_timer_g_and_ends_on_ack() {
    let mut sim = Sim::new(TransportKind::Tcp);
    sim.alice_sends(request(Method::Invite, TransportKind::Tcp, 1));
    sim.run_until(ms(10));
    let (key, req) = sim.bob_request(0);
    sim.bob_responds(&key, respond(&req, 486));
    sim.run_until(ms(30));
    // ACK arrived at 30 ms: I = 0 ends bob's transaction, D = 0 ended alice's.
    assert!(sim.layer(BOB).is_empty() && sim.layer(ALICE).is_empty());
    sim.run_until(Duration::from_secs(40));
    assert_eq!(sim.sent_times(BOB, |m| is_status(m, 486)), [ms(10)]);
}

#[test]
fn overload_answers_503_statelessly() {
    let config = Config {
        max_transactions: 1,
        ..Config::default()
    };
    let mut sim = Sim::with_config(TransportKind::Udp, config);
    sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    // Alice's own limit: one transaction.
    let bob = sim.peer_of(BOB);
    let now = sim.now;
    assert_eq!(
        sim.layer(ALICE)
            .send_request(request(Method::Options, TransportKind::Udp, 2), bob, now),
        Err(SendError::Overloaded)
    );
    // A second caller on bob's side gets 503 without a transaction.
    let alice = sim.peer_of(ALICE);
    let second = request(Method::Invite, TransportKind::Udp, 3);
    sim.run_until(ms(20));
    let now = sim.now;
    sim.layer(BOB)
        .handle_incoming(Message::Request(second), alice, now)
        .expect("valid");
    sim.pump();
    let rejected: Vec<_> = sim.nodes[BOB]
        .sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) if r.status == 503 => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].headers.get("Retry-After"), Some("5"));
    assert!(rejected[0].hdr_to().expect("to").tag().is_some());
    assert_eq!(sim.layer(BOB).len(), 1);
}

#[test]
fn send_response_errors() {
    let mut sim = Sim::new(TransportKind::Udp);
    let client_key = sim.alice_sends(request(Method::Options, TransportKind::Udp, 1));
    sim.run_until(ms(20));
    let (key, req) = sim.bob_request(0);
    let now = sim.now;
    let mut bad = respond(&req, 200);
    bad.status = 99;
    assert_eq!(
        sim.layer(BOB).send_response(&key, bad, now),
        Err(SendError::InvalidStatus(99))
    );
    assert_eq!(
        sim.layer(ALICE)
            .send_response(&client_key, respond(&req, 200), now),
        Err(SendError::NotServer)
    );
    assert_eq!(
        sim.layer(ALICE)
            .send_response(&key, respond(&req, 200), now),
        Err(SendError::NoTransaction)
    );
}

#[test]
fn stray_responses_are_dropped() {
    let mut sim = Sim::new(TransportKind::Udp);
    let req = request(Method::Options, TransportKind::Udp, 1);
    let bob = sim.peer_of(BOB);
    let now = sim.now;
    sim.layer(ALICE)
        .handle_incoming(Message::Response(respond(&req, 200)), bob, now)
        .expect("has a branch");
    sim.pump();
    assert!(sim.nodes[ALICE].tu.is_empty() && sim.nodes[ALICE].sent.is_empty());
}

#[test]
fn responses_are_routed_by_via_over_udp_and_by_source_over_streams() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let nat: SocketAddr = "203.0.113.7:40000".parse().expect("addr");
    let destination_of = |layer: &mut TransactionLayer, via: &str, transport| {
        let mut req = request(Method::Options, TransportKind::Udp, 1);
        req.headers.set(HeaderName::Via, via);
        let source = Peer {
            addr: nat,
            transport,
        };
        layer
            .handle_incoming(Message::Request(req.clone()), source, now)
            .expect("keyed");
        let key = TransactionKey::for_incoming_request(&req).expect("keyed");
        layer
            .send_response(&key, respond(&req, 200), now)
            .expect("sent");
        let mut dest = None;
        while let Some(e) = layer.poll_event() {
            if let Event::Transmit(t) = e {
                dest = Some(t.destination);
            }
        }
        dest.expect("a transmit")
    };
    // As stamped by the transport (RFC 3581): rport wins.
    let d = destination_of(
        &mut layer,
        "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;received=203.0.113.7;rport=40000",
        TransportKind::Udp,
    );
    assert_eq!(d.addr, nat);
    // No rport: the received address at the sent-by port (RFC 3261 §18.2.2).
    let d = destination_of(
        &mut layer,
        "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK2;received=203.0.113.7",
        TransportKind::Udp,
    );
    assert_eq!(d.addr, "203.0.113.7:5062".parse().expect("addr"));
    // Streams answer on the connection the request came on.
    let d = destination_of(
        &mut layer,
        "SIP/2.0/TCP 10.0.0.5:5062;branch=z9hG4bK3",
        TransportKind::Tcp,
    );
    assert_eq!(
        d,
        Peer {
            addr: nat,
            transport: TransportKind::Tcp
        }
    );
}
