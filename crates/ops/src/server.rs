//! The operations listener: HTTP/1.1 on its own address, plain or over TLS ([`crate::OpsTls`]).

use crate::{Health, Metrics, OpsError, VersionInfo};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the operations service serves: the metrics, the health checks, readiness and the version.
#[derive(Clone, Debug)]
pub struct Ops {
    /// The process's metrics.
    pub metrics: Metrics,
    /// The process's health checks (`/healthz`).
    pub health: Health,
    /// Conditions of readiness besides having started (`/readyz`), e.g. a connection that must be open.
    pub readiness: Health,
    ready: Arc<AtomicBool>,
    version: Arc<VersionInfo>,
}

impl Ops {
    /// A service for the program `version` with fresh metrics, no health checks, not ready yet.
    pub fn new(version: VersionInfo) -> Ops {
        Ops {
            metrics: Metrics::new(),
            health: Health::default(),
            readiness: Health::default(),
            ready: Arc::new(AtomicBool::new(false)),
            version: Arc::new(version),
        }
    }

    /// Marks the process started: `/readyz` answers 200 from now on, while every readiness check passes.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the process has started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(axum::extract::State(ops): axum::extract::State<Ops>, headers: HeaderMap) -> Response {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match ops.metrics.encode() {
        Ok(text) => {
            ([(header::CONTENT_TYPE, if open { OPENMETRICS } else { PROMETHEUS_TEXT })], text).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(axum::extract::State(ops): axum::extract::State<Ops>) -> Response {
    let report = ops.health.report();
    let status = if report.ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, &report)
}

async fn readyz(axum::extract::State(ops): axum::extract::State<Ops>) -> Response {
    if !ops.is_ready() {
        return json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "Service Unavailable"}));
    }
    let report = ops.readiness.report();
    let status = if report.ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, &report)
}

async fn version(axum::extract::State(ops): axum::extract::State<Ops>) -> Response {
    json(StatusCode::OK, ops.version.as_ref())
}

/// The four endpoints.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .with_state(ops)
}

/// Serves the operations endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ops: Ops,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), OpsError> {
    tracing::info!(addr = ?listener.local_addr().ok(), "operations service listening");
    axum::serve(listener, router(ops)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Serves the operations endpoints over TLS (`tls`: [`crate::OpsTls::rustls_config`]) on `listener` until
/// `shutdown` completes. A client that fails the handshake (no certificate when one is required, a
/// certificate of another CA, plain HTTP) gets no answer.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    ops: Ops,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), OpsError> {
    tracing::info!(addr = ?listener.local_addr().ok(), "operations service listening (TLS)");
    mca_client::tls::serve_tls(listener, router(ops), tls, shutdown).await?;
    Ok(())
}
