//! Call metrics per tenant. The B2BUA counts attempts, refusals and live calls as they
//! happen; the CDR writer counts what a finished call adds (answered, billable seconds,
//! talk time) once its record is durable, so the counters and the CDRs agree.
//!
//! ASR and ACD in PromQL:
//! `rate(tongdai_calls_answered_total[5m]) / rate(tongdai_call_attempts_total[5m])` and
//! `rate(tongdai_call_billable_seconds_total[5m]) / rate(tongdai_calls_answered_total[5m])`.
//!
//! The `tenant` label is a tenant id (anything else is counted as `invalid`), so series
//! stay bounded by the number of tenants.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use tongdai_control_plane::model::Id;

use super::record::Cdr;

pub const CALL_ATTEMPTS_TOTAL: &str = "tongdai_call_attempts_total";
pub const CALLS_ANSWERED_TOTAL: &str = "tongdai_calls_answered_total";
pub const CALL_BILLABLE_SECONDS_TOTAL: &str = "tongdai_call_billable_seconds_total";
pub const CALLS_REJECTED_TOTAL: &str = "tongdai_calls_rejected_total";
pub const CALLS_ACTIVE: &str = "tongdai_calls_active";
pub const CALL_DURATION_SECONDS: &str = "tongdai_call_duration_seconds";
pub const CDRS_WRITTEN_TOTAL: &str = "tongdai_cdrs_written_total";
pub const CDR_SPOOL_BYTES: &str = "tongdai_cdr_spool_bytes";
pub const CDR_TORN_LINES_TOTAL: &str = "tongdai_cdr_torn_lines_total";
pub const CDR_SHIP_ERRORS_TOTAL: &str = "tongdai_cdr_ship_errors_total";

/// Buckets of [`CALL_DURATION_SECONDS`]: seconds to two hours.
pub const DURATION_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
];

/// The label for `tenant`: itself when it is a tenant id, else `invalid`.
fn tenant_label(tenant: &str) -> String {
    match Id::new(tenant) {
        Ok(_) => tenant.to_owned(),
        Err(_) => "invalid".to_owned(),
    }
}

/// A call arrived for `tenant` (an INVITE that starts a call, before any check).
pub fn call_attempt(tenant: &str) {
    counter!(CALL_ATTEMPTS_TOTAL, "tenant" => tenant_label(tenant)).increment(1);
}

/// A call was refused before it was routed: `reason` is one of a fixed set of words
/// (`quota`, `forbidden_caller_id`, `no_route`, `loop`, ...), never text from a peer.
pub fn call_rejected(tenant: &str, reason: &'static str) {
    counter!(CALLS_REJECTED_TOTAL, "tenant" => tenant_label(tenant), "reason" => reason)
        .increment(1);
}

/// A call of `tenant` started (pair with [`call_ended`]).
pub fn call_started(tenant: &str) {
    gauge!(CALLS_ACTIVE, "tenant" => tenant_label(tenant)).increment(1.0);
}

/// A call of `tenant` ended.
pub fn call_ended(tenant: &str) {
    gauge!(CALLS_ACTIVE, "tenant" => tenant_label(tenant)).decrement(1.0);
}

/// What a durable CDR adds: counted by the writer, once per record.
pub(super) fn cdr_written(cdr: &Cdr) {
    counter!(CDRS_WRITTEN_TOTAL).increment(1);
    if cdr.is_answered() {
        let tenant = tenant_label(&cdr.tenant);
        counter!(CALLS_ANSWERED_TOTAL, "tenant" => tenant.clone()).increment(1);
        counter!(CALL_BILLABLE_SECONDS_TOTAL, "tenant" => tenant).increment(cdr.billable_secs);
        // Talk time of answered calls; precision loss starts at 2^53 seconds.
        #[allow(clippy::cast_precision_loss)]
        metrics::histogram!(CALL_DURATION_SECONDS).record(cdr.billable_secs as f64);
    }
}

pub(super) fn spool_bytes(bytes: u64) {
    #[allow(clippy::cast_precision_loss)]
    gauge!(CDR_SPOOL_BYTES).set(bytes as f64);
}

pub(super) fn torn_lines(n: u64) {
    counter!(CDR_TORN_LINES_TOTAL).increment(n);
}

pub(super) fn ship_error() {
    counter!(CDR_SHIP_ERRORS_TOTAL).increment(1);
}

/// Help text for the metrics above (called from `telemetry::metrics::describe_metrics`).
pub fn describe() {
    describe_counter!(
        CALL_ATTEMPTS_TOTAL,
        Unit::Count,
        "Calls that arrived (INVITEs starting a call), by tenant"
    );
    describe_counter!(
        CALLS_ANSWERED_TOTAL,
        Unit::Count,
        "Answered calls, by tenant, counted when their CDR is written; ASR = answered / attempts"
    );
    describe_counter!(
        CALL_BILLABLE_SECONDS_TOTAL,
        Unit::Seconds,
        "Billable seconds of answered calls, by tenant; ACD = billable seconds / answered"
    );
    describe_counter!(
        CALLS_REJECTED_TOTAL,
        Unit::Count,
        "Calls refused before routing, by tenant and reason"
    );
    describe_gauge!(CALLS_ACTIVE, Unit::Count, "Calls in progress, by tenant");
    describe_histogram!(
        CALL_DURATION_SECONDS,
        Unit::Seconds,
        "Talk time (answer to hangup) of answered calls"
    );
    describe_counter!(
        CDRS_WRITTEN_TOTAL,
        Unit::Count,
        "CDRs made durable in the spool"
    );
    describe_gauge!(
        CDR_SPOOL_BYTES,
        Unit::Bytes,
        "Bytes of CDRs in the spool not yet shipped to the store"
    );
    describe_counter!(
        CDR_TORN_LINES_TOTAL,
        Unit::Count,
        "Torn last lines of spool segments cut off (a crash during a write; never acknowledged)"
    );
    describe_counter!(
        CDR_SHIP_ERRORS_TOTAL,
        Unit::Count,
        "Failed attempts to ship a spool segment to the CDR store (retried)"
    );
}
