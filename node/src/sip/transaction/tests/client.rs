//! Client transactions: retransmission schedules, timeouts, ACK, RFC 6026, CANCEL.

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn invite_timer_a_doubles_without_cap_until_timer_b() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.set_loss(|p| p.from == ALICE);
    let key = sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    assert_eq!(sim.layer(ALICE).state(&key), Some(State::Calling));
    sim.run_until(secs(40));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Invite)),
        [0, 500, 1500, 3500, 7500, 15500, 31500].map(ms)
    );
    let tu = sim.tu_events(ALICE, |_| true);
    assert_eq!(tu.len(), 2, "{tu:?}");
    assert!(matches!(&tu[0].event, Event::Timeout { key: k } if *k == key));
    assert_eq!(tu[0].at, ms(32_000));
    assert!(matches!(&tu[1].event, Event::Terminated { key: k } if *k == key));
    assert!(sim.layer(ALICE).is_empty());
    assert_eq!(sim.layer(ALICE).poll_timeout(), None);
}

#[test]
fn non_invite_timer_e_caps_at_t2_until_timer_f() {
    let mut sim = Sim::new(TransportKind::Udp);
    sim.set_loss(|p| p.from == ALICE);
    sim.alice_sends(request(Method::Options, TransportKind::Udp, 1));
    sim.run_until(secs(40));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Options)),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
        .map(ms)
    );
    let timeouts = sim.tu_events(ALICE, |e| matches!(e, Event::Timeout { .. }));
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].at, ms(32_000));
    assert!(sim.layer(ALICE).is_empty());
}

#[test]
fn non_invite_proceeding_polls_at_t2_and_absorbs_final_retransmission() {
    let mut sim = Sim::new(TransportKind::Udp);
    let key = sim.alice_sends(request(Method::Options, TransportKind::Udp, 1));
    sim.run_until(ms(10));
    let (bob_key, req) = sim.bob_request(0);
    sim.bob_responds(&bob_key, respond(&req, 180));
    // Alice is in Proceeding from 20 ms; Timer E (armed at 500 ms in Trying) fires once
    // more at its old interval, then every T2.
    sim.run_until(ms(8505));
    assert_eq!(sim.layer(ALICE).state(&key), Some(State::Proceeding));
    // Bob answers after alice's 8500 ms retransmission left but before it arrives, so
    // his Completed transaction re-sends the 200 and alice sees it twice.
    sim.bob_responds(&bob_key, respond(&req, 200));
    sim.run_until(secs(60));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Options)),
        [0, 500, 4500, 8500].map(ms)
    );
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 180)),
        [10, 510, 4510].map(ms)
    );
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 200)),
        [8505, 8510].map(ms)
    );
    let alice_tu = sim.tu_events(ALICE, |_| true);
    // Every provisional goes up in Proceeding (RFC 3261 §17.1.2.2); one final only.
    assert_eq!(responses(&alice_tu), [180, 180, 180, 200]);
    // Timer K (T4) after the first 200 at 8515 ms; Timer J (64*T1) at bob.
    let ended = |n| sim.tu_events(n, |e| matches!(e, Event::Terminated { .. }))[0].at;
    assert_eq!(ended(ALICE), ms(8515 + 5000));
    assert_eq!(ended(BOB), ms(8505 + 32_000));
    assert!(sim.layer(ALICE).is_empty() && sim.layer(BOB).is_empty());
}

#[test]
fn non_2xx_is_acked_in_the_transaction_and_retransmissions_absorbed() {
    let mut sim = Sim::new(TransportKind::Udp);
    // Lose the first INVITE and the first ACK.
    let mut acks = 0;
    sim.set_loss(move |p| {
        if p.is_request(&Method::Ack) {
            acks += 1;
            return acks == 1;
        }
        p.n == 0
    });
    let mut invite = request(Method::Invite, TransportKind::Udp, 7);
    invite
        .headers
        .push(HeaderName::Route, "<sip:proxy.example.com;lr>");
    invite.headers.push(
        HeaderName::Via,
        "SIP/2.0/UDP 198.51.100.9;branch=z9hG4bKupstream",
    );
    let key = sim.alice_sends(invite.clone());
    sim.run_until(ms(600));
    let (bob_key, req) = sim.bob_request(0);
    sim.bob_responds(&bob_key, respond(&req, 486));
    sim.run_until(secs(60));

    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Invite)),
        [0, 500].map(ms)
    );
    assert_eq!(
        sim.sent_times(BOB, |m| is_status(m, 486)),
        [600, 1100].map(ms)
    );
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Ack)),
        [610, 1110].map(ms)
    );
    // Bob answered before 200 ms, so no 100 Trying; his TU saw one request, no ACK.
    assert!(sim.sent_times(BOB, |m| is_status(m, 100)).is_empty());
    assert_eq!(
        sim.tu_events(BOB, |e| matches!(e, Event::Request { .. }))
            .len(),
        1
    );
    assert!(
        sim.tu_events(BOB, |e| matches!(e, Event::Ack { .. }))
            .is_empty()
    );
    assert_eq!(responses(&sim.tu_events(ALICE, |_| true)), [486]);
    // Timer I at bob (T4 after the ACK at 1120 ms), Timer D at alice (32 s after 610 ms).
    let ended = |n| sim.tu_events(n, |e| matches!(e, Event::Terminated { .. }))[0].at;
    assert_eq!(ended(BOB), ms(1120 + 5000));
    assert_eq!(ended(ALICE), ms(610 + 32_000));
    assert!(sim.layer(ALICE).state(&key).is_none());

    // RFC 3261 §17.1.1.3: the ACK's fields.
    let (_, Message::Request(ack)) = sim.nodes[ALICE]
        .sent
        .iter()
        .find(|(_, m)| is_request(m, &Method::Ack))
        .cloned()
        .expect("an ACK")
    else {
        panic!("ACK is a request");
    };
    assert_eq!(ack.uri, invite.uri);
    let vias: Vec<String> = ack.headers.get_all("Via").map(str::to_owned).collect();
    assert_eq!(vias.len(), 1);
    assert_eq!(ack.top_via().expect("via"), invite.top_via().expect("via"));
    assert_eq!(ack.hdr_to().expect("to").tag(), Some("b1"));
    assert_eq!(ack.hdr_from(), invite.hdr_from());
    assert_eq!(ack.call_id(), invite.call_id());
    let cseq = ack.cseq().expect("cseq");
    assert_eq!((cseq.seq, cseq.method), (7, Method::Ack));
    assert_eq!(ack.route(), invite.route());
    assert!(ack.body.is_empty());
}

#[test]
fn every_2xx_reaches_the_tu_and_accepted_ends_after_timer_m() {
    let mut sim = Sim::new(TransportKind::Udp);
    let mut oks = 0;
    sim.set_loss(move |p| {
        if p.is_response(200) {
            oks += 1;
            return oks == 1;
        }
        false
    });
    let invite = request(Method::Invite, TransportKind::Udp, 1);
    let key = sim.alice_sends(invite.clone());
    sim.run_until(ms(10));
    let (bob_key, req) = sim.bob_request(0);
    sim.bob_responds(&bob_key, respond(&req, 180));
    let ok = respond(&req, 200);
    sim.bob_responds(&bob_key, ok.clone());
    assert_eq!(sim.layer(BOB).state(&bob_key), Some(State::Accepted));
    // Bob's TU retransmits its 2xx (RFC 3261 §13.3.1.4) through the transaction.
    sim.run_until(ms(510));
    sim.bob_responds(&bob_key, ok.clone());
    sim.run_until(ms(1510));
    sim.bob_responds(&bob_key, ok.clone());
    sim.run_until(ms(1600));
    assert_eq!(sim.layer(ALICE).state(&key), Some(State::Accepted));
    // Both 2xx that arrived went up (RFC 6026); alice's TU ACKs outside the transaction.
    assert_eq!(responses(&sim.tu_events(ALICE, |_| true)), [180, 200, 200]);
    let bob = sim.peer_of(BOB);
    sim.layer(ALICE)
        .send_stateless(&ack_for_2xx(&invite, &ok), bob);
    sim.run_until(secs(40));
    assert_eq!(
        sim.tu_events(BOB, |e| matches!(e, Event::Ack { .. })).len(),
        1
    );
    let ended = |n| sim.tu_events(n, |e| matches!(e, Event::Terminated { .. }))[0].at;
    assert_eq!(ended(ALICE), ms(520 + 32_000));
    assert_eq!(ended(BOB), ms(10 + 32_000));
    assert!(sim.layer(ALICE).is_empty() && sim.layer(BOB).is_empty());
}

#[test]
fn cancel_waits_for_a_provisional_then_487_is_acked() {
    let mut sim = Sim::new(TransportKind::Udp);
    let invite_key = sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    let now = sim.now;
    // Nothing heard yet: the CANCEL must wait (RFC 3261 §9.1).
    let cancel_key = sim
        .layer(ALICE)
        .cancel(&invite_key, now)
        .expect("cancel accepted");
    assert_eq!(
        sim.layer(ALICE).cancel(&invite_key, now),
        Err(SendError::Duplicate)
    );
    sim.run_until(ms(215));
    assert!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Cancel))
            .is_empty()
    );
    // Bob's automatic 100 Trying (200 ms) arrives at 220 ms and releases it.
    sim.run_until(ms(240));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Cancel)),
        [ms(220)]
    );
    let (cancel_at_bob, cancel_req) = sim.bob_request(1);
    let (invite_at_bob, invite_req) = sim.bob_request(0);
    let Some(Seen {
        event: Event::Request { cancels, .. },
        ..
    }) = sim
        .tu_events(
            BOB,
            |e| matches!(e, Event::Request { request, .. } if request.method == Method::Cancel),
        )
        .first()
        .cloned()
    else {
        panic!("bob saw the CANCEL");
    };
    assert_eq!(cancels.as_ref(), Some(&invite_at_bob));
    assert_eq!(cancel_req.top_via(), invite_req.top_via());
    sim.bob_responds(&cancel_at_bob, respond(&cancel_req, 200));
    sim.bob_responds(&invite_at_bob, respond(&invite_req, 487));
    sim.run_until(secs(1));
    let alice_tu = sim.tu_events(ALICE, |e| matches!(e, Event::Response { .. }));
    let by_key = |k: &TransactionKey| {
        alice_tu
            .iter()
            .filter_map(|s| match &s.event {
                Event::Response { key, response } if key == k => Some(response.status),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(by_key(&invite_key), [100, 487]);
    assert_eq!(by_key(&cancel_key), [200]);
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Ack)).len(),
        1
    );
    assert_eq!(sim.layer(BOB).state(&invite_at_bob), Some(State::Confirmed));
}

#[test]
fn a_deferred_cancel_keeps_its_reason_header() {
    let mut sim = Sim::new(TransportKind::Udp);
    let invite_key = sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    let now = sim.now;
    let reason = "SIP;cause=200;text=\"Call completed elsewhere\"";
    sim.layer(ALICE)
        .cancel_with_reason(&invite_key, Some(reason), now)
        .expect("cancel accepted");
    // Released by Bob's automatic 100 Trying at 220 ms.
    sim.run_until(ms(240));
    let (_, cancel_req) = sim.bob_request(1);
    assert_eq!(cancel_req.method, Method::Cancel);
    assert_eq!(cancel_req.headers.get_by(&HeaderName::Reason), Some(reason));
}

#[test]
fn cancel_is_refused_after_a_final_response() {
    let mut sim = Sim::new(TransportKind::Udp);
    let invite_key = sim.alice_sends(request(Method::Invite, TransportKind::Udp, 1));
    sim.run_until(ms(10));
    let (k, req) = sim.bob_request(0);
    sim.bob_responds(&k, respond(&req, 603));
    sim.run_until(ms(30));
    let now = sim.now;
    assert_eq!(
        sim.layer(ALICE).cancel(&invite_key, now),
        Err(SendError::WrongState(State::Completed))
    );
    let options = sim.alice_sends(request(Method::Options, TransportKind::Udp, 2));
    assert_eq!(
        sim.layer(ALICE).cancel(&options, now),
        Err(SendError::NotClientInvite)
    );
}

#[test]
fn reliable_transport_never_retransmits_and_lingers_zero() {
    let mut sim = Sim::new(TransportKind::Tcp);
    sim.set_loss(|p| p.n == 0);
    sim.alice_sends(request(Method::Invite, TransportKind::Tcp, 1));
    sim.alice_sends(request(Method::Options, TransportKind::Tcp, 2));
    sim.run_until(ms(100));
    let (k, req) = sim.bob_request(0);
    assert_eq!(req.method, Method::Options);
    sim.bob_responds(&k, respond(&req, 200));
    // J = 0: bob's transaction is gone as soon as it answered.
    assert_eq!(sim.layer(BOB).len(), 0);
    sim.run_until(ms(120));
    // K = 0 at alice too; only the lost INVITE's transaction remains, and it never
    // retransmits: Timer A is not used, Timer B still bounds it.
    assert_eq!(sim.layer(ALICE).len(), 1);
    sim.run_until(secs(40));
    assert_eq!(
        sim.sent_times(ALICE, |m| is_request(m, &Method::Invite)),
        [ms(0)]
    );
    let timeouts = sim.tu_events(ALICE, |e| matches!(e, Event::Timeout { .. }));
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].at, ms(32_000));
    assert!(sim.layer(ALICE).is_empty());
}

#[test]
fn transport_error_ends_the_transaction() {
    let mut sim = Sim::new(TransportKind::Tcp);
    let key = sim.alice_sends(request(Method::Invite, TransportKind::Tcp, 1));
    let now = sim.now;
    sim.layer(ALICE).handle_transport_error(&key, now);
    sim.pump();
    let tu = sim.tu_events(ALICE, |_| true);
    assert!(matches!(&tu[0].event, Event::TransportError { key: k } if *k == key));
    assert!(matches!(&tu[1].event, Event::Terminated { key: k } if *k == key));
    assert!(sim.layer(ALICE).is_empty());
}

#[test]
fn send_request_rejects_what_is_not_a_transaction() {
    let mut sim = Sim::new(TransportKind::Udp);
    let bob = sim.peer_of(BOB);
    let now = sim.now;
    let ack = request(Method::Ack, TransportKind::Udp, 1);
    assert_eq!(
        sim.layer(ALICE).send_request(ack, bob, now),
        Err(SendError::AckNotATransaction)
    );
    let mut legacy = request(Method::Options, TransportKind::Udp, 1);
    legacy
        .headers
        .set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=1234");
    assert_eq!(
        sim.layer(ALICE).send_request(legacy, bob, now),
        Err(SendError::Key(KeyError::NoBranch))
    );
    let req = request(Method::Options, TransportKind::Udp, 1);
    sim.layer(ALICE)
        .send_request(req.clone(), bob, now)
        .expect("first");
    assert_eq!(
        sim.layer(ALICE).send_request(req, bob, now),
        Err(SendError::Duplicate)
    );
}
