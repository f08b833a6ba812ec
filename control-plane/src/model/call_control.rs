//! Requests to act on a live call, made through the admin API and carried to every node
//! by the watch stream: the node holding the call acts, the others ignore it. Calls live
//! on nodes, not in the state machine; these entries are messages, kept for
//! [`CALL_CONTROL_TTL_MS`] after their entry time so a node that reconnects still sees
//! recent ones, then dropped (deterministically, by entry time).

use serde::{Deserialize, Serialize};

use super::error::{CommandError, TextField};
use super::id::{Id, check_text};
use super::registration::MAX_CALL_ID_LEN;

/// How long a call-control request stays in the state.
pub const CALL_CONTROL_TTL_MS: u64 = 60_000;

/// What to do to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallAction {
    /// Start recording (on-demand policy); also resumes a paused recording.
    StartRecording,
    StopRecording,
    /// Pause (e.g. while a card number is read out): silence is recorded instead.
    PauseRecording,
    ResumeRecording,
}

impl CallAction {
    /// Whether the action records audio (refused when the tenant's policy is `never`).
    pub fn records(self) -> bool {
        matches!(
            self,
            CallAction::StartRecording | CallAction::ResumeRecording
        )
    }
}

/// One request, as stored and sent to nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallControl {
    pub tenant: Id,
    /// The caller's (A-leg) Call-ID, as in the call's CDR.
    pub call_id: String,
    pub action: CallAction,
    /// Increases with every request, cluster-wide: nodes act on each one once.
    pub seq: u64,
    /// The entry time of the request.
    pub at_ms: u64,
}

pub(crate) fn check_call_id(call_id: &str) -> Result<(), CommandError> {
    check_text(TextField::CallId, call_id, MAX_CALL_ID_LEN)
}
