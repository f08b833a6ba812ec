//! tongdai's media control API (HTTP JSON, served by `tongdai media --control ADDR`):
//!
//! - `POST /v1/media/sessions {"call_id", "tenant"}` -> 201 `{"id"}`
//! - `POST /v1/media/sessions/{id}/offer {"sdp"}` -> 200 `{"sdp"}` (for the callee)
//! - `POST /v1/media/sessions/{id}/answer {"sdp"}` -> 200 `{"sdp"}` (for the caller)
//! - `POST /v1/media/sessions/{id}/recording {"action": "start"}` -> 200
//! - `DELETE /v1/media/sessions/{id}` -> 200
//! - `GET /v1/media/health` -> 200 when ready
//!
//! One keep-alive connection per control thread (ureq's agent pool).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use serde_json::json;
use ureq::Agent;

use super::{CallMedia, CallSetup, Control, Handle};
use crate::sdp;

#[derive(Debug)]
pub struct HttpClient {
    agent: Agent,
    base: String,
    tenant: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct SdpBody {
    sdp: String,
}

impl HttpClient {
    pub fn new(base_url: &str, tenant: &str) -> HttpClient {
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            // Read the error body ourselves: it says what was wrong.
            .http_status_as_error(false)
            .max_idle_connections_per_host(2)
            .build()
            .into();
        HttpClient {
            agent,
            base: base_url.trim_end_matches('/').to_owned(),
            tenant: tenant.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/media{path}", self.base)
    }

    /// Sends a request, returns the body of a 2xx reply or an error naming the status
    /// and the body.
    fn check(
        what: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String> {
        let mut resp = resp.with_context(|| format!("{what}: request failed"))?;
        let status = resp.status();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {}", body.trim());
        }
        Ok(body)
    }

    fn post(&self, what: &str, path: &str, body: serde_json::Value) -> Result<String> {
        Self::check(what, self.agent.post(self.url(path)).send_json(body))
    }
}

impl Control for HttpClient {
    fn ready(&mut self) -> Result<()> {
        Self::check("health", self.agent.get(self.url("/health")).call()).map(|_| ())
    }

    fn setup(&mut self, c: &CallSetup) -> Result<CallMedia> {
        let created = self.post(
            "create session",
            "/sessions",
            json!({"call_id": c.call_id, "tenant": self.tenant}),
        )?;
        let id = serde_json::from_str::<Created>(&created)
            .context("create session: reply without \"id\"")?
            .id;
        let path = format!("/sessions/{id}");
        let for_callee = self.post(
            "offer",
            &format!("{path}/offer"),
            json!({"sdp": c.caller_sdp}),
        )?;
        let for_callee =
            serde_json::from_str::<SdpBody>(&for_callee).context("offer: reply without \"sdp\"")?;
        let callee_sends_to =
            sdp::audio_destination(&for_callee.sdp).context("SDP for the callee")?;
        let for_caller = self.post(
            "answer",
            &format!("{path}/answer"),
            json!({"sdp": c.callee_sdp}),
        )?;
        let for_caller = serde_json::from_str::<SdpBody>(&for_caller)
            .context("answer: reply without \"sdp\"")?;
        let caller_sends_to =
            sdp::audio_destination(&for_caller.sdp).context("SDP for the caller")?;
        if c.record {
            self.post(
                "start recording",
                &format!("{path}/recording"),
                json!({"action": "start"}),
            )?;
        }
        Ok(CallMedia {
            call: c.call,
            caller_sends_to,
            callee_sends_to,
            handle: Handle::Tongdai { session: id },
        })
    }

    fn teardown(&mut self, m: &CallMedia) -> Result<()> {
        let Handle::Tongdai { session } = &m.handle else {
            bail!("not a tongdai session");
        };
        Self::check(
            "delete session",
            self.agent
                .delete(self.url(&format!("/sessions/{session}")))
                .call(),
        )
        .map(|_| ())
    }
}
