//! The registration's timing with simulated time: granted expiry and refresh, backoff
//! and Retry-After, 423, lapses, removal, new settings.

use std::time::Duration;
use std::time::Instant;

use super::*;
use crate::sip::auth::Credentials;
use crate::sip::{HeaderName, SipHeaders};
use crate::trunk::registration::{BACKOFF_BASE, Failure, Params, State, refresh_lead};

#[test]
fn the_granted_expiry_of_our_contact_wins_and_the_refresh_goes_before_it() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&challenge_401(&nm, &first), now);
    let second = sent(&mut m);
    // Another node's contact of the same account, then ours with its own expiry.
    let ok = answer(
        &second,
        200,
        &[
            (
                HeaderName::Contact,
                "<sip:acme@198.51.100.6:5070>;expires=3600".into(),
            ),
            (
                HeaderName::Contact,
                "<sip:acme@198.51.100.5:5070;transport=udp>;expires=300".into(),
            ),
            (HeaderName::Expires, "3600".into()),
        ],
    );
    assert!(m.handle_response(&ok, now));
    let lifetime = Duration::from_secs(300);
    assert_eq!(
        m.state(),
        &State::Registered {
            until: now + lifetime,
            refresh_at: now + lifetime - refresh_lead(lifetime),
        }
    );
    assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(240)));
    // Nothing happens before the refresh time.
    m.handle_timeout(now + Duration::from_secs(239));
    assert!(m.poll_request().is_none());
}

#[test]
fn without_a_contact_expiry_the_expires_header_then_the_request_counts() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    register(&mut m, &nm, now, 90);
    assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(45)));

    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&answer(&first, 200, &[]), now);
    match m.state() {
        State::Registered { until, .. } => assert_eq!(*until, now + Duration::from_secs(600)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refresh_lead_is_half_the_lifetime_up_to_a_minute() {
    assert_eq!(
        refresh_lead(Duration::from_secs(60)),
        Duration::from_secs(30)
    );
    assert_eq!(
        refresh_lead(Duration::from_secs(3600)),
        Duration::from_secs(60)
    );
}

#[test]
fn a_refresh_keeps_the_call_id_raises_the_cseq_and_reuses_the_challenge() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let second = register(&mut m, &nm, now, 120);
    let refresh_at = now + Duration::from_secs(60);
    assert_eq!(m.poll_timeout(), Some(refresh_at));
    m.handle_timeout(refresh_at);
    let refresh = sent(&mut m);
    assert_eq!(refresh.call_id().unwrap(), second.call_id().unwrap());
    assert_eq!(cseq(&refresh), 3);
    assert_eq!(refresh.expires().unwrap(), Some(600));
    let creds = Credentials::parse(header(&refresh, HeaderName::Authorization).unwrap()).unwrap();
    assert_eq!(creds.nc(), Some(2), "the reused nonce counts on");
    assert!(registrar_accepts(
        &nm,
        &refresh,
        HeaderName::Authorization,
        "s3cret"
    ));
    // Still registered while the refresh is out; woken at the old expiry only.
    assert!(m.state().is_registered());
    assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(120)));
    m.handle_timeout(refresh_at + Duration::from_secs(1));
    assert!(
        m.poll_request().is_none(),
        "no second refresh while one is out"
    );
    let later = refresh_at + Duration::from_secs(1);
    m.handle_response(
        &answer(&refresh, 200, &[(HeaderName::Expires, "120".into())]),
        later,
    );
    match m.state() {
        State::Registered { until, .. } => assert_eq!(*until, later + Duration::from_secs(120)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn consecutive_failures_double_the_wait_up_to_the_cap() {
    let mut now = Instant::now();
    let mut m = machine();
    let mut req = started(&mut m, now);
    let mut waits = Vec::new();
    for _ in 0..8 {
        m.handle_response(&answer(&req, 403, &[]), now);
        let State::Failed { retry_at, failure } = m.state().clone() else {
            panic!("{:?}", m.state());
        };
        assert_eq!(
            failure,
            Failure::Rejected {
                status: 403,
                reason: "Forbidden".into()
            }
        );
        waits.push(retry_at - now);
        now = retry_at;
        m.handle_timeout(now);
        req = sent(&mut m);
    }
    for (i, w) in waits.iter().enumerate() {
        let full = (BACKOFF_BASE * (1 << i)).min(crate::trunk::registration::BACKOFF_MAX);
        assert!(
            *w <= full && *w >= full * 3 / 4,
            "attempt {i}: {w:?} vs {full:?}"
        );
    }
    // A success resets the backoff.
    m.handle_response(&answer(&req, 200, &[]), now);
    assert!(m.state().is_registered());
}

#[test]
fn retry_after_is_honoured() {
    let now = Instant::now();
    let mut m = machine();
    let req = started(&mut m, now);
    m.handle_response(
        &answer(
            &req,
            503,
            &[(HeaderName::RetryAfter, "120 (maintenance)".into())],
        ),
        now,
    );
    let State::Failed { retry_at, failure } = m.state().clone() else {
        panic!("{:?}", m.state());
    };
    assert_eq!(retry_at, now + Duration::from_secs(120));
    assert_eq!(failure.to_string(), "503 Service Unavailable");
}

#[test]
fn a_timeout_fails_then_retries() {
    let now = Instant::now();
    let mut m = machine();
    started(&mut m, now);
    let later = now + Duration::from_secs(32);
    m.handle_failure(Failure::Timeout, later);
    let State::Failed { retry_at, failure } = m.state().clone() else {
        panic!("{:?}", m.state());
    };
    assert_eq!(failure, Failure::Timeout);
    assert!(retry_at > later);
    // A failure with nothing out changes nothing.
    m.handle_failure(Failure::Transport, later);
    assert_eq!(m.state(), &State::Failed { retry_at, failure });
    m.handle_timeout(retry_at);
    sent(&mut m);
}

#[test]
fn interval_too_brief_is_retried_once_with_min_expires() {
    let now = Instant::now();
    let mut m = machine();
    let req = started(&mut m, now);
    m.handle_response(
        &answer(&req, 423, &[(HeaderName::MinExpires, "900".into())]),
        now,
    );
    let again = sent(&mut m);
    assert_eq!(again.expires().unwrap(), Some(900));
    m.handle_response(
        &answer(&again, 423, &[(HeaderName::MinExpires, "1200".into())]),
        now,
    );
    assert!(matches!(
        m.state(),
        State::Failed {
            failure: Failure::IntervalTooBrief {
                min_expires: Some(1200)
            },
            ..
        }
    ));
    // Above what a trunk may ask for: not tried.
    let mut m = machine();
    let req = started(&mut m, now);
    m.handle_response(
        &answer(&req, 423, &[(HeaderName::MinExpires, "7200".into())]),
        now,
    );
    assert!(m.poll_request().is_none());
}

#[test]
fn a_200_granting_nothing_is_a_failure() {
    let now = Instant::now();
    let mut m = machine();
    let req = started(&mut m, now);
    m.handle_response(
        &answer(&req, 200, &[(HeaderName::Expires, "0".into())]),
        now,
    );
    assert!(matches!(
        m.state(),
        State::Failed {
            failure: Failure::NotGranted,
            ..
        }
    ));
}

#[test]
fn the_binding_lapses_when_the_refresh_gets_no_answer_in_time() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    register(&mut m, &nm, now, 60);
    m.handle_timeout(now + Duration::from_secs(30));
    sent(&mut m);
    m.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(m.state(), &State::Registering);
    m.handle_failure(Failure::Timeout, now + Duration::from_secs(62));
    assert!(matches!(m.state(), State::Failed { .. }));
}

#[test]
fn stopping_a_registered_binding_sends_expires_zero_with_credentials() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let second = register(&mut m, &nm, now, 600);
    m.stop(now);
    assert_eq!(m.state(), &State::Unregistering);
    let remove = sent(&mut m);
    assert_eq!(remove.expires().unwrap(), Some(0));
    assert_eq!(remove.call_id().unwrap(), second.call_id().unwrap());
    assert_eq!(cseq(&remove), 3);
    assert_eq!(
        header(&remove, HeaderName::Contact),
        Some("<sip:acme@198.51.100.5:5070>")
    );
    assert!(registrar_accepts(
        &nm,
        &remove,
        HeaderName::Authorization,
        "s3cret"
    ));
    assert_eq!(m.poll_timeout(), None, "no refresh while unregistering");
    // Challenged: answered, still with Expires: 0.
    m.handle_response(&challenge_401(&nm, &remove), now);
    let again = sent(&mut m);
    assert_eq!(again.expires().unwrap(), Some(0));
    m.handle_response(&answer(&again, 200, &[]), now);
    assert!(m.is_stopped());
    m.stop(now);
    m.start(now);
    assert!(m.poll_request().is_none());
}

#[test]
fn stopping_while_the_first_register_is_out_removes_what_it_may_create() {
    let now = Instant::now();
    let mut m = machine();
    let first = started(&mut m, now);
    m.stop(now);
    let remove = sent(&mut m);
    assert_eq!(remove.expires().unwrap(), Some(0));
    // The first REGISTER's late answer no longer counts.
    assert!(!m.handle_response(&answer(&first, 200, &[]), now));
    // Unregistering that fails is given up: stopped anyway.
    m.handle_failure(Failure::Timeout, now + Duration::from_secs(32));
    assert!(m.is_stopped());
}

#[test]
fn stopping_a_failed_or_unstarted_registration_sends_nothing() {
    let now = Instant::now();
    let mut m = machine();
    m.stop(now);
    assert!(m.is_stopped());
    assert!(m.poll_request().is_none());

    let mut m = machine();
    let req = started(&mut m, now);
    m.handle_response(&answer(&req, 403, &[]), now);
    m.stop(now);
    assert!(m.is_stopped());
    assert!(m.poll_request().is_none());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_new_password_registers_again_at_once_and_another_account_needs_a_new_machine() {
    let now = Instant::now();
    let nm = nonces();
    let mut m = machine();
    let first = started(&mut m, now);
    m.handle_response(&challenge_401(&nm, &first), now);
    let second = sent(&mut m);
    m.handle_response(&challenge_401(&nm, &second), now);
    assert!(matches!(m.state(), State::Failed { .. }));
    let fixed = Params {
        password: "right".into(),
        ..params()
    };
    assert!(m.update(fixed.clone(), now));
    assert_eq!(m.state(), &State::Registering);
    let third = sent(&mut m);
    // The old challenge was answered with the old password: none is reused.
    assert!(header(&third, HeaderName::Authorization).is_none());
    m.handle_response(&challenge_401(&nm, &third), now);
    let fourth = sent(&mut m);
    assert!(registrar_accepts(
        &nm,
        &fourth,
        HeaderName::Authorization,
        "right"
    ));
    // The same settings again: nothing sent.
    assert!(m.update(fixed.clone(), now));
    assert!(m.poll_request().is_none());
    // Another account, registrar or contact is another binding.
    let other = Params {
        domain: "other.example".into(),
        ..fixed
    };
    assert!(!m.update(other, now));
    assert!(m.poll_request().is_none());
}
