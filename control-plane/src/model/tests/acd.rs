//! The ACD in the state machine: service order across nodes, offers, results, timers,
//! overflow, KPI counters; and, for random command sequences, the invariants that make it
//! one queue: no agent is ever offered two callers, offers and agent activity agree, the
//! service order is exactly the waiting callers.

use proptest::prelude::*;

use super::*;

const Q: &str = "sales";

/// Tenant acme with agents 1001..1003 (available) serving queue `sales`.
fn center(strategy: QueueStrategy, edit: impl FnOnce(&mut Queue)) -> State {
    let mut s = State::new();
    ok(&mut s, Command::CreateTenant(tenant("acme", 10)));
    for e in ["1001", "1002", "1003"] {
        ok(&mut s, Command::CreateExtension(extension("acme", e)));
        ok(&mut s, Command::CreateAgent(agent("acme", e)));
    }
    let mut q = queue("acme", Q);
    q.strategy = strategy;
    q.members = ["1001", "1002", "1003"]
        .iter()
        .map(|e| QueueMember {
            extension: id(e),
            penalty: 0,
        })
        .collect();
    edit(&mut q);
    ok(&mut s, Command::CreateQueue(q));
    s
}

fn at(s: &mut State, ms: u64, command: Command) -> Result<Outcome, CommandError> {
    s.apply(&Entry {
        time_ms: T0 + ms,
        command,
    })
}

fn join(s: &mut State, ms: u64, call: &str, node: &str, priority: u8) -> Outcome {
    at(
        s,
        ms,
        Command::QueueJoin(Box::new(QueueArrival {
            tenant: id("acme"),
            queue: id(Q),
            call_id: call.into(),
            node: node.into(),
            caller: "0901234567".into(),
            priority,
        })),
    )
    .unwrap_or_else(|e| panic!("join {call}: {e}"))
}

fn offer_of(s: &State, call: &str) -> Option<Offer> {
    s.acd().entry(&id("acme"), call)?.offer.clone()
}

fn answer(s: &mut State, ms: u64, call: &str, agent: &str) -> Result<Outcome, CommandError> {
    let offer = offer_of(s, call).map_or(0, |o| o.seq);
    at(
        s,
        ms,
        Command::OfferAnswered {
            tenant: id("acme"),
            call_id: call.into(),
            agent: id(agent),
            offer,
        },
    )
}

fn end_call(s: &mut State, ms: u64, agent: &str) {
    at(
        s,
        ms,
        Command::AgentCallEnded {
            tenant: id("acme"),
            agent: id(agent),
            hold_ms: 0,
        },
    )
    .expect("call ended");
}

fn tick(s: &mut State, ms: u64) {
    at(s, ms, Command::AcdTick { now_ms: T0 + ms }).expect("tick");
}

fn set_presence(s: &mut State, ext: &str, state: AgentState) {
    let mut a = s.agent(&id("acme"), &id(ext)).unwrap().clone();
    a.state = state;
    ok(s, Command::UpdateAgent(a));
}

fn waiting(s: &State) -> Vec<String> {
    s.acd()
        .waiting(&id("acme"), &id(Q))
        .map(|e| e.call_id.clone())
        .collect()
}

fn activity(s: &State, ext: &str) -> AgentActivity {
    s.acd()
        .agent_runtime(&id("acme"), &id(ext))
        .expect("runtime")
        .activity
        .clone()
}

fn stats(s: &State) -> QueueStats {
    s.acd()
        .queue_runtime(&id("acme"), &id(Q))
        .expect("runtime")
        .stats
        .clone()
}

#[test]
fn callers_from_two_nodes_are_served_in_arrival_order_and_vip_first() {
    let mut s = center(QueueStrategy::LongestIdle, |_| {});
    for e in ["1001", "1002", "1003"] {
        set_presence(
            &mut s,
            e,
            AgentState::Paused {
                reason: "lunch".into(),
            },
        );
    }
    join(&mut s, 0, "a", "node-1", 0);
    join(&mut s, 10, "b", "node-2", 0);
    join(&mut s, 20, "c", "node-1", 0);
    assert_eq!(
        join(&mut s, 30, "vip", "node-2", 5),
        Outcome::QueueJoined {
            position: 1,
            expected_wait_secs: None
        }
    );
    assert_eq!(waiting(&s), ["vip", "a", "b", "c"]);
    // One agent back: the VIP is offered first, then arrival order.
    set_presence(&mut s, "1002", AgentState::Available);
    assert_eq!(offer_of(&s, "vip").unwrap().agents, [id("1002")]);
    assert!(offer_of(&s, "a").is_none());
    answer(&mut s, 1_000, "vip", "1002").unwrap();
    end_call(&mut s, 61_000, "1002");
    assert_eq!(offer_of(&s, "a").unwrap().agents, [id("1002")]);
    answer(&mut s, 62_000, "a", "1002").unwrap();
    assert_eq!(waiting(&s), ["b", "c"]);
}

#[test]
fn an_agent_is_never_offered_two_callers_and_ring_all_takes_the_first_answer() {
    let mut s = center(QueueStrategy::RingAll, |_| {});
    join(&mut s, 0, "a", "node-1", 0);
    // Every idle agent rings for the first caller; the second waits.
    assert_eq!(
        offer_of(&s, "a").unwrap().agents,
        [id("1001"), id("1002"), id("1003")]
    );
    join(&mut s, 10, "b", "node-2", 0);
    assert!(offer_of(&s, "b").is_none());
    answer(&mut s, 500, "a", "1003").unwrap();
    // A late answer of the same offer by another agent is refused (the node BYEs it).
    let late = answer(&mut s, 501, "a", "1001");
    assert!(
        matches!(late, Err(CommandError::NotQueued { .. })),
        "{late:?}"
    );
    // The others were freed and now ring for b.
    assert_eq!(offer_of(&s, "b").unwrap().agents, [id("1001"), id("1002")]);
    assert!(matches!(activity(&s, "1003"), AgentActivity::OnCall { .. }));
}

#[test]
fn a_no_answer_pauses_the_agent_and_the_next_one_is_offered() {
    let mut s = center(QueueStrategy::TopDown, |q| q.auto_pause_no_answer = true);
    join(&mut s, 0, "a", "node-1", 0);
    assert_eq!(offer_of(&s, "a").unwrap().agents, [id("1001")]);
    // The offer rings out after ring_secs (20 s): 1001 paused, 1002 offered.
    tick(&mut s, 19_999);
    assert_eq!(offer_of(&s, "a").unwrap().agents, [id("1001")]);
    tick(&mut s, 20_000);
    assert_eq!(
        s.agent(&id("acme"), &id("1001")).unwrap().state,
        AgentState::Paused {
            reason: NO_ANSWER_PAUSE.into()
        }
    );
    let offer = offer_of(&s, "a").unwrap();
    assert_eq!(offer.agents, [id("1002")]);
    // 1002 is busy on another call: failed, not paused; 1003 next.
    at(
        &mut s,
        21_000,
        Command::OfferFailed {
            tenant: id("acme"),
            call_id: "a".into(),
            agent: id("1002"),
            offer: offer.seq,
            failure: OfferFailure::Busy,
        },
    )
    .unwrap();
    assert_eq!(
        s.agent(&id("acme"), &id("1002")).unwrap().state,
        AgentState::Available
    );
    assert_eq!(offer_of(&s, "a").unwrap().agents, [id("1003")]);
}

#[test]
fn wrap_up_keeps_the_agent_from_the_next_caller_until_it_ends() {
    let mut s = center(QueueStrategy::TopDown, |q| {
        q.wrap_up_secs = 30;
        q.members.truncate(1);
    });
    join(&mut s, 0, "a", "node-1", 0);
    answer(&mut s, 1_000, "a", "1001").unwrap();
    join(&mut s, 2_000, "b", "node-1", 0);
    end_call(&mut s, 61_000, "1001");
    assert_eq!(
        activity(&s, "1001"),
        AgentActivity::WrapUp {
            until_ms: T0 + 91_000
        }
    );
    // Occupancy: busy (60 s talk, then the wrap-up so far) / staffed (since T0).
    let occupancy = |s: &State, at: u64| {
        s.queue_kpis(&id("acme"), &id(Q), T0 + at)
            .unwrap()
            .occupancy
            .unwrap()
    };
    assert!((occupancy(&s, 76_000) - 75.0 / 76.0).abs() < 1e-9);
    tick(&mut s, 90_000);
    assert!(offer_of(&s, "b").is_none());
    tick(&mut s, 91_000);
    assert_eq!(offer_of(&s, "b").unwrap().agents, [id("1001")]);
    assert!((occupancy(&s, 91_000) - 90.0 / 91.0).abs() < 1e-9);
    // Paused time is not staffed.
    let mut paused = s.agent(&id("acme"), &id("1001")).unwrap().clone();
    paused.state = AgentState::Paused {
        reason: "break".into(),
    };
    at(&mut s, 91_000, Command::UpdateAgent(paused)).unwrap();
    let later = s.queue_kpis(&id("acme"), &id(Q), T0 + 500_000).unwrap();
    assert_eq!(later.occupancy, Some(90.0 / 91.0));
    let st = stats(&s);
    assert_eq!((st.handled, st.talk_ms, st.wrap_up_ms), (1, 60_000, 30_000));
    assert_eq!(
        s.acd()
            .queue_runtime(&id("acme"), &id(Q))
            .unwrap()
            .recent_handle_ms,
        90_000
    );
}

#[test]
fn tiers_open_with_waiting_time() {
    let mut s = center(QueueStrategy::TopDown, |q| {
        q.tier_widen_secs = 30;
        q.members[0].penalty = 1;
        q.members[1].penalty = 2;
        q.members.truncate(2);
    });
    join(&mut s, 0, "a", "node-1", 0);
    assert!(offer_of(&s, "a").is_none(), "no tier-0 agent");
    tick(&mut s, 29_000);
    assert!(offer_of(&s, "a").is_none());
    tick(&mut s, 30_000);
    assert_eq!(offer_of(&s, "a").unwrap().agents, [id("1001")]);
}

#[test]
fn overflow_by_length_and_by_wait_and_timeouts() {
    let mut s = center(QueueStrategy::LongestIdle, |q| {
        q.overflow = Some(Overflow {
            destination: Destination::External("0281234567".into()),
            at_len: 2,
            after_wait_secs: 60,
        });
        q.max_wait_secs = 90;
    });
    for e in ["1001", "1002", "1003"] {
        set_presence(
            &mut s,
            e,
            AgentState::Paused {
                reason: "meeting".into(),
            },
        );
    }
    join(&mut s, 0, "a", "node-1", 0);
    join(&mut s, 1, "b", "node-1", 0);
    assert_eq!(
        join(&mut s, 2, "c", "node-1", 0),
        Outcome::QueueRedirected {
            destination: Destination::External("0281234567".into())
        }
    );
    assert!(s.acd().entry(&id("acme"), "c").is_none());
    tick(&mut s, 60_000);
    assert_eq!(waiting(&s), ["b"], "b joined 1 ms later");
    tick(&mut s, 60_001);
    let a = s.acd().entry(&id("acme"), "a").unwrap();
    assert_eq!(
        a.exit,
        Some(QueueExit::Overflow(Destination::External(
            "0281234567".into()
        )))
    );
    assert!(waiting(&s).is_empty());
    // The node moves the calls, then takes them out.
    for call in ["a", "b"] {
        at(
            &mut s,
            61_000,
            Command::QueueLeave {
                tenant: id("acme"),
                call_id: call.into(),
                reason: LeaveReason::Moved,
            },
        )
        .unwrap();
    }
    let st = stats(&s);
    assert_eq!((st.joined, st.overflowed, st.abandoned), (2, 3, 0));

    // Without an overflow: a timeout at max_wait, a full queue refused.
    let mut s = center(QueueStrategy::LongestIdle, |q| {
        q.max_len = 1;
        q.max_wait_secs = 10;
    });
    set_presence(&mut s, "1001", AgentState::LoggedOut);
    set_presence(&mut s, "1002", AgentState::LoggedOut);
    set_presence(&mut s, "1003", AgentState::Paused { reason: "x".into() });
    join(&mut s, 0, "a", "node-1", 0);
    assert!(matches!(
        at(
            &mut s,
            1,
            Command::QueueJoin(Box::new(QueueArrival {
                tenant: id("acme"),
                queue: id(Q),
                call_id: "b".into(),
                node: "node-1".into(),
                caller: String::new(),
                priority: 0,
            }))
        ),
        Err(CommandError::QueueFull { .. })
    ));
    tick(&mut s, 10_000);
    assert_eq!(
        s.acd().entry(&id("acme"), "a").unwrap().exit,
        Some(QueueExit::Timeout)
    );
    assert_eq!(stats(&s).timed_out, 1);
}

#[test]
fn nobody_logged_in_refuses_unless_join_empty_and_a_dead_node_takes_its_callers() {
    let mut s = center(QueueStrategy::LongestIdle, |q| q.join_empty = false);
    for e in ["1001", "1002", "1003"] {
        set_presence(&mut s, e, AgentState::LoggedOut);
    }
    let refused = at(
        &mut s,
        0,
        Command::QueueJoin(Box::new(QueueArrival {
            tenant: id("acme"),
            queue: id(Q),
            call_id: "a".into(),
            node: "node-1".into(),
            caller: String::new(),
            priority: 0,
        })),
    );
    assert_eq!(refused, Err(CommandError::QueueEmpty(id(Q))));
    set_presence(&mut s, "1001", AgentState::Paused { reason: "x".into() });
    join(&mut s, 0, "a", "node-1", 0);
    join(&mut s, 1, "b", "node-2", 0);
    join(&mut s, 2, "c", "node-1", 0);
    at(
        &mut s,
        3,
        Command::QueueNodeGone {
            node: "node-1".into(),
        },
    )
    .unwrap();
    assert_eq!(waiting(&s), ["b"]);
    assert_eq!(stats(&s).abandoned, 2);
    // The queue cannot be deleted while b waits; the agent cannot while it serves it.
    assert!(matches!(
        refused_cmd(
            &mut s,
            Command::DeleteQueue {
                tenant: id("acme"),
                id: id(Q)
            }
        ),
        CommandError::QueueHasCallers { waiting: 1, .. }
    ));
    assert!(matches!(
        refused_cmd(
            &mut s,
            Command::DeleteAgent {
                tenant: id("acme"),
                extension: id("1001")
            }
        ),
        CommandError::AgentInUse { .. }
    ));
}

fn refused_cmd(s: &mut State, command: Command) -> CommandError {
    refused(s, command)
}

#[test]
fn kpi_counters_and_expected_wait() {
    let mut s = center(QueueStrategy::LongestIdle, |q| q.service_level_secs = 20);
    join(&mut s, 0, "a", "node-1", 0);
    let who = offer_of(&s, "a").unwrap().agents[0].clone();
    answer(&mut s, 5_000, "a", who.as_str()).unwrap();
    end_call(&mut s, 125_000, who.as_str());
    for e in ["1001", "1002", "1003"] {
        if e != who.as_str() {
            set_presence(&mut s, e, AgentState::Paused { reason: "x".into() });
        }
    }
    join(&mut s, 126_000, "b", "node-1", 0);
    let second = offer_of(&s, "b").unwrap().agents[0].clone();
    answer(&mut s, 156_000, "b", second.as_str()).unwrap();
    join(&mut s, 157_000, "c", "node-1", 0);
    join(&mut s, 158_000, "d", "node-1", 0);
    // recent handle 120 s; 1 agent available; d is second in line: 2 rounds.
    let q = s.queue(&id("acme"), &id(Q)).unwrap().clone();
    assert_eq!(s.expected_wait_secs(&id("acme"), &q, 2), Some(240));
    at(
        &mut s,
        159_000,
        Command::QueueLeave {
            tenant: id("acme"),
            call_id: "c".into(),
            reason: LeaveReason::Abandoned,
        },
    )
    .unwrap();
    let st = stats(&s);
    assert_eq!(st.joined, 4);
    assert_eq!(st.answered, 2);
    assert_eq!(st.answered_within_service_level, 1, "5 s yes, 30 s no");
    assert_eq!(st.answered_wait_ms, 35_000);
    assert_eq!(st.abandoned, 1);
    // The KPIs from those counters, at +160 s: d waited 2 s.
    let k = s.queue_kpis(&id("acme"), &id(Q), T0 + 160_000).unwrap();
    assert_eq!((k.calls_waiting, k.longest_wait_ms), (1, 2_000));
    assert_eq!(
        k.agents,
        AgentCounts {
            paused: 2,
            on_call: 1,
            ..AgentCounts::default()
        }
    );
    assert_eq!(k.service_level, Some(0.5));
    assert_eq!(k.asa_ms, Some(17_500));
    assert_eq!(k.aht_ms, Some(120_000));
    assert_eq!(k.abandon_rate, Some(1.0 / 3.0));
}

#[test]
fn the_replicas_export_queue_and_agent_gauges_from_this_state() {
    use crate::acd_metrics::{QueueRow, gauges};
    let mut s = center(QueueStrategy::TopDown, |q| q.members.truncate(1));
    set_presence(&mut s, "1002", AgentState::LoggedOut);
    set_presence(&mut s, "1003", AgentState::Paused { reason: "x".into() });
    join(&mut s, 0, "a", "node-1", 0);
    join(&mut s, 1_000, "b", "node-1", 0);
    let g = gauges(&s, T0 + 4_000);
    assert_eq!(
        g.queues,
        [QueueRow {
            tenant: id("acme"),
            queue: id(Q),
            waiting: 2,
            longest_wait_secs: 4.0,
            service_level: None,
            calls: [2, 0, 0, 0, 0],
        }]
    );
    // 1001 rings for a; 1002 logged out; 1003 paused (agents of the tenant, any queue).
    assert_eq!(g.agents, [(id("acme"), [1, 1, 0, 1, 0, 0])]);
}

/// Random ACD traffic on the `center`: every command is applied (refusals included).
fn acd_command(op: u8, a: u8, b: u8, now: u64) -> Command {
    let call = ["c1", "c2", "c3", "c4", "c5"][usize::from(a % 5)].to_owned();
    let agent = id(["1001", "1002", "1003"][usize::from(b % 3)]);
    let tenant = id("acme");
    match op % 9 {
        0 | 1 => Command::QueueJoin(Box::new(QueueArrival {
            tenant,
            queue: id(Q),
            call_id: call,
            node: ["node-1", "node-2"][usize::from(b % 2)].into(),
            caller: String::new(),
            priority: b % 3,
        })),
        2 => Command::QueueLeave {
            tenant,
            call_id: call,
            reason: LeaveReason::Abandoned,
        },
        3 => Command::OfferAnswered {
            tenant,
            call_id: call,
            agent,
            offer: u64::from(b % 8),
        },
        4 => Command::OfferFailed {
            tenant,
            call_id: call,
            agent,
            offer: u64::from(b % 8),
            failure: OfferFailure::NoAnswer,
        },
        5 => Command::AgentCallEnded {
            tenant,
            agent,
            hold_ms: 0,
        },
        6 => Command::AcdTick { now_ms: now },
        7 => Command::UpdateAgent(Agent {
            state: [
                AgentState::Available,
                AgentState::LoggedOut,
                AgentState::Paused { reason: "x".into() },
            ][usize::from(a % 3)]
            .clone(),
            ..agent_fixture(agent.as_str())
        }),
        _ => Command::QueueNodeGone {
            node: ["node-1", "node-2"][usize::from(b % 2)].into(),
        },
    }
}

fn agent_fixture(ext: &str) -> Agent {
    agent("acme", ext)
}

/// The invariants of one queue across the cluster.
fn check_invariants(s: &State) -> Result<(), TestCaseError> {
    let tenant = id("acme");
    let mut offered = std::collections::BTreeMap::new();
    for e in s.acd().entries() {
        for agent in e.offer.iter().flat_map(|o| &o.agents) {
            prop_assert!(
                offered.insert(agent.clone(), e.call_id.clone()).is_none(),
                "agent {agent} offered two callers"
            );
            let rt = s.acd().agent_runtime(&tenant, agent).expect("runtime");
            prop_assert_eq!(
                &rt.activity,
                &AgentActivity::Ringing {
                    call_id: e.call_id.clone(),
                    offer: e.offer.as_ref().unwrap().seq
                }
            );
        }
    }
    for ((_, ext), rt) in s.acd().agent_runtimes() {
        if let AgentActivity::Ringing { call_id, .. } = &rt.activity {
            prop_assert_eq!(offered.get(ext), Some(call_id), "{} rings for nobody", ext);
        }
    }
    // The service order is exactly the waiting (not exited) callers, by priority then
    // arrival.
    let order: Vec<(u8, u64)> = s
        .acd()
        .waiting(&tenant, &id(Q))
        .map(|e| (MAX_PRIORITY - e.priority, e.seq))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    prop_assert_eq!(&order, &sorted);
    let live = s.acd().entries().filter(|e| e.exit.is_none()).count();
    prop_assert_eq!(order.len(), live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_queue_stays_consistent_under_random_traffic(
        raw in prop::collection::vec(any::<(u8, u8, u8, u8)>(), 0..150),
        strategy in 0u8..7,
    ) {
        let strategy = [
            QueueStrategy::RingAll,
            QueueStrategy::LongestIdle,
            QueueStrategy::LeastCalls,
            QueueStrategy::RoundRobin,
            QueueStrategy::TopDown,
            QueueStrategy::Random,
            QueueStrategy::SkillsBased,
        ][usize::from(strategy)];
        let mut s = center(strategy, |q| {
            q.max_len = 4;
            q.wrap_up_secs = 5;
            q.tier_widen_secs = 10;
            q.members[2].penalty = 1;
            q.auto_pause_no_answer = true;
            q.skill = Some(id("english"));
        });
        let mut replica = s.clone();
        let mut now = 0;
        for (op, a, b, step) in raw {
            now += u64::from(step) * 100;
            let command = acd_command(op, a, b, T0 + now);
            let entry = Entry { time_ms: T0 + now, command };
            let before = s.clone();
            let result = s.apply(&entry);
            if result.is_err() {
                prop_assert_eq!(&s, &before);
            }
            prop_assert_eq!(replica.apply(&entry), result);
            check_invariants(&s)?;
            // The leader ticks exactly when a tick would change something.
            let mut probe = s.clone();
            let due = probe.acd_due(T0 + now);
            probe
                .apply(&Entry { time_ms: T0 + now, command: Command::AcdTick { now_ms: T0 + now } })
                .expect("tick");
            prop_assert_eq!(probe.revision() != s.revision(), due);
        }
        prop_assert_eq!(s.snapshot().expect("encode"), replica.snapshot().expect("encode"));
    }
}
