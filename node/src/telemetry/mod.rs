//! Logs, metrics and the operations HTTP endpoint.
//!
//! - [`init_tracing`]: text or JSON log lines on stderr, filtered by `[log] level` unless
//!   `RUST_LOG` is set.
//! - [`install_metrics_recorder`]: the process-wide Prometheus recorder (no listener of its
//!   own) with every tongdai metric described up front; the `record_*` helpers in
//!   [`metrics`] keep label values bounded so SIP code cannot explode the
//!   series count with what a peer sends.
//! - [`HttpServer`]: `GET /metrics`, `GET /healthz` (readiness, driven by a shared
//!   [`Health`]) and `GET /livez` (liveness: the process answers).

mod http;
pub mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub use self::http::{Health, HealthState, HttpServer};
pub use self::metrics::{
    AuthFailureReason, install_metrics_recorder, record_auth_failure, record_parse_error,
    record_request, record_response, set_registrations_active,
};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` or `[log] level` is not a filter tracing-subscriber accepts.
    #[error("{source_name}: {value:?} is not a valid log filter ({message})")]
    LogFilter {
        /// `RUST_LOG` or `log.level`.
        source_name: &'static str,
        value: String,
        message: String,
    },
    /// A global tracing subscriber was installed already (by an earlier call or a test).
    #[error("logging is already initialized: {0}")]
    TracingAlreadySet(String),
    /// Some other metrics recorder is installed globally.
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
    /// The HTTP listener could not be bound.
    /// The message includes the OS error, so it is not repeated as a `source`.
    #[error(
        "cannot listen for HTTP on {addr}: {error} \
         (set http.listen or TONGDAI_HTTP_LISTEN to a free address, e.g. 127.0.0.1:0)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}

/// Installs the global tracing subscriber. `rust_log` is the value of `RUST_LOG`, which, when
/// set and non-empty, replaces `log.level`. Logs go to stderr so stdout stays for command
/// output (the `tongdai up` banner, `config check`).
pub fn init_tracing(log: &LogConfig, rust_log: Option<&str>) -> Result<(), TelemetryError> {
    let (source_name, directives) = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(value) => ("RUST_LOG", value),
        None => ("log.level", log.level.as_str()),
    };
    // openraft narrates every vote and election at info; keep that for those who ask.
    let with_raft = if directives.contains("openraft") {
        directives.to_owned()
    } else {
        format!("{directives},openraft=warn")
    };
    let filter = EnvFilter::builder()
        .parse(&with_raft)
        .map_err(|e| TelemetryError::LogFilter {
            source_name,
            value: directives.to_owned(),
            message: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| TelemetryError::TracingAlreadySet(e.to_string()))
}
