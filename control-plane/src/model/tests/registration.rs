//! Registration bindings: RFC 3261 10.3 rules, quotas, sweeping by the entry's time.

use std::net::SocketAddr;

use super::*;

fn source() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 10], 5062))
}

fn register(t: &str, ext: &str, call_id: &str, cseq: u32, contacts: &[(&str, u32)]) -> Command {
    Command::Register(RegisterRequest {
        tenant: id(t),
        extension: id(ext),
        call_id: call_id.into(),
        cseq,
        source: source(),
        transport: Transport::Tcp,
        contacts: contacts
            .iter()
            .map(|(c, expires_secs)| ContactUpdate {
                contact: (*c).into(),
                expires_secs: *expires_secs,
                q: 1000,
                params: "+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"".into(),
            })
            .collect(),
    })
}

fn at(time_ms: u64, command: Command) -> Entry {
    Entry { time_ms, command }
}

fn contacts(s: &State, t: &str, ext: &str, now_ms: u64) -> Vec<String> {
    s.bindings(&id(t), &id(ext), now_ms)
        .iter()
        .map(|b| b.contact.clone())
        .collect()
}

#[test]
fn register_refresh_and_remove() {
    let mut s = two_tenants();
    let a = "sip:1001@192.0.2.10:5062";
    let out = ok(&mut s, register("acme", "1001", "c1", 1, &[(a, 60)]));
    let Outcome::Bindings(list) = out else {
        panic!("expected bindings, got {out:?}");
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].expires_at_ms, T0 + 60_000);
    assert_eq!(list[0].source, source());
    assert_eq!(list[0].transport, Transport::Tcp);
    assert!(list[0].params.starts_with("+sip.instance="));

    // Refresh later: expiry is computed from the new entry's time.
    let refreshed = at(T0 + 30_000, register("acme", "1001", "c1", 2, &[(a, 60)]));
    s.apply(&refreshed).expect("refresh");
    let b = s.bindings(&id("acme"), &id("1001"), T0 + 30_000);
    assert_eq!(b[0].expires_at_ms, T0 + 90_000);
    assert_eq!(b[0].cseq, 2);

    // Contact URIs compare case-insensitively.
    let removed = at(
        T0 + 31_000,
        register("acme", "1001", "c1", 3, &[(&a.to_uppercase(), 0)]),
    );
    assert_eq!(s.apply(&removed), Ok(Outcome::Bindings(Vec::new())));
    assert_eq!(s.stored_binding_count(&id("acme")), 0);
}

#[test]
fn stale_cseq_is_refused_and_other_call_ids_are_not() {
    let mut s = two_tenants();
    let a = "sip:1001@192.0.2.10";
    ok(&mut s, register("acme", "1001", "c1", 5, &[(a, 60)]));
    for cseq in [4, 5] {
        assert_eq!(
            refused(&mut s, register("acme", "1001", "c1", cseq, &[(a, 60)])),
            CommandError::StaleCseq {
                call_id: "c1".into(),
                cseq
            }
        );
    }
    // A different Call-ID (a rebooted phone) may take over with any CSeq.
    ok(&mut s, register("acme", "1001", "c2", 1, &[(a, 60)]));
    assert_eq!(s.bindings(&id("acme"), &id("1001"), T0)[0].call_id, "c2");
}

#[test]
fn unregister_all() {
    let mut s = two_tenants();
    ok(
        &mut s,
        register("acme", "1001", "c1", 5, &[("sip:a@x", 60), ("sip:b@y", 60)]),
    );
    let unregister = |cseq| Command::Unregister {
        tenant: id("acme"),
        extension: id("1001"),
        call_id: "c1".into(),
        cseq,
    };
    assert!(matches!(
        refused(&mut s, unregister(5)),
        CommandError::StaleCseq { .. }
    ));
    assert_eq!(ok(&mut s, unregister(6)), Outcome::Bindings(Vec::new()));
    assert!(contacts(&s, "acme", "1001", T0).is_empty());
}

#[test]
fn bindings_are_ordered_by_q_then_contact() {
    let mut s = two_tenants();
    let mut cmd = register(
        "acme",
        "1001",
        "c1",
        1,
        &[("sip:c@z", 60), ("sip:b@y", 60), ("sip:a@x", 60)],
    );
    if let Command::Register(req) = &mut cmd {
        req.contacts[0].q = 500;
    }
    ok(&mut s, cmd);
    assert_eq!(
        contacts(&s, "acme", "1001", T0),
        ["sip:a@x", "sip:b@y", "sip:c@z"]
    );
    assert_eq!(s.bindings(&id("acme"), &id("1001"), T0)[2].q, 500);
}

#[test]
fn contact_limit_per_extension() {
    let mut s = two_tenants();
    ok(&mut s, Command::UpdateTenant(tenant("acme", 100)));
    let uris: Vec<String> = (0..=MAX_CONTACTS_PER_AOR)
        .map(|i| format!("sip:p{i}@x"))
        .collect();
    let list: Vec<(&str, u32)> = uris.iter().map(|u| (u.as_str(), 60)).collect();
    assert_eq!(
        refused(&mut s, register("acme", "1001", "c1", 1, &list)),
        CommandError::TooManyContacts {
            extension: id("1001"),
            limit: MAX_CONTACTS_PER_AOR
        }
    );
    ok(
        &mut s,
        register("acme", "1001", "c1", 1, &list[..MAX_CONTACTS_PER_AOR]),
    );
}

#[test]
fn tenant_registration_quota() {
    let mut s = two_tenants();
    ok(&mut s, Command::UpdateTenant(tenant("acme", 2)));
    ok(
        &mut s,
        register("acme", "1001", "c1", 1, &[("sip:a@x", 60)]),
    );
    ok(
        &mut s,
        register("acme", "1002", "c2", 1, &[("sip:b@x", 60)]),
    );
    let over = CommandError::RegistrationQuotaExceeded {
        tenant: id("acme"),
        limit: 2,
    };
    assert_eq!(
        refused(
            &mut s,
            register("acme", "1001", "c1", 2, &[("sip:a2@x", 60)])
        ),
        over
    );
    // Refreshing an existing binding is not growth.
    ok(
        &mut s,
        register("acme", "1001", "c1", 3, &[("sip:a@x", 60)]),
    );
    // Another tenant's quota is its own.
    ok(
        &mut s,
        register("beta", "1001", "c1", 1, &[("sip:a@x", 60), ("sip:b@x", 60)]),
    );
    // Lowering the quota keeps bindings; refresh still works, growth does not.
    ok(&mut s, Command::UpdateTenant(tenant("acme", 1)));
    ok(
        &mut s,
        register("acme", "1002", "c2", 2, &[("sip:b@x", 60)]),
    );
    // Expired bindings do not count, even before a sweep.
    let later = at(
        T0 + 61_000,
        register("acme", "1001", "c9", 1, &[("sip:new@x", 60)]),
    );
    s.apply(&later)
        .expect("quota frees up when bindings expire");
}

#[test]
fn register_validation() {
    let mut s = two_tenants();
    assert_eq!(
        refused(
            &mut s,
            register("acme", "1009", "c1", 1, &[("sip:a@x", 60)])
        ),
        CommandError::UnknownExtension {
            tenant: id("acme"),
            extension: id("1009")
        }
    );
    assert_eq!(
        refused(
            &mut s,
            register("gone", "1001", "c1", 1, &[("sip:a@x", 60)])
        ),
        CommandError::UnknownTenant(id("gone"))
    );
    assert!(matches!(
        refused(&mut s, register("acme", "1001", "", 1, &[("sip:a@x", 60)])),
        CommandError::InvalidText {
            field: TextField::CallId,
            ..
        }
    ));
    assert!(matches!(
        refused(&mut s, register("acme", "1001", "c1", 1, &[("", 60)])),
        CommandError::InvalidText {
            field: TextField::Contact,
            ..
        }
    ));
    assert!(matches!(
        refused(
            &mut s,
            register(
                "acme",
                "1001",
                "c1",
                1,
                &[("sip:a@x", MAX_EXPIRES_SECS + 1)]
            )
        ),
        CommandError::OutOfBounds {
            field: BoundedField::Expires,
            ..
        }
    ));
    let mut cmd = register("acme", "1001", "c1", 1, &[("sip:a@x", 60)]);
    if let Command::Register(req) = &mut cmd {
        req.contacts[0].params = "x\r\nVia: evil".into();
    }
    assert!(matches!(
        refused(&mut s, cmd),
        CommandError::InvalidText {
            field: TextField::ContactParams,
            ..
        }
    ));
    let mut cmd = register("acme", "1001", "c1", 1, &[("sip:a@x", 60)]);
    if let Command::Register(req) = &mut cmd {
        req.contacts[0].q = 1001;
    }
    assert!(matches!(
        refused(&mut s, cmd),
        CommandError::OutOfBounds {
            field: BoundedField::Q,
            ..
        }
    ));
}

#[test]
fn sweep_removes_exactly_the_expired_bindings() {
    let mut s = two_tenants();
    ok(
        &mut s,
        register(
            "acme",
            "1001",
            "c1",
            1,
            &[("sip:short@x", 10), ("sip:long@x", 100)],
        ),
    );
    ok(
        &mut s,
        register("beta", "1002", "c2", 1, &[("sip:b@x", 10)]),
    );
    let rev = s.revision();

    // At T0+9.999 s nothing has expired: no removal, no revision bump.
    let early = at(T0 + 20_000, Command::SweepExpired { now_ms: T0 + 9_999 });
    assert_eq!(s.apply(&early), Ok(Outcome::Swept { removed: 0 }));
    assert_eq!(s.revision(), rev);

    // A binding expires at exactly expires_at_ms.
    let sweep = at(
        T0 + 20_000,
        Command::SweepExpired {
            now_ms: T0 + 10_000,
        },
    );
    assert_eq!(s.apply(&sweep), Ok(Outcome::Swept { removed: 2 }));
    assert_eq!(s.revision(), rev + 1);
    assert_eq!(contacts(&s, "acme", "1001", T0), ["sip:long@x"]);
    assert_eq!(s.stored_binding_count(&id("acme")), 1);
    assert_eq!(s.stored_binding_count(&id("beta")), 0);

    let future = at(T0, Command::SweepExpired { now_ms: T0 + 1 });
    assert_eq!(
        s.apply(&future),
        Err(CommandError::SweepInFuture {
            now_ms: T0 + 1,
            entry_time_ms: T0
        })
    );
}

#[test]
fn deleting_an_extension_drops_its_bindings() {
    let mut s = two_tenants();
    ok(
        &mut s,
        register("acme", "1002", "c1", 1, &[("sip:a@x", 60)]),
    );
    ok(
        &mut s,
        Command::DeleteExtension {
            tenant: id("acme"),
            ext: id("1002"),
        },
    );
    assert_eq!(s.stored_binding_count(&id("acme")), 0);
    // Re-creating the extension does not resurrect old bindings.
    ok(&mut s, Command::CreateExtension(extension("acme", "1002")));
    assert!(contacts(&s, "acme", "1002", T0).is_empty());
}

#[test]
fn listings_are_per_tenant() {
    let mut s = two_tenants();
    ok(
        &mut s,
        register("acme", "1002", "c1", 1, &[("sip:b@x", 60), ("sip:a@x", 10)]),
    );
    ok(
        &mut s,
        register("acme", "1001", "c2", 1, &[("sip:c@x", 60)]),
    );
    ok(
        &mut s,
        register("beta", "1001", "c3", 1, &[("sip:d@x", 60)]),
    );
    ok(&mut s, Command::CreateQueue(queue("beta", "q1")));
    ok(&mut s, Command::CreateAgent(agent("beta", "1002")));
    ok(
        &mut s,
        Command::CreateHuntGroup(hunt_group("beta", "hg", &["1001"])),
    );
    let acme = |now| -> Vec<(String, String)> {
        s.registrations(&id("acme"), now)
            .map(|(e, b)| (e.to_string(), b.contact.clone()))
            .collect()
    };
    let pair = |e: &str, c: &str| (e.to_string(), c.to_string());
    assert_eq!(
        acme(T0),
        [
            pair("1001", "sip:c@x"),
            pair("1002", "sip:a@x"),
            pair("1002", "sip:b@x")
        ]
    );
    assert_eq!(
        acme(T0 + 10_000),
        [pair("1001", "sip:c@x"), pair("1002", "sip:b@x")]
    );
    assert_eq!(s.extensions(&id("beta")).count(), 2);
    assert_eq!(s.queues(&id("acme")).count(), 0);
    assert_eq!(s.queues(&id("beta")).count(), 1);
    assert_eq!(s.agents(&id("beta")).count(), 1);
    assert_eq!(s.hunt_groups(&id("beta")).count(), 1);
    assert_eq!(s.numbers_of(&id("beta")).count(), 0);
}
