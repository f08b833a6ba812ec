//! The call detail record: one per call, written when the call ends.
//!
//! Times are wall-clock milliseconds since the Unix epoch (UTC). Durations follow one
//! rule so every node computes them alike ([`Cdr::finish`]):
//! - `duration_secs` = end - setup, rounded **down** to whole seconds;
//! - `billable_secs` = end - answer, rounded **up** to whole seconds (a call answered for
//!   1.2 s bills 2 s), 0 when never answered;
//! - a 1900 call's `rating.billable_minutes` = billable seconds / 60 rounded up.
//!
//! The JSON form (snake_case, enums as lowercase words) is what the spool, the store, the
//! REST API and `tongdai ctl cdr list --json` show.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tongdai_control_plane::model::NumberKind;

use crate::media::relay::{CallStats, LegStats};

/// One call, as billed and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    /// Unique: `<node>-<unix_ms>-<counter>` ([`Cdr::new_id`]).
    pub id: String,
    pub tenant: String,
    /// The node that handled the call.
    pub node: String,
    /// The caller's (A-leg) Call-ID.
    pub call_id: String,
    pub direction: Direction,
    /// The calling number or extension as presented.
    pub caller: String,
    /// The number dialled.
    pub callee: String,
    /// The tenant number dialled (inbound calls).
    #[serde(default)]
    pub number: Option<String>,
    /// The kind of `number`: `toll_free_1800`, `premium_1900` or `geographic`.
    #[serde(default, with = "number_kind")]
    pub number_kind: Option<NumberKind>,
    /// Where the call was routed, e.g. `hunt_group:sales`, `extension:1001`,
    /// `external:0912345678`.
    pub destination: String,
    /// Every leg the B2BUA placed towards callees (one per member rung, per forward).
    #[serde(default)]
    pub legs: Vec<CdrLeg>,
    /// When the INVITE arrived.
    pub setup_ms: u64,
    /// First 180/183 sent to the caller.
    #[serde(default)]
    pub ringing_ms: Option<u64>,
    /// 200 OK sent to the caller.
    #[serde(default)]
    pub answer_ms: Option<u64>,
    pub end_ms: u64,
    pub disposition: Disposition,
    /// The final status sent to the caller (200 when answered).
    pub sip_status: u16,
    pub hangup_by: HangupBy,
    /// Short reason, e.g. `bye`, `cancel`, `rtp_timeout`, `session_timer`, `drain`.
    pub hangup_reason: String,
    /// end - setup, rounded down to whole seconds.
    pub duration_secs: u64,
    /// end - answer, rounded up to whole seconds; 0 when unanswered.
    pub billable_secs: u64,
    /// For 1900 numbers: the tariff band and the minutes it is applied to.
    #[serde(default)]
    pub rating: Option<Rating>,
    #[serde(default)]
    pub quality: Option<Quality>,
    #[serde(default)]
    pub recording_id: Option<String>,
    /// The queues the caller waited in, in order (an overflow can lead to another),
    /// with what happened there: the queue event log is made of these.
    #[serde(default)]
    pub queues: Vec<QueueVisit>,
}

/// A caller's time in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueVisit {
    pub queue: String,
    pub joined_ms: u64,
    /// Left the queue: answered by an agent, hung up, moved, refused.
    pub left_ms: u64,
    /// `answered`, `abandoned`, `timeout`, `overflow`, `full`, `empty`, `failed`.
    pub outcome: String,
    /// The agent who took the call.
    pub agent: Option<String>,
    /// What happened, in order.
    pub events: Vec<QueueEvent>,
}

/// One line of the queue event log (in the manner of Asterisk's queue_log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEvent {
    pub at_ms: u64,
    /// `ENTERQUEUE`, `RINGNOANSWER`, `CONNECT`, `CALLBACK`, `ABANDON`,
    /// `EXITWITHTIMEOUT`, `EXITOVERFLOW`, `FULL`, `JOINEMPTY`, `COMPLETEAGENT`,
    /// `COMPLETECALLER`.
    pub event: String,
    pub agent: Option<String>,
    /// The event's details, e.g. `position=3`, `wait_secs=12`, `failure=no_answer`.
    pub data: String,
}

/// Which way the call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From a trunk to a tenant number.
    Inbound,
    /// From an extension out through a trunk.
    Outbound,
    /// Extension to extension inside a tenant; never touches a trunk.
    Internal,
}

/// How the call ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    /// Rang out (408, 480, or our own ring timeout).
    NoAnswer,
    /// 486 Busy Here or 600 Busy Everywhere.
    Busy,
    /// The caller gave up before an answer (CANCEL, 487).
    Cancelled,
    /// Refused by policy or the callee (403, 404, quota 503, other 3xx-6xx).
    Rejected,
    /// Our or the network's failure (5xx, no route, timeouts of our own requests).
    Failed,
}

impl Disposition {
    /// The disposition a final status sent to the caller implies.
    pub fn for_status(status: u16) -> Disposition {
        match status {
            200..=299 => Disposition::Answered,
            486 | 600 => Disposition::Busy,
            408 | 480 => Disposition::NoAnswer,
            487 => Disposition::Cancelled,
            500..=599 => Disposition::Failed,
            _ => Disposition::Rejected,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Cancelled => "cancelled",
            Disposition::Rejected => "rejected",
            Disposition::Failed => "failed",
        }
    }
}

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupBy {
    Caller,
    Callee,
    /// Timeouts, drain, errors: neither party.
    System,
}

impl HangupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupBy::Caller => "caller",
            HangupBy::Callee => "callee",
            HangupBy::System => "system",
        }
    }
}

/// One leg towards a callee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdrLeg {
    /// Who was called, e.g. `extension:1001`, `external:0912345678`.
    pub target: String,
    pub started_ms: u64,
    #[serde(default)]
    pub ringing_ms: Option<u64>,
    #[serde(default)]
    pub answered_ms: Option<u64>,
    pub ended_ms: u64,
    /// The leg's final status (200 when answered, 487 when we cancelled it, ...).
    pub status: u16,
}

impl CdrLeg {
    /// A leg started at `started_ms`, not yet ended (`ended_ms` = start, status 0).
    pub fn new(target: impl Into<String>, started_ms: u64) -> CdrLeg {
        CdrLeg {
            target: target.into(),
            started_ms,
            ringing_ms: None,
            answered_ms: None,
            ended_ms: started_ms,
            status: 0,
        }
    }
}

/// Premium-rate (1900) rating: the number's tariff band times the minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub tariff_band: String,
    /// `billable_secs` / 60, rounded up.
    pub billable_minutes: u64,
}

/// Media quality of the two directions of an answered call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The audio the caller sent (received on the caller's leg).
    pub caller: StreamQuality,
    /// The audio the callee sent.
    pub callee: StreamQuality,
}

/// One direction's RTP statistics at the end of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamQuality {
    pub packets: u64,
    pub lost: u64,
    /// lost / expected, 0.0 to 1.0.
    pub loss_ratio: f64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Estimated MOS (1 to 4.5); 0 when no audio arrived.
    pub mos: f64,
}

impl From<&LegStats> for StreamQuality {
    fn from(leg: &LegStats) -> StreamQuality {
        StreamQuality {
            packets: leg.packets_received,
            lost: u64::try_from(leg.packets_lost).unwrap_or(0),
            loss_ratio: leg.loss_ratio,
            jitter_ms: leg.jitter_ms,
            mos: leg.mos.unwrap_or(0.0),
        }
    }
}

impl From<&CallStats> for Quality {
    fn from(stats: &CallStats) -> Quality {
        Quality {
            caller: StreamQuality::from(&stats.caller),
            callee: StreamQuality::from(&stats.callee),
        }
    }
}

impl Quality {
    /// The worse of the two directions' MOS (what a call's quality is judged by), `None`
    /// when neither direction carried audio.
    pub fn mos(&self) -> Option<f64> {
        [&self.caller, &self.callee]
            .iter()
            .filter(|s| s.packets > 0)
            .map(|s| s.mos)
            .reduce(f64::min)
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cdr {
    /// A record for a call that arrived at `setup_ms`, with a fresh id. Everything else
    /// starts empty (disposition `failed`, status 0, hung up by `system`) for the B2BUA
    /// to fill in as the call progresses; [`Cdr::finish`] closes it.
    pub fn new(
        tenant: impl Into<String>,
        node: impl Into<String>,
        call_id: impl Into<String>,
        direction: Direction,
        caller: impl Into<String>,
        callee: impl Into<String>,
        setup_ms: u64,
    ) -> Cdr {
        let node = node.into();
        Cdr {
            id: Cdr::new_id(&node),
            tenant: tenant.into(),
            node,
            call_id: call_id.into(),
            direction,
            caller: caller.into(),
            callee: callee.into(),
            number: None,
            number_kind: None,
            destination: String::new(),
            legs: Vec::new(),
            setup_ms,
            ringing_ms: None,
            answer_ms: None,
            end_ms: setup_ms,
            disposition: Disposition::Failed,
            sip_status: 0,
            hangup_by: HangupBy::System,
            hangup_reason: String::new(),
            duration_secs: 0,
            billable_secs: 0,
            rating: None,
            quality: None,
            recording_id: None,
            queues: Vec::new(),
        }
    }

    /// A unique id: `<node>-<unix_ms>-<counter>`, the counter starting at a random value
    /// in each process so a restart within the same millisecond cannot repeat an id.
    pub fn new_id(node: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let start = *START.get_or_init(|| u64::from(rand::random::<u32>()) << 16);
        let n = start.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed));
        format!("{node}-{}-{n:x}", now_ms())
    }

    /// Closes the record at `end_ms`: computes `duration_secs` and `billable_secs` (see
    /// the module docs) and refreshes the rating's minutes. An end before the setup (a
    /// clock step) counts as zero length; an answer after the end bills nothing.
    pub fn finish(&mut self, end_ms: u64) {
        self.end_ms = end_ms.max(self.setup_ms);
        self.duration_secs = (self.end_ms - self.setup_ms) / 1000;
        self.billable_secs = match self.answer_ms {
            Some(answer) => {
                let answer = answer.max(self.setup_ms);
                self.end_ms.saturating_sub(answer).div_ceil(1000)
            }
            None => 0,
        };
        if let Some(rating) = &mut self.rating {
            rating.billable_minutes = self.billable_secs.div_ceil(60);
        }
    }

    /// Rates the call: a 1900 number with a tariff band gets a [`Rating`] of its
    /// billable minutes (call after [`Cdr::finish`], or call `finish` again later); any
    /// other call gets none.
    pub fn rate(&mut self, tariff_band: Option<&str>) {
        self.rating = match (self.number_kind, tariff_band) {
            (Some(NumberKind::Premium1900), Some(band)) => Some(Rating {
                tariff_band: band.to_owned(),
                billable_minutes: self.billable_secs.div_ceil(60),
            }),
            _ => None,
        };
    }

    pub fn is_answered(&self) -> bool {
        self.disposition == Disposition::Answered
    }
}

/// `NumberKind` in the API's spelling (`toll_free_1800`, `premium_1900`, `geographic`);
/// the control plane's own serde form is its log encoding, not for people.
mod number_kind {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use tongdai_control_plane::model::NumberKind;

    pub fn name(kind: NumberKind) -> &'static str {
        match kind {
            NumberKind::TollFree1800 => "toll_free_1800",
            NumberKind::Premium1900 => "premium_1900",
            NumberKind::Geographic => "geographic",
        }
    }

    pub fn serialize<S: Serializer>(kind: &Option<NumberKind>, s: S) -> Result<S::Ok, S::Error> {
        match kind {
            Some(k) => s.serialize_some(name(*k)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NumberKind>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        match text.as_str() {
            "toll_free_1800" => Ok(Some(NumberKind::TollFree1800)),
            "premium_1900" => Ok(Some(NumberKind::Premium1900)),
            "geographic" => Ok(Some(NumberKind::Geographic)),
            other => Err(D::Error::custom(format!(
                "unknown number kind {other:?} (expected toll_free_1800, premium_1900 or geographic)"
            ))),
        }
    }
}

pub use number_kind::name as number_kind_name;
