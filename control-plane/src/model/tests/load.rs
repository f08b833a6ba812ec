//! Load reports: stored per node in canonical form, replaced, removed, expired by entry
//! time only, bounded.

use super::*;

fn load(tenant: &str, active_calls: u32, attempts_per_sec: u32) -> TenantLoad {
    TenantLoad {
        tenant: id(tenant),
        active_calls,
        attempts_per_sec,
    }
}

fn report(node: &str, tenants: Vec<TenantLoad>) -> Command {
    Command::ReportLoad {
        node: node.into(),
        tenants,
    }
}

/// Applies `command` at `time_ms` and expects success.
fn ok_at(state: &mut State, time_ms: u64, command: Command) -> Outcome {
    let e = Entry { time_ms, command };
    match state.apply(&e) {
        Ok(outcome) => outcome,
        Err(err) => panic!("{:?} refused: {err}", e.command),
    }
}

fn expired(names: &[&str]) -> Outcome {
    Outcome::LoadReported {
        expired: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}

fn nodes(state: &State) -> Vec<&str> {
    state.load_reports().map(|(n, _)| n).collect()
}

#[test]
fn a_report_is_stored_by_tenant_without_idle_tenants_and_replaces_the_last() {
    let mut s = State::new();
    let out = ok(
        &mut s,
        report(
            "node-a",
            vec![load("zeta", 2, 1), load("acme", 0, 0), load("beta", 0, 3)],
        ),
    );
    assert_eq!(out, expired(&[]));
    assert_eq!(s.revision(), 1);
    let stored = s.load_report("node-a").expect("stored");
    assert_eq!(stored.time_ms, T0);
    assert_eq!(stored.tenants, vec![load("beta", 0, 3), load("zeta", 2, 1)]);
    assert_eq!(stored.tenant(&id("zeta")), Some(&load("zeta", 2, 1)));
    assert_eq!(stored.tenant(&id("acme")), None);

    // Reports need no tenant to exist: a call's tenant may have just been deleted.
    ok_at(
        &mut s,
        T0 + 1000,
        report("node-a", vec![load("gone", 1, 0)]),
    );
    let stored = s.load_report("node-a").expect("replaced");
    assert_eq!(
        (stored.time_ms, stored.tenants.as_slice()),
        (T0 + 1000, &[load("gone", 1, 0)][..])
    );
    assert_eq!(s.revision(), 2);
}

#[test]
fn an_idle_report_removes_the_node_and_changes_nothing_when_there_is_none() {
    let mut s = State::new();
    ok(&mut s, report("node-a", vec![load("acme", 1, 1)]));
    ok_at(
        &mut s,
        T0 + 1000,
        report("node-a", vec![load("acme", 0, 0)]),
    );
    assert_eq!(s.load_report("node-a"), None);
    assert_eq!(s.revision(), 2);
    ok_at(&mut s, T0 + 2000, report("node-a", vec![]));
    assert_eq!(s.revision(), 2, "nothing to remove");
    // The same report in the same entry time (a retried proposal) changes nothing.
    ok_at(
        &mut s,
        T0 + 3000,
        report("node-b", vec![load("acme", 1, 1)]),
    );
    ok_at(
        &mut s,
        T0 + 3000,
        report("node-b", vec![load("acme", 1, 1)]),
    );
    assert_eq!(s.revision(), 3);
}

#[test]
fn reports_expire_ten_seconds_after_the_newest_entry_time() {
    let mut s = State::new();
    ok_at(&mut s, T0, report("node-a", vec![load("acme", 5, 1)]));
    ok_at(
        &mut s,
        T0 + 4000,
        report("node-b", vec![load("acme", 1, 1)]),
    );
    // Exactly 10 s old: kept.
    let out = ok_at(
        &mut s,
        T0 + LOAD_REPORT_TTL_MS,
        report("node-c", vec![load("acme", 1, 0)]),
    );
    assert_eq!(out, expired(&[]));
    assert_eq!(nodes(&s), ["node-a", "node-b", "node-c"]);
    // Older than 10 s: dropped by whichever report comes next, also an idle one.
    let out = ok_at(
        &mut s,
        T0 + LOAD_REPORT_TTL_MS + 1,
        report("node-c", vec![]),
    );
    assert_eq!(out, expired(&["node-a"]));
    assert_eq!(nodes(&s), ["node-b"]);
    let revision = s.revision();

    // A new leader whose clock is behind: "newest" is still the latest entry time seen,
    // so node-b (stamped T0 + 4 s) goes once anything is stamped 10 s after it.
    ok_at(
        &mut s,
        T0 + 20_000,
        report("node-d", vec![load("acme", 1, 0)]),
    );
    assert_eq!(nodes(&s), ["node-d"]);
    let out = ok_at(
        &mut s,
        T0 + 12_000,
        report("node-e", vec![load("acme", 1, 0)]),
    );
    assert_eq!(out, expired(&[]));
    assert_eq!(nodes(&s), ["node-d", "node-e"]);
    assert_eq!(
        s.load_report("node-e").map(|l| l.time_ms),
        Some(T0 + 12_000)
    );
    let out = ok_at(
        &mut s,
        T0 + 23_000,
        report("node-d", vec![load("acme", 2, 0)]),
    );
    assert_eq!(out, expired(&["node-e"]));
    assert_eq!(s.revision(), revision + 3);
}

#[test]
fn bad_reports_are_refused_and_change_nothing() {
    let mut s = State::new();
    ok(&mut s, report("node-a", vec![load("acme", 1, 1)]));
    for bad in ["", "node\na", &"n".repeat(MAX_NODE_NAME_LEN + 1)] {
        assert!(
            matches!(
                refused(&mut s, report(bad, vec![load("acme", 1, 1)])),
                CommandError::InvalidText {
                    field: TextField::NodeName,
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        refused(
            &mut s,
            report("node-a", vec![load("acme", 1, 1), load("acme", 0, 0)])
        ),
        CommandError::TenantReportedTwice(id("acme"))
    );
    let many: Vec<TenantLoad> = (0..=MAX_TENANTS_PER_REPORT)
        .map(|i| load(&format!("t{i}"), 1, 0))
        .collect();
    assert!(matches!(
        refused(&mut s, report("node-a", many)),
        CommandError::OutOfBounds {
            field: BoundedField::ReportTenants,
            ..
        }
    ));
    // The longest name is fine.
    ok(
        &mut s,
        report(&"n".repeat(MAX_NODE_NAME_LEN), vec![load("acme", 1, 1)]),
    );
}

#[test]
fn reporting_nodes_are_bounded_until_reports_expire() {
    let mut s = State::new();
    for i in 0..MAX_REPORTING_NODES {
        ok(&mut s, report(&format!("n{i}"), vec![load("acme", 1, 0)]));
    }
    assert_eq!(
        refused(&mut s, report("late", vec![load("acme", 1, 0)])),
        CommandError::TooManyReportingNodes {
            limit: MAX_REPORTING_NODES
        }
    );
    // Known nodes still report, and an idle new node has nothing to store.
    ok(&mut s, report("n0", vec![load("acme", 2, 0)]));
    ok(&mut s, report("late", vec![]));
    // Once the others expired there is room again.
    let later = T0 + LOAD_REPORT_TTL_MS + 1;
    let out = ok_at(&mut s, later, report("late", vec![load("acme", 1, 0)]));
    let Outcome::LoadReported { expired } = out else {
        panic!("{out:?}");
    };
    assert_eq!(expired.len(), MAX_REPORTING_NODES);
    assert_eq!(nodes(&s), ["late"]);
}

#[test]
fn load_survives_a_snapshot() {
    let mut s = two_tenants();
    ok(&mut s, report("node-a", vec![load("acme", 3, 2)]));
    ok(&mut s, report("node-b", vec![load("beta", 1, 0)]));
    let restored = State::restore(&s.snapshot().expect("encode")).expect("restore");
    assert_eq!(restored, s);
    assert_eq!(nodes(&restored), ["node-a", "node-b"]);
}
