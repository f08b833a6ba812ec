//! Hunt groups: an ordered list of extensions rung all at once or one after another.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError};
use super::id::Id;
use super::number::Destination;

pub const MIN_RING_SECS: u32 = 5;
pub const MAX_RING_SECS: u32 = 300;
pub const MAX_MEMBERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RingStrategy {
    /// Every member at once; the first to answer wins.
    RingAll,
    /// Members in list order, `ring_secs` each.
    Sequential,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuntGroup {
    pub tenant: Id,
    pub id: Id,
    /// Extensions of the same tenant, in hunting order.
    pub members: Vec<Id>,
    pub strategy: RingStrategy,
    /// How long each member rings (the whole group, for `RingAll`).
    pub ring_secs: u32,
    pub no_answer: Destination,
}

impl HuntGroup {
    /// Checks what needs no other entity; member existence is checked by the state.
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        if self.members.is_empty() {
            return Err(CommandError::EmptyHuntGroup(self.id.clone()));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(CommandError::OutOfBounds {
                field: BoundedField::HuntGroupMembers,
                value: self.members.len() as u64,
                min: 1,
                max: MAX_MEMBERS as u64,
            });
        }
        let mut seen = BTreeSet::new();
        for m in &self.members {
            if !seen.insert(m) {
                return Err(CommandError::DuplicateMember {
                    group: self.id.clone(),
                    member: m.clone(),
                });
            }
        }
        if !(MIN_RING_SECS..=MAX_RING_SECS).contains(&self.ring_secs) {
            return Err(CommandError::OutOfBounds {
                field: BoundedField::RingSecs,
                value: u64::from(self.ring_secs),
                min: u64::from(MIN_RING_SECS),
                max: u64::from(MAX_RING_SECS),
            });
        }
        if self.no_answer == Destination::HuntGroup(self.id.clone()) {
            return Err(CommandError::HuntGroupLoop(self.id.clone()));
        }
        Ok(())
    }
}
