//! `/v1/cluster/nodes/{node}/drain` (operator only): ask a SIP node to drain, and see
//! whether it took the request. The request is committed to the Raft log and reaches
//! every node through its watch stream; the node it names stops taking new calls (503
//! with Retry-After, readiness false), keeps its live calls until they end or its grace
//! period (`calls.drain_grace_secs`) passes, ships its records and exits 0. So the answer
//! is **202 Accepted** with the request pending; `GET` shows it `accepted` once the node
//! has taken it (within a second when the node is connected). A request nobody takes
//! lapses after a minute.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{Command, MAX_NODE_NAME_LEN, NodeDrain};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, Ctx, ErrorBody};
use super::extract::Params;

/// A drain request and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDrainView {
    pub node: String,
    /// Increases with every request, cluster-wide.
    pub seq: u64,
    /// `pending` until the node takes the request, then `accepted`.
    pub state: String,
    /// When the request was committed (leader's clock, ms since the epoch).
    pub requested_at_ms: u64,
    /// When the node took it.
    pub accepted_at_ms: Option<u64>,
}

impl From<&NodeDrain> for NodeDrainView {
    fn from(d: &NodeDrain) -> NodeDrainView {
        NodeDrainView {
            node: d.node.clone(),
            seq: d.seq,
            state: if d.is_pending() {
                "pending"
            } else {
                "accepted"
            }
            .to_owned(),
            requested_at_ms: d.requested_at_ms,
            accepted_at_ms: d.accepted_at_ms,
        }
    }
}

/// The `{node}` parameter: a node name as in its config (`node.name`).
fn node_name(p: &Params) -> Result<String, ApiError> {
    let node = p.raw("node")?;
    if node.is_empty() || node.len() > MAX_NODE_NAME_LEN || node.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_node",
            format!(
                "node in the URL must be the node's name (node.name), 1-{MAX_NODE_NAME_LEN} bytes without control characters"
            ),
        )
        .with_field("node"));
    }
    Ok(node.to_owned())
}

#[utoipa::path(post, path = "/v1/cluster/nodes/{node}/drain", tag = "cluster",
    params(("node" = String, Path, description = "the node's name (node.name)")),
    responses((status = 202, body = NodeDrainView), (status = "default", body = ErrorBody)))]
pub(super) async fn drain<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<(StatusCode, Json<NodeDrainView>), ApiError> {
    who.require_operator("draining a node")?;
    let node = node_name(&p)?;
    api.apply(&who, &Ctx::Node, Command::DrainNode { node: node.clone() })
        .await?;
    let view = api
        .read(|s| s.node_drain(&node).map(NodeDrainView::from))
        .await?
        .ok_or_else(|| ApiError::internal("the drain request was committed but is not stored"))?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(get, path = "/v1/cluster/nodes/{node}/drain", tag = "cluster",
    params(("node" = String, Path, description = "the node's name (node.name)")),
    responses((status = 200, body = NodeDrainView), (status = "default", body = ErrorBody)))]
pub(super) async fn drain_status<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<NodeDrainView>, ApiError> {
    who.require_operator("a node's drain request")?;
    let node = node_name(&p)?;
    api.read(|s| s.node_drain(&node).map(NodeDrainView::from))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_drain_request",
                format!("node {node} has no drain request in the last minute"),
            )
            .with_field("node")
        })
}
