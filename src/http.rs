//! HTTP endpoints over shared read-only state: `/healthz` (the process is alive), `/readyz`
//! (every watch established and the output writable) and `/metrics` (OpenMetrics when the
//! scraper asks for it, as Prometheus does; else the text format 0.0.4).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::Health;
use crate::metrics::{Exposition, Metrics};

/// What the endpoints read: the process's health and metrics (read-only here).
#[derive(Clone)]
struct Observed {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// Binds the address now (so a bad address fails start-up), serves until the future is dropped.
pub async fn bind(
    addr: &str,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()> + use<>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Observed { health, metrics });
    let serve = async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP endpoint failed");
        }
    };
    Ok((local, serve))
}

async fn readyz(State(s): State<Observed>) -> (StatusCode, String) {
    match s.health.ready() {
        Ok(()) => match s.health.role() {
            Some(role) => (StatusCode::OK, format!("ok ({role})\n")),
            None => (StatusCode::OK, "ok\n".into()),
        },
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// The body in the format the scraper accepts, with the content type that matches it.
async fn metrics_text(State(s): State<Observed>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::negotiate(accept);
    s.metrics.leader.set_ready(s.health.ready().is_ok());
    (
        [(header::CONTENT_TYPE, format.content_type())],
        s.metrics.encode_as(format),
    )
}
