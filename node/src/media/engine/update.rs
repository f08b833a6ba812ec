//! In-dialog offers the B2BUA answers itself: hold and resume re-INVITEs and UPDATEs.
//! The relay keeps both legs; only the peer that sent the offer learns our answer, so a
//! phone putting the other party on hold never makes the far end renegotiate.

use super::{LegSide, LocalMedia, MediaEngine, MediaError, SessionId, anchor, audio_remote};
use crate::media::sdp::{Direction, RtcpPlacement, SessionDescription};

/// Our answer to an in-dialog offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    pub sdp: String,
    /// The peer asked to stop receiving: `sendonly`, `inactive` or `c=0.0.0.0`.
    pub on_hold: bool,
}

impl MediaEngine {
    /// Answers an offer from `from`'s peer inside an established call: notes where that
    /// peer now wants media and returns an answer pointing at our port on its leg, with
    /// its codecs and the mirrored direction.
    pub fn answer_locally(
        &self,
        id: SessionId,
        from: LegSide,
        offer: &str,
    ) -> Result<LocalAnswer, MediaError> {
        let mut sdp =
            SessionDescription::parse(offer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let (audio, remote, _) = audio_remote(&sdp)?;
        let local = {
            let sessions = self.inner.sessions.lock();
            let session = sessions.get(&id).ok_or(MediaError::UnknownSession(id))?;
            let leg = &session.legs[from.index()];
            let (Some((_, address)), Some(ports)) = (leg.bound, leg.ports.as_ref()) else {
                return Err(MediaError::NoPendingOffer);
            };
            LocalMedia {
                address,
                rtp_port: ports.rtp(),
                rtcp_port: ports.rtcp(false),
            }
        };
        let media = &sdp.media()[audio];
        let asked = sdp.effective_direction(media);
        let on_hold =
            remote.rtp.is_none() || matches!(asked, Direction::SendOnly | Direction::Inactive);
        let mux = media.rtcp_mux();
        self.set_remote(id, from, remote)?;
        let placement = if mux {
            RtcpPlacement::Mux
        } else {
            RtcpPlacement::Port(local.rtcp_port)
        };
        anchor(&mut sdp, audio, local, placement)?;
        let answer_direction = match asked {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        };
        if let Some(m) = sdp.media_mut().get_mut(audio) {
            m.set_direction(answer_direction);
        }
        let sdp = self.stamp(id, from, &mut sdp, local, None)?;
        Ok(LocalAnswer { sdp, on_hold })
    }
}
