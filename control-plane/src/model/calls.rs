//! A tenant's call settings: the codecs its calls may use, its recording policy, and
//! how its outbound calls leave (trunk and caller ID).
//!
//! What refers to other entities (the outbound trunk, the caller ID number) is checked
//! by the state ([`super::State`]), which also refuses to delete what these settings
//! use.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::CommandError;
use super::id::Id;

/// Codecs a tenant's calls may use. Audio is G.711; DTMF travels as RFC 4733
/// telephone-events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// G.711 μ-law (RTP payload type 0).
    Pcmu,
    /// G.711 A-law (RTP payload type 8).
    Pcma,
    /// RFC 4733 DTMF events.
    TelephoneEvent,
}

impl Codec {
    /// Every codec, in the default order of preference.
    pub const ALL: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::TelephoneEvent];

    /// The SDP encoding name (`a=rtpmap`), compared case-insensitively.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::TelephoneEvent => "telephone-event",
        }
    }
}

/// Whether a call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingPolicy {
    /// Every call, from answer to hang-up.
    Always,
    /// No call, not even on request.
    Never,
    /// Only when asked for through the API, for the part asked for.
    #[default]
    OnDemand,
}

/// Per-tenant call settings, on [`super::Tenant::calls`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSettings {
    /// Codecs allowed, in order of preference; never empty; no duplicates.
    pub codecs: Vec<Codec>,
    /// Pass other codecs through when both sides offer them (default false).
    pub allow_other_codecs: bool,
    pub recording: RecordingPolicy,
    /// The trunk outbound calls leave by (a trunk of this tenant).
    pub outbound_trunk: Option<Id>,
    /// Caller ID presented on outbound calls: a Geographic number owned by this tenant.
    /// A 1800/1900 number here is refused: they are inbound only.
    pub caller_id: Option<String>,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            codecs: Codec::ALL.to_vec(),
            allow_other_codecs: false,
            recording: RecordingPolicy::OnDemand,
            outbound_trunk: None,
            caller_id: None,
        }
    }
}

impl CallSettings {
    /// Checks what needs no other entity: the codec list, the caller ID's length.
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        if self.codecs.is_empty() {
            return Err(CommandError::NoCodecs);
        }
        let mut seen = BTreeSet::new();
        for c in &self.codecs {
            if !seen.insert(c) {
                return Err(CommandError::DuplicateCodec(*c));
            }
        }
        if let Some(number) = &self.caller_id
            && (number.is_empty()
                || number.len() > 15
                || !number.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(CommandError::InvalidCallerId(
                number.chars().take(32).collect(),
            ));
        }
        Ok(())
    }
}
