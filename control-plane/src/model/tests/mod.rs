//! Tests of the state machine: every validation path, tenant isolation, registrations,
//! determinism and snapshots.

mod acd;
mod determinism;
mod drain;
mod entities;
mod erlang;
mod load;
mod numbers;
mod registration;
mod tokens;
mod trunks;

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) const T0: u64 = 1_700_000_000_000;

pub(super) fn id(s: &str) -> Id {
    Id::new(s).expect("test ids are valid")
}

pub(super) fn tenant(name: &str, max_registrations: u32) -> Tenant {
    Tenant {
        id: id(name),
        name: format!("{name} Ltd"),
        quotas: Quotas {
            max_concurrent_calls: 100,
            max_call_attempts_per_sec: 10,
            max_registrations,
        },
        calls: CallSettings::default(),
    }
}

pub(super) fn extension(t: &str, ext: &str) -> Extension {
    Extension {
        tenant: id(t),
        ext: id(ext),
        display_name: format!("Agent {ext}"),
        ha1_md5: "0123456789abcdef0123456789abcdef".into(),
        ha1_sha256: "0123456789abcdef".repeat(4),
        forward_to_mobile: None,
    }
}

pub(super) fn number(t: &str, digits: &str, kind: NumberKind, dest: Destination) -> Number {
    Number {
        digits: digits.into(),
        kind,
        tenant: id(t),
        tariff_band: (kind == NumberKind::Premium1900).then(|| id("band-a")),
        destination: dest,
        recording: None,
    }
}

pub(super) fn hunt_group(t: &str, hg: &str, members: &[&str]) -> HuntGroup {
    HuntGroup {
        tenant: id(t),
        id: id(hg),
        members: members.iter().map(|m| id(m)).collect(),
        strategy: RingStrategy::Sequential,
        ring_secs: 15,
        no_answer: Destination::External("0901234567".into()),
    }
}

pub(super) fn queue(t: &str, q: &str) -> Queue {
    Queue {
        tenant: id(t),
        id: id(q),
        name: format!("Queue {q}"),
        strategy: QueueStrategy::LongestIdle,
        max_wait_secs: 300,
        max_len: 50,
        members: Vec::new(),
        ring_secs: 20,
        wrap_up_secs: 0,
        join_empty: true,
        tier_widen_secs: 0,
        overflow: None,
        auto_pause_no_answer: false,
        service_level_secs: 20,
        skill: None,
        vip_callers: Default::default(),
        callback_digit: None,
        announce: true,
        announce_every_secs: 0,
        announce_language: Default::default(),
    }
}

pub(super) fn agent(t: &str, ext: &str) -> Agent {
    Agent {
        tenant: id(t),
        extension: id(ext),
        state: AgentState::Available,
        skills: BTreeMap::from([(id("vietnamese"), 80), (id("english"), 40)]),
    }
}

/// A trunk of tenant `t` to 203.0.113.7:5060 trusting `sources`.
pub(super) fn trunk(t: &str, name: &str, sources: &[&str]) -> Trunk {
    Trunk {
        tenant: id(t),
        id: id(name),
        address: "203.0.113.7:5060".into(),
        transport: Transport::Udp,
        trusted_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        registration: None,
        max_concurrent_calls: 30,
        failover: None,
    }
}

/// A token whose hash is `fill` repeated (64 hex digits).
pub(super) fn api_token(t: &str, token: &str, fill: char) -> ApiToken {
    ApiToken {
        tenant: id(t),
        id: id(token),
        sha256: fill.to_string().repeat(64),
    }
}

pub(super) fn entry(command: Command) -> Entry {
    Entry {
        time_ms: T0,
        command,
    }
}

/// Applies `command` at [`T0`] and expects success.
pub(super) fn ok(state: &mut State, command: Command) -> Outcome {
    let e = entry(command);
    match state.apply(&e) {
        Ok(outcome) => outcome,
        Err(err) => panic!("{:?} refused: {err}", e.command),
    }
}

/// Applies `command`, expects a refusal, and checks that nothing changed.
pub(super) fn refused(state: &mut State, command: Command) -> CommandError {
    let before = state.clone();
    let err = state
        .apply(&entry(command))
        .expect_err("command should be refused");
    assert_eq!(*state, before, "a refused command changed the state");
    err
}

/// Tenants `acme` and `beta`, each with extensions 1001 and 1002.
pub(super) fn two_tenants() -> State {
    let mut s = State::new();
    for t in ["acme", "beta"] {
        ok(&mut s, Command::CreateTenant(tenant(t, 10)));
        for e in ["1001", "1002"] {
            ok(&mut s, Command::CreateExtension(extension(t, e)));
        }
    }
    s
}

#[test]
fn ids_are_validated_also_when_deserialized() {
    for good in ["acme", "1001", "a.b-c_d", &"x".repeat(64)] {
        assert!(Id::new(good).is_ok(), "{good}");
    }
    for bad in ["", "Acme", "-x", "a b", "ä", &"x".repeat(65), "a/b"] {
        assert!(
            matches!(Id::new(bad), Err(CommandError::InvalidId { .. })),
            "{bad}"
        );
    }
    let bytes = postcard::to_allocvec(&String::from("Bad Id")).expect("encode");
    assert!(postcard::from_bytes::<Id>(&bytes).is_err());
}

#[test]
fn external_numbers() {
    for good in ["+84901234567", "0901234567", "113"] {
        assert!(check_external_number(good).is_ok(), "{good}");
    }
    for bad in ["", "+", "12", "+1234567890123456", "09x1", "++84901"] {
        assert_eq!(
            check_external_number(bad),
            Err(CommandError::InvalidExternalNumber(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn forward_conditions_are_a_set() {
    let mut s = two_tenants();
    let mut e = extension("acme", "1001");
    e.forward_to_mobile = Some(ForwardToMobile {
        number: "+84901234567".into(),
        when: BTreeSet::from([ForwardCondition::Unregistered, ForwardCondition::Busy]),
    });
    ok(&mut s, Command::UpdateExtension(e.clone()));
    assert_eq!(s.extension(&id("acme"), &id("1001")), Some(&e));
}
