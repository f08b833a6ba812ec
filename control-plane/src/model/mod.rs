//! The deterministic state machine of the control plane: tenants (with their call
//! settings), numbers, extensions, registrations, hunt groups, queues, agents, trunks,
//! tenants' API tokens and the nodes' load reports, changed only by applying log
//! entries.
//!
//! Determinism is the contract: the same entries applied in the same order give the
//! same state and the same snapshot bytes on every replica. So: no clock (time comes
//! from [`Entry::time_ms`]), no randomness, and ordered maps (`BTreeMap`) everywhere so
//! iteration order and serialization are identical.
//!
//! A refused command changes nothing, not even [`State::revision`]; a successful one
//! bumps the revision exactly when it changed the state (a sweep that found nothing
//! expired, or an unregister of an extension without bindings, does not).
//!
//! ```
//! use tongdai_control_plane::model::{
//!     CallSettings, Command, Entry, Id, Outcome, Quotas, State, Tenant,
//! };
//!
//! let mut state = State::new();
//! let acme = Tenant {
//!     id: Id::new("acme")?,
//!     name: "ACME".into(),
//!     quotas: Quotas {
//!         max_concurrent_calls: 50,
//!         max_call_attempts_per_sec: 5,
//!         max_registrations: 100,
//!     },
//!     calls: CallSettings::default(),
//! };
//! let entry = Entry { time_ms: 1_700_000_000_000, command: Command::CreateTenant(acme) };
//! assert_eq!(state.apply(&entry)?, Outcome::Done);
//! // The same entry again is refused, and the revision does not move.
//! assert!(state.apply(&entry).is_err());
//! assert_eq!(state.revision(), 1);
//! let copy = State::restore(&state.snapshot()?)?;
//! assert_eq!(copy, state);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod acd;
mod bindings;
mod call_control;
mod calls;
mod click_to_call;
mod command;
mod error;
mod extension;
mod hunt_group;
mod id;
mod integrity;
mod load;
mod node_drain;
mod number;
mod queue;
mod registration;
mod source;
mod tenant;
mod token;
mod trunk;
mod trunk_integrity;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use integrity::{unknown_extension, unknown_hunt_group, unknown_queue};

pub use acd::{
    Acd, AgentActivity, AgentCounts, AgentRuntime, LeaveReason, MAX_CALLER_LEN, MAX_PRIORITY,
    NO_ANSWER_PAUSE, Offer, OfferFailure, QueueArrival, QueueEntry, QueueExit, QueueKpis,
    QueueRuntime, QueueStats, Touched,
};
pub use call_control::{CALL_CONTROL_TTL_MS, CallAction, CallControl};
pub use calls::{CallSettings, Codec, RecordingPolicy};
pub use click_to_call::ClickToCall;
pub use command::{Command, Entry, Outcome};
pub use error::{BoundedField, CommandError, Ha1Algorithm, QuotaKind, Reference, TextField};
pub use extension::{Extension, ForwardCondition, ForwardToMobile};
pub use hunt_group::{HuntGroup, RingStrategy};
pub use id::Id;
pub use load::{
    LOAD_REPORT_TTL_MS, MAX_NODE_NAME_LEN, MAX_REPORTING_NODES, MAX_TENANTS_PER_REPORT, NodeLoad,
    TenantLoad,
};
pub use node_drain::{MAX_NODE_DRAINS, NODE_DRAIN_TTL_MS, NodeDrain};
pub use number::{Destination, Number, NumberKind, check_external_number, normalize_number};
pub use queue::{Agent, AgentState, AnnounceLanguage, Overflow, Queue, QueueMember, QueueStrategy};
pub use registration::{
    Binding, ContactUpdate, MAX_CONTACTS_PER_AOR, MAX_EXPIRES_SECS, RegisterRequest, Transport,
};
pub use source::{MIN_PREFIX_V4, MIN_PREFIX_V6, SourceError, TrustedSource, network_of};
pub use tenant::{Quotas, Tenant};
pub use token::ApiToken;
pub use trunk::{
    MAX_REGISTRATION_EXPIRES, MIN_REGISTRATION_EXPIRES, Trunk, TrunkRegistration, check_host_port,
};

/// Key of anything that lives inside a tenant: (tenant, id).
type Scoped = (Id, Id);

/// A snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("state could not be encoded: {0}")]
    Encode(postcard::Error),
    #[error("snapshot is not a valid encoded state: {0}")]
    Decode(postcard::Error),
}

/// The whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    revision: u64,
    tenants: BTreeMap<Id, Tenant>,
    numbers: BTreeMap<String, Number>,
    extensions: BTreeMap<Scoped, Extension>,
    hunt_groups: BTreeMap<Scoped, HuntGroup>,
    queues: BTreeMap<Scoped, Queue>,
    agents: BTreeMap<Scoped, Agent>,
    /// Only non-empty binding lists are stored.
    bindings: BTreeMap<Scoped, Vec<Binding>>,
    api_tokens: BTreeMap<Scoped, ApiToken>,
    trunks: BTreeMap<Scoped, Trunk>,
    /// Recent requests to live calls, by (tenant, call id); see [`CallControl`].
    call_controls: BTreeMap<(Id, String), CallControl>,
    call_control_seq: u64,
    /// Recent click-to-call requests, by sequence number (see [`ClickToCall`]).
    #[serde(default)]
    click_to_calls: BTreeMap<u64, ClickToCall>,
    #[serde(default)]
    click_to_call_seq: u64,
    /// Each node's last load report, by node name (see [`load`]).
    load: BTreeMap<String, NodeLoad>,
    /// Recent requests to drain a node, by node name (see [`NodeDrain`]).
    node_drains: BTreeMap<String, NodeDrain>,
    node_drain_seq: u64,
    /// Callers in queues and what agents are doing (see [`acd`]).
    acd: Acd,
    /// Stored bindings per tenant (expired ones included until swept), no zero
    /// entries: an upper bound on live ones that makes the quota check O(1) in the
    /// common case. Derived from `bindings`, so not in snapshots.
    #[serde(skip)]
    stored_bindings: BTreeMap<Id, usize>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Bumped by every command that changed something; watch streams resume from it.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn tenant(&self, id: &Id) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values()
    }

    pub fn number(&self, digits: &str) -> Option<&Number> {
        self.numbers.get(digits)
    }

    pub fn numbers(&self) -> impl Iterator<Item = &Number> {
        self.numbers.values()
    }

    pub fn extension(&self, tenant: &Id, ext: &Id) -> Option<&Extension> {
        self.extensions.get(&(tenant.clone(), ext.clone()))
    }

    /// The extensions of one tenant, in id order.
    pub fn extensions<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a Extension> {
        self.scoped(&self.extensions, tenant).map(|(_, v)| v)
    }

    /// The numbers of one tenant, in digit order.
    pub fn numbers_of<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a Number> {
        self.numbers.values().filter(move |n| &n.tenant == tenant)
    }

    pub fn hunt_groups<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a HuntGroup> {
        self.scoped(&self.hunt_groups, tenant).map(|(_, v)| v)
    }

    pub fn queues<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a Queue> {
        self.scoped(&self.queues, tenant).map(|(_, v)| v)
    }

    pub fn agents<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a Agent> {
        self.scoped(&self.agents, tenant).map(|(_, v)| v)
    }

    /// Live bindings of every extension of one tenant at `now_ms`, by extension.
    pub fn registrations<'a>(
        &'a self,
        tenant: &'a Id,
        now_ms: u64,
    ) -> impl Iterator<Item = (&'a Id, &'a Binding)> {
        self.scoped(&self.bindings, tenant)
            .flat_map(move |((_, ext), list)| {
                list.iter()
                    .filter(move |b| b.is_live(now_ms))
                    .map(move |b| (ext, b))
            })
    }

    pub fn hunt_group(&self, tenant: &Id, id: &Id) -> Option<&HuntGroup> {
        self.hunt_groups.get(&(tenant.clone(), id.clone()))
    }

    pub fn queue(&self, tenant: &Id, id: &Id) -> Option<&Queue> {
        self.queues.get(&(tenant.clone(), id.clone()))
    }

    pub fn agent(&self, tenant: &Id, extension: &Id) -> Option<&Agent> {
        self.agents.get(&(tenant.clone(), extension.clone()))
    }

    pub fn api_token(&self, tenant: &Id, id: &Id) -> Option<&ApiToken> {
        self.api_tokens.get(&(tenant.clone(), id.clone()))
    }

    /// The API tokens of one tenant, in id order.
    pub fn api_tokens<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a ApiToken> {
        self.scoped(&self.api_tokens, tenant).map(|(_, v)| v)
    }

    /// Every tenant's API tokens (what an API replica authenticates against).
    pub fn all_api_tokens(&self) -> impl Iterator<Item = &ApiToken> {
        self.api_tokens.values()
    }

    pub fn trunk(&self, tenant: &Id, id: &Id) -> Option<&Trunk> {
        self.trunks.get(&(tenant.clone(), id.clone()))
    }

    /// The trunks of one tenant, in id order.
    pub fn trunks<'a>(&'a self, tenant: &'a Id) -> impl Iterator<Item = &'a Trunk> {
        self.scoped(&self.trunks, tenant).map(|(_, v)| v)
    }

    /// Every tenant's trunks, by tenant then id.
    pub fn call_control(&self, tenant: &Id, call_id: &str) -> Option<&CallControl> {
        self.call_controls
            .get(&(tenant.clone(), call_id.to_owned()))
    }

    pub fn call_controls(&self) -> impl Iterator<Item = &CallControl> {
        self.call_controls.values()
    }

    pub fn all_trunks(&self) -> impl Iterator<Item = &Trunk> {
        self.trunks.values()
    }

    /// Live bindings of an extension at `now_ms`.
    pub fn bindings(&self, tenant: &Id, ext: &Id, now_ms: u64) -> Vec<&Binding> {
        self.bindings
            .get(&(tenant.clone(), ext.clone()))
            .map(|v| v.iter().filter(|b| b.is_live(now_ms)).collect())
            .unwrap_or_default()
    }

    /// Every stored binding of an extension, expired ones included until swept.
    pub fn stored_bindings(&self, tenant: &Id, ext: &Id) -> &[Binding] {
        self.bindings
            .get(&(tenant.clone(), ext.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether some stored binding has expired at `now_ms` (what the leader's sweeper
    /// checks before proposing `SweepExpired`).
    pub fn has_expired_bindings(&self, now_ms: u64) -> bool {
        self.bindings.values().flatten().any(|b| !b.is_live(now_ms))
    }

    /// Bindings stored for a tenant, including expired ones not yet swept.
    pub fn stored_binding_count(&self, tenant: &Id) -> usize {
        self.stored_bindings.get(tenant).copied().unwrap_or(0)
    }

    /// Encodes the whole state (postcard); identical bytes on every replica that
    /// applied the same entries.
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        postcard::to_allocvec(self).map_err(SnapshotError::Encode)
    }

    pub fn restore(bytes: &[u8]) -> Result<State, SnapshotError> {
        let mut state: State = postcard::from_bytes(bytes).map_err(SnapshotError::Decode)?;
        state.stored_bindings = state.count_stored_bindings();
        Ok(state)
    }

    /// Applies one log entry. On error nothing changed.
    pub fn apply(&mut self, entry: &Entry) -> Result<Outcome, CommandError> {
        let now = entry.time_ms;
        if self.is_unchanged_update(&entry.command) {
            return Ok(Outcome::Done);
        }
        let outcome = match &entry.command {
            Command::CreateTenant(t) => {
                t.validate()?;
                if self.tenants.contains_key(&t.id) {
                    return Err(CommandError::TenantExists(t.id.clone()));
                }
                self.check_call_settings(&t.id, &t.calls)?;
                self.tenants.insert(t.id.clone(), t.clone());
                Outcome::Done
            }
            Command::UpdateTenant(t) => {
                t.validate()?;
                self.require_tenant(&t.id)?;
                self.check_call_settings(&t.id, &t.calls)?;
                self.tenants.insert(t.id.clone(), t.clone());
                Outcome::Done
            }
            Command::DeleteTenant { tenant } => {
                self.delete_tenant(tenant)?;
                Outcome::Done
            }
            Command::CreateNumber(n) | Command::UpdateNumber(n) => {
                let create = matches!(entry.command, Command::CreateNumber(_));
                self.put_number(n, create)?;
                Outcome::Done
            }
            Command::DeleteNumber { tenant, digits } => {
                let owner = self
                    .numbers
                    .get(digits)
                    .map(|n| &n.tenant)
                    .ok_or_else(|| CommandError::UnknownNumber(digits.clone()))?;
                if owner != tenant {
                    return Err(CommandError::NumberOwnedByOtherTenant {
                        number: digits.clone(),
                        owner: owner.clone(),
                    });
                }
                self.check_number_unused(tenant, digits)?;
                self.numbers.remove(digits);
                Outcome::Done
            }
            Command::CreateExtension(e) | Command::UpdateExtension(e) => {
                e.validate()?;
                self.require_tenant(&e.tenant)?;
                let key = (e.tenant.clone(), e.ext.clone());
                let create = matches!(entry.command, Command::CreateExtension(_));
                match (create, self.extensions.contains_key(&key)) {
                    (true, true) => {
                        return Err(CommandError::ExtensionExists {
                            tenant: e.tenant.clone(),
                            extension: e.ext.clone(),
                        });
                    }
                    (false, false) => return Err(unknown_extension(&e.tenant, &e.ext)),
                    _ => {}
                }
                self.extensions.insert(key, e.clone());
                Outcome::Done
            }
            Command::DeleteExtension { tenant, ext } => {
                self.delete_extension(tenant, ext)?;
                Outcome::Done
            }
            Command::CreateHuntGroup(h) | Command::UpdateHuntGroup(h) => {
                let create = matches!(entry.command, Command::CreateHuntGroup(_));
                self.put_hunt_group(h, create)?;
                Outcome::Done
            }
            Command::DeleteHuntGroup { tenant, id } => {
                self.delete_hunt_group(tenant, id)?;
                Outcome::Done
            }
            Command::CreateQueue(q) | Command::UpdateQueue(q) => {
                q.validate()?;
                self.require_tenant(&q.tenant)?;
                self.check_queue_refs(q)?;
                let key = (q.tenant.clone(), q.id.clone());
                let create = matches!(entry.command, Command::CreateQueue(_));
                match (create, self.queues.contains_key(&key)) {
                    (true, true) => {
                        return Err(CommandError::QueueExists {
                            tenant: q.tenant.clone(),
                            id: q.id.clone(),
                        });
                    }
                    (false, false) => return Err(unknown_queue(&q.tenant, &q.id)),
                    _ => {}
                }
                self.queues.insert(key, q.clone());
                // Its members may be new: offer them waiting callers.
                self.dispatch_tenant(&q.tenant, now);
                Outcome::Done
            }
            Command::DeleteQueue { tenant, id } => {
                self.delete_queue(tenant, id)?;
                Outcome::Done
            }
            Command::CreateAgent(a) | Command::UpdateAgent(a) => {
                a.validate()?;
                self.require_extension(&a.tenant, &a.extension)?;
                let key = (a.tenant.clone(), a.extension.clone());
                let create = matches!(entry.command, Command::CreateAgent(_));
                match (create, self.agents.contains_key(&key)) {
                    (true, true) => {
                        return Err(CommandError::AgentExists {
                            tenant: a.tenant.clone(),
                            extension: a.extension.clone(),
                        });
                    }
                    (false, false) => {
                        return Err(CommandError::UnknownAgent {
                            tenant: a.tenant.clone(),
                            extension: a.extension.clone(),
                        });
                    }
                    _ => {}
                }
                let old = self.agents.insert(key, a.clone()).map(|o| o.state);
                self.agent_presence_changed(&a.tenant, &a.extension, old.as_ref(), now);
                Outcome::Done
            }
            Command::DeleteAgent { tenant, extension } => {
                self.delete_agent(tenant, extension)?;
                self.agent_presence_changed(tenant, extension, None, now);
                Outcome::Done
            }
            Command::QueueJoin(arrival) => self.queue_join(arrival, now)?,
            Command::QueueLeave {
                tenant,
                call_id,
                reason,
            } => {
                self.queue_leave(tenant, call_id, *reason, now)?;
                Outcome::Done
            }
            Command::QueueNodeGone { node } => {
                if !self.queue_node_gone(node, now)? {
                    // Nothing of that node was queued: nothing changed.
                    return Ok(Outcome::Done);
                }
                Outcome::Done
            }
            Command::OfferAnswered {
                tenant,
                call_id,
                agent,
                offer,
            } => {
                self.offer_answered(tenant, call_id, agent, *offer, now)?;
                Outcome::Done
            }
            Command::OfferFailed {
                tenant,
                call_id,
                agent,
                offer,
                failure,
            } => {
                self.offer_failed(tenant, call_id, agent, *offer, *failure, now)?;
                Outcome::Done
            }
            Command::AgentCallEnded {
                tenant,
                agent,
                hold_ms,
            } => {
                self.agent_call_ended(tenant, agent, *hold_ms, now)?;
                Outcome::Done
            }
            Command::AcdTick { now_ms } => {
                if !self.acd_tick(*now_ms, now)? {
                    // No timer was due: nothing changed.
                    return Ok(Outcome::Done);
                }
                Outcome::Done
            }
            Command::CreateTrunk(t) | Command::UpdateTrunk(t) => {
                let create = matches!(entry.command, Command::CreateTrunk(_));
                self.put_trunk(t, create)?;
                Outcome::Done
            }
            Command::DeleteTrunk { tenant, id } => {
                self.delete_trunk(tenant, id)?;
                Outcome::Done
            }
            Command::ControlCall {
                tenant,
                call_id,
                action,
            } => {
                call_control::check_call_id(call_id)?;
                self.require_tenant(tenant)?;
                let policy = self
                    .tenants
                    .get(tenant)
                    .map(|t| t.calls.recording)
                    .unwrap_or_default();
                if action.records() && policy == RecordingPolicy::Never {
                    return Err(CommandError::RecordingNever(tenant.clone()));
                }
                self.call_control_seq += 1;
                self.call_controls.insert(
                    (tenant.clone(), call_id.clone()),
                    CallControl {
                        tenant: tenant.clone(),
                        call_id: call_id.clone(),
                        action: *action,
                        seq: self.call_control_seq,
                        at_ms: now,
                    },
                );
                Outcome::Done
            }
            Command::CreateApiToken(t) => {
                self.create_api_token(t)?;
                Outcome::Done
            }
            Command::DeleteApiToken { tenant, id } => {
                self.require_tenant(tenant)?;
                self.api_tokens
                    .remove(&(tenant.clone(), id.clone()))
                    .ok_or_else(|| CommandError::UnknownApiToken {
                        tenant: tenant.clone(),
                        id: id.clone(),
                    })?;
                Outcome::Done
            }
            Command::Register(req) => {
                let (outcome, changed) = self.register(req, now)?;
                if !changed {
                    return Ok(outcome);
                }
                outcome
            }
            Command::Unregister {
                tenant,
                extension,
                call_id,
                cseq,
            } => {
                self.require_extension(tenant, extension)?;
                let key = (tenant.clone(), extension.clone());
                if let Some(current) = self.bindings.get(&key) {
                    registration::check_remove_all(current, call_id, *cseq, now)?;
                }
                if !self.bindings.contains_key(&key) {
                    return Ok(Outcome::Bindings(Vec::new()));
                }
                self.set_bindings(key, Vec::new());
                Outcome::Bindings(Vec::new())
            }
            Command::SweepExpired { now_ms } => {
                if *now_ms > now {
                    return Err(CommandError::SweepInFuture {
                        now_ms: *now_ms,
                        entry_time_ms: now,
                    });
                }
                let removed = self.sweep(*now_ms);
                if removed == 0 {
                    return Ok(Outcome::Swept { removed });
                }
                Outcome::Swept { removed }
            }
            Command::ReportLoad { node, tenants } => {
                let (changed, expired) = self.report_load(node, tenants, now)?;
                if !changed {
                    return Ok(Outcome::LoadReported { expired });
                }
                Outcome::LoadReported { expired }
            }
            Command::ClickToCall {
                tenant,
                agent,
                number,
            } => Outcome::ClickToCallQueued {
                seq: self.click_to_call(tenant, agent, number, now)?,
            },
            Command::ClaimClickToCall { seq, node } => {
                self.claim_click_to_call(*seq, node)?;
                Outcome::Done
            }
            Command::DrainNode { node } => {
                self.request_drain(node, now)?;
                Outcome::Done
            }
            Command::AcceptDrain { node, seq } => {
                if !self.accept_drain(node, *seq, now)? {
                    // Accepted already: nothing changed, so no new revision.
                    return Ok(Outcome::Done);
                }
                Outcome::Done
            }
        };
        // Call-control and drain requests are messages: dropped a while after they were made.
        if !self.call_controls.is_empty() {
            self.call_controls
                .retain(|_, c| c.at_ms.saturating_add(CALL_CONTROL_TTL_MS) > now);
        }
        self.expire_node_drains(now);
        self.expire_click_to_calls(now);
        self.revision += 1;
        Ok(outcome)
    }

    /// An update that would store exactly what is stored. It is accepted without
    /// validation (whatever is stored already satisfies every rule, since nothing it
    /// refers to can be deleted while it does) and without a revision bump, so watch
    /// streams see no spurious change.
    fn is_unchanged_update(&self, command: &Command) -> bool {
        let scoped = |t: &Id, i: &Id| (t.clone(), i.clone());
        match command {
            Command::UpdateTenant(t) => self.tenants.get(&t.id) == Some(t),
            Command::UpdateNumber(n) => self.numbers.get(&n.digits) == Some(n),
            Command::UpdateExtension(e) => {
                self.extensions.get(&scoped(&e.tenant, &e.ext)) == Some(e)
            }
            Command::UpdateHuntGroup(h) => {
                self.hunt_groups.get(&scoped(&h.tenant, &h.id)) == Some(h)
            }
            Command::UpdateQueue(q) => self.queues.get(&scoped(&q.tenant, &q.id)) == Some(q),
            Command::UpdateAgent(a) => self.agents.get(&scoped(&a.tenant, &a.extension)) == Some(a),
            Command::UpdateTrunk(t) => self.trunks.get(&scoped(&t.tenant, &t.id)) == Some(&**t),
            _ => false,
        }
    }

    fn put_number(&mut self, n: &Number, create: bool) -> Result<(), CommandError> {
        n.validate()?;
        self.require_tenant(&n.tenant)?;
        match (self.numbers.get(&n.digits), create) {
            (Some(old), _) if old.tenant != n.tenant => {
                return Err(CommandError::NumberOwnedByOtherTenant {
                    number: n.digits.clone(),
                    owner: old.tenant.clone(),
                });
            }
            (Some(_), true) => return Err(CommandError::NumberExists(n.digits.clone())),
            (None, false) => return Err(CommandError::UnknownNumber(n.digits.clone())),
            _ => {}
        }
        self.check_destination(&n.tenant, &n.destination)?;
        self.numbers.insert(n.digits.clone(), n.clone());
        Ok(())
    }

    fn create_api_token(&mut self, t: &ApiToken) -> Result<(), CommandError> {
        t.validate()?;
        self.require_tenant(&t.tenant)?;
        let key = (t.tenant.clone(), t.id.clone());
        if self.api_tokens.contains_key(&key) {
            return Err(CommandError::ApiTokenExists {
                tenant: t.tenant.clone(),
                id: t.id.clone(),
            });
        }
        // Two tokens with one hash would make authentication ambiguous (only a broken
        // generator or a hand-made command could get here).
        if self.api_tokens.values().any(|o| o.sha256 == t.sha256) {
            return Err(CommandError::ApiTokenHashInUse);
        }
        self.api_tokens.insert(key, t.clone());
        Ok(())
    }

    fn put_hunt_group(&mut self, h: &HuntGroup, create: bool) -> Result<(), CommandError> {
        h.validate()?;
        self.require_tenant(&h.tenant)?;
        let key = (h.tenant.clone(), h.id.clone());
        match (create, self.hunt_groups.contains_key(&key)) {
            (true, true) => {
                return Err(CommandError::HuntGroupExists {
                    tenant: h.tenant.clone(),
                    id: h.id.clone(),
                });
            }
            (false, false) => return Err(unknown_hunt_group(&h.tenant, &h.id)),
            _ => {}
        }
        for m in &h.members {
            self.require_extension(&h.tenant, m)?;
        }
        self.check_destination(&h.tenant, &h.no_answer)?;
        self.check_no_answer_chain(h)?;
        self.hunt_groups.insert(key, h.clone());
        Ok(())
    }

    /// The entries of a per-tenant map belonging to `tenant` (a range scan: keys sort
    /// by tenant first).
    fn scoped<'a, V>(
        &self,
        map: &'a BTreeMap<Scoped, V>,
        tenant: &'a Id,
    ) -> impl Iterator<Item = (&'a Scoped, &'a V)> {
        map.range((tenant.clone(), Id::min())..)
            .take_while(move |((t, _), _)| t == tenant)
    }
}
