//! Feature codes an agent dials from their phone: `*50` log in (available), `*51` log
//! out, `*52` pause (reason "phone"), `*53` back from pause. The node changes the agent's
//! presence in the control plane, answers with two beeps and hangs up; an extension that
//! is not an agent gets 404, a control plane that does not answer 503.

use std::time::Duration;

use tongdai_control_plane::model::{AgentState, Command, Id};

use super::{Call, Ending, HangupBy, Input};
use crate::media::relay::LegSide;
use crate::sip::Method;

/// The pause reason `*52` sets.
pub const PHONE_PAUSE: &str = "phone";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureCode {
    Login,
    Logout,
    Pause,
    Resume,
}

impl FeatureCode {
    /// The code dialled, if `dialled` is one.
    pub fn parse(dialled: &str) -> Option<FeatureCode> {
        Some(match dialled {
            "*50" => FeatureCode::Login,
            "*51" => FeatureCode::Logout,
            "*52" => FeatureCode::Pause,
            "*53" => FeatureCode::Resume,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeatureCode::Login => "*50",
            FeatureCode::Logout => "*51",
            FeatureCode::Pause => "*52",
            FeatureCode::Resume => "*53",
        }
    }

    fn state(self) -> AgentState {
        match self {
            FeatureCode::Login | FeatureCode::Resume => AgentState::Available,
            FeatureCode::Logout => AgentState::LoggedOut,
            FeatureCode::Pause => AgentState::Paused {
                reason: PHONE_PAUSE.into(),
            },
        }
    }
}

/// How long the node waits for the control plane.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);

impl Call {
    /// Runs a feature code for the calling extension: `Err` is the final response the
    /// caller gets; `Ok` once it was answered, confirmed and hung up.
    pub(super) async fn feature(&mut self, code: FeatureCode, ext: Id) -> Result<Ending, Ending> {
        let refuse = |status: u16, reason: String| Ending {
            status,
            by: HangupBy::System,
            reason,
        };
        let tenant = self.plan.as_ref().expect("routed").tenant.clone();
        let Some(mut agent) = self.b2b.cache.agent(&tenant, &ext) else {
            return Err(refuse(404, format!("Extension {ext} is not an agent")));
        };
        agent.state = code.state();
        let proposed = tokio::time::timeout(
            PROPOSE_DEADLINE,
            self.b2b.cluster.propose_one(Command::UpdateAgent(agent)),
        )
        .await;
        match proposed {
            Ok(Ok((Ok(_), _))) => {}
            Ok(Ok((Err(e), _))) => return Err(refuse(403, format!("Agent not changed: {e}"))),
            Ok(Err(_)) | Err(_) => {
                return Err(refuse(503, "Control plane not reachable".into()));
            }
        }
        tracing::info!(%tenant, agent = %ext, code = code.as_str(), "agent feature code");
        if let Err(r) = self.answer_caller().await {
            return Err(refuse(r.status, r.reason));
        }
        if let Some(ending) = self.beep().await {
            return Ok(ending);
        }
        self.bye_caller().await;
        Ok(Ending {
            status: 200,
            by: HangupBy::System,
            reason: "feature_code".into(),
        })
    }
}

impl Call {
    /// Plays the two confirmation beeps to the caller and waits until they are over.
    /// `Some` when the caller hung up meanwhile.
    pub(super) async fn beep(&mut self) -> Option<Ending> {
        let media = self.media.expect("anchored");
        let _ = self.b2b.media.stop_playback(media, LegSide::Caller);
        let beeps = super::super::moh::confirmation();
        let wait = beeps.duration() + Duration::from_millis(300);
        if let Err(e) = self
            .b2b
            .media
            .play(media, LegSide::Caller, beeps, false)
            .await
        {
            tracing::debug!("confirmation beeps not played: {e}");
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let input = tokio::select! {
                i = self.inbox.recv() => i,
                () = tokio::time::sleep_until(deadline) => return None,
            };
            match input {
                Some(Input::Ack { .. }) => self.a_acked = true,
                Some(Input::Request { key, request, .. }) if request.method == Method::Bye => {
                    self.respond(&key, &request, 200, "OK").await;
                    self.caller_gone = true;
                    return Some(Ending {
                        status: 200,
                        by: HangupBy::Caller,
                        reason: "bye".into(),
                    });
                }
                Some(Input::Request { key, request, .. }) => {
                    self.respond(&key, &request, 491, "Request Pending").await;
                }
                Some(_) => {}
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_codes_and_nothing_else() {
        assert_eq!(FeatureCode::parse("*50"), Some(FeatureCode::Login));
        assert_eq!(FeatureCode::parse("*51"), Some(FeatureCode::Logout));
        assert_eq!(FeatureCode::parse("*52"), Some(FeatureCode::Pause));
        assert_eq!(FeatureCode::parse("*53"), Some(FeatureCode::Resume));
        assert_eq!(FeatureCode::parse("*5"), None);
        assert_eq!(FeatureCode::parse("50"), None);
        assert_eq!(
            FeatureCode::Pause.state(),
            AgentState::Paused {
                reason: "phone".into()
            }
        );
    }
}
