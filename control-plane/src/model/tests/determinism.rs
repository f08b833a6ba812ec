//! Determinism: the same entries give the same state and the same snapshot bytes;
//! snapshots restore exactly; revisions move only on success.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

/// A small world so random commands collide often: two tenants, three extensions,
/// two hunt groups, one queue, two numbers, three reporting nodes, two drained nodes.
fn command_from(op: u8, a: u8, b: u8, c: u8) -> Command {
    let t = ["acme", "beta"][usize::from(a % 2)];
    let e = ["1001", "1002", "1003"][usize::from(b % 3)];
    let e2 = ["1001", "1002", "1003"][usize::from(c % 3)];
    let dest = match c % 4 {
        0 => Destination::Extension(id(e)),
        1 => Destination::HuntGroup(id(["h1", "h2"][usize::from(b % 2)])),
        2 => Destination::Queue(id("q1")),
        _ => Destination::External("+84901234567".into()),
    };
    let digits = ["18001234", "19006868", "02873001234"][usize::from(b % 3)];
    let kind = [
        NumberKind::TollFree1800,
        NumberKind::Premium1900,
        NumberKind::Geographic,
    ][usize::from(b % 3)];
    let trunk_id = ["t1", "t2"][usize::from(b % 2)];
    let sources: &[&str] = match c % 3 {
        0 => &[],
        1 => &["203.0.113.7"],
        _ => &["203.0.113.0/24", "198.51.100.7:5060"],
    };
    match op % 28 {
        0 => Command::CreateTenant(tenant(t, u32::from(c % 4))),
        1 => Command::DeleteTenant { tenant: id(t) },
        2 => Command::CreateExtension(extension(t, e)),
        3 => Command::DeleteExtension {
            tenant: id(t),
            ext: id(e),
        },
        4 => Command::CreateNumber(number(t, digits, kind, dest)),
        5 => Command::UpdateNumber(number(t, digits, kind, dest)),
        6 => Command::DeleteNumber {
            tenant: id(t),
            digits: digits.into(),
        },
        7 => {
            let mut h = hunt_group(t, ["h1", "h2"][usize::from(c % 2)], &[e, e2]);
            h.no_answer = dest;
            Command::CreateHuntGroup(h)
        }
        8 => Command::DeleteHuntGroup {
            tenant: id(t),
            id: id(["h1", "h2"][usize::from(c % 2)]),
        },
        9 => Command::CreateQueue(queue(t, "q1")),
        10 => Command::DeleteQueue {
            tenant: id(t),
            id: id("q1"),
        },
        11 => Command::CreateAgent(agent(t, e)),
        12 => Command::DeleteAgent {
            tenant: id(t),
            extension: id(e),
        },
        13 | 14 => Command::Register(RegisterRequest {
            tenant: id(t),
            extension: id(e),
            call_id: format!("call-{c}"),
            cseq: u32::from(op),
            source: SocketAddr::from(([198, 51, 100, c], 5060)),
            transport: Transport::Udp,
            contacts: vec![ContactUpdate {
                contact: format!("sip:{e}@phone{}", c % 3),
                expires_secs: u32::from(c % 4) * 20,
                q: 1000,
                params: String::new(),
            }],
        }),
        15 => Command::SweepExpired {
            now_ms: T0 + u64::from(c) * 1000,
        },
        16 => Command::CreateApiToken(api_token(
            t,
            ["ci", "crm"][usize::from(b % 2)],
            ['a', 'b', 'c'][usize::from(c % 3)],
        )),
        17 => Command::DeleteApiToken {
            tenant: id(t),
            id: id(["ci", "crm"][usize::from(b % 2)]),
        },
        18 | 19 => {
            let mut tr = trunk(t, trunk_id, sources);
            tr.failover = (c % 2 == 1).then(|| id(["t1", "t2"][usize::from(c % 4 / 2)]));
            if op % 24 == 18 {
                Command::CreateTrunk(Box::new(tr))
            } else {
                Command::UpdateTrunk(Box::new(tr))
            }
        }
        20 => Command::DeleteTrunk {
            tenant: id(t),
            id: id(trunk_id),
        },
        22 | 23 => Command::ReportLoad {
            node: ["node-a", "node-b", "node-c"][usize::from(b % 3)].into(),
            tenants: match c % 4 {
                0 => vec![],
                1 => vec![TenantLoad {
                    tenant: id(t),
                    active_calls: u32::from(c),
                    attempts_per_sec: u32::from(a),
                }],
                2 => vec![TenantLoad {
                    tenant: id(t),
                    active_calls: 0,
                    attempts_per_sec: 0,
                }],
                // Refused: a tenant twice.
                _ => vec![
                    TenantLoad {
                        tenant: id(t),
                        active_calls: 1,
                        attempts_per_sec: 0,
                    };
                    2
                ],
            },
        },
        24 => Command::DrainNode {
            node: ["node-a", "node-b", ""][usize::from(b % 3)].into(),
        },
        25 => Command::AcceptDrain {
            node: ["node-a", "node-b"][usize::from(b % 2)].into(),
            seq: u64::from(c % 4),
        },
        26 => Command::QueueJoin(Box::new(QueueArrival {
            tenant: id(t),
            queue: id("q1"),
            call_id: ["c1", "c2"][usize::from(b % 2)].into(),
            node: "node-a".into(),
            caller: String::new(),
            priority: c % 12,
        })),
        27 => Command::AcdTick {
            now_ms: T0 + 300_000 + u64::from(c) * 500,
        },
        _ => {
            let mut tn = tenant(t, 3);
            tn.calls.outbound_trunk = c.is_multiple_of(2).then(|| id(trunk_id));
            tn.calls.caller_id = (!c.is_multiple_of(3)).then(|| digits.to_owned());
            tn.calls.recording = [
                RecordingPolicy::Always,
                RecordingPolicy::Never,
                RecordingPolicy::OnDemand,
            ][usize::from(a % 3)];
            Command::UpdateTenant(tn)
        }
    }
}

fn entries(raw: &[(u8, u8, u8, u8)]) -> Vec<Entry> {
    raw.iter()
        .enumerate()
        .map(|(i, &(op, a, b, c))| Entry {
            // Leader time moves forward 0.5 s per entry; sweeps never look ahead of it.
            time_ms: T0 + 300_000 + i as u64 * 500,
            command: command_from(op, a, b, c),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Two replicas applying the same log agree byte for byte, and a replica that
    /// restored a snapshot half way agrees with both.
    #[test]
    fn replicas_agree(raw in prop::collection::vec(any::<(u8, u8, u8, u8)>(), 0..200)) {
        let log = entries(&raw);
        let mut a = State::new();
        let mut b = State::new();
        let mut results = Vec::new();
        for e in &log {
            let before = a.clone();
            let r = a.apply(e);
            if r.is_err() {
                prop_assert_eq!(&a, &before);
            }
            prop_assert_eq!(&a.stored_bindings, &a.count_stored_bindings());
            // The revision moves exactly when something else changed.
            let mut unrevised = a.clone();
            unrevised.revision = before.revision;
            let changed = unrevised != before;
            prop_assert_eq!(a.revision(), before.revision() + u64::from(changed));
            results.push(r);
        }
        let half = log.len() / 2;
        for (e, expected) in log.iter().zip(&results) {
            prop_assert_eq!(&b.apply(e), expected);
        }
        prop_assert_eq!(a.snapshot().expect("encode"), b.snapshot().expect("encode"));

        let mut c = State::new();
        for e in &log[..half] {
            let _ = c.apply(e);
        }
        let mut c = State::restore(&c.snapshot().expect("encode")).expect("own snapshot restores");
        for (e, expected) in log[half..].iter().zip(&results[half..]) {
            prop_assert_eq!(&c.apply(e), expected);
        }
        prop_assert_eq!(c.snapshot().expect("encode"), a.snapshot().expect("encode"));
        prop_assert_eq!(c, a);
    }

    /// Decoding arbitrary bytes never panics.
    #[test]
    fn restore_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = State::restore(&bytes);
    }
}

/// A fixed, busy log touching every entity kind.
fn busy_log() -> Vec<Entry> {
    let mut log = Vec::new();
    for (i, (op, a, b, c)) in [
        (0, 0, 0, 3),
        (0, 1, 0, 2),
        (2, 0, 0, 0),
        (2, 0, 1, 0),
        (2, 1, 0, 0),
        (9, 0, 0, 0),
        (7, 0, 1, 3),
        (4, 0, 0, 0),
        (4, 0, 1, 2),
        (11, 0, 1, 0),
        (13, 0, 0, 1),
        (14, 1, 0, 3),
        (16, 0, 0, 0),
        (16, 1, 1, 1),
        (4, 0, 2, 3),
        (18, 0, 0, 2),
        (18, 0, 1, 1),
        (19, 0, 0, 0),
        (21, 0, 2, 2),
        (22, 0, 0, 1),
        (22, 1, 1, 1),
    ]
    .into_iter()
    .enumerate()
    {
        log.push(Entry {
            time_ms: T0 + i as u64,
            command: command_from(op, a, b, c),
        });
    }
    log
}

#[test]
fn snapshot_round_trip() {
    let mut s = State::new();
    for e in busy_log() {
        s.apply(&e).expect("busy log applies");
    }
    assert_eq!(s.extensions(&id("acme")).count(), 2);
    assert_eq!(s.numbers().count(), 3);
    assert_eq!(s.all_api_tokens().count(), 2);
    assert_eq!(s.trunks(&id("acme")).count(), 2);
    let acme = s.tenant(&id("acme")).expect("acme");
    assert_eq!(acme.calls.outbound_trunk, Some(id("t1")));
    assert_eq!(acme.calls.caller_id.as_deref(), Some("02873001234"));
    assert_eq!(s.load_reports().count(), 2);
    let bytes = s.snapshot().expect("encode");
    let restored = State::restore(&bytes).expect("restore");
    assert_eq!(restored, s);
    assert_eq!(restored.snapshot().expect("encode"), bytes);
    assert_eq!(restored.revision(), s.revision());
    assert!(State::restore(&bytes[..bytes.len() - 1]).is_err());
    assert!(matches!(State::restore(&[]), Err(SnapshotError::Decode(_))));
}

#[test]
fn entries_round_trip_through_postcard() {
    for e in busy_log() {
        let bytes = postcard::to_allocvec(&e).expect("encode");
        let back: Entry = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, e);
    }
    let err = CommandError::ExtensionInUse {
        tenant: id("acme"),
        extension: id("1001"),
        used_by: vec![Reference::Agent(id("1001"))],
    };
    let bytes = postcard::to_allocvec(&err).expect("encode");
    assert_eq!(postcard::from_bytes::<CommandError>(&bytes), Ok(err));
}

#[test]
fn revision_moves_only_on_success() {
    let mut s = State::new();
    assert_eq!(s.revision(), 0);
    ok(&mut s, Command::CreateTenant(tenant("acme", 5)));
    assert_eq!(s.revision(), 1);
    refused(&mut s, Command::CreateTenant(tenant("acme", 5)));
    refused(&mut s, Command::DeleteTenant { tenant: id("nope") });
    assert_eq!(s.revision(), 1);
    ok(&mut s, Command::CreateExtension(extension("acme", "1001")));
    assert_eq!(s.revision(), 2);
    ok(&mut s, Command::SweepExpired { now_ms: T0 });
    assert_eq!(
        s.revision(),
        2,
        "a sweep that removed nothing changed nothing"
    );
    // Found by `replicas_agree`: an update storing what is already stored.
    ok(&mut s, Command::UpdateExtension(extension("acme", "1001")));
    assert_eq!(s.revision(), 2, "an identical update changed nothing");
    let mut renamed = extension("acme", "1001");
    renamed.display_name = "Lan".into();
    ok(&mut s, Command::UpdateExtension(renamed));
    assert_eq!(s.revision(), 3);
    let unregister = Command::Unregister {
        tenant: id("acme"),
        extension: id("1001"),
        call_id: "c1".into(),
        cseq: 1,
    };
    assert_eq!(ok(&mut s, unregister), Outcome::Bindings(Vec::new()));
    assert_eq!(s.revision(), 3, "nothing to unregister");
}
