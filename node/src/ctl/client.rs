//! A blocking JSON client for the admin API that follows a follower's 307 to the
//! leader for every method, body and token included (ureq would re-send only GETs, and
//! without the token).

use std::time::Duration;

use serde_json::Value;
use ureq::Agent;
use ureq::http::{Method, Request, Response, header};

use super::CtlError;

/// Redirects followed at most: one hop is normal (follower to leader); more means an
/// election moved the leader meanwhile.
const MAX_REDIRECTS: usize = 5;

/// The largest download (`recording get --output`): 4 hours of stereo 8 kHz 16-bit WAV.
const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;

#[derive(Debug)]
pub struct Client {
    base: String,
    token: String,
    agent: Agent,
}

impl Client {
    /// `api` is `http://host:port` (the scheme may be left out).
    pub fn new(api: &str, token: String) -> Result<Client, CtlError> {
        let api = api.trim().trim_end_matches('/');
        let base = if api.starts_with("https://") {
            return Err(CtlError::Usage(
                "--api: https is not supported; use http:// (put TLS in front of the API with a proxy)".into(),
            ));
        } else if api.starts_with("http://") {
            api.to_owned()
        } else if api.contains("://") {
            return Err(CtlError::Usage(format!(
                "--api {api:?}: expected http://host:port"
            )));
        } else {
            format!("http://{api}")
        };
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(5)))
            // Adding a learner waits for it to catch up.
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Client { base, token, agent })
    }

    /// Sends a request to `path` (already escaped) and returns the JSON answer (`None`
    /// for 204). An answer other than 2xx is a [`CtlError::Api`].
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, CtlError> {
        let body = body.map(|b| b.to_string());
        let mut url = format!("{}{path}", self.base);
        for _ in 0..=MAX_REDIRECTS {
            let mut response = self.once(&method, &url, body.as_deref())?;
            let status = response.status();
            if matches!(status.as_u16(), 307 | 308) {
                url = redirect_target(&response, &url)?;
                continue;
            }
            let text = response
                .body_mut()
                .read_to_string()
                .map_err(|e| CtlError::Transport(format!("{url}: reading the answer: {e}")))?;
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(None);
                }
                return serde_json::from_str(&text).map(Some).map_err(|e| {
                    CtlError::Transport(format!("{url}: the answer is not JSON: {e}"))
                });
            }
            return Err(api_error(status.as_u16(), &text));
        }
        Err(CtlError::Transport(format!(
            "more than {MAX_REDIRECTS} redirects; is an election going on? Try again"
        )))
    }

    /// GETs `path` and returns the body's bytes as they are (a recording's audio),
    /// following redirects like [`Client::send`]; an answer other than 2xx is a
    /// [`CtlError::Api`].
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, CtlError> {
        let mut url = format!("{}{path}", self.base);
        for _ in 0..=MAX_REDIRECTS {
            let mut response = self.once(&Method::GET, &url, None)?;
            let status = response.status();
            if matches!(status.as_u16(), 307 | 308) {
                url = redirect_target(&response, &url)?;
                continue;
            }
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_DOWNLOAD)
                .read_to_vec()
                .map_err(|e| CtlError::Transport(format!("{url}: reading the answer: {e}")))?;
            if status.is_success() {
                return Ok(body);
            }
            return Err(api_error(status.as_u16(), &String::from_utf8_lossy(&body)));
        }
        Err(CtlError::Transport(format!(
            "more than {MAX_REDIRECTS} redirects; is an election going on? Try again"
        )))
    }

    fn once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<Response<ureq::Body>, CtlError> {
        let builder = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json");
        let sent = match body {
            Some(b) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(b.to_owned())
                .map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        sent.map_err(|e| CtlError::Usage(format!("{url}: {e}")))?
            .map_err(|e| CtlError::Transport(format!("{url}: {e}")))
    }
}

/// The server's `{"error", "message", "field"}`, or its text when not JSON.
fn api_error(status: u16, text: &str) -> CtlError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let get = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    CtlError::Api {
        status,
        code: get("error").unwrap_or_default(),
        message: get("message").unwrap_or_else(|| text.trim().chars().take(500).collect()),
        field: get("field"),
    }
}

/// Escapes one path segment (ids come from the command line).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a 307/308 from a follower points: the leader's plain-HTTP URL.
fn redirect_target<B>(response: &Response<B>, url: &str) -> Result<String, CtlError> {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .filter(|l| l.starts_with("http://"))
        .map(str::to_owned)
        .ok_or_else(|| CtlError::Transport(format!("{url}: redirect without a usable Location")))
}
