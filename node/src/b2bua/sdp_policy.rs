//! A tenant's codec policy applied to an offer, sans-IO.
//!
//! The offer's audio keeps only the codecs the tenant allows (by default PCMU, PCMA and
//! telephone-event), in the offer's order; with `allow_other_codecs`, other codecs pass
//! through and it is up to the far end to pick one both sides have. An offer left
//! without an allowed audio codec is refused (488) with the allowed list in the reason.

use tongdai_control_plane::model::{CallSettings, Codec};

use crate::media::sdp::{RtpMap, SessionDescription};

/// Whether payload type `pt` (with its rtpmap, if any) is `codec`.
fn matches(codec: Codec, pt: u8, map: Option<RtpMap<'_>>) -> bool {
    match map {
        Some(m) => m.encoding.eq_ignore_ascii_case(codec.encoding_name()) && m.clock_rate == 8000,
        // Static payload types need no rtpmap (RFC 3551).
        None => match codec {
            Codec::Pcmu => pt == 0,
            Codec::Pcma => pt == 8,
            Codec::TelephoneEvent => false,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPolicy {
    pub allowed: Vec<Codec>,
    pub allow_others: bool,
}

impl Default for CodecPolicy {
    fn default() -> Self {
        CodecPolicy::of(&CallSettings::default())
    }
}

/// Why an offer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Malformed SDP: {0}")]
    Malformed(String),
    #[error("No acceptable audio codec (allowed: {0})")]
    NoCodec(String),
}

impl CodecPolicy {
    /// A tenant's policy.
    pub fn of(calls: &CallSettings) -> CodecPolicy {
        CodecPolicy {
            allowed: calls.codecs.clone(),
            allow_others: calls.allow_other_codecs,
        }
    }

    /// The offer with the audio streams' formats filtered by the policy.
    pub fn apply(&self, offer: &str) -> Result<String, PolicyError> {
        let mut sdp =
            SessionDescription::parse(offer).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        if self.allow_others {
            return Ok(sdp.to_string());
        }
        let mut audio_left = false;
        for media in sdp.media_mut() {
            if media.kind().as_str() != "audio" || !media.is_rtp() || media.is_disabled() {
                continue;
            }
            let allowed = &self.allowed;
            let left = media.retain_formats(|pt, map| allowed.iter().any(|c| matches(*c, pt, map)));
            // telephone-event alone carries no voice.
            let voice = media.payload_types().any(|pt| {
                let map = media.rtpmap(pt);
                [Codec::Pcmu, Codec::Pcma]
                    .iter()
                    .any(|c| allowed.contains(c) && matches(*c, pt, map))
            });
            if left > 0 && voice {
                audio_left = true;
            } else {
                media.disable();
            }
        }
        if !audio_left {
            let names: Vec<_> = self
                .allowed
                .iter()
                .filter(|c| **c != Codec::TelephoneEvent)
                .map(|c| c.encoding_name())
                .collect();
            return Err(PolicyError::NoCodec(names.join(", ")));
        }
        Ok(sdp.to_string())
    }
}

/// The offer with each audio stream cut to its first voice codec (and telephone-event),
/// for a caller answered before the far end is known (a queue): whichever agent's phone
/// answers later must use the codec the caller was given, since the relay does not
/// transcode.
pub fn first_codec_only(offer: &str) -> Result<String, PolicyError> {
    let mut sdp =
        SessionDescription::parse(offer).map_err(|e| PolicyError::Malformed(e.to_string()))?;
    let is_event = |map: Option<RtpMap<'_>>| {
        map.is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
    };
    for media in sdp.media_mut() {
        if media.kind().as_str() != "audio" || !media.is_rtp() || media.is_disabled() {
            continue;
        }
        let Some(first) = media
            .payload_types()
            .find(|pt| !is_event(media.rtpmap(*pt)))
        else {
            continue;
        };
        media.retain_formats(|pt, map| pt == first || is_event(map));
    }
    Ok(sdp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_answer_keeps_the_first_voice_codec_and_telephone_events() {
        let sdp = offer(
            "101 8 0",
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
        );
        let out = first_codec_only(&sdp).unwrap();
        assert!(out.contains("m=audio 4000 RTP/AVP 101 8\r\n"), "{out}");
        assert!(out.contains("a=fmtp:101 0-16"));
        assert!(matches!(
            first_codec_only("v=0\r\nbogus"),
            Err(PolicyError::Malformed(_))
        ));
    }

    fn offer(formats: &str, maps: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {formats}\r\n{maps}"
        )
    }

    #[test]
    fn keeps_only_allowed_codecs_in_offer_order() {
        let sdp = offer(
            "9 8 0 101",
            "a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
        );
        let out = CodecPolicy::default().apply(&sdp).unwrap();
        assert!(out.contains("m=audio 4000 RTP/AVP 8 0 101"), "{out}");
        assert!(!out.contains("G722"));
        assert!(out.contains("a=fmtp:101 0-16"));
    }

    #[test]
    fn a_tenant_allowing_only_pcma_refuses_a_pcmu_only_offer_naming_what_it_allows() {
        let policy = CodecPolicy {
            allowed: vec![Codec::Pcma, Codec::TelephoneEvent],
            allow_others: false,
        };
        let sdp = offer("0 101", "a=rtpmap:101 telephone-event/8000\r\n");
        assert_eq!(policy.apply(&sdp), Err(PolicyError::NoCodec("PCMA".into())));
    }

    #[test]
    fn other_codecs_pass_through_when_allowed() {
        let policy = CodecPolicy {
            allow_others: true,
            ..CodecPolicy::default()
        };
        let sdp = offer("9 0", "a=rtpmap:9 G722/8000\r\n");
        assert!(policy.apply(&sdp).unwrap().contains("RTP/AVP 9 0"));
    }

    #[test]
    fn malformed_sdp_is_an_error_not_a_panic() {
        assert!(matches!(
            CodecPolicy::default().apply("v=0\r\nbogus"),
            Err(PolicyError::Malformed(_))
        ));
    }
}
