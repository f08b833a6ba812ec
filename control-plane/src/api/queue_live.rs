//! `GET /v1/tenants/{tenant}/queues/{id}/live`: a queue now, as the ACD in the state
//! machine sees it: callers waiting in service order (with the agents ringing for them),
//! the members and what each is doing, and the KPIs (see `model::QueueKpis`). Waits are
//! measured with the answering replica's clock.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::Cluster;
use crate::model::{AgentActivity, AgentState, Id, State as Model};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::Params;
use super::{Api, now_ms};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueLiveView {
    pub queue: String,
    /// Callers waiting, in the order they will be served.
    pub waiting: Vec<WaitingCallerView>,
    pub members: Vec<MemberView>,
    pub kpis: QueueKpisView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaitingCallerView {
    pub position: u32,
    pub call_id: String,
    pub caller: String,
    pub priority: u8,
    pub waited_secs: u64,
    /// The node holding the caller.
    pub node: String,
    /// Agents ringing for this caller now.
    pub offered_to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub extension: String,
    pub penalty: u8,
    /// `logged_out`, `paused`, `available`, `ringing`, `on_call` or `wrap_up`.
    pub state: String,
    pub pause_reason: Option<String>,
    /// Queue calls answered since logging in.
    pub calls_answered: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueKpisView {
    pub calls_waiting: u32,
    pub longest_wait_secs: f64,
    /// Members by state.
    pub agents_logged_out: u32,
    pub agents_paused: u32,
    pub agents_available: u32,
    pub agents_ringing: u32,
    pub agents_on_call: u32,
    pub agents_wrap_up: u32,
    /// Answered within `service_level_secs` / answered (null before the first answer).
    pub service_level: Option<f64>,
    pub service_level_secs: u32,
    /// Average speed of answer.
    pub asa_secs: Option<f64>,
    /// Average handle time: talk (with hold) + wrap-up.
    pub aht_secs: Option<f64>,
    /// Abandoned / (answered + abandoned).
    pub abandon_rate: Option<f64>,
    /// Members' time on queue calls and wrap-up / their time available.
    pub occupancy: Option<f64>,
    pub joined: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub timed_out: u64,
    pub overflowed: u64,
}

fn member_state(s: &Model, tenant: &Id, ext: &Id) -> (String, Option<String>, u64) {
    let rt = s.acd().agent_runtime(tenant, ext);
    let calls = rt.map_or(0, |r| r.calls_answered);
    let state = match (
        s.agent(tenant, ext).map(|a| &a.state),
        rt.map(|r| &r.activity),
    ) {
        (Some(AgentState::LoggedOut) | None, _) => "logged_out",
        (Some(AgentState::Paused { reason }), _) => {
            return ("paused".into(), Some(reason.clone()), calls);
        }
        (_, Some(AgentActivity::Ringing { .. })) => "ringing",
        (_, Some(AgentActivity::OnCall { .. })) => "on_call",
        (_, Some(AgentActivity::WrapUp { .. })) => "wrap_up",
        _ => "available",
    };
    (state.into(), None, calls)
}

fn live_view(s: &Model, tenant: &Id, queue: &Id, now: u64) -> Option<QueueLiveView> {
    let q = s.queue(tenant, queue)?;
    let k = s.queue_kpis(tenant, queue, now)?;
    let secs = |ms: u64| ms as f64 / 1000.0;
    let waiting = s
        .acd()
        .waiting(tenant, queue)
        .enumerate()
        .map(|(i, e)| WaitingCallerView {
            position: i as u32 + 1,
            call_id: e.call_id.clone(),
            caller: e.caller.clone(),
            priority: e.priority,
            waited_secs: now.saturating_sub(e.joined_at_ms) / 1000,
            node: e.node.clone(),
            offered_to: e
                .offer
                .iter()
                .flat_map(|o| o.agents.iter().map(|a| a.as_str().to_owned()))
                .collect(),
        })
        .collect();
    let members = q
        .members
        .iter()
        .map(|m| {
            let (state, pause_reason, calls_answered) = member_state(s, tenant, &m.extension);
            MemberView {
                extension: m.extension.as_str().to_owned(),
                penalty: m.penalty,
                state,
                pause_reason,
                calls_answered,
            }
        })
        .collect();
    Some(QueueLiveView {
        queue: queue.as_str().to_owned(),
        waiting,
        members,
        kpis: QueueKpisView {
            calls_waiting: k.calls_waiting,
            longest_wait_secs: secs(k.longest_wait_ms),
            agents_logged_out: k.agents.logged_out,
            agents_paused: k.agents.paused,
            agents_available: k.agents.available,
            agents_ringing: k.agents.ringing,
            agents_on_call: k.agents.on_call,
            agents_wrap_up: k.agents.wrap_up,
            service_level: k.service_level,
            service_level_secs: q.service_level_secs,
            asa_secs: k.asa_ms.map(secs),
            aht_secs: k.aht_ms.map(secs),
            abandon_rate: k.abandon_rate,
            occupancy: k.occupancy,
            joined: k.stats.joined,
            answered: k.stats.answered,
            abandoned: k.stats.abandoned,
            timed_out: k.stats.timed_out,
            overflowed: k.stats.overflowed,
        },
    })
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/queues/{id}/live", tag = "queues",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = QueueLiveView), (status = "default", body = ErrorBody)))]
pub(super) async fn live<C: Cluster>(
    State(api): State<Api<C>>,
    who: Principal,
    p: Params,
) -> Result<Json<QueueLiveView>, ApiError> {
    let tenant = p.tenant(&who)?;
    let queue = p.id("id")?;
    let now = now_ms();
    api.read_tenant(&tenant, |s| live_view(s, &tenant, &queue, now))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_queue",
                format!("unknown queue {queue} in tenant {tenant}"),
            )
            .with_field("id")
        })
}
