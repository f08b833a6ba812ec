//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{agents, cluster, error, extensions, hunt_groups, numbers, queues, registrations};
use super::{live_calls, nodes, queue_live, records, tenants, tokens, trunks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tongdai admin API",
        description = "Tenants, numbers, extensions, hunt groups, queues, agents, trunks, API tokens, \
            registrations, the control plane's Raft group, the nodes' call load, and call records \
            (CDRs and recordings, read from the stores on this replica's machine, not redirected). Every request needs \
            `Authorization: Bearer <token>`: the operator token, or a tenant token that sees \
            only its tenant. Followers answer 307 to the leader. Errors are \
            `{\"error\", \"message\", \"field\"}`."
    ),
    paths(
        tenants::list, tenants::create, tenants::get_one, tenants::update, tenants::remove,
        numbers::list, numbers::create, numbers::get_one, numbers::update, numbers::remove,
        extensions::list, extensions::create, extensions::get_one, extensions::update,
        extensions::remove,
        hunt_groups::list, hunt_groups::create, hunt_groups::get_one, hunt_groups::update,
        hunt_groups::remove,
        queues::list, queues::create, queues::get_one, queues::update, queues::remove,
        queue_live::live,
        agents::list, agents::create, agents::get_one, agents::update, agents::remove,
        trunks::list, trunks::create, trunks::get_one, trunks::update, trunks::remove,
        live_calls::click_to_call, live_calls::click_to_call_status, live_calls::recording,
        tokens::list, tokens::create, tokens::revoke,
        registrations::all, registrations::of_tenant,
        cluster::status, cluster::add_learner, cluster::promote, cluster::remove, cluster::load,
        nodes::drain, nodes::drain_status,
        records::cdrs, records::queue_log, records::recordings, records::recording, records::recording_audio,
        records::delete_recording,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(super) async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"internal\",\"message\":\"{e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}
