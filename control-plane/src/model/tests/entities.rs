//! Validation of tenants, extensions, hunt groups, queues and agents.

use std::collections::BTreeSet;

use super::*;

#[test]
fn tenant_create_update_delete() {
    let mut s = State::new();
    ok(&mut s, Command::CreateTenant(tenant("acme", 5)));
    assert_eq!(
        refused(&mut s, Command::CreateTenant(tenant("acme", 5))),
        CommandError::TenantExists(id("acme"))
    );
    let mut t = tenant("acme", 7);
    t.name = "ACME Vietnam".into();
    ok(&mut s, Command::UpdateTenant(t.clone()));
    assert_eq!(s.tenant(&id("acme")), Some(&t));
    assert_eq!(
        refused(&mut s, Command::UpdateTenant(tenant("nope", 5))),
        CommandError::UnknownTenant(id("nope"))
    );
    ok(&mut s, Command::DeleteTenant { tenant: id("acme") });
    assert_eq!(s.tenants().count(), 0);
    assert_eq!(
        refused(&mut s, Command::DeleteTenant { tenant: id("acme") }),
        CommandError::UnknownTenant(id("acme"))
    );
}

#[test]
fn quotas_over_bound_and_bad_names_are_refused() {
    let mut s = State::new();
    let mut t = tenant("acme", 5);
    t.quotas.max_concurrent_calls = tenant::MAX_CONCURRENT_CALLS + 1;
    assert!(matches!(
        refused(&mut s, Command::CreateTenant(t)),
        CommandError::QuotaOutOfBounds {
            quota: QuotaKind::MaxConcurrentCalls,
            ..
        }
    ));
    let mut t = tenant("acme", 5);
    t.quotas.max_call_attempts_per_sec = u32::MAX;
    assert!(matches!(
        refused(&mut s, Command::CreateTenant(t)),
        CommandError::QuotaOutOfBounds {
            quota: QuotaKind::MaxCallAttemptsPerSec,
            ..
        }
    ));
    let t = tenant("acme", tenant::MAX_REGISTRATIONS + 1);
    assert!(matches!(
        refused(&mut s, Command::CreateTenant(t)),
        CommandError::QuotaOutOfBounds {
            quota: QuotaKind::MaxRegistrations,
            ..
        }
    ));
    for name in ["", "bad\nname", &"x".repeat(129)] {
        let mut t = tenant("acme", 5);
        t.name = name.into();
        assert!(matches!(
            refused(&mut s, Command::CreateTenant(t)),
            CommandError::InvalidText {
                field: TextField::TenantName,
                ..
            }
        ));
    }
    // Zero is a valid quota (a suspended tenant).
    ok(&mut s, Command::CreateTenant(tenant("acme", 0)));
}

#[test]
fn tenant_with_contents_cannot_be_deleted() {
    let mut s = two_tenants();
    let dest = Destination::Extension(id("1001"));
    ok(
        &mut s,
        Command::CreateNumber(number("acme", "18001234", NumberKind::TollFree1800, dest)),
    );
    ok(&mut s, Command::CreateQueue(queue("acme", "support")));
    assert_eq!(
        refused(&mut s, Command::DeleteTenant { tenant: id("acme") }),
        CommandError::TenantNotEmpty {
            tenant: id("acme"),
            numbers: 1,
            extensions: 2,
            hunt_groups: 0,
            queues: 1,
            agents: 0,
            trunks: 0,
        }
    );
}

#[test]
fn extension_validation() {
    let mut s = two_tenants();
    assert_eq!(
        refused(&mut s, Command::CreateExtension(extension("acme", "1001"))),
        CommandError::ExtensionExists {
            tenant: id("acme"),
            extension: id("1001")
        }
    );
    assert_eq!(
        refused(&mut s, Command::UpdateExtension(extension("acme", "1009"))),
        CommandError::UnknownExtension {
            tenant: id("acme"),
            extension: id("1009")
        }
    );
    assert_eq!(
        refused(&mut s, Command::CreateExtension(extension("gone", "1001"))),
        CommandError::UnknownTenant(id("gone"))
    );
    let md5 = CommandError::InvalidHa1 {
        algorithm: Ha1Algorithm::Md5,
        expected_len: 32,
    };
    for bad in [
        "",
        "secret",
        &"A".repeat(32),
        &"g".repeat(32),
        &"a".repeat(31),
    ] {
        let mut e = extension("acme", "1003");
        e.ha1_md5 = bad.into();
        assert_eq!(refused(&mut s, Command::CreateExtension(e)), md5, "{bad}");
    }
    let mut e = extension("acme", "1003");
    e.ha1_sha256 = "a".repeat(32);
    assert_eq!(
        refused(&mut s, Command::CreateExtension(e)),
        CommandError::InvalidHa1 {
            algorithm: Ha1Algorithm::Sha256,
            expected_len: 64
        }
    );
    let mut e = extension("acme", "1003");
    e.display_name = "x\u{7}".into();
    assert!(matches!(
        refused(&mut s, Command::CreateExtension(e)),
        CommandError::InvalidText {
            field: TextField::DisplayName,
            ..
        }
    ));
    let mut e = extension("acme", "1003");
    e.forward_to_mobile = Some(ForwardToMobile {
        number: "+84901234567".into(),
        when: BTreeSet::new(),
    });
    assert_eq!(
        refused(&mut s, Command::CreateExtension(e.clone())),
        CommandError::NoForwardCondition
    );
    e.forward_to_mobile = Some(ForwardToMobile {
        number: "mobile".into(),
        when: BTreeSet::from([ForwardCondition::Always]),
    });
    assert_eq!(
        refused(&mut s, Command::CreateExtension(e)),
        CommandError::InvalidExternalNumber("mobile".into())
    );
}

#[test]
fn used_extension_cannot_be_deleted_and_names_its_users() {
    let mut s = two_tenants();
    let to_1001 = Destination::Extension(id("1001"));
    ok(
        &mut s,
        Command::CreateNumber(number(
            "acme",
            "18001234",
            NumberKind::TollFree1800,
            to_1001.clone(),
        )),
    );
    ok(
        &mut s,
        Command::CreateHuntGroup(hunt_group("acme", "sales", &["1002", "1001"])),
    );
    let mut hg = hunt_group("acme", "night", &["1002"]);
    hg.no_answer = to_1001;
    ok(&mut s, Command::CreateHuntGroup(hg));
    ok(&mut s, Command::CreateAgent(agent("acme", "1001")));
    let delete = || Command::DeleteExtension {
        tenant: id("acme"),
        ext: id("1001"),
    };
    assert_eq!(
        refused(&mut s, delete()),
        CommandError::ExtensionInUse {
            tenant: id("acme"),
            extension: id("1001"),
            used_by: vec![
                Reference::NumberDestination("18001234".into()),
                Reference::HuntGroupNoAnswer(id("night")),
                Reference::HuntGroupMember(id("sales")),
                Reference::Agent(id("1001")),
            ],
        }
    );
    // beta's 1001 is another extension: deleting it is fine.
    ok(
        &mut s,
        Command::DeleteExtension {
            tenant: id("beta"),
            ext: id("1001"),
        },
    );
    assert!(s.extension(&id("acme"), &id("1001")).is_some());
    assert!(s.extension(&id("beta"), &id("1001")).is_none());
}

#[test]
fn hunt_group_validation() {
    let mut s = two_tenants();
    let hg = hunt_group("acme", "sales", &["1001", "1002"]);
    assert_eq!(
        refused(&mut s, Command::UpdateHuntGroup(hg.clone())),
        CommandError::UnknownHuntGroup {
            tenant: id("acme"),
            id: id("sales")
        }
    );
    ok(&mut s, Command::CreateHuntGroup(hg.clone()));
    assert_eq!(
        refused(&mut s, Command::CreateHuntGroup(hg.clone())),
        CommandError::HuntGroupExists {
            tenant: id("acme"),
            id: id("sales")
        }
    );
    let mut dup = hg.clone();
    dup.members.push(id("1001"));
    assert_eq!(
        refused(&mut s, Command::UpdateHuntGroup(dup)),
        CommandError::DuplicateMember {
            group: id("sales"),
            member: id("1001")
        }
    );
    for ring_secs in [0, 4, 301] {
        let mut bad = hg.clone();
        bad.ring_secs = ring_secs;
        assert!(matches!(
            refused(&mut s, Command::UpdateHuntGroup(bad)),
            CommandError::OutOfBounds {
                field: BoundedField::RingSecs,
                ..
            }
        ));
    }
    let mut big = hg.clone();
    big.members = (0..101).map(|i| id(&format!("{i}"))).collect();
    assert!(matches!(
        refused(&mut s, Command::UpdateHuntGroup(big)),
        CommandError::OutOfBounds {
            field: BoundedField::HuntGroupMembers,
            ..
        }
    ));
    let mut looped = hg.clone();
    looped.no_answer = Destination::HuntGroup(id("sales"));
    assert_eq!(
        refused(&mut s, Command::UpdateHuntGroup(looped)),
        CommandError::HuntGroupLoop(id("sales"))
    );
    // A loop through another group is refused too: sales -> overflow -> sales.
    let mut overflow = hunt_group("acme", "overflow", &["1002"]);
    overflow.no_answer = Destination::HuntGroup(id("sales"));
    ok(&mut s, Command::CreateHuntGroup(overflow));
    let mut looped = hg.clone();
    looped.no_answer = Destination::HuntGroup(id("overflow"));
    assert_eq!(
        refused(&mut s, Command::UpdateHuntGroup(looped)),
        CommandError::HuntGroupLoop(id("sales"))
    );
    ok(
        &mut s,
        Command::DeleteHuntGroup {
            tenant: id("acme"),
            id: id("overflow"),
        },
    );
    let mut ring_all = hg;
    ring_all.strategy = RingStrategy::RingAll;
    ok(&mut s, Command::UpdateHuntGroup(ring_all.clone()));
    assert_eq!(s.hunt_group(&id("acme"), &id("sales")), Some(&ring_all));

    let to_sales = Destination::HuntGroup(id("sales"));
    ok(
        &mut s,
        Command::CreateNumber(number(
            "acme",
            "19006868",
            NumberKind::Premium1900,
            to_sales,
        )),
    );
    let delete = || Command::DeleteHuntGroup {
        tenant: id("acme"),
        id: id("sales"),
    };
    assert_eq!(
        refused(&mut s, delete()),
        CommandError::HuntGroupInUse {
            tenant: id("acme"),
            id: id("sales"),
            used_by: vec![Reference::NumberDestination("19006868".into())],
        }
    );
    ok(
        &mut s,
        Command::DeleteNumber {
            tenant: id("acme"),
            digits: "19006868".into(),
        },
    );
    ok(&mut s, delete());
    assert_eq!(
        refused(&mut s, delete()),
        CommandError::UnknownHuntGroup {
            tenant: id("acme"),
            id: id("sales")
        }
    );
}

#[test]
fn queue_validation_and_use() {
    let mut s = two_tenants();
    let q = queue("acme", "support");
    assert!(matches!(
        refused(&mut s, Command::UpdateQueue(q.clone())),
        CommandError::UnknownQueue { .. }
    ));
    ok(&mut s, Command::CreateQueue(q.clone()));
    assert!(matches!(
        refused(&mut s, Command::CreateQueue(q.clone())),
        CommandError::QueueExists { .. }
    ));
    for (field, wait, len) in [
        (BoundedField::MaxWaitSecs, 0, 10),
        (BoundedField::MaxWaitSecs, queue::MAX_WAIT_SECS + 1, 10),
        (BoundedField::MaxQueueLen, 60, 0),
        (BoundedField::MaxQueueLen, 60, queue::MAX_QUEUE_LEN + 1),
    ] {
        let mut bad = q.clone();
        bad.max_wait_secs = wait;
        bad.max_len = len;
        assert!(matches!(
            refused(&mut s, Command::UpdateQueue(bad)),
            CommandError::OutOfBounds { field: f, .. } if f == field
        ));
    }
    let mut bad = q.clone();
    bad.name = String::new();
    assert!(matches!(
        refused(&mut s, Command::UpdateQueue(bad)),
        CommandError::InvalidText {
            field: TextField::QueueName,
            ..
        }
    ));
    let mut hg = hunt_group("acme", "sales", &["1001"]);
    hg.no_answer = Destination::Queue(id("support"));
    ok(&mut s, Command::CreateHuntGroup(hg));
    let delete = || Command::DeleteQueue {
        tenant: id("acme"),
        id: id("support"),
    };
    assert_eq!(
        refused(&mut s, delete()),
        CommandError::QueueInUse {
            tenant: id("acme"),
            id: id("support"),
            used_by: vec![Reference::HuntGroupNoAnswer(id("sales"))],
        }
    );
    ok(
        &mut s,
        Command::DeleteHuntGroup {
            tenant: id("acme"),
            id: id("sales"),
        },
    );
    ok(&mut s, delete());
    assert!(s.queue(&id("acme"), &id("support")).is_none());
}

#[test]
fn agent_validation() {
    let mut s = two_tenants();
    let a = agent("acme", "1001");
    assert!(matches!(
        refused(&mut s, Command::UpdateAgent(a.clone())),
        CommandError::UnknownAgent { .. }
    ));
    ok(&mut s, Command::CreateAgent(a.clone()));
    assert!(matches!(
        refused(&mut s, Command::CreateAgent(a.clone())),
        CommandError::AgentExists { .. }
    ));
    let mut paused = a.clone();
    paused.state = AgentState::Paused {
        reason: "lunch".into(),
    };
    ok(&mut s, Command::UpdateAgent(paused.clone()));
    assert_eq!(s.agent(&id("acme"), &id("1001")), Some(&paused));
    paused.state = AgentState::Paused {
        reason: String::new(),
    };
    assert!(matches!(
        refused(&mut s, Command::UpdateAgent(paused)),
        CommandError::InvalidText {
            field: TextField::PauseReason,
            ..
        }
    ));
    let mut skilled = a.clone();
    skilled.skills.insert(id("french"), 101);
    assert!(matches!(
        refused(&mut s, Command::UpdateAgent(skilled)),
        CommandError::OutOfBounds {
            field: BoundedField::SkillLevel,
            ..
        }
    ));
    let mut many = a;
    many.skills = (0..65).map(|i| (id(&format!("s{i}")), 1)).collect();
    assert!(matches!(
        refused(&mut s, Command::UpdateAgent(many)),
        CommandError::OutOfBounds {
            field: BoundedField::Skills,
            ..
        }
    ));
    let delete = || Command::DeleteAgent {
        tenant: id("acme"),
        extension: id("1001"),
    };
    ok(&mut s, delete());
    assert!(matches!(
        refused(&mut s, delete()),
        CommandError::UnknownAgent { .. }
    ));
}
