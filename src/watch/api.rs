//! The two requests we make — a LIST page and a WATCH — as a trait the watch loop is written
//! against, its implementation (a LIST page through kube's raw HTTP client, a WATCH on a
//! connection of its own: `cluster::wire`), and what a failed response means. kube's own retry
//! layer is off: backoff and `Retry-After` are ours.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use kube::client::Body;
use kube::core::params::{ListParams, WatchParams};

use crate::cluster::{WatchBody, WatchService};
use crate::frame::Status;
use crate::frame::{ResourceVersion, Scope};

/// Largest LIST page body we accept (a page of 500 events with managedFields is ~1 MiB).
const MAX_LIST_BODY: usize = 256 * 1024 * 1024;
/// Largest error body we read.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("HTTP {code} from the API server: {}", status_text(.status))]
    Status {
        code: u16,
        retry_after: Option<Duration>,
        status: Status,
    },
    #[error("request to the API server failed: {}", crate::telemetry::root_cause(.0.as_ref()))]
    Transport(std::sync::Arc<kube::Error>),
    #[error("reading the response failed: {0}")]
    Body(String),
    #[error("the LIST response is not an EventList: {0}")]
    Decode(String),
}

fn status_text(s: &Status) -> String {
    match (s.reason.is_empty(), s.message.is_empty()) {
        (true, true) => "(no Status body)".into(),
        (false, true) => s.reason.clone(),
        (true, false) => s.message.clone(),
        (false, false) => format!("{}: {}", s.reason, s.message),
    }
}

impl ApiError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The position or continue token is too old: list again.
    pub fn is_expired(&self) -> bool {
        matches!(self, ApiError::Status { code: 410, .. })
    }

    /// A refusal that retrying the same request will not fix (bad credentials, missing RBAC,
    /// a rejected parameter); timeouts, conflicts, expiry and throttling are not.
    pub fn is_refusal(&self) -> bool {
        matches!(self.code(), Some(c) if (400..500).contains(&c) && !matches!(c, 408 | 409 | 410 | 429))
    }

    /// The server's own words (a Status message) or, failing that, this error's.
    pub fn message(&self) -> String {
        match self {
            ApiError::Status { status, .. } => status.message.clone(),
            other => other.to_string(),
        }
    }
}

/// The Events API as the watch loop uses it. The real one is [`KubeApi`]; tests drive the loop
/// with a scripted one under paused time.
pub trait EventsApi: Send + Sync + 'static {
    /// A watch response body: chunks of frame lines.
    type Body: http_body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin;

    /// One LIST page: the whole body.
    fn list_page(
        &self,
        scope: &Scope,
        continue_token: Option<&str>,
    ) -> impl Future<Output = Result<Bytes, ApiError>> + Send;

    /// Opens a WATCH from `from`; the body streams frames until the server ends it.
    fn watch(
        &self,
        scope: &Scope,
        from: &ResourceVersion,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Body, ApiError>> + Send;
}

/// Talks to the API server for one process: LIST pages through the client, each WATCH on a
/// connection of its own.
pub struct KubeApi {
    client: kube::Client,
    watch: WatchService,
    page_size: u32,
    field_selector: Option<String>,
}

/// The Events collection of a scope.
fn collection(scope: &Scope) -> String {
    match scope {
        Scope::All => "/api/v1/events".into(),
        Scope::Namespace(ns) => format!("/api/v1/namespaces/{ns}/events"),
    }
}

impl KubeApi {
    pub fn new(
        client: kube::Client,
        watch: WatchService,
        page_size: u32,
        field_selector: Option<String>,
    ) -> Self {
        Self {
            client,
            watch,
            page_size,
            field_selector,
        }
    }

    /// Sends `req` through the client.
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<Response<Body>, ApiError> {
        let resp = self
            .client
            .send(accepting_json(req).map(Body::from))
            .await
            .map_err(|e| ApiError::Transport(e.into()))?;
        successful(resp).await
    }
}

/// The request, asking for JSON.
fn accepting_json<B>(req: http::Request<B>) -> http::Request<B> {
    let (mut parts, body) = req.into_parts();
    parts.headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    http::Request::from_parts(parts, body)
}

/// A 2xx response as it is; any other read (its first MAX_ERROR_BODY bytes) into the error.
async fn successful<B>(resp: Response<B>) -> Result<Response<B>, ApiError>
where
    B: http_body::Body<Data = Bytes, Error: Into<tower::BoxError>>,
{
    if resp.status().is_success() {
        return Ok(resp);
    }
    let code = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Err(ApiError::Status {
        code: code.as_u16(),
        retry_after,
        status: parse_status(code, &body),
    })
}

impl EventsApi for KubeApi {
    type Body = WatchBody;

    /// One LIST page: the whole body.
    async fn list_page(
        &self,
        scope: &Scope,
        continue_token: Option<&str>,
    ) -> Result<Bytes, ApiError> {
        let mut params = ListParams::default().limit(self.page_size);
        params.field_selector = self.field_selector.clone();
        if let Some(token) = continue_token {
            params = params.continue_token(token);
        }
        let req = kube::core::Request::new(collection(scope))
            .list(&params)
            .map_err(|e| ApiError::Transport(kube::Error::BuildRequest(e).into()))?;
        let whole = async {
            let resp = self.send(req).await?;
            Limited::new(resp.into_body(), MAX_LIST_BODY)
                .collect()
                .await
                .map_err(|e| ApiError::Body(e.to_string()))
        };
        Ok(within("the LIST page did not arrive whole", whole)
            .await?
            .to_bytes())
    }

    /// Opens a WATCH from `from`; the body streams frames until the server ends it.
    async fn watch(
        &self,
        scope: &Scope,
        from: &ResourceVersion,
        timeout: Duration,
    ) -> Result<WatchBody, ApiError> {
        let mut params = WatchParams::default().timeout(timeout.as_secs() as u32);
        params.bookmarks = true;
        params.field_selector = self.field_selector.clone();
        let req = kube::core::Request::new(collection(scope))
            .watch(&params, from.as_str())
            .map_err(|e| ApiError::Transport(kube::Error::BuildRequest(e).into()))?;
        // The response head within the deadline; the body is the stall check's (stream.rs).
        let req = accepting_json(req).map(Body::from);
        let open = async {
            let resp = tower::ServiceExt::oneshot(self.watch.clone(), req)
                .await
                .map_err(|e| ApiError::Transport(kube::Error::Service(e).into()))?;
            successful(resp).await
        };
        let resp = within("the API server did not answer the WATCH", open).await?;
        Ok(resp.into_body())
    }
}

/// One deadline per request ([`crate::cluster::REQUEST_TIMEOUT`]); `what` names what did not
/// come in time.
async fn within<T>(
    what: &str,
    fut: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    crate::cluster::bounded(fut, |secs| ApiError::Body(format!("{what} within {secs}s"))).await
}

/// A non-2xx body is normally a `metav1.Status`; anything else is kept as the message.
fn parse_status(code: StatusCode, body: &[u8]) -> Status {
    serde_json::from_slice::<Status>(body)
        .ok()
        .filter(|s| !s.message.is_empty() || !s.reason.is_empty())
        .unwrap_or_else(|| Status {
            code: code.as_u16(),
            reason: code.canonical_reason().unwrap_or_default().to_string(),
            message: String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string(),
        })
}

/// `Retry-After` in seconds (the form the API server sends).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_bodies_and_falls_back_to_text() {
        let s = parse_status(
            StatusCode::FORBIDDEN,
            br#"{"kind":"Status","status":"Failure","message":"events is forbidden","reason":"Forbidden","code":403}"#,
        );
        assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (403, "Forbidden", "events is forbidden")
        );
        let s = parse_status(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(s.code, 502);
        assert_eq!(s.message, "<html>bad gateway</html>");
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn which_errors_are_refusals() {
        let e = |code| ApiError::Status {
            code,
            retry_after: None,
            status: Status::default(),
        };
        for code in [400, 401, 403, 404] {
            assert!(e(code).is_refusal(), "{code}");
        }
        for code in [408, 409, 410, 429, 500, 503] {
            assert!(!e(code).is_refusal(), "{code}");
        }
        assert!(e(410).is_expired());
        assert_eq!(
            collection(&Scope::Namespace("x".into())),
            "/api/v1/namespaces/x/events"
        );
        assert_eq!(collection(&Scope::All), "/api/v1/events");
    }
}
