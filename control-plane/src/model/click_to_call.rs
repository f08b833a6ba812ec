//! Click-to-call: a request from the admin API to ring an agent's phone and, once they
//! answer, dial a customer. Like call-control requests these are messages carried to
//! every node by the watch stream and kept for [`CALL_CONTROL_TTL_MS`]; the first node
//! to claim one ([`super::Command::ClaimClickToCall`]) places the call, so exactly one
//! does.

use serde::{Deserialize, Serialize};

use super::State;
use super::call_control::CALL_CONTROL_TTL_MS;
use super::error::{CommandError, TextField};
use super::id::{Id, check_text};
use super::load::MAX_NODE_NAME_LEN;
use super::number::check_external_number;

/// One request, as stored and sent to nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickToCall {
    /// Increases with every request, cluster-wide.
    pub seq: u64,
    pub tenant: Id,
    /// The extension rung first.
    pub agent: Id,
    /// The customer's number, dialled once the agent answered.
    pub number: String,
    /// The entry time of the request.
    pub at_ms: u64,
    /// The node that took it.
    pub node: Option<String>,
}

impl State {
    /// Records a request; its sequence number identifies it.
    pub(crate) fn click_to_call(
        &mut self,
        tenant: &Id,
        agent: &Id,
        number: &str,
        now: u64,
    ) -> Result<u64, CommandError> {
        self.require_extension(tenant, agent)?;
        check_external_number(number)?;
        self.click_to_call_seq += 1;
        let seq = self.click_to_call_seq;
        self.click_to_calls.insert(
            seq,
            ClickToCall {
                seq,
                tenant: tenant.clone(),
                agent: agent.clone(),
                number: number.to_owned(),
                at_ms: now,
                node: None,
            },
        );
        Ok(seq)
    }

    /// `node` takes request `seq`: refused when another node took it first.
    pub(crate) fn claim_click_to_call(&mut self, seq: u64, node: &str) -> Result<(), CommandError> {
        check_text(TextField::NodeName, node, MAX_NODE_NAME_LEN)?;
        let c = self
            .click_to_calls
            .get_mut(&seq)
            .ok_or(CommandError::UnknownClickToCall(seq))?;
        match &c.node {
            Some(by) => Err(CommandError::ClickToCallTaken {
                seq,
                node: by.clone(),
            }),
            None => {
                c.node = Some(node.to_owned());
                Ok(())
            }
        }
    }

    pub fn click_to_call_request(&self, seq: u64) -> Option<&ClickToCall> {
        self.click_to_calls.get(&seq)
    }

    pub fn click_to_call_requests(&self) -> impl Iterator<Item = &ClickToCall> {
        self.click_to_calls.values()
    }

    /// Drops requests older than [`CALL_CONTROL_TTL_MS`] at `now` (entry time).
    pub(crate) fn expire_click_to_calls(&mut self, now: u64) {
        if !self.click_to_calls.is_empty() {
            self.click_to_calls
                .retain(|_, c| c.at_ms.saturating_add(CALL_CONTROL_TTL_MS) > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{extension, tenant};
    use crate::model::{Command, Entry, Outcome};

    #[test]
    fn one_node_takes_a_request_and_it_expires() {
        let mut s = State::default();
        let t = 1_000;
        let apply =
            |s: &mut State, command: Command, time_ms: u64| s.apply(&Entry { time_ms, command });
        apply(&mut s, Command::CreateTenant(tenant("acme", 10)), t).unwrap();
        apply(
            &mut s,
            Command::CreateExtension(extension("acme", "2001")),
            t,
        )
        .unwrap();
        let ask = |agent: &str, number: &str| Command::ClickToCall {
            tenant: Id::new("acme").unwrap(),
            agent: Id::new(agent).unwrap(),
            number: number.into(),
        };
        assert!(matches!(
            apply(&mut s, ask("2009", "0909123456"), t),
            Err(CommandError::UnknownExtension { .. })
        ));
        assert!(matches!(
            apply(&mut s, ask("2001", "not-a-number"), t),
            Err(CommandError::InvalidExternalNumber(_))
        ));
        let Ok(Outcome::ClickToCallQueued { seq }) = apply(&mut s, ask("2001", "0909123456"), t)
        else {
            panic!("queued");
        };
        let claim = |node: &str| Command::ClaimClickToCall {
            seq,
            node: node.into(),
        };
        apply(&mut s, claim("node-a"), t + 1).unwrap();
        assert_eq!(
            apply(&mut s, claim("node-b"), t + 2),
            Err(CommandError::ClickToCallTaken {
                seq,
                node: "node-a".into()
            })
        );
        assert_eq!(
            s.click_to_call_request(seq).and_then(|c| c.node.as_deref()),
            Some("node-a")
        );
        // Any later entry past the TTL drops it.
        apply(&mut s, ask("2001", "0909000000"), t + CALL_CONTROL_TTL_MS).unwrap();
        assert!(s.click_to_call_request(seq).is_none());
        assert!(matches!(
            apply(&mut s, claim("node-b"), t + CALL_CONTROL_TTL_MS),
            Err(CommandError::UnknownClickToCall(_))
        ));
    }
}
