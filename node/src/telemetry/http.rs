//! The operations HTTP server: `/metrics` for Prometheus, `/healthz` for readiness (load
//! balancers and Kubernetes stop sending traffic when it is not 200), `/livez` for liveness
//! (200 while the process answers, so a draining node is not restarted mid-drain).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::TelemetryError;

/// Readiness of the node as reported by `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Starting up: listeners not bound yet. `/healthz` answers 503.
    Starting,
    /// Taking traffic. `/healthz` answers 200.
    Ok,
    /// Shutting down gracefully: finishing calls, taking no new ones. `/healthz` answers 503.
    Draining,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Ok => "ok",
            HealthState::Draining => "draining",
        }
    }
}

/// A shared, cheaply cloned handle on the node's [`HealthState`]. The SIP server sets `Ok`
/// when its listeners are up; the binary sets `Draining` on SIGTERM/SIGINT. Changes can be
/// awaited through [`Health::subscribe`].
#[derive(Debug, Clone)]
pub struct Health(Arc<watch::Sender<HealthState>>);

impl Default for Health {
    fn default() -> Self {
        Health(Arc::new(watch::Sender::new(HealthState::Starting)))
    }
}

impl Health {
    /// A new handle in the [`HealthState::Starting`] state.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> HealthState {
        *self.0.borrow()
    }

    pub fn set(&self, state: HealthState) {
        self.0.send_replace(state);
    }

    pub fn set_ok(&self) {
        self.set(HealthState::Ok);
    }

    pub fn set_draining(&self) {
        self.set(HealthState::Draining);
    }

    /// A receiver that sees every later change, e.g. to wait until the node is `Ok`.
    pub fn subscribe(&self) -> watch::Receiver<HealthState> {
        self.0.subscribe()
    }
}

#[derive(Debug, Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Health,
}

/// The bound operations HTTP server; call [`HttpServer::serve`] to run it.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port; see [`HttpServer::local_addr`]).
    pub async fn bind(
        addr: SocketAddr,
        metrics: PrometheusHandle,
        health: Health,
    ) -> Result<Self, TelemetryError> {
        let bind_error = |error| TelemetryError::Bind { addr, error };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(healthz_handler))
            .route("/livez", get(livez_handler))
            .with_state(AppState { metrics, health });
        Ok(HttpServer {
            listener,
            local_addr,
            router,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `routes` (e.g. the admin API) next to the operations endpoints.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// Serves requests until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics.render(),
    )
}

fn status_json(status: StatusCode, state: HealthState) -> impl IntoResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"status\":\"{}\"}}", state.as_str()),
    )
}

async fn healthz_handler(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.health.get();
    let status = match health {
        HealthState::Ok => StatusCode::OK,
        HealthState::Starting | HealthState::Draining => StatusCode::SERVICE_UNAVAILABLE,
    };
    status_json(status, health)
}

async fn livez_handler() -> impl IntoResponse {
    status_json(StatusCode::OK, HealthState::Ok)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::telemetry::{install_metrics_recorder, record_auth_failure, record_request};

    /// Upper bound for any one exchange; the tests wait for events, never for time.
    const DEADLINE: Duration = Duration::from_secs(10);

    struct Reply {
        status: u16,
        headers: String,
        body: String,
    }

    /// A minimal HTTP/1.1 client: one request, `Connection: close`, read to EOF.
    async fn get(addr: SocketAddr, path: &str) -> Reply {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .expect("send request");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read reply");
            raw
        };
        let raw = tokio::time::timeout(DEADLINE, exchange)
            .await
            .expect("HTTP reply within the deadline");
        let text = String::from_utf8(raw).expect("UTF-8 reply");
        let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status code");
        Reply {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    async fn start(
        health: Health,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let metrics = install_metrics_recorder().expect("recorder");
        let server = HttpServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), metrics, health)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "the bound port is reported");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn metrics_endpoint_shows_recorded_counters() {
        let (addr, stop, task) = start(Health::new()).await;
        record_request("OPTIONS", "UDP");
        record_request("NOT-A-METHOD", "udp");
        record_auth_failure(super::super::AuthFailureReason::StaleNonce);

        let reply = get(addr, "/metrics").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .headers
                .contains("content-type: text/plain; version=0.0.4")
        );
        assert!(
            reply
                .body
                .contains("tongdai_sip_requests_total{method=\"OPTIONS\",transport=\"udp\"}"),
            "{}",
            reply.body
        );
        assert!(
            reply
                .body
                .contains("tongdai_sip_requests_total{method=\"other\",transport=\"udp\"}"),
            "{}",
            reply.body
        );
        assert!(
            reply
                .body
                .contains("tongdai_register_auth_failures_total{reason=\"stale_nonce\"}"),
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains("# HELP tongdai_sip_requests_total"),
            "metrics are described: {}",
            reply.body
        );

        stop.send(()).expect("server still running");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("server stops within the deadline")
            .expect("server task")
            .expect("server result");
    }

    #[tokio::test]
    async fn healthz_follows_the_health_handle() {
        let health = Health::new();
        let (addr, stop, task) = start(health.clone()).await;

        let reply = get(addr, "/healthz").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (503, r#"{"status":"starting"}"#)
        );

        health.set_ok();
        let reply = get(addr, "/healthz").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, r#"{"status":"ok"}"#)
        );
        assert!(reply.headers.contains("content-type: application/json"));

        health.set_draining();
        let reply = get(addr, "/healthz").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (503, r#"{"status":"draining"}"#)
        );

        // Liveness stays up while draining, so the node is not killed mid-drain.
        let reply = get(addr, "/livez").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, r#"{"status":"ok"}"#)
        );

        assert_eq!(get(addr, "/nope").await.status, 404);

        stop.send(()).expect("server still running");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("server stops within the deadline")
            .expect("server task")
            .expect("server result");
    }

    #[tokio::test]
    async fn binding_a_taken_port_names_the_address_and_the_fix() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let metrics = install_metrics_recorder().expect("recorder");
        let err = HttpServer::bind(addr, metrics, Health::new())
            .await
            .expect_err("port is taken");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cannot listen for HTTP on {addr}: ")),
            "{message}"
        );
        assert!(message.contains("TONGDAI_HTTP_LISTEN"), "{message}");
    }
}
