//! HTTP endpoints over the shared read-only [`Health`]: `/healthz` (the process is alive) and
//! `/readyz` (every watch established and the output writable).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::Health;

/// Binds the address now (so a bad address fails start-up), serves until the future is dropped.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let serve = async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP endpoint failed");
        }
    };
    Ok((local, serve))
}

async fn readyz(State(health): State<Arc<Health>>) -> (StatusCode, String) {
    match health.ready() {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
