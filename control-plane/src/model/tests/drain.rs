//! Node drain requests: made pending, accepted once by their number, replaced by a newer
//! request, dropped a minute after their last change (entry time only), bounded.

use super::*;

fn drain(node: &str) -> Command {
    Command::DrainNode { node: node.into() }
}

fn accept(node: &str, seq: u64) -> Command {
    Command::AcceptDrain {
        node: node.into(),
        seq,
    }
}

fn at(state: &mut State, time_ms: u64, command: Command) -> Result<Outcome, CommandError> {
    state.apply(&Entry { time_ms, command })
}

#[test]
fn a_request_is_pending_until_its_node_accepts_it_once() {
    let mut s = State::new();
    ok(&mut s, drain("node-a"));
    let d = s.node_drain("node-a").expect("stored").clone();
    assert!(d.is_pending());
    assert_eq!((d.seq, d.requested_at_ms), (1, T0));
    assert_eq!(s.revision(), 1);

    at(&mut s, T0 + 500, accept("node-a", d.seq)).expect("accepted");
    let d = s.node_drain("node-a").expect("kept");
    assert_eq!(d.accepted_at_ms, Some(T0 + 500));
    assert!(!d.is_pending());
    assert_eq!(s.revision(), 2);

    // Accepting again changes nothing (not even the revision).
    let before = s.clone();
    at(&mut s, T0 + 600, accept("node-a", 1)).expect("idempotent");
    assert_eq!(s, before);
}

#[test]
fn only_the_current_request_of_the_named_node_can_be_accepted() {
    let mut s = State::new();
    ok(&mut s, drain("node-a"));
    ok(&mut s, drain("node-a"));
    assert_eq!(s.node_drain("node-a").map(|d| d.seq), Some(2));
    assert_eq!(
        refused(&mut s, accept("node-a", 1)),
        CommandError::UnknownDrainRequest {
            node: "node-a".into(),
            seq: 1
        }
    );
    assert!(matches!(
        refused(&mut s, accept("node-b", 2)),
        CommandError::UnknownDrainRequest { .. }
    ));
    ok(&mut s, accept("node-a", 2));
}

#[test]
fn requests_lapse_a_minute_after_their_last_change() {
    let mut s = State::new();
    ok(&mut s, drain("node-a"));
    at(&mut s, T0 + 30_000, drain("node-b")).expect("ok");
    at(&mut s, T0 + 50_000, accept("node-b", 2)).expect("ok");
    // Any entry expires by its own time: node-a's pending request is a minute old.
    at(&mut s, T0 + NODE_DRAIN_TTL_MS, drain("node-c")).expect("ok");
    assert!(s.node_drain("node-a").is_none());
    assert!(s.node_drain("node-b").is_some(), "accepted at +50 s");
    at(&mut s, T0 + 50_000 + NODE_DRAIN_TTL_MS, accept("node-c", 3)).expect("ok");
    assert!(s.node_drain("node-b").is_none());
    // A lapsed request cannot be accepted.
    let mut s = State::new();
    ok(&mut s, drain("node-a"));
    assert!(at(&mut s, T0 + NODE_DRAIN_TTL_MS, accept("node-a", 1)).is_err());
}

#[test]
fn bad_names_and_too_many_requests_are_refused() {
    let mut s = State::new();
    assert!(matches!(
        refused(&mut s, drain("")),
        CommandError::InvalidText {
            field: TextField::NodeName,
            ..
        }
    ));
    assert!(matches!(
        refused(&mut s, drain(&"n".repeat(MAX_NODE_NAME_LEN + 1))),
        CommandError::InvalidText { .. }
    ));
    for n in 0..MAX_NODE_DRAINS {
        ok(&mut s, drain(&format!("node-{n}")));
    }
    assert_eq!(
        refused(&mut s, drain("one-more")),
        CommandError::TooManyDrainRequests {
            limit: MAX_NODE_DRAINS
        }
    );
    // A node already named may be asked again; lapsed requests make room.
    ok(&mut s, drain("node-0"));
    at(&mut s, T0 + NODE_DRAIN_TTL_MS, drain("one-more")).expect("room after a minute");
}
