//! Tenants' API tokens: hash validation, uniqueness, revocation, and that they go with
//! their tenant.

use super::*;

#[test]
fn token_create_list_delete() {
    let mut s = two_tenants();
    let t = api_token("acme", "ci", 'a');
    ok(&mut s, Command::CreateApiToken(t.clone()));
    ok(
        &mut s,
        Command::CreateApiToken(api_token("acme", "crm", 'b')),
    );
    ok(
        &mut s,
        Command::CreateApiToken(api_token("beta", "ci", 'c')),
    );
    assert_eq!(s.api_token(&id("acme"), &id("ci")), Some(&t));
    let acme = id("acme");
    let ids: Vec<_> = s.api_tokens(&acme).map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["ci", "crm"]);
    assert_eq!(s.all_api_tokens().count(), 3);
    assert_eq!(
        refused(
            &mut s,
            Command::CreateApiToken(api_token("acme", "ci", 'd'))
        ),
        CommandError::ApiTokenExists {
            tenant: id("acme"),
            id: id("ci")
        }
    );
    ok(
        &mut s,
        Command::DeleteApiToken {
            tenant: id("acme"),
            id: id("ci"),
        },
    );
    assert_eq!(s.api_token(&id("acme"), &id("ci")), None);
    assert!(s.api_token(&id("beta"), &id("ci")).is_some());
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteApiToken {
                tenant: id("acme"),
                id: id("ci"),
            }
        ),
        CommandError::UnknownApiToken {
            tenant: id("acme"),
            id: id("ci")
        }
    );
}

#[test]
fn token_hash_is_lowercase_sha256_hex_and_unique() {
    let mut s = two_tenants();
    for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
        let mut t = api_token("acme", "ci", 'a');
        t.sha256 = bad.into();
        assert_eq!(
            refused(&mut s, Command::CreateApiToken(t)),
            CommandError::InvalidApiTokenHash,
            "{bad}"
        );
    }
    ok(
        &mut s,
        Command::CreateApiToken(api_token("acme", "ci", 'a')),
    );
    // The same hash under another id or tenant would make authentication ambiguous.
    assert_eq!(
        refused(
            &mut s,
            Command::CreateApiToken(api_token("beta", "ci", 'a'))
        ),
        CommandError::ApiTokenHashInUse
    );
}

#[test]
fn tokens_need_their_tenant_and_go_with_it() {
    let mut s = State::new();
    assert_eq!(
        refused(
            &mut s,
            Command::CreateApiToken(api_token("acme", "ci", 'a'))
        ),
        CommandError::UnknownTenant(id("acme"))
    );
    assert_eq!(
        refused(
            &mut s,
            Command::DeleteApiToken {
                tenant: id("acme"),
                id: id("ci"),
            }
        ),
        CommandError::UnknownTenant(id("acme"))
    );
    ok(&mut s, Command::CreateTenant(tenant("acme", 5)));
    ok(&mut s, Command::CreateTenant(tenant("beta", 5)));
    ok(
        &mut s,
        Command::CreateApiToken(api_token("acme", "ci", 'a')),
    );
    ok(
        &mut s,
        Command::CreateApiToken(api_token("beta", "ci", 'b')),
    );
    // Tokens alone do not keep a tenant from being deleted...
    ok(&mut s, Command::DeleteTenant { tenant: id("acme") });
    // ...and a tenant re-created under the same id does not inherit them.
    ok(&mut s, Command::CreateTenant(tenant("acme", 5)));
    assert_eq!(s.api_tokens(&id("acme")).count(), 0);
    assert_eq!(s.api_tokens(&id("beta")).count(), 1);
    let restored = State::restore(&s.snapshot().expect("encode")).expect("restore");
    assert_eq!(restored, s);
}
