//! Trunks (address, trusted sources, registration, failover), tenants' call settings
//! (codecs, outbound trunk, caller ID) and numbers' recording override.

use super::*;

fn registration() -> TrunkRegistration {
    TrunkRegistration {
        username: "acme-trunk".into(),
        password: "carrier-secret".into(),
        domain: "sip.carrier.example".into(),
        expires_secs: 600,
    }
}

/// `two_tenants` with acme's geographic number 02873001234 and toll-free 18001234.
fn with_numbers() -> State {
    let mut s = two_tenants();
    let dest = Destination::Extension(id("1001"));
    for (digits, kind) in [
        ("02873001234", NumberKind::Geographic),
        ("18001234", NumberKind::TollFree1800),
        ("19006868", NumberKind::Premium1900),
    ] {
        ok(
            &mut s,
            Command::CreateNumber(number("acme", digits, kind, dest.clone())),
        );
    }
    s
}

#[test]
fn trunk_create_update_delete() {
    let mut s = two_tenants();
    let mut t = trunk("acme", "viettel", &["203.0.113.0/24", "198.51.100.7:5060"]);
    t.registration = Some(registration());
    assert_eq!(
        refused(&mut s, Command::UpdateTrunk(Box::new(t.clone()))),
        CommandError::UnknownTrunk {
            tenant: id("acme"),
            id: id("viettel")
        }
    );
    ok(&mut s, Command::CreateTrunk(Box::new(t.clone())));
    assert_eq!(s.trunk(&id("acme"), &id("viettel")), Some(&t));
    assert_eq!(
        refused(&mut s, Command::CreateTrunk(Box::new(t.clone()))),
        CommandError::TrunkExists {
            tenant: id("acme"),
            id: id("viettel")
        }
    );
    t.max_concurrent_calls = 0;
    t.transport = Transport::Tcp;
    ok(&mut s, Command::UpdateTrunk(Box::new(t.clone())));
    assert_eq!(s.trunks(&id("acme")).collect::<Vec<_>>(), [&t]);
    assert_eq!(s.trunks(&id("beta")).count(), 0);
    assert_eq!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(trunk("gone", "x", &[]))),
        ),
        CommandError::UnknownTenant(id("gone"))
    );
    // A tenant with a trunk is not empty.
    for e in ["1001", "1002"] {
        ok(
            &mut s,
            Command::DeleteExtension {
                tenant: id("acme"),
                ext: id(e),
            },
        );
    }
    assert!(matches!(
        refused(&mut s, Command::DeleteTenant { tenant: id("acme") }),
        CommandError::TenantNotEmpty { trunks: 1, .. }
    ));
    let delete = Command::DeleteTrunk {
        tenant: id("acme"),
        id: id("viettel"),
    };
    // Another tenant cannot delete it: it does not exist there.
    assert!(matches!(
        refused(
            &mut s,
            Command::DeleteTrunk {
                tenant: id("beta"),
                id: id("viettel")
            }
        ),
        CommandError::UnknownTrunk { .. }
    ));
    ok(&mut s, delete.clone());
    assert!(matches!(
        refused(&mut s, delete),
        CommandError::UnknownTrunk { .. }
    ));
    ok(&mut s, Command::DeleteTenant { tenant: id("acme") });
}

#[test]
fn trunk_addresses() {
    for good in [
        "203.0.113.7:5060",
        "[2001:db8::7]:5061",
        "sip.carrier.example:5060",
        "gw-1.carrier.example.:1",
        "carrier:65535",
    ] {
        assert_eq!(check_host_port(good), Ok(()), "{good}");
    }
    let mut s = two_tenants();
    for bad in [
        "",
        "203.0.113.7",
        "203.0.113.7:",
        "203.0.113.7:0",
        "203.0.113.7:65536",
        "203.0.113.7:50x0",
        "2001:db8::7:5060",
        "[2001:db8::zz]:5060",
        "300.1.2.3:5060",
        "-bad.example:5060",
        "bad_host:5060",
        "a b:5060",
        ":5060",
        &format!("{}:5060", "a".repeat(64)),
        &format!("{}.example:5060", "a.".repeat(130)),
    ] {
        let mut t = trunk("acme", "viettel", &[]);
        t.address = bad.into();
        assert!(
            matches!(
                refused(&mut s, Command::CreateTrunk(Box::new(t))),
                CommandError::InvalidTrunkAddress { .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn trusted_sources_parse_and_match() {
    let addr = |s: &str| s.parse::<std::net::SocketAddr>().expect("socket address");
    let cases = [
        (
            "203.0.113.7",
            "203.0.113.7",
            "203.0.113.7:1234",
            "203.0.113.8:5060",
        ),
        (
            "203.0.113.7:5060",
            "203.0.113.7:5060",
            "203.0.113.7:5060",
            "203.0.113.7:5061",
        ),
        (
            "203.0.113.0/24",
            "203.0.113.0/24",
            "203.0.113.200:5060",
            "203.0.114.1:5060",
        ),
        (
            "2001:DB8::1",
            "2001:db8::1",
            "[2001:db8::1]:5060",
            "[2001:db8::2]:5060",
        ),
        (
            "[2001:db8::1]:5060",
            "[2001:db8::1]:5060",
            "[2001:db8::1]:5060",
            "[2001:db8::1]:5061",
        ),
        (
            "2001:db8::/32",
            "2001:db8::/32",
            "[2001:db8:ffff::1]:5060",
            "[2001:db9::1]:5060",
        ),
        // IPv4-mapped IPv6 is the IPv4 address, both written and received.
        (
            "::ffff:203.0.113.7",
            "203.0.113.7",
            "[::ffff:203.0.113.7]:5060",
            "[::ffff:203.0.113.8]:5060",
        ),
        (
            "::ffff:203.0.113.0/120",
            "203.0.113.0/24",
            "203.0.113.9:5060",
            "[2001:db8::1]:5060",
        ),
        (
            " 10.0.0.0/8 ",
            "10.0.0.0/8",
            "10.255.0.1:5060",
            "11.0.0.1:5060",
        ),
    ];
    for (written, canonical, inside, outside) in cases {
        let t = TrustedSource::parse(written).unwrap_or_else(|e| panic!("{written}: {e:?}"));
        assert_eq!(t.to_string(), canonical, "{written}");
        assert_eq!(TrustedSource::canonical(written).as_deref(), Ok(canonical));
        assert!(t.matches(addr(inside)), "{written} matches {inside}");
        assert!(
            !t.matches(addr(outside)),
            "{written} does not match {outside}"
        );
    }
    for (bad, why) in [
        ("", SourceError::Syntax),
        ("carrier.example", SourceError::Syntax),
        ("203.0.113.07", SourceError::Syntax),
        ("203.0.113.7:0", SourceError::PortZero),
        ("203.0.113.0/33", SourceError::PrefixTooLong),
        ("2001:db8::/129", SourceError::PrefixTooLong),
        ("203.0.113.0/", SourceError::Syntax),
        ("203.0.113.0/+4", SourceError::Syntax),
        ("0.0.0.0/0", SourceError::PrefixTooShort),
        ("10.0.0.0/7", SourceError::PrefixTooShort),
        ("2001::/16", SourceError::PrefixTooShort),
        ("203.0.113.1/24", SourceError::HostBits),
        ("0.0.0.0", SourceError::Unspecified),
        ("[::]:5060", SourceError::Unspecified),
    ] {
        assert_eq!(TrustedSource::parse(bad), Err(why), "{bad:?}");
    }
}

#[test]
fn trusted_sources_are_canonical_unique_and_bounded() {
    let mut s = two_tenants();
    for (sources, index) in [
        (vec!["2001:DB8::1"], 0),
        (vec!["203.0.113.7", "203.0.113.1/24"], 1),
        (vec!["203.0.113.7", "203.0.113.7"], 1),
        (vec!["nonsense"], 0),
    ] {
        let t = trunk("acme", "viettel", &sources);
        match refused(&mut s, Command::CreateTrunk(Box::new(t))) {
            CommandError::InvalidTrustedSource { index: i, .. } => {
                assert_eq!(i, index, "{sources:?}");
            }
            other => panic!("{sources:?}: {other:?}"),
        }
    }
    let many: Vec<String> = (0..65).map(|i| format!("198.51.100.{i}")).collect();
    let mut t = trunk("acme", "viettel", &[]);
    t.trusted_sources = many;
    assert!(matches!(
        refused(&mut s, Command::CreateTrunk(Box::new(t))),
        CommandError::OutOfBounds {
            field: BoundedField::TrustedSources,
            ..
        }
    ));

    // One source, one trunk, across every tenant.
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk(
            "acme",
            "viettel",
            &["203.0.113.7", "198.51.100.0/24"],
        ))),
    );
    assert_eq!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(trunk(
                "beta",
                "vnpt",
                &["192.0.2.1", "203.0.113.7"]
            )))
        ),
        CommandError::TrustedSourceInUse {
            index: 1,
            source_addr: "203.0.113.7".into(),
            tenant: id("acme"),
            trunk: id("viettel"),
        }
    );
    assert!(matches!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(trunk("acme", "backup", &["198.51.100.0/24"])))
        ),
        CommandError::TrustedSourceInUse { index: 0, .. }
    ));
    // Narrower and wider networks, the same IP with a port: distinct sources.
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk(
            "beta",
            "vnpt",
            &["203.0.113.7:5060", "198.51.100.128/25", "198.0.0.0/8"],
        ))),
    );
    // A trunk keeps its own sources on update; once released another may take them.
    ok(
        &mut s,
        Command::UpdateTrunk(Box::new(trunk("acme", "viettel", &["198.51.100.0/24"]))),
    );
    ok(
        &mut s,
        Command::UpdateTrunk(Box::new(trunk("beta", "vnpt", &["203.0.113.7"]))),
    );
}

#[test]
fn trunk_registration_and_limits() {
    let mut s = two_tenants();
    type Case = (fn(&mut TrunkRegistration), fn(&CommandError) -> bool);
    let cases: Vec<Case> = vec![
        (
            |r| r.username = String::new(),
            |e| {
                matches!(
                    e,
                    CommandError::InvalidText {
                        field: TextField::TrunkUsername,
                        ..
                    }
                )
            },
        ),
        (
            |r| r.password = String::new(),
            |e| {
                matches!(
                    e,
                    CommandError::InvalidText {
                        field: TextField::TrunkPassword,
                        ..
                    }
                )
            },
        ),
        (
            |r| r.password = "x".repeat(129),
            |e| {
                matches!(
                    e,
                    CommandError::InvalidText {
                        field: TextField::TrunkPassword,
                        ..
                    }
                )
            },
        ),
        (
            |r| r.password = "a\r\nb".into(),
            |e| {
                matches!(
                    e,
                    CommandError::InvalidText {
                        field: TextField::TrunkPassword,
                        ..
                    }
                )
            },
        ),
        (
            |r| r.domain = "sip carrier".into(),
            |e| matches!(e, CommandError::InvalidTrunkDomain(_)),
        ),
        (
            |r| r.domain = String::new(),
            |e| matches!(e, CommandError::InvalidTrunkDomain(_)),
        ),
        (
            |r| r.expires_secs = 59,
            |e| {
                matches!(
                    e,
                    CommandError::OutOfBounds {
                        field: BoundedField::TrunkRegistrationExpires,
                        ..
                    }
                )
            },
        ),
        (
            |r| r.expires_secs = 3601,
            |e| {
                matches!(
                    e,
                    CommandError::OutOfBounds {
                        field: BoundedField::TrunkRegistrationExpires,
                        ..
                    }
                )
            },
        ),
    ];
    for (change, expected) in cases {
        let mut r = registration();
        change(&mut r);
        let mut t = trunk("acme", "viettel", &[]);
        t.registration = Some(r);
        let err = refused(&mut s, Command::CreateTrunk(Box::new(t)));
        assert!(expected(&err), "{err:?}");
        // The password never shows in an error.
        assert!(!err.to_string().contains("carrier-secret"), "{err}");
    }
    let mut t = trunk("acme", "viettel", &[]);
    t.max_concurrent_calls = 1_000_001;
    assert!(matches!(
        refused(&mut s, Command::CreateTrunk(Box::new(t))),
        CommandError::OutOfBounds {
            field: BoundedField::TrunkMaxCalls,
            ..
        }
    ));
    let mut t = trunk("acme", "viettel", &[]);
    t.registration = Some(registration());
    for expires in [60, 3600] {
        t.registration.as_mut().expect("set").expires_secs = expires;
        let create = s.trunk(&t.tenant, &t.id).is_none();
        ok(
            &mut s,
            if create {
                Command::CreateTrunk(Box::new(t.clone()))
            } else {
                Command::UpdateTrunk(Box::new(t.clone()))
            },
        );
    }
    // Debug output (logs) never shows the password.
    let debug = format!("{:?}", Command::UpdateTrunk(Box::new(t)));
    assert!(debug.contains("<redacted>") && !debug.contains("carrier-secret"));
}

#[test]
fn failover_stays_in_the_tenant_and_never_cycles() {
    let mut s = two_tenants();
    let with_failover = |t: &str, name: &str, to: &str| {
        let mut tr = trunk(t, name, &[]);
        tr.failover = Some(id(to));
        tr
    };
    assert_eq!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(with_failover("acme", "a", "a")))
        ),
        CommandError::TrunkFailoverLoop(id("a"))
    );
    assert_eq!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(with_failover("acme", "a", "b")))
        ),
        CommandError::UnknownTrunk {
            tenant: id("acme"),
            id: id("b")
        }
    );
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk("beta", "b", &[]))),
    );
    // Beta's trunk b is no failover for acme.
    assert!(matches!(
        refused(
            &mut s,
            Command::CreateTrunk(Box::new(with_failover("acme", "a", "b")))
        ),
        CommandError::UnknownTrunk { .. }
    ));
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk("acme", "c", &[]))),
    );
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(with_failover("acme", "b", "c"))),
    );
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(with_failover("acme", "a", "b"))),
    );
    // a -> b -> c; c -> a would close the loop.
    assert_eq!(
        refused(
            &mut s,
            Command::UpdateTrunk(Box::new(with_failover("acme", "c", "a")))
        ),
        CommandError::TrunkFailoverLoop(id("c"))
    );
    // b is a's failover, c is b's: neither may go.
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteTrunk {
                tenant: id("acme"),
                id: id("c")
            }
        ),
        CommandError::TrunkInUse {
            tenant: id("acme"),
            id: id("c"),
            used_by: vec![Reference::TrunkFailover(id("b"))],
        }
    );
    ok(
        &mut s,
        Command::DeleteTrunk {
            tenant: id("acme"),
            id: id("a"),
        },
    );
    ok(
        &mut s,
        Command::DeleteTrunk {
            tenant: id("acme"),
            id: id("b"),
        },
    );
    ok(
        &mut s,
        Command::DeleteTrunk {
            tenant: id("acme"),
            id: id("c"),
        },
    );
}

#[test]
fn call_settings_codecs() {
    let mut s = two_tenants();
    assert_eq!(
        CallSettings::default().codecs,
        [Codec::Pcmu, Codec::Pcma, Codec::TelephoneEvent]
    );
    assert_eq!(CallSettings::default().recording, RecordingPolicy::OnDemand);
    let mut t = tenant("acme", 10);
    t.calls.codecs.clear();
    assert_eq!(
        refused(&mut s, Command::UpdateTenant(t.clone())),
        CommandError::NoCodecs
    );
    t.calls.codecs = vec![Codec::Pcma, Codec::TelephoneEvent, Codec::Pcma];
    assert_eq!(
        refused(&mut s, Command::UpdateTenant(t.clone())),
        CommandError::DuplicateCodec(Codec::Pcma)
    );
    t.calls.codecs = vec![Codec::Pcma];
    t.calls.allow_other_codecs = true;
    t.calls.recording = RecordingPolicy::Always;
    ok(&mut s, Command::UpdateTenant(t.clone()));
    assert_eq!(s.tenant(&id("acme")), Some(&t));
    // JSON names of the enums, as the brief of the B2BUA uses them.
    assert_eq!(
        serde_json::to_string(&Codec::TelephoneEvent).expect("json"),
        "\"telephone_event\""
    );
    assert_eq!(
        serde_json::to_string(&RecordingPolicy::OnDemand).expect("json"),
        "\"on_demand\""
    );
}

#[test]
fn outbound_trunk_and_caller_id() {
    let mut s = with_numbers();
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk("acme", "viettel", &[]))),
    );
    ok(
        &mut s,
        Command::CreateTrunk(Box::new(trunk("beta", "vnpt", &[]))),
    );
    let settings = |trunk: Option<&str>, caller_id: Option<&str>| {
        let mut t = tenant("acme", 10);
        t.calls.outbound_trunk = trunk.map(id);
        t.calls.caller_id = caller_id.map(str::to_owned);
        t
    };
    assert_eq!(
        refused(&mut s, Command::UpdateTenant(settings(Some("vnpt"), None))),
        CommandError::UnknownTrunk {
            tenant: id("acme"),
            id: id("vnpt")
        }
    );
    for inbound_only in ["18001234", "19006868"] {
        let err = refused(
            &mut s,
            Command::UpdateTenant(settings(None, Some(inbound_only))),
        );
        assert!(
            matches!(&err, CommandError::CallerIdInboundOnly { number, .. } if number == inbound_only),
            "{err:?}"
        );
        assert!(err.to_string().contains("inbound only"), "{err}");
    }
    assert_eq!(
        refused(
            &mut s,
            Command::UpdateTenant(settings(None, Some("02873009999")))
        ),
        CommandError::UnknownCallerId {
            tenant: id("acme"),
            number: "02873009999".into()
        }
    );
    assert!(matches!(
        refused(
            &mut s,
            Command::UpdateTenant(settings(None, Some("028-730")))
        ),
        CommandError::InvalidCallerId(_)
    ));
    // Beta cannot present acme's number, and learns nothing more than "unknown".
    let mut b = tenant("beta", 10);
    b.calls.caller_id = Some("02873001234".into());
    assert!(matches!(
        refused(&mut s, Command::UpdateTenant(b)),
        CommandError::UnknownCallerId { .. }
    ));
    // A tenant created with references to what cannot exist yet is refused.
    let mut fresh = tenant("gamma", 10);
    fresh.calls.outbound_trunk = Some(id("viettel"));
    assert!(matches!(
        refused(&mut s, Command::CreateTenant(fresh)),
        CommandError::UnknownTrunk { .. }
    ));

    let good = settings(Some("viettel"), Some("02873001234"));
    ok(&mut s, Command::UpdateTenant(good.clone()));
    assert_eq!(s.tenant(&id("acme")).map(|t| &t.calls), Some(&good.calls));
    // What the settings use cannot go.
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteTrunk {
                tenant: id("acme"),
                id: id("viettel")
            }
        ),
        CommandError::TrunkInUse {
            tenant: id("acme"),
            id: id("viettel"),
            used_by: vec![Reference::OutboundTrunk],
        }
    );
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteNumber {
                tenant: id("acme"),
                digits: "02873001234".into()
            }
        ),
        CommandError::NumberInUse {
            number: "02873001234".into(),
            used_by: vec![Reference::CallerId],
        }
    );
    // Nor can the number move to another tenant.
    let moved = number(
        "beta",
        "02873001234",
        NumberKind::Geographic,
        Destination::Extension(id("1001")),
    );
    assert!(matches!(
        refused(&mut s, Command::UpdateNumber(moved)),
        CommandError::NumberOwnedByOtherTenant { .. }
    ));
    // Released by the settings, both can go.
    ok(&mut s, Command::UpdateTenant(settings(None, None)));
    ok(
        &mut s,
        Command::DeleteTrunk {
            tenant: id("acme"),
            id: id("viettel"),
        },
    );
    ok(
        &mut s,
        Command::DeleteNumber {
            tenant: id("acme"),
            digits: "02873001234".into(),
        },
    );
}

#[test]
fn numbers_override_the_recording_policy() {
    let mut s = two_tenants();
    let mut n = number(
        "acme",
        "18001234",
        NumberKind::TollFree1800,
        Destination::Extension(id("1001")),
    );
    n.recording = Some(RecordingPolicy::Never);
    ok(&mut s, Command::CreateNumber(n.clone()));
    assert_eq!(
        s.number("18001234").and_then(|n| n.recording),
        Some(RecordingPolicy::Never)
    );
    n.recording = None;
    ok(&mut s, Command::UpdateNumber(n));
    assert_eq!(s.number("18001234").and_then(|n| n.recording), None);
}
