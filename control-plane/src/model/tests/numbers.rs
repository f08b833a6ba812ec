//! Numbers: formats by kind, tariff bands, ownership, and destinations confined to
//! their tenant.

use super::*;

#[test]
fn number_formats_by_kind() {
    use NumberKind::*;
    let cases = [
        ("18001234", TollFree1800, true),
        ("1800123456", TollFree1800, true),
        ("180012345", TollFree1800, false),
        ("19001234", TollFree1800, false),
        ("19006868", Premium1900, true),
        ("1900686868", Premium1900, true),
        ("1900686", Premium1900, false),
        ("02873001234", Geographic, true),
        ("0287300123", Geographic, false),
        ("09012345678", Geographic, false),
        ("0287300123a", Geographic, false),
        ("", Geographic, false),
    ];
    for (digits, kind, valid) in cases {
        assert_eq!(kind.accepts(digits), valid, "{digits} as {kind:?}");
        let mut s = two_tenants();
        let n = number("acme", digits, kind, Destination::Extension(id("1001")));
        let result = s.apply(&entry(Command::CreateNumber(n)));
        if valid {
            assert_eq!(result, Ok(Outcome::Done));
        } else {
            assert_eq!(
                result,
                Err(CommandError::InvalidNumber {
                    number: digits.into(),
                    kind
                })
            );
        }
    }
}

#[test]
fn tariff_band_only_and_always_on_1900() {
    let mut s = two_tenants();
    let dest = Destination::Extension(id("1001"));
    let mut n = number("acme", "19006868", NumberKind::Premium1900, dest.clone());
    n.tariff_band = None;
    assert_eq!(
        refused(&mut s, Command::CreateNumber(n)),
        CommandError::MissingTariffBand("19006868".into())
    );
    let mut n = number("acme", "18001234", NumberKind::TollFree1800, dest.clone());
    n.tariff_band = Some(id("band-a"));
    assert_eq!(
        refused(&mut s, Command::CreateNumber(n)),
        CommandError::UnexpectedTariffBand {
            number: "18001234".into(),
            kind: NumberKind::TollFree1800
        }
    );
    let mut n = number("acme", "02873001234", NumberKind::Geographic, dest);
    n.tariff_band = Some(id("band-a"));
    assert!(matches!(
        refused(&mut s, Command::CreateNumber(n)),
        CommandError::UnexpectedTariffBand { .. }
    ));
}

#[test]
fn number_lifecycle_and_ownership() {
    let mut s = two_tenants();
    let to = |e: &str| Destination::Extension(id(e));
    let n = number("acme", "18001234", NumberKind::TollFree1800, to("1001"));
    assert_eq!(
        refused(&mut s, Command::UpdateNumber(n.clone())),
        CommandError::UnknownNumber("18001234".into())
    );
    ok(&mut s, Command::CreateNumber(n.clone()));
    assert_eq!(
        refused(&mut s, Command::CreateNumber(n.clone())),
        CommandError::NumberExists("18001234".into())
    );
    // Tenant B can neither take nor re-point A's number.
    let stolen = number("beta", "18001234", NumberKind::TollFree1800, to("1001"));
    let owned = CommandError::NumberOwnedByOtherTenant {
        number: "18001234".into(),
        owner: id("acme"),
    };
    assert_eq!(
        refused(&mut s, Command::CreateNumber(stolen.clone())),
        owned
    );
    assert_eq!(refused(&mut s, Command::UpdateNumber(stolen)), owned);
    let delete_by_beta = Command::DeleteNumber {
        tenant: id("beta"),
        digits: "18001234".into(),
    };
    assert_eq!(refused(&mut s, delete_by_beta), owned);
    let moved = number("acme", "18001234", NumberKind::TollFree1800, to("1002"));
    ok(&mut s, Command::UpdateNumber(moved.clone()));
    assert_eq!(s.number("18001234"), Some(&moved));
    ok(
        &mut s,
        Command::DeleteNumber {
            tenant: id("acme"),
            digits: "18001234".into(),
        },
    );
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteNumber {
                tenant: id("acme"),
                digits: "18001234".into()
            }
        ),
        CommandError::UnknownNumber("18001234".into())
    );
    let orphan = number("gone", "18005678", NumberKind::TollFree1800, to("1001"));
    assert_eq!(
        refused(&mut s, Command::CreateNumber(orphan)),
        CommandError::UnknownTenant(id("gone"))
    );
}

#[test]
fn destinations_must_be_in_the_same_tenant() {
    let mut s = State::new();
    ok(&mut s, Command::CreateTenant(tenant("acme", 10)));
    ok(&mut s, Command::CreateTenant(tenant("beta", 10)));
    ok(&mut s, Command::CreateExtension(extension("acme", "1001")));
    ok(
        &mut s,
        Command::CreateHuntGroup(hunt_group("acme", "sales", &["1001"])),
    );
    ok(&mut s, Command::CreateQueue(queue("acme", "support")));
    let beta = |dest| number("beta", "18009999", NumberKind::TollFree1800, dest);
    assert_eq!(
        refused(
            &mut s,
            Command::CreateNumber(beta(Destination::Extension(id("1001"))))
        ),
        CommandError::UnknownExtension {
            tenant: id("beta"),
            extension: id("1001")
        }
    );
    assert_eq!(
        refused(
            &mut s,
            Command::CreateNumber(beta(Destination::HuntGroup(id("sales"))))
        ),
        CommandError::UnknownHuntGroup {
            tenant: id("beta"),
            id: id("sales")
        }
    );
    assert_eq!(
        refused(
            &mut s,
            Command::CreateNumber(beta(Destination::Queue(id("support"))))
        ),
        CommandError::UnknownQueue {
            tenant: id("beta"),
            id: id("support")
        }
    );
    assert_eq!(
        refused(
            &mut s,
            Command::CreateNumber(beta(Destination::External("x1".into())))
        ),
        CommandError::InvalidExternalNumber("x1".into())
    );
    ok(
        &mut s,
        Command::CreateNumber(beta(Destination::Ivr(id("main-menu")))),
    );
    // Hunt group members and agents of B cannot be A's extensions either.
    assert_eq!(
        refused(
            &mut s,
            Command::CreateHuntGroup(hunt_group("beta", "hg", &["1001"]))
        ),
        CommandError::UnknownExtension {
            tenant: id("beta"),
            extension: id("1001")
        }
    );
    let mut hg = hunt_group("beta", "hg2", &["1001"]);
    hg.members.clear();
    assert_eq!(
        refused(&mut s, Command::CreateHuntGroup(hg)),
        CommandError::EmptyHuntGroup(id("hg2"))
    );
    assert_eq!(
        refused(&mut s, Command::CreateAgent(agent("beta", "1001"))),
        CommandError::UnknownExtension {
            tenant: id("beta"),
            extension: id("1001")
        }
    );
}
