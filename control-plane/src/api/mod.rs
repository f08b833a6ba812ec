//! The REST admin API: JSON CRUD of tenants (with their call settings), numbers,
//! extensions, hunt groups, queues, agents, trunks and tenant tokens, registrations,
//! the Raft group's status and membership, and the nodes' call load, over any
//! [`Cluster`].
//!
//! - Writes are proposed to the Raft log ([`Cluster::propose`]); reads are linearizable
//!   ([`Cluster::linearizable`], then the local state). On a follower both answer
//!   **307** to the same path on the leader's API address (clients re-send the request
//!   there, body included); without a known leader, 503 with `Retry-After: 1`.
//! - Every request but `GET /openapi.json` needs `Authorization: Bearer <token>`
//!   ([`auth`]).
//! - Bodies are the API's own JSON types (snake_case, unknown fields refused), not the
//!   log's encoding; errors are one JSON shape naming the field ([`error`]).
//! - Extension passwords are turned into HA1s here and never stored or returned; trunk
//!   registration passwords are stored (the node answers the carrier's challenge with
//!   them) and never returned. The
//!   digest realm is the tenant id: the HA1s are `H(ext:tenant:password)`.
//! - Lists are whole (no paging): a tenant's entities number in the thousands at most.
//! - Call records (CDRs, recordings) are not in Raft: [`records`] serves them from the
//!   stores of the machine the replica runs on, answered locally by followers too.

mod agents;
pub mod auth;
mod calls;
mod cluster;
mod crud;
pub mod error;
mod extensions;
mod extract;
mod hunt_groups;
mod live_calls;
mod nodes;
mod numbers;
mod openapi;
mod queue_live;
mod queues;
pub mod records;
mod registrations;
mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tokens;
mod trunks;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::cluster::Cluster;
use crate::model::{Command, Id, State};

pub use auth::{AuthConfig, Principal, WeakOperatorToken};
pub use error::{ApiError, ErrorBody};
pub use openapi::openapi;

use error::{Ctx, LeaderRedirect};

/// What every handler gets: the replica and this replica's auth settings.
#[derive(Debug)]
pub struct Api<C> {
    cluster: C,
    auth: Arc<AuthConfig>,
    /// CDRs and recordings ([`records`]); `None` on a replica that does not serve them.
    records: Option<Arc<dyn records::Records>>,
}

impl<C: Clone> Clone for Api<C> {
    fn clone(&self) -> Self {
        Api {
            cluster: self.cluster.clone(),
            auth: Arc::clone(&self.auth),
            records: self.records.clone(),
        }
    }
}

/// The admin API over `cluster`; serve it with `axum::serve`.
pub fn router<C: Cluster>(cluster: C, auth: AuthConfig) -> Router {
    router_with_records(cluster, auth, None)
}

/// The admin API with the records endpoints served from `records` (absent: they
/// answer 501 `records_not_configured`).
pub fn router_with_records<C: Cluster>(
    cluster: C,
    auth: AuthConfig,
    records: Option<Arc<dyn records::Records>>,
) -> Router {
    let api = Api {
        cluster,
        auth: Arc::new(auth),
        records,
    };
    let scoped = "/v1/tenants/{tenant}";
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route(
            "/v1/tenants",
            get(tenants::list::<C>).post(tenants::create::<C>),
        )
        .route(
            scoped,
            get(tenants::get_one::<C>)
                .put(tenants::update::<C>)
                .delete(tenants::remove::<C>),
        )
        .route(
            &format!("{scoped}/numbers"),
            get(numbers::list::<C>).post(numbers::create::<C>),
        )
        .route(
            &format!("{scoped}/numbers/{{digits}}"),
            get(numbers::get_one::<C>)
                .put(numbers::update::<C>)
                .delete(numbers::remove::<C>),
        )
        .route(
            &format!("{scoped}/extensions"),
            get(extensions::list::<C>).post(extensions::create::<C>),
        )
        .route(
            &format!("{scoped}/extensions/{{ext}}"),
            get(extensions::get_one::<C>)
                .put(extensions::update::<C>)
                .delete(extensions::remove::<C>),
        )
        .route(
            &format!("{scoped}/hunt-groups"),
            get(hunt_groups::list::<C>).post(hunt_groups::create::<C>),
        )
        .route(
            &format!("{scoped}/hunt-groups/{{id}}"),
            get(hunt_groups::get_one::<C>)
                .put(hunt_groups::update::<C>)
                .delete(hunt_groups::remove::<C>),
        )
        .route(
            &format!("{scoped}/queues"),
            get(queues::list::<C>).post(queues::create::<C>),
        )
        .route(
            &format!("{scoped}/queues/{{id}}"),
            get(queues::get_one::<C>)
                .put(queues::update::<C>)
                .delete(queues::remove::<C>),
        )
        .route(
            &format!("{scoped}/queues/{{id}}/live"),
            get(queue_live::live::<C>),
        )
        .route(
            &format!("{scoped}/agents"),
            get(agents::list::<C>).post(agents::create::<C>),
        )
        .route(
            &format!("{scoped}/agents/{{extension}}"),
            get(agents::get_one::<C>)
                .put(agents::update::<C>)
                .delete(agents::remove::<C>),
        )
        .route(
            &format!("{scoped}/trunks"),
            get(trunks::list::<C>).post(trunks::create::<C>),
        )
        .route(
            &format!("{scoped}/trunks/{{id}}"),
            get(trunks::get_one::<C>)
                .put(trunks::update::<C>)
                .delete(trunks::remove::<C>),
        )
        .route(
            &format!("{scoped}/calls/{{call_id}}/recording"),
            post(live_calls::recording::<C>),
        )
        .route(
            &format!("{scoped}/tokens"),
            get(tokens::list::<C>).post(tokens::create::<C>),
        )
        .route(
            &format!("{scoped}/tokens/{{id}}"),
            delete(tokens::revoke::<C>),
        )
        .route(
            &format!("{scoped}/registrations"),
            get(registrations::of_tenant::<C>),
        )
        .route(&format!("{scoped}/cdrs"), get(records::cdrs::<C>))
        .route(&format!("{scoped}/queue-log"), get(records::queue_log::<C>))
        .route(
            &format!("{scoped}/calls"),
            post(live_calls::click_to_call::<C>),
        )
        .route(
            &format!("{scoped}/calls/{{id}}"),
            get(live_calls::click_to_call_status::<C>),
        )
        .route(
            &format!("{scoped}/recordings"),
            get(records::recordings::<C>),
        )
        .route(
            &format!("{scoped}/recordings/{{id}}"),
            get(records::recording::<C>).delete(records::delete_recording::<C>),
        )
        .route(
            &format!("{scoped}/recordings/{{id}}/audio"),
            get(records::recording_audio::<C>),
        )
        .route("/v1/registrations", get(registrations::all::<C>))
        .route("/v1/cluster", get(cluster::status::<C>))
        .route("/v1/cluster/load", get(cluster::load::<C>))
        .route(
            "/v1/cluster/nodes/{node}/drain",
            get(nodes::drain_status::<C>).post(nodes::drain::<C>),
        )
        .route("/v1/cluster/learners", post(cluster::add_learner::<C>))
        .route("/v1/cluster/voters/{id}", post(cluster::promote::<C>))
        .route("/v1/cluster/members/{id}", delete(cluster::remove::<C>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
        .layer(middleware::from_fn(redirect_to_leader))
}

impl<C: Cluster> Api<C> {
    /// Runs `f` on a linearizable view of the state.
    async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        self.cluster.linearizable().await?;
        Ok(self.cluster.read(f))
    }

    /// Like [`Api::read`], for a tenant that must exist (404 otherwise).
    async fn read_tenant<R>(
        &self,
        tenant: &Id,
        f: impl FnOnce(&State) -> R,
    ) -> Result<R, ApiError> {
        self.read(|s| s.tenant(tenant).is_some().then(|| f(s)))
            .await?
            .ok_or_else(|| auth::unknown_tenant(tenant))
    }

    /// Proposes one command and waits for it to be applied.
    async fn apply(&self, who: &Principal, ctx: &Ctx, command: Command) -> Result<(), ApiError> {
        self.apply_for(who, ctx, command).await.map(|_| ())
    }

    /// Applies one command and answers its outcome.
    async fn apply_for(
        &self,
        who: &Principal,
        ctx: &Ctx,
        command: Command,
    ) -> Result<crate::model::Outcome, ApiError> {
        let mut results = self.cluster.propose(vec![command]).await?;
        match results.pop() {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(e)) => Err(ApiError::command(e, who, ctx)),
            None => Err(ApiError::internal("the cluster returned no result")),
        }
    }

    /// Applies `command(model)` and answers `model` as read back.
    async fn save<M: Clone, V: for<'m> From<&'m M>>(
        &self,
        who: &Principal,
        ctx: &Ctx,
        command: fn(M) -> Command,
        model: M,
    ) -> Result<Json<V>, ApiError> {
        self.apply(who, ctx, command(model.clone())).await?;
        Ok(Json(V::from(&model)))
    }
}

/// Wall-clock milliseconds since the Unix epoch (registration liveness).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Adds `Location: http://<leader><path and query>` to a redirect to the leader.
async fn redirect_to_leader(req: Request, next: Next) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(LeaderRedirect(addr)) = response.extensions_mut().remove::<LeaderRedirect>() {
        match HeaderValue::from_str(&format!("http://{addr}{target}")) {
            Ok(location) => {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Err(_) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_leader",
                    format!("the leader's API address {addr:?} is not usable"),
                )
                .into_response();
            }
        }
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_route",
        "no such endpoint; see GET /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see GET /openapi.json",
    )
}
