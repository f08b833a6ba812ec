//! The record's arithmetic (rounding, rating) and its JSON form.

use std::collections::HashSet;

use serde_json::json;
use tongdai_control_plane::model::NumberKind;

use super::*;
use crate::cdr::{CdrLeg, Quality, StreamQuality};

fn call(setup: u64, answer: Option<u64>, end: u64) -> Cdr {
    let mut cdr = Cdr::new(
        "acme",
        "n1",
        "c",
        Direction::Internal,
        "1001",
        "1002",
        setup,
    );
    cdr.answer_ms = answer;
    cdr.finish(end);
    cdr
}

#[test]
fn duration_rounds_down_and_billable_rounds_up() {
    // Set up at 1.000 s, answered at 3.000 s, ended at 4.200 s.
    let c = call(1_000, Some(3_000), 4_200);
    assert_eq!((c.duration_secs, c.billable_secs), (3, 2));
    // Whole seconds stay whole.
    let c = call(1_000, Some(3_000), 5_000);
    assert_eq!((c.duration_secs, c.billable_secs), (4, 2));
    // One millisecond of talk bills a second.
    let c = call(0, Some(999), 1_000);
    assert_eq!((c.duration_secs, c.billable_secs), (1, 1));
    // Answered and hung up in the same millisecond: nothing to bill.
    let c = call(0, Some(500), 500);
    assert_eq!((c.duration_secs, c.billable_secs), (0, 0));
    // Never answered.
    let c = call(0, None, 59_999);
    assert_eq!((c.duration_secs, c.billable_secs), (59, 0));
}

#[test]
fn clock_steps_never_give_negative_or_huge_numbers() {
    // An end before the setup is a zero-length call.
    let c = call(10_000, None, 5_000);
    assert_eq!((c.end_ms, c.duration_secs, c.billable_secs), (10_000, 0, 0));
    // An answer after the end bills nothing.
    let c = call(0, Some(9_000), 5_000);
    assert_eq!((c.duration_secs, c.billable_secs), (5, 0));
    // An answer stamped before the setup bills from the setup.
    let c = call(5_000, Some(1_000), 7_500);
    assert_eq!(c.billable_secs, 3);
}

#[test]
fn premium_calls_are_rated_by_started_minute() {
    for (talk_ms, minutes) in [(0, 0), (1, 1), (60_000, 1), (60_001, 2), (600_000, 10)] {
        let cdr = answered("acme", T, talk_ms);
        let rating = cdr.rating.expect("1900 with a band is rated");
        assert_eq!(rating.tariff_band, "band-a");
        assert_eq!(rating.billable_minutes, minutes, "talk {talk_ms} ms");
    }
    // Finishing again (a late BYE) refreshes the minutes.
    let mut cdr = answered("acme", T, 30_000);
    cdr.finish(T + 2_000 + 90_000);
    assert_eq!(cdr.rating.as_ref().map(|r| r.billable_minutes), Some(2));
    // Only 1900 numbers, and only with a band.
    let mut cdr = answered("acme", T, 30_000);
    cdr.rate(None);
    assert_eq!(cdr.rating, None);
    for kind in [NumberKind::TollFree1800, NumberKind::Geographic] {
        cdr.number_kind = Some(kind);
        cdr.rate(Some("band-a"));
        assert_eq!(cdr.rating, None, "{kind:?}");
    }
    // An unanswered 1900 call is rated at zero minutes.
    let mut cdr = answered("acme", T, 0);
    cdr.answer_ms = None;
    cdr.finish(T + 5_000);
    cdr.rate(Some("band-a"));
    assert_eq!(cdr.rating.map(|r| r.billable_minutes), Some(0));
}

#[test]
fn dispositions_follow_the_final_status() {
    for (status, want) in [
        (200, Disposition::Answered),
        (486, Disposition::Busy),
        (600, Disposition::Busy),
        (408, Disposition::NoAnswer),
        (480, Disposition::NoAnswer),
        (487, Disposition::Cancelled),
        (403, Disposition::Rejected),
        (404, Disposition::Rejected),
        (302, Disposition::Rejected),
        (603, Disposition::Rejected),
        (500, Disposition::Failed),
        (503, Disposition::Failed),
    ] {
        assert_eq!(Disposition::for_status(status), want, "{status}");
    }
}

#[test]
fn json_is_snake_case_and_round_trips() {
    let mut cdr = answered("acme", T, 61_000);
    let mut leg = CdrLeg::new("extension:1001", T + 10);
    leg.answered_ms = Some(T + 2_000);
    leg.ended_ms = T + 63_000;
    leg.status = 200;
    cdr.legs.push(leg);
    cdr.quality = Some(Quality {
        caller: StreamQuality {
            packets: 3000,
            lost: 3,
            loss_ratio: 0.001,
            jitter_ms: 2.5,
            mos: 4.3,
        },
        callee: StreamQuality {
            packets: 2990,
            lost: 0,
            loss_ratio: 0.0,
            jitter_ms: 1.0,
            mos: 4.4,
        },
    });
    cdr.recording_id = Some("acme-1-abc".into());
    let v = serde_json::to_value(&cdr).expect("encodes");
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["disposition"], "answered");
    assert_eq!(v["hangup_by"], "caller");
    assert_eq!(v["number_kind"], "premium_1900");
    assert_eq!(v["billable_secs"], 61);
    assert_eq!(
        v["rating"],
        json!({"tariff_band": "band-a", "billable_minutes": 2})
    );
    assert_eq!(v["legs"][0]["target"], "extension:1001");
    let back: Cdr = serde_json::from_value(v).expect("decodes");
    assert_eq!(back, cdr);
    assert_eq!(cdr.quality.as_ref().and_then(Quality::mos), Some(4.3));

    let mut v = serde_json::to_value(&cdr).expect("encodes");
    v["number_kind"] = json!("TollFree1800");
    let e = serde_json::from_value::<Cdr>(v).expect_err("the log's spelling is not ours");
    assert!(e.to_string().contains("toll_free_1800"), "{e}");
}

#[test]
fn ids_are_unique_and_carry_the_node() {
    let ids: HashSet<String> = (0..10_000).map(|_| Cdr::new_id("node-a")).collect();
    assert_eq!(ids.len(), 10_000);
    assert!(ids.iter().all(|id| id.starts_with("node-a-")));
}

#[test]
fn quality_mos_ignores_a_silent_direction() {
    let silent = StreamQuality {
        packets: 0,
        lost: 0,
        loss_ratio: 0.0,
        jitter_ms: 0.0,
        mos: 0.0,
    };
    let heard = StreamQuality {
        mos: 4.1,
        packets: 100,
        ..silent.clone()
    };
    let q = Quality {
        caller: heard,
        callee: silent.clone(),
    };
    assert_eq!(q.mos(), Some(4.1));
    let q = Quality {
        caller: silent.clone(),
        callee: silent,
    };
    assert_eq!(q.mos(), None);
}
