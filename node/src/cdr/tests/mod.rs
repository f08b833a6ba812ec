//! Tests of the CDR pipeline on real files: record arithmetic, the spool's group commit
//! and crash recovery, shipping, store queries, and the records served to the API.

mod api;
mod record;
mod service;
mod store;

use std::path::Path;
use std::time::{Duration, Instant};

use tongdai_control_plane::model::NumberKind;

use super::{Cdr, CdrConfig, Direction, Disposition, HangupBy};

/// 2026-11-24T08:00:00Z
pub(super) const T: u64 = 1_795_507_200_000;

/// An answered inbound call of `tenant` set up at `setup_ms`, talking `talk_ms`.
pub(super) fn answered(tenant: &str, setup_ms: u64, talk_ms: u64) -> Cdr {
    let mut cdr = Cdr::new(
        tenant,
        "node-a",
        format!("call-{setup_ms}@peer"),
        Direction::Inbound,
        "0912345678",
        "19006868",
        setup_ms,
    );
    cdr.number = Some("19006868".into());
    cdr.number_kind = Some(NumberKind::Premium1900);
    cdr.destination = "hunt_group:sales".into();
    cdr.ringing_ms = Some(setup_ms + 100);
    cdr.answer_ms = Some(setup_ms + 2_000);
    cdr.disposition = Disposition::Answered;
    cdr.sip_status = 200;
    cdr.hangup_by = HangupBy::Caller;
    cdr.hangup_reason = "bye".into();
    cdr.finish(setup_ms + 2_000 + talk_ms);
    cdr.rate(Some("band-a"));
    cdr
}

/// A `[cdr]` config with both directories under `dir`.
pub(super) fn config(dir: &Path) -> CdrConfig {
    CdrConfig::under(&dir.display().to_string())
}

/// Polls `f` until it is true or `within` passes.
pub(super) fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
