//! ACD queues and agents as configuration. The distribution itself (which caller waits,
//! which agent is offered whom) is the state machine's, in [`super::acd`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};
use super::number::Destination;

pub const MAX_QUEUE_NAME_LEN: usize = 128;
pub const MAX_WAIT_SECS: u32 = 24 * 3600;
pub const MAX_QUEUE_LEN: u32 = 10_000;
pub const MAX_SKILL_LEVEL: u8 = 100;
pub const MAX_SKILLS: usize = 64;
pub const MAX_PAUSE_REASON_LEN: usize = 64;
pub const MAX_QUEUE_MEMBERS: usize = 1_000;
pub const MAX_PENALTY: u8 = 9;
/// Bounds of a queue's `announce_every_secs` (when not 0).
pub const MIN_ANNOUNCE_EVERY_SECS: u32 = 15;
pub const MAX_ANNOUNCE_EVERY_SECS: u32 = 3600;
/// Entries of one queue's VIP list at most.
pub const MAX_VIP_CALLERS: usize = 1_000;
pub const MIN_OFFER_RING_SECS: u32 = 5;
pub const MAX_OFFER_RING_SECS: u32 = 300;
pub const MAX_WRAP_UP_SECS: u32 = 3600;
pub const MAX_SERVICE_LEVEL_SECS: u32 = 3600;

/// How the ACD picks the agent for the caller at the head of the queue. Ties are broken
/// by the longest idle agent, then by extension, so every replica picks the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueStrategy {
    /// Every eligible agent rings at once; the first to answer takes the call.
    RingAll,
    /// The agent idle the longest.
    LongestIdle,
    /// The agent who answered the fewest queue calls since logging in.
    LeastCalls,
    /// The next member after the last one offered, in member order (with memory).
    RoundRobin,
    /// The first eligible member in member order (linear).
    TopDown,
    /// A member picked by a deterministic pseudo-random draw (the same on every replica).
    Random,
    /// The best level in the queue's skill first, then the longest idle.
    SkillsBased,
}

/// An agent serving a queue, with a penalty (tier): penalty `p` is offered calls that
/// have waited at least `p * tier_widen_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMember {
    pub extension: Id,
    /// 0..=9; 0 = first tier.
    pub penalty: u8,
}

/// Where callers go instead of waiting on: when the queue is this long at their arrival,
/// or once they waited this long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    pub destination: Destination,
    /// Callers arriving while this many wait go to `destination` (0 = never).
    pub at_len: u32,
    /// Callers waiting this long go to `destination` (0 = never).
    pub after_wait_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub tenant: Id,
    pub id: Id,
    pub name: String,
    pub strategy: QueueStrategy,
    /// Longest a caller waits before the queue gives up on them.
    pub max_wait_secs: u32,
    /// Callers waiting at most; the next one is refused (or overflows).
    pub max_len: u32,
    /// Agents of the tenant serving the queue, in member order.
    pub members: Vec<QueueMember>,
    /// How long one offer rings before the next agent is tried.
    pub ring_secs: u32,
    /// After-call work after a queue call, before the agent is offered the next one.
    pub wrap_up_secs: u32,
    /// Whether callers join while no member is logged in (else they are refused or
    /// overflow at once).
    pub join_empty: bool,
    /// Each this many seconds of waiting opens the next penalty tier; 0 = every tier
    /// from the start.
    pub tier_widen_secs: u32,
    pub overflow: Option<Overflow>,
    /// An agent who lets an offer ring out is paused (reason "no answer").
    pub auto_pause_no_answer: bool,
    /// T of the service level: answered within T seconds / answered.
    pub service_level_secs: u32,
    /// The skill `SkillsBased` ranks agents by.
    pub skill: Option<Id>,
    /// Callers served first: caller number (national format, as the node normalizes
    /// it) -> priority 1..=9 (higher first; everyone else queues with 0).
    #[serde(default)]
    pub vip_callers: std::collections::BTreeMap<String, u8>,
    /// The key (0-9, * or #) a waiting caller presses to be called back instead of
    /// holding on: they hang up and keep their place. `None`: no callbacks.
    #[serde(default)]
    pub callback_digit: Option<char>,
    /// Waiting callers hear their position, expected wait and the callback key at entry.
    #[serde(default = "yes")]
    pub announce: bool,
    /// ... and again every this many seconds (0: at entry only; else 15-3600).
    #[serde(default)]
    pub announce_every_secs: u32,
    /// The voice of the announcements.
    #[serde(default)]
    pub announce_language: AnnounceLanguage,
}

/// The built-in voices of queue announcements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnounceLanguage {
    #[default]
    En,
    Vi,
}

fn yes() -> bool {
    true
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
        )?;
        check_range(
            BoundedField::QueueMembers,
            self.members.len() as u64,
            0,
            MAX_QUEUE_MEMBERS as u64,
        )?;
        let mut seen = BTreeSet::new();
        for m in &self.members {
            if !seen.insert(&m.extension) {
                return Err(CommandError::DuplicateQueueMember {
                    queue: self.id.clone(),
                    member: m.extension.clone(),
                });
            }
            check_range(
                BoundedField::Penalty,
                m.penalty.into(),
                0,
                MAX_PENALTY.into(),
            )?;
        }
        if self.announce_every_secs != 0 {
            check_range(
                BoundedField::AnnounceEverySecs,
                self.announce_every_secs.into(),
                MIN_ANNOUNCE_EVERY_SECS.into(),
                MAX_ANNOUNCE_EVERY_SECS.into(),
            )?;
        }
        if let Some(d) = self.callback_digit
            && !(d.is_ascii_digit() || d == '*' || d == '#')
        {
            return Err(CommandError::InvalidCallbackDigit(d));
        }
        check_range(
            BoundedField::VipCallers,
            self.vip_callers.len() as u64,
            0,
            MAX_VIP_CALLERS as u64,
        )?;
        for (number, priority) in &self.vip_callers {
            if crate::model::check_external_number(number).is_err() {
                return Err(CommandError::InvalidVipCaller(
                    number.chars().take(32).collect(),
                ));
            }
            check_range(
                BoundedField::VipCallers,
                (*priority).into(),
                1,
                crate::model::MAX_PRIORITY.into(),
            )?;
        }
        check_range(
            BoundedField::OfferRingSecs,
            self.ring_secs.into(),
            MIN_OFFER_RING_SECS.into(),
            MAX_OFFER_RING_SECS.into(),
        )?;
        check_range(
            BoundedField::WrapUpSecs,
            self.wrap_up_secs.into(),
            0,
            MAX_WRAP_UP_SECS.into(),
        )?;
        check_range(
            BoundedField::TierWidenSecs,
            self.tier_widen_secs.into(),
            0,
            MAX_WAIT_SECS.into(),
        )?;
        check_range(
            BoundedField::ServiceLevelSecs,
            self.service_level_secs.into(),
            1,
            MAX_SERVICE_LEVEL_SECS.into(),
        )?;
        if let Some(o) = &self.overflow {
            if o.destination == Destination::Queue(self.id.clone()) {
                return Err(CommandError::QueueOverflowLoop(self.id.clone()));
            }
            check_range(
                BoundedField::OverflowAtLen,
                o.at_len.into(),
                0,
                MAX_QUEUE_LEN.into(),
            )?;
            check_range(
                BoundedField::OverflowAfterWaitSecs,
                o.after_wait_secs.into(),
                0,
                MAX_WAIT_SECS.into(),
            )?;
        }
        Ok(())
    }

    /// The member entry of `extension`, if it serves the queue.
    pub fn member(&self, extension: &Id) -> Option<&QueueMember> {
        self.members.iter().find(|m| &m.extension == extension)
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
