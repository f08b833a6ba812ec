//! `/v1/cluster`: the Raft group's status as this replica sees it, membership
//! changes, and the nodes' call load (operator only). Status is answered by any
//! replica; membership changes and load are redirected to the leader.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::collections::BTreeMap;

use crate::cluster::{Cluster, ClusterStatus};
use crate::model::{Id, NodeLoad};
use crate::raft::{Member, NodeId};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Params};

/// The group as the answering replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterView {
    /// The replica that answered.
    pub id: NodeId,
    /// Its Raft role: `Leader`, `Follower`, `Candidate`, `Learner`, ...
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Last log index applied to this replica's state machine.
    pub last_applied: Option<u64>,
    /// Last log index committed, as this replica knows it.
    pub committed: Option<u64>,
    /// Last log index in this replica's latest snapshot.
    pub snapshot: Option<u64>,
    /// Log entries up to this index were purged (they live on in the snapshot).
    pub purged: Option<u64>,
    /// Last log index this replica holds.
    pub last_log_index: Option<u64>,
    /// State-machine revision.
    pub revision: u64,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberView {
    pub id: NodeId,
    /// `voter` or `learner`.
    pub role: String,
    pub raft_addr: String,
    pub api_addr: String,
    /// Log entries behind the leader; known on the leader only, once acknowledged.
    pub lag: Option<u64>,
}

impl From<ClusterStatus> for ClusterView {
    fn from(s: ClusterStatus) -> ClusterView {
        let lag = |id: NodeId| s.lag.iter().find(|(n, _)| *n == id).and_then(|(_, l)| *l);
        let member = |role: &str, (id, m): &(NodeId, Member)| MemberView {
            id: *id,
            role: role.into(),
            raft_addr: m.raft_addr.clone(),
            api_addr: m.api_addr.clone(),
            lag: lag(*id),
        };
        let members = s
            .voters
            .iter()
            .map(|v| member("voter", v))
            .chain(s.learners.iter().map(|l| member("learner", l)))
            .collect();
        ClusterView {
            id: s.id,
            state: s.state,
            term: s.term,
            leader: s.leader,
            last_applied: s.last_applied,
            committed: s.committed,
            snapshot: s.snapshot,
            purged: s.purged,
            last_log_index: s.last_log_index,
            revision: s.revision,
            members,
        }
    }
}

/// A replica to add as a learner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnerBody {
    pub id: NodeId,
    /// `host:port` of its Raft (QUIC) endpoint.
    #[schema(example = "10.0.0.4:7000")]
    pub raft_addr: String,
    /// `host:port` of its admin API (where followers redirect clients).
    #[schema(example = "10.0.0.4:8080")]
    pub api_addr: String,
}

/// Whether `addr` is `host:port` usable in a URL: no scheme, path, user or spaces.
fn check_addr(field: &str, addr: &str) -> Result<(), ApiError> {
    let ok = addr.len() <= 255
        && !addr
            .bytes()
            .any(|b| b <= b' ' || b"/@?#\\\"".contains(&b) || b >= 0x7f)
        && addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be host:port, e.g. 10.0.0.4:8080"),
        ))
    }
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView), (status = "default", body = ErrorBody)))]
pub(super) async fn status<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
) -> Result<Json<ClusterView>, ApiError> {
    who.require_operator("the cluster's status")?;
    Ok(Json(api.cluster.status().await.into()))
}

/// Adds a learner and waits until it caught up with the log.
#[utoipa::path(post, path = "/v1/cluster/learners", tag = "cluster", request_body = LearnerBody,
    responses((status = 200, body = ClusterView), (status = "default", body = ErrorBody)))]
pub(super) async fn add_learner<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    ApiJson(body): ApiJson<LearnerBody>,
) -> Result<Json<ClusterView>, ApiError> {
    who.require_operator("changing cluster membership")?;
    check_addr("raft_addr", &body.raft_addr)?;
    check_addr("api_addr", &body.api_addr)?;
    let member = Member {
        raft_addr: body.raft_addr,
        api_addr: body.api_addr,
    };
    api.cluster.add_learner(body.id, member).await?;
    Ok(Json(api.cluster.status().await.into()))
}

/// Makes a learner a voter.
#[utoipa::path(post, path = "/v1/cluster/voters/{id}", tag = "cluster",
    params(("id" = u64, Path)),
    responses((status = 200, body = ClusterView), (status = "default", body = ErrorBody)))]
pub(super) async fn promote<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<ClusterView>, ApiError> {
    who.require_operator("changing cluster membership")?;
    api.cluster.promote(p.node_id()?).await?;
    Ok(Json(api.cluster.status().await.into()))
}

/// Removes a voter or learner.
#[utoipa::path(delete, path = "/v1/cluster/members/{id}", tag = "cluster",
    params(("id" = u64, Path)),
    responses((status = 200, body = ClusterView), (status = "default", body = ErrorBody)))]
pub(super) async fn remove<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<ClusterView>, ApiError> {
    who.require_operator("changing cluster membership")?;
    api.cluster.remove(p.node_id()?).await?;
    Ok(Json(api.cluster.status().await.into()))
}

/// The nodes' last load reports (what quotas are enforced against), and their sums
/// per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadView {
    /// Nodes with calls, by name. A node's report is dropped 10 s after the newest
    /// report; nodes themselves count only reports younger than 5 s.
    pub nodes: Vec<NodeLoadView>,
    /// Per tenant, summed over `nodes`.
    pub tenants: Vec<TenantLoadView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeLoadView {
    pub node: String,
    /// When the report was committed (leader's clock, ms since the Unix epoch).
    pub reported_at_ms: u64,
    pub tenants: Vec<TenantLoadView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLoadView {
    #[schema(value_type = String, example = "acme")]
    pub tenant: Id,
    pub active_calls: u64,
    /// Call attempts admitted in the last second.
    pub attempts_per_sec: u64,
}

impl LoadView {
    fn of<'a>(reports: impl Iterator<Item = (&'a str, &'a NodeLoad)>) -> LoadView {
        let mut sums: BTreeMap<&Id, (u64, u64)> = BTreeMap::new();
        let nodes = reports
            .map(|(node, load)| NodeLoadView {
                node: node.to_owned(),
                reported_at_ms: load.time_ms,
                tenants: load
                    .tenants
                    .iter()
                    .map(|t| {
                        let sum = sums.entry(&t.tenant).or_default();
                        sum.0 += u64::from(t.active_calls);
                        sum.1 += u64::from(t.attempts_per_sec);
                        TenantLoadView {
                            tenant: t.tenant.clone(),
                            active_calls: t.active_calls.into(),
                            attempts_per_sec: t.attempts_per_sec.into(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let tenants = sums
            .into_iter()
            .map(
                |(tenant, (active_calls, attempts_per_sec))| TenantLoadView {
                    tenant: tenant.clone(),
                    active_calls,
                    attempts_per_sec,
                },
            )
            .collect();
        LoadView { nodes, tenants }
    }
}

#[utoipa::path(get, path = "/v1/cluster/load", tag = "cluster",
    responses((status = 200, body = LoadView), (status = "default", body = ErrorBody)))]
pub(super) async fn load<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
) -> Result<Json<LoadView>, ApiError> {
    who.require_operator("the nodes' load")?;
    Ok(Json(api.read(|s| LoadView::of(s.load_reports())).await?))
}
