//! The media engine over HTTP/JSON, for a media plane driven from another process: the
//! load generator in `loadtest/`, and later a B2BUA on another node.
//!
//! The calls map one to one onto [`MediaEngine`]'s methods; bad input gets a 4xx with a
//! JSON body `{"error": "...", "field": "..."}` naming what to fix. When the listener is not
//! on loopback a bearer token is required (`tongdai media --token-file`).

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::engine::{Family, MediaEngine, MediaError, SessionId};
use super::relay::LegSide;
use super::relay::worker::RecordError;

#[derive(Clone)]
struct Control {
    engine: MediaEngine,
    token: Option<Arc<str>>,
    prompts: Option<Arc<std::path::Path>>,
}

/// The media control routes, under `/v1/media`. Prompts named in play requests are WAV
/// files in `prompts` (none can be played without it).
pub fn router(
    engine: MediaEngine,
    token: Option<String>,
    prompts: Option<std::path::PathBuf>,
) -> Router {
    let state = Control {
        engine,
        token: token.map(Arc::from),
        prompts: prompts.map(Arc::from),
    };
    Router::new()
        .route("/v1/media/health", get(health))
        .route("/v1/media/sessions", post(create).get(list))
        .route("/v1/media/sessions/{id}", get(stats).delete(destroy))
        .route("/v1/media/sessions/{id}/stats", get(stats))
        .route("/v1/media/sessions/{id}/offer", post(offer))
        .route("/v1/media/sessions/{id}/answer", post(answer))
        .route("/v1/media/sessions/{id}/play", post(play).delete(stop_play))
        .route("/v1/media/sessions/{id}/dtmf", post(dtmf))
        .route("/v1/media/sessions/{id}/recording", post(recording))
        .route("/v1/media/sessions/{id}/events", get(events))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// An error as the API shows it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn bad(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({"error": self.message, "field": field}),
            None => json!({"error": self.message}),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let (status, field) = match &e {
            MediaError::UnknownSession(_) => (StatusCode::NOT_FOUND, Some("id")),
            MediaError::Sdp(_) | MediaError::NoAudio => (StatusCode::BAD_REQUEST, Some("sdp")),
            MediaError::NoAddressFamily(..) | MediaError::FamilyChange => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some("sdp"))
            }
            MediaError::NoPendingOffer | MediaError::WrongAnswerer => {
                (StatusCode::CONFLICT, Some("from"))
            }
            MediaError::Ports(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            MediaError::NoG711(_) => (StatusCode::CONFLICT, Some("leg")),
            MediaError::Playback(_) => (StatusCode::BAD_REQUEST, Some("prompt")),
            MediaError::Record(RecordError::RecorderBusy) => {
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
            MediaError::Record(RecordError::NoCall) => (StatusCode::NOT_FOUND, Some("id")),
            MediaError::Record(_) => (StatusCode::CONFLICT, Some("action")),
            MediaError::Bind { .. } | MediaError::WorkerGone | MediaError::Worker(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        Self {
            status,
            message: e.to_string(),
            field,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let text = e.body_text();
        // serde names the offending field in backticks; the API names it in `field`.
        let field = ["missing field `", "unknown field `", "invalid type: "]
            .iter()
            .find_map(|marker| {
                let rest = &text[text.find(marker)? + marker.len()..];
                let name = &rest[..rest.find('`')?];
                KNOWN_FIELDS.iter().find(|f| **f == name).copied()
            })
            .unwrap_or("body");
        Self::bad(field, text)
    }
}

/// Request fields the media API knows, so an error can name one as `&'static str`.
const KNOWN_FIELDS: &[&str] = &[
    "call_id",
    "tenant",
    "sdp",
    "from",
    "to_family",
    "action",
    "leg",
    "prompt",
    "loop",
    "inband",
];

async fn authorize(State(state): State<Control>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = presented.is_some_and(|p| {
            use subtle::ConstantTimeEq;
            p.as_bytes().ct_eq(token.as_bytes()).into()
        });
        if !ok {
            return ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "missing or wrong bearer token".into(),
                field: Some("authorization"),
            }
            .into_response();
        }
    }
    next.run(request).await
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad("id", format!("`{raw}` is not a media session id")))
}

async fn health(State(state): State<Control>) -> impl IntoResponse {
    let (in_use, available) = state.engine.ports_in_use();
    axum::Json(json!({
        "status": "ok",
        "sessions": state.engine.sessions().len(),
        "port_pairs_in_use": in_use,
        "port_pairs_available": available,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    call_id: String,
    tenant: String,
}

async fn create(
    State(state): State<Control>,
    body: Result<axum::Json<CreateRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let axum::Json(req) = body?;
    if req.tenant.is_empty() || req.tenant.len() > 128 {
        return Err(ApiError::bad(
            "tenant",
            "give a tenant name of 1 to 128 characters",
        ));
    }
    if req.call_id.is_empty() || req.call_id.len() > 256 {
        return Err(ApiError::bad(
            "call_id",
            "give a call id of 1 to 256 characters",
        ));
    }
    let id = state.engine.create_session(&req.tenant, &req.call_id)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": id.to_string()})),
    ))
}

async fn list(State(state): State<Control>) -> impl IntoResponse {
    axum::Json(json!({"sessions": state.engine.sessions()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SdpRequest {
    sdp: String,
    /// Which leg's peer sent this SDP; default: caller for an offer, callee for an answer.
    from: Option<LegSide>,
    /// IP family of the leg the rewritten offer goes to (`ipv4`/`ipv6`); default: the
    /// offerer's.
    to_family: Option<String>,
}

fn family(raw: Option<&str>) -> Result<Option<Family>, ApiError> {
    match raw {
        None => Ok(None),
        Some("ipv4") => Ok(Some(Family::V4)),
        Some("ipv6") => Ok(Some(Family::V6)),
        Some(other) => Err(ApiError::bad(
            "to_family",
            format!("`{other}` is not an address family; use ipv4 or ipv6"),
        )),
    }
}

async fn offer(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<SdpRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    let to_family = family(req.to_family.as_deref())?;
    let from = req.from.unwrap_or(LegSide::Caller);
    let sdp = state.engine.offer(id, from, &req.sdp, to_family).await?;
    Ok(axum::Json(json!({"sdp": sdp})))
}

async fn answer(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<SdpRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    if req.to_family.is_some() {
        return Err(ApiError::bad(
            "to_family",
            "only an offer chooses the other leg's family",
        ));
    }
    let from = req.from.unwrap_or(LegSide::Callee);
    let sdp = state.engine.answer(id, from, &req.sdp).await?;
    Ok(axum::Json(json!({"sdp": sdp})))
}

async fn stats(
    State(state): State<Control>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    Ok(axum::Json(state.engine.stats(id).await?))
}

async fn destroy(
    State(state): State<Control>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    Ok(axum::Json(state.engine.destroy(id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayRequest {
    /// Whose peer hears the prompt.
    leg: LegSide,
    /// A prompt name: the file `<name>.wav` in the prompts directory.
    prompt: String,
    #[serde(default, rename = "loop")]
    looping: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegRequest {
    leg: LegSide,
}

async fn play(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<PlayRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    let Some(dir) = &state.prompts else {
        return Err(ApiError::bad(
            "prompt",
            "this media node has no prompts directory; start it with --prompts DIR",
        ));
    };
    let valid = !req.prompt.is_empty()
        && req.prompt.len() <= 64
        && req
            .prompt
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::bad(
            "prompt",
            "a prompt name is 1 to 64 letters, digits, '-' or '_' (the file <name>.wav)",
        ));
    }
    let path = dir.join(format!("{}.wav", req.prompt));
    let bytes = tokio::fs::read(&path).await.map_err(|e| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("prompt `{}`: {e}", req.prompt),
        field: Some("prompt"),
    })?;
    let prompt = crate::media::playback::Prompt::from_wav(&bytes, crate::media::g711::Law::Ulaw)
        .map_err(|e| ApiError::bad("prompt", format!("prompt `{}`: {e}", req.prompt)))?;
    state.engine.play(id, req.leg, prompt, req.looping).await?;
    Ok(axum::Json(json!({"playing": req.prompt})))
}

async fn stop_play(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<LegRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    state.engine.stop_playback(id, req.leg)?;
    Ok(axum::Json(json!({"stopped": true})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DtmfRequest {
    leg: LegSide,
    inband: bool,
}

async fn dtmf(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<DtmfRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    state.engine.detect_inband_dtmf(id, req.leg, req.inband)?;
    Ok(axum::Json(json!({"inband": req.inband})))
}

async fn events(
    State(state): State<Control>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    Ok(axum::Json(json!({"events": state.engine.take_events(id)?})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingRequest {
    action: String,
}

async fn recording(
    State(state): State<Control>,
    Path(id): Path<String>,
    body: Result<axum::Json<RecordingRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = session_id(&id)?;
    let axum::Json(req) = body?;
    let engine = &state.engine;
    match req.action.as_str() {
        "start" => {
            let recording = engine.start_recording(id).await?;
            Ok(axum::Json(json!({"recording": recording})))
        }
        "pause" => engine
            .pause_recording(id)
            .await
            .map(|()| axum::Json(json!({"paused": true})))
            .map_err(Into::into),
        "resume" => engine
            .resume_recording(id)
            .await
            .map(|()| axum::Json(json!({"paused": false})))
            .map_err(Into::into),
        "stop" => engine
            .stop_recording(id)
            .await
            .map(|()| axum::Json(json!({"stopped": true})))
            .map_err(Into::into),
        other => Err(ApiError::bad(
            "action",
            format!("`{other}` is not a recording action; use start, pause, resume or stop"),
        )),
    }
}

/// `tongdai media`: the media plane alone, driven over HTTP.
#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// Address of the HTTP control API.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TONGDAI_MEDIA_CONTROL",
        default_value = "127.0.0.1:8090"
    )]
    pub control: std::net::SocketAddr,
    /// RTP/RTCP port range, e.g. 30000-39999.
    #[arg(
        long,
        value_name = "MIN-MAX",
        env = "TONGDAI_MEDIA_RTP_PORTS",
        default_value = "30000-39999"
    )]
    pub rtp_ports: String,
    /// Relay worker threads (0 = one per core).
    #[arg(long, env = "TONGDAI_MEDIA_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// IPv4 address media sockets bind to.
    #[arg(
        long,
        value_name = "IP",
        env = "TONGDAI_MEDIA_BIND",
        default_value = "127.0.0.1"
    )]
    pub bind: std::net::Ipv4Addr,
    /// IPv6 address media sockets bind to (none by default).
    #[arg(long, value_name = "IP", env = "TONGDAI_MEDIA_BIND_V6")]
    pub bind_v6: Option<std::net::Ipv6Addr>,
    /// IPv4 address written into SDP when it differs from --bind (1:1 NAT).
    #[arg(long, value_name = "IP", env = "TONGDAI_MEDIA_ADVERTISE")]
    pub advertise: Option<std::net::Ipv4Addr>,
    /// Seconds of silence from both peers before a session reports an `inactive` event
    /// (0: never).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TONGDAI_MEDIA_RTP_TIMEOUT",
        default_value_t = 60
    )]
    pub rtp_timeout: u64,
    /// Directory of WAV prompts that play requests may name (8 kHz mono).
    #[arg(long, value_name = "DIR", env = "TONGDAI_MEDIA_PROMPTS")]
    pub prompts: Option<std::path::PathBuf>,
    /// Spool directory for recordings in progress (turns recording on, with --recordings).
    #[arg(
        long,
        value_name = "DIR",
        env = "TONGDAI_MEDIA_SPOOL",
        requires = "recordings"
    )]
    pub spool: Option<std::path::PathBuf>,
    /// Directory finished recordings are moved to (<tenant>/<date>/<id>.wav and .json).
    #[arg(
        long,
        value_name = "DIR",
        env = "TONGDAI_MEDIA_RECORDINGS",
        requires = "spool"
    )]
    pub recordings: Option<std::path::PathBuf>,
    /// File holding the bearer token the control API requires (required off loopback).
    #[arg(long, value_name = "FILE", env = "TONGDAI_MEDIA_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
}

/// Parses `MIN-MAX`.
pub fn parse_port_range(raw: &str) -> Result<super::ports::PortRange, String> {
    let (min, max) = raw
        .split_once('-')
        .ok_or_else(|| format!("RTP port range `{raw}` must look like 30000-39999"))?;
    let port = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{s}` in RTP port range `{raw}` is not a port number"))
    };
    super::ports::PortRange::new(port(min)?, port(max)?).map_err(|e| e.to_string())
}

/// Checks the arguments and builds the engine's configuration and the API token.
pub fn prepare(args: &MediaArgs) -> Result<(super::engine::MediaConfig, Option<String>), String> {
    let rtp_ports = parse_port_range(&args.rtp_ports)?;
    let token = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
            let token = token.trim().to_owned();
            if token.len() < 16 {
                return Err(format!(
                    "the token in {} is shorter than 16 characters; use a long random one",
                    path.display()
                ));
            }
            Some(token)
        }
        None if args.control.ip().is_loopback() => None,
        None => {
            return Err(format!(
                "--control {} is not on loopback: give --token-file so the media API is not open to anyone",
                args.control
            ));
        }
    };
    let config = super::engine::MediaConfig {
        rtp_ports,
        bind_v4: Some(args.bind),
        bind_v6: args.bind_v6,
        advertise_v4: args.advertise,
        advertise_v6: None,
        workers: args.workers,
        relatch_after: super::relay::latch::DEFAULT_RELATCH_AFTER,
        rtp_timeout: std::time::Duration::from_secs(args.rtp_timeout),
        socket_buffer: 0,
        recordings: match (&args.spool, &args.recordings) {
            (Some(spool), Some(dir)) => Some(super::recording::RecordingConfig {
                spool_dir: spool.clone(),
                store: super::recording::StoreConfig::Local { dir: dir.clone() },
            }),
            _ => None,
        },
    };
    Ok((config, token))
}

/// Runs the media plane until SIGINT/SIGTERM, then destroys the live sessions.
pub async fn serve(
    config: super::engine::MediaConfig,
    token: Option<String>,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    let control = args.control;
    use anyhow::Context as _;
    let metrics = crate::telemetry::metrics::install_metrics_recorder()?;
    let _upkeep =
        crate::telemetry::metrics::spawn_upkeep(metrics.clone(), std::time::Duration::from_secs(5));
    let engine = MediaEngine::start(config).context("starting the media relay")?;
    let listener = tokio::net::TcpListener::bind(control)
        .await
        .with_context(|| format!("binding the media control API on {control}"))?;
    let addr = listener.local_addr()?;
    println!(
        "tongdai media: control http://{addr}, {} relay worker(s)",
        engine.workers()
    );
    let app = router(engine.clone(), token, args.prompts.clone()).route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    return;
                }
            }
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Every live call's recording is finished and shipped before we exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    if let Some(report) = engine.shutdown(deadline).await
        && !report.all_shipped
    {
        tracing::warn!(
            remaining = report.remaining.len(),
            "some recordings are still in the spool; they are shipped at the next start"
        );
    }
    Ok(())
}
