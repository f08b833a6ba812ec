//! ACD queues and agents, as data only: the distribution logic comes with the ACD issue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};

pub const MAX_QUEUE_NAME_LEN: usize = 128;
pub const MAX_WAIT_SECS: u32 = 24 * 3600;
pub const MAX_QUEUE_LEN: u32 = 10_000;
pub const MAX_SKILL_LEVEL: u8 = 100;
pub const MAX_SKILLS: usize = 64;
pub const MAX_PAUSE_REASON_LEN: usize = 64;

/// How the ACD picks the next agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueStrategy {
    LongestIdle,
    RoundRobin,
    FewestCalls,
    SkillsBased,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub tenant: Id,
    pub id: Id,
    pub name: String,
    pub strategy: QueueStrategy,
    /// Longest a caller waits before the queue gives up on them.
    pub max_wait_secs: u32,
    /// Callers waiting at most; the next one is refused.
    pub max_len: u32,
}

impl Queue {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        check_text(TextField::QueueName, &self.name, MAX_QUEUE_NAME_LEN)?;
        check_range(
            BoundedField::MaxWaitSecs,
            self.max_wait_secs.into(),
            1,
            MAX_WAIT_SECS.into(),
        )?;
        check_range(
            BoundedField::MaxQueueLen,
            self.max_len.into(),
            1,
            MAX_QUEUE_LEN.into(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    LoggedOut,
    Available,
    Paused { reason: String },
}

/// An agent, identified by the extension they work on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub tenant: Id,
    pub extension: Id,
    pub state: AgentState,
    /// Skill name -> level 0..=100.
    pub skills: BTreeMap<Id, u8>,
}

impl Agent {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        if let AgentState::Paused { reason } = &self.state {
            check_text(TextField::PauseReason, reason, MAX_PAUSE_REASON_LEN)?;
        }
        check_range(
            BoundedField::Skills,
            self.skills.len() as u64,
            0,
            MAX_SKILLS as u64,
        )?;
        for level in self.skills.values() {
            check_range(
                BoundedField::SkillLevel,
                (*level).into(),
                0,
                MAX_SKILL_LEVEL.into(),
            )?;
        }
        Ok(())
    }
}

pub(crate) fn check_range(
    field: BoundedField,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), CommandError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(CommandError::OutOfBounds {
            field,
            value,
            min,
            max,
        })
    }
}
