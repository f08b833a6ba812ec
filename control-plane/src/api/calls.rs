//! The JSON of call settings: a tenant's `calls` (codecs, recording, outbound trunk,
//! caller ID) and a number's `recording` override.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{CallSettings, Codec, Id, RecordingPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodecBody {
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// RFC 4733 DTMF events.
    TelephoneEvent,
}

impl From<CodecBody> for Codec {
    fn from(c: CodecBody) -> Codec {
        match c {
            CodecBody::Pcmu => Codec::Pcmu,
            CodecBody::Pcma => Codec::Pcma,
            CodecBody::TelephoneEvent => Codec::TelephoneEvent,
        }
    }
}

impl From<Codec> for CodecBody {
    fn from(c: Codec) -> CodecBody {
        match c {
            Codec::Pcmu => CodecBody::Pcmu,
            Codec::Pcma => CodecBody::Pcma,
            Codec::TelephoneEvent => CodecBody::TelephoneEvent,
        }
    }
}

/// `always`, `never`, or `on_demand` (recorded when asked for through the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingBody {
    Always,
    Never,
    #[default]
    OnDemand,
}

impl From<RecordingBody> for RecordingPolicy {
    fn from(r: RecordingBody) -> RecordingPolicy {
        match r {
            RecordingBody::Always => RecordingPolicy::Always,
            RecordingBody::Never => RecordingPolicy::Never,
            RecordingBody::OnDemand => RecordingPolicy::OnDemand,
        }
    }
}

impl From<RecordingPolicy> for RecordingBody {
    fn from(r: RecordingPolicy) -> RecordingBody {
        match r {
            RecordingPolicy::Always => RecordingBody::Always,
            RecordingPolicy::Never => RecordingBody::Never,
            RecordingPolicy::OnDemand => RecordingBody::OnDemand,
        }
    }
}

/// A tenant's call settings. Every field may be left out and takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallSettingsBody {
    /// Codecs allowed, in order of preference: not empty, no repeats. Default
    /// `["pcmu", "pcma", "telephone_event"]`.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<CodecBody>,
    /// Pass other codecs through when both sides offer them. Default false.
    #[serde(default)]
    pub allow_other_codecs: bool,
    /// Default `on_demand`; a number's `recording` overrides it.
    #[serde(default)]
    pub recording: RecordingBody,
    /// The trunk outbound calls leave by (one of the tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "viettel")]
    pub outbound_trunk: Option<Id>,
    /// Caller ID of outbound calls: a geographic number of the tenant (1800 and 1900
    /// numbers are inbound only and refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "02873001234")]
    pub caller_id: Option<String>,
}

fn default_codecs() -> Vec<CodecBody> {
    Codec::ALL.into_iter().map(CodecBody::from).collect()
}

impl Default for CallSettingsBody {
    fn default() -> Self {
        CallSettingsBody::from(&CallSettings::default())
    }
}

impl From<&CallSettings> for CallSettingsBody {
    fn from(c: &CallSettings) -> CallSettingsBody {
        CallSettingsBody {
            codecs: c.codecs.iter().map(|c| (*c).into()).collect(),
            allow_other_codecs: c.allow_other_codecs,
            recording: c.recording.into(),
            outbound_trunk: c.outbound_trunk.clone(),
            caller_id: c.caller_id.clone(),
        }
    }
}

impl From<CallSettingsBody> for CallSettings {
    fn from(c: CallSettingsBody) -> CallSettings {
        CallSettings {
            codecs: c.codecs.into_iter().map(Into::into).collect(),
            allow_other_codecs: c.allow_other_codecs,
            recording: c.recording.into(),
            outbound_trunk: c.outbound_trunk,
            caller_id: c.caller_id,
        }
    }
}
