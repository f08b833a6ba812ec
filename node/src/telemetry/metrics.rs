//! The Prometheus recorder and the tongdai metrics, with helpers whose label values come from
//! small fixed sets. SIP code calls the helpers with whatever a peer sent; anything outside the
//! set is counted as `other`, so a flood of invented methods cannot create new series.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;

use super::TelemetryError;

/// `tongdai_sip_requests_total{method,transport}`: SIP requests received.
pub const SIP_REQUESTS_TOTAL: &str = "tongdai_sip_requests_total";
/// `tongdai_sip_responses_total{method,class}`: SIP responses sent, by request method and
/// status class.
pub const SIP_RESPONSES_TOTAL: &str = "tongdai_sip_responses_total";
/// `tongdai_sip_parse_errors_total{transport}`: messages that could not be parsed.
pub const SIP_PARSE_ERRORS_TOTAL: &str = "tongdai_sip_parse_errors_total";
/// `tongdai_registrations_active`: contact bindings currently registered.
pub const REGISTRATIONS_ACTIVE: &str = "tongdai_registrations_active";
/// `tongdai_register_auth_failures_total{reason}`: REGISTER requests refused by digest auth.
pub const REGISTER_AUTH_FAILURES_TOTAL: &str = "tongdai_register_auth_failures_total";

/// The methods counted by name; every other method is `other`.
pub const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// The transports counted by name; anything else is `other`.
pub const KNOWN_TRANSPORTS: &[&str] = &["udp", "tcp", "tls", "ws", "wss", "sctp"];

static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process-wide metrics recorder and describes every
/// tongdai metric. Idempotent: later calls return the handle of the first one, so tests in
/// one process can share it. Fails only if a different recorder was installed.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, TelemetryError> {
    let mut installed = RECORDER.lock();
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("tongdai_media_mos".into()),
            &[1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5],
        )?
        .set_buckets_for_metric(
            Matcher::Full("tongdai_media_loss_ratio".into()),
            &[0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
        )?
        .set_buckets_for_metric(
            Matcher::Full(crate::cdr::metrics::CALL_DURATION_SECONDS.into()),
            crate::cdr::metrics::DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("tongdai_media_jitter_seconds".into()),
            &[0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
        )?
        .install_recorder()?;
    describe_metrics();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Drains histogram buffers every `period` so memory stays bounded between scrapes. The
/// returned task runs until aborted or the runtime stops.
pub fn spawn_upkeep(handle: PrometheusHandle, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Registers help text for every tongdai metric with the installed recorder.
pub fn describe_metrics() {
    describe_counter!(
        SIP_REQUESTS_TOTAL,
        Unit::Count,
        "SIP requests received, by method (known methods or \"other\") and transport"
    );
    describe_counter!(
        SIP_RESPONSES_TOTAL,
        Unit::Count,
        "SIP responses sent, by request method (known methods or \"other\") and status class \
         (1xx..6xx)"
    );
    describe_counter!(
        SIP_PARSE_ERRORS_TOTAL,
        Unit::Count,
        "SIP messages that could not be parsed, by transport"
    );
    describe_gauge!(
        REGISTRATIONS_ACTIVE,
        Unit::Count,
        "Contact bindings currently registered"
    );
    describe_gauge!(
        "tongdai_tenant_quota_calls",
        Unit::Count,
        "A tenant's max_concurrent_calls quota (cluster-wide), by tenant; set once this node \
         admits or refuses a call of the tenant"
    );
    describe_counter!(
        REGISTER_AUTH_FAILURES_TOTAL,
        Unit::Count,
        "REGISTER requests refused by digest authentication, by reason"
    );
    describe_histogram!(
        "tongdai_registration_commit_seconds",
        Unit::Seconds,
        "From a node proposing a REGISTER's binding change to its commit by the Raft group"
    );
    describe_histogram!(
        "tongdai_control_plane_commit_seconds",
        Unit::Seconds,
        "On a replica: from proposing a log entry (a batch of commands) to its apply"
    );
    describe_counter!(
        "tongdai_control_plane_log_entries_proposed_total",
        Unit::Count,
        "Log entries this replica proposed (each a batch of commands)"
    );
    describe_histogram!(
        "tongdai_media_mos",
        Unit::Count,
        "Estimated MOS (simplified E-model) of each finished call leg's received audio, by tenant"
    );
    describe_histogram!(
        "tongdai_media_loss_ratio",
        Unit::Count,
        "RTP loss ratio (lost / expected) of each finished call leg's received audio, by tenant"
    );
    describe_histogram!(
        "tongdai_media_jitter_seconds",
        Unit::Seconds,
        "Interarrival jitter (RFC 3550) at the end of each finished call leg, by tenant"
    );
    describe_counter!(
        "tongdai_media_relayed_packets_total",
        Unit::Count,
        "RTP and RTCP packets the relay sent on, by worker thread"
    );
    describe_counter!(
        "tongdai_media_relayed_bytes_total",
        Unit::Bytes,
        "Bytes of RTP the relay sent on, by worker thread"
    );
    describe_counter!(
        "tongdai_media_dropped_packets_total",
        Unit::Count,
        "Packets the relay dropped (foreign source, malformed, no destination, send failed), by worker"
    );
    describe_gauge!(
        "tongdai_media_worker_calls",
        Unit::Count,
        "Calls placed on each relay worker thread"
    );
    describe_gauge!(
        "tongdai_media_port_pairs_in_use",
        Unit::Count,
        "RTP/RTCP port pairs held by media sessions (two per session)"
    );
    describe_gauge!(
        "tongdai_media_port_pairs_available",
        Unit::Count,
        "RTP/RTCP port pairs still free in the configured range"
    );
    describe_gauge!(
        "tongdai_media_sessions",
        Unit::Count,
        "Media sessions open on this node"
    );
    describe_counter!(
        "tongdai_control_plane_commands_proposed_total",
        Unit::Count,
        "Commands this replica proposed; divided by log entries, the batching factor"
    );
    crate::cdr::metrics::describe();
}

/// The `method` label for a SIP method: the method itself if it is one we know (SIP methods
/// are case-sensitive), otherwise `other`.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

/// The `transport` label: `udp`, `tcp`, `tls`, `ws`, `wss`, `sctp` (any case), else `other`.
pub fn transport_label(transport: &str) -> &'static str {
    KNOWN_TRANSPORTS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(transport))
        .copied()
        .unwrap_or("other")
}

/// The `class` label for a status code: `1xx` .. `6xx`, `other` outside 100..=699.
pub fn status_class_label(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        600..=699 => "6xx",
        _ => "other",
    }
}

/// Counts a SIP request received over `transport`.
pub fn record_request(method: &str, transport: &str) {
    counter!(
        SIP_REQUESTS_TOTAL,
        "method" => method_label(method),
        "transport" => transport_label(transport)
    )
    .increment(1);
}

/// Counts a SIP response with `status` sent for a request with `method`.
pub fn record_response(method: &str, status: u16) {
    counter!(
        SIP_RESPONSES_TOTAL,
        "method" => method_label(method),
        "class" => status_class_label(status)
    )
    .increment(1);
}

/// Counts a message received over `transport` that could not be parsed.
pub fn record_parse_error(transport: &str) {
    counter!(SIP_PARSE_ERRORS_TOTAL, "transport" => transport_label(transport)).increment(1);
}

/// Sets the number of contact bindings currently registered.
pub fn set_registrations_active(count: usize) {
    // A gauge is an f64; precision loss starts at 2^53 bindings.
    #[allow(clippy::cast_precision_loss)]
    gauge!(REGISTRATIONS_ACTIVE).set(count as f64);
}

/// Why digest authentication refused a REGISTER (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailureReason {
    /// No such user in the realm.
    UnknownUser,
    /// The response hash did not match: wrong password (or wrong hash inputs).
    WrongPassword,
    /// The nonce was ours but has expired; the client should retry with the new one.
    StaleNonce,
    /// The nonce was not issued by us or fails its integrity check.
    InvalidNonce,
    /// The Authorization header could not be parsed or misses required parameters.
    MalformedCredentials,
    /// The client used an algorithm we did not offer.
    UnsupportedAlgorithm,
    /// The credentials name a realm other than the one challenged.
    RealmMismatch,
    /// The digest `uri` does not match the Request-URI.
    UriMismatch,
    /// The authentication user may not register the address-of-record in To.
    IdentityMismatch,
}

impl AuthFailureReason {
    pub const ALL: [AuthFailureReason; 9] = [
        AuthFailureReason::UnknownUser,
        AuthFailureReason::WrongPassword,
        AuthFailureReason::StaleNonce,
        AuthFailureReason::InvalidNonce,
        AuthFailureReason::MalformedCredentials,
        AuthFailureReason::UnsupportedAlgorithm,
        AuthFailureReason::RealmMismatch,
        AuthFailureReason::UriMismatch,
        AuthFailureReason::IdentityMismatch,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailureReason::UnknownUser => "unknown_user",
            AuthFailureReason::WrongPassword => "wrong_password",
            AuthFailureReason::StaleNonce => "stale_nonce",
            AuthFailureReason::InvalidNonce => "invalid_nonce",
            AuthFailureReason::MalformedCredentials => "malformed_credentials",
            AuthFailureReason::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthFailureReason::RealmMismatch => "realm_mismatch",
            AuthFailureReason::UriMismatch => "uri_mismatch",
            AuthFailureReason::IdentityMismatch => "identity_mismatch",
        }
    }
}

/// Counts a REGISTER refused by digest authentication.
pub fn record_auth_failure(reason: AuthFailureReason) {
    counter!(REGISTER_AUTH_FAILURES_TOTAL, "reason" => reason.as_str()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_known_set_are_other() {
        assert_eq!(method_label("INVITE"), "INVITE");
        assert_eq!(method_label("REGISTER"), "REGISTER");
        assert_eq!(
            method_label("invite"),
            "other",
            "SIP methods are case-sensitive"
        );
        assert_eq!(method_label("XYZZY"), "other");
        assert_eq!(method_label(""), "other");
    }

    #[test]
    fn transports_are_lowercased_or_other() {
        assert_eq!(transport_label("UDP"), "udp");
        assert_eq!(transport_label("tcp"), "tcp");
        assert_eq!(transport_label("Wss"), "wss");
        assert_eq!(transport_label("carrier-pigeon"), "other");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class_label(100), "1xx");
        assert_eq!(status_class_label(200), "2xx");
        assert_eq!(status_class_label(302), "3xx");
        assert_eq!(status_class_label(401), "4xx");
        assert_eq!(status_class_label(503), "5xx");
        assert_eq!(status_class_label(699), "6xx");
        assert_eq!(status_class_label(99), "other");
        assert_eq!(status_class_label(700), "other");
    }

    #[test]
    fn auth_failure_reasons_are_distinct_snake_case() {
        let labels: std::collections::BTreeSet<&str> =
            AuthFailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), AuthFailureReason::ALL.len());
        assert!(
            labels
                .iter()
                .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
