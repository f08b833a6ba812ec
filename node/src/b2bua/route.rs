//! The number plan, sans-IO: who is calling, what they dialled, and which phones or
//! trunks ring, in what order, with what happens when nobody answers.
//!
//! Rules (issue 6, DESIGN "Who uses it"):
//! - A call from a trunk to a tenant number goes to the number's destination.
//! - From an extension: another extension, hunt group or number of the same tenant is an
//!   internal call and never touches a trunk. Anything else that looks like a phone
//!   number leaves through the tenant's outbound trunk with the tenant's geographic DID as
//!   caller ID. Another tenant's numbers are external numbers like any other, so a tenant
//!   can never reach another tenant's extensions directly.
//! - 1800 and 1900 numbers are inbound only: an outbound call presenting one as caller
//!   ID is refused with 403.
//! - Destinations are expanded into [`Step`]s lazily, when reached, so a phone that
//!   registers while a sequential hunt is running is rung when its turn comes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tongdai_control_plane::model::{
    Binding, Destination, Extension, ForwardCondition, HuntGroup, Id, Number, NumberKind,
    RingStrategy, Tenant, Transport, check_external_number,
};

/// How long an extension rings when it is called directly.
pub const EXTENSION_RING: Duration = Duration::from_secs(30);
/// How long an outbound call through a trunk may ring.
pub const TRUNK_RING: Duration = Duration::from_secs(90);
/// Destinations followed from one call (no-answer chains, forwards) before giving up:
/// a misconfiguration (hunt group A -> B -> A) must not loop forever.
pub const MAX_EXPANSIONS: usize = 16;

/// What the number plan reads: the node's cache of the control plane.
pub trait Directory {
    fn tenant(&self, id: &Id) -> Option<Tenant>;
    fn number(&self, digits: &str) -> Option<Number>;
    fn extension(&self, tenant: &Id, ext: &Id) -> Option<Extension>;
    fn hunt_group(&self, tenant: &Id, id: &Id) -> Option<HuntGroup>;
    /// Live bindings, best first.
    fn bindings(&self, tenant: &Id, ext: &Id, now_ms: u64) -> Vec<Binding>;
    /// The trunks an outbound call of `tenant` tries, in order (its outbound trunk, then
    /// the failover chain); empty when it has none.
    fn outbound_trunks(&self, tenant: &Id) -> Vec<TrunkRoute>;
    /// The tenant's caller ID for outbound calls (a geographic DID), if set.
    fn caller_id(&self, tenant: &Id) -> Option<String>;
    /// Whether the extension is on a call already (skipped by hunt groups).
    fn is_busy(&self, tenant: &Id, ext: &Id) -> bool;
    /// Whether the tenant has this queue.
    fn has_queue(&self, tenant: &Id, id: &Id) -> bool;
}

/// A trunk as the router needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRoute {
    pub id: Id,
    /// `host:port`.
    pub address: String,
    pub transport: Transport,
}

/// Who is calling, as established by the SIP edge (trusted source or digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Trunk { tenant: Id, trunk: Id },
    Extension { tenant: Id, ext: Id },
}

impl Caller {
    pub fn tenant(&self) -> &Id {
        match self {
            Caller::Trunk { tenant, .. } | Caller::Extension { tenant, .. } => tenant,
        }
    }
}

pub use crate::cdr::Direction;

/// Refused: the status and reason phrase the caller gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: String,
}

impl Reject {
    fn new(status: u16, reason: impl Into<String>) -> Reject {
        Reject {
            status,
            reason: reason.into(),
        }
    }
}

/// Where the call is going, decided once at setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tenant: Id,
    pub direction: Direction,
    /// The tenant number dialled (inbound), for rating and the recording policy.
    pub number: Option<Number>,
    /// The dialled user part, normalized.
    pub dialled: String,
    /// What the callee's phone shows as the caller: user part of the From we send.
    pub caller_id: String,
    pub destination: Destination,
}

/// One round of ringing: every target at once, for `ring`; or, when `queue` is set, the
/// caller waiting in that queue (the ACD picks whom to ring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub queue: Option<Id>,
    pub targets: Vec<Target>,
    pub ring: Duration,
    /// Followed when every target answered busy (486/600).
    pub after_busy: Option<Destination>,
    /// Followed when nobody answered in time or every target failed otherwise.
    pub after_no_answer: Option<Destination>,
    /// Tried at once when every target failed with 5xx, 408 or no response (trunk
    /// failover).
    pub on_failure: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// For the CDR: `extension:1001`, `trunk:main`.
    pub label: String,
    /// The extension rung, so it counts as busy while the call lasts.
    pub extension: Option<Id>,
    /// The trunk the call leaves by, so it counts against the trunk's limit.
    pub trunk: Option<Id>,
    /// Request-URI of the INVITE.
    pub uri: String,
    /// Where the INVITE is sent: a phone's registration source (NAT), or a trunk address.
    pub send_to: SendTo,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTo {
    Addr(SocketAddr),
    /// `host:port` still to resolve.
    HostPort(String),
}

/// The dialled user part in national format: `+84 28 7300 1234` -> `02873001234`;
/// separators (`-`, `.`, spaces) dropped.
pub fn normalize(user: &str) -> String {
    tongdai_control_plane::model::normalize_number(user)
}

/// Decides where a call goes. `dialled` is the Request-URI user, `presented` the caller
/// ID the caller asked for (From user, or P-Asserted-Identity).
pub fn plan(
    dir: &impl Directory,
    caller: &Caller,
    dialled: &str,
    presented: &str,
) -> Result<Plan, Reject> {
    let dialled = normalize(dialled);
    let tenant = caller.tenant().clone();
    if dir.tenant(&tenant).is_none() {
        return Err(Reject::new(403, "Unknown tenant"));
    }
    match caller {
        Caller::Trunk { .. } => {
            let number = dir
                .number(&dialled)
                .filter(|n| n.tenant == tenant)
                .ok_or_else(|| Reject::new(404, "No such number on this trunk"))?;
            Ok(Plan {
                tenant,
                direction: Direction::Inbound,
                destination: number.destination.clone(),
                number: Some(number),
                dialled,
                caller_id: normalize(presented),
            })
        }
        Caller::Extension { ext, .. } => {
            let internal = |destination| Plan {
                tenant: tenant.clone(),
                direction: Direction::Internal,
                number: None,
                dialled: dialled.clone(),
                caller_id: ext.to_string(),
                destination,
            };
            if let Ok(id) = Id::new(&dialled) {
                if dir.extension(&tenant, &id).is_some() {
                    return Ok(internal(Destination::Extension(id)));
                }
                if dir.hunt_group(&tenant, &id).is_some() {
                    return Ok(internal(Destination::HuntGroup(id)));
                }
            }
            if let Some(number) = dir.number(&dialled).filter(|n| n.tenant == tenant) {
                let mut p = internal(number.destination.clone());
                p.number = Some(number);
                return Ok(p);
            }
            if check_external_number(&dialled).is_err() {
                return Err(Reject::new(
                    404,
                    "Not found: no extension, hunt group or number of this tenant",
                ));
            }
            let caller_id = outbound_caller_id(dir, &tenant, &normalize(presented))?;
            Ok(Plan {
                tenant,
                direction: Direction::Outbound,
                number: None,
                destination: Destination::External(dialled.clone()),
                dialled,
                caller_id,
            })
        }
    }
}

/// The caller ID an outbound call presents: the one the phone asked for when it is a
/// geographic number of the tenant, else the tenant's configured DID. Toll-free and
/// premium numbers are refused outright, whoever owns them.
fn outbound_caller_id(dir: &impl Directory, tenant: &Id, asked: &str) -> Result<String, Reject> {
    let inbound_only = |digits: &str| {
        NumberKind::TollFree1800.accepts(digits) || NumberKind::Premium1900.accepts(digits)
    };
    if inbound_only(asked) {
        return Err(Reject::new(
            403,
            "1800/1900 numbers are inbound only and cannot be the caller ID of an outbound call",
        ));
    }
    if let Some(n) = dir.number(asked)
        && n.tenant == *tenant
        && n.kind == NumberKind::Geographic
    {
        return Ok(n.digits);
    }
    match dir.caller_id(tenant) {
        Some(did) if inbound_only(&did) => Err(Reject::new(
            403,
            "1800/1900 numbers are inbound only and cannot be the caller ID of an outbound call",
        )),
        Some(did) => Ok(did),
        None => Err(Reject::new(
            403,
            "Outbound calls need a caller ID: set the tenant's calls.caller_id to a geographic number",
        )),
    }
}

/// Expands a destination into the steps that ring it, when it is reached.
pub fn expand(
    dir: &impl Directory,
    tenant: &Id,
    destination: &Destination,
    now_ms: u64,
) -> Result<VecDeque<Step>, Reject> {
    match destination {
        Destination::Extension(ext) => extension_steps(dir, tenant, ext, now_ms),
        Destination::HuntGroup(id) => {
            let group = dir
                .hunt_group(tenant, id)
                .ok_or_else(|| Reject::new(404, format!("Hunt group {id} does not exist")))?;
            hunt_steps(dir, tenant, &group, now_ms)
        }
        Destination::External(number) => trunk_steps(dir, tenant, number),
        Destination::Queue(id) => {
            if !dir.has_queue(tenant, id) {
                return Err(Reject::new(404, format!("Queue {id} does not exist")));
            }
            Ok(VecDeque::from([Step {
                queue: Some(id.clone()),
                targets: Vec::new(),
                ring: Duration::ZERO,
                after_busy: None,
                after_no_answer: None,
                on_failure: Vec::new(),
            }]))
        }
        Destination::Ivr(_) => Err(Reject::new(
            480,
            "IVR menus are not served yet (they come with the contact-center release)",
        )),
    }
}

fn extension_steps(
    dir: &impl Directory,
    tenant: &Id,
    ext: &Id,
    now_ms: u64,
) -> Result<VecDeque<Step>, Reject> {
    let extension = dir
        .extension(tenant, ext)
        .ok_or_else(|| Reject::new(404, format!("Extension {ext} does not exist")))?;
    let forward = |when: ForwardCondition| {
        extension
            .forward_to_mobile
            .as_ref()
            .filter(|f| f.when.contains(&when))
            .map(|f| Destination::External(f.number.clone()))
    };
    if let Some(mobile) = forward(ForwardCondition::Always) {
        return expand(dir, tenant, &mobile, now_ms);
    }
    if dir.is_busy(tenant, ext) {
        return match forward(ForwardCondition::Busy) {
            Some(mobile) => expand(dir, tenant, &mobile, now_ms),
            None => Err(Reject::new(486, "Busy Here")),
        };
    }
    let targets = phone_targets(dir, tenant, ext, now_ms);
    if targets.is_empty() {
        return match forward(ForwardCondition::Unregistered) {
            Some(mobile) => expand(dir, tenant, &mobile, now_ms),
            None => Err(Reject::new(
                480,
                format!("Extension {ext} is not registered"),
            )),
        };
    }
    Ok(VecDeque::from([Step {
        queue: None,
        targets,
        ring: EXTENSION_RING,
        after_busy: forward(ForwardCondition::Busy),
        after_no_answer: forward(ForwardCondition::NoAnswer),
        on_failure: Vec::new(),
    }]))
}

fn hunt_steps(
    dir: &impl Directory,
    tenant: &Id,
    group: &HuntGroup,
    now_ms: u64,
) -> Result<VecDeque<Step>, Reject> {
    let ring = Duration::from_secs(u64::from(group.ring_secs));
    // Members not registered or already on a call are skipped.
    let available: Vec<Vec<Target>> = group
        .members
        .iter()
        .filter(|m| !dir.is_busy(tenant, m))
        .map(|m| phone_targets(dir, tenant, m, now_ms))
        .filter(|t| !t.is_empty())
        .collect();
    if available.is_empty() {
        return expand(dir, tenant, &group.no_answer, now_ms);
    }
    let step = |targets| Step {
        queue: None,
        targets,
        ring,
        after_busy: None,
        after_no_answer: None,
        on_failure: Vec::new(),
    };
    let mut steps: VecDeque<Step> = match group.strategy {
        RingStrategy::RingAll => VecDeque::from([step(available.concat())]),
        RingStrategy::Sequential => available.into_iter().map(step).collect(),
    };
    if let Some(last) = steps.back_mut() {
        last.after_busy = Some(group.no_answer.clone());
        last.after_no_answer = Some(group.no_answer.clone());
    }
    Ok(steps)
}

/// The phones of an extension: one target per live binding.
pub fn phone_targets(dir: &impl Directory, tenant: &Id, ext: &Id, now_ms: u64) -> Vec<Target> {
    dir.bindings(tenant, ext, now_ms)
        .into_iter()
        .map(|b| Target {
            label: format!("extension:{ext}"),
            extension: Some(ext.clone()),
            trunk: None,
            uri: b.contact,
            send_to: SendTo::Addr(b.source),
            transport: b.transport,
        })
        .collect()
}

fn trunk_steps(dir: &impl Directory, tenant: &Id, number: &str) -> Result<VecDeque<Step>, Reject> {
    let trunks = dir.outbound_trunks(tenant);
    // Last trunk first, so each step carries the rest of the chain as its failover.
    let mut chain: Option<Step> = None;
    for trunk in trunks.iter().rev() {
        let step = Step {
            queue: None,
            targets: vec![Target {
                label: format!("trunk:{}", trunk.id),
                extension: None,
                trunk: Some(trunk.id.clone()),
                uri: format!("sip:{number}@{}", trunk.address),
                send_to: match trunk.address.parse::<SocketAddr>() {
                    Ok(addr) => SendTo::Addr(addr),
                    Err(_) => SendTo::HostPort(trunk.address.clone()),
                },
                transport: trunk.transport,
            }],
            ring: TRUNK_RING,
            after_busy: None,
            after_no_answer: None,
            on_failure: chain.take().into_iter().collect(),
        };
        chain = Some(step);
    }
    chain.map(|s| VecDeque::from([s])).ok_or_else(|| {
        Reject::new(
            403,
            "Calls to external numbers need an outbound trunk: set the tenant's calls.outbound_trunk",
        )
    })
}

#[cfg(test)]
mod tests;
