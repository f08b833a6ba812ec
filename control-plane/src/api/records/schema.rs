//! The JSON the records endpoints answer, described for the OpenAPI document. The node
//! crate produces these (its `Cdr` and `RecordingSummary`); a test there checks that its
//! JSON has exactly these fields.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One call's detail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CdrView {
    /// Unique: `<node>-<unix_ms>-<counter>`.
    pub id: String,
    pub tenant: String,
    /// The node that handled the call.
    pub node: String,
    /// The caller's (A-leg) Call-ID.
    pub call_id: String,
    /// `inbound` (from a trunk), `outbound` (to a trunk) or `internal`.
    #[schema(example = "inbound")]
    pub direction: String,
    /// Calling number or extension as presented.
    pub caller: String,
    /// The number dialled.
    pub callee: String,
    /// The tenant number dialled (inbound calls).
    pub number: Option<String>,
    /// `toll_free_1800`, `premium_1900` or `geographic`.
    pub number_kind: Option<String>,
    /// Where the call was routed, e.g. `hunt_group:sales`, `extension:1001`.
    pub destination: String,
    /// Every leg placed towards callees.
    pub legs: Vec<CdrLegView>,
    /// Unix milliseconds of the INVITE.
    pub setup_ms: u64,
    /// Unix milliseconds of the first ringing response to the caller.
    pub ringing_ms: Option<u64>,
    /// Unix milliseconds of the answer.
    pub answer_ms: Option<u64>,
    /// Unix milliseconds of the hangup.
    pub end_ms: u64,
    /// `answered`, `no_answer`, `busy`, `cancelled`, `rejected` or `failed`.
    #[schema(example = "answered")]
    pub disposition: String,
    /// Final status sent to the caller (200 when answered).
    pub sip_status: u16,
    /// `caller`, `callee` or `system`.
    pub hangup_by: String,
    /// Short reason, e.g. `bye`, `cancel`, `rtp_timeout`, `session_timer`.
    pub hangup_reason: String,
    /// End minus setup, whole seconds rounded down.
    pub duration_secs: u64,
    /// End minus answer, whole seconds rounded up; 0 when unanswered.
    pub billable_secs: u64,
    /// 1900 numbers only.
    pub rating: Option<RatingView>,
    /// RTP statistics of both directions.
    pub quality: Option<QualityView>,
    /// The call's recording, if it was recorded.
    pub recording_id: Option<String>,
    /// The queues the caller waited in, in order, with their events.
    pub queues: Vec<QueueVisitView>,
}

/// A caller's time in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueVisitView {
    pub queue: String,
    /// Unix milliseconds.
    pub joined_ms: u64,
    pub left_ms: u64,
    /// `answered`, `abandoned`, `timeout`, `overflow`, `full`, `empty` or `failed`.
    pub outcome: String,
    /// The agent who took the call.
    pub agent: Option<String>,
    pub events: Vec<QueueEventView>,
}

/// One queue event (in the manner of Asterisk's queue_log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueEventView {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// `ENTERQUEUE`, `RINGNOANSWER`, `CONNECT`, `CALLBACK`, `ABANDON`,
    /// `EXITWITHTIMEOUT`, `EXITOVERFLOW`, `FULL`, `JOINEMPTY`, `COMPLETEAGENT` or
    /// `COMPLETECALLER`.
    pub event: String,
    pub agent: Option<String>,
    /// Details, e.g. `position=3`, `wait_secs=12`, `failure=no_answer`.
    pub data: String,
}

/// One line of a tenant's queue event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueLogLine {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// RFC 3339.
    pub time: String,
    /// The caller's Call-ID.
    pub call_id: String,
    pub queue: String,
    pub agent: Option<String>,
    pub event: String,
    pub data: String,
}

/// One leg towards a callee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CdrLegView {
    /// e.g. `extension:1001`, `external:0912345678`.
    pub target: String,
    pub started_ms: u64,
    pub ringing_ms: Option<u64>,
    pub answered_ms: Option<u64>,
    pub ended_ms: u64,
    /// The leg's final status.
    pub status: u16,
}

/// Premium-rate rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RatingView {
    pub tariff_band: String,
    /// Billable seconds / 60, rounded up.
    pub billable_minutes: u64,
}

/// Media quality of both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityView {
    /// The audio the caller sent.
    pub caller: StreamQualityView,
    /// The audio the callee sent.
    pub callee: StreamQualityView,
}

/// One direction's RTP statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamQualityView {
    pub packets: u64,
    pub lost: u64,
    /// Lost / expected, 0 to 1.
    pub loss_ratio: f64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Estimated MOS, 1 to 4.5 (0 when no audio arrived).
    pub mos: f64,
}

/// A stored recording's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    pub tenant: String,
    /// The recorded call's Call-ID.
    pub call_id: String,
    /// Unix milliseconds of the start.
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    /// Size of the WAV file.
    pub bytes: u64,
    /// SHA-256 of the WAV file, lowercase hex.
    pub sha256: String,
    /// `wav/pcm16/8000/stereo`: caller left, callee right.
    pub format: String,
    /// False when the recording was cut short.
    pub complete: bool,
    /// True when a crash interrupted it and it was repaired at the next start.
    pub repaired: bool,
}
