//! A fake kube-apiserver for core/v1 Events over a real socket, plain HTTP or TLS, following
//! `../shared/k8s-watch-protocol.md`: paginated LIST with continue tokens (items without
//! kind/apiVersion), chunked WATCH streams of compact frames split at arbitrary chunk
//! boundaries, history compaction (410 ERROR frame inside a 200 stream, 410 on an old continue
//! token), bookmarks, bearer-token auth (401/403 with Status bodies), and injected faults.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::events;
use super::tls::TestPki;

mod leases;
mod lists;
mod selectors;
mod streams;

use leases::*;
#[allow(unused_imports)] // used by tests/daemon, not by every binary that includes this server
pub use lists::preloaded_line;
use lists::*;
use selectors::*;
use streams::*;

type Body = BoxBody<Bytes, std::io::Error>;

/// A fault injected into the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next request (LIST or WATCH) is answered with this status and a Status body.
    Status { code: u16, retry_after: Option<u64> },
    /// The next WATCH sends `after` whole frames, then half of the next one, then drops the
    /// connection without ending the chunked body.
    DropMidFrame { after: usize },
    /// The next WATCH sends `after` whole frames, then a line that is not JSON.
    Garbage { after: usize },
    /// The next WATCH sends `after` whole frames, then the next frame with its head intact (type,
    /// namespace, resourceVersion) and its tail broken — a raw control character inside a string
    /// (`control`), or a trailing comma — and then the real frame and the rest.
    BadTail { after: usize, control: bool },
    /// The next WATCH answers 200 and ends at once with no frame (a stuck position).
    EmptyWatch,
    /// The next WATCH answers 200 and then sends nothing, whatever happens, until it times out.
    FrozenWatch,
    /// The next LIST request that carries a continue token gets 410 Expired.
    ExpireContinue,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub path: String,
    pub query: HashMap<String, String>,
    pub status: u16,
}

impl Recorded {
    pub fn is_watch(&self) -> bool {
        matches!(
            self.query.get("watch").map(String::as_str),
            Some("true" | "1")
        )
    }
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
}

#[derive(Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    namespace: String,
    /// The whole frame line, without `\n`.
    line: Arc<str>,
}

struct Stored {
    namespace: String,
    /// The object as a watch frame carries it (kind/apiVersion first).
    object: Arc<str>,
    count: u64,
}

struct Snapshot {
    rv: u64,
    items: Vec<(String, Arc<str>)>,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<String, Stored>,
    history: Vec<Change>,
    compacted: u64,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    faults: VecDeque<Fault>,
    token: Option<String>,
    forbidden: bool,
    watch_timeout: Option<Duration>,
    paused: bool,
    requests: Vec<Recorded>,
    /// For benchmarks: a watch from this resourceVersion streams these bytes, then ends.
    prebuilt: Option<(String, Arc<Vec<Bytes>>)>,
    /// Continue pages built from the objects as they are now, not the first page's snapshot.
    live_lists: bool,
    /// LIST responses still to serve before new requests are held (as by `pause`).
    pause_after_lists: Option<usize>,
    /// coordination.k8s.io/v1 Leases by (namespace, name), as last written.
    leases: BTreeMap<(String, String), serde_json::Value>,
    lease_rv: u64,
    /// Lease updates (PUT) that name this holder fail with 503.
    failing_lease_holder: Option<String>,
    /// Every Lease request: what, for whom, with what result.
    lease_log: Vec<LeaseRequest>,
}

/// One request on a Lease, as the fake server saw it.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub at: Instant,
    pub method: String,
    /// `spec.holderIdentity` of the body sent (PUT/POST), if any.
    pub holder: Option<String>,
    pub status: u16,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every change to history.
    changed: watch::Sender<u64>,
    /// Bumped to end every open watch.
    kill: watch::Sender<u64>,
    /// Bumped when paused requests may go on.
    resumed: watch::Sender<u64>,
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    pub pki: Option<TestPki>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Plain HTTP, no authentication.
    pub async fn plain() -> Self {
        Self::start(None, None).await
    }

    /// HTTPS with a throwaway CA, requiring `Bearer <token>`.
    pub async fn tls(token: &str) -> Self {
        Self::start(Some(TestPki::generate()), Some(token.to_string())).await
    }

    async fn start(pki: Option<TestPki>, token: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1000,
                token,
                ..Inner::default()
            }),
            changed: watch::channel(0).0,
            kill: watch::channel(0).0,
            resumed: watch::channel(0).0,
        });
        let acceptor = pki.as_ref().map(|p| p.acceptor());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        FakeApiServer {
            addr,
            pki,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig for this server. `token` is the user's bearer token (TLS servers only).
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        use base64::Engine;
        let ca = self
            .pki
            .as_ref()
            .map(|p| {
                let data = base64::engine::general_purpose::STANDARD.encode(p.ca_pem.as_bytes());
                format!("\n    certificate-authority-data: {data}")
            })
            .unwrap_or_default();
        let user = token
            .map(|t| format!("\n    token: {t}"))
            .unwrap_or_else(|| " {}".into());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}{ca}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user:{user}\n",
            self.url()
        )
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.shared.inner.lock().unwrap();
        f(&mut inner)
    }

    fn record_change(&self, inner: &mut Inner, change: Change) {
        inner.history.push(change);
        let rv = inner.rv;
        self.shared.changed.send_replace(rv);
    }

    /// Creates an Event; returns the ADDED frame line the client should write.
    pub fn add(&self, namespace: &str, name: &str) -> String {
        self.change("ADDED", namespace, name)
    }

    /// Records another occurrence of an Event (count + 1); returns the MODIFIED frame line.
    pub fn occur(&self, namespace: &str, name: &str) -> String {
        self.change("MODIFIED", namespace, name)
    }

    /// Deletes an Event (TTL expiry); returns the DELETED frame line.
    pub fn delete(&self, namespace: &str, name: &str) -> String {
        self.change("DELETED", namespace, name)
    }

    /// One change to an Event at the next revision; returns its frame line.
    fn change(&self, kind: &'static str, namespace: &str, name: &str) -> String {
        self.with(|inner| {
            inner.rv += 1;
            let rv = inner.rv;
            let key = key(namespace, name);
            let count = match kind {
                "ADDED" => 1,
                _ => {
                    inner.objects.get(&key).expect("no such event").count
                        + u64::from(kind == "MODIFIED")
                }
            };
            let object: Arc<str> = events::event_object(namespace, name, rv, count).into();
            if kind == "DELETED" {
                inner.objects.remove(&key);
            } else {
                let stored = Stored {
                    namespace: namespace.into(),
                    object: object.clone(),
                    count,
                };
                inner.objects.insert(key, stored);
            }
            let line = events::frame(kind, &object);
            self.record_change(
                inner,
                Change {
                    rv,
                    kind,
                    namespace: namespace.into(),
                    line: line.clone().into(),
                },
            );
            line
        })
    }

    /// Streams a frame given in wire form, its metadata.resourceVersion renumbered to the next
    /// revision. Returns the line as the client should write it.
    pub fn emit_line(&self, line: &str) -> String {
        self.with(|inner| {
            inner.rv += 1;
            let rv = inner.rv;
            let line = events::renumber(line, rv);
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let kind: &'static str = match v["type"].as_str().unwrap() {
                "ADDED" => "ADDED",
                "MODIFIED" => "MODIFIED",
                "DELETED" => "DELETED",
                other => panic!("emit_line: {other}"),
            };
            let namespace = v["object"]["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.record_change(
                inner,
                Change {
                    rv,
                    kind,
                    namespace,
                    line: line.clone().into(),
                },
            );
            line
        })
    }

    /// Sends a BOOKMARK at the current revision to open watches.
    pub fn bookmark(&self) {
        self.with(|inner| {
            let rv = inner.rv;
            let line = format!(
                r#"{{"type":"BOOKMARK","object":{{"kind":"Event","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}","creationTimestamp":null}},"involvedObject":{{}},"source":{{}},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}}}}"#
            );
            self.record_change(
                inner,
                Change {
                    rv,
                    kind: "BOOKMARK",
                    namespace: String::new(),
                    line: line.into(),
                },
            );
        });
    }

    /// Creates `n` Events at once, without history (as if compacted since), spread over 7
    /// namespaces, named so that LIST order (by namespace and name) is not resourceVersion order.
    /// Returns (namespace, name) of each, oldest first; see [`preloaded_line`].
    pub fn preload(&self, n: u64) -> Vec<(String, String)> {
        self.with(|inner| {
            let mut made = Vec::with_capacity(n as usize);
            for j in 0..n {
                inner.rv += 1;
                let namespace = format!("ns-{}", j % 7);
                // A permutation of 0..n (7919 is prime), so names sort apart from versions.
                let name = format!("ev-{:08}", (j * 7919 + 13) % n.max(1));
                let object: Arc<str> = events::event_object(&namespace, &name, inner.rv, 1).into();
                let stored = Stored {
                    namespace: namespace.clone(),
                    object,
                    count: 1,
                };
                inner.objects.insert(key(&namespace, &name), stored);
                made.push((namespace, name));
            }
            inner.compacted = inner.rv;
            made
        })
    }

    /// LIST continue pages come from the objects as they are when each page is asked for, each
    /// page carrying the current resourceVersion: a server that does not serve one snapshot.
    pub fn set_live_lists(&self, live: bool) {
        self.with(|inner| inner.live_lists = live);
    }

    /// After `n` more LIST responses, holds new requests until [`resume`](Self::resume).
    pub fn pause_after_lists(&self, n: usize) {
        self.with(|inner| inner.pause_after_lists = Some(n));
    }

    /// The Lease as stored, if created.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.with(|inner| inner.leases.get(&(namespace.into(), name.into())).cloned())
    }

    /// While set, updates of a Lease that name this holder fail with 503 (the holder is cut
    /// off from the API server; everyone else gets through).
    pub fn fail_lease_updates_by(&self, holder: Option<&str>) {
        self.with(|inner| inner.failing_lease_holder = holder.map(Into::into));
    }

    pub fn lease_log(&self) -> Vec<LeaseRequest> {
        self.with(|inner| inner.lease_log.clone())
    }

    /// Forgets history up to now, as etcd compaction does: older positions get 410.
    pub fn compact(&self) {
        self.with(|inner| {
            inner.compacted = inner.rv;
            let c = inner.compacted;
            inner.history.retain(|ch| ch.rv > c);
        });
    }

    /// Ends every open watch cleanly (as `timeoutSeconds` or a server restart would).
    pub fn close_watches(&self) {
        self.shared.kill.send_modify(|g| *g += 1);
    }

    /// Holds new requests until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.with(|inner| inner.paused = true);
    }

    pub fn resume(&self) {
        self.with(|inner| inner.paused = false);
        self.shared.resumed.send_modify(|g| *g += 1);
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|inner| inner.faults.push_back(fault));
    }

    pub fn set_forbidden(&self, forbidden: bool) {
        self.with(|inner| inner.forbidden = forbidden);
    }

    /// Ends each watch after this long, whatever timeoutSeconds asked.
    pub fn set_watch_timeout(&self, d: Duration) {
        self.with(|inner| inner.watch_timeout = Some(d));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|inner| inner.requests.clone())
    }

    pub fn current_rv(&self) -> u64 {
        self.with(|inner| inner.rv)
    }

    /// Benchmarks: a watch from `from_rv` sends these chunks (together, whole frame lines), each
    /// as one HTTP chunk, then ends. The LIST stays empty at `from_rv`.
    pub fn prebuilt_stream(&self, from_rv: u64, chunks: Vec<Bytes>) {
        self.with(|inner| {
            inner.rv = from_rv;
            inner.prebuilt = Some((from_rv.to_string(), Arc::new(chunks)));
        });
    }

    /// Back to serving watches from the history.
    pub fn clear_prebuilt(&self) {
        self.with(|inner| inner.prebuilt = None);
    }
}

fn full(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

fn error_response(code: u16, retry_after: Option<u64>) -> Response<Body> {
    let reason = match code {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "Unknown",
    };
    let mut resp = full(
        StatusCode::from_u16(code).unwrap(),
        status_body(code, reason, &format!("injected {code}")),
    );
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}

/// Parses `/api/v1/events` and `/api/v1/namespaces/{ns}/events`.
fn scope_of(path: &str) -> Option<Option<String>> {
    if path == "/api/v1/events" {
        return Some(None);
    }
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, tail) = rest.split_once('/')?;
    (tail == "events").then(|| Some(ns.to_string()))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path().starts_with(LEASES) {
        return Ok(lease_request(&shared, req).await);
    }
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req.uri().query().map(url_pairs).unwrap_or_default();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Paused: wait until resumed.
    let mut resumed = shared.resumed.subscribe();
    while shared.inner.lock().unwrap().paused {
        if resumed.changed().await.is_err() {
            break;
        }
    }
    let resp = route(&shared, &path, &query, auth.as_deref());
    let mut inner = shared.inner.lock().unwrap();
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if !watching && let Some(left) = inner.pause_after_lists.as_mut() {
        *left = left.saturating_sub(1);
        if *left == 0 {
            inner.pause_after_lists = None;
            inner.paused = true;
        }
    }
    inner.requests.push(Recorded {
        at: Instant::now(),
        path,
        query,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

fn url_pairs(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn route(
    shared: &Arc<Shared>,
    path: &str,
    query: &HashMap<String, String>,
    auth: Option<&str>,
) -> Response<Body> {
    let Some(namespace) = scope_of(path) else {
        return full(
            StatusCode::NOT_FOUND,
            status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let mut inner = shared.inner.lock().unwrap();
    if let Some(token) = &inner.token
        && auth != Some(format!("Bearer {token}").as_str())
    {
        return full(
            StatusCode::UNAUTHORIZED,
            status_body(401, "Unauthorized", "Unauthorized"),
        );
    }
    if inner.forbidden {
        let verb = if watching { "watch" } else { "list" };
        let at = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        return full(
            StatusCode::FORBIDDEN,
            status_body(
                403,
                "Forbidden",
                &format!(
                    "events is forbidden: User \"system:serviceaccount:kube-system:kube-event-logger\" cannot {verb} resource \"events\" in API group \"\" {at}"
                ),
            ),
        );
    }
    // A Status fault applies to the next request of any kind.
    if let Some(Fault::Status { code, retry_after }) = inner.faults.front().cloned() {
        inner.faults.pop_front();
        return error_response(code, retry_after);
    }
    let selector = match parse_selector(query.get("fieldSelector").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(message) => {
            return full(
                StatusCode::BAD_REQUEST,
                status_body(400, "BadRequest", &message),
            );
        }
    };
    if watching {
        let rv = query.get("resourceVersion").cloned().unwrap_or_default();
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800));
        let timeout = inner.watch_timeout.map_or(timeout, |t| t.min(timeout));
        let fault = match inner.faults.front() {
            Some(
                Fault::DropMidFrame { .. }
                | Fault::Garbage { .. }
                | Fault::BadTail { .. }
                | Fault::EmptyWatch
                | Fault::FrozenWatch,
            ) => inner.faults.pop_front(),
            _ => None,
        };
        drop(inner);
        watch_response(shared.clone(), namespace, selector, rv, timeout, fault)
    } else {
        list_response(&mut inner, namespace, &selector, query)
    }
}
